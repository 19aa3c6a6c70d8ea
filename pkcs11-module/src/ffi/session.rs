//! Session and login entry points.

use std::ffi::c_void;

use cryptoki_sys::*;

use super::{guard, input, non_null, put};
use crate::state::module;

#[unsafe(no_mangle)]
pub(crate) unsafe extern "C" fn C_OpenSession(
    id: CK_SLOT_ID,
    flags: CK_FLAGS,
    _application: *mut c_void,
    _notify: CK_NOTIFY,
    handle: *mut CK_SESSION_HANDLE,
) -> CK_RV {
    guard("C_OpenSession", || {
        let m = module()?;
        non_null(handle)?;
        let h = m.open_session(id, flags)?;
        // SAFETY: non-NULL, valid per the caller.
        unsafe { put(handle, h) }
    })
}

#[unsafe(no_mangle)]
pub(crate) unsafe extern "C" fn C_CloseSession(h: CK_SESSION_HANDLE) -> CK_RV {
    guard("C_CloseSession", || module()?.close_session(h))
}

#[unsafe(no_mangle)]
pub(crate) unsafe extern "C" fn C_CloseAllSessions(id: CK_SLOT_ID) -> CK_RV {
    guard("C_CloseAllSessions", || module()?.close_all_sessions(id))
}

#[unsafe(no_mangle)]
pub(crate) unsafe extern "C" fn C_GetSessionInfo(h: CK_SESSION_HANDLE, info: *mut CK_SESSION_INFO) -> CK_RV {
    guard("C_GetSessionInfo", || {
        let m = module()?;
        non_null(info)?;
        let i = m.session_info(h)?;
        // SAFETY: non-NULL, valid per the caller.
        unsafe { put(info, i) }
    })
}

#[unsafe(no_mangle)]
pub(crate) unsafe extern "C" fn C_Login(
    h: CK_SESSION_HANDLE,
    user: CK_USER_TYPE,
    pin: *mut CK_UTF8CHAR,
    pin_len: CK_ULONG,
) -> CK_RV {
    guard("C_Login", || {
        let m = module()?;
        // SAFETY: checked by input.
        let pin = unsafe { input(pin, pin_len)? };
        m.login(h, user, pin)
    })
}

#[unsafe(no_mangle)]
pub(crate) unsafe extern "C" fn C_Logout(h: CK_SESSION_HANDLE) -> CK_RV {
    guard("C_Logout", || module()?.logout(h))
}

#[unsafe(no_mangle)]
pub(crate) unsafe extern "C" fn C_InitPIN(
    h: CK_SESSION_HANDLE,
    pin: *mut CK_UTF8CHAR,
    pin_len: CK_ULONG,
) -> CK_RV {
    guard("C_InitPIN", || {
        let m = module()?;
        // SAFETY: checked by input.
        let pin = unsafe { input(pin, pin_len)? };
        m.init_pin(h, pin)
    })
}

#[unsafe(no_mangle)]
pub(crate) unsafe extern "C" fn C_SetPIN(
    h: CK_SESSION_HANDLE,
    old: *mut CK_UTF8CHAR,
    old_len: CK_ULONG,
    new: *mut CK_UTF8CHAR,
    new_len: CK_ULONG,
) -> CK_RV {
    guard("C_SetPIN", || {
        let m = module()?;
        // SAFETY: checked by input.
        let (old, new) = unsafe { (input(old, old_len)?, input(new, new_len)?) };
        m.set_pin(h, old, new)
    })
}

#[unsafe(no_mangle)]
pub(crate) unsafe extern "C" fn C_GenerateRandom(
    h: CK_SESSION_HANDLE,
    out: *mut CK_BYTE,
    len: CK_ULONG,
) -> CK_RV {
    guard("C_GenerateRandom", || {
        let m = module()?;
        non_null(out)?;
        // Checked before any slice exists: a length no buffer can have, or over one call's
        // maximum, is CKR_ARGUMENTS_BAD (see `random`).
        let len = crate::random::checked_len(out as usize, len)?;
        // SAFETY: the caller's buffer holds `len` bytes (PKCS#11 contract), and `len` is a
        // length a buffer at `out` can have.
        let out = unsafe { std::slice::from_raw_parts_mut(out, len) };
        m.generate_random(h, out)
    })
}

/// PKCS#11 2.40 §5.14: the card's generator takes no seed (CKF_RNG without a seedable
/// generator): CKR_RANDOM_SEED_NOT_SUPPORTED, once the session and the seed pointer are checked.
#[unsafe(no_mangle)]
pub(crate) unsafe extern "C" fn C_SeedRandom(
    h: CK_SESSION_HANDLE,
    seed: *mut CK_BYTE,
    len: CK_ULONG,
) -> CK_RV {
    guard("C_SeedRandom", || {
        let m = module()?;
        if len > 0 {
            non_null(seed)?;
        }
        m.seed_random(h)
    })
}

/// PKCS#11 2.40 §5.16 (legacy): no function runs in parallel with the application:
/// CKR_FUNCTION_NOT_PARALLEL for a valid session.
#[unsafe(no_mangle)]
pub(crate) unsafe extern "C" fn C_GetFunctionStatus(h: CK_SESSION_HANDLE) -> CK_RV {
    guard("C_GetFunctionStatus", || module()?.legacy_parallel_function(h))
}

/// PKCS#11 2.40 §5.16 (legacy): as [`C_GetFunctionStatus`].
#[unsafe(no_mangle)]
pub(crate) unsafe extern "C" fn C_CancelFunction(h: CK_SESSION_HANDLE) -> CK_RV {
    guard("C_CancelFunction", || module()?.legacy_parallel_function(h))
}
