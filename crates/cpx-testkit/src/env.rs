//! The child side: which readers the sandbox has, who is using which, and waiting for cards.

use std::ffi::CString;
use std::sync::{Condvar, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use pcsc::{ReaderState, State};

use cpx_emulator::timing::Timing;

use crate::{ENV_READERS, ENV_TIMING, SandboxError, VirtualReader};

/// How long the testkit (and the tests) wait for anything PC/SC or pcscd should do by itself: a
/// card insertion or removal showing, pcscd polling a card, a reader given back becoming empty.
///
/// pcscd polls each vpcd reader every 400 ms, and on a loaded 2-core machine an insertion or
/// removal was seen to take up to 0.43 s to show, and longer under heavy parallel use. Every wait
/// returns as soon as its condition holds, so a generous bound costs nothing when things go well;
/// it only decides how long a real failure takes to be reported.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// The sandbox this process runs in, as described by its environment.
#[derive(Debug)]
pub struct SandboxEnv {
    readers: Vec<VirtualReader>,
    /// Per reader: `Some(n)` = free since the n-th return (0 = never used), `None` = leased.
    free: Mutex<Vec<Option<u64>>>,
    returns: std::sync::atomic::AtomicU64,
    returned: Condvar,
    timing: Timing,
}

/// Exclusive use of one virtual reader by one test; given back on drop.
#[derive(Debug)]
pub struct ReaderLease {
    /// The reader's PC/SC name.
    pub name: String,
    /// Its vpcd port.
    pub port: u16,
    index: usize,
    env: &'static SandboxEnv,
}

impl ReaderLease {
    /// `127.0.0.1:<port>`, where a [`cpx_vpcd::CardSlot`] connects.
    pub fn vpcd_addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for ReaderLease {
    fn drop(&mut self) {
        let mut free = self.env.free.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(slot) = free.get_mut(self.index) {
            let n = self
                .env
                .returns
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                + 1;
            *slot = Some(n);
        }
        self.env.returned.notify_all();
    }
}

static ENV: OnceLock<Option<SandboxEnv>> = OnceLock::new();

impl SandboxEnv {
    /// The sandbox of this process, or [`SandboxError::NotInSandbox`].
    pub fn get() -> Result<&'static SandboxEnv, SandboxError> {
        ENV.get_or_init(Self::from_env)
            .as_ref()
            .ok_or(SandboxError::NotInSandbox)
    }

    fn from_env() -> Option<SandboxEnv> {
        let spec = std::env::var(ENV_READERS).ok()?;
        let readers: Vec<VirtualReader> = spec
            .split(';')
            .filter_map(|item| {
                let (name, port) = item.rsplit_once('=')?;
                Some(VirtualReader {
                    name: name.to_owned(),
                    port: port.parse().ok()?,
                })
            })
            .collect();
        let free = Mutex::new(vec![Some(0); readers.len()]);
        Some(SandboxEnv {
            readers,
            free,
            returns: std::sync::atomic::AtomicU64::new(0),
            returned: Condvar::new(),
            // Unset (a sandbox of an older runner) or unreadable: the emulator's default.
            timing: std::env::var(ENV_TIMING)
                .ok()
                .and_then(|t| t.parse().ok())
                .unwrap_or_default(),
        })
    }

    /// How the sandbox's emulated cards answer ([`SandboxConfig::timing`](crate::SandboxConfig::timing)):
    /// [`emulated`](crate::emulated) applies it.
    pub fn timing(&self) -> Timing {
        self.timing
    }

    /// All readers of the sandbox.
    pub fn readers(&self) -> &[VirtualReader] {
        &self.readers
    }

    /// Take a free reader, waiting for one if every reader is leased; the reader is empty as
    /// PC/SC sees it. Panics (fails the test) with the reason when the reader still shows a card
    /// after [`DEADLINE`]: use [`try_lease`](Self::try_lease) to get that as an error.
    pub fn lease(&'static self) -> ReaderLease {
        match self.try_lease(DEADLINE) {
            Ok(lease) => lease,
            Err(e) => fail(&e),
        }
    }

    /// Take a free reader, waiting for one if every reader is leased, then wait (at most
    /// `within`) until PC/SC shows it empty: a card the previous user removed may take pcscd a
    /// poll or more to notice, and a test must not mistake it for its own. Fails, giving the
    /// reader back, when the reader still shows a card after `within`.
    ///
    /// ```no_run
    /// let env = cpx_testkit::SandboxEnv::get()?;
    /// let lease = env.try_lease(cpx_testkit::DEADLINE)?;
    /// assert!(!cpx_testkit::card_present(&lease.name)?);
    /// # Ok::<(), cpx_testkit::Failed>(())
    /// ```
    pub fn try_lease(&'static self, within: Duration) -> Result<ReaderLease, String> {
        let lease = {
            let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
            loop {
                // The reader free for the longest time: a reader just given back may still show
                // its previous card to PC/SC clients that poll slowly (a PKCS#11 module, a browser).
                let oldest = free
                    .iter()
                    .enumerate()
                    .filter_map(|(i, f)| f.map(|n| (n, i)))
                    .min();
                if let Some((_, index)) = oldest {
                    free[index] = None;
                    break self.leased(index);
                }
                free = self.returned.wait(free).unwrap_or_else(PoisonError::into_inner);
            }
        };
        settle(&[&lease], within)?;
        Ok(lease)
    }

    /// Take `n` distinct free readers at once (for tests with several cards), each empty as
    /// PC/SC sees it. Panics (fails the test) like [`lease`](Self::lease).
    pub fn lease_many(&'static self, n: usize) -> Vec<ReaderLease> {
        match self.try_lease_many(n, DEADLINE) {
            Ok(leases) => leases,
            Err(e) => fail(&e),
        }
    }

    /// Take `n` distinct free readers at once, waiting (at most `within`) until PC/SC shows
    /// them all empty, as [`try_lease`](Self::try_lease) does for one.
    pub fn try_lease_many(&'static self, n: usize, within: Duration) -> Result<Vec<ReaderLease>, String> {
        let leases = {
            let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
            loop {
                let mut available: Vec<(u64, usize)> = free
                    .iter()
                    .enumerate()
                    .filter_map(|(i, f)| f.map(|n| (n, i)))
                    .collect();
                available.sort_unstable();
                if available.len() >= n.min(self.readers.len()) {
                    break available
                        .into_iter()
                        .take(n)
                        .map(|(_, index)| {
                            free[index] = None;
                            self.leased(index)
                        })
                        .collect::<Vec<_>>();
                }
                free = self.returned.wait(free).unwrap_or_else(PoisonError::into_inner);
            }
        };
        settle(&leases.iter().collect::<Vec<_>>(), within)?;
        Ok(leases)
    }

    /// Wait (at most `within`) until PC/SC shows every reader of the sandbox empty, except the
    /// readers named in `held`.
    ///
    /// For tests that take turns because what they run sees every reader (a PKCS#11 tool
    /// listing tokens, a browser): the previous test's cards must be gone, not merely removed,
    /// or the tool may still find their tokens, which carry the same labels as this test's.
    ///
    /// ```no_run
    /// let env = cpx_testkit::SandboxEnv::get()?;
    /// env.wait_until_empty(&[], cpx_testkit::DEADLINE)?;
    /// let (lease, _card) = cpx_testkit::insert_image("cps3-doctor").map(|(l, c, _)| (l, c))?;
    /// // … run a tool that lists every reader: only this card shows …
    /// # Ok::<(), cpx_testkit::Failed>(())
    /// ```
    pub fn wait_until_empty(&self, held: &[&str], within: Duration) -> Result<(), String> {
        let others: Vec<(&str, bool)> = self
            .readers
            .iter()
            .map(|r| r.name.as_str())
            .filter(|name| !held.contains(name))
            .map(|name| (name, false))
            .collect();
        wait_readers(&others, within).map_err(|e| {
            format!(
                "{e}: a card another test inserted is still in (it must be removed before this test runs)"
            )
        })
    }

    fn leased(&'static self, index: usize) -> ReaderLease {
        let r = &self.readers[index];
        ReaderLease {
            name: r.name.clone(),
            port: r.port,
            index,
            env: self,
        }
    }
}

/// Wait until PC/SC shows the leased readers empty; the error says what to look for.
fn settle(leases: &[&ReaderLease], within: Duration) -> Result<(), String> {
    let want: Vec<(&str, bool)> = leases.iter().map(|l| (l.name.as_str(), false)).collect();
    wait_readers(&want, within).map_err(|e| {
        format!(
            "leased reader not empty: {e} after it was given back (a test dropped its lease but \
             kept its card inserted, or pcscd stopped polling the reader)"
        )
    })
}

/// The old signatures ([`SandboxEnv::lease`], [`SandboxEnv::lease_many`]) have no error channel:
/// a test whose reader is unusable fails by panicking, which libtest-mimic reports as a failure.
#[allow(clippy::panic, reason = "fails the calling test; the error is the message")]
fn fail(message: &str) -> ! {
    panic!("{message}")
}

/// Whether a PC/SC reader state shows a card.
fn shows_card(state: State) -> bool {
    state.contains(State::PRESENT) && !state.contains(State::EMPTY)
}

/// Whether PC/SC shows a card in `reader` right now (through the sandbox's pcscd).
pub fn card_present(reader: &str) -> Result<bool, pcsc::Error> {
    let ctx = pcsc::Context::establish(pcsc::Scope::User)?;
    let name = CString::new(reader).map_err(|_| pcsc::Error::UnknownReader)?;
    let mut states = [ReaderState::new(name, State::UNAWARE)];
    ctx.get_status_change(Duration::ZERO, &mut states)?;
    Ok(shows_card(states[0].event_state()))
}

/// Wait until PC/SC shows (`present = true`) or no longer shows a card in `reader`.
///
/// One PC/SC context blocks in `SCardGetStatusChange` until something changes or `timeout`
/// runs out: no polling, no new pcscd client per check. A reader pcscd does not know (yet) is a
/// reader without a card.
///
/// ```no_run
/// cpx_testkit::wait_for_card("cpx virtual 1 00 00", true, cpx_testkit::DEADLINE)?;
/// # Ok::<(), String>(())
/// ```
pub fn wait_for_card(reader: &str, present: bool, timeout: Duration) -> Result<(), String> {
    wait_readers(&[(reader, present)], timeout)
}

/// Wait until PC/SC shows, for each `(reader, present)`, a card (`true`) or none (`false`).
fn wait_readers(want: &[(&str, bool)], timeout: Duration) -> Result<(), String> {
    if want.is_empty() {
        return Ok(());
    }
    let deadline = Instant::now() + timeout;
    let ctx = pcsc::Context::establish(pcsc::Scope::User).map_err(|e| format!("PC/SC: {e}"))?;
    let mut watch = Watch::of(&ctx, want)?;
    loop {
        if watch.stale {
            watch = Watch::of(&ctx, want)?;
        }
        // The first call after (re)building the states (UNAWARE) returns at once with the
        // current states; each next call blocks until a state differs from the one we last saw,
        // the reader list changes, or the time left runs out.
        let left = deadline.saturating_duration_since(Instant::now());
        let wait = match (watch.fresh, watch.blind) {
            (true, _) => Duration::ZERO,
            (false, true) => left.min(Duration::from_millis(200)),
            (false, false) => left,
        };
        let fresh = std::mem::replace(&mut watch.fresh, false);
        // Whether the states are new: a refused call leaves the old ones.
        let judged = match ctx.get_status_change(wait, &mut watch.states) {
            Ok(()) | Err(pcsc::Error::Timeout) => {
                watch.stale = !fresh && watch.reader_list_changed();
                true
            }
            // pcsc-lite 1.9 refuses the whole call for a reader it no longer knows: list again.
            Err(pcsc::Error::UnknownReader) => {
                watch.stale = true;
                std::thread::sleep(Duration::from_millis(50));
                false
            }
            Err(e) => return Err(format!("PC/SC: SCardGetStatusChange: {e}")),
        };
        let pending: Vec<String> = want
            .iter()
            .filter(|(reader, present)| watch.shows_card(reader) != *present)
            .map(|(reader, present)| {
                let what = if *present { "insertion" } else { "removal" };
                format!("{reader}: no card {what} seen")
            })
            .collect();
        if judged && pending.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            if pending.is_empty() {
                return Err(format!("PC/SC kept refusing the reader list for {timeout:?}"));
            }
            return Err(format!("{} within {timeout:?}", pending.join(", ")));
        }
        watch.states.iter_mut().for_each(ReaderState::sync_current_state);
    }
}

