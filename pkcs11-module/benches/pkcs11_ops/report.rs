//! The Markdown report: medians per operation, the official module's figures from
//! docs/card-spec.md, and the minimum APDU count each operation physically needs.

use std::fmt::Write;

use crate::facts::{above_minimum_reason, minimum, official};
use crate::ops::{CardModel, Sample, Signing};

/// Who ran the operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Impl {
    /// libcpx_pkcs11.so through pcscd + vpcd.
    Cpx,
    /// OpenSC 0.23's opensc-pkcs11.so through pcscd + vpcd.
    OpenSc,
    /// cpx-card over VirtualChannel, no pcscd.
    InProcess,
}

/// The disk cache state of the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Empty cache (cpx) or file caching off (OpenSC).
    Cold,
    /// Cache filled by a previous process (OpenSC: `use_file_caching = public`).
    Warm,
}

/// One operation's outcome in one process.
#[derive(Debug, Clone)]
pub struct Record {
    pub card: CardModel,
    pub imp: Impl,
    pub phase: Phase,
    pub op: String,
    pub result: Result<Sample, String>,
}

/// Everything measured.
#[derive(Debug, Default)]
pub struct Results {
    pub records: Vec<Record>,
    /// APDUs sent outside the timed steps (key lookups, C_Finalize), per (card, impl, phase).
    pub between: Vec<(CardModel, Impl, Phase, String, usize)>,
    /// Minimum APDUs of a cold certificate listing and the file sizes behind it, per card.
    pub list_minimum: Vec<(CardModel, usize, Vec<usize>)>,
    /// The same for finding the private keys (ODF, PrKDF): a cold signature's key lookup.
    pub keys_minimum: Vec<(CardModel, usize, Vec<usize>)>,
    pub iterations: usize,
    /// Time of one zero-timeout PC/SC poll (`SCardGetStatusChange`).
    pub poll_nanos: Option<u64>,
    /// Sum of the operation times of each cold cpx CPS3 process.
    pub process_totals: Vec<u64>,
    /// Whole `pkcs11-tool` runs.
    pub tool: Vec<crate::tool_runs::ToolRecord>,
    /// The per-call table.
    pub calls: Vec<crate::calls::CallStat>,
    /// One exchange's PC/SC round trip, card time excluded, per card.
    pub hops: Vec<(CardModel, std::time::Duration)>,
    /// Browser logins from the browser test's transcripts.
    pub browser: Vec<Result<crate::modelled::BrowserLogin, String>>,
    /// How long the whole benchmark took.
    pub took: Option<std::time::Duration>,
}

/// Median of the samples, and the APDU range when it varied.
struct Agg {
    apdus: usize,
    apdus_range: (usize, usize),
    bytes: usize,
    nanos: u64,
}

fn median<T: Copy + Ord>(mut v: Vec<T>) -> T {
    v.sort_unstable();
    v[v.len() / 2]
}

impl Results {
    fn agg(&self, card: CardModel, imp: Impl, phase: Phase, op: &str) -> Option<Result<Agg, String>> {
        let rs: Vec<&Record> = self
            .records
            .iter()
            .filter(|r| r.card == card && r.imp == imp && r.phase == phase && r.op == op)
            .collect();
        if rs.is_empty() {
            return None;
        }
        if let Some(Err(e)) = rs.iter().map(|r| &r.result).find(|r| r.is_err()) {
            return Some(Err(e.clone()));
        }
        let s: Vec<Sample> = rs.iter().filter_map(|r| r.result.clone().ok()).collect();
        let apdus: Vec<usize> = s.iter().map(|s| s.apdus).collect();
        Some(Ok(Agg {
            apdus_range: (
                apdus.iter().copied().min().unwrap_or(0),
                apdus.iter().copied().max().unwrap_or(0),
            ),
            apdus: median(apdus),
            bytes: median(s.iter().map(|s| s.bytes).collect()),
            nanos: median(s.iter().map(|s| s.nanos).collect()),
        }))
    }

