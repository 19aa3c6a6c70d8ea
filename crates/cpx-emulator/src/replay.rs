//! Replay of a field card: a `cpx report` file (`cpx-report/1`, docs/card-report.md) turned into a
//! [`CardImage`], so the whole stack runs against the layout the report recorded.
//!
//! What is taken from the report:
//! - the generation and interface (the card model), the ATR, the serial and the token label;
//! - the PIN and PUK counters (tries left, maximum); the values are the test codes `1234` and
//!   `12345678` (a report never holds a PIN);
//! - the business data objects the DODF lists (label, file id, private and modifiable flags), with
//!   the recorded contents; a private object the report could not read (no `--login`) gets an
//!   empty `EE 00` value;
//! - EF_ACTUA's content, from the READ BINARY the report recorded;
//! - the certificates, re-issued: the recorded DER (redacted or not) keeps its structure and every
//!   length, its public key becomes that of a key generated here with the same modulus size, and
//!   it is signed again by the test CA whose subject is its issuer (test-vectors/pki), or by a
//!   generated key of the signature's size when no test CA has that name. Signatures made by the
//!   replayed card therefore verify with the certificates it serves.
//!
//! Keys are generated from a seed derived from the report's certificate, so the same report gives
//! the same card.
//!
//! - every file the report recorded ([`CardImage::files`]): the PKCS#15 directories, the
//!   certificates (re-issued) and data objects at their recorded paths, with the FCP/FCI their
//!   SELECT answered, served as recorded over the layout the card model builds from the above.
//!
//! - the key references of the recorded PrKDF (the card answers MSE with those, not the model's);
//! - the probes: a file the card answered `6A82` for is taken out of the model's layout
//!   ([`CardImage::absent`]); a file a probe read whole (EF.DIR, EF.ATR, EF.SN.ICC) is served
//!   with the bytes and FCP recorded.
//!
//! - `[link]`: the READ BINARY and GET RESPONSE chunk limits and the answer to a READ BINARY past
//!   the end of a file ([`LinkImage`]);
//! - for a hand-written report of a public trace (test-vectors/reports/opensc-*.toml), `[model]
//!   image`: the built-in image whose keys, certificates and data objects fill what the trace
//!   does not show; a probe with an FCP and no READ BINARY gives the file that FCP over the
//!   model's content.
//!
//! A DF of a recorded path that the card model lacks is created (public, no AID).
//!
//! Not replayed yet: the MSE forms a card accepts; SEs only as GET DATA answers
//! (`[[security_environments]]`, [`CardImage::security_environments`]).

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use rsa::pkcs1v15::SigningKey;
use rsa::signature::{SignatureEncoding, Signer};
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, RsaPrivateKey};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::image::{
    CardImage, CardKind, DataObjectImage, ImageError, KeyImage, LinkImage, PastEnd, PinImage,
};
use crate::pkcs15::OBJECT_PRIVATE;
use crate::{choices, facts, tlv};

/// The report format this module reads (docs/card-report.md).
pub const REPORT_FORMAT: &str = "cpx-report/1";

/// The test PIN and PUK of a replayed card (as on every built-in image, docs/emulator.md).
const TEST_PIN: &[u8] = b"1234";
const TEST_PUK: &[u8] = b"12345678";

#[derive(Deserialize)]
struct Report {
    card: CardPart,
    #[serde(default)]
    pins: Vec<PinPart>,
    #[serde(default)]
    probes: Vec<ProbePart>,
    #[serde(default)]
    files: Vec<FilePart>,
    #[serde(default)]
    exchanges: Vec<ExchangePart>,
    #[serde(default)]
    link: LinkPart,
    #[serde(default)]
    security_environments: Vec<SePart>,
    #[serde(default)]
    model: Option<ModelPart>,
}

/// `[link]`: transport facts (docs/card-report.md).
#[derive(Deserialize, Default)]
struct LinkPart {
    read_binary_max: Option<u16>,
    get_response_max: Option<u16>,
    read_past_end: Option<String>,
}

/// `[[security_environments]]`: the card's answer to GET DATA of one SE.
#[derive(Deserialize)]
struct SePart {
    number: u8,
    sw: String,
    data: Option<String>,
}

/// `[model]`: what a public trace does not show, filled from a built-in image.
#[derive(Deserialize)]
struct ModelPart {
    image: String,
}

#[derive(Deserialize)]
struct CardPart {
    atr: String,
    generation: String,
    interface: String,
    serial: String,
    token_label: String,
    application: String,
}

#[derive(Deserialize)]
struct PinPart {
    kind: String,
    tries_left: Option<u8>,
    max_tries: Option<u8>,
    #[serde(default)]
    blocked: bool,
}

#[derive(Deserialize)]
struct FilePart {
    name: String,
    kind: String,
    path: Option<String>,
    fcp: Option<String>,
    content: Option<String>,
}

#[derive(Deserialize)]
struct ProbePart {
    path: String,
    select_sw: String,
    fcp: Option<String>,
}

#[derive(Deserialize)]
struct ExchangePart {
    purpose: String,
    command: String,
    response: Option<String>,
    /// Personal bytes of the answer replaced by placeholders: not the card's.
    #[serde(default)]
    redacted: bool,
}

fn bad(field: &str, reason: impl Into<String>) -> ImageError {
    ImageError::Value {
        field: format!("report {field}"),
        reason: reason.into(),
    }
}

fn unhex(field: &str, s: &str) -> Result<Vec<u8>, ImageError> {
    hex::decode(s).map_err(|e| bad(field, e.to_string()))
}

