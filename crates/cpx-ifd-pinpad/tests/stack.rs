//! Real stack: a private pcscd loads this crate's driver through a reader.conf entry
//! (cpx-testkit's `pinpad` option), the emulated CPS3 is plugged into it over the vpcd protocol,
//! `cpx_transport` discovers the part 10 features and sends VERIFY_PIN_DIRECT with a CPS3
//! structure; the keypad is scripted; the card's tries are read back.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Mutex, PoisonError};

use cpx_apdu::Command;
use cpx_testkit::{Failed, PinpadReader, Recorder, SandboxConfig, Trial, emulated, insert_seen};
use cpx_transport::{CardChannel, CardTransaction, Feature, Pcsc, ReaderProperties};
use cpx_vpcd::CardSlot;

/// The driver cargo built for this test: `target/<profile>/deps/libcpx_ifd_pinpad.so`, beside
/// the test binary (`cargo test` refreshes that one; the copy in `target/<profile>/` only on
/// `cargo build`).
fn driver() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.with_file_name("libcpx_ifd_pinpad.so")
}

/// CPS3 PIN_VERIFY_STRUCTURE (docs/card-spec.md §3: 8-byte block, ASCII digits padded with FF,
/// user PIN CHV 01; 4 to 8 digits from the AODF): byte units, position 0, left-justified, ASCII;
/// no length field; block 8.
fn cps3_verify_structure() -> Vec<u8> {
    let apdu = [
        0x00, 0x20, 0x00, 0x01, 0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    ];
    let mut s = vec![
        30, 0, // bTimerOut, bTimerOut2
        0x82, 0x08, 0x00, // bmFormatString, bmPINBlockString, bmPINLengthFormat
        0x08, 0x04, // wPINMaxExtraDigit: min 4, max 8 (little-endian)
        0x02, 0x01, // bEntryValidationCondition, bNumberMessage
        0x0C, 0x04, 0x00, // wLangId (fr-FR), bMsgIndex
        0x00, 0x00, 0x00, // bTeoPrologue
    ];
    s.extend((apdu.len() as u32).to_le_bytes());
    s.extend(apdu);
    s
}

/// CPS3 PIN_MODIFY_STRUCTURE for CHANGE REFERENCE DATA `00 24 00 01 10 old‖new`, each PIN an
/// 8-byte ASCII block padded with FF (docs/card-spec.md §3.2); current PIN asked, new PIN
/// confirmed.
fn cps3_modify_structure() -> Vec<u8> {
    let mut apdu = vec![0x00, 0x24, 0x00, 0x01, 0x10];
    apdu.extend([0xFF; 16]);
    let mut s = vec![
        30, 0, // bTimerOut, bTimerOut2
        0x82, 0x08, 0x00, // bmFormatString, bmPINBlockString, bmPINLengthFormat
        0x00, 0x08, // bInsertionOffsetOld, bInsertionOffsetNew
        0x08, 0x04, // wPINMaxExtraDigit: min 4, max 8
        0x03, // bConfirmPIN: current PIN, then the new one twice
        0x02, 0x03, // bEntryValidationCondition, bNumberMessage
        0x0C, 0x04, // wLangId
        0x00, 0x01, 0x02, // bMsgIndex1..3
        0x00, 0x00, 0x00, // bTeoPrologue
    ];
    s.extend((apdu.len() as u32).to_le_bytes());
    s.extend(apdu);
    s
}

/// The sandbox has one PIN-pad reader and one keypad script: its trials take turns.
static PAD: Mutex<()> = Mutex::new(());

