//! The module's use of the card-layer additions, through `cryptoki`, pcscd and vpcd, with a
//! recording wrapper around the emulated card: CPS_DATA write (C_SetAttributeValue), C_Logout
//! that resets the card's PIN state, unblock without a second PUK VERIFY, C_GenerateRandom from
//! GET CHALLENGE, keys from the PrKDF with certificates read lazily, data sizes from the FCI,
//! PIN lengths from the AODF.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::process::ExitCode;

use common::*;
use cpx_testkit::{Failed, ReaderLease, Recorder, Recording, SharedCard, Trial, insert_card};
use cpx_vpcd::CardSlot;
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeInfo, AttributeType, ObjectClass};
use cryptoki::session::UserType;
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;

fn main() -> ExitCode {
    cpx_testkit::run_tests(&common::sandbox(4), || {
        vec![
            Trial::test("cps3_cps_data_write_and_errors", cps3_cps_data),
            Trial::test("cps4_cps_data_is_not_modifiable", cps4_cps_data),
            Trial::test("cps3_logout_resets_the_card", || logout("cps3-doctor")),
            Trial::test("cps4_logout_resets_the_card", || logout("cps4-doctor")),
            Trial::test("cps3_unblock_sends_the_puk_once", || unblock("cps3-doctor", 1)),
            Trial::test("cps4_unblock_sends_the_puk_once", || unblock("cps4-doctor", 2)),
            Trial::test("cps3_random_from_the_card", || random("cps3-doctor")),
            Trial::test("cps4_random_from_the_card", || random("cps4-doctor")),
            Trial::test("cps3_keys_from_prkdf_certificates_lazy", || lazy("cps3-doctor")),
            Trial::test("cps4_keys_from_prkdf_certificates_lazy", || lazy("cps4-doctor")),
        ]
    })
}

struct Rig {
    _lease: ReaderLease,
    _card: CardSlot,
    slot: Slot,
    wire: Recording,
    inner: SharedCard,
}

impl Rig {
    fn new(stem: &str) -> Result<Rig, Failed> {
        // The inner card stays reachable for direct commands ("another program" asking the
        // card about its own state).
        let (rec, wire, inner) = Recorder::swappable(cpx_testkit::emulated(stem)?);
        let (lease, card) = insert_card(Box::new(rec))?;
        let slot = slot_of(pkcs11()?, &lease.name)?;
        Ok(Rig {
            _lease: lease,
            _card: card,
            slot,
            wire,
            inner,
        })
    }

    /// The APDUs since the last call.
    fn take(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.wire.take()
    }

    /// Send APDUs straight to the card (not through the module), their SWs.
    fn direct(&self, apdus: &[&[u8]]) -> Vec<u16> {
        let mut c = self.inner.lock().unwrap();
        apdus.iter().map(|a| sw(&c.transmit(a))).collect()
    }
}

fn sw(r: &[u8]) -> u16 {
    u16::from_be_bytes([r[r.len() - 2], r[r.len() - 1]])
}

fn ins(wire: &[(Vec<u8>, Vec<u8>)], ins: u8) -> usize {
    wire.iter().filter(|(c, _)| c[1] == ins).count()
}

fn pin(p: &str) -> AuthPin {
    AuthPin::from(p)
}

fn value(s: &cryptoki::session::Session, o: cryptoki::object::ObjectHandle) -> Result<Vec<u8>, Failed> {
    bytes_attr(s, o, AttributeType::Value)
}

