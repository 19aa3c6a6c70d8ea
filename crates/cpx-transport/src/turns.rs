//! Turn-taking between the processes that share a card (issue 13, "Starvation").
//!
//! # Why
//!
//! pcsc-lite gives the card's transaction to whoever asks at the right moment, with no queue.
//! A client whose `SCardBeginTransaction` finds the card locked gets no answer until pcscd has
//! slept `PCSCLITE_LOCK_POLL_RATE` (100 ms), then sleeps 100 ms itself and asks again
//! (pcsc-lite `winscard.c` and `winscard_clnt.c` `SCardBeginTransaction`); `SCardConnect` waits
//! in pcscd in 100 ms steps while any transaction is open (`winscard.c` `SCardConnect`, "Waiting
//! for release of lock"). Nobody is woken at `SCardEndTransaction`. So a process that signs in a
//! loop, beginning its next transaction microseconds after ending the previous one, finds the
//! card free almost every time, and a second process only gets in if one of its probes, every
//! ~200 ms, falls in one of those microsecond gaps: `cpx status` waited up to 11.2 s.
//!
//! # What cpx programs do
//!
//! Every transaction (and the connection itself) of a [`PcscChannel`](crate::PcscChannel) takes
//! a *turn* first, through two lock files per reader (and per pcscd socket) in a private
//! directory (`$XDG_RUNTIME_DIR/cpx/`, else `/tmp/cpx-<uid>/`: 0700, owned by us, else no
//! turn-taking):
//!
//! 1. **Yield.** A process that held the card less than [`BACK_TO_BACK`] ago first looks for
//!    waiters (`flock(LOCK_EX|LOCK_NB)` on the reader's `waiting` file fails while anyone holds
//!    `LOCK_SH` on it) and lets them go first: for one transaction each, or, once it has held the
//!    card for [`SLICE`] in this run (a signing loop), until the others have left the card
//!    (nobody waiting, nobody holding `busy`) for [`IDLE`], so that a newcomer finishes its run of
//!    transactions at once. At most [`YIELD_BOUND`].
//! 2. **Register.** It holds `LOCK_SH` on `waiting` until its own `SCardBeginTransaction` returns,
//!    which makes the holder yield at its next turn.
//! 3. **Wait for the holder.** It takes `LOCK_EX` on the reader's `busy` file, polling in 1 ms
//!    steps (for at most [`BUSY_BOUND`]): the holder releases it right after its
//!    `SCardEndTransaction`, so the waiter calls `SCardBeginTransaction` when the card is free and
//!    gets it at the first try, instead of at pcsc-lite's next 200 ms probe. It keeps `busy` until
//!    its own transaction has ended.
//!
//! A process that needs the card while another signs in a loop thus waits for about one of the
//! signer's transactions, then does all its work; two processes that both loop share the card in
//! slices of up to [`YIELD_BOUND`]. Costs: a few `flock` calls per transaction, and 1 ms polling
//! while waiting.
//!
//! # What it cannot do for other programs
//!
//! Cryptolib, OpenSC and anything else do not take turns: they are invisible to us and wait at
//! pcsc-lite's pace. The only thing a cpx process can do for them is leave the card free long
//! enough for one of their probes: after holding it for [`QUANTUM`] of back-to-back
//! transactions, it pauses [`GAP`] (longer than pcsc-lite's ~200 ms probe period) once. Such a
//! program may still wait up to about [`QUANTUM`] for each transaction it needs, and a program
//! that itself loops on transactions is not made to yield to us. The pause costs a lone signer
//! GAP / (QUANTUM + GAP) of its throughput while it signs without a break (figures in
//! docs/benchmarks-sharing.md). The pause holds `busy`, so that other cpx processes do not fill
//! it; they wait for it too.
//!
//! Every step is bounded, and any failure (no directory, a file we cannot open or lock) means
//! no turn-taking for that reader, logged at debug level: never an error. `CPX_PCSC_TURNS=off`
//! disables it all, as a diagnostic (to measure what it costs or changes).

use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::fs::{FileType, FlockOperation, Mode, OFlags};
use rustix::io::Errno;

