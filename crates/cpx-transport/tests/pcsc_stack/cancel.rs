//! Cancelling a [`Monitor`] wait: during the wait, before it, and while the monitor is busy with
//! reader changes. pcsc-lite drops an `SCardCancel` that arrives while the context is not blocked
//! inside `SCardGetStatusChange`; the monitor must not lose such a cancel.

use std::sync::mpsc;
use std::time::Duration;

use cpx_testkit::Failed;
use cpx_transport::{Monitor, Pcsc, TransportError};

use crate::{SEEN, reader_with_card};

/// Run `wait` on `monitor` in another thread until it fails (events from other tests' readers
/// are skipped); the error comes back through the receiver, with the monitor.
fn wait_until_error(mut monitor: Monitor) -> mpsc::Receiver<(TransportError, Monitor)> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let err = loop {
            match monitor.wait(None) {
                Ok(_) => continue,
                Err(e) => break e,
            }
        };
        let _ = tx.send((err, monitor));
    });
    rx
}

/// The monitor back from a wait that ended with `Cancelled`; any other end, or none within
/// [`SEEN`], fails.
fn expect_cancelled(rx: &mpsc::Receiver<(TransportError, Monitor)>, what: &str) -> Result<Monitor, Failed> {
    match rx.recv_timeout(SEEN) {
        Ok((TransportError::Cancelled, monitor)) => Ok(monitor),
        Ok((e, _)) => Err(format!("{what}: expected Cancelled, got {e}").into()),
        Err(_) => Err(format!("{what}: the wait was still blocked after {SEEN:?}: cancel lost").into()),
    }
}

/// A cancel wakes a wait blocked on another thread. (The pause before the cancel makes it likely
/// that the wait is blocked inside pcsc-lite by then; the verdict does not depend on it.)
pub(crate) fn monitor_wait_is_cancellable() -> Result<(), Failed> {
    let monitor = Pcsc::establish()?.monitor()?;
    let canceller = monitor.canceller();
    let rx = wait_until_error(monitor);
    std::thread::sleep(Duration::from_millis(200));
    canceller.cancel();
    expect_cancelled(&rx, "cancel during the wait")?;
    Ok(())
}

/// A cancel made before the wait begins (pcsc-lite drops that SCardCancel: no call is blocked)
/// still ends that wait; it ends only that one, and two cancels count as one.
pub(crate) fn cancel_before_the_wait_is_not_lost() -> Result<(), Failed> {
    let monitor = Pcsc::establish()?.monitor()?;
    let canceller = monitor.canceller();
    canceller.cancel();
    canceller.cancel();
    let mut monitor = expect_cancelled(&wait_until_error(monitor), "cancel before the wait")?;
    // The next wait blocks as usual: it ends on its timeout or on other tests' events.
    match monitor.wait(Some(Duration::from_millis(300))) {
        Ok(_) | Err(TransportError::Timeout) => {}
        Err(e) => return Err(format!("the wait after a cancelled one: {e}").into()),
    }
    // And it can be cancelled again.
    canceller.cancel();
    expect_cancelled(&wait_until_error(monitor), "second cancel")?;
    Ok(())
}

/// Cancels while the monitor is busy with reader changes: another client connects to the card
/// (the reader shows it in use, then free again), which wakes the monitor; it looks at the
/// change (no event) and waits again, and the cancel is sent right then, when it is often outside
/// pcsc-lite's blocking call, where SCardCancel is dropped. Where a cancel lands cannot be
/// chosen, so this runs many rounds (about 5 ms each); the verdict does not depend on where it
/// lands: every cancel must end its wait. (Measured against the old monitor, with no cancel flag:
/// one run in three lost a cancel within 100 rounds; `cancel_before_the_wait_is_not_lost` loses
/// it every time.)
pub(crate) fn cancel_while_the_monitor_handles_changes_is_not_lost() -> Result<(), Failed> {
    let (lease, _slot, _log) = reader_with_card();
    let pcsc = Pcsc::establish()?;
    let mut monitor = pcsc.monitor()?;
    let canceller = monitor.canceller();
    for round in 0..100 {
        let rx = wait_until_error(monitor);
        for _ in 0..3 {
            drop(pcsc.connect(&lease.name)?);
        }
        canceller.cancel();
        monitor = expect_cancelled(&rx, &format!("round {round}"))?;
    }
    Ok(())
}