fn cps3_cps_data() -> Result<(), Failed> {
    let rig = Rig::new("cps3-doctor")?;
    let p11 = pkcs11()?;
    let ro = p11.open_ro_session(rig.slot)?;
    let data = find_one(&ro, ObjectClass::DATA, "CPS_DATA")?;
    assert!(
        ro.get_attributes(data, &[AttributeType::Modifiable])?
            .contains(&Attribute::Modifiable(true))
    );
    // A size query answers from the FCP: no READ BINARY.
    rig.take();
    let info = ro.get_attribute_info(data, &[AttributeType::Value])?;
    let wire = rig.take();
    let AttributeInfo::Available(size) = info[0] else {
        return Err(format!("size query: {info:?}").into());
    };
    assert_eq!(size, 128, "the emulator's CPS_DATA file");
    assert_eq!(ins(&wire, 0xB0), 0, "size without reading: {wire:?}");
    assert!(ins(&wire, 0xA4) >= 1);
    assert!(
        ro.get_attributes(data, &[AttributeType::ValueLen])?
            .contains(&Attribute::ValueLen((size as u64).into()))
    );
    assert_eq!(ins(&rig.take(), 0xA4), 0, "the size is cached");
    let before = value(&ro, data)?;
    assert_eq!(before.len(), size);
    // Errors.
    let new = |base: &[u8]| -> Vec<u8> {
        base.iter()
            .enumerate()
            .map(|(i, b)| b.wrapping_add(i as u8))
            .collect()
    };
    expect_rv(
        ro.update_attributes(data, &[Attribute::Value(new(&before))]),
        RvError::SessionReadOnly,
        "RO session",
    )?;
    let rw = p11.open_rw_session(rig.slot)?;
    expect_rv(
        rw.update_attributes(data, &[Attribute::Label(b"x".to_vec())]),
        RvError::AttributeReadOnly,
        "CKA_LABEL",
    )?;
    let name = find_one(&rw, ObjectClass::DATA, "CPS_NAME_PS")?;
    expect_rv(
        rw.update_attributes(name, &[Attribute::Value(b"x".to_vec())]),
        RvError::AttributeReadOnly,
        "not modifiable",
    )?;
    rig.take();
    expect_rv(
        rw.update_attributes(data, &[Attribute::Value(new(&before))]),
        RvError::UserNotLoggedIn,
        "no PIN",
    )?;
    assert_eq!(ins(&rig.take(), 0xD6), 0, "nothing written without the PIN");
    rw.login(UserType::User, Some(&pin("1234")))?;
    expect_rv(
        rw.update_attributes(data, &[Attribute::Value(vec![7; size + 1])]),
        RvError::AttributeValueInvalid,
        "longer than the file",
    )?;
    assert_eq!(ins(&rig.take(), 0xD6), 0, "nothing written when too long");
    // The conformance 900 block: value + i, read back, compare.
    let written = new(&before);
    rw.update_attributes(data, &[Attribute::Value(written.clone())])?;
    let wire = rig.take();
    assert_eq!(ins(&wire, 0xD6), 1, "one UPDATE BINARY of 128 bytes: {wire:?}");
    assert_eq!(value(&rw, data)?, written);
    assert_eq!(value(&ro, data)?, written, "seen by every session");
    // Shorter: zero-padded to the file size.
    rw.update_attributes(data, &[Attribute::Value(b"cpx".to_vec())])?;
    let back = value(&rw, data)?;
    assert_eq!(back.len(), size);
    assert!(back.starts_with(b"cpx") && back[3..].iter().all(|b| *b == 0));
    // Put the original back.
    rw.update_attributes(data, &[Attribute::Value(before.clone())])?;
    assert_eq!(value(&rw, data)?, before);
    Ok(())
}

fn cps4_cps_data() -> Result<(), Failed> {
    let rig = Rig::new("cps4-doctor")?;
    let p11 = pkcs11()?;
    let rw = p11.open_rw_session(rig.slot)?;
    rw.login(UserType::User, Some(&pin("1234")))?;
    let data = find_one(&rw, ObjectClass::DATA, "CPS_DATA")?;
    // docs/card-spec.md §6.1: the CPS4 DODF does not flag CPS_DATA modifiable.
    assert!(
        rw.get_attributes(data, &[AttributeType::Modifiable])?
            .contains(&Attribute::Modifiable(false))
    );
    rig.take();
    expect_rv(
        rw.update_attributes(data, &[Attribute::Value(b"x".to_vec())]),
        RvError::AttributeReadOnly,
        "CPS4 CPS_DATA",
    )?;
    assert!(rig.take().is_empty(), "refused without an APDU");
    // Its size still comes from the FCI.
    let info = rw.get_attribute_info(data, &[AttributeType::Value])?;
    assert!(
        matches!(info[0], AttributeInfo::Available(n) if n > 0),
        "{info:?}"
    );
    assert_eq!(ins(&rig.take(), 0xB0), 0);
    Ok(())
}

/// DigestInfo(SHA-256) of "logout".
fn di() -> Vec<u8> {
    use sha2::Digest;
    let mut v = vec![
        0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00,
        0x04, 0x20,
    ];
    v.extend_from_slice(&sha2::Sha256::digest(b"logout"));
    v
}