/// Whether `text` is a `cpx report` file rather than a card image (its `format` line).
pub fn is_report(text: &str) -> bool {
    text.lines()
        .any(|l| l.trim_start().starts_with("format") && l.contains("\"cpx-report/"))
}

/// The card image a `cpx report` file describes (see the module documentation).
pub fn image_from_report(text: &str) -> Result<CardImage, ImageError> {
    // The format first: another version may have other fields.
    #[derive(Deserialize)]
    struct Format {
        format: String,
    }
    let Format { format } = toml::from_str(text)?;
    if format != REPORT_FORMAT {
        return Err(bad(
            "format",
            format!("{format:?}: this emulator reads {REPORT_FORMAT}"),
        ));
    }
    let r: Report = toml::from_str(text)?;
    let kind = match (r.card.generation.as_str(), r.card.interface.as_str()) {
        ("CPS3", "contact") => CardKind::Cps3,
        ("CPS3", "contactless") => CardKind::Cps3Contactless,
        ("CPS4", _) => CardKind::Cps4,
        (g, i) => return Err(bad("card.generation", format!("no emulated model for {g} ({i})"))),
    };
    let atr = unhex("card.atr", &r.card.atr)?;
    // The token label ends with the 10-digit serial (docs/card-spec.md §1.4); the card section's
    // serial is the fallback.
    let token_serial = r
        .card
        .token_label
        .rsplit_once('-')
        .map(|(_, s)| s.to_owned())
        .filter(|s| s.len() >= 8 && s.bytes().all(|b| b.is_ascii_digit()))
        .unwrap_or_else(|| r.card.serial.clone());
    if token_serial.len() < 8 || !token_serial.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("card.serial", "at least 8 digits"));
    }
    let pan_text = crate::image::default_pan(&token_serial);
    let pan: [u8; 10] = unhex("card.serial", &pan_text)?
        .try_into()
        .map_err(|_| bad("card.serial", "no 10-byte PAN"))?;
    let (pin_len, puk_len) = match kind {
        CardKind::Cps4 | CardKind::Cps5Test => ((4, 8), 8),
        CardKind::Cps3 | CardKind::Cps3Contactless => {
            use facts::cps3_pin::{PIN_LEN, PUK_LEN};
            ((PIN_LEN, PIN_LEN), PUK_LEN)
        }
    };
    let code = |kind_name: &str, value: &[u8], default_max: u8, len: (u8, u8), usage| {
        r.pins.iter().find(|p| p.kind == kind_name).map(|p| {
            let max_tries = p.max_tries.unwrap_or(default_max);
            let tries_left = if p.blocked {
                0
            } else {
                p.tries_left.unwrap_or(max_tries).min(max_tries)
            };
            PinImage {
                value: value.to_vec(),
                max_tries,
                tries_left,
                usage_left: usage,
                min_len: len.0,
                max_len: len.1,
            }
        })
    };
    let pin = code("PIN", TEST_PIN, 3, pin_len, None);
    let puk = code("PUK", TEST_PUK, 10, (puk_len, puk_len), Some(100));

    let mut sign = None;
    let mut auth = None;
    let mut tech = None;
    let mut ca_keys = CaKeys::default();
    let mut reissued = Vec::new();
    let references = key_references(&r)?;
    for f in r.files.iter().filter(|f| f.kind == "certificate") {
        let Some(content) = &f.content else { continue };
        let der = unhex(&format!("files.{}", f.name), content)?;
        let key = reissue(&der, &mut ca_keys).map_err(|e| bad(&format!("files.{}", f.name), e))?;
        reissued.push((f.name.clone(), key.cert.clone()));
        let (slot, key_label) = match f.name.as_str() {
            facts::LABEL_CERT_SIG => (&mut sign, facts::LABEL_PRIV_SIG),
            facts::LABEL_CERT_AUT => (&mut auth, facts::LABEL_PRIV_AUT),
            facts::LABEL_CERT_TECH => (&mut tech, facts::LABEL_PRIV_TECH),
            _ => continue,
        };
        let reference = references.iter().find(|(l, _)| l == key_label).map(|(_, r)| *r);
        *slot = Some(KeyImage { reference, ..key });
    }

    let mut data = data_objects(&r)?;
    // A public trace holds no certificate and often no DODF: `[model] image` names the built-in
    // image whose keys, certificates and data objects fill those gaps (docs/card-report.md).
    if let Some(m) = &r.model {
        let base = crate::builtin_image(&m.image)
            .ok_or_else(|| bad("model.image", format!("{:?}: no such built-in image", m.image)))??;
        let reference = |label: &str| references.iter().find(|(l, _)| l == label).map(|(_, r)| *r);
        for (slot, from, label) in [
            (&mut sign, base.sign, facts::LABEL_PRIV_SIG),
            (&mut auth, base.auth, facts::LABEL_PRIV_AUT),
            (&mut tech, base.tech, facts::LABEL_PRIV_TECH),
        ] {
            if slot.is_none() {
                *slot = from.map(|k| KeyImage {
                    reference: reference(label).or(k.reference),
                    ..k
                });
            }
        }
        if !r.files.iter().any(|f| f.name == "DODF") {
            data = base.data;
        }
    }
    let link = link_image(&r.link)?;
    let security_environments = security_environments(&r.security_environments)?;
    let mut files = recorded_files(&r, &reissued)?;
    let absent = probed_files(&r, &mut files)?;
    let ef_actua = r
        .exchanges
        .iter()
        .filter(|e| e.purpose == "EF_ACTUA" && e.command.get(2..4) == Some("B0") && !e.redacted)
        .find_map(|e| {
            let resp = hex::decode(e.response.as_deref()?).ok()?;
            let (data, sw) = resp.split_at(resp.len().checked_sub(2)?);
            (sw == [0x90, 0x00]).then(|| data.to_vec())
        });

    Ok(CardImage {
        kind,
        atr,
        pan,
        token_label: r.card.token_label.clone(),
        token_serial,
        last_update: choices::DEFAULT_LAST_UPDATE.to_owned(),
        ef_actua,
        pin,
        puk,
        sign,
        auth,
        tech,
        data,
        sit_fact: choices::DEFAULT_SIT_FACT.to_vec(),
        sig_key_fresh_verify: choices::SIG_KEY_FRESH_VERIFY,
        files,
        absent,
        link,
        security_environments,
    })
}

