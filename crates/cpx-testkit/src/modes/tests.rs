//! The fault modes in process, on the emulated cards and the transport test card.

use super::*;
use crate::{DEADLINE, TestCard, emulated};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;

/// CPS3 `00 A4 09 04 04 3F00 D003` (T=0: the FCP comes through `61xx`, docs/card-spec.md §2.2).
const CPS3_SELECT_SN_FCP: [u8; 9] = [0x00, 0xA4, 0x09, 0x04, 0x04, 0x3F, 0x00, 0xD0, 0x03];
/// CPS4 `01 A4 08 00 02 D003 00` (T=1: the FCI comes back at once, docs/card-spec.md §10.2).
const CPS4_SELECT_SN_FCI: [u8; 8] = [0x01, 0xA4, 0x08, 0x00, 0x02, 0xD0, 0x03, 0x00];

/// A card behind a thread, as in a `CardSlot`: commands in, `None` for a pull.
fn serve(mut card: FaultModeCard) -> (mpsc::Sender<Vec<u8>>, mpsc::Receiver<Option<Vec<u8>>>) {
    let (tx, commands) = mpsc::channel::<Vec<u8>>();
    let (answers, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for c in commands {
            let r = catch_unwind(AssertUnwindSafe(|| card.transmit(&c)));
            let pulled = r.is_err();
            let _ = answers.send(r.ok());
            if pulled {
                break;
            }
        }
    });
    (tx, rx)
}

const VERIFY: [u8; 4] = [0x80, 0x20, 0x00, 0x00];
const CHECK: [u8; 4] = [0x80, 0x22, 0x00, 0x00];
const SHORT: Duration = Duration::from_millis(200);

#[test]
fn mute_holds_until_unmute_then_answers_normally() {
    let (card, modes) = FaultModeCard::new(Box::new(TestCard::new()));
    let (tx, rx) = serve(card);
    tx.send(VERIFY.to_vec()).unwrap();
    assert_eq!(rx.recv().unwrap(), Some(vec![0x90, 0x00]), "not mute yet");
    modes.mute_on("check", |c| c.get(1) == Some(&0x22));
    tx.send(VERIFY.to_vec()).unwrap();
    assert_eq!(
        rx.recv().unwrap(),
        Some(vec![0x90, 0x00]),
        "does not match: answered"
    );
    tx.send(CHECK.to_vec()).unwrap();
    assert_eq!(modes.wait_held(DEADLINE), Some(CHECK.to_vec()));
    assert!(rx.recv_timeout(SHORT).is_err(), "a mute card does not answer");
    assert!(modes.is_holding());
    modes.unmute();
    assert_eq!(
        rx.recv().unwrap(),
        Some(vec![0x90, 0x00]),
        "the held command executed"
    );
    assert!(!modes.is_holding());
    tx.send(CHECK.to_vec()).unwrap();
    assert_eq!(rx.recv().unwrap(), Some(vec![0x90, 0x00]), "mute ended");
    assert_eq!(modes.held_commands(), [CHECK.to_vec()]);
}

#[test]
fn mute_releases_with_a_status_or_a_pull() {
    let (card, modes) = FaultModeCard::new(Box::new(TestCard::new()));
    let (tx, rx) = serve(card);
    modes.mute();
    tx.send(VERIFY.to_vec()).unwrap();
    assert_eq!(modes.wait_held(DEADLINE), Some(VERIFY.to_vec()));
    modes.unmute_with([0x6F, 0x00]);
    assert_eq!(rx.recv().unwrap(), Some(vec![0x6F, 0x00]));
    tx.send(CHECK.to_vec()).unwrap();
    assert_eq!(
        rx.recv().unwrap(),
        Some(vec![0x69, 0x82]),
        "the VERIFY never reached the card"
    );
    modes.mute();
    tx.send(CHECK.to_vec()).unwrap();
    assert!(modes.wait_held(DEADLINE).is_some());
    modes.pull();
    assert_eq!(
        rx.recv().unwrap(),
        None,
        "pulled: no answer, the serving thread ends"
    );
}

#[test]
fn a_forgotten_mute_is_pulled_by_the_hang_guard() {
    let (card, modes) = FaultModeCard::new(Box::new(TestCard::new()));
    let (tx, rx) = serve(card);
    modes.set_mute_limit(Duration::from_millis(50));
    modes.mute();
    tx.send(VERIFY.to_vec()).unwrap();
    assert_eq!(rx.recv_timeout(DEADLINE).unwrap(), None);
}

#[test]
fn pull_with_nothing_held_ends_the_next_presence_poll() {
    let (card, modes) = FaultModeCard::new(Box::new(TestCard::new()));
    assert_eq!(card.atr(), crate::CPS3_ATR);
    modes.pull();
    assert!(catch_unwind(AssertUnwindSafe(|| card.atr())).is_err());
    assert_eq!(card.atr(), crate::CPS3_ATR, "a single pull");
}

