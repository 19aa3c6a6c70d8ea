//! PKCS#11 2.40 §5.4, C_Initialize case 3: the application gives the four mutex callbacks
//! without CKF_OS_LOCKING_OK, so "the library [must] use the supplied function pointers for
//! mutex-handling". The module then makes one mutex with `CreateMutex` and holds it, through
//! `LockMutex`/`UnlockMutex`, around every entry point but C_WaitForSlotEvent (a blocking wait
//! holding it would stop every other call, C_Finalize included, which must wake that wait).
//! Inside, the module's own locks then never see two application threads at once: whatever
//! threads the application runs, the callbacks are what serialises them. With
//! CKF_OS_LOCKING_OK (case 4) the native locks are used and the callbacks never called.

use std::ffi::c_void;
use std::sync::{Mutex, PoisonError};

use cryptoki_sys::*;

/// The application's mutex and what to call on it.
#[derive(Clone, Copy)]
struct AppMutex {
    destroy: unsafe extern "C" fn(*mut c_void) -> CK_RV,
    lock: unsafe extern "C" fn(*mut c_void) -> CK_RV,
    unlock: unsafe extern "C" fn(*mut c_void) -> CK_RV,
    mutex: *mut c_void,
    /// The process that made it: a forked child never locks its parent's mutex (a thread of
    /// the parent may have held it at the fork).
    pid: u32,
}

// SAFETY: the pointer is the application's mutex handle, which PKCS#11 lets any thread pass to
// the callbacks; the module never dereferences it.
unsafe impl Send for AppMutex {}

/// Set by C_Initialize in case 3, taken by C_Finalize.
static APP: Mutex<Option<AppMutex>> = Mutex::new(None);

fn current() -> Option<AppMutex> {
    let app = *APP.lock().unwrap_or_else(PoisonError::into_inner);
    app.filter(|a| a.pid == std::process::id())
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
    *APP.lock().unwrap_or_else(PoisonError::into_inner) = Some(AppMutex {
        destroy,
        lock,
        unlock,
        mutex,
        pid: std::process::id(),
    });
    Ok(())
}

/// Case 3 ended (C_Finalize, or a C_Initialize that failed after [`install`]): the mutex is
/// destroyed, not held by this thread any more.
pub(super) fn retire() {
    let taken = APP.lock().unwrap_or_else(PoisonError::into_inner).take();
    if let Some(a) = taken.filter(|a| a.pid == std::process::id()) {
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