/// `[[security_environments]]`: `9000` with `70 { BF FB <n> { 7B { CRTs } } }` gives the SE
/// (its CRTs); `6A88` (or `6A80`, `6A82`: not found) gives none; another answer leaves the
/// model's (docs/card-report.md).
fn security_environments(ses: &[SePart]) -> Result<Vec<crate::image::RecordedSe>, ImageError> {
    let mut out = Vec::new();
    for se in ses {
        let field = format!("security_environments.{}", se.number);
        match se.sw.as_str() {
            "9000" => {
                let data = unhex(&field, se.data.as_deref().unwrap_or_default())?;
                let crts = tlv::read(&data)
                    .filter(|(t, _)| t.tag == [0x70])
                    .and_then(|(t, _)| tlv::read(t.value))
                    .filter(|(t, _)| t.tag == [0xBF, 0xFB, se.number])
                    .and_then(|(t, _)| tlv::read(t.value))
                    .filter(|(t, _)| t.tag == [0x7B])
                    .map(|(t, _)| t.value.to_vec())
                    .ok_or_else(|| bad(&field, "not 70 { BF FB <n> { 7B … } }"))?;
                out.push((se.number, Some(crts)));
            }
            "6A88" | "6A80" | "6A82" => out.push((se.number, None)),
            _ => {}
        }
    }
    Ok(out)
}

/// `[link]`, checked: chunk limits 1..=256, a past-end answer the emulator can give.
fn link_image(l: &LinkPart) -> Result<LinkImage, ImageError> {
    let limit = |field: &str, v: Option<u16>| match v {
        Some(n) if !(1..=256).contains(&n) => Err(bad(field, format!("{n}: 1 to 256"))),
        other => Ok(other),
    };
    let read_past_end = match l.read_past_end.as_deref() {
        None => None,
        Some(t) => Some(PastEnd::parse(t).ok_or_else(|| {
            bad(
                "link.read_past_end",
                format!("{t:?}: one of 6Cxx, 6282, 6700, 6B00"),
            )
        })?),
    };
    Ok(LinkImage {
        read_binary_max: limit("link.read_binary_max", l.read_binary_max)?,
        get_response_max: limit("link.get_response_max", l.get_response_max)?,
        read_past_end,
    })
}

/// `3F00/0001/A001` → `[3F00, 0001, A001]`.
fn parse_path(field: &str, text: &str) -> Result<Vec<u16>, ImageError> {
    text.split('/')
        .map(|f| match unhex(field, f)?.as_slice() {
            [a, b] => Ok(u16::from_be_bytes([*a, *b])),
            _ => Err(bad(field, format!("{text:?}: FIDs are 2 bytes"))),
        })
        .collect()
}

/// A PKCS#15 path (OCTET STRING) relative to the application `app`, or absolute from 3F00.
fn pkcs15_path(app: &[u16], bytes: &[u8]) -> Option<Vec<u16>> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(2) {
        return None;
    }
    let fids: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect();
    Some(if fids.first() == Some(&0x3F00) {
        fids
    } else {
        app.iter().copied().chain(fids).collect()
    })
}

/// The files the report recorded, served as recorded over the card model's layout: the PKCS#15
/// directories (ODF and TokenInfo at their default FIDs under the application, docs/card-spec.md
/// §1.4; the others where the ODF puts them), and every file with a path, the certificates as
/// re-issued.
fn recorded_files(r: &Report, reissued: &[(String, Vec<u8>)]) -> Result<Vec<crate::FileImage>, ImageError> {
    let app = parse_path("card.application", &r.card.application)?;
    let in_app = |fid: u16| app.iter().copied().chain([fid]).collect::<Vec<_>>();
    let mut directories = vec![
        ("ODF", in_app(choices::fid::ODF)),
        ("TokenInfo", in_app(choices::fid::TOKEN_INFO)),
    ];
    let odf = r
        .files
        .iter()
        .find(|f| f.name == "ODF")
        .and_then(|f| f.content.as_deref());
    if let Some(odf) = odf {
        let odf = unhex("files.ODF", odf)?;
        for entry in tlv::read_all(&odf).unwrap_or_default() {
            let name = match entry.tag {
                [0xA0] => "PrKDF",
                [0xA4] => "CDF",
                [0xA7] => "DODF",
                [0xA8] => "AODF",
                _ => continue,
            };
            let path = tlv::read(entry.value)
                .and_then(|(seq, _)| tlv::read_all(seq.value))
                .and_then(|p| tlv::find(&p, &[0x04]).and_then(|b| pkcs15_path(&app, b)));
            if let Some(path) = path {
                directories.push((name, path));
            }
        }
    }
    let mut out = Vec::new();
    for f in &r.files {
        let Some(content) = &f.content else { continue };
        let field = format!("files.{}", f.name);
        let path = match (&f.path, directories.iter().find(|(n, _)| *n == f.name)) {
            (Some(p), _) => parse_path(&field, p)?,
            (None, Some((_, p))) if f.kind == "pkcs15" => p.clone(),
            _ => continue,
        };
        let content = match reissued.iter().find(|(n, _)| *n == f.name) {
            Some((_, der)) if f.kind == "certificate" => der.clone(),
            _ => unhex(&field, content)?,
        };
        let fcp = f.fcp.as_deref().map(|h| unhex(&field, h)).transpose()?;
        out.push(crate::FileImage {
            path,
            content,
            fcp,
            fcp_only: false,
        });
    }
    Ok(out)
}