/// Tries left on the CPS3 user PIN: SELECT MF, GET DATA BF 81 01 A0 (docs/card-spec.md §3.2).
fn tries_left(tx: &mut dyn CardTransaction) -> Result<u8, Failed> {
    let select_mf = Command::new(0x00, 0xA4, 0x09, 0x0C).with_data(vec![0x3F, 0x00])?;
    let r = tx.transmit(&select_mf)?;
    if !r.is_success() {
        return Err(format!("SELECT MF: {}", r.sw()).into());
    }
    let query = vec![0x4D, 0x08, 0x70, 0x06, 0xBF, 0x81, 0x01, 0x02, 0xA0, 0x80];
    let get_data = Command::new(0x00, 0xCB, 0x3F, 0xFF)
        .with_data(query)?
        .with_le(256)?;
    let r = tx.transmit(&get_data)?;
    let data = r.data();
    data.windows(3)
        .find(|w| w[0] == 0x9B && w[1] == 0x01)
        .map(|w| w[2])
        .ok_or_else(|| format!("no 9B in the tries answer {data:02X?} ({})", r.sw()).into())
}

fn verify_through_the_pad() -> Result<(), Failed> {
    let _turn = PAD.lock().unwrap_or_else(PoisonError::into_inner);
    let pad = PinpadReader::from_env().ok_or("the sandbox has no PIN-pad reader")?;
    std::fs::write(&pad.keypad, "")?;
    let (recorder, recording) = Recorder::new(emulated("cps3-doctor")?);
    let mut slot = CardSlot::new(pad.vpcd_addr(), Box::new(recorder));
    insert_seen(&mut slot, &pad.name)?;

    let pcsc = Pcsc::establish()?;
    let mut card = pcsc.connect(&pad.name)?;
    let features = card.reader_features()?;
    for f in [
        Feature::VERIFY_PIN_DIRECT,
        Feature::MODIFY_PIN_DIRECT,
        Feature::IFD_PIN_PROPERTIES,
        Feature::GET_TLV_PROPERTIES,
    ] {
        if !features.has(f) {
            return Err(format!("{f} not announced: {features:?}").into());
        }
    }
    let verify = features
        .get(Feature::VERIFY_PIN_DIRECT)
        .ok_or("no VERIFY_PIN_DIRECT")?;
    let tlv = features
        .get(Feature::GET_TLV_PROPERTIES)
        .ok_or("no GET_TLV_PROPERTIES")?;
    let props = ReaderProperties::parse(&card.control(tlv, &[])?)?;
    assert_eq!((props.min_pin_size, props.max_pin_size), (Some(4), Some(8)));
    assert_eq!(props.lcd_layout, Some(0), "no display");
    let pin_props = features
        .get(Feature::IFD_PIN_PROPERTIES)
        .ok_or("no IFD_PIN_PROPERTIES")?;
    assert_eq!(
        card.control(pin_props, &[])?,
        [0x00, 0x00, 0x02, 0x00],
        "PIN_PROPERTIES_STRUCTURE"
    );

    let mut tx = card.transaction()?;
    let before = tries_left(tx.as_mut())?;
    assert_eq!(before, 3, "fresh card");
    recording.take();

    // The reader answers these itself: the card sees nothing, no try is spent.
    for (typed, sw) in [
        ("cancel", [0x64, 0x01]),
        ("timeout", [0x64, 0x00]),
        ("12", [0x64, 0x03]),
        ("", [0x64, 0x00]),
    ] {
        std::fs::write(&pad.keypad, format!("{typed}\n"))?;
        let answer = tx.control(verify, &cps3_verify_structure())?;
        assert_eq!(answer, sw, "keypad {typed:?}");
        assert!(
            recording.is_empty(),
            "keypad {typed:?}: the card saw {:02X?}",
            recording.commands()
        );
    }
    assert_eq!(tries_left(tx.as_mut())?, 3);
    recording.take();

    // A wrong PIN typed on the pad reaches the card as a CPS3 block and costs a try...
    std::fs::write(&pad.keypad, "9999\n1234\n")?;
    let answer = tx.control(verify, &cps3_verify_structure())?;
    assert_eq!(answer, [0x63, 0xC2], "wrong PIN");
    // ...and the right one, next in the script, is accepted and restores the tries.
    let answer = tx.control(verify, &cps3_verify_structure())?;
    assert_eq!(answer, [0x90, 0x00], "right PIN");
    assert_eq!(
        recording.commands(),
        [
            b"\x00\x20\x00\x01\x08\x39\x39\x39\x39\xFF\xFF\xFF\xFF".to_vec(),
            b"\x00\x20\x00\x01\x08\x31\x32\x33\x34\xFF\xFF\xFF\xFF".to_vec(),
        ],
        "the APDUs the card received"
    );
    assert_eq!(tries_left(tx.as_mut())?, 3);
    recording.take();

    // A hostile structure (cut short) is refused by the driver; the card sees nothing.
    let short = cps3_verify_structure();
    let refused = tx.control(verify, &short[..short.len() - 1]);
    assert!(
        refused.is_err(),
        "a truncated structure was accepted: {refused:?}"
    );
    assert!(recording.is_empty());
    tx.end(false)?;
    slot.remove();
    Ok(())
}

