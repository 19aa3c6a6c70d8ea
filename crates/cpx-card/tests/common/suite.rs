//! The same behaviours checked on every contact card generation.
#![allow(
    dead_code,
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use cpx_card::{CardError, Generation, HashAlg, Interface, KeyRole, Mechanism, Pin, PinKind};

use super::*;

pub const PIN: &str = "1234";
pub const PUK: &str = "12345678";

pub fn identify(stem: &str, generation: Generation, serial: &str, label: &str) {
    let s = Session::open(stem);
    assert_eq!(s.card.generation(), generation);
    assert_eq!(s.card.interface(), Interface::Contact);
    assert_eq!(s.card.serial(), serial);
    assert_eq!(s.card.token_label(), label);
    assert_eq!(s.card.manufacturer(), "ASIP SANTE");
    let model = if generation == Generation::Cps3 {
        "IAS ECC"
    } else {
        "ChipDoc"
    };
    assert_eq!(s.card.model(), model);
}

pub fn certificates(stem: &str) {
    let mut s = Session::open(stem);
    let certs = s.card.certificates().unwrap();
    let labels: Vec<&str> = certs.iter().map(|c| c.label.as_str()).collect();
    assert!(labels.contains(&"Certificat de Signature CPS"), "{labels:?}");
    assert!(
        labels.contains(&"Certificat d'Authentification CPS"),
        "{labels:?}"
    );
    for c in &certs {
        public_key(&c.der);
    }
    let sig = s.card.certificate(KeyRole::Signature).unwrap();
    assert_eq!(sig.label, "Certificat de Signature CPS");
    let auth = s.card.certificate(KeyRole::Authentication).unwrap();
    assert_eq!(auth.label, "Certificat d'Authentification CPS");
    assert_ne!(sig.der, auth.der);
}

pub fn pin_verify(stem: &str) {
    let mut s = Session::open(stem);
    let st = s.card.pin_status(PinKind::User).unwrap();
    assert_eq!(st.tries_left, Some(3));
    assert!(!st.blocked);
    s.take();
    // Format errors never reach the card.
    for bad in ["12", "123456789", "12a4", ""] {
        let e = s.card.verify_pin(&Pin::new(bad)).unwrap_err();
        assert!(
            matches!(
                e,
                CardError::PinFormat {
                    kind: PinKind::User,
                    ..
                }
            ),
            "{bad}: {e}"
        );
    }
    assert!(matches!(
        s.card.verify(PinKind::Puk, &Pin::new("1234")),
        Err(CardError::PinFormat {
            kind: PinKind::Puk,
            ..
        })
    ));
    assert_eq!(s.count(), 0, "a typo must not reach the card");
    let e = s.card.verify_pin(&Pin::new("0000")).unwrap_err();
    assert!(
        matches!(
            e,
            CardError::WrongPin {
                kind: PinKind::User,
                tries_left: 2
            }
        ),
        "{e}"
    );
    assert_eq!(
        s.count(),
        2,
        "whether the PIN is verified (VERIFY without data, no try), then one VERIFY, never retried"
    );
    assert_eq!(s.card.pin_status(PinKind::User).unwrap().tries_left, Some(2));
    assert!(!s.card.pin_verified());
    s.card.verify_pin(&Pin::new(PIN)).unwrap();
    assert!(s.card.pin_verified());
    let st = s.card.pin_status(PinKind::User).unwrap();
    if s.card.generation() == Generation::Cps3 {
        assert_eq!((st.tries_left, st.max_tries), (Some(3), Some(3)));
    } else {
        assert_eq!(st.verified, Some(true));
    }
    let puk = s.card.pin_status(PinKind::Puk).unwrap();
    assert!(!puk.blocked);
    if s.card.generation() == Generation::Cps3 {
        assert_eq!(puk.usage_left, Some(100));
        assert_eq!(puk.max_tries, Some(10));
    }
    let both = s.card.pin_statuses(&[PinKind::User, PinKind::Puk]).unwrap();
    assert_eq!(both.len(), 2);
}

pub fn change_block_unblock(stem: &str) {
    let mut s = Session::open(stem);
    s.card.change_pin(&Pin::new(PIN), &Pin::new("5678")).unwrap();
    s.card.verify_pin(&Pin::new("5678")).unwrap();
    let e = s
        .card
        .change_pin(&Pin::new("0000"), &Pin::new("1111"))
        .unwrap_err();
    assert!(matches!(e, CardError::WrongPin { .. }), "{e}");
    for left in [1, 0] {
        let e = s.card.verify_pin(&Pin::new("0000")).unwrap_err();
        if left == 0 {
            assert!(matches!(e, CardError::PinBlocked { kind: PinKind::User }), "{e}");
        } else {
            assert!(matches!(e, CardError::WrongPin { tries_left: 1, .. }), "{e}");
        }
    }
    assert!(s.card.pin_status(PinKind::User).unwrap().blocked);
    assert!(matches!(
        s.card.verify_pin(&Pin::new("5678")),
        Err(CardError::PinBlocked { .. })
    ));
    let e = s
        .card
        .unblock_pin(&Pin::new("87654321"), &Pin::new(PIN))
        .unwrap_err();
    assert!(
        matches!(
            e,
            CardError::WrongPin {
                kind: PinKind::Puk,
                tries_left: 9
            } | CardError::WrongPin {
                kind: PinKind::Puk,
                ..
            }
        ),
        "{e}"
    );
    s.card.unblock_pin(&Pin::new(PUK), &Pin::new(PIN)).unwrap();
    assert!(!s.card.pin_verified());
    assert_eq!(s.card.pin_status(PinKind::User).unwrap().tries_left, Some(3));
    s.card.verify_pin(&Pin::new(PIN)).unwrap();
    if s.card.generation() == Generation::Cps3 {
        assert_eq!(s.card.pin_status(PinKind::Puk).unwrap().usage_left, Some(99));
    }
}