/// The DODF's objects (docs/card-spec.md §5.3: CommonObjectAttributes { label, flags, authId },
/// CommonDataObjectAttributes, `A1` { Path }) with the contents the report read.
fn data_objects(r: &Report) -> Result<Vec<DataObjectImage>, ImageError> {
    let Some(dodf) = r.files.iter().find(|f| f.name == "DODF") else {
        return Ok(Vec::new());
    };
    let Some(content) = &dodf.content else {
        return Ok(Vec::new());
    };
    let dodf = unhex("files.DODF", content)?;
    let mut out = Vec::new();
    let mut rest = dodf.as_slice();
    while !rest.is_empty() && rest[0] != 0x00 && rest[0] != 0xFF {
        // (00 or FF: the padding after the last entry)
        let (entry, next) = tlv::read(rest).ok_or_else(|| bad("files.DODF", "malformed entry"))?;
        rest = next;
        let parts = tlv::read_all(entry.value).ok_or_else(|| bad("files.DODF", "malformed entry"))?;
        let (Some(common), Some(typed)) = (parts.first(), parts.last()) else {
            continue;
        };
        let common = tlv::read_all(common.value).ok_or_else(|| bad("files.DODF", "malformed"))?;
        let label = tlv::find(&common, &[0x0C])
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .unwrap_or_default();
        let flags = tlv::find(&common, &[0x03]).map(bit_string).unwrap_or(0);
        // A1 { SEQUENCE { OCTET STRING path } }
        let path = tlv::read(typed.value)
            .and_then(|(seq, _)| tlv::read_all(seq.value))
            .and_then(|p| tlv::find(&p, &[0x04]).map(<[u8]>::to_vec))
            .ok_or_else(|| bad("files.DODF", format!("{label}: no path")))?;
        let [.., hi, lo] = path[..] else {
            return Err(bad("files.DODF", format!("{label}: path too short")));
        };
        let private = flags & OBJECT_PRIVATE != 0;
        let modifiable = flags & crate::pkcs15::OBJECT_MODIFIABLE != 0;
        let content = match r
            .files
            .iter()
            .find(|f| f.kind == "data" && f.name == label)
            .and_then(|f| f.content.as_deref())
        {
            Some(h) => unhex(&format!("files.{label}"), h)?,
            None => vec![0xEE, 0x00],
        };
        out.push(DataObjectImage {
            label,
            fid: u16::from_be_bytes([hi, lo]),
            private,
            modifiable,
            writable: modifiable,
            content,
        });
    }
    Ok(out)
}

/// What the probes found: a file the card lacks (`6A82`) goes to the returned list; a file the
/// card has and that a probe read whole (its READ BINARY answered `9000` with as many bytes as its
/// FCP's size, or without an FCP size) is added to `files` with its content and FCP, unless a
/// recorded file already gives it.
fn probed_files(r: &Report, files: &mut Vec<crate::FileImage>) -> Result<Vec<Vec<u16>>, ImageError> {
    let mut absent = Vec::new();
    for p in &r.probes {
        let path = parse_path("probes.path", &p.path)?;
        match p.select_sw.as_str() {
            "6A82" => absent.push(path),
            "9000" if !files.iter().any(|f| f.path == path && !f.fcp_only) => {
                let fcp = p.fcp.as_deref().map(|h| unhex("probes.fcp", h)).transpose()?;
                let Some(content) = probe_read(r, &path) else {
                    // Selected, not read (a public trace): the FCP over the layout's content.
                    if fcp.is_some() && !files.iter().any(|f| f.path == path) {
                        files.push(crate::FileImage {
                            path,
                            content: Vec::new(),
                            fcp,
                            fcp_only: true,
                        });
                    }
                    continue;
                };
                let size = fcp.as_deref().and_then(fcp_size);
                if size.is_none_or(|s| s == content.len()) {
                    files.retain(|f| f.path != path);
                    files.push(crate::FileImage {
                        path,
                        content,
                        fcp,
                        fcp_only: false,
                    });
                }
            }
            _ => {}
        }
    }
    Ok(absent)
}

/// The size (tag `80`) of an FCP `62` or FCI `6F`.
fn fcp_size(fcp: &[u8]) -> Option<usize> {
    let (template, _) = tlv::read(fcp)?;
    let inner = tlv::read_all(template.value)?;
    let size = tlv::find(&inner, &[0x80])?;
    Some(size.iter().fold(0usize, |n, b| {
        n.saturating_mul(256).saturating_add(usize::from(*b))
    }))
}