/// Environment variable: `off` (or `0`) disables turn-taking in this process (a diagnostic).
pub(crate) const TURNS_ENV: &str = "CPX_PCSC_TURNS";

/// A transaction begun less than this after our previous one ended is "back to back": we are
/// holding the card in a loop, and yield to waiters first. A cooperating waiter sees the card free
/// within a millisecond or two; this is the margin for a loaded machine.
pub(crate) const BACK_TO_BACK: Duration = Duration::from_millis(100);
/// How long we yield to waiters at most before taking our turn anyway (a waiter that vanished
/// without unlocking cannot exist, flock locks die with their process, but one may be slow).
pub(crate) const YIELD_BOUND: Duration = Duration::from_secs(1);
/// How long a waiter polls the holder's `busy` lock before leaving the waiting to pcsc-lite.
pub(crate) const BUSY_BOUND: Duration = Duration::from_secs(10);
/// Time we held the card (our transactions, back to back) after which we pause once for programs
/// that do not take turns.
pub(crate) const QUANTUM: Duration = Duration::from_secs(1);
/// That pause: longer than pcsc-lite's period between two `SCardBeginTransaction` probes of a
/// waiter (100 ms in pcscd + 100 ms in the client, plus two round trips), so that one probe of
/// each waiter falls in it.
pub(crate) const GAP: Duration = Duration::from_millis(250);
/// How long a process must have held the card in a run of back-to-back transactions before it
/// yields to a waiter for the waiter's whole run, not for one transaction: a long holder
/// (a signing loop) lets a newcomer finish; two newcomers alternate transaction by transaction
/// (neither makes the other wait for its whole run).
pub(crate) const SLICE: Duration = Duration::from_millis(200);
/// How long the others must have left the card (no waiter, `busy` free) before a process that
/// yielded to them takes it again: longer than the pause between two transactions of a process
/// that has more to do, so that a waiter, once served, finishes its run.
pub(crate) const IDLE: Duration = Duration::from_millis(50);
/// A turn that took this long is logged (debug).
const SLOW_TURN: Duration = Duration::from_millis(50);
/// Polling step on the lock files.
const STEP: Duration = Duration::from_millis(1);
/// How long registering as a waiter may take: only a concurrent yield check (an instant
/// `LOCK_EX`) can be in the way.
const REGISTER_BOUND: Duration = Duration::from_millis(50);

/// One reader's turn-taking state, owned by one channel.
pub(crate) struct Turns {
    reader: String,
    /// Off with [`TURNS_ENV`]: plain pcsc-lite, for measurements.
    enabled: bool,
    files: Option<Files>,
    /// When our previous turn ended.
    last_end: Option<Instant>,
    /// How long we have held the card since our last pause for other programs (or since this
    /// run began): the others wait for this time, not for the wall-clock time of our run, of
    /// which other cpx processes may have had their share.
    since_pause: Duration,
    /// How long we have held the card (between `began` and the end of a turn) in this run.
    held: Duration,
}

/// The reader's two lock files, opened by this channel (flock locks belong to the open file).
struct Files {
    /// Held `LOCK_SH` by each process waiting for the card.
    waiting: OwnedFd,
    /// Held `LOCK_EX` by the process taking or holding the card.
    busy: OwnedFd,
}

impl Turns {
    /// Turn-taking for `reader` of the pcscd this process talks to; without it (disabled, or
    /// no usable directory), turns are plain pcsc-lite.
    pub(crate) fn new(reader: &str) -> Turns {
        let enabled = enabled();
        Turns {
            reader: reader.to_owned(),
            enabled,
            files: if enabled {
                private_dir().and_then(|dir| open_files(&dir, reader))
            } else {
                None
            },
            last_end: None,
            since_pause: Duration::ZERO,
            held: Duration::ZERO,
        }
    }

