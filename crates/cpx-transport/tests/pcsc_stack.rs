//! The transport against the real pcscd + vpcd, with a virtual T=0 card (cpx-testkit's TestCard).
//! Each test leases its own virtual reader, so they run in parallel.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cpx_apdu::{Command, StatusWord};
use cpx_testkit::{
    Failed, FaultyCard, Pull, ReaderLease, SandboxConfig, SandboxEnv, TestCard, Trial, wait_for_card,
};
use cpx_transport::{CardChannel, ExchangePolicy, Pcsc, ReaderEvent, ReaderStatus, TransportError};
use cpx_vpcd::{CardSlot, VirtualCard};

#[path = "pcsc_stack/cancel.rs"]
mod cancel;
#[path = "pcsc_stack/features.rs"]
mod features;

/// Bound for waiting on a condition (a card seen, a thread's answer): generous, as it costs
/// nothing when things go well and a loaded CI machine must not turn slowness into failures.
const SEEN: Duration = Duration::from_secs(30);

fn main() -> ExitCode {
    // 8 vpcd entries = 16 readers, pcsc-lite's maximum: the Monitor must cope (one PC/SC call takes
    // at most 16 reader states, PnP entry included).
    cpx_testkit::run_tests(
        &SandboxConfig {
            entries: 8,
            ..SandboxConfig::default()
        },
        || {
            vec![
                Trial::test(
                    "readers_are_listed_with_their_state",
                    readers_are_listed_with_their_state,
                ),
                Trial::test(
                    "get_response_chains_600_bytes_in_e7_chunks",
                    get_response_chains_600_bytes_in_e7_chunks,
                ),
                Trial::test(
                    "wrong_le_6cxx_is_reissued_with_the_exact_le",
                    wrong_le_6cxx_is_reissued_with_the_exact_le,
                ),
                Trial::test("t0_case4_goes_out_without_le", t0_case4_goes_out_without_le),
                Trial::test(
                    "transaction_excludes_a_second_client",
                    transaction_excludes_a_second_client,
                ),
                Trial::test(
                    "removal_mid_session_is_a_precise_error",
                    removal_mid_session_is_a_precise_error,
                ),
                Trial::test(
                    "reinsertion_is_seen_and_the_card_usable_again",
                    reinsertion_is_seen_and_the_card_usable_again,
                ),
                Trial::test(
                    "reset_by_another_client_is_reported",
                    reset_by_another_client_is_reported,
                ),
                Trial::test(
                    "card_pulled_during_a_command_is_card_removed",
                    card_pulled_during_a_command_is_card_removed,
                ),
                Trial::test(
                    "malformed_answer_from_a_present_card_stays_what_it_is",
                    malformed_answer_from_a_present_card_stays_what_it_is,
                ),
                Trial::test("monitor_wait_is_cancellable", cancel::monitor_wait_is_cancellable),
                Trial::test(
                    "cancel_before_the_wait_is_not_lost",
                    cancel::cancel_before_the_wait_is_not_lost,
                ),
                Trial::test(
                    "cancel_while_the_monitor_handles_changes_is_not_lost",
                    cancel::cancel_while_the_monitor_handles_changes_is_not_lost,
                ),
                Trial::test(
                    "vpcd_has_no_features_and_disturbs_nobody",
                    features::vpcd_has_no_features_and_disturbs_nobody,
                ),
                Trial::test(
                    "discovery_waits_for_another_programs_transaction",
                    features::discovery_waits_for_another_programs_transaction,
                ),
                Trial::test(
                    "no_card_and_unknown_reader_are_precise",
                    no_card_and_unknown_reader_are_precise,
                ),
            ]
        },
    )
}

/// A leased reader with the test card inserted and seen by pcscd.
fn reader_with_card() -> (ReaderLease, CardSlot, cpx_testkit::TestCardLog) {
    let lease = SandboxEnv::get().unwrap().lease();
    let card = TestCard::new();
    let log = card.log();
    let mut slot = CardSlot::new(lease.vpcd_addr(), Box::new(card));
    slot.insert().unwrap();
    wait_for_card(&lease.name, true, SEEN).unwrap();
    (lease, slot, log)
}

fn cmd(bytes: &[u8]) -> Command {
    let mut c = Command::new(bytes[0], bytes[1], bytes[2], bytes[3]);
    if bytes.len() > 5 {
        let n = usize::from(bytes[4]);
        c = c.with_data(bytes[5..5 + n].to_vec()).unwrap();
        if bytes.len() > 5 + n {
            c = c
                .with_le(if bytes[5 + n] == 0 {
                    256
                } else {
                    u16::from(bytes[5 + n])
                })
                .unwrap();
        }
    } else if bytes.len() == 5 {
        c = c
            .with_le(if bytes[4] == 0 { 256 } else { u16::from(bytes[4]) })
            .unwrap();
    }
    c
}

