//! Session and login entry points.

use std::ffi::c_void;

use cryptoki_sys::*;

use super::{guard, non_null, pin_input, put};
use crate::session;
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
        let h = session::open_session(&m, id, flags)?;
        // SAFETY: non-NULL, valid per the caller.
        unsafe { put(handle, h) }
    })
}

#[unsafe(no_mangle)]
pub(crate) unsafe extern "C" fn C_CloseSession(h: CK_SESSION_HANDLE) -> CK_RV {
    guard("C_CloseSession", || session::close_session(&*module()?, h))
}

#[unsafe(no_mangle)]
pub(crate) unsafe extern "C" fn C_CloseAllSessions(id: CK_SLOT_ID) -> CK_RV {
    guard("C_CloseAllSessions", || {
        session::close_all_sessions(&*module()?, id)
    })
}

#[unsafe(no_mangle)]
pub(crate) unsafe extern "C" fn C_GetSessionInfo(h: CK_SESSION_HANDLE, info: *mut CK_SESSION_INFO) -> CK_RV {
    guard("C_GetSessionInfo", || {
        let m = module()?;
        non_null(info)?;
        let i = session::session_info(&m, h)?;
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
        // SAFETY: checked by pin_input.
        let pin = unsafe { pin_input(pin, pin_len)? };
        session::login(&m, h, user, pin)
    })
}

#[unsafe(no_mangle)]
pub(crate) unsafe extern "C" fn C_Logout(h: CK_SESSION_HANDLE) -> CK_RV {
    guard("C_Logout", || session::logout(&*module()?, h))
}

#[unsafe(no_mangle)]
pub(crate) unsafe extern "C" fn C_InitPIN(
    h: CK_SESSION_HANDLE,
    pin: *mut CK_UTF8CHAR,
    pin_len: CK_ULONG,
) -> CK_RV {
    guard("C_InitPIN", || {
        let m = module()?;
        // SAFETY: checked by pin_input.
        let pin = unsafe { pin_input(pin, pin_len)? };
        session::init_pin(&m, h, pin)
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
        // SAFETY: checked by pin_input.
        let (old, new) = unsafe { (pin_input(old, old_len)?, pin_input(new, new_len)?) };
        session::set_pin(&m, h, old, new)
    })
}

/// PKCS#11 2.40 §5.16 (legacy): no function runs in parallel with the application:
/// CKR_FUNCTION_NOT_PARALLEL for a valid session.
#[unsafe(no_mangle)]
pub(crate) unsafe extern "C" fn C_GetFunctionStatus(h: CK_SESSION_HANDLE) -> CK_RV {
    guard("C_GetFunctionStatus", || {
        session::legacy_parallel_function(&*module()?, h)
    })
}

/// PKCS#11 2.40 §5.16 (legacy): as [`C_GetFunctionStatus`].
#[unsafe(no_mangle)]
pub(crate) unsafe extern "C" fn C_CancelFunction(h: CK_SESSION_HANDLE) -> CK_RV {
    guard("C_CancelFunction", || {
        session::legacy_parallel_function(&*module()?, h)
    })
}