#[test]
fn slow_delays_each_answer() {
    let (mut card, modes) = FaultModeCard::new(Box::new(TestCard::new()));
    modes.set_delay(Duration::from_millis(120));
    assert_eq!(modes.delay(), Duration::from_millis(120));
    let t = Instant::now();
    assert_eq!(card.transmit(&VERIFY), [0x90, 0x00]);
    assert!(t.elapsed() >= Duration::from_millis(120), "{:?}", t.elapsed());
    modes.set_delay(Duration::ZERO);
    assert_eq!(card.transmit(&CHECK), [0x90, 0x00]);
}

/// The whole FCP through `61xx` + GET RESPONSE, as a T=0 reader would fetch it.
fn fetch(card: &mut FaultModeCard, select: &[u8]) -> Vec<u8> {
    let mut r = card.transmit(select);
    let mut fcp = Vec::new();
    while r.len() == 2 && r[0] == 0x61 {
        r = card.transmit(&[0x00, 0xC0, 0x00, 0x00, r[1]]);
        fcp.extend_from_slice(&r[..r.len() - 2]);
        r = r[r.len() - 2..].to_vec();
    }
    assert_eq!(r, [0x90, 0x00]);
    fcp
}

#[test]
fn size_override_on_a_t0_fcp() {
    let (mut card, modes) = FaultModeCard::new(emulated("cps3-doctor").unwrap());
    card.power_on();
    let real = fetch(&mut card, &CPS3_SELECT_SN_FCP);
    assert_eq!(
        real[..6],
        [0x62, 0x25, 0x80, 0x02, 0x00, 0x0C],
        "docs/card-spec.md §1.3 EF.SN.ICC FCP"
    );
    modes.override_size(&[0xD0, 0x03], &[0xFF; 4]);
    let hostile = fetch(&mut card, &CPS3_SELECT_SN_FCP);
    let mut want = vec![0x62, 0x27, 0x80, 0x04, 0xFF, 0xFF, 0xFF, 0xFF];
    want.extend_from_slice(&real[6..]);
    assert_eq!(hostile, want);
    // A GET RESPONSE asking too much gets 6Cxx, as from the card; a smaller one 61xx.
    let r = card.transmit(&CPS3_SELECT_SN_FCP);
    assert_eq!(r, [0x61, 0x29]);
    assert_eq!(card.transmit(&[0x00, 0xC0, 0x00, 0x00, 0x30]), [0x6C, 0x29]);
    let first = card.transmit(&[0x00, 0xC0, 0x00, 0x00, 0x08]);
    assert_eq!(first[..8], want[..8]);
    assert_eq!(first[8..], [0x61, 0x21]);
    // Without the override, the card's own FCP again.
    modes.clear_size_overrides();
    assert_eq!(fetch(&mut card, &CPS3_SELECT_SN_FCP), real);
}

#[test]
fn size_override_on_a_t1_fci() {
    let (mut card, modes) = FaultModeCard::new(emulated("cps4-doctor").unwrap());
    card.power_on();
    // The ChipDoc applet on channel 1 (docs/card-spec.md §1.3).
    let select_chipdoc = [
        0x01, 0xA4, 0x04, 0x0C, 0x08, 0x80, 0x25, 0x00, 0x00, 0x01, 0xFF, 0x01, 0x00,
    ];
    assert_eq!(card.transmit(&select_chipdoc), [0x90, 0x00]);
    let real = card.transmit(&CPS4_SELECT_SN_FCI);
    assert_eq!(real[..4], [0x6F, real[1], 0x80, 0x02]);
    modes.override_size(&[0xD0, 0x03], &[0xFF; 4]);
    let hostile = card.transmit(&CPS4_SELECT_SN_FCI);
    assert_eq!(
        hostile[..8],
        [0x6F, real[1] + 2, 0x80, 0x04, 0xFF, 0xFF, 0xFF, 0xFF]
    );
    assert_eq!(hostile[8..], real[6..]);
}

#[test]
fn size_replacement_adds_a_missing_tag_and_long_lengths() {
    assert_eq!(
        replace_size(&[0x6F, 0x03, 0x82, 0x01, 0x01], &[0x01]),
        Some(vec![0x6F, 0x06, 0x80, 0x01, 0x01, 0x82, 0x01, 0x01])
    );
    assert_eq!(
        replace_size(&[0x62, 0x04, 0x81, 0x02, 0x00, 0x10], &[0xFF; 0x80]).map(|v| v[..5].to_vec()),
        Some(vec![0x62, 0x81, 0x83, 0x81, 0x81])
    );
    assert_eq!(replace_size(&[0x30, 0x00], &[1]), None);
    assert_eq!(replace_size(&[0x62, 0x05, 0x80], &[1]), None);
}