/// The content a probe read: the data of the `9000` (or `6282`) answer to the READ BINARY at offset 0 that
/// right follows a SELECT by path (P1 08 or 09) of `path`, unless the report redacted it (the
/// PAN of EF.SN.ICC then comes from the serial, as for any image).
fn probe_read(r: &Report, path: &[u16]) -> Option<Vec<u8>> {
    let commands: Vec<Option<Vec<u8>>> = r.exchanges.iter().map(|e| hex::decode(&e.command).ok()).collect();
    commands.windows(2).enumerate().find_map(|(i, pair)| {
        let [Some(select), Some(read)] = pair else {
            return None;
        };
        let (header, rest) = select.split_at_checked(5)?;
        let data = rest.get(..usize::from(header[4]))?;
        let mut fids: Vec<u16> = data
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        if header[1] != 0xA4 || !matches!(header[2], 0x08 | 0x09) || data.len() % 2 != 0 {
            return None;
        }
        // P1 08: a path from the MF without it. P1 09 without 3F00: a path from the current DF
        // (ISO/IEC 7816-4), taken when the command before selected the MF or the IAS
        // application, whose root it is (the `[GH#2223]` trace: `00 A4 09 04 02 2F01` after
        // `00 A4 00 0C 02 3F00`).
        let from_mf = i
            .checked_sub(1)
            .and_then(|j| commands.get(j))
            .and_then(Option::as_deref)
            .is_some_and(selects_mf);
        if header[2] == 0x08 || (fids.first() != Some(&0x3F00) && from_mf) {
            fids.insert(0, 0x3F00);
        }
        if fids != path || read.get(1..4) != Some(&[0xB0, 0x00, 0x00][..]) {
            return None;
        }
        let exchange = r.exchanges.get(i + 1).filter(|e| !e.redacted)?;
        let answer = hex::decode(exchange.response.as_deref()?).ok()?;
        let (content, sw) = answer.split_at(answer.len().checked_sub(2)?);
        // 6282: the whole file and "end reached before Le bytes" (a probe asks 256).
        (sw == [0x90, 0x00] || sw == [0x62, 0x82]).then(|| content.to_vec())
    })
}

/// Whether `command` is a SELECT of the MF (by FID or path `3F00`) or of an application by AID.
fn selects_mf(command: &[u8]) -> bool {
    matches!(command, [_, 0xA4, 0x04, ..] | [_, 0xA4, _, _, 2, 0x3F, 0x00, ..])
}

/// The key references of the recorded PrKDF, by key label: PKCS#15 PrivateKeyObject { common
/// { label … }, CommonKeyAttributes { iD, usage, native?, accessFlags?, keyReference? } … }
/// (docs/card-spec.md §1.5).
fn key_references(r: &Report) -> Result<Vec<(String, u8)>, ImageError> {
    let Some(prkdf) = r
        .files
        .iter()
        .find(|f| f.name == "PrKDF")
        .and_then(|f| f.content.as_deref())
    else {
        return Ok(Vec::new());
    };
    let prkdf = unhex("files.PrKDF", prkdf)?;
    let malformed = || bad("files.PrKDF", "malformed entry");
    let mut out = Vec::new();
    let mut rest = prkdf.as_slice();
    while !rest.is_empty() && rest[0] != 0x00 && rest[0] != 0xFF {
        let (entry, next) = tlv::read(rest).ok_or_else(malformed)?;
        rest = next;
        let parts = tlv::read_all(entry.value).ok_or_else(malformed)?;
        let (Some(common), Some(key)) = (parts.first(), parts.get(1)) else {
            continue;
        };
        let common = tlv::read_all(common.value).ok_or_else(malformed)?;
        let key = tlv::read_all(key.value).ok_or_else(malformed)?;
        let (Some(label), Some(reference)) = (tlv::find(&common, &[0x0C]), tlv::find(&key, &[0x02])) else {
            continue;
        };
        // An INTEGER of one byte, or two with a leading 00 (0x81 and up).
        let reference = match reference {
            [r] => *r,
            [0, r] => *r,
            _ => return Err(bad("files.PrKDF", "a key reference of more than a byte")),
        };
        out.push((String::from_utf8_lossy(label).into_owned(), reference));
    }
    Ok(out)
}

/// A DER BIT STRING's named bits as `pkcs15` numbers them (bit 0 = the first bit).
fn bit_string(value: &[u8]) -> u32 {
    let mut bits = 0;
    for (i, byte) in value.iter().skip(1).take(4).enumerate() {
        for b in 0..8 {
            if byte & (0x80 >> b) != 0 {
                bits |= 1 << (i * 8 + b);
            }
        }
    }
    bits
}

/// One DER element of `der` at `at`: (its whole range, its value range).
fn element(der: &[u8], at: usize) -> Option<(std::ops::Range<usize>, std::ops::Range<usize>)> {
    let (t, rest) = tlv::read(der.get(at..)?)?;
    let end = der.len() - rest.len();
    Some((at..end, end - t.value.len()..end))
}

/// The elements inside the constructed value `value` of `der`.
fn children(
    der: &[u8],
    value: std::ops::Range<usize>,
) -> Option<Vec<(std::ops::Range<usize>, std::ops::Range<usize>)>> {
    let mut out = Vec::new();
    let mut at = value.start;
    while at < value.end {
        let e = element(der, at)?;
        at = e.0.end;
        out.push(e);
    }
    (at == value.end).then_some(out)
}

macro_rules! ca {
    ($stem:literal) => {
        (
            include_bytes!(concat!("../../../test-vectors/pki/", $stem, ".der")),
            include_bytes!(concat!("../../../test-vectors/pki/", $stem, ".TEST-ONLY.key.der")),
        )
    };
}

/// The test CAs (test-vectors/pki), compiled in: certificate and PKCS#8 key.
static TEST_CAS: &[(&[u8], &[u8])] = &[
    ca!("acr-elementaire"),
    ca!("acr-standard"),
    ca!("acr-fort"),
    ca!("aci-elementaire-personnes"),
    ca!("aci-elementaire-organisations"),
    ca!("aci-standard-personnes"),
    ca!("aci-standard-organisations"),
    ca!("aci-fort-personnes"),
    ca!("aci-fort-organisations"),
];

