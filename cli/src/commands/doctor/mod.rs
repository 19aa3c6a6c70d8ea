//! `cpx doctor`: what a support desk needs, in one run. Each check has a stable id, a verdict
//! (`ok`, `warn`, `fail`, `skip`), a one-line finding and the fix (a command or a step).
//!
//! Order: the card side (pcscd → readers → card → certificates, PIN, the reader's PIN pad), then the workstation side
//! (the PKCS#11 module, its registration with p11-kit, another module there driving the same
//! cards, Chromium's NSS database and each Firefox
//! profile, snap/Flatpak browsers, the kernel NFC driver). A check whose prerequisite failed is
//! `skip` with the reason; the workstation checks run even when pcscd is down. Nothing spends a
//! PIN try: the PIN check reads the counters only.
//!
//! Test hook: `CPX_DOCTOR_ROOT=DIR` makes every system path (`/proc`, `/sys`, `/etc`, `/usr`,
//! `/snap`, `/var`) be read under DIR instead of `/`, so the tests can fake a loaded pn533
//! driver or a snap Firefox. Per-user paths follow `$HOME`, `$XDG_CONFIG_HOME` and
//! `$XDG_DATA_HOME` as usual.

mod browsers;
mod card;
mod host;
mod module;
mod nfc;
mod p11kit;
mod p11kit_others;
mod pcsc;
mod pinpad;

use std::path::PathBuf;

use clap::Args;
use cpx_profile::TrustStore;
use serde::Serialize;

use crate::error::CliError;
use crate::output::{self, Format, outln};
use crate::session::ReaderArg;

/// JSON schema version of `cpx doctor --json` (docs/cli-json.md).
const VERSION: u32 = 1;

/// Arguments of `cpx doctor`.
#[derive(Debug, Args)]
pub(crate) struct DoctorArgs {
    #[command(flatten)]
    reader: ReaderArg,
    /// The PKCS#11 module to check; default: the installed one
    /// (`/usr/lib/<multiarch>/pkcs11/libcpx_pkcs11.so`), else the one next to `cpx`.
    #[arg(long, value_name = "PATH")]
    module: Option<PathBuf>,
    /// A directory of trusted CA certificates for the chain check, as for `cpx certs verify`
    /// (the official store /etc/opt/santesocial/CPS/Coffre is used when present); repeatable.
    #[arg(long = "anchors", value_name = "DIR")]
    anchors: Vec<PathBuf>,
}

/// A check's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum Verdict {
    /// Not run: a prerequisite failed, or it does not apply here (the finding says which).
    Skip,
    /// Fine.
    Ok,
    /// Works, but something needs attention soon (or cannot be fully checked).
    Warn,
    /// Broken: the fix says what to do.
    Fail,
}

/// One check of the report.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Check {
    /// Stable identifier (`pcscd`, `readers`, …).
    pub(super) id: &'static str,
    pub(super) verdict: Verdict,
    /// One line: what was found.
    pub(super) finding: String,
    /// The command or step that fixes it; `None` when there is nothing to do.
    pub(super) fix: Option<String>,
    /// Supporting facts, one per line (readers seen, certificates, profiles…).
    pub(super) details: Vec<String>,
}

impl Check {
    pub(super) fn ok(id: &'static str, finding: impl Into<String>) -> Check {
        Check::new(id, Verdict::Ok, finding, None)
    }

    pub(super) fn warn(id: &'static str, finding: impl Into<String>, fix: impl Into<String>) -> Check {
        Check::new(id, Verdict::Warn, finding, Some(fix.into()))
    }

    pub(super) fn fail(id: &'static str, finding: impl Into<String>, fix: impl Into<String>) -> Check {
        Check::new(id, Verdict::Fail, finding, Some(fix.into()))
    }

    pub(super) fn skip(id: &'static str, reason: impl Into<String>) -> Check {
        Check::new(id, Verdict::Skip, reason, None)
    }

    pub(super) fn new(
        id: &'static str,
        verdict: Verdict,
        finding: impl Into<String>,
        fix: Option<String>,
    ) -> Check {
        Check {
            id,
            verdict,
            finding: finding.into(),
            fix,
            details: Vec::new(),
        }
    }

    pub(super) fn details(mut self, details: Vec<String>) -> Check {
        self.details = details;
        self
    }
}

