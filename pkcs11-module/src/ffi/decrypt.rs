//! C_Decrypt* (card) and C_Encrypt* (software, single part).

use cryptoki_sys::*;

use super::{ending, guard, input, mechanism, output};
use crate::decrypt;
use crate::ops::Ending;
use crate::state::module;

#[unsafe(no_mangle)]
pub(crate) unsafe extern "C" fn C_DecryptInit(
    h: CK_SESSION_HANDLE,
    mech: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
) -> CK_RV {
    guard("C_DecryptInit", || {
        let m = module()?;
        // SAFETY: checked by mechanism.
        let arg = unsafe { mechanism(mech)? };
        decrypt::decrypt_init(&m, h, &arg, key)
    })
}

#[unsafe(no_mangle)]
pub(crate) unsafe extern "C" fn C_Decrypt(
    h: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    data_len: CK_ULONG,
    out: *mut CK_BYTE,
    out_len: *mut CK_ULONG,
) -> CK_RV {
    guard("C_Decrypt", || {
        let m = module()?;
        // SAFETY: checked by input / output.
        let r = unsafe {
            input(data, data_len)
                .and_then(|data| output(out, out_len, |cap| decrypt::decrypt(&m, h, data, cap)))
        };
        ending(&m, h, Ending::Decrypt, r)
    })
}

#[unsafe(no_mangle)]
pub(crate) unsafe extern "C" fn C_EncryptInit(
    h: CK_SESSION_HANDLE,
    mech: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
) -> CK_RV {
    guard("C_EncryptInit", || {
        let m = module()?;
        // SAFETY: checked by mechanism.
        let arg = unsafe { mechanism(mech)? };
        decrypt::encrypt_init(&m, h, &arg, key)
    })
}

#[unsafe(no_mangle)]
pub(crate) unsafe extern "C" fn C_Encrypt(
    h: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    data_len: CK_ULONG,
    out: *mut CK_BYTE,
    out_len: *mut CK_ULONG,
) -> CK_RV {
    guard("C_Encrypt", || {
        let m = module()?;
        // SAFETY: checked by input / output.
        // The official plan's C_Encrypt goes on after a NULL argument (see
        // `Module::end_after_failure`).
        unsafe {
            let data = input(data, data_len)?;
            output(out, out_len, |cap| decrypt::encrypt(&m, h, data, cap))
        }
    })
}