/// Signing keys of the re-issued certificates' issuers, by issuer name.
#[derive(Default)]
struct CaKeys {
    generated: Vec<(Vec<u8>, RsaPrivateKey)>,
}

impl CaKeys {
    /// The test CA named `issuer` when its key makes signatures of `sig_len` bytes, else a key
    /// generated for that name (the same one for every certificate of the report).
    fn key(&mut self, issuer: &[u8], sig_len: usize) -> Result<RsaPrivateKey, String> {
        use rsa::pkcs8::DecodePrivateKey;
        for (cert, key) in TEST_CAS {
            if subject(cert) == Some(issuer) {
                let key = RsaPrivateKey::from_pkcs8_der(key).map_err(|e| e.to_string())?;
                if key.size() == sig_len {
                    return Ok(key);
                }
            }
        }
        if let Some((_, k)) = self.generated.iter().find(|(n, _)| n == issuer) {
            return Ok(k.clone());
        }
        if !KEY_BYTES.contains(&sig_len) {
            return Err(format!(
                "a signature of {sig_len} bytes: replayed CA keys are 1024 to 4096 bits"
            ));
        }
        let mut rng = ChaCha20Rng::from_seed(Sha256::digest(issuer).into());
        let key = RsaPrivateKey::new(&mut rng, sig_len * 8).map_err(|e| e.to_string())?;
        self.generated.push((issuer.to_vec(), key.clone()));
        Ok(key)
    }
}

/// The subject name (DER) of a certificate.
fn subject(cert: &[u8]) -> Option<&[u8]> {
    let (_, body) = element(cert, 0)?;
    let (_, tbs) = children(cert, body)?.into_iter().next()?;
    let fields = children(cert, tbs)?;
    let skip = usize::from(cert.get(fields.first()?.0.start) == Some(&0xA0));
    Some(&cert[fields.get(skip + 4)?.0.clone()])
}

/// A certificate of the same structure and size as `der`, with a generated key's public key and
/// signed again (see the module documentation), and that key.
fn reissue(der: &[u8], cas: &mut CaKeys) -> Result<KeyImage, String> {
    let malformed = || "certificate: not the DER structure of an X.509 certificate".to_owned();
    let mut out = der.to_vec();
    let (_, body) = element(der, 0).ok_or_else(malformed)?;
    let top = children(der, body).ok_or_else(malformed)?;
    let [(tbs_all, tbs), _, (_, sig)] = &top[..] else {
        return Err(malformed());
    };
    let fields = children(der, tbs.clone()).ok_or_else(malformed)?;
    let skip = usize::from(der[fields.first().ok_or_else(malformed)?.0.start] == 0xA0);
    let issuer = &der[fields.get(skip + 2).ok_or_else(malformed)?.0.clone()];
    let (_, spki) = fields.get(skip + 5).ok_or_else(malformed)?.clone();
    let (_, bits) = children(der, spki)
        .ok_or_else(malformed)?
        .get(1)
        .ok_or_else(malformed)?
        .clone();
    // BIT STRING: unused-bits byte, then RSAPublicKey { modulus, publicExponent }.
    let (_, rsa_key) = element(der, bits.start + 1).ok_or_else(malformed)?;
    let ints = children(der, rsa_key).ok_or_else(malformed)?;
    let [(_, n), (_, e)] = &ints[..] else {
        return Err(malformed());
    };
    let modulus_bytes = der[n.clone()].iter().skip_while(|&&b| b == 0).count();
    if !KEY_BYTES.contains(&modulus_bytes) {
        return Err(format!(
            "an RSA modulus of {modulus_bytes} bytes: replayed keys are 1024 to 4096 bits"
        ));
    }
    let exponent = match &der[e.clone()] {
        e @ [_, ..] if e.len() <= 4 && e.last().is_some_and(|b| b & 1 == 1) && e != [1] => {
            BigUint::from_bytes_be(e)
        }
        _ => return Err("the public exponent is not an odd number from 3, of at most 4 bytes".into()),
    };
    let mut rng = ChaCha20Rng::from_seed(Sha256::digest(der).into());
    let key = RsaPrivateKey::new_with_exp(&mut rng, modulus_bytes * 8, &exponent)
        .map_err(|err| format!("cannot generate an RSA-{} key: {err}", modulus_bytes * 8))?;
    let new_n = key.n().to_bytes_be();
    let n_len = n.len();
    if new_n.len() > n_len {
        return Err("generated modulus longer than the recorded one".into());
    }
    out[n.clone()].fill(0);
    out[n.end - new_n.len()..n.end].copy_from_slice(&new_n);
    // signatureValue: BIT STRING, unused-bits byte then the signature.
    let sig_len = sig.len().checked_sub(1).ok_or_else(malformed)?;
    let ca = cas.key(issuer, sig_len)?;
    let algorithm = &der[top[1].1.clone()];
    let signature = if algorithm.windows(9).any(|w| w == SHA1_RSA) {
        SigningKey::<sha1::Sha1>::new(ca)
            .sign(&out[tbs_all.clone()])
            .to_vec()
    } else {
        SigningKey::<Sha256>::new(ca).sign(&out[tbs_all.clone()]).to_vec()
    };
    if signature.len() != sig_len {
        return Err("re-signed signature of another length".into());
    }
    out[sig.start + 1..sig.end].copy_from_slice(&signature);
    Ok(KeyImage {
        key,
        cert: out,
        reference: None,
    })
}