fn readers_are_listed_with_their_state() -> Result<(), Failed> {
    let lease = SandboxEnv::get()?.lease();
    let pcsc = Pcsc::establish()?;
    let status_of = |pcsc: &Pcsc| {
        pcsc.readers()
            .unwrap()
            .into_iter()
            .find(|r| r.name == lease.name)
            .expect("our reader is listed")
    };
    assert_eq!(status_of(&pcsc).status, ReaderStatus::Empty);
    assert_eq!(status_of(&pcsc).atr, None);

    let mut slot = CardSlot::new(lease.vpcd_addr(), Box::new(TestCard::new()));
    slot.insert()?;
    wait_for_card(&lease.name, true, SEEN)?;
    let info = status_of(&pcsc);
    assert_eq!(info.status, ReaderStatus::CardPresent);
    assert_eq!(info.atr.as_deref(), Some(&cpx_testkit::CPS3_ATR[..]));

    let channel = pcsc.connect(&lease.name)?;
    assert_eq!(channel.atr(), &cpx_testkit::CPS3_ATR[..]);
    assert_eq!(channel.protocol(), cpx_transport::Protocol::T0);
    assert_eq!(status_of(&pcsc).status, ReaderStatus::InUse);
    Ok(())
}

fn get_response_chains_600_bytes_in_e7_chunks() -> Result<(), Failed> {
    let (lease, _slot, log) = reader_with_card();
    let mut channel = Pcsc::establish()?.connect(&lease.name)?;
    channel.set_policy(ExchangePolicy::GENERIC);
    let r = channel.transmit(&cmd(&[0x80, 0x10, 0x00, 0x00, 0x00]))?;
    assert!(r.is_success(), "{}", r.sw());
    assert_eq!(r.data(), &TestCard::long_answer()[..]);

    let log = log.lock().unwrap();
    let get_responses: Vec<&Vec<u8>> = log.iter().filter(|c| c[1] == 0xC0).collect();
    let sizes: Vec<u8> = get_responses.iter().map(|c| c[4]).collect();
    assert_eq!(
        sizes,
        vec![0xE7, 0xE7, 0x8A],
        "GET RESPONSE Le sequence for 600 bytes"
    );
    assert!(get_responses.iter().all(|c| c[..4] == [0x00, 0xC0, 0x00, 0x00]));
    Ok(())
}

fn wrong_le_6cxx_is_reissued_with_the_exact_le() -> Result<(), Failed> {
    let (lease, _slot, log) = reader_with_card();
    let mut channel = Pcsc::establish()?.connect(&lease.name)?;
    let r = channel.transmit(&cmd(&[0x80, 0x12, 0x00, 0x00, 0x00]))?;
    assert!(r.is_success());
    assert_eq!(r.data(), &(1..=12).collect::<Vec<u8>>()[..]);
    let log = log.lock().unwrap();
    assert_eq!(
        *log,
        vec![vec![0x80, 0x12, 0, 0, 0x00], vec![0x80, 0x12, 0, 0, 0x0C]]
    );
    Ok(())
}

fn t0_case4_goes_out_without_le() -> Result<(), Failed> {
    let (lease, _slot, log) = reader_with_card();
    let mut channel = Pcsc::establish()?.connect(&lease.name)?;
    let r = channel.transmit(&cmd(&[0x80, 0x14, 0x00, 0x00, 0x03, 0xAA, 0xBB, 0xCC, 0x00]))?;
    assert_eq!(r.data(), &[0xAA, 0xBB, 0xCC]);
    let log = log.lock().unwrap();
    assert_eq!(
        log[0],
        vec![0x80, 0x14, 0, 0, 0x03, 0xAA, 0xBB, 0xCC],
        "no Le on T=0"
    );
    assert_eq!(log[1], vec![0x00, 0xC0, 0, 0, 0x03]);
    Ok(())
}

