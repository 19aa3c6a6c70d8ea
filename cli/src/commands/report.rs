//! `cpx report`: a file that lets a maintainer reproduce the user's card (docs/card-report.md).
//! Read-only: no VERIFY with data unless `--login` (the PIN then masked in the file), no write.
//! Every APDU goes through a recording channel ([`crate::record`]) under the card layer's own
//! open and read paths; personal data is redacted ([`crate::redact`]) unless
//! `--include-personal-data`.

use std::path::PathBuf;

use clap::Args;
use cpx_card::{Card, CardError, PinKind, ProbeBase};
use cpx_profile::{Profile, Timestamp, TrustStore};
use cpx_transport::{CardChannel, Pcsc};

use crate::error::CliError;
use crate::output::{self, Format};
use crate::record::{Exchange, Recording, Tape, masked_raw};
use crate::redact;
use crate::secrets::{SecretArgs, Secrets};
use crate::session::{ReaderArg, Session, generation_name, interface_name};
use crate::view::report::{
    CardSection, ExchangeSection, FORMAT, FileSection, LinkSection, PinSection, ProbeSection, ReaderSection,
    Redaction, ReportFile, SEND_TO, SecurityEnvironmentSection, Summary, WireSection, print_text,
};

/// JSON schema version of `cpx report --json` (docs/cli-json.md).
const VERSION: u32 = 1;

/// The smallest READ BINARY chunk a CPx driver asks (0xE7, the official module's CPS3
/// `max_recv_size`, docs/card-spec.md §2.3): the second chunk probe when 256 bytes are refused.
const DRIVER_CHUNK: u16 = 0xE7;

/// Arguments of `cpx report`.
#[derive(Debug, Args)]
pub(crate) struct ReportArgs {
    #[command(flatten)]
    reader: ReaderArg,
    /// Where to write the report.
    #[arg(short = 'o', long, value_name = "FILE", default_value = "cpx-report.toml")]
    output: PathBuf,
    /// Present the PIN (hidden prompt) to read the private data objects too; the PIN is masked
    /// in the file. Without it no PIN is sent and no try is spent.
    #[arg(long)]
    login: bool,
    /// Secrets for the login (implies --login): the PIN, one line.
    #[command(flatten)]
    secrets: SecretArgs,
    /// Keep names, identifiers, addresses and certificates as on the card (a file to keep
    /// private: never post it publicly).
    #[arg(long)]
    include_personal_data: bool,
}

/// A value read from the card, the redacted form written in its place, and what it is.
struct Blob {
    what: String,
    original: Vec<u8>,
    written: Vec<u8>,
}

/// One file the card layer read.
struct Read {
    name: String,
    kind: &'static str,
    path: Option<Vec<u8>>,
    result: Result<usize, String>,
}

