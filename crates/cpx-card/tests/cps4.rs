//! The CPS4 (ChipDoc) driver against the emulated CPS4 (in-process, T=1, channel 1).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::suite;
use common::*;
use cpx_card::{Generation, PinKind};

const STEM: &str = "cps4-doctor";

#[test]
fn identify() {
    suite::identify(STEM, Generation::Cps4, "00000006", "CPS4v1-9900000006");
}

#[test]
fn all_traffic_is_on_channel_1() {
    let mut s = Session::open(STEM);
    s.card.certificates().unwrap();
    s.card.pin_status(PinKind::User).unwrap();
    for (c, _) in s.take() {
        assert_eq!(c[0] & 0x03, 1, "{}", hex(&c));
    }
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
fn signatures_pkcs1_and_pss() {
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
    suite::different_card(STEM, "cps3-doctor");
}

#[test]
fn chipdoc_busy_on_another_channel_is_recovered() {
    // docs/card-spec.md §1.3, §10.15: ISD on channel 1, CPS2ter on channel 0, ChipDoc again.
    let mut s = Session::open(STEM);
    let isd = [
        0x01, 0xA4, 0x04, 0x0C, 0x07, 0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00,
    ];
    let chipdoc_ch0 = [
        0x00, 0xA4, 0x04, 0x0C, 0x08, 0x80, 0x25, 0x00, 0x00, 0x01, 0xFF, 0x01, 0x00,
    ];
    other_program(&s.control, &[&isd, &chipdoc_ch0]);
    s.take();
    assert_eq!(s.card.pin_status(PinKind::User).unwrap().tries_left, Some(3));
    let wire: Vec<String> = s
        .take()
        .iter()
        .map(|(c, r)| format!("{} -> {}", hex(c), hex(r)))
        .collect();
    let text = wire.join("\n");
    assert!(text.contains("01 A4 04 0C 07 A0 00 00 01 51 00 00"), "{text}");
    assert!(text.contains("00 A4 04 0C 08 80 25 00 00 01 FF 00 02"), "{text}");
}

#[test]
fn the_two_other_cps4_atrs_rc_and_t0_only() {
    use cpx_card::{Card, HashAlg, KeyRole, Mechanism, Pin};
    use cpx_transport::{CardChannel, Protocol};
    use cpx_transport_virtual::VirtualChannel;
    for (atr, protocol) in [
        (cpx_emulator::facts::ATR_CPS4_RC, Protocol::T1),
        (cpx_emulator::facts::ATR_CPS4_T0, Protocol::T0),
    ] {
        let mut image = cpx_emulator::builtin_image(STEM).unwrap().unwrap();
        image.atr = atr.to_vec();
        let (rec, wire) = Recorder::new(cpx_emulator::card_from_image(&image));
        let (channel, _control) = VirtualChannel::new("cps4 variant", Box::new(rec));
        assert_eq!(channel.protocol(), protocol);
        let mut card = Card::open(Box::new(channel)).unwrap();
        assert_eq!(card.generation(), Generation::Cps4);
        let pk = public_key(&card.certificate(KeyRole::Signature).unwrap().der);
        card.verify_pin(&Pin::new("1234")).unwrap();
        let sig = card
            .sign(KeyRole::Signature, Mechanism::Pkcs1(HashAlg::Sha256), b"t0")
            .unwrap();
        verify_pkcs1(&pk, HashAlg::Sha256, b"t0", &sig);
        let auth = public_key(&card.certificate(KeyRole::Authentication).unwrap().der);
        let c = encrypt(&auth, b"secret");
        assert_eq!(&card.decrypt(KeyRole::Authentication, &c).unwrap()[..], b"secret");
        if protocol == Protocol::T0 {
            // GET RESPONSE stays on channel 1 (docs/card-spec.md §1.3, §10.1).
            assert!(wire.lock().unwrap().iter().any(|(c, _)| c[..2] == [0x01, 0xC0]));
        }
    }
}