    /// The median APDU count, for sums and comparisons.
    fn apdus(&self, card: CardModel, imp: Impl, phase: Phase, op: &str) -> Option<usize> {
        match self.agg(card, imp, phase, op) {
            Some(Ok(a)) => Some(a.apdus),
            _ => None,
        }
    }

    fn nanos(&self, card: CardModel, imp: Impl, phase: Phase, op: &str) -> Option<u64> {
        match self.agg(card, imp, phase, op) {
            Some(Ok(a)) => Some(a.nanos),
            _ => None,
        }
    }
}

fn ms(n: u64) -> String {
    format!("{:.2} ms", n as f64 / 1e6)
}

fn apdus_cell(a: &Agg) -> String {
    if a.apdus_range.0 == a.apdus_range.1 {
        a.apdus.to_string()
    } else {
        format!("{} ({}–{})", a.apdus, a.apdus_range.0, a.apdus_range.1)
    }
}

/// The rows: (table title, operation id, phase).
fn rows(card: CardModel) -> Vec<(String, String, Phase)> {
    let mut v = vec![
        (
            "C_Initialize + C_GetSlotList + C_GetSlotInfo".to_owned(),
            "init",
            Phase::Cold,
        ),
        (
            "C_OpenSession, first (card opened)".to_owned(),
            "open",
            Phase::Cold,
        ),
        (
            "PIN status: C_GetTokenInfo (PIN and PUK counters)".to_owned(),
            "pin_status",
            Phase::Cold,
        ),
        (
            "C_GetTokenInfo again, within 10 s".to_owned(),
            "pin_status_again",
            Phase::Cold,
        ),
        (
            "Certificate listing, cold: C_FindObjects + CKA_ID, CKA_VALUE".to_owned(),
            "list",
            Phase::Cold,
        ),
        (
            "Certificate listing, warm (disk cache filled)".to_owned(),
            "list",
            Phase::Warm,
        ),
        ("C_Login (user PIN)".to_owned(), "login", Phase::Cold),
    ];
    for s in Signing::all(card) {
        v.push((s.title().to_owned(), s.id(), Phase::Cold));
    }
    v.push((
        "C_Decrypt CKM_RSA_PKCS, authentication key".to_owned(),
        "decrypt",
        Phase::Cold,
    ));
    v.into_iter().map(|(t, o, p)| (t, o.to_owned(), p)).collect()
}

/// The report.
pub fn render(r: &Results) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# PKCS#11 benchmark\n\nGenerated by `cargo bench -p cpx-pkcs11 --bench pkcs11_ops` (pkcs11-module/benches/pkcs11_ops.rs); do not edit by hand.\n"
    );
    let _ = writeln!(
        md,
        "Whole `pkcs11-tool` processes first (issue 15: APDUs, bytes, wall time, modelled real-reader time, \
         the module's time beyond its card exchanges), then a per-call table, then the cost of each operation \
         on its own. The machine is shared (2 cores, other builds running while this was generated): times \
         are noisy; APDU and byte counts are exact.{}\n",
        r.took
            .map(|t| format!(" This run of the benchmark took {:.0} s.", t.as_secs_f64()))
            .unwrap_or_default()
    );
    let mut missed = Vec::new();
    crate::runs_report::render(&mut md, r, &mut missed);
    crate::calls::render(&mut md, r, &mut missed);
    crate::modelled::render_browser(&mut md, &r.browser, &mut missed);
    let _ = writeln!(md, "## Issue 15's targets missed\n");
    if missed.is_empty() {
        let _ = writeln!(md, "None of the targets measured here is missed.\n");
    } else {
        let _ = writeln!(
            md,
            "Every run and call above that misses a target (APDU minima are checked with the per-run minima):\n"
        );
        for m in &missed {
            let _ = writeln!(md, "- {m}");
        }
        md.push('\n');
    }
    let _ = writeln!(md, "## Per operation\n");
    let _ = writeln!(
        md,
        "Each operation runs in a fresh process per iteration ({} iterations; times are medians of the operation's own \
         PKCS#11 calls, without process start or `dlopen`). APDUs and bytes (commands + responses, status words \
         included) are counted on the card side, at the emulator, so GET RESPONSE and chaining count as a real card \
         would see them. **cpx** is `libcpx_pkcs11.so` (release build) and **OpenSC** `opensc-pkcs11.so` 0.23, both \
         through a private pcscd 1.9.9 + vpcd 0.8 and the emulated card (`cpx-emulator`); **in-process** is the card \
         layer alone (`cpx-card` over `VirtualChannel`, no pcscd, no module, no disk cache). Cold = empty disk cache \
         (OpenSC: `use_file_caching = no`); warm = a new process after one that filled it (OpenSC: \
         `use_file_caching = public`). The official module's figures are those recorded in `docs/card-spec.md` (§8.9, \
         §10.16: whole `pkcs11-tool` runs, cache empty / filled).\n",
        r.iterations
    );
    for card in [CardModel::Cps3, CardModel::Cps4] {
        card_table(&mut md, r, card);
    }
    notes(&mut md, r);
    md
}

