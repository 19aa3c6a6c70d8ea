//! Module-wide state: C_Initialize / C_Finalize, fork detection, the lock helpers.
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
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::readers::{Canceller, Monitor, Pcsc};
use cryptoki_sys::*;

use crate::error::{Result, ck};
use crate::session::Session;
use crate::slots::Slot;

/// Lock a mutex, ignoring poisoning (a panic caught at the FFI boundary must not brick the
/// module).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What C_Initialize was given, already read from `CK_C_INITIALIZE_ARGS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InitArgs {
    /// How many of the four mutex callbacks were supplied (0..=4).
    pub mutex_callbacks: u8,
    /// `CKF_OS_LOCKING_OK`.
    pub os_locking_ok: bool,
    /// `pReserved` was not NULL.
    pub reserved: bool,
}

/// The initialised module.
pub struct Module {
    /// The process that called C_Initialize (fork detection).
    pub pid: u32,
    /// The module's PC/SC context, for reader lists (established lazily: pcscd may start after
    /// us). Used only under this lock: see the module docs on contexts.
    pub pcsc: Mutex<Option<Pcsc>>,
    /// Slot `i` has ID `i`; slots are never removed (a reader that goes keeps its slot, empty).
    pub slots: Mutex<Vec<Arc<Slot>>>,
    /// Open sessions by handle.
    pub sessions: Mutex<HashMap<CK_SESSION_HANDLE, Arc<Session>>>,
    /// Card and reader changes, polled (zero timeout) by every slot refresh.
    pub monitor: Mutex<Option<Monitor>>,
    /// When session calls last polled PC/SC.
    pub last_poll: Mutex<Option<std::time::Instant>>,
    /// C_WaitForSlotEvent: reader → card present, as last reported; `None`: to be reported
    /// whatever it shows (pcscd was lost since, and every token with it).
    pub event_snapshot: Mutex<HashMap<String, Option<bool>>>,
    /// The canceller of a blocked C_WaitForSlotEvent, for C_Finalize.
    pub waiters: Mutex<Vec<(u64, Canceller)>>,
    /// Set by C_Finalize.
    pub finalized: AtomicBool,
    /// The disk cache of public objects (`None`: disabled), from the environment at
    /// C_Initialize (see [`crate::cache`]).
    pub cache: Option<crate::cache::Store>,
}

/// Session and object handles: never reused for the life of the process, across C_Finalize and
/// C_Initialize too, so a stale handle kept by an application never names a new session or
/// object.
static NEXT_SESSION: AtomicU64 = AtomicU64::new(1);
static NEXT_OBJECT: AtomicU64 = AtomicU64::new(1);

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

/// Start logging if `CPX_PKCS11_LOG` is set (an `env_logger` filter, e.g. `debug` or
/// `cpx_pkcs11=trace,cpx::apdu=trace`), to stderr.
fn init_logging() {
    if let Ok(filter) = std::env::var("CPX_PKCS11_LOG") {
        let _ = env_logger::Builder::new()
            .parse_filters(&filter)
            .target(env_logger::Target::Stderr)
            .try_init();
    }
}

