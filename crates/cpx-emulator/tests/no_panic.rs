//! The card never panics, whatever bytes arrive, and always answers with at least a status word.

// Test code: failing loudly is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use cpx_emulator::{CardImage, Cps3Card, EmulatedCard, card_from_image};
use cpx_vpcd::VirtualCard;
use proptest::prelude::*;
use std::path::Path;
use std::sync::OnceLock;

fn card(stem: &str) -> Cps3Card {
    static DOCTOR: OnceLock<CardImage> = OnceLock::new();
    static CL: OnceLock<CardImage> = OnceLock::new();
    let load = |s: &str| {
        CardImage::load(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../test-vectors/cards")
                .join(s)
                .join("card.toml"),
        )
        .unwrap()
    };
    let image = if stem == "cps3-contactless" {
        CL.get_or_init(|| load(stem))
    } else {
        DOCTOR.get_or_init(|| load(stem))
    };
    Cps3Card::new(image)
}

fn cps4() -> Box<dyn EmulatedCard> {
    static CPS4: OnceLock<CardImage> = OnceLock::new();
    let image = CPS4.get_or_init(|| {
        CardImage::load(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test-vectors/cards/cps4-doctor/card.toml"),
        )
        .unwrap()
    });
    card_from_image(image)
}

/// Commands biased towards what the card understands, so the fuzzing reaches deep states.
fn apdu() -> impl Strategy<Value = Vec<u8>> {
    let cla = prop_oneof![
        Just(0x00u8),
        Just(0x10),
        Just(0xA0),
        Just(0x01),
        Just(0x11),
        any::<u8>()
    ];
    let ins = prop_oneof![
        Just(0xA4u8),
        Just(0xB0),
        Just(0xD6),
        Just(0xCB),
        Just(0x20),
        Just(0x24),
        Just(0x2C),
        Just(0x22),
        Just(0x2A),
        Just(0x88),
        Just(0x84),
        Just(0xC0),
        any::<u8>()
    ];
    let body = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..8),
        proptest::collection::vec(any::<u8>(), 0..300),
    ];
    (cla, ins, any::<u8>(), any::<u8>(), body, any::<bool>()).prop_map(|(cla, ins, p1, p2, body, raw)| {
        let mut v = vec![cla, ins, p1, p2];
        if raw || body.len() > 255 {
            v.extend(body);
        } else if !body.is_empty() {
            v.push(body.len() as u8);
            v.extend(body);
        }
        v
    })
}

fn prelude(card: &mut Cps3Card) {
    for c in [
        &b"\x00\x20\x00\x01\x04\x31\x32\x33\x34"[..],
        b"\x00\xA4\x09\x0C\x04\x3F\x00\x00\x01",
    ] {
        card.transmit(c);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn contact_card_never_panics(cmds in proptest::collection::vec(apdu(), 1..12)) {
        let mut c = card("cps3-doctor");
        prelude(&mut c);
        for cmd in cmds {
            let r = c.transmit(&cmd);
            prop_assert!(r.len() >= 2 && r.len() <= 258, "{} -> {}", hex::encode(&cmd), hex::encode(&r));
        }
    }

    #[test]
    fn contactless_card_never_panics(cmds in proptest::collection::vec(apdu(), 1..12)) {
        let mut c = card("cps3-contactless");
        for cmd in cmds {
            let r = c.transmit(&cmd);
            prop_assert!(r.len() >= 2 && r.len() <= 258);
        }
    }

    #[test]
    fn cps4_card_never_panics(cmds in proptest::collection::vec(apdu(), 1..12), t0 in any::<bool>()) {
        let mut c = cps4();
        if t0 {
            let mut image = CardImage::load(Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../test-vectors/cards/cps4-doctor/card.toml")).unwrap();
            image.atr = cpx_emulator::facts::ATR_CPS4_T0.to_vec();
            c = card_from_image(&image);
        }
        for p in [
            &b"\x01\xA4\x04\x0C\x08\x80\x25\x00\x00\x01\xFF\x01\x00"[..],
            b"\x01\x20\x00\x01\x04\x31\x32\x33\x34",
            b"\x01\xA4\x08\x0C\x02\x00\x01",
        ] {
            c.transmit(p);
        }
        for cmd in cmds {
            let r = c.transmit(&cmd);
            prop_assert!(r.len() >= 2 && r.len() <= 258, "{} -> {}", hex::encode(&cmd), hex::encode(&r));
        }
        let state = c.state();
        prop_assert!(c.restore(&state).is_ok());
    }

    #[test]
    fn arbitrary_bytes_never_panic(cmd in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut c = card("cps3-doctor");
        let r = c.transmit(&cmd);
        prop_assert!(r.len() >= 2);
        let r = cps4().transmit(&cmd);
        prop_assert!(r.len() >= 2);
    }
}
