//! The CPS3 through its contactless interface (docs/card-spec.md §7): no PIN, technical key only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use cpx_card::{CardError, Generation, HashAlg, Interface, KeyRole, Mechanism, Pin, PinKind};

const STEM: &str = "cps3-contactless";

#[test]
fn identify() {
    let s = Session::open(STEM);
    assert_eq!(s.card.generation(), Generation::Cps3);
    assert_eq!(s.card.interface(), Interface::Contactless);
    assert_eq!(s.card.serial(), "00000010");
    assert_eq!(s.card.token_label(), "CPS3v3-9900000010");
    assert_eq!(s.card.model(), "IAS ECC");
}

#[test]
fn technical_certificate() {
    let mut s = Session::open(STEM);
    let certs = s.card.certificates().unwrap();
    assert_eq!(certs.len(), 1);
    assert_eq!(certs[0].label, "Certificat Technique CPS");
    let c = s.card.certificate(KeyRole::Authentication).unwrap();
    assert_eq!(c.der, certs[0].der);
}

#[test]
fn no_pin_on_contactless() {
    let mut s = Session::open(STEM);
    s.take();
    for r in [
        s.card.verify_pin(&Pin::new("1234")),
        s.card.change_pin(&Pin::new("1234"), &Pin::new("5678")),
        s.card.unblock_pin(&Pin::new("12345678"), &Pin::new("1234")),
    ] {
        assert!(
            matches!(r, Err(CardError::NoSuchPin(PinKind::User | PinKind::Puk))),
            "{r:?}"
        );
    }
    assert!(matches!(
        s.card.pin_status(PinKind::User),
        Err(CardError::NoSuchPin(_))
    ));
    assert_eq!(s.count(), 0);
}

#[test]
fn authentication_without_pin() {
    let mut s = Session::open(STEM);
    let pk = public_key(&s.card.certificate(KeyRole::Authentication).unwrap().der);
    let di = HashAlg::Sha256.digest_info(&HashAlg::Sha256.digest(b"tls"));
    let sig = s
        .card
        .sign(KeyRole::Authentication, Mechanism::RsaPkcs, &di)
        .unwrap();
    verify_raw_pkcs1(&pk, &di, &sig);
    let sig = s
        .card
        .sign(KeyRole::Authentication, Mechanism::Pkcs1(HashAlg::Sha1), b"tls")
        .unwrap();
    verify_pkcs1(&pk, HashAlg::Sha1, b"tls", &sig);
}

#[test]
fn no_signature_no_decryption_no_business_data() {
    let mut s = Session::open(STEM);
    let e = s
        .card
        .sign(KeyRole::Signature, Mechanism::Pkcs1(HashAlg::Sha256), b"x")
        .unwrap_err();
    assert!(matches!(e, CardError::Unsupported { .. }), "{e}");
    let e = s.card.decrypt(KeyRole::Authentication, &[0; 256]).unwrap_err();
    assert!(matches!(e, CardError::Unsupported { .. }), "{e}");
    assert!(s.card.data_objects().unwrap().is_empty());
    assert!(s.card.ef_actua().unwrap().is_none());
}

#[test]
fn reset_is_transparent_without_pin() {
    let mut s = Session::open(STEM);
    s.control.reset();
    assert_eq!(s.card.certificates().unwrap().len(), 1);
}
