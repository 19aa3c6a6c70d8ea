//! Strict checks for the answers the fault tests look at. They once let two module bugs these
//! tests found through as "KNOWN BUG" (a command cut by a removal answered CKR_DEVICE_ERROR; the
//! tokens outlived a dead pcscd); both are fixed (cpx-transport confirms a removal after a
//! failed exchange; the module drops every token when pcscd stops), so any deviation fails.

use std::fmt::Debug;

use cpx_testkit::Failed;
use cryptoki::error::RvError;

/// `Ok(true)` when `right`, else a failure naming `what` and the observed value.
pub fn judge<T: Debug>(what: &str, observed: T, right: bool) -> Result<bool, Failed> {
    if right {
        return Ok(true);
    }
    Err(format!("{what}: got {observed:?}").into())
}

/// [`judge`] for a return code.
pub fn check_code(rv: RvError, expected: RvError, what: &str) -> Result<bool, Failed> {
    judge(&format!("{what}, expected {expected:?}"), rv, rv == expected)
}