pub(crate) fn run(args: ReportArgs, format: Format) -> Result<(), CliError> {
    let login = args.login || args.secrets.given();
    let mut secrets = Secrets::new(&args.secrets, "the PIN")?;
    let pcsc = Pcsc::establish()?;
    let (reader, auto) = match &args.reader.reader {
        Some(name) => (name.clone(), false),
        None => {
            // The same choice as every card command; that first open is not recorded.
            let found = Session::open(&args.reader)?;
            (found.card.reader().to_owned(), found.auto)
        }
    };
    let mut channel = pcsc.connect(&reader)?;
    let atr = channel.atr().to_vec();
    let protocol = channel.protocol().to_string();
    let (features, features_error) = match channel.reader_features() {
        Ok(f) => (
            f.iter()
                .map(|(feature, code)| format!("{feature} = {code}"))
                .collect(),
            None,
        ),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    let tape = Tape::default();
    // The T=0 steps (61xx, GET RESPONSE, 6Cxx) below the card layer's joined answers.
    channel.set_wire_tap(Some(tape.wire_tap()));
    tape.purpose("identify and open (EF.SN.ICC, EF.DIR, TokenInfo)");
    let card = Card::open(Box::new(Recording::new(Box::new(channel), tape.clone())))?;
    let mut session = Session { card, auto };

    let mut problems = Vec::new();
    tape.purpose("PIN and PUK status (no VERIFY with data)");
    let codes = session.codes()?;
    tape.purpose("EF_ACTUA");
    nonfatal(session.card.ef_actua(), &mut problems)?;
    tape.purpose("private keys (ODF, PrKDF)");
    nonfatal(session.card.private_keys(), &mut problems)?;

    let mut blobs = Vec::new();
    let mut reads = Vec::new();
    tape.purpose("certificates (CDF, certificate files)");
    let mut certs = Vec::new();
    if let Some(infos) = nonfatal(session.card.certificate_infos(), &mut problems)? {
        for info in infos {
            let result = match nonfatal_err(session.card.read_certificate(&info))? {
                Ok(cert) => {
                    let written = if args.include_personal_data {
                        cert.der.clone()
                    } else {
                        redact::certificate(&cert.der)
                    };
                    blobs.push(Blob {
                        what: format!("certificate \"{}\"", cert.label),
                        original: cert.der.clone(),
                        written,
                    });
                    certs.push((cert.label, cert.der));
                    Ok(blobs.len() - 1)
                }
                Err(e) => Err(e),
            };
            reads.push(Read {
                name: info.common.label.clone(),
                kind: "certificate",
                path: Some(info.path.path.clone()),
                result,
            });
        }
    }

    tape.purpose("data objects (DODF, public objects)");
    let objects = nonfatal(session.card.data_objects(), &mut problems)?.unwrap_or_default();
    // Where each object's file is, asked once for all of them (one transaction, no APDU once the
    // DODF is read).
    let paths = session.card.data_object_paths().unwrap_or_default();
    if login {
        tape.purpose("login (VERIFY, PIN masked)");
        session.login(&mut secrets)?;
    }
    let mut values = Vec::new();
    for o in &objects {
        if o.private && !login {
            continue;
        }
        tape.purpose(if o.private {
            "data objects (private, after the PIN)"
        } else {
            "data objects (DODF, public objects)"
        });
        let result = match nonfatal_err(session.card.read_data_object(&o.label))? {
            Ok(value) => {
                let written = if args.include_personal_data {
                    value.clone()
                } else {
                    redact::business_data(&value)
                };
                blobs.push(Blob {
                    what: format!("data object {}", o.label),
                    original: value.clone(),
                    written,
                });
                values.push((o.label.clone(), value));
                Ok(blobs.len() - 1)
            }
            Err(e) => Err(e),
        };
        let path = paths
            .iter()
            .find(|(label, _)| *label == o.label)
            .map(|(_, p)| p.clone());
        reads.push(Read {
            name: o.label.clone(),
            kind: "data",
            path,
            result,
        });
    }
    // The PIN was presented (a contactless CPS3 has none: --login sends nothing there).
    let logged_in = login && session.card.pin_verified();
    if login {
        tape.purpose("log out (VERIFY P1 FF, no data)");
        // Leave the card as found; a card refusing it is reset by the card layer.
        let _ = session.card.logout();
    }

    // The facts the emulator had to choose (crates/cpx-emulator/CHOICES.md, "File system and
    // PKCS#15": file ids not public; "Commands and transport": READ BINARY past the end and
    // chunk sizes): SELECT and READ BINARY only.
    tape.purpose("probes (SELECT and READ BINARY only)");
    let mut probe_targets: Vec<(ProbeBase, Vec<u8>, Option<u16>)> = vec![
        (ProbeBase::Mf, vec![0x3F, 0x00, 0x2F, 0x00], Some(256)),
        (ProbeBase::Mf, vec![0x3F, 0x00, 0x2F, 0x01], Some(256)),
        (ProbeBase::Mf, vec![0x3F, 0x00, 0xD0, 0x03], Some(256)),
    ];
    for fid in [
        [0x50, 0x33],
        [0x70, 0x03],
        [0x70, 0x04],
        [0x70, 0x07],
        [0x70, 0x08],
        [0xA0, 0x03],
    ] {
        probe_targets.push((ProbeBase::Application, fid.to_vec(), None));
    }
    // The FCP/FCI of every file read (the card layer skips it where it does not need it).
    for r in &reads {
        if let Some(path) = &r.path {
            probe_targets.push((ProbeBase::Mf, path.clone(), None));
        }
    }
    // A READ BINARY of 256 bytes of the first certificate: the card's chunk limit.
    let mut has_cert_probe = false;
    if let Some(path) = reads
        .iter()
        .find(|r| r.kind == "certificate" && r.result.is_ok())
        .and_then(|r| r.path.clone())
    {
        probe_targets.push((ProbeBase::Mf, path, Some(256)));
        has_cert_probe = true;
    }
    let mut probes = Vec::new();
    let mut link = LinkSection::default();
    // The card's own answer to a READ BINARY past the end (6Cxx on T=0 is not re-issued here).
    tape.raw_6c(true);
    let last = probe_targets.len().saturating_sub(1);
    let mut queue: std::collections::VecDeque<_> = probe_targets
        .into_iter()
        .enumerate()
        .map(|(i, (base, path, le))| (has_cert_probe && i == last, base, path, le))
        .collect();
    while let Some((certificate, base, path, le)) = queue.pop_front() {
        if let Some(p) = nonfatal(session.card.probe_file(base, &path, le), &mut problems)? {
            if let (Some((sw, data)), Some(le)) = (&p.read, le) {
                if certificate && *sw == 0x9000 && data.len() == usize::from(le) {
                    // The first certificate is longer than 256 bytes: a whole chunk answered.
                    link.read_binary_max = Some(le);
                } else if certificate && le > DRIVER_CHUNK && matches!(*sw, 0x6700 | 0x6C00..=0x6CFF) {
                    // Refused: does the card answer the smallest chunk a driver uses?
                    queue.push_back((true, base, path.clone(), Some(DRIVER_CHUNK)));
                } else if certificate && *sw == 0x9000 && le == DRIVER_CHUNK {
                    link.read_binary_max = Some(le);
                } else if !certificate && *sw != 0x9000 {
                    // A file shorter than the Le asked (EF.DIR, EF.ATR, EF.SN.ICC).
                    if link.read_past_end.is_none() {
                        link.read_past_end =
                            cpx_emulator::PastEnd::from_sw(*sw).map(|f| f.as_str().to_owned());
                    }
                    // `6Cxx`: read it again with the length the card gave, for its bytes.
                    if let 0x6C01..=0x6CFF = *sw {
                        queue.push_front((false, base, path.clone(), Some(*sw & 0xFF)));
                    }
                }
            }
            probes.push(ProbeSection {
                path: path_text(&p.path),
                select_sw: format!("{:04X}", p.select_sw),
                fcp: (!p.fcp.is_empty()).then(|| hex::encode_upper(&p.fcp)),
                read_sw: p.read.as_ref().map(|(sw, _)| format!("{sw:04X}")),
                read_len: p.read.as_ref().map(|(_, d)| d.len()),
            });
        }
    }
    tape.raw_6c(false);

    // The security environments the card has (crates/cpx-emulator/CHOICES.md: SE numbers):
    // GET DATA of SE #1 to #5 from the MF, read-only.
    tape.purpose("security environments (GET DATA, read-only)");
    let security_environments = nonfatal(
        session.card.probe_security_environments(&[1, 2, 3, 4, 5]),
        &mut problems,
    )?
    .unwrap_or_default()
    .into_iter()
    .map(|(number, sw, data)| SecurityEnvironmentSection {
        number,
        sw: format!("{sw:04X}"),
        data: (!data.is_empty()).then(|| hex::encode_upper(&data)),
    })
    .collect();

    let files = session.card.pkcs15_files().clone();
    let exchanges = tape.exchanges();
    let card = &session.card;
    let mut file_sections = Vec::new();
    for (name, value) in [
        ("EF.DIR", &files.ef_dir),
        ("TokenInfo", &files.token_info),
        ("ODF", &files.odf),
        ("AODF", &files.aodf),
        ("PrKDF", &files.prkdf),
        ("CDF", &files.cdf),
        ("DODF", &files.dodf),
    ] {
        if let Some(v) = value {
            file_sections.push(FileSection {
                name: name.into(),
                kind: "pkcs15",
                path: (name == "EF.DIR").then(|| "3F00/2F00".into()),
                fcp: None,
                size: v.len(),
                content: Some(hex::encode_upper(v)),
                redacted: false,
                error: None,
            });
        }
    }
    for r in &reads {
        let fcp = r.path.as_deref().and_then(|p| last_fcp(&exchanges, p));
        let path = r.path.as_deref().map(path_text);
        let section = match &r.result {
            Ok(i) => {
                let b = &blobs[*i];
                FileSection {
                    name: r.name.clone(),
                    kind: r.kind,
                    path,
                    fcp,
                    size: b.written.len(),
                    content: Some(hex::encode_upper(&b.written)),
                    redacted: b.written != b.original,
                    error: None,
                }
            }
            Err(e) => FileSection {
                name: r.name.clone(),
                kind: r.kind,
                path,
                fcp,
                size: 0,
                content: None,
                redacted: false,
                error: Some(e.clone()),
            },
        };
        file_sections.push(section);
    }
    let exchange_sections = exchanges
        .iter()
        .map(|e| redact_exchange(e, &blobs))
        .collect::<Vec<_>>();
    let wire_sections = tape
        .wire_steps()
        .into_iter()
        .map(|(command, response)| {
            let e = Exchange {
                purpose: String::new(),
                masked: masked_raw(&command) != command || matches!(command.get(1), Some(0x20 | 0x24 | 0x2C)),
                command,
                response: Some(response),
                error: None,
            };
            let s = redact_exchange(&e, &blobs);
            WireSection {
                command: s.command,
                response: s.response.unwrap_or_default(),
                redacted: s.redacted,
            }
        })
        .collect::<Vec<_>>();
    let redactions: Vec<Redaction> = blobs
        .iter()
        .filter(|b| b.written != b.original)
        .map(|b| Redaction {
            what: b.what.clone(),
            bytes: b.original.len(),
            changed: b.original.iter().zip(&b.written).filter(|(a, b)| a != b).count(),
        })
        .collect();
    let pins = [(PinKind::User, codes.pin), (PinKind::Puk, codes.puk)]
        .into_iter()
        .filter_map(|(kind, state)| {
            state.map(|s| PinSection {
                kind: kind.to_string(),
                tries_left: s.tries_left,
                max_tries: s.max_tries,
                blocked: s.blocked,
                verified: s.verified,
            })
        })
        .collect();
    let personal_data = if args.include_personal_data {
        "included"
    } else {
        "redacted"
    };
    let report = ReportFile {
        format: FORMAT,
        cpx_version: env!("CARGO_PKG_VERSION"),
        created: Timestamp::now().to_string(),
        personal_data,
        logged_in,
        reader: ReaderSection {
            name: card.reader().to_owned(),
            protocol,
            features,
            features_error,
        },
        card: CardSection {
            atr: hex::encode_upper(&atr),
            generation: generation_name(card.generation()),
            interface: interface_name(card.interface()),
            model: card.model(),
            serial: card.serial().to_owned(),
            token_label: card.token_label().to_owned(),
            manufacturer: card.manufacturer().to_owned(),
            application: path_text(card.application_path()),
        },
        problems: problems.clone(),
        pins,
        link,
        security_environments,
        probes,
        redactions: redactions.clone(),
        files: file_sections,
        exchanges: exchange_sections,
        wire: wire_sections,
    };
    let text = toml::to_string(&report).map_err(|e| CliError::Output(e.to_string()))?;
    // Card text (labels) is made safe where it is parsed; TOML escapes C0 controls but may
    // write C1 ones raw: the file is meant to be read with `cat`, so none is left
    // (docs/cli-json.md, "Text from the card"). The raw bytes are in the hex fields.
    let text = output::terminal_safe(&text).into_owned();
    let text = format!(
        "# cpx card report ({FORMAT}, docs/card-report.md). Personal data: {personal_data}.\n\
         # Send it to the cpx maintainers: {SEND_TO}\n{text}"
    );
    if !args.include_personal_data {
        check_redacted(&text, &certs, &values)?;
    }
    std::fs::write(&args.output, &text)
        .map_err(|e| CliError::Io(format!("cannot write {}: {e}", args.output.display())))?;

    let summary = Summary {
        reader: session.reader(),
        file: args.output.display().to_string(),
        format: FORMAT,
        personal_data,
        logged_in,
        generation: generation_name(session.card.generation()),
        exchanges: report.exchanges.len(),
        files: report.files.len(),
        problems,
        unread_files: report.files.iter().filter(|f| f.content.is_none()).count(),
        redactions,
        send_to: SEND_TO,
    };
    match format {
        Format::Json => output::print_json("report", VERSION, &summary),
        Format::Text => {
            print_text(&summary);
            Ok(())
        }
    }
}

/// An operation whose failure the report records (in its exchanges) rather than stops on:
/// `None` for a card error, the error itself when the card or the service is gone.
fn nonfatal<T>(result: Result<T, CardError>, problems: &mut Vec<String>) -> Result<Option<T>, CliError> {
    match nonfatal_err(result)? {
        Ok(v) => Ok(Some(v)),
        Err(e) => {
            problems.push(e);
            Ok(None)
        }
    }
}

/// As [`nonfatal`], keeping the card error's message.
fn nonfatal_err<T>(result: Result<T, CardError>) -> Result<Result<T, String>, CliError> {
    match result {
        Ok(v) => Ok(Ok(v)),
        Err(e @ (CardError::Transport(_) | CardError::CardRemoved { .. })) => Err(e.into()),
        Err(e) => {
            log::debug!("report: {e}");
            Ok(Err(e.to_string()))
        }
    }
}

/// `3F00/0001/A001`.
fn path_text(path: &[u8]) -> String {
    path.chunks(2)
        .map(hex::encode_upper)
        .collect::<Vec<_>>()
        .join("/")
}

/// The FCP or FCI (response data) of the last SELECT whose data is `path`, its path without
/// the MF, or its last file identifier.
fn last_fcp(exchanges: &[Exchange], path: &[u8]) -> Option<String> {
    let without_mf = path.strip_prefix(&[0x3F, 0x00][..]).unwrap_or(path);
    let fid = path.get(path.len().saturating_sub(2)..).unwrap_or(path);
    exchanges.iter().rev().find_map(|e| {
        let cmd = &e.command;
        if cmd.get(1) != Some(&0xA4) || cmd.len() < 5 {
            return None;
        }
        let lc = usize::from(cmd[4]);
        let data = cmd.get(5..5 + lc)?;
        if data != path && data != without_mf && data != fid {
            return None;
        }
        let response = e.response.as_ref()?;
        let body = response.get(..response.len().checked_sub(2)?)?;
        (!body.is_empty()).then(|| hex::encode_upper(body))
    })
}

/// The exchange as written: a READ BINARY answer that is part of a redacted value (found by
/// its offset, P1-P2) gets the same part of the redacted value; an answer holding a whole
/// redacted value gets it whole.
fn redact_exchange(e: &Exchange, blobs: &[Blob]) -> ExchangeSection {
    let mut redacted = false;
    let response = e.response.as_ref().map(|r| {
        let mut r = r.clone();
        let n = r.len().saturating_sub(2);
        let cmd = &e.command;
        let read_binary = cmd.len() >= 4 && cmd[1] == 0xB0;
        for b in blobs.iter().filter(|b| b.written != b.original) {
            if read_binary {
                // P1 bit 8 set: SFI in P1, offset in P2 (ISO/IEC 7816-4 READ BINARY).
                let offset = if cmd[2] & 0x80 != 0 {
                    usize::from(cmd[3])
                } else {
                    usize::from(cmd[2]) << 8 | usize::from(cmd[3])
                };
                if n > 0 && b.original.get(offset..offset + n) == Some(&r[..n]) {
                    r[..n].copy_from_slice(&b.written[offset..offset + n]);
                    redacted = true;
                    continue;
                }
            }
            let len = b.original.len();
            if len > 0 && n >= len {
                let mut at = 0;
                while let Some(pos) = r[at..n].windows(len).position(|w| w == b.original) {
                    let start = at + pos;
                    r[start..start + len].copy_from_slice(&b.written);
                    redacted = true;
                    at = start + len;
                }
            }
        }
        r
    });
    ExchangeSection {
        purpose: e.purpose.clone(),
        command: hex::encode_upper(&e.command),
        response: response.map(hex::encode_upper),
        error: e.error.clone(),
        masked: e.masked,
        redacted,
    }
}

/// The last line of defence: refuse to write a default report in which a holder's value from
/// the certificates (names, national identifier, organisation) or a certificate's original
/// signature still appears, as text or as hex.
fn check_redacted(
    text: &str,
    certs: &[(String, Vec<u8>)],
    values: &[(String, Vec<u8>)],
) -> Result<(), CliError> {
    let mut builder = Profile::builder();
    for (label, der) in certs {
        builder = builder.certificate_from(label, der);
    }
    for (label, value) in values {
        builder = builder.data_object(label, value);
    }
    let profile = builder.build(&TrustStore::new(), Timestamp::now());
    let holder = profile.holder_summary();
    let mut needles: Vec<(&str, Vec<u8>)> = Vec::new();
    for (what, value) in [
        ("the holder's given name", &holder.given_name),
        ("the holder's surname", &holder.surname),
        ("the holder's national identifier", &holder.national_id),
        ("the holder's organisation", &holder.organisation),
    ] {
        if let Some(v) = value.as_ref().filter(|v| v.len() >= 4) {
            needles.push((what, v.as_bytes().to_vec()));
        }
    }
    for (_, der) in certs {
        if let Some(tail) = der.get(der.len().saturating_sub(32)..).filter(|t| t.len() >= 16) {
            needles.push(("a certificate's signature", tail.to_vec()));
        }
    }
    let upper = text.to_uppercase();
    for (what, bytes) in needles {
        let as_text = String::from_utf8_lossy(&bytes).to_uppercase();
        if upper.contains(&as_text) || upper.contains(&hex::encode_upper(&bytes)) {
            return Err(CliError::Io(format!(
                "redaction incomplete: {what} is still in the report; nothing was written \
                 (please report this bug)"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchange(command: &str, response: &str) -> Exchange {
        Exchange {
            purpose: "test".into(),
            command: hex::decode(command).unwrap(),
            response: Some(hex::decode(response).unwrap()),
            error: None,
            masked: false,
        }
    }

    #[test]
    fn read_binary_answers_get_the_redacted_part_at_their_offset() {
        let blob = Blob {
            what: "x".into(),
            original: b"0123456789ABCDEF".to_vec(),
            written: b"xxxxxxxxxxxxxxxx".to_vec(),
        };
        // Offset 4, 4 bytes: "4567".
        let e = exchange("00B0000404", &format!("{}9000", hex::encode_upper(b"4567")));
        let s = redact_exchange(&e, std::slice::from_ref(&blob));
        assert!(s.redacted);
        assert_eq!(s.response.unwrap(), format!("{}9000", hex::encode_upper(b"xxxx")));
        // An answer that does not match the value at its offset is left alone.
        let e = exchange("00B0000004", &format!("{}9000", hex::encode_upper(b"4567")));
        assert!(!redact_exchange(&e, std::slice::from_ref(&blob)).redacted);
        // A whole value inside any answer is replaced.
        let e = exchange(
            "00CA000000",
            &format!("AA{}9000", hex::encode_upper(&blob.original)),
        );
        let s = redact_exchange(&e, std::slice::from_ref(&blob));
        assert_eq!(
            s.response.unwrap(),
            format!("AA{}9000", hex::encode_upper(&blob.written))
        );
    }

    #[test]
    fn fcp_of_the_last_select_of_the_path() {
        let exchanges = [
            exchange("00A4090406", "62039000"),
            exchange("00A40904063F000001A001", "6203800107629000"),
            exchange("00A40904063F000001A001", "6203800108629000"),
        ];
        let fcp = last_fcp(&exchanges, &hex::decode("3F000001A001").unwrap());
        assert_eq!(fcp.as_deref(), Some("620380010862"));
        assert_eq!(last_fcp(&exchanges, &hex::decode("3F000001A002").unwrap()), None);
    }
}
