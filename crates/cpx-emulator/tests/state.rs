//! Persistent card state: what survives `state()` → fresh card → `restore()`, and what is refused.

// Test code: failing loudly is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use cpx_emulator::{CardImage, CardState, EmulatedCard, SharedCard, StateError, card_from_image};
use cpx_vpcd::VirtualCard;
use std::path::Path;

fn image(stem: &str) -> CardImage {
    CardImage::load(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../test-vectors/cards")
            .join(stem)
            .join("card.toml"),
    )
    .unwrap()
}

fn send(card: &mut dyn EmulatedCard, hex_apdu: &str) -> String {
    hex::encode_upper(card.transmit(&hex::decode(hex_apdu.replace(' ', "")).unwrap()))
}

/// CPS3 (CLA 00) and CPS4 (CLA 01, ChipDoc selected first) spellings of the same commands.
struct Dialect {
    stem: &'static str,
    cla: &'static str,
    open: &'static str,
    select_cps_data: &'static str,
    /// VERIFY of the right PIN 1234 and of a wrong one, as each card takes them (CPS3: padded to
    /// 8 bytes with FF, the real AODF; CPS4: unpadded, docs/card-spec.md §10).
    verify_ok: &'static str,
    verify_wrong: &'static str,
}

const CPS3: Dialect = Dialect {
    stem: "cps3-doctor",
    cla: "00",
    open: "00A4090C023F00",
    select_cps_data: "00A4090C063F000001D107",
    verify_ok: "0020000108 31323334 FFFFFFFF",
    verify_wrong: "0020000108 30303030 FFFFFFFF",
};
const CPS4: Dialect = Dialect {
    stem: "cps4-doctor",
    cla: "01",
    open: "01A4040C088025000001FF0100",
    select_cps_data: "01A4080C040001D107",
    verify_ok: "0120000104 31323334",
    verify_wrong: "0120000104 30303030",
};

fn blocked_pin_and_written_cps_data_survive(d: &Dialect) {
    let image = image(d.stem);
    let mut card = card_from_image(&image);
    card.power_on();
    let cla = d.cla;
    assert_eq!(send(&mut *card, d.open), "9000");
    // CPS_DATA written after the PIN
    assert_eq!(send(&mut *card, d.verify_ok), "9000");
    assert_eq!(send(&mut *card, d.select_cps_data), "9000");
    assert_eq!(send(&mut *card, &format!("{cla}D6000004CAFEBABE")), "9000");
    // then the PIN blocked by three wrong VERIFYs
    for sw in ["63C2", "63C1", "63C0"] {
        assert_eq!(send(&mut *card, d.verify_wrong), sw);
    }
    let state = card.state();
    assert_eq!(state.pins[0].tries_left, 0);
    assert!(
        state.files.values().any(|v| v.starts_with("CAFEBABE")),
        "{state:?}"
    );

    // through a serde format, into a fresh card of the same image
    let text = toml::to_string(&state).unwrap();
    let back: CardState = toml::from_str(&text).unwrap();
    assert_eq!(back, state);
    let mut fresh = card_from_image(&image);
    assert_ne!(fresh.state(), state);
    fresh.restore(&back).unwrap();
    assert_eq!(fresh.state(), state);
    fresh.power_on();
    assert_eq!(send(&mut *fresh, d.open), "9000");
    assert_eq!(send(&mut *fresh, d.verify_ok), "6983");
    assert_eq!(send(&mut *fresh, d.select_cps_data), "9000");
    assert_eq!(send(&mut *fresh, &format!("{cla}B0000004")), "CAFEBABE9000");
}

#[test]
fn cps3_state_survives_a_restart() {
    blocked_pin_and_written_cps_data_survive(&CPS3);
}

#[test]
fn cps4_state_survives_a_restart() {
    blocked_pin_and_written_cps_data_survive(&CPS4);
}

#[test]
fn a_changed_pin_and_puk_uses_survive() {
    let image = image("cps4-doctor");
    let mut card = card_from_image(&image);
    for (apdu, sw) in [
        (CPS4.open, "9000"),
        ("01200001 04 31323334", "9000"),
        ("01240101 04 35353535", "9000"),
        ("01200002 08 3132333435363738", "9000"),
        ("012C0381", "9000"),
    ] {
        assert_eq!(send(&mut *card, apdu), sw, "{apdu}");
    }
    let state = card.state();
    assert_eq!(state.pins[1].usage_left, Some(99));
    let mut fresh = card_from_image(&image);
    fresh.restore(&state).unwrap();
    assert_eq!(send(&mut *fresh, CPS4.open), "9000");
    assert_eq!(send(&mut *fresh, "01200001 04 31323334"), "63C2");
    assert_eq!(send(&mut *fresh, "01200001 04 35353535"), "9000");
}

