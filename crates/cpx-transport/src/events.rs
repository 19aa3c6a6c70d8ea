//! Waiting for cards and readers to come and go.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use pcsc::{ReaderState, State};

use crate::readers::ReaderStatus;
use crate::{Pcsc, TransportError};

/// The most reader states pcsc-lite accepts in one `SCardGetStatusChange`.
const MAX_STATES: usize = 16;

/// The longest one `SCardGetStatusChange` of [`Monitor::wait`] blocks before the wait looks at
/// its cancel flag again. pcsc-lite's `SCardCancel` only reaches a context that is inside the
/// blocking part of that call (sent at any other moment it is dropped, and still returns
/// success), so [`Canceller::cancel`] also raises a flag: a cancel that pcsc-lite dropped is seen
/// at the latest one slice later. Each slice costs pcscd one request, nothing more.
const WAIT_SLICE: Duration = Duration::from_millis(250);

/// Something that happened to a reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReaderEvent {
    /// A card was inserted (or a removal and an insertion happened between two polls).
    CardInserted {
        /// The reader.
        reader: String,
        /// The new card's ATR.
        atr: Vec<u8>,
    },
    /// The card was removed.
    CardRemoved {
        /// The reader.
        reader: String,
    },
    /// A reader was plugged in.
    ReaderAdded {
        /// The reader.
        reader: String,
    },
    /// A reader was unplugged.
    ReaderRemoved {
        /// The reader.
        reader: String,
    },
}

/// Watches every reader and the PC/SC plug-and-play pseudo-reader (`\\?PnP?\Notification`).
///
/// It has its own PC/SC context, so [`Canceller::cancel`] wakes only this monitor. A cancel ends
/// the wait in progress, or the next one if none is in progress (see [`Canceller::cancel`]).
///
/// ```no_run
/// use std::time::Duration;
/// let pcsc = cpx_transport::Pcsc::establish()?;
/// let mut monitor = pcsc.monitor()?;
/// let stop = monitor.canceller();
/// std::thread::spawn(move || { std::thread::sleep(Duration::from_secs(30)); stop.cancel(); });
/// match monitor.wait(None) {
///     Ok(events) => println!("{events:?}"),
///     Err(cpx_transport::TransportError::Cancelled) => println!("nothing happened"),
///     Err(e) => return Err(e),
/// }
/// # Ok::<(), cpx_transport::TransportError>(())
/// ```
pub struct Monitor {
    ctx: pcsc::Context,
    /// Per reader: the status last reported and the PC/SC event counter.
    known: BTreeMap<String, (ReaderStatus, u32)>,
    states: Vec<ReaderState>,
    /// Raised by [`Canceller::cancel`], lowered by the wait that returns `Cancelled` for it.
    cancelled: Arc<AtomicBool>,
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor")
            .field("readers", &self.known.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Wakes a [`Monitor::wait`] blocked on another thread (it returns [`TransportError::Cancelled`]).
#[derive(Clone)]
pub struct Canceller {
    ctx: pcsc::Context,
    cancelled: Arc<AtomicBool>,
}

impl std::fmt::Debug for Canceller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Canceller")
    }
}

impl Canceller {
    /// Cancel the monitor's wait in progress, or, when none is, its next wait: that wait returns
    /// [`TransportError::Cancelled`] promptly (within 250 ms, whatever the monitor was doing:
    /// the wait blocks in slices and looks at the cancel between them). One cancel ends one
    /// wait; cancels made before that wait returns are not counted, and the waits after it
    /// block as usual.
    ///
    /// ```no_run
    /// let pcsc = cpx_transport::Pcsc::establish()?;
    /// let mut monitor = pcsc.monitor()?;
    /// monitor.canceller().cancel(); // before the wait: not lost
    /// assert!(matches!(monitor.wait(None), Err(cpx_transport::TransportError::Cancelled)));
    /// # Ok::<(), cpx_transport::TransportError>(())
    /// ```
    pub fn cancel(&self) {
        // The flag first: a wait woken by SCardCancel must find it raised.
        self.cancelled.store(true, Ordering::SeqCst);
        let cancelled = {
            let _pc = crate::fork_guard::enter();
            self.ctx.cancel()
        };
        if let Err(e) = cancelled {
            log::debug!("SCardCancel: {e}");
        }
    }
}

