//! The module's registry: the slot table, the session table, the PC/SC context and monitor, the
//! disk cache, behind [`Module`] (no public field; C_Initialize and C_Finalize are in
//! [`crate::general`]). Below it: [`slot`] (a slot and its token), [`session`] (a session);
//! [`events`] polls PC/SC and waits for slot events.
//!
//! Locking model (documented in the crate docs): each process's module sits in a cell found
//! through an atomic pointer tagged with the process's pid (`ffi::process`), whose `RwLock` is
//! held only to clone the module's `Arc` out (no global lock is held while working, and a forked
//! child never touches its parent's); the slot table and the session table each have a `Mutex`
//! held only for lookups; each slot has one `Mutex` over its card, login state and objects, held
//! for the whole of a card operation (a card does one thing at a time), and atomics that show
//! its presence and login without that lock; each session has one `Mutex` over its active
//! operations. Order, when nested: session operations → slot → session table; the session table
//! is never held while taking a slot.
//!
//! PC/SC contexts: one per slot (its card handle's calls), one for the module's reader lists,
//! one per monitor. pcsc-lite serialises the calls of one context, and a thread that waits for a
//! busy context does so holding the library's global lock, which stalls every PC/SC call of the
//! process (`docs/pkcs11-module.md`, "Several programs, several readers"): so no context is
//! ever used by two threads at once (each is behind the lock of what owns it).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use cryptoki_sys::*;

use crate::cache::Store;
use crate::error::{Error, Result, ck};
use crate::ops::Ops;
use crate::readers::{Canceller, Monitor, Pcsc};
use crate::sync::lock;

pub mod events;
pub mod session;
pub mod slot;

use session::Session;
use slot::{Slot, SlotState};

/// The initialised module.
pub struct Module {
    /// The module's PC/SC context, for reader lists (established lazily: pcscd may start after
    /// us). Used only under this lock: see the module docs on contexts.
    pcsc: Mutex<Option<Pcsc>>,
    /// Slot `i` has ID `i`; slots are never removed (a reader that goes keeps its slot, empty).
    slots: Mutex<Vec<Arc<Slot>>>,
    /// Open sessions by handle.
    sessions: Mutex<HashMap<CK_SESSION_HANDLE, Arc<Session>>>,
    /// Card and reader changes, polled (zero timeout) by every slot refresh.
    monitor: Mutex<Option<Monitor>>,
    /// When session calls last polled PC/SC.
    last_poll: Mutex<Option<Instant>>,
    /// C_WaitForSlotEvent: reader → card present, as last reported; `None`: to be reported
    /// whatever it shows (pcscd was lost since, and every token with it).
    event_snapshot: Mutex<HashMap<String, Option<bool>>>,
    /// The canceller of a blocked C_WaitForSlotEvent, for C_Finalize.
    waiters: Mutex<Vec<(u64, Canceller)>>,
    /// Set by C_Finalize.
    finalized: AtomicBool,
    /// The disk cache of public objects (`None`: disabled), from the environment at
    /// C_Initialize (see [`crate::cache`]).
    cache: Option<Store>,
}

/// The module, or CKR_CRYPTOKI_NOT_INITIALIZED (also in a forked child that has not called
/// C_Initialize itself: it is told so without touching any lock its parent held).
pub fn module() -> Result<Arc<Module>> {
    let Some(cell) = crate::ffi::own_cell() else {
        return ck(CKR_CRYPTOKI_NOT_INITIALIZED);
    };
    let guard = cell.module.read().unwrap_or_else(PoisonError::into_inner);
    match &*guard {
        Some(m) => Ok(Arc::clone(m)),
        None => ck(CKR_CRYPTOKI_NOT_INITIALIZED),
    }
}

