//! The card-layer additions used by the PKCS#11 module, against the emulated CPS3 and CPS4
//! (in-process): PrKDF and CDF listings, PIN policy, logout, unblock with a verified PUK, GET
//! CHALLENGE, data object size and write.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use cpx_card::{CardError, HashAlg, KeyRole, Mechanism, Pin, PinKind};

const CARDS: [&str; 2] = ["cps3-doctor", "cps4-doctor"];

/// A session whose opening APDUs are already taken off the wire.
fn fresh(stem: &str) -> Session {
    let s = Session::open(stem);
    s.take();
    s
}

fn sw(r: &[u8]) -> u16 {
    u16::from_be_bytes([r[r.len() - 2], r[r.len() - 1]])
}

#[test]
fn private_keys_come_from_the_prkdf() {
    // The key references the commands send for them (81/82 on a CPS3, 01/20 on a CPS4) are
    // checked on the wire by the golden transcripts (test-vectors/transcripts/*-sign-*,
    // *-authenticate*, *-decrypt).
    for stem in ["cps3-doctor", "cps4-doctor"] {
        let mut s = fresh(stem);
        let keys = s.card.private_keys().unwrap();
        // ODF + PrKDF only: no certificate read.
        assert!(
            s.take()
                .iter()
                .all(|(c, _)| !hex(c).contains("A0 01") && !hex(c).contains("A0 02")),
            "{stem}: a certificate was read"
        );
        let sig = keys.iter().find(|k| k.role == KeyRole::Signature).unwrap();
        let aut = keys.iter().find(|k| k.role == KeyRole::Authentication).unwrap();
        assert_eq!(sig.label, "CPS_PRIV_SIG", "{stem}");
        assert_eq!(aut.label, "CPS_PRIV_AUT", "{stem}");
        assert!(sig.private && aut.private);
        assert_eq!((sig.modulus_bits, aut.modulus_bits), (2048, 2048));
        let certs = s.card.certificates().unwrap();
        for k in [sig, aut] {
            assert!(
                certs.iter().any(|c| c.id == k.id && !c.authority),
                "{stem} {}",
                k.label
            );
        }
    }
    let mut cl = fresh("cps3-contactless");
    let keys = cl.card.private_keys().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].label, "CPS_PRIV_TECH_AUT");
    assert!(
        !keys[0].private,
        "the technical key is public (docs/card-spec.md §5.3)"
    );
}

#[test]
fn certificate_listing_without_the_values() {
    for stem in CARDS {
        let mut s = fresh(stem);
        let infos = s.card.certificate_infos().unwrap();
        let listing = s.take().len();
        assert!(listing <= 8, "{stem}: {listing} APDUs to list the CDF");
        assert!(infos.len() >= 2);
        let all = s.card.certificates().unwrap();
        s.take();
        for (info, full) in infos.iter().zip(&all) {
            let one = s.card.read_certificate(info).unwrap();
            assert_eq!(&one, full, "{stem}");
            // The listing entry alone names it: the same certificate, the same APDUs.
            let listed = cpx_card::Certificate::listed(info);
            assert!(listed.der.is_empty() && (&listed.label, &listed.id) == (&full.label, &full.id));
            let sent = s.take();
            assert_eq!(
                s.card.read_listed_certificate(&listed).unwrap().as_ref(),
                Some(full),
                "{stem}"
            );
            assert_eq!(s.take(), sent, "{stem}");
        }
        let unknown = cpx_card::Certificate {
            label: "not on the card".into(),
            ..cpx_card::Certificate::listed(&infos[0])
        };
        assert_eq!(s.card.read_listed_certificate(&unknown).unwrap(), None, "{stem}");
        // The listing is cached: no APDU.
        s.take();
        s.card.certificate_infos().unwrap();
        assert_eq!(s.count(), 0);
    }
}

