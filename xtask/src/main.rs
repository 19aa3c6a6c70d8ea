//! Project chores (`cargo run -p xtask -- help`).
//!
//! `gen-test-pki` (alias `gen-test-vectors`) regenerates the deterministic TEST copy of the
//! IGC-Santé PKI and, for every test card, its certificates, `holder.toml` and emulator image
//! `card.toml` under `test-vectors/` (see `test-vectors/README.md`).

mod cards;
mod dn;
mod ext;
mod generate;
mod holder;
mod images;
mod keys;
mod luhn;
mod pki;
mod profile;
mod x509;

#[cfg(test)]
mod image_tests;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

/// Error type of every chore: xtask only reports errors, it never matches on them.
pub(crate) type Error = Box<dyn std::error::Error + Send + Sync>;
/// Result of every chore.
pub(crate) type Result<T> = std::result::Result<T, Error>;

const USAGE: &str = "\
usage: cargo run -p xtask -- <command>

commands:
  gen-test-pki [--out DIR]   regenerate the TEST PKI and, per card, certificates,
                             keys, holder.toml and card.toml (default DIR:
                             <workspace>/test-vectors); alias: gen-test-vectors
  help                       print this message";

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Vec<String>) -> Result<()> {
    let mut args = args.into_iter();
    match args.next().as_deref() {
        Some(command @ ("gen-test-pki" | "gen-test-vectors")) => {
            let out = match (args.next().as_deref(), args.next()) {
                (None, _) => default_out_dir(),
                (Some("--out"), Some(dir)) => PathBuf::from(dir),
                _ => return Err(format!("bad arguments\n{USAGE}").into()),
            };
            let start = Instant::now();
            let written = generate::generate(&out)?;
            println!(
                "{command}: wrote {} files under {} in {:.1} s",
                written.len(),
                out.display(),
                start.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Some("help" | "-h" | "--help") | None => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown command `{other}`\n{USAGE}").into()),
    }
}

/// `<workspace>/test-vectors`, found from this crate's manifest directory so the command works
/// from any current directory.
pub(crate) fn default_out_dir() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .map_or_else(|| manifest.join(".."), PathBuf::from)
        .join("test-vectors")
}
