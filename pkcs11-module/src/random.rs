//! Random number generation (PKCS#11 2.40 §5.14), the calls of `ffi/random.rs`: C_SeedRandom,
//! C_GenerateRandom: random bytes from the card (GET CHALLENGE, 8 bytes each, docs/card-spec.md §4.5, as the
//! official module), written straight into the caller's buffer.
//!
//! Caller lengths: nothing is allocated in proportion to `ulRandomLen` (the bytes go into the
//! caller's buffer as the card gives them), so no length can exhaust the host's memory and
//! CKR_HOST_MEMORY is never the answer to one. A length no buffer can have (more than
//! `isize::MAX`, or running past the end of the address space from `pRandomData`, e.g.
//! `ULONG_MAX`) and a length over [`MAX_RANDOM_LEN`] are CKR_ARGUMENTS_BAD, decided before
//! anything is read or sent. The card is held one batch of
//! [`cpx_card::CHALLENGES_PER_TRANSACTION`] GET CHALLENGE at a time.

use cryptoki_sys::*;

use crate::error::{Error, Result, ck};
use crate::state::Module;

/// The most one C_GenerateRandom produces: 1 MiB, i.e. 131,072 GET CHALLENGE (about 20 s
/// through pcscd and an emulated card, minutes on a real reader). More is CKR_ARGUMENTS_BAD: a
/// larger request would keep the calling session busy for hours (2^40 bytes: years) and no
/// caller needs it from a smart card; ask again for more.
///
/// ```
/// assert_eq!(cpx_pkcs11::random::MAX_RANDOM_LEN / 8, 131_072); // GET CHALLENGE
/// ```
pub const MAX_RANDOM_LEN: usize = 1 << 20;

/// The length of the caller's buffer at address `addr`, checked: CKR_ARGUMENTS_BAD when no
/// buffer can be that long (it would pass `isize::MAX` or the end of the address space) or when
/// it is more than [`MAX_RANDOM_LEN`].
///
/// ```
/// use cpx_pkcs11::random::{MAX_RANDOM_LEN, checked_len};
///
/// assert_eq!(checked_len(0x1000, 32).ok(), Some(32));
/// assert!(checked_len(0x1000, (MAX_RANDOM_LEN + 1) as u64).is_err());
/// assert!(checked_len(0x1000, u64::MAX).is_err());
/// ```
pub fn checked_len(addr: usize, len: CK_ULONG) -> Result<usize> {
    let fits = usize::try_from(len)
        .ok()
        .filter(|&n| isize::try_from(n).is_ok() && addr.checked_add(n).is_some());
    let Some(n) = fits else {
        log::debug!("C_GenerateRandom: ulRandomLen {len} is not the length of any buffer");
        return ck(CKR_ARGUMENTS_BAD);
    };
    if n > MAX_RANDOM_LEN {
        log::debug!("C_GenerateRandom: ulRandomLen {n} is over the {MAX_RANDOM_LEN} bytes of one call");
        return ck(CKR_ARGUMENTS_BAD);
    }
    Ok(n)
}

/// C_SeedRandom: CKR_RANDOM_SEED_NOT_SUPPORTED for a valid session (the card's generator
/// takes no seed; PKCS#11 2.40 §5.14 lists this code for a token with CKF_RNG).
pub fn seed_random(m: &Module, h: CK_SESSION_HANDLE) -> Result<()> {
    m.session(h)?;
    ck(CKR_RANDOM_SEED_NOT_SUPPORTED)
}

/// C_GenerateRandom: fill `out` from the card (see the module docs above). No login needed;
/// nothing is sent for an empty buffer; more than [`MAX_RANDOM_LEN`] is CKR_ARGUMENTS_BAD.
pub fn generate_random(m: &Module, h: CK_SESSION_HANDLE, out: &mut [u8]) -> Result<()> {
    if out.len() > MAX_RANDOM_LEN {
        return ck(CKR_ARGUMENTS_BAD);
    }
    m.with_session(h, |_, _, st| {
        if out.is_empty() {
            return Ok(());
        }
        st.with_token(|t| t.card.fill_random(out).map_err(Error::from))
    })
}