#[test]
fn pin_policy_from_the_aodf() {
    let mut s = fresh("cps3-doctor");
    let pin = s.card.pin_policy(PinKind::User).unwrap();
    // The real CPS3 AODF (docs/card-spec.md §3.1): 4 digits, stored on 8, padded with FF.
    assert_eq!(
        (pin.min_len, pin.max_len, pin.stored_len, pin.reference),
        (4, 4, 8, 1)
    );
    let puk = s.card.pin_policy(PinKind::Puk).unwrap();
    assert_eq!(puk.reference, 2);
    let mut s = fresh("cps4-doctor");
    let pin = s.card.pin_policy(PinKind::User).unwrap();
    assert!(pin.min_len >= 4 && pin.min_len <= pin.max_len);
    assert_eq!(pin.reference, 1);
    let mut cl = fresh("cps3-contactless");
    assert!(matches!(
        cl.card.pin_policy(PinKind::User),
        Err(CardError::NoSuchPin(PinKind::User))
    ));
}

#[test]
fn logout_drops_the_verified_state_on_the_card() {
    for stem in CARDS {
        let mut s = fresh(stem);
        s.card.verify_pin(&Pin::new("1234")).unwrap();
        s.card
            .sign(KeyRole::Signature, Mechanism::Pkcs1(HashAlg::Sha256), b"before")
            .unwrap();
        s.take();
        s.card.logout().unwrap();
        let wire = s.take();
        // One VERIFY P1=FF for the PIN (the PUK was not verified), accepted.
        assert_eq!(wire.len(), 1, "{stem}: {wire:?}");
        assert_eq!(wire[0].0[1..4], [0x20, 0xFF, 0x01], "{stem}");
        assert_eq!(sw(&wire[0].1), 0x9000);
        assert!(!s.card.pin_verified());
        let r = s
            .card
            .sign(KeyRole::Signature, Mechanism::Pkcs1(HashAlg::Sha256), b"after");
        assert!(
            matches!(r, Err(CardError::SecurityStatusNotSatisfied { .. })),
            "{stem}: {r:?}"
        );
        let wire = s.take();
        assert_eq!(
            sw(&wire.last().unwrap().1),
            0x6982,
            "{stem}: the card itself refuses"
        );
        // The PIN status agrees.
        if stem.starts_with("cps4") {
            assert_eq!(s.card.pin_status(PinKind::User).unwrap().verified, Some(false));
        }
        // Logging in again works.
        s.card.verify_pin(&Pin::new("1234")).unwrap();
        s.card
            .sign(KeyRole::Signature, Mechanism::Pkcs1(HashAlg::Sha256), b"again")
            .unwrap();
    }
}

#[test]
fn logout_also_resets_a_verified_puk() {
    for stem in CARDS {
        let mut s = fresh(stem);
        s.card.verify(PinKind::Puk, &Pin::new("12345678")).unwrap();
        assert!(s.card.puk_verified());
        s.take();
        s.card.logout().unwrap();
        let wire = s.take();
        assert_eq!(wire.len(), 2, "{stem}");
        assert_eq!(wire[1].0[1..4], [0x20, 0xFF, 0x02], "{stem}");
        assert!(!s.card.puk_verified());
        // The unblock that needs the verified PUK is now refused by the card.
        let r = s.card.unblock_pin_after_puk(&Pin::new("1234"));
        assert!(
            matches!(r, Err(CardError::SecurityStatusNotSatisfied { .. })),
            "{stem}: {r:?}"
        );
    }
}

