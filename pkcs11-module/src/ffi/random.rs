//! Random-number entry points: C_SeedRandom, C_GenerateRandom (the card's GET CHALLENGE).

use cryptoki_sys::*;

use super::{guard, non_null};
use crate::random;
use crate::state::module;

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
        let len = random::checked_len(out as usize, len)?;
        // SAFETY: the caller's buffer holds `len` bytes (PKCS#11 contract), and `len` is a
        // length a buffer at `out` can have.
        let out = unsafe { std::slice::from_raw_parts_mut(out, len) };
        random::generate_random(&m, h, out)
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
        random::seed_random(&m, h)
    })
}
