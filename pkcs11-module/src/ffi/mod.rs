//! The C ABI: the only module with `unsafe` code.
//!
//! Every `C_X` checks its pointers, converts them to safe Rust values, calls one safe function
//! of the crate and maps the error with [`Error::rv`]; [`guard`] wraps it in `catch_unwind` so a
//! panic becomes CKR_GENERAL_ERROR instead of unwinding into C.
#![allow(unsafe_code)]
#![allow(non_snake_case)]

mod app_lock;
mod decrypt;
mod digest;
mod general;
mod lists;
mod object;
mod process;
mod random;
mod session;
mod sign;
mod slot;

pub(crate) use process::{own_cell, own_cell_or_new, register_fork_handlers};

use std::panic::{AssertUnwindSafe, catch_unwind};

use cryptoki_sys::*;

use crate::error::{Error, Result, ck, rv_name};
use crate::mechanisms::{MechanismArg, PssParams};
use crate::ops::Output;

/// Run one entry point: panics caught, the error mapped in one place, the outcome logged.
fn guard(name: &'static str, f: impl FnOnce() -> Result<()>) -> CK_RV {
    // C_Initialize case 3: the application's mutex around the call (see `app_lock`).
    let held = if takes_app_lock(name) {
        match app_lock::enter() {
            Ok(h) => Some(h),
            Err(rv) => return rv,
        }
    } else {
        None
    };
    let rv = guarded(name, f);
    drop(held);
    rv
}

/// Every entry point but those that make or end the application's mutex, the function-list
/// getters (no state) and the blocking C_WaitForSlotEvent (see `app_lock`).
fn takes_app_lock(name: &str) -> bool {
    !matches!(
        name,
        "C_Initialize"
            | "C_Finalize"
            | "C_WaitForSlotEvent"
            | "C_GetFunctionList"
            | "C_GetInterfaceList"
            | "C_GetInterface"
    )
}

fn guarded(name: &'static str, f: impl FnOnce() -> Result<()>) -> CK_RV {
    let rv = match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => CKR_OK,
        Ok(Err(e)) => {
            let rv = e.rv_for(name);
            if rv == CKR_BUFFER_TOO_SMALL || rv == CKR_NO_EVENT {
                log::trace!("{name}: {e}");
            } else {
                log::debug!("{name}: {e} → {}", rv_name(rv));
            }
            rv
        }
        Err(_) => {
            log::error!("{name}: internal panic caught");
            CKR_GENERAL_ERROR
        }
    };
    if rv == CKR_OK {
        log::trace!("{name}: CKR_OK");
    }
    rv
}

/// `r`, after ending `op` when `r` failed (see [`crate::session::end_after_failure`]).
fn ending(
    m: &crate::state::Module,
    h: CK_SESSION_HANDLE,
    op: crate::ops::Ending,
    r: Result<()>,
) -> Result<()> {
    if let Err(e) = &r {
        crate::session::end_after_failure(m, h, op, e);
    }
    r
}

/// Check a pointer is not NULL.
fn non_null<T>(p: *const T) -> Result<()> {
    if p.is_null() {
        ck(CKR_ARGUMENTS_BAD)
    } else {
        Ok(())
    }
}

/// Write `v` through `p` (already checked non-NULL or checked here).
///
/// # Safety
/// `p` must be NULL or valid for writing a `T`.
unsafe fn put<T>(p: *mut T, v: T) -> Result<()> {
    non_null(p)?;
    // SAFETY: non-NULL and valid per the caller (the PKCS#11 contract).
    unsafe { p.write_unaligned(v) };
    Ok(())
}