fn transaction_excludes_a_second_client() -> Result<(), Failed> {
    let (lease, _slot, log) = reader_with_card();
    let mut a = Pcsc::establish()?.connect(&lease.name)?;
    let mut b = Pcsc::establish()?.connect(&lease.name)?;
    let marker = |m: u8| cmd(&[0x80, 0x14, 0x00, 0x00, 0x01, m, 0x00]);

    let (started_tx, started_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel();
    let mut tx = a.transaction()?;
    tx.transmit(&marker(0xA1))?;
    let other = std::thread::spawn(move || {
        started_tx.send(()).unwrap();
        let r = b.transmit(&marker(0xB1)).unwrap();
        done_tx.send(Instant::now()).unwrap();
        r.data().to_vec()
    });
    started_rx.recv()?;
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        done_rx.try_recv().is_err(),
        "B got through while A held the transaction"
    );
    tx.transmit(&marker(0xA2))?;
    let ended = Instant::now();
    tx.end(false)?;
    let b_done = done_rx.recv_timeout(SEEN)?;
    assert!(b_done >= ended);
    assert_eq!(other.join().unwrap(), vec![0xB1]);

    let markers: Vec<u8> = log
        .lock()
        .unwrap()
        .iter()
        .filter(|c| c[1] == 0x14)
        .map(|c| c[5])
        .collect();
    assert_eq!(markers, vec![0xA1, 0xA2, 0xB1]);
    Ok(())
}

fn removal_mid_session_is_a_precise_error() -> Result<(), Failed> {
    let (lease, mut slot, _log) = reader_with_card();
    let mut channel = Pcsc::establish()?.connect(&lease.name)?;
    assert!(channel.transmit(&cmd(&[0x80, 0x20, 0, 0]))?.is_success());
    slot.remove();
    wait_for_card(&lease.name, false, SEEN)?;
    match channel.transmit(&cmd(&[0x80, 0x22, 0, 0])) {
        Err(TransportError::CardRemoved(reader)) => assert_eq!(reader, lease.name),
        other => panic!("expected CardRemoved, got {other:?}"),
    }
    match channel.transaction().map(|_| ()) {
        Err(e) => assert!(e.is_card_gone(), "{e}"),
        Ok(()) => panic!("a transaction on a removed card"),
    }
    Ok(())
}

/// Wait for an event about `reader` (other tests plug cards into other readers meanwhile).
fn next_event_for(monitor: &mut cpx_transport::Monitor, reader: &str) -> ReaderEvent {
    let deadline = Instant::now() + SEEN;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let events = monitor
            .wait(Some(left))
            .unwrap_or_else(|e| panic!("waiting for {reader}: {e}"));
        if let Some(e) = events.into_iter().find(|e| match e {
            ReaderEvent::CardInserted { reader: r, .. }
            | ReaderEvent::CardRemoved { reader: r }
            | ReaderEvent::ReaderAdded { reader: r }
            | ReaderEvent::ReaderRemoved { reader: r } => r == reader,
        }) {
            return e;
        }
    }
}

fn reinsertion_is_seen_and_the_card_usable_again() -> Result<(), Failed> {
    let (lease, mut slot, _log) = reader_with_card();
    let pcsc = Pcsc::establish()?;
    let mut monitor = pcsc.monitor()?;
    let mut channel = pcsc.connect(&lease.name)?;

    slot.remove();
    assert_eq!(
        next_event_for(&mut monitor, &lease.name),
        ReaderEvent::CardRemoved {
            reader: lease.name.clone()
        }
    );
    slot.insert()?;
    assert_eq!(
        next_event_for(&mut monitor, &lease.name),
        ReaderEvent::CardInserted {
            reader: lease.name.clone(),
            atr: cpx_testkit::CPS3_ATR.to_vec()
        }
    );
    // The old connection knows the card went away; reconnecting picks up the new one.
    assert!(channel.transmit(&cmd(&[0x80, 0x22, 0, 0])).is_err());
    channel.reconnect(false)?;
    assert_eq!(
        channel.transmit(&cmd(&[0x80, 0x22, 0, 0]))?.sw(),
        StatusWord(0x69, 0x82)
    );
    Ok(())
}

fn reset_by_another_client_is_reported() -> Result<(), Failed> {
    let (lease, _slot, _log) = reader_with_card();
    let mut a = Pcsc::establish()?.connect(&lease.name)?;
    assert!(a.transmit(&cmd(&[0x80, 0x20, 0, 0]))?.is_success());
    assert!(
        a.transmit(&cmd(&[0x80, 0x22, 0, 0]))?.is_success(),
        "security state set"
    );

    let mut b = Pcsc::establish()?.connect(&lease.name)?;
    b.reconnect(true)?; // another program resets the card

    match a.transmit(&cmd(&[0x80, 0x22, 0, 0])) {
        Err(TransportError::CardReset(reader)) => assert_eq!(reader, lease.name),
        other => panic!("expected CardReset, got {other:?}"),
    }
    // We reconnected: the channel works, and the card really lost its security state.
    assert_eq!(
        a.transmit(&cmd(&[0x80, 0x22, 0, 0]))?.sw(),
        StatusWord(0x69, 0x82)
    );

    // Same inside a transaction.
    b.reconnect(true)?;
    match a.transaction().map(|_| ()) {
        Err(TransportError::CardReset(_)) => {}
        Ok(()) => panic!("transaction begun on a card reset by someone else, unreported"),
        Err(e) => panic!("expected CardReset, got {e}"),
    }
    let mut tx = a.transaction()?;
    assert_eq!(
        tx.transmit(&cmd(&[0x80, 0x22, 0, 0]))?.sw(),
        StatusWord(0x69, 0x82)
    );
    Ok(())
}

