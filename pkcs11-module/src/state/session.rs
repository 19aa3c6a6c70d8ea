//! An open session: its slot, its mode, the token epoch it was opened in, its operations. The
//! session functions of PKCS#11 are in [`crate::session`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use cryptoki_sys::*;

use super::slot::Slot;
use crate::ops::Ops;

/// An open session.
pub struct Session {
    /// Its handle.
    pub handle: CK_SESSION_HANDLE,
    /// Its slot.
    pub slot: Arc<Slot>,
    /// Opened with CKF_RW_SESSION.
    pub rw: bool,
    /// The slot epoch at opening: a different epoch means the token went away.
    pub epoch: u64,
    /// Active operations (find, sign, verify, digest, encrypt, decrypt).
    pub ops: Mutex<Ops>,
}

/// Session handles: never reused for the life of the process, across C_Finalize and
/// C_Initialize too, so a stale handle kept by an application never names a new session.
static NEXT_SESSION: AtomicU64 = AtomicU64::new(1);

/// A new session handle.
pub(super) fn new_session_handle() -> CK_SESSION_HANDLE {
    NEXT_SESSION.fetch_add(1, Ordering::Relaxed) as CK_SESSION_HANDLE
}
