//! The one place the module's state is found from a C call, safe across fork().
//!
//! A `static RwLock` holding the module is not: a parent thread inside `module()` at the moment
//! of fork() leaves the child a lock whose reader no longer exists, and the child's C_Initialize
//! then waits forever for the write lock (seen: 2 hangs in ~3,700 forks under load). Here the
//! state of each process lives in a cell of its own, found through an atomic pointer and tagged
//! with the pid that made it. A call first compares that pid with its own, without any lock: a
//! forked child sees a cell that is not its own and never touches its lock. Its C_Initialize
//! installs a new cell; the parent's is left as it was (leaked: freeing it could race with
//! nothing in the child, but its contents belong to the parent's threads and PC/SC context).

use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::{Arc, RwLock};

use crate::state::Module;

/// One process's module state.
pub(crate) struct ProcessCell {
    /// The process that made the cell.
    pub(crate) pid: u32,
    /// The initialised module of that process, if any.
    pub(crate) module: RwLock<Option<Arc<Module>>>,
}

/// The cell of the process that last initialised the module (never freed: see the module
/// docs).
static CELL: AtomicPtr<ProcessCell> = AtomicPtr::new(ptr::null_mut());

/// The calling process's cell, if it has one (`None` before its first C_Initialize, and in a
/// forked child until it calls C_Initialize).
pub(crate) fn own_cell() -> Option<&'static ProcessCell> {
    let p = CELL.load(Ordering::Acquire);
    // SAFETY: a non-null pointer in CELL comes from `Box::leak` in `own_cell_or_new` and is
    // never freed, so it is valid for 'static; the cell is only read through shared references.
    let cell = unsafe { p.as_ref() }?;
    (cell.pid == std::process::id()).then_some(cell)
}

/// The calling process's cell, made (and installed) if it has none yet.
pub(crate) fn own_cell_or_new() -> &'static ProcessCell {
    let pid = std::process::id();
    loop {
        let current = CELL.load(Ordering::Acquire);
        // SAFETY: as in `own_cell`.
        if let Some(cell) = unsafe { current.as_ref() }
            && cell.pid == pid
        {
            return cell;
        }
        let fresh: &'static mut ProcessCell = Box::leak(Box::new(ProcessCell {
            pid,
            module: RwLock::new(None),
        }));
        let fresh_ptr: *mut ProcessCell = fresh;
        match CELL.compare_exchange(current, fresh_ptr, Ordering::AcqRel, Ordering::Acquire) {
            // The old cell (a parent's, or none) is left alone.
            Ok(_) => return fresh,
            Err(_) => {
                // Another thread of this process installed one first: use it. Ours was never
                // shared; give its memory back.
                // SAFETY: `fresh_ptr` came from Box::leak just above and was never published.
                drop(unsafe { Box::from_raw(fresh_ptr) });
            }
        }
    }
}

/// `pthread_atfork` handlers: a fork never lands while one of the module's PC/SC calls may hold
/// pcsc-lite's global lock (see `cpx_transport::fork_guard`), so the child's first PC/SC call
/// cannot wait for ever on a lock of a thread it does not have.
extern "C" fn before_fork() {
    cpx_transport::fork_guard::prepare();
}

extern "C" fn after_fork_in_parent() {
    cpx_transport::fork_guard::after_fork();
}

extern "C" fn after_fork_in_child() {
    cpx_transport::fork_guard::after_fork_in_child();
}

/// Register the fork handlers, once per loaded module. glibc's `pthread_atfork` records the
/// calling object (`__dso_handle`) and drops its handlers when the module is unloaded
/// (dlclose), so an application that unloads the module keeps forking safely.
pub(crate) fn register_fork_handlers() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: the three handlers are plain functions of this module that only touch atomics
        // and sleep; they stay valid while the module is loaded (see above).
        let rv = unsafe {
            libc::pthread_atfork(
                Some(before_fork),
                Some(after_fork_in_parent),
                Some(after_fork_in_child),
            )
        };
        if rv != 0 {
            log::debug!("pthread_atfork: {rv}");
        }
    });
}
