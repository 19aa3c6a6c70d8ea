//! Where PINs and PUKs come from: a hidden prompt on the terminal, or for scripts stdin or a
//! file, one secret per line in the order each command documents. Never from the command line
//! (it would show in `ps`, shell history and audit logs). Every secret is wiped on drop.

use std::io::Read;
use std::path::PathBuf;

use clap::Args;
use cpx_card::{Pin, PinKind};
use zeroize::Zeroizing;

use crate::commands::CliError;

/// `--pin-stdin` / `--pin-file FILE`; without either, a hidden prompt.
#[derive(Debug, Args)]
pub(crate) struct SecretArgs {
    /// Read the secrets from stdin, one per line, in the order the command documents (e.g. PIN).
    #[arg(long, conflicts_with = "pin_file")]
    pub(crate) pin_stdin: bool,
    /// Read the secrets from FILE, one per line, in the order the command documents.
    #[arg(long, value_name = "FILE")]
    pub(crate) pin_file: Option<PathBuf>,
}

impl SecretArgs {
    /// A secret source was named (so the PIN is wanted).
    pub(crate) fn given(&self) -> bool {
        self.pin_stdin || self.pin_file.is_some()
    }
}

enum Source {
    Prompt,
    Lines {
        origin: &'static str,
        lines: Vec<Zeroizing<String>>,
        next: usize,
    },
}

/// The secrets of one command, read in order.
pub(crate) struct Secrets {
    source: Source,
    /// What the lines must hold, for the error message (e.g. "PUK, then new PIN").
    order: &'static str,
}

/// Longest secret file accepted (a few lines of digits).
const MAX_LEN: u64 = 4096;

impl Secrets {
    /// Secrets from `args`; `order` documents the lines expected (e.g. "current PIN, new PIN").
    pub(crate) fn new(args: &SecretArgs, order: &'static str) -> Result<Secrets, CliError> {
        let (origin, text) = if args.pin_stdin {
            let mut text = Zeroizing::new(String::new());
            std::io::stdin()
                .take(MAX_LEN)
                .read_to_string(&mut text)
                .map_err(|e| CliError::Usage(format!("--pin-stdin: {e}")))?;
            ("--pin-stdin", text)
        } else if let Some(path) = &args.pin_file {
            let mut text = Zeroizing::new(String::new());
            std::fs::File::open(path)
                .and_then(|f| f.take(MAX_LEN).read_to_string(&mut text))
                .map_err(|e| CliError::Usage(format!("--pin-file {}: {e}", path.display())))?;
            ("--pin-file", text)
        } else {
            return Ok(Secrets {
                source: Source::Prompt,
                order,
            });
        };
        let lines = text
            .lines()
            .map(|l| Zeroizing::new(l.trim_end_matches('\r').to_owned()))
            .collect();
        Ok(Secrets {
            source: Source::Lines {
                origin,
                lines,
                next: 0,
            },
            order,
        })
    }

    fn next(&mut self, prompt: &str) -> Result<Zeroizing<String>, CliError> {
        match &mut self.source {
            Source::Prompt => rpassword::prompt_password(prompt)
                .map(Zeroizing::new)
                .map_err(|e| {
                    CliError::Usage(format!(
                        "cannot prompt for the secret on a terminal ({e}): use --pin-stdin or --pin-file"
                    ))
                }),
            Source::Lines { origin, lines, next } => {
                let line = lines.get(*next).cloned().ok_or_else(|| {
                    CliError::Usage(format!(
                        "{origin}: expected {} (one per line), got {} line(s)",
                        self.order,
                        lines.len()
                    ))
                })?;
                *next += 1;
                Ok(line)
            }
        }
    }

    /// One PIN or PUK, refused here when obviously malformed (nothing sent to the card); the
    /// card layer then checks it against the card's own policy, still before any APDU.
    pub(crate) fn pin(&mut self, kind: PinKind, prompt: &str) -> Result<Pin, CliError> {
        let value = self.next(prompt)?;
        check(kind, &value)?;
        Ok(Pin::new(&value))
    }

    /// A new PIN: at a prompt, typed twice.
    pub(crate) fn new_pin(&mut self) -> Result<Pin, CliError> {
        let first = self.next("New PIN: ")?;
        check(PinKind::User, &first)?;
        if matches!(self.source, Source::Prompt) {
            let again = self.next("Confirm new PIN: ")?;
            if again != first {
                return Err(CliError::Usage(
                    "the two new PINs differ: nothing was changed".into(),
                ));
            }
        }
        Ok(Pin::new(&first))
    }
}

/// CPx codes are digits: 4 for the PIN, 8 for the PUK on every known card. The exact rule is the
/// card's (its AODF), checked by cpx-card before any APDU; this catches what no card accepts.
fn check(kind: PinKind, value: &str) -> Result<(), CliError> {
    let reason = if value.is_empty() {
        Some("it is empty".to_owned())
    } else if !value.bytes().all(|b| b.is_ascii_digit()) {
        Some("only digits are allowed".to_owned())
    } else if !(4..=16).contains(&value.len()) {
        Some(format!("{} digits where the card expects 4 to 16", value.len()))
    } else {
        None
    };
    match reason {
        Some(reason) => Err(cpx_card::CardError::PinFormat { kind, reason }.into()),
        None => Ok(()),
    }
}