pub const LENGTHS: [usize; 8] = [0, 1, 55, 63, 64, 65, 1024, 1405];

pub fn sign_everything(stem: &str) {
    let mut s = Session::open(stem);
    let sig_key = public_key(&s.card.certificate(KeyRole::Signature).unwrap().der);
    let auth_key = public_key(&s.card.certificate(KeyRole::Authentication).unwrap().der);
    let e = s
        .card
        .sign(KeyRole::Signature, Mechanism::Pkcs1(HashAlg::Sha256), b"x")
        .unwrap_err();
    assert!(matches!(e, CardError::SecurityStatusNotSatisfied { .. }), "{e}");
    s.card.verify_pin(&Pin::new(PIN)).unwrap();
    for alg in [HashAlg::Sha1, HashAlg::Sha256] {
        for len in LENGTHS {
            let msg: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let sig = s
                .card
                .sign(KeyRole::Signature, Mechanism::Pkcs1(alg), &msg)
                .unwrap();
            verify_pkcs1(&sig_key, alg, &msg, &sig);
            let sig = s
                .card
                .sign(KeyRole::Authentication, Mechanism::Pkcs1(alg), &msg)
                .unwrap();
            verify_pkcs1(&auth_key, alg, &msg, &sig);
        }
        // Precomputed hash, bare and as DigestInfo (docs/card-spec.md §4.2, §4.4).
        let msg = b"precomputed";
        let h = alg.digest(msg);
        for input in [h.clone(), alg.digest_info(&h)] {
            let sig = s
                .card
                .sign(KeyRole::Signature, Mechanism::RsaPkcs, &input)
                .unwrap();
            verify_pkcs1(&sig_key, alg, msg, &sig);
        }
        // CKM_RSA_PKCS on the authentication key: the DigestInfo is padded as is.
        let di = alg.digest_info(&h);
        let sig = s
            .card
            .sign(KeyRole::Authentication, Mechanism::RsaPkcs, &di)
            .unwrap();
        verify_raw_pkcs1(&auth_key, &di, &sig);
    }
    // 35 bytes of 'A' (docs/card-spec.md §6 test input) with the authentication key.
    let sig = s
        .card
        .sign(KeyRole::Authentication, Mechanism::RsaPkcs, &[b'A'; 35])
        .unwrap();
    verify_raw_pkcs1(&auth_key, &[b'A'; 35], &sig);
    let e = s
        .card
        .sign(KeyRole::Signature, Mechanism::RsaPkcs, &[0; 33])
        .unwrap_err();
    assert!(matches!(e, CardError::InvalidInput { .. }), "{e}");
    if s.card.generation() == Generation::Cps3 {
        // docs/card-spec.md §6 row 618: 513 bytes → refused before the card.
        s.take();
        let e = s
            .card
            .sign(KeyRole::Authentication, Mechanism::RsaPkcs, &[b'A'; 513])
            .unwrap_err();
        assert!(matches!(e, CardError::InvalidInput { .. }), "{e}");
        let e = s
            .card
            .sign(KeyRole::Authentication, Mechanism::RsaPkcs, &[b'A'; 103])
            .unwrap_err();
        assert!(matches!(e, CardError::InvalidInput { .. }), "{e}");
        let e = s
            .card
            .sign(KeyRole::Signature, Mechanism::Pss(HashAlg::Sha256), b"x")
            .unwrap_err();
        assert!(matches!(e, CardError::Unsupported { .. }), "{e}");
    } else {
        for key in [KeyRole::Signature, KeyRole::Authentication] {
            let pk = if key == KeyRole::Signature {
                &sig_key
            } else {
                &auth_key
            };
            for alg in [HashAlg::Sha1, HashAlg::Sha256] {
                let sig = s.card.sign(key, Mechanism::Pss(alg), b"pss message").unwrap();
                verify_pss(pk, alg, b"pss message", &sig);
                let sig = s.card.sign(key, Mechanism::PssHash, &alg.digest(b"pss")).unwrap();
                verify_pss(pk, alg, b"pss", &sig);
            }
        }
    }
}

