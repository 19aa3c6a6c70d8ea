//! What `cpx report` writes and shows: the report file (`cpx-report/1`, TOML, documented in
//! docs/card-report.md), its `--json` summary (`cpx/report`, docs/cli-json.md) and its text.

use serde::Serialize;

use crate::output::outln;

/// The report file's format name; bumped on any incompatible change (docs/card-report.md).
pub(crate) const FORMAT: &str = "cpx-report/1";

/// Where users send reports: the issue tracker of the workspace's `repository` (Cargo.toml), so
/// that the address printed follows the project's one place for it (docs/card-report.md).
pub(crate) const SEND_TO: &str = concat!(env!("CARGO_PKG_REPOSITORY"), "/issues");

/// The report file.
#[derive(Serialize)]
pub(crate) struct ReportFile {
    pub(crate) format: &'static str,
    pub(crate) cpx_version: &'static str,
    pub(crate) created: String,
    /// `redacted` (default) or `included` (`--include-personal-data`).
    pub(crate) personal_data: &'static str,
    pub(crate) logged_in: bool,
    pub(crate) reader: ReaderSection,
    pub(crate) card: CardSection,
    /// What the card layer could not read (the exchanges show the card's answers).
    pub(crate) problems: Vec<String>,
    pub(crate) pins: Vec<PinSection>,
    /// Transport facts from the probes (docs/card-report.md, `[link]`).
    pub(crate) link: LinkSection,
    /// GET DATA of each security environment (docs/card-report.md).
    pub(crate) security_environments: Vec<SecurityEnvironmentSection>,
    pub(crate) probes: Vec<ProbeSection>,
    pub(crate) redactions: Vec<Redaction>,
    pub(crate) files: Vec<FileSection>,
    pub(crate) exchanges: Vec<ExchangeSection>,
    /// The T=0 steps below the joined exchanges (docs/card-report.md, `[[wire]]`).
    pub(crate) wire: Vec<WireSection>,
}

/// One APDU and its answer as on the wire: a `61xx` / `6Cxx` / `9Fxx` answer or the command that
/// followed it (GET RESPONSE, or the command sent again with the card's Le).
#[derive(Serialize)]
pub(crate) struct WireSection {
    pub(crate) command: String,
    pub(crate) response: String,
    /// Personal bytes of the answer replaced by placeholders.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(crate) redacted: bool,
}

#[derive(Serialize)]
pub(crate) struct ReaderSection {
    pub(crate) name: String,
    /// `T=0`, `T=1`, `raw`.
    pub(crate) protocol: String,
    /// PC/SC part 10 features: `NAME = control code (hex)`.
    pub(crate) features: Vec<String>,
    /// Why the features could not be asked.
    pub(crate) features_error: Option<String>,
}

#[derive(Serialize)]
pub(crate) struct CardSection {
    pub(crate) atr: String,
    pub(crate) generation: &'static str,
    pub(crate) interface: &'static str,
    pub(crate) model: &'static str,
    pub(crate) serial: String,
    pub(crate) token_label: String,
    pub(crate) manufacturer: String,
    /// The PKCS#15 application DF the card layer used, e.g. `3F00/0001`.
    pub(crate) application: String,
}

#[derive(Serialize)]
pub(crate) struct PinSection {
    /// `PIN` or `PUK`.
    pub(crate) kind: String,
    pub(crate) tries_left: Option<u8>,
    pub(crate) max_tries: Option<u8>,
    pub(crate) blocked: bool,
    pub(crate) verified: Option<bool>,
}

/// What the card answered to a read-only probe (the bytes are in the exchanges).
/// `[link]`: how the card answered at the edges of its transport; a fact the probes could not
/// establish is left out.
#[derive(Serialize, Default)]
pub(crate) struct LinkSection {
    /// The largest READ BINARY Le found answered whole: 256, or 231 (0xE7) when 256 was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) read_binary_max: Option<u16>,
    /// The answer to a READ BINARY past the end of a file: `6Cxx`, `6282`, `6700` or `6B00`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) read_past_end: Option<String>,
}