    /// Take a turn before `SCardConnect` or `SCardBeginTransaction`: yield to waiters if we are
    /// holding the card in a loop, pause once per [`QUANTUM`] of it, register as a waiter, wait
    /// for the holder's end. Call [`Turn::began`] once the card is ours, drop the turn once it is
    /// no longer.
    pub(crate) fn take(&mut self) -> Turn<'_> {
        let start = Instant::now();
        let back_to_back = self.last_end.is_some_and(|end| end.elapsed() < BACK_TO_BACK);
        if !back_to_back {
            self.since_pause = Duration::ZERO;
            self.held = Duration::ZERO;
        }
        let burst = self.held >= SLICE;
        let pause = self.enabled && back_to_back && self.since_pause >= QUANTUM;
        let mut turn = Turn {
            turns: self,
            waiting: false,
            busy: false,
            began: None,
        };
        let reader = turn.turns.reader.as_str();
        if let Some(files) = &turn.turns.files {
            if back_to_back {
                yield_to_waiters(files, reader, burst);
            }
            // Registered before waiting for `busy`: the holder sees us at its next turn and lets
            // us take it.
            turn.waiting = poll_lock(
                &files.waiting,
                FlockOperation::NonBlockingLockShared,
                REGISTER_BOUND,
                reader,
            );
            turn.busy = poll_lock(
                &files.busy,
                FlockOperation::NonBlockingLockExclusive,
                BUSY_BOUND,
                reader,
            );
            if !turn.busy {
                log::debug!("{reader}: no turn after {BUSY_BOUND:?}, leaving the wait to pcsc-lite");
            }
        }
        if pause {
            // Holding `busy`: the other cpx processes wait too, so that the card is really free
            // for the programs that do not take turns.
            log::debug!("{reader}: held for {QUANTUM:?}, pausing {GAP:?} for other programs");
            std::thread::sleep(GAP);
            // A new quantum; `held` stays: we are still the long holder that lets waiters finish.
            turn.turns.since_pause = Duration::ZERO;
        }
        if start.elapsed() >= SLOW_TURN {
            log::debug!("{}: our turn came after {:?}", turn.turns.reader, start.elapsed());
        }
        turn
    }
}

/// A turn: registered as a waiter until [`Turn::began`], owning `busy` (if we could take it)
/// until dropped. Drop it after `SCardEndTransaction`, or after a failed begin.
pub(crate) struct Turn<'a> {
    turns: &'a mut Turns,
    waiting: bool,
    busy: bool,
    /// When the card became ours.
    began: Option<Instant>,
}

impl Turn<'_> {
    /// The card is ours (`SCardConnect` or `SCardBeginTransaction` succeeded): we wait no more;
    /// `busy` stays ours until the turn is dropped.
    pub(crate) fn began(&mut self) {
        self.stop_waiting();
        self.began = Some(Instant::now());
    }

    fn stop_waiting(&mut self) {
        if std::mem::replace(&mut self.waiting, false)
            && let Some(files) = &self.turns.files
        {
            unlock(&files.waiting, &self.turns.reader);
        }
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.stop_waiting();
        if std::mem::replace(&mut self.busy, false)
            && let Some(files) = &self.turns.files
        {
            unlock(&files.busy, &self.turns.reader);
        }
        if let Some(began) = self.began {
            let held = began.elapsed();
            self.turns.held += held;
            self.turns.since_pause += held;
            self.turns.last_end = Some(Instant::now());
        }
    }
}

/// Whether turn-taking is on in this process ([`TURNS_ENV`]).
fn enabled() -> bool {
    static ENABLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ENABLED.get_or_init(|| {
        let off = std::env::var_os(TURNS_ENV).is_some_and(|v| v == "off" || v == "0");
        if off {
            log::debug!("{TURNS_ENV}: turn-taking disabled");
        }
        !off
    })
}

