//! C_Digest* (software SHA-1 / SHA-256).

use cryptoki_sys::*;

use super::{ending, guard, input, mechanism, output};
use crate::digest;
use crate::ops::Ending;
use crate::state::module;

#[unsafe(no_mangle)]
pub(crate) unsafe extern "C" fn C_DigestInit(h: CK_SESSION_HANDLE, mech: *mut CK_MECHANISM) -> CK_RV {
    guard("C_DigestInit", || {
        let m = module()?;
        // SAFETY: checked by mechanism.
        let arg = unsafe { mechanism(mech)? };
        digest::digest_init(&m, h, &arg)
    })
}

#[unsafe(no_mangle)]
pub(crate) unsafe extern "C" fn C_Digest(
    h: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    data_len: CK_ULONG,
    out: *mut CK_BYTE,
    out_len: *mut CK_ULONG,
) -> CK_RV {
    guard("C_Digest", || {
        let m = module()?;
        // SAFETY: checked by input / output.
        let r = unsafe {
            input(data, data_len)
                .and_then(|data| output(out, out_len, |cap| digest::digest(&m, h, Some(data), cap)))
        };
        ending(&m, h, Ending::Digest, r)
    })
}

#[unsafe(no_mangle)]
pub(crate) unsafe extern "C" fn C_DigestUpdate(
    h: CK_SESSION_HANDLE,
    part: *mut CK_BYTE,
    len: CK_ULONG,
) -> CK_RV {
    guard("C_DigestUpdate", || {
        let m = module()?;
        // SAFETY: checked by input.
        let r = unsafe { input(part, len) }.and_then(|part| digest::digest_update(&m, h, part));
        ending(&m, h, Ending::Digest, r)
    })
}

#[unsafe(no_mangle)]
pub(crate) unsafe extern "C" fn C_DigestFinal(
    h: CK_SESSION_HANDLE,
    out: *mut CK_BYTE,
    out_len: *mut CK_ULONG,
) -> CK_RV {
    guard("C_DigestFinal", || {
        let m = module()?;
        // SAFETY: checked by output.
        let r = unsafe { output(out, out_len, |cap| digest::digest(&m, h, None, cap)) };
        ending(&m, h, Ending::Digest, r)
    })
}