fn cell(r: &Results, card: CardModel, imp: Impl, phase: Phase, op: &str) -> (String, String, String) {
    match r.agg(card, imp, phase, op) {
        None => ("—".into(), "—".into(), "—".into()),
        Some(Err(e)) => (failure(imp, op, &e), "—".into(), "—".into()),
        Some(Ok(a)) => (apdus_cell(&a), a.bytes.to_string(), ms(a.nanos)),
    }
}

/// A failed operation: the PKCS#11 error, and the known reason.
fn failure(imp: Impl, op: &str, e: &str) -> String {
    let what = e.trim();
    let why = if imp == Impl::OpenSc && op.ends_with("-sig") {
        " (OpenSC 0.23 limit: with OpenSSL 3 it cannot finish the on-card hash, and offers only SHA1/SHA256-RSA-PKCS for this key, docs/card-spec.md §9)"
    } else {
        ""
    };
    format!("fails: {what}{why}")
}

fn card_table(md: &mut String, r: &Results, card: CardModel) {
    let image = card.stem();
    let link = match card {
        CardModel::Cps3 => "T=0",
        CardModel::Cps4 => "T=1, logical channel 1",
    };
    let _ = writeln!(md, "### {} (`{image}`, {link})\n", card.name());
    let _ = writeln!(
        md,
        "| Operation | cpx APDUs | cpx bytes | cpx time | in-process APDUs / time | OpenSC APDUs | OpenSC time | official APDUs (spec) | minimum APDUs: why |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---|---|");
    for (title, op, phase) in rows(card) {
        let (a, b, t) = cell(r, card, Impl::Cpx, phase, &op);
        let (ia, _, it) = cell(r, card, Impl::InProcess, phase, &op);
        let inproc = if ia == "—" { ia } else { format!("{ia} / {it}") };
        let (oa, _, ot) = if card == CardModel::Cps3 {
            cell(r, card, Impl::OpenSc, phase, &op)
        } else {
            ("n/a (no CPS4 driver)".into(), "—".into(), "—".into())
        };
        let (min, why) = minimum(r, card, &op, phase);
        let min = min.map_or("—".into(), |m| m.to_string());
        let _ = writeln!(
            md,
            "| {title} | {a} | {b} | {t} | {inproc} | {oa} | {ot} | {} | {min}: {why} |",
            official(card, &op, phase)
        );
    }
    md.push('\n');
}