/// Key sizes (bytes) a replay generates: what the CPx cards use (RSA-2048, docs/card-spec.md §1.5, §4.1) with
/// room either side, and a bound on the time a hostile report can make the emulator spend.
const KEY_BYTES: std::ops::RangeInclusive<usize> = 128..=512;

/// OID 1.2.840.113549.1.1.5 (sha1WithRSAEncryption), content bytes.
const SHA1_RSA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x05];

#[cfg(test)]
mod tests {
    use rsa::RsaPublicKey;
    use rsa::pkcs1v15::{Signature, VerifyingKey};
    use rsa::pkcs8::DecodePublicKey;
    use rsa::signature::Verifier;

    use super::*;

    fn builtin_cert() -> Vec<u8> {
        crate::builtin_image("cps3-doctor")
            .and_then(Result::ok)
            .and_then(|i| i.sign)
            .map(|k| k.cert)
            .unwrap_or_default()
    }

    /// The SubjectPublicKeyInfo of a certificate (DER).
    fn spki(cert: &[u8]) -> Vec<u8> {
        let (_, body) = element(cert, 0).unwrap_or_default();
        let (_, tbs) = children(cert, body).unwrap_or_default().remove(0);
        let fields = children(cert, tbs).unwrap_or_default();
        cert[fields[6].0.clone()].to_vec()
    }

    #[test]
    fn reissued_certificate_keeps_its_size_and_verifies_with_the_test_ca_and_the_new_key() {
        let original = builtin_cert();
        assert!(original.len() > 1000);
        let issued = reissue(&original, &mut CaKeys::default()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(issued.cert.len(), original.len());
        assert_ne!(issued.cert, original, "a new key and signature");
        // Same structure: only the modulus and the signature changed.
        let changed = original.iter().zip(&issued.cert).filter(|(a, b)| a != b).count();
        assert!(changed <= 256 + 256, "{changed} bytes changed");
        // Its public key is the generated key's.
        let public = RsaPublicKey::from_public_key_der(&spki(&issued.cert)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(public, issued.key.to_public_key());
        // Signed by the test CA named as its issuer (the generated fallback was not needed).
        let ca = TEST_CAS
            .iter()
            .find_map(|(c, _)| {
                let issuer = &original[..];
                (subject(c).is_some_and(|s| issuer.windows(s.len()).any(|w| w == s))).then_some(*c)
            })
            .unwrap_or_else(|| panic!("no test CA issued cps3-doctor's certificate"));
        let ca_key = RsaPublicKey::from_public_key_der(&spki(ca)).unwrap_or_else(|e| panic!("{e}"));
        let (_, body) = element(&issued.cert, 0).unwrap_or_default();
        let top = children(&issued.cert, body).unwrap_or_default();
        let tbs = &issued.cert[top[0].0.clone()];
        let sig = Signature::try_from(&issued.cert[top[2].1.start + 1..top[2].1.end])
            .unwrap_or_else(|e| panic!("{e}"));
        VerifyingKey::<Sha256>::new(ca_key)
            .verify(tbs, &sig)
            .unwrap_or_else(|e| panic!("not signed by the test CA: {e}"));
        // The same report gives the same card.
        let again = reissue(&original, &mut CaKeys::default()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(again.cert, issued.cert);
    }

    #[test]
    fn hostile_certificates_give_errors_not_panics() {
        let original = builtin_cert();
        assert!(reissue(&[], &mut CaKeys::default()).is_err());
        assert!(reissue(&[0x30, 0x00], &mut CaKeys::default()).is_err());
        assert!(reissue(&original[..original.len() - 1], &mut CaKeys::default()).is_err());
        // Every single-byte change in the header and the TBS's first fields: no panic.
        let mut cas = CaKeys::default();
        for at in (0..original.len().min(400)).step_by(7) {
            let mut der = original.clone();
            der[at] ^= 0x5A;
            let _ = reissue(&der, &mut cas);
        }
    }

    #[test]
    fn a_report_of_another_format_or_model_is_refused_precisely() {
        let text = "format = \"cpx-report/9\"\n[card]\natr = \"3B00\"\ngeneration = \"CPS3\"\ninterface = \"contact\"\nserial = \"00000001\"\ntoken_label = \"CPS3v3-9900000001\"\napplication = \"3F00/0001\"\n";
        assert!(is_report(text));
        let e = image_from_report(text)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("cpx-report/1"), "{e}");
        let text = text
            .replace("cpx-report/9", REPORT_FORMAT)
            .replace("CPS3", "CPS9");
        let e = image_from_report(&text)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("no emulated model"), "{e}");
        assert!(!is_report("kind = \"cps3\"\ntoken_serial = \"9900000001\"\n"));
    }
}

#[cfg(test)]
mod report_vector {
    use super::*;

    /// A default `cpx report` of the built-in cps3-doctor image (test-vectors/reports/).
    const REPORT: &str = include_str!("../../../test-vectors/reports/cps3-doctor.toml");