/// Found by the pin_model fuzz target (docs/fuzzing.md): after an unblock (or a PUK VERIFY) the
/// PUK is verified on the card; a malformed PUK VERIFY, refused before any APDU, made the card
/// layer forget that, and logout then left the PUK verified for any program to use.
#[test]
fn a_refused_puk_verify_does_not_keep_logout_from_resetting_the_puk() {
    for stem in CARDS {
        for unblock in [false, true] {
            let mut s = fresh(stem);
            if unblock {
                s.card
                    .unblock_pin(&Pin::new("12345678"), &Pin::new("1234"))
                    .unwrap();
            } else {
                s.card.verify(PinKind::Puk, &Pin::new("12345678")).unwrap();
            }
            let r = s.card.verify(PinKind::Puk, &Pin::new("1234"));
            assert!(matches!(r, Err(CardError::PinFormat { .. })), "{stem}: {r:?}");
            s.card.logout().unwrap();
            assert!(!s.card.puk_verified());
            // The card itself no longer has the PUK verified.
            let r = s.card.unblock_pin_after_puk(&Pin::new("1234"));
            assert!(
                matches!(r, Err(CardError::SecurityStatusNotSatisfied { .. })),
                "{stem}, unblock first: {unblock}: {r:?}"
            );
        }
    }
}

#[test]
fn contactless_logout_sends_nothing() {
    let mut cl = fresh("cps3-contactless");
    cl.card.logout().unwrap();
    assert_eq!(cl.count(), 0);
}

#[test]
fn unblock_after_a_puk_verify_sends_the_puk_once() {
    for (stem, apdus) in [("cps3-doctor", 1), ("cps4-doctor", 2)] {
        let mut s = fresh(stem);
        for _ in 0..3 {
            let _ = s.card.verify_pin(&Pin::new("0000"));
        }
        assert!(s.card.pin_status(PinKind::User).unwrap().blocked, "{stem}");
        s.card.verify(PinKind::Puk, &Pin::new("12345678")).unwrap();
        s.take();
        // A bad new PIN is refused before any APDU.
        assert!(matches!(
            s.card.unblock_pin_after_puk(&Pin::new("12")),
            Err(CardError::PinFormat { .. })
        ));
        assert_eq!(s.count(), 0);
        s.card.unblock_pin_after_puk(&Pin::new("4321")).unwrap();
        let wire = s.take();
        assert_eq!(wire.len(), apdus, "{stem}: {wire:?}");
        assert!(
            wire.iter().all(|(c, _)| c[1] != 0x20),
            "{stem}: no VERIFY of the PUK again"
        );
        s.card.verify_pin(&Pin::new("4321")).unwrap();
        s.card.change_pin(&Pin::new("4321"), &Pin::new("1234")).unwrap();
    }
}

#[test]
fn get_challenge_gives_card_bytes() {
    for stem in CARDS.into_iter().chain(["cps3-contactless"]) {
        let mut s = fresh(stem);
        let a = s.card.get_challenge().unwrap();
        let wire = s.take();
        assert_eq!(wire.len(), 1);
        assert_eq!(wire[0].0[1..], [0x84, 0x00, 0x00, 0x08], "{stem}");
        assert_eq!(&wire[0].1[..8], &a, "{stem}: the card's bytes");
        let b = s.card.get_challenge().unwrap();
        assert_ne!(a, b);
        s.take();
        let r = s.card.random_bytes(20).unwrap();
        let wire = s.take();
        assert_eq!((r.len(), wire.len()), (20, 3), "{stem}");
        let from_card: Vec<u8> = wire.iter().flat_map(|(_, r)| r[..8].to_vec()).collect();
        assert_eq!(&from_card[..20], &r[..]);
        assert!(s.card.random_bytes(0).unwrap().is_empty());
        assert_eq!(s.count(), 0);
    }
}

#[test]
fn data_object_size_without_reading_it() {
    for stem in CARDS {
        let mut s = fresh(stem);
        s.card.data_objects().unwrap();
        s.take();
        let size = s.card.data_object_size("CPS_DATA").unwrap();
        let wire = s.take();
        assert!(wire.iter().all(|(c, _)| c[1] != 0xB0), "{stem}: no READ BINARY");
        assert_eq!(size, s.card.read_data_object("CPS_DATA").unwrap().len());
        let name = s.card.read_data_object("CPS_NAME_PS").unwrap();
        assert_eq!(s.card.data_object_size("CPS_NAME_PS").unwrap(), name.len());
    }
    // A CPS2ter object of the CPS3 (FCI 85), after the PIN.
    let mut s = fresh("cps3-doctor");
    s.card.verify_pin(&Pin::new("1234")).unwrap();
    let v = s.card.read_data_object("CPS_SIT_FACT").unwrap();
    assert_eq!(s.card.data_object_size("CPS_SIT_FACT").unwrap(), v.len());
    assert!(matches!(
        s.card.data_object_size("NO_SUCH"),
        Err(CardError::ObjectNotFound(_))
    ));
}

