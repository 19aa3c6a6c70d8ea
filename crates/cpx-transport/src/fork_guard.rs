//! Keeping fork() out of pcsc-lite's global lock.
//!
//! pcsc-lite 1.9.9 has no fork handling. Its client library holds one global mutex across the
//! pcscd round trips of `SCardEstablishContext`, and for an instant on entry to every other call
//! (finding the call's context). A fork() at such a moment gives the child a mutex locked by a
//! thread that does not exist there, and the child's first `SCardEstablishContext` waits for
//! ever (seen: 1 hung child in 2,000 forks of a process whose threads sign and poll, when other
//! threads were establishing contexts).
//!
//! Every PC/SC call of this crate registers itself here for its duration. A process
//! that forks runs [`prepare`] first (the PKCS#11 module registers it with `pthread_atfork`):
//! new calls wait, and the fork waits (bounded) until each call in flight has either finished or
//! been under way long enough to be past its entry, except `SCardEstablishContext`, which is
//! waited for until it returns. [`after_fork`] lets calls go on again, in the parent and the child.
//! A call blocked for long (a monitor's wait, a card that does not answer) thus never delays a
//! fork by more than 2 ms. Calls made by the host application's own PC/SC code are not
//! covered: nothing outside pcsc-lite can cover them.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long after its start a call is taken to be past pcsc-lite's global lock (its entry takes
/// well under a microsecond; this leaves room for the thread being preempted there).
const ENTRY: Duration = Duration::from_millis(2);
/// The longest a fork waits for calls in flight (an `SCardEstablishContext` to a pcscd that does
/// not answer would otherwise hold it for ever).
const FORK_WAIT: Duration = Duration::from_millis(200);
/// Calls that can be in flight at once (more: the extra ones are not tracked).
const SLOTS: usize = 64;
/// A slot's value for an `SCardEstablishContext` in flight (waited for until it returns).
const ESTABLISHING: u64 = u64::MAX;

static FORKING: AtomicBool = AtomicBool::new(false);
/// Per call in flight: its start ([`micros`], 0 = free slot) or [`ESTABLISHING`].
static IN_FLIGHT: [AtomicU64; SLOTS] = [const { AtomicU64::new(0) }; SLOTS];

/// Microseconds since the process's time origin (never 0).
fn micros() -> u64 {
    u64::try_from(crate::since_start().as_micros())
        .unwrap_or(u64::MAX - 1)
        .clamp(1, u64::MAX - 1)
}

/// A PC/SC call in flight; dropping it ends the registration.
#[must_use]
pub(crate) struct InFlight(Option<usize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(i) = self.0 {
            IN_FLIGHT[i].store(0, Ordering::SeqCst);
        }
    }
}

fn register(value: u64) -> InFlight {
    loop {
        let slot = IN_FLIGHT.iter().position(|s| {
            s.compare_exchange(0, value, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        });
        let call = InFlight(slot);
        // Registered first, then the flag: a fork that raised the flag after this check sees
        // the registration (both SeqCst), one that raised it before is waited out here.
        if !FORKING.load(Ordering::SeqCst) {
            return call;
        }
        drop(call);
        while FORKING.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_micros(50));
        }
    }
}

/// Register a PC/SC call for its duration (hold the guard across the call).
pub(crate) fn enter() -> InFlight {
    register(micros())
}

/// Register an `SCardEstablishContext`, which holds pcsc-lite's global lock throughout.
pub(crate) fn establishing() -> InFlight {
    register(ESTABLISHING)
}

/// Before fork(): stop new PC/SC calls of this crate, and wait (at most 200 ms) until none in
/// flight can be holding pcsc-lite's global lock. Call [`after_fork`] after the fork, in the
/// parent and in the child (`pthread_atfork`'s three handlers).
///
/// ```
/// cpx_transport::fork_guard::prepare();
/// // fork() here
/// cpx_transport::fork_guard::after_fork();
/// ```
pub fn prepare() {
    FORKING.store(true, Ordering::SeqCst);
    let deadline = Instant::now() + FORK_WAIT;
    let entry = u64::try_from(ENTRY.as_micros()).unwrap_or(u64::MAX);
    loop {
        let now = micros();
        let risky = IN_FLIGHT.iter().any(|s| {
            let v = s.load(Ordering::SeqCst);
            v == ESTABLISHING || (v != 0 && now.saturating_sub(v) < entry)
        });
        if !risky || Instant::now() >= deadline {
            return;
        }
        std::thread::sleep(Duration::from_micros(100));
    }
}

/// After fork(), in the parent and in the child: PC/SC calls go on. In the child, the calls
/// that were in flight belong to threads that do not exist there: forgotten.
pub fn after_fork() {
    FORKING.store(false, Ordering::SeqCst);
}

/// In the child after fork(): forget the parent's calls in flight, then [`after_fork`].
pub fn after_fork_in_child() {
    for s in &IN_FLIGHT {
        s.store(0, Ordering::SeqCst);
    }
    after_fork();
}