/// C_Initialize.
pub fn initialize(args: Option<InitArgs>) -> Result<()> {
    if let Some(a) = args {
        if a.reserved {
            return ck(CKR_ARGUMENTS_BAD);
        }
        if a.mutex_callbacks != 0 && a.mutex_callbacks != 4 {
            return ck(CKR_ARGUMENTS_BAD);
        }
        // Callbacks without CKF_OS_LOCKING_OK (case 3): the C ABI layer serialises the entry
        // points with the application's mutex (ffi/app_lock.rs).
    }
    init_logging();
    crate::ffi::register_fork_handlers();
    // In a forked child this is a new cell: the parent's module (its PC/SC contexts and card
    // handles, its locks) is never touched, closed or freed here (closing would talk to pcscd
    // on the parent's behalf).
    let cell = crate::ffi::own_cell_or_new();
    let mut guard = cell.module.write().unwrap_or_else(PoisonError::into_inner);
    let pid = std::process::id();
    if guard.is_some() {
        return ck(CKR_CRYPTOKI_ALREADY_INITIALIZED);
    }
    let pcsc = match Pcsc::establish() {
        Ok(p) => Some(p),
        Err(e) => {
            log::warn!("PC/SC not available yet: {e}");
            None
        }
    };
    let module = Module {
        pid,
        pcsc: Mutex::new(pcsc),
        slots: Mutex::new(Vec::new()),
        monitor: Mutex::new(None),
        last_poll: Mutex::new(None),
        sessions: Mutex::new(HashMap::new()),
        event_snapshot: Mutex::new(HashMap::new()),
        waiters: Mutex::new(Vec::new()),
        finalized: AtomicBool::new(false),
        cache: crate::cache::Store::from_env(),
    };
    match &module.cache {
        Some(c) => log::debug!("disk cache in {}", c.dir().display()),
        None => log::debug!("no disk cache"),
    }
    let module = Arc::new(module);
    if let Err(e) = module.refresh_slots() {
        log::debug!("initial reader scan: {e}");
    }
    module.snapshot_events();
    *guard = Some(module);
    log::info!("cpx PKCS#11 module {} initialised", env!("CARGO_PKG_VERSION"));
    Ok(())
}

/// C_Finalize: drop every session and card, wake C_WaitForSlotEvent.
pub fn finalize() -> Result<()> {
    let taken = {
        // A forked child without its own C_Initialize has no cell: not initialised here.
        let Some(cell) = crate::ffi::own_cell() else {
            return ck(CKR_CRYPTOKI_NOT_INITIALIZED);
        };
        let mut guard = cell.module.write().unwrap_or_else(PoisonError::into_inner);
        match guard.take() {
            Some(m) => m,
            None => return ck(CKR_CRYPTOKI_NOT_INITIALIZED),
        }
    };
    taken.finalized.store(true, Ordering::SeqCst);
    for (_, c) in lock(&taken.waiters).drain(..) {
        c.cancel();
    }
    lock(&taken.sessions).clear();
    log::info!("cpx PKCS#11 module finalised");
    Ok(())
}

/// C_GetInfo.
pub fn info() -> Result<CK_INFO> {
    module()?;
    Ok(CK_INFO {
        cryptokiVersion: CK_VERSION { major: 2, minor: 40 },
        manufacturerID: crate::slots::pad::<32>("cpx"),
        flags: 0,
        libraryDescription: crate::slots::pad::<32>("cpx PKCS#11 for CPS3/CPS4"),
        libraryVersion: CK_VERSION {
            major: env!("CARGO_PKG_VERSION_MAJOR").parse().unwrap_or(0),
            minor: env!("CARGO_PKG_VERSION_MINOR").parse().unwrap_or(0),
        },
    })
}

impl Module {
    /// The PC/SC context, establishing it if pcscd was not there before.
    pub fn pcsc(&self) -> Option<Pcsc> {
        let mut g = lock(&self.pcsc);
        if g.is_none() {
            *g = Pcsc::establish().ok();
        }
        g.clone()
    }

    /// A new session handle.
    pub fn new_session_handle(&self) -> CK_SESSION_HANDLE {
        NEXT_SESSION.fetch_add(1, Ordering::Relaxed) as CK_SESSION_HANDLE
    }

    /// A new object handle.
    pub fn new_object_handle(&self) -> CK_OBJECT_HANDLE {
        NEXT_OBJECT.fetch_add(1, Ordering::Relaxed) as CK_OBJECT_HANDLE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_args_rules() {
        let partial = InitArgs {
            mutex_callbacks: 2,
            ..InitArgs::default()
        };
        assert_eq!(
            initialize(Some(partial)).map_err(|e| e.rv()).err(),
            Some(CKR_ARGUMENTS_BAD)
        );
        let reserved = InitArgs {
            reserved: true,
            ..InitArgs::default()
        };
        assert_eq!(
            initialize(Some(reserved)).map_err(|e| e.rv()).err(),
            Some(CKR_ARGUMENTS_BAD)
        );
    }
}
