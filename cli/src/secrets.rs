//! Where PINs and PUKs come from: the reader's PIN pad when it has a usable one, else a hidden
//! prompt on the terminal, or for scripts stdin or a file, one secret per line in the order each
//! command documents. Never from the command line (it would show in `ps`, shell history and audit
//! logs). Every secret is wiped on drop.

use std::io::Read;
use std::path::PathBuf;

use clap::Args;
use cpx_card::{Pin, PinKind};
use zeroize::Zeroizing;

use crate::error::CliError;

/// `--pin-stdin` / `--pin-file FILE`; without either, the reader's PIN pad (unless `--no-pinpad`)
/// or a hidden prompt.
#[derive(Debug, Args)]
pub(crate) struct SecretArgs {
    /// Read the secrets from stdin, one per line, in the order the command documents (e.g. PIN).
    #[arg(long, conflicts_with = "pin_file")]
    pub(crate) pin_stdin: bool,
    /// Read the secrets from FILE, one per line, in the order the command documents.
    #[arg(long, value_name = "FILE")]
    pub(crate) pin_file: Option<PathBuf>,
    /// Type the codes on the computer's keyboard (hidden prompt) even when the reader has a PIN
    /// pad; CPX_PINPAD=off does the same for every command and program.
    #[arg(long)]
    pub(crate) no_pinpad: bool,
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
    /// The codes may be typed on the reader's PIN pad: no secret source named, no `--no-pinpad`.
    pad_allowed: bool,
}

/// Longest secret input accepted (a few lines of digits).
const MAX_LEN: usize = 4096;

impl Secrets {
    /// Secrets from `args`; `order` documents the lines expected (e.g. "current PIN, new PIN").
    pub(crate) fn new(args: &SecretArgs, order: &'static str) -> Result<Secrets, CliError> {
        let (origin, bytes) = if args.pin_stdin {
            // fd 0 itself, not std's `Stdin`: its 8 KiB BufReader would keep "PIN\n" until exit
            // (issue 13 item 8). rustix's `stdin()` is the fd, no buffer.
            let fd = rustix::stdio::stdin();
            let bytes = read_secret(|buf| rustix::io::read(fd, buf).map_err(std::io::Error::from))
                .map_err(|e| CliError::Usage(format!("--pin-stdin: {e}")))?;
            ("--pin-stdin", bytes)
        } else if let Some(path) = &args.pin_file {
            let bytes = std::fs::File::open(path)
                .and_then(|mut f| read_secret(|buf| f.read(buf)))
                .map_err(|e| CliError::Usage(format!("--pin-file {}: {e}", path.display())))?;
            ("--pin-file", bytes)
        } else {
            return Ok(Secrets {
                source: Source::Prompt,
                order,
                pad_allowed: !args.no_pinpad,
            });
        };
        let text =
            std::str::from_utf8(&bytes).map_err(|_| CliError::Usage(format!("{origin}: not UTF-8 text")))?;
        // Each line is copied once, into a buffer of its exact size that is wiped on drop.
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
            pad_allowed: false,
        })
    }

    /// Whether the codes may be entered on the reader's PIN pad: only when they would otherwise
    /// be asked at a prompt (a script's `--pin-stdin` / `--pin-file` means the keyboard path)
    /// and the user did not ask for the keyboard (`--no-pinpad`).
    pub(crate) fn pad_allowed(&self) -> bool {
        self.pad_allowed
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

/// Everything `read` gives until end of file, read straight into one buffer that is allocated
/// once (never moved, so no copy is left behind) and wiped on drop; `read` must be unbuffered
/// (a raw fd, a `File`). More than [`MAX_LEN`] bytes is an error: no secret input is that long.
fn read_secret(
    mut read: impl FnMut(&mut [u8]) -> std::io::Result<usize>,
) -> std::io::Result<Zeroizing<Vec<u8>>> {
    let mut buf = Zeroizing::new(vec![0u8; MAX_LEN + 1]);
    let mut len = 0;
    while let Some(free) = buf.get_mut(len..).filter(|free| !free.is_empty()) {
        match read(free) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    if len > MAX_LEN {
        return Err(std::io::Error::other(format!("more than {MAX_LEN} bytes")));
    }
    // Shortens in place: the capacity (and the wipe on drop) stays the whole buffer.
    buf.truncate(len);
    Ok(buf)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `read` over `input`, at most `chunk` bytes per call, with an EINTR first.
    fn reader(input: &[u8], chunk: usize) -> impl FnMut(&mut [u8]) -> std::io::Result<usize> + '_ {
        let (mut at, mut interrupted) = (0, false);
        move |buf| {
            if !interrupted {
                interrupted = true;
                return Err(std::io::ErrorKind::Interrupted.into());
            }
            let n = chunk.min(buf.len()).min(input.len() - at);
            buf[..n].copy_from_slice(&input[at..at + n]);
            at += n;
            Ok(n)
        }
    }

    #[test]
    fn reads_to_end_in_small_pieces_into_one_buffer() {
        let got = read_secret(reader(b"1234\n5678\n", 3)).unwrap();
        assert_eq!(&got[..], b"1234\n5678\n");
        assert_eq!(got.capacity(), MAX_LEN + 1, "the buffer was never reallocated");
    }

    #[test]
    fn longer_than_the_limit_is_an_error() {
        let big = vec![b'1'; MAX_LEN + 1];
        assert!(read_secret(reader(&big, 1000)).is_err());
        assert_eq!(read_secret(reader(&big[..MAX_LEN], 1000)).unwrap().len(), MAX_LEN);
    }
}