    #[test]
    fn the_recorded_report_replays_with_its_files_keys_and_probes() {
        let image = image_from_report(REPORT).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(image.kind, CardKind::Cps3);
        assert_eq!(image.token_label, "CPS3v3-9900000001");
        assert_eq!(
            image.pin.as_ref().map(|p| (p.tries_left, p.max_tries)),
            Some((3, 3))
        );
        for path in [
            [0x3F00, 0x0001, 0x5031], // ODF
            [0x3F00, 0x0001, 0x5032], // TokenInfo
            [0x3F00, 0x0001, 0x7002], // PrKDF, where the ODF puts it
            [0x3F00, 0x0001, 0xA001], // signature certificate, re-issued
            [0x3F00, 0x0001, 0xD101], // CPS_ID_CARD
        ] {
            assert!(
                image.files.iter().any(|f| f.path == path),
                "{path:04X?} not served"
            );
        }
        assert!(image.absent.contains(&vec![0x3F00, 0x0001, 0x7004]));
        assert_eq!(
            image.sign.as_ref().and_then(|k| k.reference),
            Some(facts::KEY_SIG)
        );
        // CPS_ACTIVITY_01_PS and _02_PS (the CPS2ter objects are not in the DODF).
        assert_eq!(
            image.data.iter().filter(|d| d.private).count(),
            2,
            "DODF's private objects"
        );
        let card = crate::card_from_image(&image);
        assert_eq!(card.atr(), image.atr);
    }

    #[test]
    fn a_damaged_report_is_an_error_not_a_panic() {
        // Flip hex digits at pseudo-random places (a fixed LCG): every field, every file.
        let mut seed: u64 = 18;
        let positions: Vec<usize> = REPORT
            .char_indices()
            .filter(|(_, c)| c.is_ascii_hexdigit())
            .map(|(i, _)| i)
            .collect();
        for _ in 0..24 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let at = positions[(seed >> 33) as usize % positions.len()];
            let mut text = REPORT.to_owned();
            let flipped = if &text[at..=at] == "0" { "F" } else { "0" };
            text.replace_range(at..=at, flipped);
            let _ = image_from_report(&text).map(|i| crate::card_from_image(&i));
        }
        for broken in [
            "",
            "format = \"cpx-report/1\"",
            "format = \"cpx-report/1\"\n[card]\natr = \"zz\"",
        ] {
            assert!(image_from_report(broken).is_err(), "{broken:?}");
        }
    }
}

#[cfg(test)]
mod public_traces {
    //! The public real-card traces as reports (test-vectors/reports/opensc-*.toml,
    //! docs/card-report.md "Public traces"): each replays, and the replayed card answers the
    //! trace's own exchanges (`[[wire]]`) byte for byte and serves its recorded files.
    use super::*;

    pub(crate) const TRACES: [(&str, &str); 4] = [
        (
            "opensc-2223-cps3",
            include_str!("../../../test-vectors/reports/opensc-2223-cps3.toml"),
        ),
        (
            "opensc-2224-cps3",
            include_str!("../../../test-vectors/reports/opensc-2224-cps3.toml"),
        ),
        (
            "opensc-2267-cps3",
            include_str!("../../../test-vectors/reports/opensc-2267-cps3.toml"),
        ),
        (
            "opensc-2275-cps3",
            include_str!("../../../test-vectors/reports/opensc-2275-cps3.toml"),
        ),
    ];

    #[derive(Deserialize)]
    struct Wire {
        #[serde(default)]
        wire: Vec<WirePart>,
        #[serde(default)]
        files: Vec<FilePart>,
    }

    #[derive(Deserialize)]
    struct WirePart {
        command: String,
        response: String,
    }

    fn card(text: &str) -> Box<dyn crate::EmulatedCard> {
        let image = image_from_report(text).unwrap_or_else(|e| panic!("{e}"));
        let mut card = crate::card_from_image(&image);
        card.power_on();
        card
    }

    #[test]
    fn every_trace_replays_with_keys_and_answers_its_own_exchanges() {
        for (name, text) in TRACES {
            let image = image_from_report(text).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(image.sign.is_some() && image.auth.is_some(), "{name}: keys");
            let w: Wire = toml::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"));
            let mut card = card(text);
            for (i, e) in w.wire.iter().enumerate() {
                let answer = card.transmit(&hex::decode(&e.command).unwrap_or_default());
                assert_eq!(
                    hex::encode_upper(answer),
                    e.response,
                    "{name}: wire exchange {i}, {}",
                    e.command
                );
            }
        }
    }

    #[test]
    fn every_recorded_file_of_a_trace_is_served_as_recorded() {
        for (name, text) in TRACES {
            let w: Wire = toml::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"));
            for f in w.files.iter().filter(|f| f.kind != "certificate") {
                let (Some(path), Some(content)) = (&f.path, &f.content) else {
                    continue;
                };
                let mut card = card(text);
                let path = hex::decode(path.replace('/', "")).unwrap_or_default();
                let mut select = vec![0x00, 0xA4, 0x09, 0x0C, path.len() as u8];
                select.extend(&path);
                assert_eq!(card.transmit(&select), [0x90, 0x00], "{name}: select {}", f.name);
                let want = hex::decode(content).unwrap_or_default();
                let mut got: Vec<u8> = Vec::new();
                while got.len() < want.len() {
                    let n = (want.len() - got.len()).min(0xE7);
                    let at = got.len() as u16;
                    let r = card.transmit(&[0x00, 0xB0, (at >> 8) as u8, at as u8, n as u8]);
                    assert_eq!(r[r.len() - 2..], [0x90, 0x00], "{name}: read {}", f.name);
                    got.extend(&r[..r.len() - 2]);
                }
                assert_eq!(got, want, "{name}: {} as recorded", f.name);
            }
        }
    }

    #[test]
    fn the_2267_prkdf_gives_the_trace_key_references() {
        let image = image_from_report(TRACES[2].1).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(image.sign.as_ref().and_then(|k| k.reference), Some(0x81));
        assert_eq!(image.auth.as_ref().and_then(|k| k.reference), Some(0x82));
    }
}
