//! PKCS#11 2.40 §5.4, C_Initialize case 3: the application gives the four mutex callbacks
//! without CKF_OS_LOCKING_OK, so "the library [must] use the supplied function pointers for
//! mutex-handling". The module then makes one mutex with `CreateMutex` and holds it, through
//! `LockMutex`/`UnlockMutex`, around every entry point but C_WaitForSlotEvent (a blocking wait
//! holding it would stop every other call, C_Finalize included, which must wake that wait).
//! Inside, the module's own locks then never see two application threads at once: whatever
//! threads the application runs, the callbacks are what serialises them. With
//! CKF_OS_LOCKING_OK (case 4) the native locks are used and the callbacks never called.

use std::ffi::c_void;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use cryptoki_sys::*;

type MutexFn = unsafe extern "C" fn(*mut c_void) -> CK_RV;

/// The application's mutex and what to call on it.
#[derive(Clone, Copy)]
struct AppMutex {
    destroy: MutexFn,
    lock: MutexFn,
    unlock: MutexFn,
    mutex: *mut c_void,
}

/// Set by C_Initialize in case 3, taken by C_Finalize. Atomics, not a lock: every entry point
/// reads them, a forked child included, and a lock a parent's thread held at the fork would
/// stay held in the child for ever (the fork stress test of tests/shared_card caught one).
/// [`PID`] is written last and read first: the process that installed the mutex (0: none); a
/// forked child, another process, never uses its parent's mutex.
static PID: AtomicU32 = AtomicU32::new(0);
static DESTROY: AtomicUsize = AtomicUsize::new(0);
static LOCK: AtomicUsize = AtomicUsize::new(0);
static UNLOCK: AtomicUsize = AtomicUsize::new(0);
static MUTEX: AtomicUsize = AtomicUsize::new(0);

fn current() -> Option<AppMutex> {
    let pid = PID.load(Ordering::Acquire);
    if pid == 0 || pid != std::process::id() {
        return None;
    }
    let f = |a: &AtomicUsize| -> Option<MutexFn> {
        let v = a.load(Ordering::Relaxed);
        // SAFETY: a non-zero value is a function pointer of this type stored by `install`.
        (v != 0).then(|| unsafe { std::mem::transmute::<usize, MutexFn>(v) })
    };
    Some(AppMutex {
        destroy: f(&DESTROY)?,
        lock: f(&LOCK)?,
        unlock: f(&UNLOCK)?,
        mutex: MUTEX.load(Ordering::Relaxed) as *mut c_void,
    })
}

/// Whether these arguments are case 3 (all four callbacks, no CKF_OS_LOCKING_OK).
pub(super) fn is_case_3(a: &CK_C_INITIALIZE_ARGS) -> bool {
    a.flags & CKF_OS_LOCKING_OK == 0
        && a.CreateMutex.is_some()
        && a.DestroyMutex.is_some()
        && a.LockMutex.is_some()
        && a.UnlockMutex.is_some()
}

/// Case 3: make the application's mutex (its CreateMutex's error is C_Initialize's).
///
/// # Safety
/// The callbacks behave as PKCS#11 §5.4 describes.
pub(super) unsafe fn install(a: &CK_C_INITIALIZE_ARGS) -> Result<(), CK_RV> {
    let (Some(create), Some(destroy), Some(lock), Some(unlock)) =
        (a.CreateMutex, a.DestroyMutex, a.LockMutex, a.UnlockMutex)
    else {
        return Ok(());
    };
    let mut mutex: *mut c_void = std::ptr::null_mut();
    // SAFETY: a valid out-pointer; the callback is the application's CreateMutex.
    let rv = unsafe { create(&mut mutex) };
    if rv != CKR_OK {
        return Err(rv);
    }
    DESTROY.store(destroy as usize, Ordering::Relaxed);
    LOCK.store(lock as usize, Ordering::Relaxed);
    UNLOCK.store(unlock as usize, Ordering::Relaxed);
    MUTEX.store(mutex as usize, Ordering::Relaxed);
    PID.store(std::process::id(), Ordering::Release);
    Ok(())
}

/// Case 3 ended (C_Finalize, or a C_Initialize that failed after [`install`]): the mutex is
/// destroyed, not held by this thread any more.
pub(super) fn retire() {
    let taken = current();
    PID.store(0, Ordering::Release);
    if let Some(a) = taken {
        // SAFETY: the mutex CreateMutex made, no longer used by the module.
        let rv = unsafe { (a.destroy)(a.mutex) };
        if rv != CKR_OK {
            log::debug!("DestroyMutex: {}", crate::error::rv_name(rv));
        }
    }
}

/// The application's mutex held until drop (nothing when not in case 3).
pub(super) struct Held(Option<AppMutex>);

/// Take the application's mutex, if it gave one; its LockMutex's error is the call's.
pub(super) fn enter() -> Result<Held, CK_RV> {
    let Some(a) = current() else {
        return Ok(Held(None));
    };
    // SAFETY: the mutex CreateMutex made.
    let rv = unsafe { (a.lock)(a.mutex) };
    if rv != CKR_OK {
        return Err(rv);
    }
    Ok(Held(Some(a)))
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(a) = self.0.take() {
            // SAFETY: the mutex this thread locked in `enter`.
            let rv = unsafe { (a.unlock)(a.mutex) };
            if rv != CKR_OK {
                log::debug!("UnlockMutex: {}", crate::error::rv_name(rv));
            }
        }
    }
}
