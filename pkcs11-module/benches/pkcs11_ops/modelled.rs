//! Modelled time on a real reader: what the exchanges a run made would take on a real USB reader
//! clocking the card as its ATR says (`cpx_emulator::timing::ReaderClock`, docs/reader-timing.md),
//! and the browser login figures from the transcripts the browser test writes.

use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use cpx_emulator::timing::{ReaderClock, SessionFigures};
use cpx_testkit::Exchange;

use crate::ops::CardModel;

/// The exchanges' time on a real reader for a card with this ATR; `None` when the model cannot
/// read the ATR (never for the emulator's cards).
pub fn exchanges(atr: &[u8], wire: &[Exchange]) -> Option<Duration> {
    let clock = ReaderClock::for_atr(atr).ok()?;
    Some(
        clock
            .session(wire.iter().map(|(c, r)| (c.as_slice(), r.as_slice())))
            .total(),
    )
}

/// One browser login as the browser test recorded it.
#[derive(Debug, Clone)]
pub struct BrowserLogin {
    pub card: CardModel,
    pub warm: bool,
    pub figures: SessionFigures,
    pub written: Option<SystemTime>,
}

/// The transcript the browser test (`cargo test -p cpx-pkcs11 --test browser firefox_login_figures`)
/// writes: pkcs11-module/tests/clients/firefox.rs, `transcript_path`.
fn transcript_path(target: &Path, card: CardModel, warm: bool) -> PathBuf {
    target.join("ci-artifacts").join(format!(
        "browser-login-{}-{}.apdu",
        card.name().to_lowercase(),
        if warm { "warm" } else { "cold" }
    ))
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Figures of one transcript: `atr <hex>` then `<command hex> <response hex>` per exchange.
fn read_transcript(text: &str) -> Result<SessionFigures, String> {
    let mut lines = text.lines();
    let atr = lines
        .next()
        .and_then(|l| l.strip_prefix("atr "))
        .and_then(unhex)
        .ok_or("no `atr` line first")?;
    let clock = ReaderClock::for_atr(&atr).map_err(|e| e.to_string())?;
    let mut exchanges = Vec::new();
    for (n, line) in lines.enumerate() {
        let (c, r) = line
            .split_once(' ')
            .and_then(|(c, r)| Some((unhex(c)?, unhex(r)?)))
            .ok_or_else(|| format!("line {}: not `<command hex> <response hex>`", n + 2))?;
        exchanges.push((c, r));
    }
    Ok(clock.session(exchanges.iter().map(|(c, r)| (c.as_slice(), r.as_slice()))))
}

/// The browser logins found under `target` (the target directory the module was built in).
pub fn browser_logins(target: &Path) -> Vec<Result<BrowserLogin, String>> {
    let mut v = Vec::new();
    for card in [CardModel::Cps3, CardModel::Cps4] {
        for warm in [false, true] {
            let file = transcript_path(target, card, warm);
            let Ok(text) = std::fs::read_to_string(&file) else {
                continue;
            };
            v.push(
                read_transcript(&text)
                    .map(|figures| BrowserLogin {
                        card,
                        warm,
                        figures,
                        written: std::fs::metadata(&file).and_then(|m| m.modified()).ok(),
                    })
                    .map_err(|e| format!("{}: {e}", file.display())),
            );
        }
    }
    v
}

/// `YYYY-MM-DD HH:MM UTC` of seconds since the epoch (days to a civil date: H. Hinnant's
/// `civil_from_days`).
fn utc(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let (hh, mm) = ((secs % 86_400) / 3600, (secs % 3600) / 60);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {hh:02}:{mm:02} UTC")
}

fn secs(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64())
}

/// The browser login table, or what to run to get it.
pub fn render_browser(md: &mut String, logins: &[Result<BrowserLogin, String>], missed: &mut Vec<String>) {
    let _ = writeln!(md, "## Firefox TLS login\n");
    let run = "`cargo test -p cpx-pkcs11 --test browser firefox_login_figures` (Firefox ESR, Xvfb, xdotool, \
               openssl; pkcs11-module/tests/browser.rs)";
    let found: Vec<&BrowserLogin> = logins.iter().filter_map(|l| l.as_ref().ok()).collect();
    for e in logins.iter().filter_map(|l| l.as_ref().err()) {
        let _ = writeln!(md, "- unreadable transcript: {e}");
    }
    if found.is_empty() {
        let _ = writeln!(
            md,
            "To do: no browser login transcript was found; {run} writes them to \
             target/ci-artifacts/browser-login-<card>-<cold|warm>.apdu, and the next run of this benchmark \
             reports them here.\n"
        );
        missed
            .push("Firefox login figures: not measured in this run (browser test transcripts absent)".into());
        return;
    }
    let oldest = found
        .iter()
        .filter_map(|l| l.written)
        .min()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or("at an unknown time".to_owned(), |d| utc(d.as_secs()));
    let _ = writeln!(
        md,
        "A whole Firefox ESR TLS client-certificate login (module added by policy; from Firefox's start until \
         the server received the card's certificate and signature; the PIN typed into Firefox's dialog): the \
         first with the module's disk cache empty, the second in a new Firefox process (new profile) with the \
         cache the first filled. CPS3 over TLS 1.2 (PKCS#1 v1.5), CPS4 over TLS 1.3 (RSA-PSS). From the \
         transcripts {run} writes (the oldest of them written {oldest}: they are as fresh as that test's last \
         run, not this benchmark's). *Real reader s*: the modelled time of the exchanges \
         (docs/reader-timing.md): the contact link, the card's processing (RSA-2048 operations: 250 ms on a \
         CPS3, 150 ms on a CPS4) and 1 ms of USB per APDU.\n"
    );
    let _ = writeln!(
        md,
        "| Card | Login | APDUs | bytes | real reader s | of which link s | of which card processing s |"
    );
    let _ = writeln!(md, "|---|---|---:|---:|---:|---:|---:|");
    for l in &found {
        let f = &l.figures;
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} |",
            l.card.name(),
            if l.warm {
                "second (warm cache, new process)"
            } else {
                "first (empty cache)"
            },
            f.apdus,
            f.bytes,
            secs(f.total()),
            secs(f.transmission),
            secs(f.processing),
        );
    }
    md.push('\n');
}
