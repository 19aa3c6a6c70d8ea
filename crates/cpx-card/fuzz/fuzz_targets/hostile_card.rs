//! The card layer against a hostile card built around the real emulated file system (issue 20):
//! the emulator answers truly and rules from the fuzzer's input rewrite its answers — FCP sizes
//! (tag 80/81, 1–4 bytes, any value), TLV lengths in every long form (81–84), 61xx/6Cxx chains of
//! any length, truncated and oversized answers, wrong status words at any step (common/hostile.rs).
//!
//! Input: `image ‖ operations (16-bit mask) ‖ rules`. Run with libFuzzer's default malloc and RSS
//! limits: an allocation sized by the card (`80 04 FF FF FF FF` → 4 GiB) is a finding.
//! Asserted: no panic, no abort, no allocation past the limits; and when no rule changed any
//! answer, the session behaves as with the plain emulator (open and the listings succeed).
#![no_main]

#[path = "common/hostile.rs"]
mod hostile;
#[path = "common/tlv_tree.rs"]
mod tlv_tree;

use std::sync::OnceLock;
use std::sync::atomic::Ordering;

use cpx_card::{Card, CardError, HashAlg, KeyRole, Mechanism, Pin, PinKind};
use cpx_emulator::{CardImage, card_from_image};
use cpx_transport_virtual::VirtualChannel;
use hostile::{Bytes, Hostile, decode_rules};
use libfuzzer_sys::fuzz_target;

/// Contact CPS3, CPS4 (T=1) and the contactless CPS3: the three file systems and link layers.
const STEMS: [&str; 3] = ["cps3-doctor", "cps4-doctor", "cps3-contactless"];

fn images() -> &'static [(CardImage, Option<Vec<u8>>)] {
    static IMAGES: OnceLock<Vec<(CardImage, Option<Vec<u8>>)>> = OnceLock::new();
    IMAGES.get_or_init(|| {
        STEMS
            .iter()
            .filter_map(|s| cpx_emulator::builtin_image(s).and_then(Result::ok))
            .map(|image| {
                let pin = image.pin.as_ref().map(|p| p.value.clone());
                (image, pin)
            })
            .collect()
    })
}

/// Run operation `bit` of the mask; whether it must succeed on an unmodified card.
fn operation(card: &mut Card, bit: u32, mask: u16, pin: Option<&[u8]>) -> (Result<(), CardError>, bool) {
    let ok = |r: Result<(), CardError>| (r, true);
    match bit {
        0 => (card.pin_status(PinKind::User).map(drop), false),
        1 => (card.pin_status(PinKind::Puk).map(drop), false),
        2 => (card.pin_policy(PinKind::User).map(drop), false),
        3 => ok(card.private_keys().map(drop)),
        4 => ok(card
            .certificate_infos()
            .and_then(|infos| infos.iter().try_for_each(|i| card.read_certificate(i).map(drop)))),
        5 => ok(card.certificates().map(drop)),
        6 => ok(card.data_objects().and_then(|objects| {
            objects.iter().take(8).try_for_each(|o| {
                card.data_object_size(&o.label)?;
                match card.read_data_object(&o.label) {
                    Err(CardError::SecurityStatusNotSatisfied { .. }) if o.private => Ok(()),
                    r => r.map(drop),
                }
            })
        })),
        7 => ok(card.ef_actua().map(drop)),
        8 => (card.pin_verified_on_card().map(drop), false),
        9 => match pin {
            Some(p) => (card.verify_pin(&Pin::from_bytes(p)), true),
            None => (Ok(()), false),
        },
        10 => (card.random_bytes(40).map(drop), false),
        11 => (card.certificate(KeyRole::Authentication).map(drop), false),
        // Only with bit 15 set and bits 0-1 clear too (1 input in 16): one 2048-bit RSA
        // signature of the emulator under coverage instrumentation costs more than 50 runs
        // without, and the signature's answer is one short path of the card layer.
        12 if mask & 0x8003 == 0x8000 => (
            card.sign(
                KeyRole::Authentication,
                Mechanism::Pkcs1(HashAlg::Sha256),
                b"hostile",
            )
            .map(drop),
            false,
        ),
        12 => (Ok(()), false),
        13 => (card.logout(), false),
        _ => (card.pin_statuses(&[PinKind::User, PinKind::Puk]).map(drop), false),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes::new(data);
    let images = images();
    let (image, pin) = &images[usize::from(b.u8()) % images.len()];
    let mask = b.u16();
    let rules = decode_rules(&mut b);
    let card = Hostile::new(card_from_image(image), rules);
    let fired = card.fired.clone();
    let (channel, _control) = VirtualChannel::new("hostile", Box::new(card));
    let opened = Card::open(Box::new(channel));
    let untouched = || fired.load(Ordering::Relaxed) == 0;
    let mut card = match opened {
        Ok(c) => c,
        Err(e) => {
            assert!(
                !untouched(),
                "{}: open failed with no answer changed: {e}",
                image.token_serial
            );
            return;
        }
    };
    for bit in 0..15 {
        if mask & (1 << bit) == 0 {
            continue;
        }
        let (r, must_succeed) = operation(&mut card, bit, mask, pin.as_deref());
        if let Err(e) = r {
            assert!(
                !(must_succeed && untouched()),
                "operation {bit} failed with no answer changed: {e}"
            );
        }
    }
});