fn logout(stem: &str) -> Result<(), Failed> {
    let rig = Rig::new(stem)?;
    let p11 = pkcs11()?;
    let s = p11.open_ro_session(rig.slot)?;
    s.login(UserType::User, Some(&pin("1234")))?;
    let key = find_one(&s, ObjectClass::PRIVATE_KEY, "CPS_PRIV_SIG")?;
    s.sign(&Mechanism::Sha256RsaPkcs, key, b"before")?;
    rig.take();
    s.logout()?;
    let wire = rig.take();
    assert_eq!(wire.len(), 1, "{stem}: {wire:?}");
    assert_eq!(
        wire[0].0[1..4],
        [0x20, 0xFF, 0x01],
        "{stem}: VERIFY P1=FF of the PIN"
    );
    assert_eq!(sw(&wire[0].1), 0x9000);
    // The module refuses (the handle was kept across the logout)…
    expect_rv(
        s.sign(&Mechanism::Sha256RsaPkcs, key, b"after"),
        RvError::UserNotLoggedIn,
        "sign after logout",
    )?;
    // …and so does the card itself, asked directly.
    let sws = if stem.starts_with("cps4") {
        rig.direct(&[&[0x01, 0x20, 0x00, 0x01]])
    } else {
        let mut ia = vec![0x00, 0x88, 0x00, 0x00, 0x33];
        ia.extend(di());
        rig.direct(&[
            &[0x00, 0xA4, 0x09, 0x0C, 0x04, 0x3F, 0x00, 0x00, 0x01],
            &[0x00, 0x22, 0x41, 0xA4, 0x06, 0x80, 0x01, 0x02, 0x84, 0x01, 0x82],
            &ia,
        ])
    };
    let last = *sws.last().unwrap();
    if stem.starts_with("cps4") {
        assert_eq!(last, 0x63C3, "{stem}: the PIN is no longer verified on the card");
    } else {
        assert_eq!(
            last, 0x6982,
            "{stem}: INTERNAL AUTHENTICATE refused by the card: {sws:04X?}"
        );
    }
    // Logging in again works.
    s.login(UserType::User, Some(&pin("1234")))?;
    s.sign(&Mechanism::Sha256RsaPkcs, key, b"again")?;
    // Closing the last session logs the card out too.
    rig.take();
    drop(s);
    let wire = rig.take();
    assert_eq!(wire.len(), 1, "{stem}: {wire:?}");
    assert_eq!(wire[0].0[1..4], [0x20, 0xFF, 0x01]);
    Ok(())
}

fn unblock(stem: &str, rrc_apdus: usize) -> Result<(), Failed> {
    let rig = Rig::new(stem)?;
    let p11 = pkcs11()?;
    let rw = p11.open_rw_session(rig.slot)?;
    for _ in 0..3 {
        let _ = rw.login(UserType::User, Some(&pin("0000")));
    }
    assert!(p11.get_token_info(rig.slot)?.user_pin_locked());
    rig.take();
    rw.login(UserType::So, Some(&pin("12345678")))?;
    let login = rig.take();
    assert_eq!(
        login.iter().filter(|(c, _)| c[1] == 0x20 && c.len() > 5).count(),
        1,
        "{stem}: one PUK VERIFY at C_Login(SO): {login:?}"
    );
    rw.init_pin(&pin("1234"))?;
    let init = rig.take();
    assert_eq!(init.len(), rrc_apdus, "{stem}: C_InitPIN APDUs: {init:?}");
    assert!(
        init.iter().all(|(c, _)| c[1] != 0x20),
        "{stem}: no second PUK VERIFY"
    );
    rw.logout()?;
    let out = rig.take();
    assert_eq!(
        out.iter().map(|(c, _)| c[1..4].to_vec()).collect::<Vec<_>>(),
        vec![vec![0x20, 0xFF, 0x01], vec![0x20, 0xFF, 0x02]],
        "{stem}: C_Logout resets the PIN and the PUK"
    );
    // The PUK is no longer verified on the card: C_InitPIN needs C_Login(SO) again.
    expect_rv(
        rw.init_pin(&pin("1234")),
        RvError::UserNotLoggedIn,
        "InitPIN after logout",
    )?;
    assert!(!p11.get_token_info(rig.slot)?.user_pin_locked());
    rw.login(UserType::User, Some(&pin("1234")))?;
    Ok(())
}

