//! General-purpose functions (PKCS#11 2.40 §5.4): C_Initialize, C_Finalize, C_GetInfo. The
//! module's state itself is [`crate::state::Module`].

use std::sync::{Arc, PoisonError};

use cryptoki_sys::*;

use crate::error::{Result, ck};
use crate::state::{Module, module};
use crate::token::pad;

/// What C_Initialize was given, already read from `CK_C_INITIALIZE_ARGS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InitArgs {
    /// How many of the four mutex callbacks were supplied (0..=4).
    pub mutex_callbacks: u8,
    /// `CKF_OS_LOCKING_OK`.
    pub os_locking_ok: bool,
    /// `pReserved` was not NULL.
    pub reserved: bool,
}

/// Start logging if `CPX_PKCS11_LOG` is set (an `env_logger` filter, e.g. `debug` or
/// `cpx_pkcs11=trace,cpx::apdu=trace`), to stderr.
fn init_logging() {
    if let Ok(filter) = std::env::var("CPX_PKCS11_LOG") {
        let _ = env_logger::Builder::new()
            .parse_filters(&filter)
            .target(env_logger::Target::Stderr)
            .try_init();
    }
}

/// C_Initialize.
pub fn initialize(args: Option<InitArgs>) -> Result<()> {
    if let Some(a) = args {
        if a.reserved {
            return ck(CKR_ARGUMENTS_BAD);
        }
        if a.mutex_callbacks != 0 && a.mutex_callbacks != 4 {
            return ck(CKR_ARGUMENTS_BAD);
        }
        // Callbacks without CKF_OS_LOCKING_OK (case 3): the C ABI layer serialises the entry
        // points with the application's mutex (ffi/app_lock.rs).
    }
    init_logging();
    crate::ffi::register_fork_handlers();
    // In a forked child this is a new cell: the parent's module (its PC/SC contexts and card
    // handles, its locks) is never touched, closed or freed here (closing would talk to pcscd
    // on the parent's behalf).
    let cell = crate::ffi::own_cell_or_new();
    let mut guard = cell.module.write().unwrap_or_else(PoisonError::into_inner);
    if guard.is_some() {
        return ck(CKR_CRYPTOKI_ALREADY_INITIALIZED);
    }
    let module = Arc::new(Module::establish());
    if let Err(e) = module.refresh_slots() {
        log::debug!("initial reader scan: {e}");
    }
    module.snapshot_events();
    *guard = Some(module);
    log::info!("cpx PKCS#11 module {} initialised", env!("CARGO_PKG_VERSION"));
    Ok(())
}

/// C_Finalize: drop every session and card, wake C_WaitForSlotEvent.
pub fn finalize() -> Result<()> {
    let taken = {
        // A forked child without its own C_Initialize has no cell: not initialised here.
        let Some(cell) = crate::ffi::own_cell() else {
            return ck(CKR_CRYPTOKI_NOT_INITIALIZED);
        };
        let mut guard = cell.module.write().unwrap_or_else(PoisonError::into_inner);
        match guard.take() {
            Some(m) => m,
            None => return ck(CKR_CRYPTOKI_NOT_INITIALIZED),
        }
    };
    taken.finalize();
    log::info!("cpx PKCS#11 module finalised");
    Ok(())
}

/// C_GetInfo.
pub fn info() -> Result<CK_INFO> {
    module()?;
    Ok(CK_INFO {
        cryptokiVersion: CK_VERSION { major: 2, minor: 40 },
        manufacturerID: pad::<32>("cpx"),
        flags: 0,
        libraryDescription: pad::<32>("cpx PKCS#11 for CPS3/CPS4"),
        libraryVersion: CK_VERSION {
            major: env!("CARGO_PKG_VERSION_MAJOR").parse().unwrap_or(0),
            minor: env!("CARGO_PKG_VERSION_MINOR").parse().unwrap_or(0),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_args_rules() {
        let partial = InitArgs {
            mutex_callbacks: 2,
            ..InitArgs::default()
        };
        assert_eq!(
            initialize(Some(partial)).map_err(|e| e.rv()).err(),
            Some(CKR_ARGUMENTS_BAD)
        );
        let reserved = InitArgs {
            reserved: true,
            ..InitArgs::default()
        };
        assert_eq!(
            initialize(Some(reserved)).map_err(|e| e.rv()).err(),
            Some(CKR_ARGUMENTS_BAD)
        );
    }
}