#[test]
fn cps_data_write_and_read_back() {
    for stem in CARDS {
        let mut s = fresh(stem);
        // CPS3: modifiable, protected by the PIN (authId 01); the CPS4 DODF leaves CPS_DATA
        // unflagged (docs/card-spec.md §6.1), though the card still wants the PIN for UPDATE BINARY.
        assert_eq!(
            s.card.data_object_write_needs_pin("CPS_DATA").unwrap(),
            stem == "cps3-doctor"
        );
        assert!(!s.card.data_object_write_needs_pin("CPS_NAME_PS").unwrap());
        let size = s.card.data_object_size("CPS_DATA").unwrap();
        // Without the PIN the card refuses.
        let r = s.card.write_data_object("CPS_DATA", b"no pin");
        assert!(
            matches!(r, Err(CardError::SecurityStatusNotSatisfied { .. })),
            "{stem}: {r:?}"
        );
        assert_eq!(sw(&s.take().last().unwrap().1), 0x6982);
        s.card.verify_pin(&Pin::new("1234")).unwrap();
        // Too long: refused before any UPDATE BINARY.
        s.take();
        let r = s.card.write_data_object("CPS_DATA", &vec![1; size + 1]);
        assert!(matches!(r, Err(CardError::InvalidInput { .. })), "{stem}: {r:?}");
        assert!(s.take().iter().all(|(c, _)| c[1] != 0xD6));
        // Shorter: zero-padded to the file size.
        s.card.write_data_object("CPS_DATA", b"hello CPS").unwrap();
        let wire = s.take();
        let updates: Vec<_> = wire.iter().filter(|(c, _)| c[1] == 0xD6).collect();
        assert_eq!(updates.len(), size.div_ceil(255), "{stem}");
        let back = s.card.read_data_object("CPS_DATA").unwrap();
        assert_eq!(back.len(), size);
        assert!(back.starts_with(b"hello CPS"));
        assert!(back[9..].iter().all(|b| *b == 0));
        // Exactly the file size.
        let full: Vec<u8> = (0..size).map(|i| i as u8).collect();
        s.card.write_data_object("CPS_DATA", &full).unwrap();
        assert_eq!(s.card.read_data_object("CPS_DATA").unwrap(), full);
        // Read-only objects: the card refuses (CPS_NAME_PS), CPS2ter is never written.
        assert!(s.card.write_data_object("CPS_NAME_PS", b"x").is_err());
        if stem == "cps3-doctor" {
            assert!(matches!(
                s.card.write_data_object("CPS_SIT_FACT", b"x"),
                Err(CardError::Unsupported { .. })
            ));
        }
    }
}

#[test]
fn logout_falls_back_to_a_card_reset() {
    for stem in CARDS {
        // A card that refuses VERIFY P1=FF (`6B00`), as a card without the ISO "logout" form
        // would; the recording counts its resets.
        let (card, wire) = Recorder::new(emulated(stem));
        let card = card.answering(|apdu| {
            (apdu.len() >= 3 && apdu[1] == 0x20 && apdu[2] == 0xFF).then(|| vec![0x6B, 0x00])
        });
        let (channel, _control) =
            cpx_transport_virtual::VirtualChannel::new(format!("virtual {stem}"), Box::new(card));
        let mut card = cpx_card::Card::open(Box::new(channel)).unwrap();
        card.verify_pin(&Pin::new("1234")).unwrap();
        card.sign(KeyRole::Signature, Mechanism::Pkcs1(HashAlg::Sha256), b"x")
            .unwrap();
        let before = wire.resets();
        card.logout().unwrap();
        assert_eq!(wire.resets(), before + 1, "{stem}: reset");
        assert!(!card.pin_verified());
        let r = card.sign(KeyRole::Signature, Mechanism::Pkcs1(HashAlg::Sha256), b"x");
        assert!(
            matches!(r, Err(CardError::SecurityStatusNotSatisfied { .. })),
            "{stem}: {r:?}"
        );
        // The session goes on after the reset (re-attached, same serial).
        card.verify_pin(&Pin::new("1234")).unwrap();
        card.sign(KeyRole::Signature, Mechanism::Pkcs1(HashAlg::Sha256), b"x")
            .unwrap();
    }
}