#[derive(Serialize)]
struct Report {
    /// No check failed (warnings allowed).
    ok: bool,
    counts: Counts,
    /// The reader whose card was examined.
    reader: Option<String>,
    /// That card's PKCS#11 token label.
    token_label: Option<String>,
    /// The PKCS#11 module examined.
    module: Option<String>,
    checks: Vec<Check>,
}

#[derive(Serialize)]
struct Counts {
    ok: usize,
    warn: usize,
    fail: usize,
    skip: usize,
}

pub(crate) fn run(args: DoctorArgs, format: Format) -> Result<(), CliError> {
    let host = host::Host::from_env();
    let store = trust_store(&args.anchors)?;

    // The NFC check first: a reader claimed by the kernel is the usual cause of "no reader".
    let nfc = nfc::check(&host);
    let mut checks = Vec::new();
    let mut session = pcsc::check(&host, &args.reader, nfc.verdict == Verdict::Fail, &mut checks);
    let mut reader = None;
    let mut token = None;
    match session.as_mut() {
        Some(s) => {
            checks.push(card::certificates(s, &store));
            checks.push(card::pin(s));
            checks.push(pinpad::check(s));
            reader = Some(s.reader());
            token = Some(s.card.token_label().to_owned());
        }
        None => {
            let why = "needs a CPx card (see the card check)";
            checks.push(Check::skip("certificates", why));
            checks.push(Check::skip("pin", why));
            checks.push(Check::skip("pin-pad", why));
        }
    }
    let (module_check, module_path) = module::check(
        &host,
        args.module.as_deref(),
        reader.as_deref().zip(token.as_deref()),
    );
    // Our connection stays open (shared, idle) until the module is done: closing it resets the
    // card (the pcsc crate disconnects with SCARD_RESET_CARD), which would race with the
    // module opening the same card.
    drop(session);
    checks.push(module_check);
    // What the registration fixes name: the module checked, else where the package puts it.
    let library = module_path
        .clone()
        .unwrap_or_else(|| module::installed_paths()[0].clone());
    let p11kit = p11kit::check(&host, &library);
    let via_p11kit = p11kit.verdict == Verdict::Ok;
    checks.push(p11kit);
    checks.push(p11kit_others::check(&host, via_p11kit));
    checks.push(browsers::nss_chromium(&host, &library, via_p11kit));
    checks.push(browsers::firefox(&host, &library));
    checks.push(browsers::packaging(&host));
    checks.push(nfc);

    let count = |v: Verdict| checks.iter().filter(|c| c.verdict == v).count();
    let report = Report {
        ok: count(Verdict::Fail) == 0,
        counts: Counts {
            ok: count(Verdict::Ok),
            warn: count(Verdict::Warn),
            fail: count(Verdict::Fail),
            skip: count(Verdict::Skip),
        },
        reader,
        token_label: token,
        module: module_path.map(|p| p.display().to_string()),
        checks,
    };
    match format {
        Format::Json => output::print_json("doctor", VERSION, &report)?,
        Format::Text => print_text(&report),
    }
    let failed: Vec<&str> = report
        .checks
        .iter()
        .filter(|c| c.verdict == Verdict::Fail)
        .map(|c| c.id)
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(CliError::ChecksFailed(failed.join(", ")))
    }
}

/// The official Coffre when present, plus every `--anchors DIR` (as `cpx certs verify`).
fn trust_store(anchors: &[PathBuf]) -> Result<TrustStore, CliError> {
    let mut store = TrustStore::new();
    if let Some(Err(e)) = store.load_official_coffre() {
        log::warn!("{}: {e}", cpx_profile::OFFICIAL_COFFRE);
    }
    for dir in anchors {
        store
            .load_dir(dir)
            .map_err(|e| CliError::Io(format!("--anchors {}: {e}", dir.display())))?;
    }
    Ok(store)
}

fn print_text(r: &Report) {
    for c in &r.checks {
        let verdict = match c.verdict {
            Verdict::Ok => "ok",
            Verdict::Warn => "WARN",
            Verdict::Fail => "FAIL",
            Verdict::Skip => "skip",
        };
        outln!("{verdict:<5} {:<18} {}", c.id, c.finding);
        for d in &c.details {
            outln!("{:<24}- {d}", "");
        }
        if let Some(fix) = &c.fix {
            outln!("{:<24}fix: {fix}", "");
        }
    }
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    outln!(
        "{} ok, {}, {} failed, {} skipped",
        r.counts.ok,
        plural(r.counts.warn, "warning"),
        r.counts.fail,
        r.counts.skip
    );
}