/// The states `wait_readers` passes to `SCardGetStatusChange`: the wanted readers pcscd knows,
/// and the plug-and-play pseudo-reader, whose change means a reader came or went.
struct Watch {
    states: Vec<ReaderState>,
    /// Whether the states are still UNAWARE (the next call returns at once).
    fresh: bool,
    /// Whether the reader list must be read again before the next call.
    stale: bool,
    /// Whether a reader that is not (yet) known cannot wake us: the call then waits in steps.
    blind: bool,
}

impl Watch {
    /// pcsc-lite takes at most 16 states per call (`PCSCLITE_MAX_READERS_CONTEXTS`).
    const MAX_STATES: usize = 16;

    fn of(ctx: &pcsc::Context, want: &[(&str, bool)]) -> Result<Watch, String> {
        let known = match ctx.list_readers_owned() {
            Ok(names) => names,
            Err(pcsc::Error::NoReadersAvailable) => Vec::new(),
            Err(e) => return Err(format!("PC/SC: SCardListReaders: {e}")),
        };
        let mut states: Vec<ReaderState> = known
            .into_iter()
            .filter(|n| want.iter().any(|(reader, _)| n.as_bytes() == reader.as_bytes()))
            .map(|n| ReaderState::new(n, State::UNAWARE))
            .collect();
        let unknown = states.len() < want.len();
        let blind = unknown && states.len() >= Self::MAX_STATES;
        if unknown && !blind {
            states.push(ReaderState::new(pcsc::PNP_NOTIFICATION(), State::UNAWARE));
        }
        Ok(Watch {
            states,
            fresh: true,
            stale: false,
            blind,
        })
    }

    /// A reader pcscd does not know has no card.
    fn shows_card(&self, reader: &str) -> bool {
        self.states
            .iter()
            .find(|s| s.name().to_bytes() == reader.as_bytes())
            .is_some_and(|s| shows_card(s.event_state()))
    }

    fn reader_list_changed(&self) -> bool {
        self.blind
            || self
                .states
                .iter()
                .any(|s| s.name() == pcsc::PNP_NOTIFICATION() && s.event_state().contains(State::CHANGED))
    }
}