fn change_through_the_pad() -> Result<(), Failed> {
    let _turn = PAD.lock().unwrap_or_else(PoisonError::into_inner);
    let pad = PinpadReader::from_env().ok_or("the sandbox has no PIN-pad reader")?;
    std::fs::write(&pad.keypad, "")?;
    let (recorder, recording) = Recorder::new(emulated("cps3-doctor")?);
    let mut slot = CardSlot::new(pad.vpcd_addr(), Box::new(recorder));
    insert_seen(&mut slot, &pad.name)?;

    let pcsc = Pcsc::establish()?;
    let mut card = pcsc.connect(&pad.name)?;
    let modify = card
        .reader_features()?
        .get(Feature::MODIFY_PIN_DIRECT)
        .ok_or("no MODIFY_PIN_DIRECT")?;
    let verify = card
        .reader_features()?
        .get(Feature::VERIFY_PIN_DIRECT)
        .ok_or("no VERIFY_PIN_DIRECT")?;
    let mut tx = card.transaction()?;
    recording.take();

    // The confirmation differs, or the user cancels at the confirmation: the reader answers.
    for (typed, sw) in [
        ("1234\n5678\n5679\n", [0x64, 0x02]),
        ("1234\n5678\ncancel\n", [0x64, 0x01]),
    ] {
        std::fs::write(&pad.keypad, typed)?;
        assert_eq!(
            tx.control(modify, &cps3_modify_structure())?,
            sw,
            "keypad {typed:?}"
        );
        assert!(recording.is_empty(), "the card saw {:02X?}", recording.commands());
    }

    // Current 1234, new 5678 twice: one CHANGE REFERENCE DATA with both blocks.
    std::fs::write(&pad.keypad, "1234\n5678\n5678\n")?;
    assert_eq!(tx.control(modify, &cps3_modify_structure())?, [0x90, 0x00]);
    assert_eq!(
        recording.take().into_iter().map(|(c, _)| c).collect::<Vec<_>>(),
        [b"\x00\x24\x00\x01\x10\x31\x32\x33\x34\xFF\xFF\xFF\xFF\x35\x36\x37\x38\xFF\xFF\xFF\xFF".to_vec()],
    );
    // The card now takes 5678 through the pad; change it back so the image is as found.
    std::fs::write(&pad.keypad, "5678\n5678\n1234\n1234\n")?;
    assert_eq!(
        tx.control(verify, &cps3_verify_structure())?,
        [0x90, 0x00],
        "new PIN"
    );
    assert_eq!(
        tx.control(modify, &cps3_modify_structure())?,
        [0x90, 0x00],
        "back to 1234"
    );
    assert_eq!(tries_left(tx.as_mut())?, 3);
    tx.end(false)?;
    slot.remove();
    Ok(())
}

fn main() -> ExitCode {
    let config = SandboxConfig {
        entries: 1,
        pinpad: Some(driver()),
        ..SandboxConfig::default()
    };
    cpx_testkit::run_tests(&config, || {
        vec![
            Trial::test(
                "VERIFY_PIN_DIRECT through pcscd and the emulated keypad reaches the CPS3",
                verify_through_the_pad,
            ),
            Trial::test(
                "MODIFY_PIN_DIRECT through pcscd changes the CPS3 PIN, confirmation checked on the pad",
                change_through_the_pad,
            ),
        ]
    })
}
