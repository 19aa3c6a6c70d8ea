//! C_Initialize, C_Finalize, C_GetInfo, C_GetFunctionList, C_GetInterfaceList, C_GetInterface.

use std::ffi::c_void;

use cryptoki_sys::*;

use super::lists::{FUNCTION_LIST_240, FUNCTION_LIST_300};
use super::{app_lock, guard, non_null, output_list, put};
use crate::error::{Error, ck};
use crate::general::{self, InitArgs};
use crate::state;

#[unsafe(no_mangle)]
pub(crate) unsafe extern "C" fn C_Initialize(p_init_args: *mut c_void) -> CK_RV {
    guard("C_Initialize", || {
        let args = if p_init_args.is_null() {
            None
        } else {
            // SAFETY: a non-NULL argument is a CK_C_INITIALIZE_ARGS (PKCS#11 §5.4).
            let a = unsafe { (p_init_args as *const CK_C_INITIALIZE_ARGS).read_unaligned() };
            let callbacks = [
                a.CreateMutex.is_some(),
                a.DestroyMutex.is_some(),
                a.LockMutex.is_some(),
                a.UnlockMutex.is_some(),
            ];
            Some((
                InitArgs {
                    mutex_callbacks: callbacks.iter().filter(|c| **c).count() as u8,
                    os_locking_ok: a.flags & CKF_OS_LOCKING_OK != 0,
                    reserved: !a.pReserved.is_null(),
                },
                a,
            ))
        };
        general::initialize(args.as_ref().map(|(i, _)| *i))?;
        if let Some((_, a)) = args.filter(|(_, a)| app_lock::is_case_3(a)) {
            // SAFETY: the application's callbacks, which PKCS#11 §5.4 describes.
            if let Err(rv) = unsafe { app_lock::install(&a) } {
                // Its mutex could not be made: not initialised after all.
                let _ = general::finalize();
                return ck(rv);
            }
        }
        Ok(())
    })
}

#[unsafe(no_mangle)]
pub(crate) unsafe extern "C" fn C_Finalize(p_reserved: *mut c_void) -> CK_RV {
    guard("C_Finalize", || {
        state::module()?;
        if !p_reserved.is_null() {
            return ck(CKR_ARGUMENTS_BAD);
        }
        let held = app_lock::enter().map_err(Error::Ck)?;
        let r = general::finalize();
        drop(held);
        if r.is_ok() {
            app_lock::retire();
        }
        r
    })
}

#[unsafe(no_mangle)]
pub(crate) unsafe extern "C" fn C_GetInfo(p_info: *mut CK_INFO) -> CK_RV {
    guard("C_GetInfo", || {
        let info = general::info()?;
        // SAFETY: NULL checked by put; otherwise valid per the caller.
        unsafe { put(p_info, info) }
    })
}

#[unsafe(no_mangle)]
pub(crate) unsafe extern "C" fn C_GetFunctionList(pp: *mut *mut CK_FUNCTION_LIST) -> CK_RV {
    guard("C_GetFunctionList", || {
        // SAFETY: NULL checked by put. The list is never written through this pointer
        // (PKCS#11 says the application must not modify it).
        unsafe { put(pp, &raw const FUNCTION_LIST_240 as *mut CK_FUNCTION_LIST) }
    })
}

/// `CK_INTERFACE` holds raw pointers; these point to immutable statics.
struct Interfaces([CK_INTERFACE; 2]);

// SAFETY: the pointers are to 'static, never-mutated data.
unsafe impl Sync for Interfaces {}

static INTERFACES: Interfaces = Interfaces([
    CK_INTERFACE {
        pInterfaceName: c"PKCS 11".as_ptr() as *mut CK_UTF8CHAR,
        pFunctionList: &raw const FUNCTION_LIST_300 as *mut c_void,
        flags: 0,
    },
    CK_INTERFACE {
        pInterfaceName: c"PKCS 11".as_ptr() as *mut CK_UTF8CHAR,
        pFunctionList: &raw const FUNCTION_LIST_240 as *mut c_void,
        flags: 0,
    },
]);

fn version_of(i: &CK_INTERFACE) -> CK_VERSION {
    if std::ptr::eq(i.pFunctionList, &raw const FUNCTION_LIST_300 as *const c_void) {
        FUNCTION_LIST_300.version
    } else {
        FUNCTION_LIST_240.version
    }
}

#[unsafe(no_mangle)]
pub(crate) unsafe extern "C" fn C_GetInterfaceList(list: *mut CK_INTERFACE, count: *mut CK_ULONG) -> CK_RV {
    guard("C_GetInterfaceList", || {
        // SAFETY: checked by output_list.
        unsafe { output_list(list, count, &INTERFACES.0) }
    })
}

#[unsafe(no_mangle)]
pub(crate) unsafe extern "C" fn C_GetInterface(
    name: *mut CK_UTF8CHAR,
    version: *mut CK_VERSION,
    pp: *mut *mut CK_INTERFACE,
    flags: CK_FLAGS,
) -> CK_RV {
    guard("C_GetInterface", || {
        non_null(pp)?;
        if !name.is_null() {
            // SAFETY: a NUL-terminated string per the PKCS#11 contract.
            let n = unsafe { std::ffi::CStr::from_ptr(name as *const std::ffi::c_char) };
            if n.to_bytes() != b"PKCS 11" {
                return ck(CKR_ARGUMENTS_BAD);
            }
        }
        let wanted = if version.is_null() {
            None
        } else {
            // SAFETY: non-NULL, valid per the caller.
            Some(unsafe { version.read_unaligned() })
        };
        let found = INTERFACES.0.iter().find(|i| {
            let v = version_of(i);
            wanted.is_none_or(|w| w.major == v.major && w.minor == v.minor) && i.flags & flags == flags
        });
        match found {
            Some(i) => unsafe { put(pp, i as *const CK_INTERFACE as *mut CK_INTERFACE) },
            None => ck(CKR_ARGUMENTS_BAD),
        }
    })
}