#[test]
fn pin_pad_entry_is_refused_before_any_apdu() {
    use cpx_card::PinEntry;
    for stem in CARDS {
        let mut s = fresh(stem);
        let host = PinEntry::from(Pin::new("1234"));
        let pad = PinEntry::PinPad;
        // A reader without a pad (this transport has no part 10 feature).
        assert_eq!(s.card.pin_pad().unwrap(), None, "{stem}");
        let refused = [
            s.card.verify_entry(PinKind::User, &pad),
            s.card.verify_entry(PinKind::Puk, &pad),
            s.card.change_pin_entry(&pad, &pad),
            s.card.unblock_pin_entry(&pad, &pad),
            s.card.unblock_pin_after_puk_entry(&pad),
        ];
        for r in refused {
            assert!(
                matches!(r, Err(CardError::PinPadUnsupported { .. })),
                "{stem}: {r:?}"
            );
        }
        // A host/pad pair is refused as such, whatever the reader.
        for r in [
            s.card.change_pin_entry(&host, &pad),
            s.card.change_pin_entry(&pad, &host),
            s.card.unblock_pin_entry(&pad, &host),
        ] {
            assert!(matches!(r, Err(CardError::InvalidInput { .. })), "{stem}: {r:?}");
        }
        assert_eq!(s.count(), 0, "{stem}: the PIN pad path sent APDUs");
        assert!(!s.card.pin_verified());
        // The counter is untouched, and a code typed on the host still works.
        assert!(!s.card.pin_status(PinKind::User).unwrap().blocked);
        s.card.verify_entry(PinKind::User, &host).unwrap();
        assert!(s.card.pin_verified());
    }
}

/// `Card::probe_file` (for `cpx report`): SELECT with FCP/FCI and READ BINARY only, the card's
/// answers returned as they are (a missing file is a result, not an error).
#[test]
fn probes_select_and_read_only() {
    use cpx_card::ProbeBase;
    for stem in CARDS {
        let mut s = fresh(stem);
        // EF.SN.ICC (docs/card-spec.md §1.3): selected with its FCP, 12 bytes read with Le 256.
        let p = s
            .card
            .probe_file(ProbeBase::Mf, &[0x3F, 0x00, 0xD0, 0x03], Some(256))
            .unwrap();
        assert_eq!(p.select_sw, 0x9000, "{stem}");
        assert!(!p.fcp.is_empty(), "{stem}: no FCP/FCI");
        let (read_sw, data) = p.read.unwrap();
        assert!(matches!(read_sw, 0x9000 | 0x6282), "{stem}: {read_sw:04X}");
        assert_eq!(data.len(), 12, "{stem}");
        // A file id the emulator does not have, in the application: 6A82, nothing read.
        let p = s
            .card
            .probe_file(ProbeBase::Application, &[0x70, 0x08], Some(256))
            .unwrap();
        assert_eq!((p.select_sw, p.read), (0x6A82, None), "{stem}");
        assert!(
            p.path.starts_with(&[0x3F, 0x00]) && p.path.ends_with(&[0x70, 0x08]),
            "{stem}"
        );
        for (command, _) in s.take() {
            assert!(matches!(command[1], 0xA4 | 0xB0 | 0xC0), "{stem}: {command:02X?}");
        }
        // The card layer goes on as before.
        s.card.certificates().unwrap();
    }
}
