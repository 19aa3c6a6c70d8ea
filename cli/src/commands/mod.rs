//! One file per subcommand.

mod emulate;
mod readers;

use clap::Subcommand;
use cpx_transport::TransportError;

use crate::output::Format;

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// List smart card readers, their state and the card's ATR.
    Readers,
    /// Run virtual CPx cards behind pcscd (vsmartcard's vpcd readers), for tests and CI.
    Emulate(emulate::EmulateArgs),
}

/// What can make `cpx` fail, each with its own exit code (README, "Exit codes").
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    #[error("{0}")]
    Transport(#[from] TransportError),
    #[error("cannot write output: {0}")]
    Output(String),
    #[error("{0}")]
    Usage(String),
    #[error("emulator: {0}")]
    Emulator(String),
}

impl CliError {
    /// 0 ok; 1 other failures; 2 usage (clap); 3 PC/SC service missing; 4 no reader; 5 no card.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            CliError::Transport(TransportError::NoService) => 3,
            CliError::Transport(TransportError::NoReaders | TransportError::UnknownReader(_)) => 4,
            CliError::Transport(TransportError::NoCard(_) | TransportError::CardRemoved(_)) => 5,
            CliError::Usage(_) => 2,
            CliError::Transport(_) | CliError::Output(_) | CliError::Emulator(_) => 1,
        }
    }
}

pub(crate) fn run(command: Command, format: Format) -> Result<(), CliError> {
    match command {
        Command::Readers => readers::run(format),
        Command::Emulate(args) => emulate::run(args),
    }
}