/// The caller's input bytes. NULL is CKR_ARGUMENTS_BAD even with a zero length (docs/card-spec.md §6.1 row
/// 407), and so is a length no buffer can have (past `isize::MAX` or the end of the address
/// space: no slice may be made of it).
///
/// # Safety
/// `p` must be NULL or valid for reading `len` bytes.
unsafe fn input<'a>(p: *const CK_BYTE, len: CK_ULONG) -> Result<&'a [u8]> {
    non_null(p)?;
    let len = usize::try_from(len)
        .ok()
        .filter(|&n| isize::try_from(n).is_ok() && (p as usize).checked_add(n).is_some())
        .ok_or(Error::Ck(CKR_ARGUMENTS_BAD))?;
    // SAFETY: valid for `len` bytes per the caller.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// A PIN argument: `None` for NULL with length 0 (no PIN given: the reader's PIN pad on a token
/// with CKF_PROTECTED_AUTHENTICATION_PATH, PKCS#11 2.40 §5.6 C_Login), else as [`input`]
/// (NULL with a length is CKR_ARGUMENTS_BAD).
///
/// # Safety
/// `p` must be NULL or valid for reading `len` bytes.
unsafe fn pin_input<'a>(p: *const CK_BYTE, len: CK_ULONG) -> Result<Option<&'a [u8]>> {
    if p.is_null() && len == 0 {
        return Ok(None);
    }
    // SAFETY: as this function's.
    unsafe { input(p, len) }.map(Some)
}

/// Deliver an [`Output`] under the two-call protocol: NULL `out` → size in `*out_len`; a
/// buffer too small → CKR_BUFFER_TOO_SMALL with the size.
///
/// # Safety
/// `out` must be NULL or valid for `*out_len` bytes; `out_len` NULL or valid.
unsafe fn output(
    out: *mut CK_BYTE,
    out_len: *mut CK_ULONG,
    f: impl FnOnce(Option<usize>) -> Result<Output>,
) -> Result<()> {
    non_null(out_len)?;
    // SAFETY: non-NULL, valid per the caller.
    let cap = if out.is_null() {
        None
    } else {
        Some(unsafe { *out_len } as usize)
    };
    match f(cap) {
        Ok(Output::Size(n)) => unsafe { put(out_len, n as CK_ULONG) },
        Ok(Output::Data(v)) => {
            // SAFETY: `f` returned Data only if it fits `cap` bytes of the caller's buffer.
            unsafe {
                std::ptr::copy_nonoverlapping(v.as_ptr(), out, v.len());
                put(out_len, v.len() as CK_ULONG)
            }
        }
        Err(Error::BufferTooSmall(n)) => {
            unsafe { put(out_len, n as CK_ULONG)? };
            Err(Error::BufferTooSmall(n))
        }
        Err(e) => Err(e),
    }
}

/// Copy a list into a caller array (two-call protocol on a count).
///
/// # Safety
/// `list` NULL or valid for `*count` elements; `count` NULL or valid.
unsafe fn output_list<T: Copy>(list: *mut T, count: *mut CK_ULONG, items: &[T]) -> Result<()> {
    non_null(count)?;
    if list.is_null() {
        return unsafe { put(count, items.len() as CK_ULONG) };
    }
    // SAFETY: valid per the caller.
    let cap = unsafe { *count } as usize;
    unsafe { put(count, items.len() as CK_ULONG)? };
    if cap < items.len() {
        return ck(CKR_BUFFER_TOO_SMALL);
    }
    // SAFETY: room for `cap` ≥ len elements.
    unsafe { std::ptr::copy_nonoverlapping(items.as_ptr(), list, items.len()) };
    Ok(())
}

/// A `CK_MECHANISM` in safe form (PSS parameters read when present and of the right size).
///
/// # Safety
/// `p` NULL or a valid `CK_MECHANISM` whose parameter pointer is valid for its length.
unsafe fn mechanism(p: *const CK_MECHANISM) -> Result<MechanismArg> {
    non_null(p)?;
    // SAFETY: non-NULL, valid per the caller.
    let m = unsafe { p.read_unaligned() };
    let takes_parameter = MechanismArg::takes_parameter(m.mechanism);
    let pss = if !m.pParameter.is_null()
        && m.ulParameterLen as usize == std::mem::size_of::<CK_RSA_PKCS_PSS_PARAMS>()
        && takes_parameter
    {
        // SAFETY: the caller says the parameter has this size.
        let p = unsafe { (m.pParameter as *const CK_RSA_PKCS_PSS_PARAMS).read_unaligned() };
        Some(PssParams {
            hash: p.hashAlg,
            mgf: p.mgf,
            salt_len: p.sLen,
        })
    } else {
        None
    };
    Ok(MechanismArg {
        mechanism: m.mechanism,
        pss,
        // Only the length says a parameter was given: a non-NULL pointer with length 0 is
        // what some callers pass for "none".
        stray_parameter: !takes_parameter && m.ulParameterLen != 0,
    })
}

/// Present in a library built with the `virtual-readers` feature, and only there: an exported
/// symbol that scripts/build-release.sh looks for (`readelf --dyn-syms`) so that a release
/// library or a package with the test backend built in is refused. It does nothing and selects
/// nothing.
#[cfg(feature = "virtual-readers")]
// `no_mangle`: the marker keeps its name in the dynamic symbol table.
#[unsafe(no_mangle)]
pub extern "C" fn cpx_pkcs11_test_backend_virtual_readers() -> u32 {
    1
}

#[cfg(test)]
mod tests {
    //! The C ABI called directly: initialisation rules, NULL pointers, short buffers. One test
    //! function, because the module state is process-global.
    use super::general::*;
    use super::object::*;
    use super::random::*;
    use super::session::*;
    use super::sign::*;
    use std::ffi::c_void;

    use super::slot::*;
    use super::*;

    #[test]
    fn c_abi_misuse() {
        unsafe {
            let mut info: CK_INFO = std::mem::zeroed();
            // docs/card-spec.md §6.1 rows 1, 2, 100–108: before C_Initialize.
            assert_eq!(C_Finalize(std::ptr::null_mut()), CKR_CRYPTOKI_NOT_INITIALIZED);
            assert_eq!(C_GetInfo(&mut info), CKR_CRYPTOKI_NOT_INITIALIZED);
            let mut count: CK_ULONG = 0;
            assert_eq!(
                C_GetSlotList(0, std::ptr::null_mut(), &mut count),
                CKR_CRYPTOKI_NOT_INITIALIZED
            );
            assert_eq!(C_CloseSession(1), CKR_CRYPTOKI_NOT_INITIALIZED);
            // The function list needs no initialisation; no entry is NULL.
            let mut list: *mut CK_FUNCTION_LIST = std::ptr::null_mut();
            assert_eq!(C_GetFunctionList(std::ptr::null_mut()), CKR_ARGUMENTS_BAD);
            assert_eq!(C_GetFunctionList(&mut list), CKR_OK);
            let l = &*list;
            assert_eq!((l.version.major, l.version.minor), (2, 40));
            assert!(l.C_InitToken.is_some() && l.C_DigestKey.is_some() && l.C_Sign.is_some());
            let rv = (l.C_InitToken.unwrap_or_else(|| unreachable!()))(
                0,
                std::ptr::null_mut(),
                0,
                std::ptr::null_mut(),
            );
            assert_eq!(rv, CKR_FUNCTION_NOT_SUPPORTED);
            // Interfaces: two-call protocol.
            let mut n: CK_ULONG = 0;
            assert_eq!(C_GetInterfaceList(std::ptr::null_mut(), &mut n), CKR_OK);
            assert_eq!(n, 2);
            let mut one = [std::mem::zeroed::<CK_INTERFACE>(); 1];
            let mut n1: CK_ULONG = 1;
            assert_eq!(
                C_GetInterfaceList(one.as_mut_ptr(), &mut n1),
                CKR_BUFFER_TOO_SMALL
            );
            assert_eq!(n1, 2);
            let mut iface: *mut CK_INTERFACE = std::ptr::null_mut();
            assert_eq!(
                C_GetInterface(std::ptr::null_mut(), std::ptr::null_mut(), &mut iface, 0),
                CKR_OK
            );
            let l3 = &*((*iface).pFunctionList as *const CK_FUNCTION_LIST_3_0);
            assert_eq!(l3.version.major, 3);
            assert!(l3.C_LoginUser.is_some());
            let mut v240 = CK_VERSION { major: 2, minor: 40 };
            assert_eq!(
                C_GetInterface(std::ptr::null_mut(), &mut v240, &mut iface, 0),
                CKR_OK
            );
            let mut v9 = CK_VERSION { major: 9, minor: 0 };
            assert_eq!(
                C_GetInterface(std::ptr::null_mut(), &mut v9, &mut iface, 0),
                CKR_ARGUMENTS_BAD
            );

            // C_Initialize argument rules (rows 4–8).
            let mut args: CK_C_INITIALIZE_ARGS = std::mem::zeroed();
            args.pReserved = std::ptr::dangling_mut::<c_void>();
            assert_eq!(
                C_Initialize(&mut args as *mut _ as *mut c_void),
                CKR_ARGUMENTS_BAD
            );
            args.pReserved = std::ptr::null_mut();
            args.flags = CKF_OS_LOCKING_OK;
            assert_eq!(C_Initialize(&mut args as *mut _ as *mut c_void), CKR_OK);
            assert_eq!(
                C_Initialize(std::ptr::null_mut()),
                CKR_CRYPTOKI_ALREADY_INITIALIZED
            );
            assert_eq!(C_GetInfo(std::ptr::null_mut()), CKR_ARGUMENTS_BAD);
            assert_eq!(C_GetInfo(&mut info), CKR_OK);
            assert_eq!(&info.manufacturerID[..3], b"cpx");
            assert_eq!(
                C_GetSlotList(0, std::ptr::null_mut(), std::ptr::null_mut()),
                CKR_ARGUMENTS_BAD
            );
            assert_eq!(C_GetSlotList(0, std::ptr::null_mut(), &mut count), CKR_OK);
            assert_eq!(
                C_GetSlotInfo(CK_ULONG::MAX, std::ptr::null_mut()),
                CKR_ARGUMENTS_BAD
            );
            let mut si: CK_SLOT_INFO = std::mem::zeroed();
            assert_eq!(C_GetSlotInfo(CK_ULONG::MAX, &mut si), CKR_SLOT_ID_INVALID);
            let mut h: CK_SESSION_HANDLE = 0;
            assert_eq!(
                C_OpenSession(
                    CK_ULONG::MAX,
                    CKF_SERIAL_SESSION,
                    std::ptr::null_mut(),
                    None,
                    &mut h
                ),
                CKR_SLOT_ID_INVALID
            );
            assert_eq!(C_CloseSession(12345), CKR_SESSION_HANDLE_INVALID);
            let mut sig_len: CK_ULONG = 0;
            assert_eq!(
                C_Sign(12345, std::ptr::null_mut(), 0, std::ptr::null_mut(), &mut sig_len),
                CKR_ARGUMENTS_BAD
            );
            let mut data = [0u8; 4];
            assert_eq!(
                C_Sign(12345, data.as_mut_ptr(), 4, std::ptr::null_mut(), &mut sig_len),
                CKR_SESSION_HANDLE_INVALID
            );
            // Lengths no buffer can have, or over one C_GenerateRandom: refused before any
            // slice is made of them or any session looked at.
            assert_eq!(
                C_SignUpdate(12345, data.as_mut_ptr(), CK_ULONG::MAX),
                CKR_ARGUMENTS_BAD
            );
            for len in [CK_ULONG::MAX, 1 << 40] {
                assert_eq!(C_GenerateRandom(12345, data.as_mut_ptr(), len), CKR_ARGUMENTS_BAD);
            }
            assert_eq!(
                C_GenerateRandom(12345, data.as_mut_ptr(), 4),
                CKR_SESSION_HANDLE_INVALID
            );
            assert_eq!(C_SignInit(12345, std::ptr::null_mut(), 1), CKR_ARGUMENTS_BAD);
            assert_eq!(
                C_FindObjectsInit(12345, std::ptr::null_mut(), 1),
                CKR_ARGUMENTS_BAD
            );
            assert_eq!(
                C_GetAttributeValue(12345, 1, std::ptr::null_mut(), 1),
                CKR_ARGUMENTS_BAD
            );
            let mut slot: CK_SLOT_ID = 0;
            assert_eq!(
                C_WaitForSlotEvent(CKF_DONT_BLOCK, &mut slot, std::ptr::dangling_mut::<c_void>()),
                CKR_ARGUMENTS_BAD
            );
            assert_eq!(C_Finalize(std::ptr::dangling_mut::<c_void>()), CKR_ARGUMENTS_BAD);
            assert_eq!(C_Finalize(std::ptr::null_mut()), CKR_OK);
            assert_eq!(C_Finalize(std::ptr::null_mut()), CKR_CRYPTOKI_NOT_INITIALIZED);
        }
    }

    #[test]
    fn a_panic_is_a_general_error() {
        assert_eq!(guard("test", || panic!("boom")), CKR_GENERAL_ERROR);
        assert_eq!(
            guard("test", || Err(Error::BufferTooSmall(3))),
            CKR_BUFFER_TOO_SMALL
        );
    }
}
