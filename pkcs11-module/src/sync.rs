//! The one lock helper of the module (see [`crate::state`] for the locking model).

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Lock a mutex, ignoring poisoning (a panic caught at the FFI boundary must not brick the
/// module).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
