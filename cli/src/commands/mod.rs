//! One file per subcommand; what they share (card selection, secrets) is in `crate::session` and
//! `crate::secrets`.

mod certs;
mod completions;
mod data;
mod doctor;
mod emulate;
mod man;
mod pin;
mod readers;
mod report;
mod sign;
mod status;
mod wait;

use clap::Subcommand;

use crate::error::CliError;
use crate::output::Format;

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// List smart card readers, their state and the card's ATR.
    Readers,
    /// The card: generation, serial, holder, certificates with days left, PIN/PUK tries, EF_ACTUA.
    Status(status::StatusArgs),
    /// The card's certificates: list, export (PEM/DER), verify the chain to trust anchors.
    #[command(subcommand)]
    Certs(certs::CertsCommand),
    /// Verify, change or unblock the PIN (typed on the reader's PIN pad when it has one, unless
    /// --no-pinpad or CPX_PINPAD=off; else at a hidden prompt, or from --pin-stdin or --pin-file).
    #[command(subcommand)]
    Pin(pin::PinCommand),
    /// The business data objects (CPS_*), decoded where known, TLV otherwise.
    Data(data::DataArgs),
    /// Sign a file with the card (PKCS#1 v1.5, or RSA-PSS on a CPS4), verifiable with openssl.
    Sign(sign::SignArgs),
    /// Write a report of the card for the cpx maintainers (read-only, no PIN try; personal data
    /// redacted unless --include-personal-data).
    Report(report::ReportArgs),
    /// Wait for a card to be inserted or removed, and print the event.
    Wait(wait::WaitArgs),
    /// Diagnose the workstation: pcscd, readers, card, certificates, PIN, the PKCS#11 module and
    /// its registration (p11-kit, Chromium, Firefox), snap browsers, kernel NFC driver. Exit 13
    /// if a check fails.
    Doctor(doctor::DoctorArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(completions::CompletionsArgs),
    /// Print the man page (roff), or write one page per command into a directory.
    Man(man::ManArgs),
    /// Run virtual CPx cards behind pcscd (vsmartcard's vpcd readers), for tests and CI.
    Emulate(emulate::EmulateArgs),
}

pub(crate) fn run(command: Command, format: Format) -> Result<(), CliError> {
    match command {
        Command::Readers => readers::run(format),
        Command::Status(args) => status::run(args, format),
        Command::Certs(cmd) => certs::run(cmd, format),
        Command::Pin(cmd) => pin::run(cmd, format),
        Command::Data(args) => data::run(args, format),
        Command::Sign(args) => sign::run(args, format),
        Command::Report(args) => report::run(args, format),
        Command::Wait(args) => wait::run(args, format),
        Command::Doctor(args) => doctor::run(args, format),
        Command::Completions(args) => completions::run(args),
        Command::Man(args) => man::run(args),
        Command::Emulate(args) => emulate::run(args),
    }
}