/// The card leaves in the middle of a command (its connection to vpcd closes with no answer):
/// the failed exchange is reported as the removal it is, not as a malformed answer, however long
/// pcscd takes (up to its next poll of the reader) to notice. Same inside a transaction.
fn card_pulled_during_a_command_is_card_removed() -> Result<(), Failed> {
    let lease = SandboxEnv::get()?.lease();
    let (card, faults) = FaultyCard::new(Box::new(TestCard::new()));
    let mut slot = CardSlot::new(lease.vpcd_addr(), Box::new(card));
    let pcsc = Pcsc::establish()?;
    let marker = |m: u8| cmd(&[0x80, 0x14, 0x00, 0x00, 0x01, m, 0x00]);
    for in_transaction in [false, true] {
        slot.insert()?;
        wait_for_card(&lease.name, true, SEEN)?;
        let mut channel = pcsc.connect(&lease.name)?;
        assert_eq!(channel.transmit(&marker(1))?.data(), &[1]);
        faults.arm(Pull::on("the marker command", |c| c.get(1) == Some(&0x14)));
        let r = if in_transaction {
            channel.transaction()?.transmit(&marker(2))
        } else {
            channel.transmit(&marker(2))
        };
        faults
            .wait_pulled(SEEN)
            .ok_or("the armed command never reached the card")?;
        match r {
            Err(TransportError::CardRemoved(reader)) => assert_eq!(reader, lease.name),
            other => panic!("in_transaction={in_transaction}: expected CardRemoved, got {other:?}"),
        }
        drop(channel);
        // Reap the ended connection before the next round.
        slot.remove();
        wait_for_card(&lease.name, false, SEEN)?;
    }
    Ok(())
}

/// A card that stays in the reader and answers one byte (no status word) to one command.
struct OneByteAnswer(TestCard);

impl VirtualCard for OneByteAnswer {
    fn atr(&self) -> Vec<u8> {
        self.0.atr()
    }
    fn power_on(&mut self) {
        self.0.power_on();
    }
    fn power_off(&mut self) {
        self.0.power_off();
    }
    fn transmit(&mut self, command: &[u8]) -> Vec<u8> {
        if command.get(1) == Some(&0x30) {
            return vec![0x90];
        }
        self.0.transmit(command)
    }
}

/// A bad answer from a card that is still there is not a removal: the error stays what it is
/// (after the removal confirmation has waited its bound), and the card answers the next command.
fn malformed_answer_from_a_present_card_stays_what_it_is() -> Result<(), Failed> {
    let lease = SandboxEnv::get()?.lease();
    let mut slot = CardSlot::new(lease.vpcd_addr(), Box::new(OneByteAnswer(TestCard::new())));
    slot.insert()?;
    wait_for_card(&lease.name, true, SEEN)?;
    let mut channel = Pcsc::establish()?.connect(&lease.name)?;
    let started = Instant::now();
    match channel.transmit(&cmd(&[0x80, 0x30, 0, 0])) {
        Err(TransportError::MalformedResponse { reader, .. }) => assert_eq!(reader, lease.name),
        other => panic!("expected MalformedResponse, got {other:?}"),
    }
    eprintln!(
        "malformed answer reported after {} ms",
        started.elapsed().as_millis()
    );
    match channel.transaction()?.transmit(&cmd(&[0x80, 0x30, 0, 0])) {
        Err(TransportError::MalformedResponse { .. }) => {}
        other => panic!("in a transaction: expected MalformedResponse, got {other:?}"),
    }
    assert!(channel.transmit(&cmd(&[0x80, 0x20, 0, 0]))?.is_success());
    Ok(())
}

fn no_card_and_unknown_reader_are_precise() -> Result<(), Failed> {
    let lease = SandboxEnv::get()?.lease();
    let pcsc = Pcsc::establish()?;
    match pcsc.connect(&lease.name) {
        Err(TransportError::NoCard(r)) => assert_eq!(r, lease.name),
        other => panic!("expected NoCard, got {other:?}"),
    }
    match pcsc.connect("no such reader 00 00") {
        Err(TransportError::UnknownReader(r)) => assert_eq!(r, "no such reader 00 00"),
        other => panic!("expected UnknownReader, got {other:?}"),
    }
    Ok(())
}