/// What the card answered to a read of one security environment.
#[derive(Serialize)]
pub(crate) struct SecurityEnvironmentSection {
    pub(crate) number: u8,
    /// `9000`, or e.g. `6A88` (no such SE).
    pub(crate) sw: String,
    /// The answer's data (`70 { BF FB <n> { 7B { CRTs } } }`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) data: Option<String>,
}

#[derive(Serialize)]
pub(crate) struct ProbeSection {
    /// Absolute path selected.
    pub(crate) path: String,
    /// SW of the SELECT (with FCP/FCI).
    pub(crate) select_sw: String,
    pub(crate) fcp: Option<String>,
    /// SW and length of the READ BINARY at offset 0, when one was sent.
    pub(crate) read_sw: Option<String>,
    pub(crate) read_len: Option<usize>,
}

/// One value replaced by placeholders.
#[derive(Serialize, Clone)]
pub(crate) struct Redaction {
    /// e.g. `certificate "Certificat de Signature CPS"`.
    pub(crate) what: String,
    /// Its length (kept).
    pub(crate) bytes: usize,
    /// How many bytes changed.
    pub(crate) changed: usize,
}

#[derive(Serialize)]
pub(crate) struct FileSection {
    /// `EF.DIR`, `ODF`, `TokenInfo`, `AODF`, `PrKDF`, `CDF`, `DODF`, a certificate or data label.
    pub(crate) name: String,
    /// `certificate`, `data`, `pkcs15`.
    pub(crate) kind: &'static str,
    /// File path (hex FIDs, `/`-separated) when the card layer names it.
    pub(crate) path: Option<String>,
    /// The FCP/FCI the last SELECT of this path answered, when one was asked.
    pub(crate) fcp: Option<String>,
    pub(crate) size: usize,
    /// Upper-case hex (redacted unless `personal_data = "included"`).
    pub(crate) content: Option<String>,
    pub(crate) redacted: bool,
    /// Why it was not read.
    pub(crate) error: Option<String>,
}

#[derive(Serialize)]
pub(crate) struct ExchangeSection {
    pub(crate) purpose: String,
    /// Upper-case hex; PIN data masked with `2A` bytes (`masked = true`).
    pub(crate) command: String,
    /// Upper-case hex, data ‖ SW1 SW2, as the card layer received it (GET RESPONSE joined).
    pub(crate) response: Option<String>,
    pub(crate) error: Option<String>,
    pub(crate) masked: bool,
    pub(crate) redacted: bool,
}

/// `cpx report --json`.
#[derive(Serialize)]
pub(crate) struct Summary {
    pub(crate) reader: String,
    pub(crate) file: String,
    pub(crate) format: &'static str,
    pub(crate) personal_data: &'static str,
    pub(crate) logged_in: bool,
    pub(crate) generation: &'static str,
    pub(crate) exchanges: usize,
    pub(crate) files: usize,
    pub(crate) unread_files: usize,
    pub(crate) problems: Vec<String>,
    pub(crate) redactions: Vec<Redaction>,
    pub(crate) send_to: &'static str,
}

pub(crate) fn print_text(s: &Summary) {
    outln!("Card report written to {} ({})", s.file, s.format);
    outln!(
        "It holds: the reader ({}) and its features, the {} card's ATR and identity,",
        s.reader,
        s.generation
    );
    outln!(
        "  {} files (PKCS#15 directories, certificates, data objects; {} not readable), the PIN/PUK",
        s.files,
        s.unread_files
    );
    outln!(
        "  counters, and the {} commands cpx sent with the card's answers.",
        s.exchanges
    );
    for p in &s.problems {
        outln!("Could not read: {p} (the card's answers are in the file)");
    }
    if s.logged_in {
        outln!("The PIN was presented; its digits are masked in the file.");
    } else {
        outln!("No PIN was presented and no try was spent.");
    }
    if s.personal_data == "included" {
        outln!("PERSONAL DATA INCLUDED (--include-personal-data): names, identifiers and certificates");
        outln!("  are in the file as on the card. Do not post it publicly.");
    } else {
        outln!("Personal data redacted (lengths and structure kept):");
        for r in &s.redactions {
            outln!("  {}: {} of {} bytes replaced", r.what, r.changed, r.bytes);
        }
        outln!("  Read the file before sending it: it is plain text.");
    }
    outln!("Send it to the cpx maintainers: {}", s.send_to);
}