/// Let the processes registered as waiting on the reader take the card first (see the module
/// doc); whether there were any.
///
/// Without `burst`, until their `SCardBeginTransaction` has returned: one transaction each. With
/// `burst` (we have held the card for [`SLICE`] in this run), until nobody else has been waiting
/// or holding `busy` for [`IDLE`]: a process served after a long holder finishes its run of
/// transactions instead of paying one of ours for each of its own. At most [`YIELD_BOUND`].
fn yield_to_waiters(files: &Files, reader: &str, burst: bool) -> bool {
    let start = Instant::now();
    // A long holder also stays off while another holds the card: that process is in its run,
    // and would otherwise find us registered at its next turn and yield to us.
    let others = || {
        held_by_others(&files.waiting, FlockOperation::NonBlockingLockExclusive, reader)
            || (burst && held_by_others(&files.busy, FlockOperation::NonBlockingLockShared, reader))
    };
    if !others() {
        return false;
    }
    let mut idle_since: Option<Instant> = None;
    loop {
        let others = others();
        if others {
            idle_since = None;
        } else if !burst || idle_since.get_or_insert_with(Instant::now).elapsed() >= IDLE {
            log::debug!("{reader}: yielded {:?} to other processes", start.elapsed());
            return true;
        }
        if start.elapsed() >= YIELD_BOUND {
            log::debug!("{reader}: others still there after {YIELD_BOUND:?}, taking our turn");
            return true;
        }
        std::thread::sleep(STEP);
    }
}

/// Whether another open file holds a lock on `fd` that conflicts with `op` (non-blocking; the
/// lock taken to find out is released at once). An error counts as "no".
fn held_by_others(fd: &OwnedFd, op: FlockOperation, reader: &str) -> bool {
    match rustix::fs::flock(fd, op) {
        Ok(()) => {
            unlock(fd, reader);
            false
        }
        Err(Errno::WOULDBLOCK) => true,
        Err(e) => {
            log::debug!("{reader}: flock on a turn file: {e}");
            false
        }
    }
}

/// Take a lock with `op` (non-blocking), retrying in [`STEP`]s for at most `bound`; whether we
/// hold it.
fn poll_lock(fd: &OwnedFd, op: FlockOperation, bound: Duration, reader: &str) -> bool {
    let start = Instant::now();
    loop {
        match rustix::fs::flock(fd, op) {
            Ok(()) => return true,
            Err(Errno::WOULDBLOCK | Errno::INTR) if start.elapsed() < bound => std::thread::sleep(STEP),
            Err(Errno::WOULDBLOCK | Errno::INTR) => return false,
            Err(e) => {
                log::debug!("{reader}: flock: {e}");
                return false;
            }
        }
    }
}

fn unlock(fd: &OwnedFd, reader: &str) {
    if let Err(e) = rustix::fs::flock(fd, FlockOperation::Unlock) {
        // Cannot happen on an open file; the lock goes with the file when the channel drops.
        log::debug!("{reader}: unlocking a turn file: {e}");
    }
}

/// The reader's lock files, or `None` (logged) if they cannot be used safely.
fn open_files(dir: &Path, reader: &str) -> Option<Files> {
    // Readers are named per pcscd: the same name behind another pcscd (a test sandbox's, a
    // remote session's) is another card.
    let socket = std::env::var_os("PCSCLITE_CSOCK_NAME").unwrap_or_default();
    let key = format!(
        "{:016x}",
        fnv1a(&[socket.as_encoded_bytes(), &[0], reader.as_bytes()])
    );
    let open = |suffix: &str| -> Option<OwnedFd> {
        let path = dir.join(format!("{key}.{suffix}"));
        let opened = rustix::fs::open(
            &path,
            OFlags::RDWR | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        );
        let fd = match opened {
            Ok(fd) => fd,
            Err(e) => {
                log::debug!("{reader}: no turn-taking: {}: {e}", path.display());
                return None;
            }
        };
        match rustix::fs::fstat(&fd) {
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::RegularFile && st.st_uid == uid() => {
                Some(fd)
            }
            Ok(_) => {
                log::debug!("{reader}: no turn-taking: {} is not our own file", path.display());
                None
            }
            Err(e) => {
                log::debug!("{reader}: no turn-taking: {}: {e}", path.display());
                None
            }
        }
    };
    Some(Files {
        waiting: open("waiting")?,
        busy: open("busy")?,
    })
}