fn random(stem: &str) -> Result<(), Failed> {
    let rig = Rig::new(stem)?;
    let p11 = pkcs11()?;
    assert!(p11.get_token_info(rig.slot)?.rng(), "CKF_RNG");
    let s = p11.open_ro_session(rig.slot)?;
    rig.take();
    let r = s.generate_random_vec(20)?;
    let wire = rig.take();
    assert_eq!(wire.len(), 3, "{stem}: three GET CHALLENGE: {wire:?}");
    assert!(wire.iter().all(|(c, _)| c[1..] == [0x84, 0x00, 0x00, 0x08]));
    let from_card: Vec<u8> = wire.iter().flat_map(|(_, r)| r[..8].to_vec()).collect();
    assert_eq!(r, from_card[..20], "{stem}: the card's bytes");
    let again = s.generate_random_vec(20)?;
    assert_ne!(r, again);
    rig.take();
    let mut empty = [0u8; 0];
    s.generate_random_slice(&mut empty)?;
    assert!(rig.take().is_empty());
    Ok(())
}

fn lazy(stem: &str) -> Result<(), Failed> {
    let rig = Rig::new(stem)?;
    let p11 = pkcs11()?;
    let ti = p11.get_token_info(rig.slot)?;
    // PIN lengths from the AODF: the real CPS3 PIN is exactly 4 digits.
    if stem.starts_with("cps3") {
        assert_eq!((ti.min_pin_length(), ti.max_pin_length()), (4, 4));
    } else {
        assert!(ti.min_pin_length() >= 4 && ti.min_pin_length() <= ti.max_pin_length());
    }
    let s = p11.open_ro_session(rig.slot)?;
    s.login(UserType::User, Some(&pin("1234")))?;
    rig.take();
    let keys = s.find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY)])?;
    let mut labels = Vec::new();
    for k in &keys {
        for a in s.get_attributes(*k, &[AttributeType::Label, AttributeType::ModulusBits])? {
            match a {
                Attribute::Label(l) => labels.push(String::from_utf8(l)?),
                Attribute::ModulusBits(b) => assert_eq!(u64::from(b), 2048),
                _ => {}
            }
        }
    }
    labels.sort();
    assert_eq!(labels, ["CPS_PRIV_AUT", "CPS_PRIV_SIG"], "{stem}: PrKDF labels");
    let certs = s.find_objects(&[Attribute::Class(ObjectClass::CERTIFICATE)])?;
    assert!(certs.len() >= 2);
    let listing = rig.take();
    // Certificates are at least 1 KiB: listing read the directories only.
    let read: usize = listing
        .iter()
        .filter(|(c, _)| c[1] == 0xB0 || c[1] == 0xC0)
        .map(|(_, r)| r.len() - 2)
        .sum();
    assert!(
        read < 1500,
        "{stem}: {read} bytes read to list keys and certificates"
    );
    // CKA_VALUE reads one certificate.
    let sig_cert = find_one(&s, ObjectClass::CERTIFICATE, "Certificat de Signature CPS")?;
    rig.take();
    let der = value(&s, sig_cert)?;
    let wire = rig.take();
    let read: usize = wire
        .iter()
        .filter(|(c, _)| c[1] == 0xB0 || c[1] == 0xC0)
        .map(|(_, r)| r.len() - 2)
        .sum();
    assert!(read >= der.len(), "{stem}: the certificate was read now");
    // The key of that certificate is filled from it, without reading it again.
    let key = find_one(&s, ObjectClass::PRIVATE_KEY, "CPS_PRIV_SIG")?;
    let modulus = bytes_attr(&s, key, AttributeType::Modulus)?;
    assert_eq!(modulus.len(), 256);
    assert!(
        rig.take().iter().all(|(c, _)| c[1] != 0xB0),
        "{stem}: no second read"
    );
    let sig = s.sign(&Mechanism::Sha256RsaPkcs, key, b"lazy")?;
    use rsa::Pkcs1v15Sign;
    use sha2::Digest;
    cert_key(&der)
        .verify(
            Pkcs1v15Sign::new::<sha2::Sha256>(),
            &sha2::Sha256::digest(b"lazy"),
            &sig,
        )
        .map_err(|e| e.to_string())?;
    Ok(())
}
