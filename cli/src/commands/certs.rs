//! `cpx certs list|export|verify`: the card's certificates, their files, and their chains.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use cpx_profile::{ChainStatus, Profile, Role, Timestamp, TrustStore};

use super::status::card_certificates;
use crate::error::CliError;
use crate::output::{self, Format, errln, outln};
use crate::session::{ReaderArg, Session};
use crate::view::certs::{Anchors, Exported, ExportedCert, List, Verified, VerifiedCert};
use crate::view::status::CertInfo;

/// JSON schema versions (docs/cli-json.md).
const LIST_VERSION: u32 = 1;
const EXPORT_VERSION: u32 = 1;
const VERIFY_VERSION: u32 = 1;

/// `cpx certs …`
#[derive(Debug, Subcommand)]
pub(crate) enum CertsCommand {
    /// List the card's certificates: role, subject, issuer level, validity and days left.
    List(ListArgs),
    /// Write certificates as PEM (default; all of them without --role) or DER (one, --role).
    Export(ExportArgs),
    /// Check each certificate's chain to the trust anchors: the official IGC-Santé store
    /// /etc/opt/santesocial/CPS/Coffre when present, plus every --anchors DIR. Exit 10 if any
    /// certificate is invalid, expired or has no path to an anchor.
    Verify(VerifyArgs),
}

/// Which certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum RoleArg {
    /// Authentication (TLS client, smart-card logon).
    Auth,
    /// Signature (non-repudiation).
    Sign,
    /// Technical (contactless, no PIN).
    Tech,
}

impl RoleArg {
    fn role(self) -> Role {
        match self {
            RoleArg::Auth => Role::Authentication,
            RoleArg::Sign => Role::Signature,
            RoleArg::Tech => Role::Technical,
        }
    }
}

/// Arguments of `cpx certs list`.
#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    #[command(flatten)]
    reader: ReaderArg,
    /// Only this role.
    #[arg(long)]
    role: Option<RoleArg>,
}

/// Arguments of `cpx certs export`.
#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    #[command(flatten)]
    reader: ReaderArg,
    /// Only this role (required with --der).
    #[arg(long)]
    role: Option<RoleArg>,
    /// PEM (the default).
    #[arg(long, conflicts_with = "der")]
    pem: bool,
    /// DER (binary, one certificate).
    #[arg(long)]
    der: bool,
    /// Write to FILE instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
}

/// Arguments of `cpx certs verify`.
#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    #[command(flatten)]
    reader: ReaderArg,
    /// Only this role.
    #[arg(long)]
    role: Option<RoleArg>,
    /// A directory of trusted CA certificates (DER or PEM); repeat for several. The test PKI
    /// (test-vectors/pki) is trusted only when named here.
    #[arg(long = "anchors", value_name = "DIR")]
    anchors: Vec<PathBuf>,
}

pub(crate) fn run(cmd: CertsCommand, format: Format) -> Result<(), CliError> {
    match cmd {
        CertsCommand::List(a) => list(a, format),
        CertsCommand::Export(a) => export(a, format),
        CertsCommand::Verify(a) => verify(a, format),
    }
}

/// The card certificates (CAs left out) as a profile, filtered by role.
fn profile(
    session: &mut Session,
    certs: &[(String, Vec<u8>)],
    store: &TrustStore,
) -> Result<Profile, CliError> {
    let mut builder = Profile::builder();
    for (label, der) in certs {
        builder = builder.certificate_from(label, der);
    }
    let p = builder.build(store, Timestamp::now());
    for e in &p.certificate_errors {
        log::warn!(
            "{}: {}: certificate does not parse: {}",
            session.reader(),
            e.source.as_deref().unwrap_or("?"),
            e.error
        );
    }
    Ok(p)
}

fn selected(report: &cpx_profile::profile::CertificateReport, role: Option<RoleArg>) -> bool {
    let r = report.certificate.role.role;
    r != Role::CertificationAuthority && role.is_none_or(|want| want.role() == r)
}

fn none_with(role: Option<RoleArg>) -> CliError {
    CliError::Card(cpx_card::CardError::ObjectNotFound(match role {
        Some(r) => format!(
            "{} certificate",
            r.to_possible_value()
                .map(|v| v.get_name().to_owned())
                .unwrap_or_default()
        ),
        None => "certificate".into(),
    }))
}

fn list(args: ListArgs, format: Format) -> Result<(), CliError> {
    let mut session = Session::open(&args.reader)?;
    let certs = card_certificates(&mut session)?;
    let p = profile(&mut session, &certs, &TrustStore::new())?;
    let out = List {
        reader: session.reader(),
        certificates: p
            .certificates
            .iter()
            .filter(|c| selected(c, args.role))
            .map(CertInfo::from_report)
            .collect(),
    };
    if out.certificates.is_empty() {
        return Err(none_with(args.role));
    }
    match format {
        Format::Json => output::print_json("certs-list", LIST_VERSION, &out),
        Format::Text => {
            for c in &out.certificates {
                outln!("{}", c.text());
                outln!(
                    "{:<15} label {:?}, serial {}",
                    "",
                    c.label.as_deref().unwrap_or(""),
                    c.serial
                );
            }
            Ok(())
        }
    }
}

/// RFC 7468 PEM.
pub(crate) fn pem(der: &[u8]) -> String {
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::with_capacity(der.len().div_ceil(3) * 4);
    for chunk in der.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                b64.push(char::from(B64[((n >> (18 - 6 * i)) & 0x3F) as usize]));
            } else {
                b64.push('=');
            }
        }
    }
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