impl Module {
    /// A module with no slot yet (the first refresh finds the readers), its disk cache from the
    /// environment ([`Store::from_env`]).
    pub fn establish() -> Module {
        let pcsc = match Pcsc::establish() {
            Ok(p) => Some(p),
            Err(e) => {
                log::warn!("PC/SC not available yet: {e}");
                None
            }
        };
        let cache = Store::from_env();
        match &cache {
            Some(c) => log::debug!("disk cache in {}", c.dir().display()),
            None => log::debug!("no disk cache"),
        }
        Module {
            pcsc: Mutex::new(pcsc),
            slots: Mutex::new(Vec::new()),
            monitor: Mutex::new(None),
            last_poll: Mutex::new(None),
            sessions: Mutex::new(HashMap::new()),
            event_snapshot: Mutex::new(HashMap::new()),
            waiters: Mutex::new(Vec::new()),
            finalized: AtomicBool::new(false),
            cache,
        }
    }

    /// C_Finalize's part: every session dropped, every blocked C_WaitForSlotEvent woken.
    pub fn finalize(&self) {
        self.finalized.store(true, Ordering::SeqCst);
        for (_, c) in lock(&self.waiters).drain(..) {
            c.cancel();
        }
        lock(&self.sessions).clear();
    }

    /// The slot with this ID.
    pub fn slot(&self, id: CK_SLOT_ID) -> Result<Arc<Slot>> {
        usize::try_from(id)
            .ok()
            .and_then(|i| lock(&self.slots).get(i).cloned())
            .ok_or(Error::Ck(CKR_SLOT_ID_INVALID))
    }

    /// Every slot, in ID order.
    pub fn slots(&self) -> Vec<Arc<Slot>> {
        lock(&self.slots).clone()
    }

    /// The session, or CKR_SESSION_HANDLE_INVALID.
    pub fn session(&self, h: CK_SESSION_HANDLE) -> Result<Arc<Session>> {
        lock(&self.sessions)
            .get(&h)
            .cloned()
            .ok_or(Error::Ck(CKR_SESSION_HANDLE_INVALID))
    }

    /// Register a session opened on `slot` in token epoch `epoch`; its new handle.
    pub fn add_session(&self, slot: Arc<Slot>, rw: bool, epoch: u64) -> CK_SESSION_HANDLE {
        let handle = session::new_session_handle();
        lock(&self.sessions).insert(
            handle,
            Arc::new(Session {
                handle,
                slot,
                rw,
                epoch,
                ops: Mutex::new(Ops::default()),
            }),
        );
        handle
    }

    /// Take a session out of the table (`None`: no such session).
    pub fn remove_session(&self, h: CK_SESSION_HANDLE) -> Option<Arc<Session>> {
        lock(&self.sessions).remove(&h)
    }

    /// Drop every session of a slot.
    pub fn remove_sessions_of(&self, slot: CK_SLOT_ID) {
        lock(&self.sessions).retain(|_, s| s.slot.id != slot);
    }

    /// Sessions of a slot: (total, read-write).
    pub fn session_counts(&self, slot: CK_SLOT_ID) -> (usize, usize) {
        let map = lock(&self.sessions);
        let on_slot = map.values().filter(|s| s.slot.id == slot);
        let all: Vec<_> = on_slot.collect();
        (all.len(), all.iter().filter(|s| s.rw).count())
    }

    /// Whether a slot has a read-only session.
    pub fn has_ro_session(&self, slot: CK_SLOT_ID) -> bool {
        let map = lock(&self.sessions);
        map.values().any(|s| s.slot.id == slot && !s.rw)
    }

    /// Run `f` with the session's operations and its slot's state locked. A session whose
    /// token went away gets CKR_DEVICE_REMOVED once and is closed (later calls:
    /// CKR_SESSION_HANDLE_INVALID).
    pub fn with_session<T>(
        &self,
        h: CK_SESSION_HANDLE,
        f: impl FnOnce(&Session, &mut Ops, &mut SlotState) -> Result<T>,
    ) -> Result<T> {
        let session = self.session(h)?;
        self.refresh_slots_throttled()?;
        let mut ops = lock(&session.ops);
        let mut st = session.slot.state()?;
        if st.epoch != session.epoch || !st.card_present {
            drop(st);
            self.remove_session(h);
            return ck(CKR_DEVICE_REMOVED);
        }
        let r = f(&session, &mut ops, &mut st);
        if st.epoch != session.epoch {
            drop(st);
            self.remove_session(h);
        }
        r
    }
}
