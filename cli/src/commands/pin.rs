//! `cpx pin verify|change|unblock`. Secrets are typed on the reader's PIN pad when it has one
//! (unless `--no-pinpad`, `CPX_PINPAD=off`), else come from a hidden prompt, or `--pin-stdin` /
//! `--pin-file` one per line (verify: PIN; change: current PIN, new PIN; unblock: PUK, new PIN),
//! never from the command line. The tries left are shown before a try is spent; a blocked or
//! malformed code is refused without sending anything.

use clap::{Args, Subcommand};
use cpx_card::{PinEntry, PinKind};

use crate::error::CliError;
use crate::output::{self, Format, outln};
use crate::secrets::{SecretArgs, Secrets};
use crate::session::{PAD_VERIFY, ReaderArg, Session, pad_says};
use crate::view::pin::PinReport;

/// JSON schema version of `cpx pin … --json` (docs/cli-json.md).
const VERSION: u32 = 1;

/// `cpx pin …`
#[derive(Debug, Subcommand)]
pub(crate) enum PinCommand {
    /// Check the PIN (spends a try if wrong). Secrets: PIN.
    Verify(PinArgs),
    /// Change the PIN. Secrets, one per line: current PIN, new PIN (typed twice at a prompt).
    Change(PinArgs),
    /// Unblock the PIN with the PUK and set a new one. Secrets, one per line: PUK, new PIN.
    Unblock(PinArgs),
}

/// Arguments of every `cpx pin` command.
#[derive(Debug, Args)]
pub(crate) struct PinArgs {
    #[command(flatten)]
    reader: ReaderArg,
    #[command(flatten)]
    secrets: SecretArgs,
}

/// The PIN-pad instructions of a change and an unblock (docs/pinpad-readers.md).
const PAD_CHANGE: &str =
    "On the reader's keypad: type your current PIN, then the new PIN, then the new PIN again.";
const PAD_UNBLOCK: &str = "On the reader's keypad: type the PUK, then the new PIN, then the new PIN again.";

/// Whether a change or an unblock goes through the pad: it needs the reader's
/// `FEATURE_MODIFY_PIN_DIRECT` (new PIN and confirmation). A pad that can only verify leaves the
/// codes to the keyboard, and says so (the user may expect the pad).
fn modify_pad(session: &mut Session, secrets: &Secrets) -> Result<bool, CliError> {
    match session.pin_pad(secrets)? {
        Some(pad) if pad.modify => Ok(true),
        Some(_) => {
            pad_says(
                "This reader's keypad can check a PIN but not change one: type the codes on the \
                 computer's keyboard.",
            );
            Ok(false)
        }
        None => Ok(false),
    }
}

pub(crate) fn run(cmd: PinCommand, format: Format) -> Result<(), CliError> {
    let (operation, args) = match cmd {
        PinCommand::Verify(a) => ("verify", a),
        PinCommand::Change(a) => ("change", a),
        PinCommand::Unblock(a) => ("unblock", a),
    };
    let order = match operation {
        "verify" => "the PIN",
        "change" => "the current PIN, then the new PIN",
        _ => "the PUK, then the new PIN",
    };
    let mut secrets = Secrets::new(&args.secrets, order)?;
    let mut session = Session::open(&args.reader)?;
    let pad = PinEntry::PinPad;
    match operation {
        "verify" => {
            session.before_spending(PinKind::User)?;
            if session.pin_pad(&secrets)?.is_some() {
                pad_says(PAD_VERIFY);
                session.card.verify_entry(PinKind::User, &pad)?;
            } else {
                let pin = secrets.pin(PinKind::User, "PIN: ")?;
                session.card.verify_pin(&pin)?;
            }
        }
        "change" => {
            session.before_spending(PinKind::User)?;
            if modify_pad(&mut session, &secrets)? {
                pad_says(PAD_CHANGE);
                session.card.change_pin_entry(&pad, &pad)?;
            } else {
                let old = secrets.pin(PinKind::User, "Current PIN: ")?;
                let new = secrets.new_pin()?;
                session.card.change_pin(&old, &new)?;
            }
        }
        _ => {
            session.before_spending(PinKind::Puk)?;
            if modify_pad(&mut session, &secrets)? {
                pad_says(PAD_UNBLOCK);
                session.card.unblock_pin_entry(&pad, &pad)?;
            } else {
                let puk = secrets.pin(PinKind::Puk, "PUK: ")?;
                let new = secrets.new_pin()?;
                session.card.unblock_pin(&puk, &new)?;
            }
        }
    }
    let codes = session.codes()?;
    let report = PinReport {
        reader: session.reader(),
        operation,
        ok: true,
        pin: codes.pin,
        puk: codes.puk,
    };
    match format {
        Format::Json => output::print_json("pin", VERSION, &report),
        Format::Text => {
            match operation {
                "verify" => outln!("PIN correct."),
                "change" => outln!("PIN changed."),
                _ => outln!("PIN unblocked and replaced."),
            }
            if let Some(p) = &report.pin {
                outln!("PIN: {}", p.text(PinKind::User));
            }
            if let Some(p) = &report.puk {
                outln!("PUK: {}", p.text(PinKind::Puk));
            }
            Ok(())
        }
    }
}