pub fn decrypt(stem: &str) {
    let mut s = Session::open(stem);
    let auth_key = public_key(&s.card.certificate(KeyRole::Authentication).unwrap().der);
    let secret: Vec<u8> = (0..48u8).collect();
    let c = encrypt(&auth_key, &secret);
    let e = s.card.decrypt(KeyRole::Authentication, &c).unwrap_err();
    assert!(matches!(e, CardError::SecurityStatusNotSatisfied { .. }), "{e}");
    s.card.verify_pin(&Pin::new(PIN)).unwrap();
    assert_eq!(
        &s.card.decrypt(KeyRole::Authentication, &c).unwrap()[..],
        &secret[..]
    );
    assert!(matches!(
        s.card.decrypt(KeyRole::Signature, &c),
        Err(CardError::Unsupported { .. })
    ));
    assert!(matches!(
        s.card.decrypt(KeyRole::Authentication, &c[1..]),
        Err(CardError::InvalidInput { .. })
    ));
}

pub fn business_data(stem: &str) {
    let mut s = Session::open(stem);
    let objects = s.card.data_objects().unwrap();
    let find = |l: &str| {
        objects
            .iter()
            .find(|o| o.label == l)
            .unwrap_or_else(|| panic!("{l}"))
    };
    assert!(!find("CPS_NAME_PS").private);
    assert!(find("CPS_ACTIVITY_01_PS").private);
    assert!(find("CPS_SIT_FACT").private);
    let name = s.card.read_data_object("CPS_NAME_PS").unwrap();
    assert_eq!(name[0], 0xEE, "raw BER-TLV value");
    let e = s.card.read_data_object("CPS_ACTIVITY_01_PS").unwrap_err();
    assert!(matches!(e, CardError::SecurityStatusNotSatisfied { .. }), "{e}");
    assert!(matches!(
        s.card.read_data_object("NO_SUCH_OBJECT"),
        Err(CardError::ObjectNotFound(_))
    ));
    s.card.verify_pin(&Pin::new(PIN)).unwrap();
    let act = s.card.read_data_object("CPS_ACTIVITY_01_PS").unwrap();
    assert!(!act.is_empty());
    s.card.read_data_object("CPS_SIT_FACT").unwrap();
    if s.card.generation() == Generation::Cps3 {
        // The CPS2ter twin of a situation (docs/card-spec.md §2.4) has the same content on the emulator.
        let twin = s.card.read_data_object("CPS2TER_ACTIVITY_01_PS").unwrap();
        assert_eq!(twin, act);
        assert!(find("CPS2TER_ACTIVITY_02_PS").private);
        assert!(s.card.ef_actua().unwrap().is_none());
    } else {
        s.take();
        assert!(s.card.ef_actua().unwrap().is_none());
        assert!(
            s.take().is_empty(),
            "no EF_ACTUA traffic on CPS4 (docs/card-spec.md §10.4)"
        );
        let e = objects.iter().find(|o| o.label.starts_with("CPS2TER_"));
        assert!(e.is_some(), "CPS4 carries CPS2TER_* objects itself");
    }
}

pub fn reset_and_reinsertion(stem: &str) {
    let mut s = Session::open(stem);
    s.card.verify_pin(&Pin::new(PIN)).unwrap();
    s.control.reset();
    let e = s
        .card
        .sign(KeyRole::Signature, Mechanism::Pkcs1(HashAlg::Sha256), b"x")
        .unwrap_err();
    assert!(matches!(e, CardError::PinStateLost), "{e}");
    assert!(!s.card.pin_verified());
    // Without a verified PIN a reset is transparent for reads.
    s.control.reset();
    assert_eq!(s.card.certificates().unwrap().len(), 2);
    s.card.verify_pin(&Pin::new(PIN)).unwrap();
    s.card
        .sign(KeyRole::Signature, Mechanism::Pkcs1(HashAlg::Sha256), b"x")
        .unwrap();

    // Removal: precise error; same card back: PIN state lost, then usable.
    s.control.remove();
    let e = s
        .card
        .sign(KeyRole::Signature, Mechanism::Pkcs1(HashAlg::Sha256), b"x")
        .unwrap_err();
    assert!(matches!(e, CardError::CardRemoved { .. }), "{e}");
    s.control.insert();
    let e = s
        .card
        .sign(KeyRole::Signature, Mechanism::Pkcs1(HashAlg::Sha256), b"x")
        .unwrap_err();
    assert!(matches!(e, CardError::PinStateLost), "{e}");
    s.card.verify_pin(&Pin::new(PIN)).unwrap();
    s.card
        .sign(KeyRole::Signature, Mechanism::Pkcs1(HashAlg::Sha256), b"x")
        .unwrap();
}

pub fn different_card(stem: &str, other: &str) {
    let mut s = Session::open(stem);
    s.card.certificates().unwrap();
    s.control.remove();
    *s.slot.lock().unwrap() = emulated(other);
    s.control.insert();
    let e = s.card.certificates().unwrap_err();
    assert!(matches!(e, CardError::DifferentCard { .. }), "{e}");
    // And from then on, whatever the call.
    assert!(matches!(
        s.card.pin_status(PinKind::User),
        Err(CardError::DifferentCard { .. })
    ));
    assert!(matches!(s.card.reconnect(), Err(CardError::DifferentCard { .. })));
}
