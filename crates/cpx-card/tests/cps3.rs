//! The CPS3 contact driver against the emulated CPS3 (in-process).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::suite;
use common::*;
use cpx_card::{CardError, Generation, HashAlg, KeyRole, Mechanism, Pin, PinKind};

const STEM: &str = "cps3-doctor";

#[test]
fn identify() {
    suite::identify(STEM, Generation::Cps3, "00000001", "CPS3v3-9900000001");
}

#[test]
fn certificates() {
    suite::certificates(STEM);
}

#[test]
fn pin_verify_and_status() {
    suite::pin_verify(STEM);
}

#[test]
fn change_block_unblock() {
    suite::change_block_unblock(STEM);
}

#[test]
fn signatures() {
    suite::sign_everything(STEM);
}

#[test]
fn decryption() {
    suite::decrypt(STEM);
}

#[test]
fn business_data() {
    suite::business_data(STEM);
}

#[test]
fn reset_and_reinsertion() {
    suite::reset_and_reinsertion(STEM);
}

#[test]
fn another_card_is_never_taken_for_the_old_one() {
    suite::different_card(STEM, "cps3-pharmacist");
}

#[test]
fn other_person_cards_open() {
    for stem in ["cps3-pharmacist", "cpe", "cpa", "cpf", "cps3-expired"] {
        let mut s = Session::open(stem);
        assert_eq!(s.card.generation(), Generation::Cps3);
        assert_eq!(s.card.certificates().unwrap().len(), 2, "{stem}");
    }
}

#[test]
fn blocked_pin_and_puk_images() {
    let mut s = Session::open("cps3-pin-blocked");
    assert!(s.card.pin_status(PinKind::User).unwrap().blocked);
    assert!(matches!(
        s.card.verify_pin(&Pin::new("1234")),
        Err(CardError::PinBlocked { .. })
    ));
    s.card
        .unblock_pin(&Pin::new(suite::PUK), &Pin::new("1234"))
        .unwrap();
    s.card.verify_pin(&Pin::new("1234")).unwrap();

    let mut s = Session::open("cps3-puk-blocked");
    assert!(s.card.pin_status(PinKind::Puk).unwrap().blocked);
    let e = s
        .card
        .unblock_pin(&Pin::new(suite::PUK), &Pin::new("1234"))
        .unwrap_err();
    assert!(matches!(e, CardError::PinBlocked { kind: PinKind::Puk }), "{e}");
}

#[test]
fn reselect_after_another_program_selected_the_isd() {
    // docs/card-spec.md §2.3: 6E00 → select the CPS AID, resend once.
    let mut s = Session::open(STEM);
    let sws = other_program(
        &s.control,
        &[&[
            0x00, 0xA4, 0x04, 0x00, 0x07, 0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00,
        ]],
    );
    assert!(sws[0].ends_with(&[0x90, 0x00]) || sws[0][0] == 0x61, "{sws:?}");
    s.take();
    assert_eq!(s.card.pin_status(PinKind::User).unwrap().tries_left, Some(3));
    let wire = s.take();
    assert_eq!(wire[0].1, vec![0x6E, 0x00]);
    assert_eq!(hex(&wire[1].0), "00 A4 04 04 08 80 25 00 00 01 FF 01 00");
    let after = wire.iter().skip(2).find(|(c, _)| c[1] != 0xC0).unwrap();
    assert_eq!(after.0, wire[0].0, "resent once");
    assert_eq!(wire.iter().filter(|(c, _)| *c == wire[0].0).count(), 2);
}

#[test]
fn empty_message_and_multiple_of_64() {
    let mut s = Session::open(STEM);
    let pk = public_key(&s.card.certificate(KeyRole::Signature).unwrap().der);
    s.card.verify_pin(&Pin::new(suite::PIN)).unwrap();
    s.take();
    let sig = s
        .card
        .sign(KeyRole::Signature, Mechanism::Pkcs1(HashAlg::Sha256), &[])
        .unwrap();
    verify_pkcs1(&pk, HashAlg::Sha256, &[], &sig);
    s.take();
    s.card
        .sign(
            KeyRole::Signature,
            Mechanism::Pkcs1(HashAlg::Sha256),
            &[0x11; 128],
        )
        .unwrap();
    let wire = s.take();
    let pso_hash = wire.iter().find(|(c, _)| c[1] == 0x2A && c[2] == 0x90).unwrap();
    // docs/card-spec.md §4.2/§8.6: a full 64-byte block kept, bit count of the 64-byte prefix = 0x200.
    assert_eq!(&pso_hash.0[..7], &[0x00, 0x2A, 0x90, 0xA0, 0x6C, 0x90, 0x28]);
    assert_eq!(&pso_hash.0[39..47], &[0, 0, 0, 0, 0, 0, 0x02, 0x00]);
    assert_eq!(&pso_hash.0[47..49], &[0x80, 0x40]);
}

#[test]
fn ef_actua_present_on_the_pharmacist_card() {
    let mut s = Session::open("cps3-pharmacist");
    let a = s.card.ef_actua().unwrap().unwrap();
    assert_eq!(a.start, "20250101000000");
    assert_eq!(a.end, "20301231235959");
}

#[test]
fn the_real_cps3_aodf_bytes_parse() {
    // GH#2224 dump, as the emulator now carries it.
    let objects = cpx_card::pkcs15::aodf::parse(&cpx_emulator::facts::AODF_CPS3).unwrap();
    assert_eq!(objects.len(), 2);
    let pin = &objects[0].policy;
    assert_eq!(
        (
            pin.min_len,
            pin.stored_len,
            pin.max_len,
            pin.reference,
            pin.pad_char
        ),
        (4, 8, 4, 1, 0xFF)
    );
    assert!(pin.needs_padding && !objects[0].is_unblocking());
    let puk = &objects[1];
    assert_eq!(puk.common.label, "Code de déblocage de la carte CPS");
    assert_eq!(puk.auth_id, [0x04]);
    assert!(puk.is_unblocking(), "soPin flag");
    assert_eq!(
        (
            puk.policy.min_len,
            puk.policy.stored_len,
            puk.policy.max_len,
            puk.policy.reference
        ),
        (8, 8, 8, 2)
    );
    let mut s = Session::open(STEM);
    s.card.verify_pin(&Pin::new(suite::PIN)).unwrap();
    assert_eq!(
        hex(&s.take()[..].last().unwrap().0),
        "00 20 00 01 08 31 32 33 34 FF FF FF FF"
    );
}
