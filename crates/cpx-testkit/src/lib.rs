//! Real-stack test harness for cpx: a private `pcscd` with vpcd virtual readers, virtual cards
//! plugged into them, and a test runner that puts a test binary inside such a sandbox.
//!
//! pcsc-lite reads `PCSCLITE_CSOCK_NAME` once per process, so a process cannot switch pcscd.
//! The runner therefore works in two steps: [`run_tests`] starts a [`Sandbox`], then re-runs the
//! same test binary as a child with the sandbox's environment; in the child, tests take readers
//! from the [`SandboxEnv`] pool and plug [`cpx_vpcd::CardSlot`]s into them.
//!
//! For fault tests: a [`Recorder`] shows what reached a card, a [`FaultyCard`] pulls the card out
//! of its reader in the middle of a chosen command, a [`FaultModeCard`] goes mute, answers slowly
//! or claims hostile file sizes on demand, and a [`Sandbox`] can kill and restart its pcscd, with
//! or without a given reader.
//!
//! ```no_run
//! // tests/stack.rs, with `harness = false` in Cargo.toml
//! use cpx_testkit::{SandboxConfig, Trial};
//!
//! fn main() -> std::process::ExitCode {
//!     cpx_testkit::run_tests(&SandboxConfig::default(), || {
//!         vec![Trial::test("a reader shows up", || {
//!             let env = cpx_testkit::SandboxEnv::get()?;
//!             let lease = env.try_lease(cpx_testkit::DEADLINE)?;
//!             assert!(lease.name.starts_with("cpx virtual"));
//!             Ok(())
//!         })]
//!     })
//! }
//! ```

mod cards;
mod env;
mod faults;
mod modes;
mod module;
mod ports;
mod recorder;
mod runner;
mod sandbox;

pub use cards::{CPS3_ATR, TestCard, TestCardLog};
pub use env::{DEADLINE, ReaderLease, SandboxEnv, card_present, wait_for_card};
pub use faults::{Faults, FaultyCard, Matcher, Pull, PulledOut, apdu, reinsert};
pub use libtest_mimic::{Failed, Measurement, Trial};
pub use modes::{DEFAULT_MUTE_LIMIT, FaultModeCard, FaultModes};
pub use module::{built_cpx, built_module, built_pinpad_driver};
pub use recorder::{
    CARD_SEEN, Exchange, Recorder, Recording, SharedCard, emulated, insert_card, insert_image,
    insert_image_paced, insert_seen, paced,
};
pub use runner::{ENV_SKIP, run_command, run_tests};
pub use sandbox::{Sandbox, SandboxConfig};

/// Environment variable: the pcscd socket (read by pcsc-lite itself).
pub const ENV_SOCKET: &str = "PCSCLITE_CSOCK_NAME";
/// Environment variable: the sandbox's readers, `name=port;name=port…`.
pub const ENV_READERS: &str = "CPX_SANDBOX_READERS";

/// Environment variable: how the emulated cards of the sandbox answer, `instant` or `real`
/// ([`SandboxConfig::timing`]).
pub const ENV_TIMING: &str = "CPX_SANDBOX_TIMING";

/// Environment variable: the sandbox's PIN-pad reader, `name;port;keypad script path`
/// ([`SandboxConfig::pinpad`]).
pub const ENV_PINPAD: &str = "CPX_SANDBOX_PINPAD";

/// The PIN-pad reader of a sandbox (`cpx-ifd-pinpad`, docs/pinpad-reader.md): a card connects to
/// its port as to a vpcd reader's; the test writes what "the user types" into `keypad`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinpadReader {
    /// Its PC/SC name, `cpx pinpad 00 00`.
    pub name: String,
    /// The TCP port a virtual card connects to (on 127.0.0.1).
    pub port: u16,
    /// The keypad script the driver reads at each PIN entry.
    pub keypad: std::path::PathBuf,
}

impl PinpadReader {
    /// `127.0.0.1:<port>`, for [`cpx_vpcd::CardSlot::new`].
    pub fn vpcd_addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn to_env(&self) -> String {
        format!("{};{};{}", self.name, self.port, self.keypad.display())
    }

    /// The PIN-pad reader of this process's sandbox, if it has one (read from [`ENV_PINPAD`]).
    pub fn from_env() -> Option<PinpadReader> {
        let spec = std::env::var(ENV_PINPAD).ok()?;
        let mut parts = spec.splitn(3, ';');
        Some(PinpadReader {
            name: parts.next()?.to_owned(),
            port: parts.next()?.parse().ok()?,
            keypad: parts.next()?.into(),
        })
    }
}

/// One vpcd reader of a sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualReader {
    /// Its PC/SC name, e.g. `cpx virtual 1 00 00`.
    pub name: String,
    /// The TCP port a virtual card connects to (on 127.0.0.1).
    pub port: u16,
}

impl VirtualReader {
    /// `127.0.0.1:<port>`, for [`cpx_vpcd::CardSlot::new`].
    pub fn vpcd_addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// Why a sandbox could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// A program or driver is not installed.
    #[error("missing {0}: install it (the README's test command does)")]
    Missing(&'static str),
    /// Bad configuration.
    #[error("invalid sandbox configuration: {0}")]
    Config(String),
    /// pcscd did not come up.
    #[error("private pcscd did not start: {0}")]
    Startup(String),
    /// Not running inside a sandbox (the environment variables are missing).
    #[error(
        "not inside a cpx sandbox ({ENV_READERS} unset): run through cpx_testkit::run_tests or cpx-sandbox"
    )]
    NotInSandbox,
    /// File or process error.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