fn uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// `$XDG_RUNTIME_DIR/cpx`, else `<tmp>/cpx-<uid>`: created 0700 if missing, and used only if it
/// is a directory of ours that nobody else may enter (another user could otherwise hold our locks
/// or plant links).
fn private_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if Path::new(&d).is_absolute() => PathBuf::from(d).join("cpx"),
        _ => {
            let mut name = OsString::from("cpx-");
            name.push(uid().to_string());
            std::env::temp_dir().join(name)
        }
    };
    match rustix::fs::mkdir(&dir, Mode::from_raw_mode(0o700)) {
        Ok(()) | Err(Errno::EXIST) => {}
        Err(e) => {
            log::debug!("no turn-taking: {}: {e}", dir.display());
            return None;
        }
    }
    private(&dir).then_some(dir)
}

/// Whether `dir` is a directory (not a link to one) of ours that nobody else may enter.
fn private(dir: &Path) -> bool {
    match rustix::fs::lstat(dir) {
        Ok(st)
            if FileType::from_raw_mode(st.st_mode) == FileType::Directory
                && st.st_uid == uid()
                && st.st_mode & 0o077 == 0 =>
        {
            true
        }
        Ok(_) => {
            log::debug!(
                "no turn-taking: {} is not a private directory of ours",
                dir.display()
            );
            false
        }
        Err(e) => {
            log::debug!("no turn-taking: {}: {e}", dir.display());
            false
        }
    }
}

/// FNV-1a (64 bits) of `parts`, concatenated: a short, stable file name for a reader.
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in parts.iter().flat_map(|p| p.iter()) {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::os::unix::fs::PermissionsExt;
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Turn-taking for `reader` with its files in `dir` (as another process would have them: each
    /// `Turns` opens its own files, and flock locks of two open files conflict within a process too).
    fn turns_in(dir: &Path, reader: &str) -> Turns {
        Turns {
            reader: reader.to_owned(),
            enabled: true,
            files: open_files(dir, reader),
            last_end: None,
            since_pause: Duration::ZERO,
            held: Duration::ZERO,
        }
    }

    fn private_tempdir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        dir
    }

    /// Wait (bounded: a hang guard) until someone is registered as waiting on `reader`.
    fn until_registered(dir: &Path, reader: &str) {
        let probe = open_files(dir, reader).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !held_by_others(&probe.waiting, FlockOperation::NonBlockingLockExclusive, reader) {
            assert!(Instant::now() < deadline, "the waiter never registered");
            std::thread::sleep(STEP);
        }
    }

    #[test]
    fn a_waiter_takes_the_card_when_the_holder_ends_and_before_the_holder_again() {
        let dir = private_tempdir();
        let events = Arc::new(Mutex::new(Vec::new()));
        let mut holder = turns_in(dir.path(), "R");
        assert!(holder.files.is_some());
        let mut turn = holder.take();
        turn.began();

        let waiter = std::thread::spawn({
            let (dir, events) = (dir.path().to_owned(), Arc::clone(&events));
            move || {
                let mut turns = turns_in(&dir, "R");
                let mut turn = turns.take();
                events.lock().unwrap().push("waiter began");
                turn.began();
                std::thread::sleep(Duration::from_millis(20));
                events.lock().unwrap().push("waiter ended");
            }
        });
        until_registered(dir.path(), "R");
        events.lock().unwrap().push("holder ended");
        drop(turn);
        // Back to back: the holder lets the registered waiter go first.
        let mut turn = holder.take();
        turn.began();
        events.lock().unwrap().push("holder began again");
        drop(turn);
        waiter.join().unwrap();
        assert_eq!(
            *events.lock().unwrap(),
            [
                "holder ended",
                "waiter began",
                "waiter ended",
                "holder began again"
            ]
        );
    }

    #[test]
    fn no_turn_taking_in_a_directory_others_may_enter() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(!private(dir.path()));
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(private(dir.path()));
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(dir.path(), &link).unwrap();
        assert!(!private(&link));
    }

    #[test]
    fn readers_of_other_pcscds_have_other_files() {
        assert_ne!(fnv1a(&[b"/run/a", &[0], b"R"]), fnv1a(&[b"/run/b", &[0], b"R"]));
        assert_ne!(fnv1a(&[b"", &[0], b"R 00"]), fnv1a(&[b"", &[0], b"R 01"]));
    }
}