fn export(args: ExportArgs, format: Format) -> Result<(), CliError> {
    if args.der && args.role.is_none() {
        return Err(CliError::Usage(
            "--der writes one certificate: choose it with --role auth|sign|tech".into(),
        ));
    }
    if format == Format::Json && args.output.is_none() {
        return Err(CliError::Usage(
            "--json reports what was written: give the file with -o".into(),
        ));
    }
    let mut session = Session::open(&args.reader)?;
    let certs = card_certificates(&mut session)?;
    let p = profile(&mut session, &certs, &TrustStore::new())?;
    let chosen: Vec<_> = p.certificates.iter().filter(|c| selected(c, args.role)).collect();
    if chosen.is_empty() {
        return Err(none_with(args.role));
    }
    let bytes: Vec<u8> = if args.der {
        chosen
            .first()
            .map(|c| c.certificate.der().to_vec())
            .unwrap_or_default()
    } else {
        chosen
            .iter()
            .map(|c| pem(c.certificate.der()))
            .collect::<String>()
            .into_bytes()
    };
    match &args.output {
        Some(path) => std::fs::write(path, &bytes)
            .map_err(|e| CliError::Io(format!("cannot write {}: {e}", path.display())))?,
        None => std::io::stdout()
            .write_all(&bytes)
            .map_err(|e| CliError::Output(e.to_string()))?,
    }
    let report = Exported {
        reader: session.reader(),
        format: if args.der { "der" } else { "pem" },
        file: args
            .output
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "-".into()),
        certificates: chosen
            .iter()
            .map(|c| ExportedCert {
                role: c.certificate.role.role,
                subject: c.certificate.subject.text.clone(),
                sha256: c.certificate.sha256.clone(),
            })
            .collect(),
    };
    match (format, &args.output) {
        (Format::Json, _) => output::print_json("certs-export", EXPORT_VERSION, &report),
        (Format::Text, Some(path)) => {
            for c in &report.certificates {
                errln!("{}: {} → {}", c.role.as_str(), c.subject, path.display());
            }
            Ok(())
        }
        (Format::Text, None) => Ok(()),
    }
}

fn verify(args: VerifyArgs, format: Format) -> Result<(), CliError> {
    let mut store = TrustStore::new();
    let mut anchors = Vec::new();
    if let Some(r) = store.load_official_coffre() {
        match r {
            Ok(report) => anchors.push(Anchors {
                dir: report.dir.display().to_string(),
                loaded: report.loaded.len(),
            }),
            Err(e) => log::warn!("{}: {e}", cpx_profile::OFFICIAL_COFFRE),
        }
    }
    for dir in &args.anchors {
        let report = store
            .load_dir(dir)
            .map_err(|e| CliError::Io(format!("--anchors {}: {e}", dir.display())))?;
        anchors.push(Anchors {
            dir: dir.display().to_string(),
            loaded: report.loaded.len(),
        });
    }
    let mut session = Session::open(&args.reader)?;
    let certs = card_certificates(&mut session)?;
    let p = profile(&mut session, &certs, &store)?;
    let checked: Vec<VerifiedCert> = p
        .certificates
        .iter()
        .filter(|c| selected(c, args.role))
        .map(|c| {
            let mut problems: Vec<String> = c.chain.problems.iter().map(|e| e.to_string()).collect();
            if c.chain.status == ChainStatus::Incomplete {
                problems.insert(0, if store.is_empty() {
                    format!(
                        "no trust anchors: install the IGC-Santé CA certificates in {} or pass --anchors DIR",
                        cpx_profile::OFFICIAL_COFFRE
                    )
                } else {
                    "no path to a trusted anchor".into()
                });
            }
            VerifiedCert {
                role: c.certificate.role.role,
                subject: c.certificate.subject.text.clone(),
                status: c.chain.status,
                expiry: c.expiry.status,
                days_left: c.expiry.days_left,
                path: c.chain.path.iter().map(|l| l.subject.clone()).collect(),
                problems,
            }
        })
        .collect();
    if checked.is_empty() {
        return Err(none_with(args.role));
    }
    let valid = checked.iter().all(|c| c.status == ChainStatus::Valid);
    let out = Verified {
        reader: session.reader(),
        at: p.evaluated_at,
        anchors,
        valid,
        certificates: checked,
    };
    match format {
        Format::Json => output::print_json("certs-verify", VERIFY_VERSION, &out)?,
        Format::Text => {
            for c in &out.certificates {
                let status = match c.status {
                    ChainStatus::Valid => "valid",
                    ChainStatus::Invalid => "INVALID",
                    ChainStatus::Incomplete => "INCOMPLETE",
                };
                outln!("{}: {status}: {}", c.role.as_str(), c.subject);
                for link in c.path.iter().skip(1) {
                    outln!("    ← {link}");
                }
                for problem in &c.problems {
                    outln!("    problem: {problem}");
                }
            }
        }
    }
    if valid {
        return Ok(());
    }
    let first = out.certificates.iter().find(|c| c.status != ChainStatus::Valid);
    Err(CliError::CertificateInvalid(match first {
        Some(c) => format!(
            "{} certificate: {}",
            c.role.as_str(),
            c.problems
                .first()
                .map(String::as_str)
                .unwrap_or("chain not valid")
        ),
        None => "chain not valid".into(),
    }))
}