impl Pcsc {
    /// A monitor that knows the current state of every reader; [`Monitor::wait`] reports changes
    /// from there on.
    pub fn monitor(&self) -> Result<Monitor, TransportError> {
        let ctx = {
            let _pc = crate::fork_guard::establishing();
            pcsc::Context::establish(pcsc::Scope::User)
        }
        .map_err(|e| TransportError::from_pcsc("SCardEstablishContext", "", e))?;
        let mut monitor = Monitor {
            ctx,
            known: BTreeMap::new(),
            states: Vec::new(),
            cancelled: Arc::new(AtomicBool::new(false)),
        };
        monitor.rescan(&mut Vec::new(), false)?;
        Ok(monitor)
    }
}

impl Monitor {
    /// A handle that can cancel a wait from another thread.
    pub fn canceller(&self) -> Canceller {
        Canceller {
            ctx: self.ctx.clone(),
            cancelled: Arc::clone(&self.cancelled),
        }
    }

    /// The readers this monitor currently knows, with their last seen status.
    pub fn readers(&self) -> impl Iterator<Item = (&str, ReaderStatus)> {
        self.known
            .iter()
            .map(|(name, (status, _))| (name.as_str(), *status))
    }

    /// Block until at least one event, the timeout (`None` = forever) or a cancel (see
    /// [`Canceller::cancel`]). A zero timeout reports only what PC/SC already knows.
    pub fn wait(&mut self, timeout: Option<Duration>) -> Result<Vec<ReaderEvent>, TransportError> {
        // A timeout too large for the clock is no timeout.
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        loop {
            if self.cancelled.swap(false, Ordering::SeqCst) {
                return Err(TransportError::Cancelled);
            }
            let remaining = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            let slice = remaining.map_or(WAIT_SLICE, |r| r.min(WAIT_SLICE));
            if slice.is_zero() {
                self.ask_unaware();
            }
            let changed = {
                let _pc = crate::fork_guard::enter();
                self.ctx.get_status_change(slice, &mut self.states)
            };
            match changed {
                Ok(()) => {}
                Err(pcsc::Error::Timeout) => {
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Err(TransportError::Timeout);
                    }
                    continue;
                }
                // The flag, checked at the top, tells a cancel of this wait from the late
                // SCardCancel of a cancel an earlier wait already returned for (then: wait on).
                Err(pcsc::Error::Cancelled) => continue,
                Err(e) => return Err(TransportError::from_pcsc("SCardGetStatusChange", "", e)),
            }
            let mut events = Vec::new();
            let pnp_changed = self
                .states
                .iter()
                .any(|s| s.name() == pcsc::PNP_NOTIFICATION() && s.event_state().contains(State::CHANGED));
            let reader_gone = self.states.iter().any(|s| {
                s.name() != pcsc::PNP_NOTIFICATION()
                    && s.event_state().intersects(State::UNKNOWN | State::IGNORE)
            });
            self.rescan(&mut events, pnp_changed || reader_gone)?;
            if !events.is_empty() {
                return Ok(events);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(TransportError::Timeout);
            }
        }
    }

    /// Before a zero-timeout poll: every reader's state asked for as if unknown. pcsc-lite 1.9.9
    /// answers a poll whose states all match the readers' by registering a wait, polling and
    /// cancelling it (1.35 ms per call, measured), and one with an unknown state at once (one
    /// round trip, 0.14 ms). What changed is found as after any wait, by comparing each reader's
    /// status and event counter with what this monitor knew ([`Monitor::rescan`]); the PnP entry
    /// keeps its state, so that a reader plugged in or out still shows as its change.
    fn ask_unaware(&mut self) {
        for s in &mut self.states {
            if s.name() != pcsc::PNP_NOTIFICATION() {
                *s = ReaderState::new(s.name().to_owned(), State::UNAWARE);
            }
        }
    }

    /// Compare each reader's state to what we knew, emit events, and (when `relist`) pick up
    /// readers that came or went.
    fn rescan(&mut self, events: &mut Vec<ReaderEvent>, relist: bool) -> Result<(), TransportError> {
        if relist || self.states.is_empty() {
            let listed = {
                let _pc = crate::fork_guard::enter();
                self.ctx.list_readers_owned()
            };
            let names = match listed {
                Ok(n) => n,
                Err(pcsc::Error::NoReadersAvailable) => Vec::new(),
                Err(e) => return Err(TransportError::from_pcsc("SCardListReaders", "", e)),
            };
            let c_names = names;
            let names: Vec<String> = c_names.iter().map(|n| n.to_string_lossy().into_owned()).collect();
            let first = self.states.is_empty();
            for gone in self
                .known
                .keys()
                .filter(|k| !names.contains(k))
                .cloned()
                .collect::<Vec<_>>()
            {
                self.known.remove(&gone);
                events.push(ReaderEvent::ReaderRemoved { reader: gone });
            }
            // pcsc-lite takes at most 16 states per SCardGetStatusChange
            // (PCSCLITE_MAX_READERS_CONTEXTS), which is also its reader limit: with 16 readers no
            // reader can be added, so the PnP entry is not needed (a removal shows on its entry).
            let with_pnp = names.len() < MAX_STATES;
            if names.len() > MAX_STATES {
                log::warn!("{} readers: only the first {MAX_STATES} are watched", names.len());
            }
            let mut states = Vec::with_capacity(MAX_STATES);
            if with_pnp {
                // Keep the PnP entry's knowledge so its change is not reported again.
                let pnp_state = self
                    .states
                    .iter()
                    .find(|s| s.name() == pcsc::PNP_NOTIFICATION())
                    .map_or(State::UNAWARE, |pnp| pnp.event_state() - State::CHANGED);
                states.push(ReaderState::new(pcsc::PNP_NOTIFICATION(), pnp_state));
            }
            for (name, c_name) in names.iter().zip(c_names).take(MAX_STATES) {
                if !first && !self.known.contains_key(name) {
                    events.push(ReaderEvent::ReaderAdded { reader: name.clone() });
                }
                let current = self
                    .states
                    .iter()
                    .find(|s| s.name().to_string_lossy() == *name)
                    .map_or(State::UNAWARE, ReaderState::current_state);
                states.push(ReaderState::new(c_name, current));
            }
            self.states = states;
            let _pc = crate::fork_guard::enter();
            self.ctx
                .get_status_change(Duration::ZERO, &mut self.states)
                .or_else(|e| if e == pcsc::Error::Timeout { Ok(()) } else { Err(e) })
                .map_err(|e| TransportError::from_pcsc("SCardGetStatusChange", "", e))?;
            if first {
                for s in &self.states {
                    if s.name() != pcsc::PNP_NOTIFICATION() {
                        let name = s.name().to_string_lossy().into_owned();
                        let status = ReaderStatus::from_state(s.event_state());
                        self.known.insert(name, (status, s.event_count()));
                    }
                }
                for s in &mut self.states {
                    s.sync_current_state();
                }
                return Ok(());
            }
        }
        for s in &mut self.states {
            if s.name() == pcsc::PNP_NOTIFICATION() {
                s.sync_current_state();
                continue;
            }
            let name = s.name().to_string_lossy().into_owned();
            let status = ReaderStatus::from_state(s.event_state());
            let count = s.event_count();
            let (old_status, old_count) = self
                .known
                .get(&name)
                .copied()
                .unwrap_or((ReaderStatus::Empty, count));
            let had = old_status.has_card();
            let has = status.has_card();
            if had && (!has || count.wrapping_sub(old_count) >= 2) {
                events.push(ReaderEvent::CardRemoved { reader: name.clone() });
            }
            if has && (!had || count.wrapping_sub(old_count) >= 2) {
                events.push(ReaderEvent::CardInserted {
                    reader: name.clone(),
                    atr: s.atr().to_vec(),
                });
            }
            self.known.insert(name, (status, count));
            s.sync_current_state();
        }
        Ok(())
    }
}