#[test]
fn a_changed_cps3_pin_survives_unpadded_in_the_state() {
    let image = image("cps3-doctor");
    let mut card = card_from_image(&image);
    // CHANGE REFERENCE DATA old(8) || new(8), padded with FF (real AODF, GH#2224)
    let change = "0024000110 31323334 FFFFFFFF 35363738 FFFFFFFF";
    assert_eq!(send(&mut *card, change), "9000");
    let state = card.state();
    // the state keeps the PIN itself, not its padded block
    assert_eq!(state.pins[0].value, "35363738");
    let mut fresh = card_from_image(&image);
    fresh.restore(&state).unwrap();
    assert_eq!(send(&mut *fresh, CPS3.verify_ok), "63C2");
    assert_eq!(send(&mut *fresh, "0020000108 35363738 FFFFFFFF"), "9000");
    // a CPS3 PIN is 4 digits: 6 digits, a padded block or non-digits are refused
    for value in ["313233343536", "35363738FFFFFFFF", "3536373A"] {
        let mut bad = state.clone();
        bad.pins[0].value = value.into();
        assert!(
            matches!(fresh.restore(&bad), Err(StateError::Value { .. })),
            "{value}"
        );
    }
}

#[test]
fn restore_is_volatile_free_and_all_or_nothing() {
    let image = image("cps3-doctor");
    let mut card = card_from_image(&image);
    assert_eq!(send(&mut *card, CPS3.verify_ok), "9000");
    let state = card.state();
    // verified PINs are volatile: a restored card starts unverified
    card.restore(&state).unwrap();
    assert_eq!(send(&mut *card, "00200001"), "63C3");

    // a bad file entry after a good PIN entry: nothing is applied
    let mut bad = state.clone();
    bad.pins[0].tries_left = 1;
    bad.files.insert("3F000001D102".into(), "00".into());
    let err = card.restore(&bad).unwrap_err();
    assert!(
        matches!(err, StateError::UnknownFile(ref p) if p == "3F000001D102"),
        "{err}"
    );
    assert_eq!(send(&mut *card, "00200001"), "63C3");

    let mut bad = state.clone();
    bad.files.insert("3F000001D107".into(), "00".into());
    assert!(matches!(card.restore(&bad), Err(StateError::Value { .. })));
    let mut bad = state.clone();
    bad.pins[0].tries_left = 4;
    assert!(matches!(card.restore(&bad), Err(StateError::Value { .. })));
    let mut bad = state.clone();
    bad.pins[0].reference = 9;
    assert!(matches!(card.restore(&bad), Err(StateError::UnknownPin(9))));
    let mut bad = state;
    bad.version = 99;
    assert!(matches!(
        card.restore(&bad),
        Err(StateError::Version { found: 99, .. })
    ));
}

#[test]
fn a_state_from_another_card_is_refused() {
    let cps3 = card_from_image(&image("cps3-doctor")).state();
    let cps3_other = card_from_image(&image("cps3-pharmacist")).state();
    let contactless = card_from_image(&image("cps3-contactless")).state();
    let mut cps4 = card_from_image(&image("cps4-doctor"));
    let before = cps4.state();
    for foreign in [&cps3, &contactless] {
        let err = cps4.restore(foreign).unwrap_err();
        assert!(matches!(err, StateError::WrongCard { .. }), "{err}");
        assert!(err.to_string().contains("Cps4"), "{err}");
    }
    assert_eq!(cps4.state(), before);
    let mut doctor = card_from_image(&image("cps3-doctor"));
    assert!(matches!(
        doctor.restore(&cps3_other),
        Err(StateError::WrongCard { .. })
    ));
    assert!(matches!(
        doctor.restore(&before),
        Err(StateError::WrongCard { .. })
    ));
}

#[test]
fn a_shared_card_serves_vpcd_and_reports_its_state() {
    let image = image("cps4-doctor");
    let shared = SharedCard::new(card_from_image(&image));
    let mut served: Box<dyn VirtualCard> = Box::new(shared.clone());
    served.transmit(&hex::decode(CPS4.open).unwrap());
    assert_eq!(
        served.transmit(&hex::decode("0120000104 30303030".replace(' ', "")).unwrap()),
        [0x63, 0xC2]
    );
    assert_eq!(shared.state().pins[0].tries_left, 2);
    assert_eq!(served.atr(), image.atr);
    // and a plain Box<dyn EmulatedCard> goes where a Box<dyn VirtualCard> is expected
    let _slot = cpx_vpcd::CardSlot::new("127.0.0.1:1", card_from_image(&image));
    let _v: Box<dyn VirtualCard> = cpx_emulator::into_virtual(card_from_image(&image));
}
