//! C_Sign* (card) and C_Verify* (software).

use cryptoki_sys::*;

use super::{guard, input, mechanism, output};
use crate::sign;
use crate::state::module;

#[unsafe(no_mangle)]
pub(crate) unsafe extern "C" fn C_SignInit(
    h: CK_SESSION_HANDLE,
    mech: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
) -> CK_RV {
    guard("C_SignInit", || {
        let m = module()?;
        // SAFETY: checked by mechanism.
        let arg = unsafe { mechanism(mech)? };
        sign::sign_init(&m, h, &arg, key)
    })
}

#[unsafe(no_mangle)]
pub(crate) unsafe extern "C" fn C_Sign(
    h: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    data_len: CK_ULONG,
    sig: *mut CK_BYTE,
    sig_len: *mut CK_ULONG,
) -> CK_RV {
    guard("C_Sign", || {
        let m = module()?;
        // SAFETY: checked by input / output.
        unsafe {
            let data = input(data, data_len)?;
            output(sig, sig_len, |cap| sign::sign(&m, h, Some(data), cap))
        }
    })
}

#[unsafe(no_mangle)]
pub(crate) unsafe extern "C" fn C_SignUpdate(
    h: CK_SESSION_HANDLE,
    part: *mut CK_BYTE,
    len: CK_ULONG,
) -> CK_RV {
    guard("C_SignUpdate", || {
        let m = module()?;
        // SAFETY: checked by input.
        let part = unsafe { input(part, len)? };
        sign::sign_update(&m, h, part)
    })
}

#[unsafe(no_mangle)]
pub(crate) unsafe extern "C" fn C_SignFinal(
    h: CK_SESSION_HANDLE,
    sig: *mut CK_BYTE,
    sig_len: *mut CK_ULONG,
) -> CK_RV {
    guard("C_SignFinal", || {
        let m = module()?;
        // SAFETY: checked by output.
        unsafe { output(sig, sig_len, |cap| sign::sign(&m, h, None, cap)) }
    })
}

#[unsafe(no_mangle)]
pub(crate) unsafe extern "C" fn C_VerifyInit(
    h: CK_SESSION_HANDLE,
    mech: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
) -> CK_RV {
    guard("C_VerifyInit", || {
        let m = module()?;
        // SAFETY: checked by mechanism.
        let arg = unsafe { mechanism(mech)? };
        sign::verify_init(&m, h, &arg, key)
    })
}

#[unsafe(no_mangle)]
pub(crate) unsafe extern "C" fn C_Verify(
    h: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    data_len: CK_ULONG,
    sig: *mut CK_BYTE,
    sig_len: CK_ULONG,
) -> CK_RV {
    guard("C_Verify", || {
        let m = module()?;
        // SAFETY: checked by input.
        let (data, sig) = unsafe { (input(data, data_len)?, input(sig, sig_len)?) };
        sign::verify(&m, h, Some(data), sig)
    })
}

#[unsafe(no_mangle)]
pub(crate) unsafe extern "C" fn C_VerifyUpdate(
    h: CK_SESSION_HANDLE,
    part: *mut CK_BYTE,
    len: CK_ULONG,
) -> CK_RV {
    guard("C_VerifyUpdate", || {
        let m = module()?;
        // SAFETY: checked by input.
        let part = unsafe { input(part, len)? };
        sign::verify_update(&m, h, part)
    })
}

#[unsafe(no_mangle)]
pub(crate) unsafe extern "C" fn C_VerifyFinal(
    h: CK_SESSION_HANDLE,
    sig: *mut CK_BYTE,
    sig_len: CK_ULONG,
) -> CK_RV {
    guard("C_VerifyFinal", || {
        let m = module()?;
        // SAFETY: checked by input.
        let sig = unsafe { input(sig, sig_len)? };
        sign::verify(&m, h, None, sig)
    })
}