fn notes(md: &mut String, r: &Results) {
    let _ = writeln!(md, "### Where cpx stands, operation by operation\n");
    let mut slower = Vec::new();
    let mut above = Vec::new();
    for card in [CardModel::Cps3, CardModel::Cps4] {
        for (title, op, phase) in rows(card) {
            if let (Some(c), Some(o)) = (
                r.nanos(card, Impl::Cpx, phase, &op),
                r.nanos(card, Impl::OpenSc, phase, &op),
            ) && c > o
            {
                let why = match (op.as_str(), phase) {
                    ("open", _) | ("list", Phase::Cold) => {
                        "OpenSC did this work in C_Initialize (see its row and the whole runs)"
                    }
                    ("pin_status", _) => {
                        "the PC/SC poll, and cpx-card's first ODF + AODF read of the card session"
                    }
                    _ => "the PC/SC poll; no APDU",
                };
                slower.push(format!("{} {title}: {} vs {}: {why}", card.name(), ms(c), ms(o)));
            }
            if let (Some(n), (Some(m), _)) =
                (r.apdus(card, Impl::Cpx, phase, &op), minimum(r, card, &op, phase))
                && n > m
            {
                above.push(format!(
                    "{} {title}: {n} vs {m}: {}",
                    card.name(),
                    above_minimum_reason(card, &op, phase)
                ));
            }
        }
    }
    if let Some(p) = r.poll_nanos {
        let _ = writeln!(
            md,
            "**The PC/SC poll.** The module sees removals by polling PC/SC: a zero-timeout \
             `SCardGetStatusChange` asking each reader's state as unknown (`SCARD_STATE_UNAWARE`) and \
             comparing status and event counter itself, made by C_GetSlotList, C_GetSlotInfo, C_GetTokenInfo \
             and C_OpenSession and by the first session call after 100 ms. One poll takes **{}** here \
             (measured through cpx-transport's `Monitor`); the form that gives pcsc-lite the states already \
             known, which cpx used before issue 15, costs about 1 ms per call (pcsc-lite registers a wait, \
             polls and cancels it): each form's figures are in docs/pcsc-presence.md \
             (`cargo bench -p cpx-transport --bench presence_forms`), reproduced here:\n",
            ms(p)
        );
        md.push_str(&presence_forms_table());
    }
    let list = |v: &[String]| {
        if v.is_empty() {
            "none.\n".to_owned()
        } else {
            v.iter().map(|s| format!("\n- {s}")).collect::<String>() + "\n"
        }
    };
    let mut warm = Vec::new();
    for card in [CardModel::Cps3, CardModel::Cps4] {
        for (title, op, phase) in rows(card) {
            if phase == Phase::Warm || op == "list" {
                continue;
            }
            if let (Some(c), Some(w)) = (
                r.apdus(card, Impl::Cpx, Phase::Cold, &op),
                r.apdus(card, Impl::Cpx, Phase::Warm, &op),
            ) && c != w
            {
                warm.push(format!(
                    "{} {title}: {w} in a warm process, {c} in a cold one",
                    card.name()
                ));
            }
        }
    }
    let _ = writeln!(
        md,
        "Operations where cpx is slower than OpenSC on the same card, operation by operation (OpenSC binds the \
         card and reads every object at C_Initialize, so its listings cost nothing afterwards): {}",
        list(&slower)
    );
    let _ = writeln!(
        md,
        "Operations whose cost differs in a warm process (cpx-card reads a directory file the disk cache \
         spared the listing; the first signature then reads the PrKDF for the key reference): {}",
        list(&warm)
    );
    let _ = writeln!(md, "Operations above the minimum APDU count: {}", list(&above));
    if !r.between.is_empty() {
        let _ = writeln!(
            md,
            "APDUs outside the timed operations (key lookups before a signature, C_Finalize), not in the tables:\n"
        );
        for (card, imp, phase, what, n) in &r.between {
            let _ = writeln!(md, "- {} {imp:?} {phase:?}: {what}: {n}", card.name());
        }
    }
}

/// The table of docs/pcsc-presence.md (each PC/SC presence form's cost, written by
/// `cargo bench -p cpx-transport --bench presence_forms`), or a line saying how to get it.
fn presence_forms_table() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/pcsc-presence.md");
    let Ok(text) = std::fs::read_to_string(path) else {
        return "(docs/pcsc-presence.md is missing: run `cargo bench -p cpx-transport --bench presence_forms`.)\n\n"
            .to_owned();
    };
    let mut table: String = text
        .lines()
        .filter(|l| l.starts_with('|'))
        .map(|l| format!("{l}\n"))
        .collect();
    table.push('\n');
    table
}
