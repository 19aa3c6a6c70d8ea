//! Where the slots' readers and cards come from: the only place the module names its transport
//! backend.
//!
//! A release build has one backend, PC/SC ([`cpx_transport::Pcsc`], pcscd). The
//! `virtual-readers` cargo feature, for tests and in-process fuzzing only, adds a second:
//! `cpx_transport_virtual::VirtualReaders`, readers of emulated cards in this process. Even with the
//! feature built in, the module uses PC/SC until a Rust caller in the same process hands it
//! readers with `use_virtual_readers` (there is no environment switch, and nothing reachable
//! through the C ABI selects it), so a library built with the feature by cargo's feature
//! unification behaves as any other for the programs that load it. Everything above these
//! types — slots, tokens, sessions, the C ABI — is the same code for both backends.

use std::time::Duration;

use cpx_transport::{CardChannel, ReaderEvent, ReaderInfo, ReaderStatus, TransportError};

/// A context on the readers: PC/SC's, or virtual readers' (`virtual-readers` feature).
#[derive(Clone, Debug)]
pub enum Pcsc {
    /// pcscd.
    Pcsc(cpx_transport::Pcsc),
    /// In-process readers of emulated cards (tests and fuzzing).
    #[cfg(feature = "virtual-readers")]
    Virtual(cpx_transport_virtual::VirtualReaders),
}

/// Card and reader changes, from [`Pcsc::monitor`].
#[derive(Debug)]
pub enum Monitor {
    /// pcscd's.
    Pcsc(cpx_transport::Monitor),
    /// Virtual readers'.
    #[cfg(feature = "virtual-readers")]
    Virtual(cpx_transport_virtual::VirtualMonitor),
}

/// Wakes a [`Monitor::wait`] blocked on another thread.
#[derive(Clone, Debug)]
pub enum Canceller {
    /// pcscd's.
    Pcsc(cpx_transport::Canceller),
    /// Virtual readers'.
    #[cfg(feature = "virtual-readers")]
    Virtual(cpx_transport_virtual::VirtualCanceller),
}

#[cfg(feature = "virtual-readers")]
static VIRTUAL: std::sync::Mutex<Option<cpx_transport_virtual::VirtualReaders>> = std::sync::Mutex::new(None);

/// Back every context established from now on by `readers` (`None`: PC/SC again). Call it before
/// C_Initialize: a module already initialised keeps the contexts it has.
///
/// ```
/// use cpx_transport_virtual::VirtualReaders;
///
/// let readers = VirtualReaders::new();
/// // readers.insert("Virtual reader 0", Box::new(card)); then C_Initialize, C_GetSlotList...
/// cpx_pkcs11::readers::use_virtual_readers(Some(readers));
/// cpx_pkcs11::readers::use_virtual_readers(None);
/// ```
#[cfg(feature = "virtual-readers")]
pub fn use_virtual_readers(readers: Option<cpx_transport_virtual::VirtualReaders>) {
    *crate::sync::lock(&VIRTUAL) = readers;
}

/// The marker a library built with the `virtual-readers` feature exports (defined with the
/// other exported functions, in the FFI module).
#[cfg(feature = "virtual-readers")]
pub use crate::ffi::cpx_pkcs11_test_backend_virtual_readers;

impl Pcsc {
    /// A new context: on the virtual readers installed, if any, else on pcscd.
    pub fn establish() -> Result<Self, TransportError> {
        #[cfg(feature = "virtual-readers")]
        if let Some(readers) = crate::sync::lock(&VIRTUAL).clone() {
            return Ok(Pcsc::Virtual(readers));
        }
        cpx_transport::Pcsc::establish().map(Pcsc::Pcsc)
    }

    /// Every reader with its state.
    pub fn readers(&self) -> Result<Vec<ReaderInfo>, TransportError> {
        match self {
            Pcsc::Pcsc(p) => p.readers(),
            #[cfg(feature = "virtual-readers")]
            Pcsc::Virtual(v) => Ok(v.readers()),
        }
    }

    /// Connect to the card in `reader` (shared).
    pub fn connect(&self, reader: &str) -> Result<Box<dyn CardChannel>, TransportError> {
        match self {
            Pcsc::Pcsc(p) => Ok(Box::new(p.connect(reader)?)),
            #[cfg(feature = "virtual-readers")]
            Pcsc::Virtual(v) => Ok(Box::new(v.connect(reader)?)),
        }
    }

    /// A monitor that knows the current state of every reader.
    pub fn monitor(&self) -> Result<Monitor, TransportError> {
        match self {
            Pcsc::Pcsc(p) => p.monitor().map(Monitor::Pcsc),
            #[cfg(feature = "virtual-readers")]
            Pcsc::Virtual(v) => Ok(Monitor::Virtual(v.monitor())),
        }
    }

    /// How long since a card connected through this context last made progress.
    pub fn idle_for(&self) -> Duration {
        match self {
            Pcsc::Pcsc(p) => p.idle_for(),
            #[cfg(feature = "virtual-readers")]
            Pcsc::Virtual(v) => v.idle_for(),
        }
    }
}

impl Monitor {
    /// A handle that can cancel a wait from another thread.
    pub fn canceller(&self) -> Canceller {
        match self {
            Monitor::Pcsc(m) => Canceller::Pcsc(m.canceller()),
            #[cfg(feature = "virtual-readers")]
            Monitor::Virtual(m) => Canceller::Virtual(m.canceller()),
        }
    }

    /// The readers this monitor knows, with their last seen status.
    pub fn readers(&self) -> Box<dyn Iterator<Item = (&str, ReaderStatus)> + '_> {
        match self {
            Monitor::Pcsc(m) => Box::new(m.readers()),
            #[cfg(feature = "virtual-readers")]
            Monitor::Virtual(m) => Box::new(m.readers()),
        }
    }

    /// Block until at least one event, the timeout (`None` = forever) or a cancel.
    pub fn wait(&mut self, timeout: Option<Duration>) -> Result<Vec<ReaderEvent>, TransportError> {
        match self {
            Monitor::Pcsc(m) => m.wait(timeout),
            #[cfg(feature = "virtual-readers")]
            Monitor::Virtual(m) => m.wait(timeout),
        }
    }
}

impl Canceller {
    /// Cancel the monitor's wait in progress, or its next one.
    pub fn cancel(&self) {
        match self {
            Canceller::Pcsc(c) => c.cancel(),
            #[cfg(feature = "virtual-readers")]
            Canceller::Virtual(c) => c.cancel(),
        }
    }
}
