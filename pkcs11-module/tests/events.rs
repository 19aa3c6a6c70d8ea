//! C_WaitForSlotEvent through the real stack: blocking and non-blocking, woken by a card inserted
//! or removed, and by C_Finalize from another thread (PKCS#11 2.40 §5.5: the waiting call then
//! returns CKR_CRYPTOKI_NOT_INITIALIZED), whether C_Finalize comes while the waiter is blocked
//! or while it is still on its way into the wait.
//!
//! One trial in its own process: the module's event state is process-wide, and the last step
//! finalizes the module.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::process::ExitCode;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use cpx_testkit::{Failed, SandboxConfig, Trial, wait_for_card};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error, RvError};
use cryptoki::slot::Slot;

/// Bound for waiting on a condition (an event seen, a waiter's answer): generous for a loaded
/// machine, it costs nothing when things go well.
const BOUND: Duration = Duration::from_secs(30);

fn main() -> ExitCode {
    cpx_testkit::run_tests(&SandboxConfig::default(), || {
        vec![Trial::test("wait_for_slot_event", events)]
    })
}

/// A blocked C_WaitForSlotEvent on its own thread; its answer comes through the channel.
struct Waiter(mpsc::Receiver<cryptoki::error::Result<Slot>>);

impl Waiter {
    fn start(p11: &Pkcs11) -> Self {
        let p11 = p11.clone();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || tx.send(p11.wait_for_slot_event()));
        // Not a timing assertion: a waiter that returns at once with nothing to report would be
        // a bug, and this gives it the chance to show itself before the event is caused.
        thread::sleep(Duration::from_millis(300));
        assert!(
            matches!(rx.try_recv(), Err(mpsc::TryRecvError::Empty)),
            "C_WaitForSlotEvent returned with no event"
        );
        Self(rx)
    }

    /// The waiter's answer; a waiter still blocked long after its event is a hang.
    fn answer(self) -> Result<cryptoki::error::Result<Slot>, Failed> {
        self.0
            .recv_timeout(BOUND)
            .map_err(|_| Failed::from("C_WaitForSlotEvent was not woken up"))
    }
}

/// The non-blocking call, repeated until it reports something (the module learns of PC/SC
/// changes by polling, so an event pcscd already shows may take a moment to be queued).
fn next_event(p11: &Pkcs11) -> Result<Slot, Failed> {
    let deadline = Instant::now() + BOUND;
    loop {
        if let Some(slot) = p11.get_slot_event()? {
            return Ok(slot);
        }
        if Instant::now() > deadline {
            return Err("no slot event reported".into());
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn events() -> Result<(), Failed> {
    let p11 = Pkcs11::new(module_path()?)?;
    p11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))?;
    let (lease, mut card) = insert("cps3-doctor")?;
    let slot = slot_of(&p11, &lease.name)?;

    // The insertion before the first call may or may not be reported (the module's first view
    // of the readers may already include it); after it, nothing is pending.
    while p11.get_slot_event()?.is_some() {}
    assert_eq!(p11.get_slot_event()?, None, "CKR_NO_EVENT");

    // Blocking: a removal, then an insertion, each wakes the waiter with the card's slot.
    let removal = Waiter::start(&p11);
    card.remove();
    assert_eq!(removal.answer()??, slot);
    assert!(!p11.get_slot_info(slot)?.token_present());
    let insertion = Waiter::start(&p11);
    card.insert()?;
    assert_eq!(insertion.answer()??, slot);
    wait_for_card(&lease.name, true, BOUND)?;
    assert!(p11.get_slot_info(slot)?.token_present());
    assert_eq!(p11.get_slot_event()?, None, "each event is reported once");

    // Non-blocking: an event that happened while nobody waited is reported by the next call.
    card.remove();
    wait_for_card(&lease.name, false, BOUND)?;
    assert_eq!(next_event(&p11)?, slot);
    assert_eq!(p11.get_slot_event()?, None);

    // Two readers changing in the same pcscd cycle: one event each, the second from the next
    // call (the first used to mark both as reported). Whether pcscd batches them cannot be
    // chosen; when it does not, this passes either way.
    let (lease2, mut card2) = insert("cps4-doctor")?;
    let slot2 = slot_of(&p11, &lease2.name)?;
    card2.remove();
    wait_for_card(&lease2.name, false, BOUND)?;
    while p11.get_slot_event()?.is_some() {}
    let both = Waiter::start(&p11);
    card.insert()?;
    card2.insert()?;
    let first = both.answer()??;
    let expected_next = match first {
        s if s == slot => slot2,
        s if s == slot2 => slot,
        other => return Err(format!("event for {other}, expected {slot} or {slot2}").into()),
    };
    assert_eq!(
        next_event(&p11)?,
        expected_next,
        "the second insertion of the batch"
    );
    wait_for_card(&lease.name, true, BOUND)?;
    wait_for_card(&lease2.name, true, BOUND)?;
    while p11.get_slot_event()?.is_some() {}
    assert_eq!(p11.get_slot_event()?, None, "each event is reported once");

    // C_Finalize from another thread wakes a blocked waiter.
    let blocked = Waiter::start(&p11);
    p11.clone().finalize()?;
    match blocked.answer()? {
        Err(Error::Pkcs11(RvError::CryptokiNotInitialized, _)) => {}
        other => panic!("after C_Finalize the waiter got {other:?}"),
    }
    match p11.get_slot_event() {
        Err(Error::Pkcs11(RvError::CryptokiNotInitialized, _)) => {}
        other => return Err(format!("after C_Finalize: {other:?}").into()),
    }

    // C_Finalize while the waiter is still on its way into its wait: before its call, during
    // its set-up (a PC/SC context, the readers' state), or as it blocks. A cancel sent before
    // pcsc-lite blocks used to be lost, leaving the waiter blocked for ever. The pause before
    // C_Finalize sweeps 0–6 ms over the rounds so that it lands at different points of that
    // way (where exactly cannot be chosen); the verdict does not depend on it: every time, the
    // waiter answers CKR_CRYPTOKI_NOT_INITIALIZED. Nothing moves in the reader meanwhile, so any
    // other answer is wrong.
    for round in 0..60u32 {
        p11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))?;
        let (tx, rx) = mpsc::channel();
        let waiter = p11.clone();
        thread::spawn(move || tx.send(waiter.wait_for_slot_event()));
        thread::sleep(Duration::from_micros(100) * round);
        p11.clone().finalize()?;
        match rx.recv_timeout(BOUND) {
            Ok(Err(Error::Pkcs11(RvError::CryptokiNotInitialized, _))) => {}
            Ok(other) => {
                return Err(format!("round {round}: after C_Finalize the waiter got {other:?}").into());
            }
            Err(_) => {
                return Err(
                    format!("round {round}: C_Finalize did not wake the waiter within {BOUND:?}").into(),
                );
            }
        }
    }
    Ok(())
}
