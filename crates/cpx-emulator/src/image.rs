//! `CardImage`: what is on a card, and its TOML format (`test-vectors/cards/<stem>/card.toml`).
//!
//! The format is documented in the crate docs ("Card image format"). Key and certificate files are
//! DER, named relative to the TOML file: PKCS#8 private keys and X.509 certificates.

use std::path::{Path, PathBuf};

use rsa::RsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use serde::{Deserialize, Serialize};

use crate::{choices, facts};

/// Which card model an image describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CardKind {
    /// CPS3 (Oberthur IAS-ECC) on its contact interface, T=0.
    Cps3,
    /// CPS3 seen through its ISO 14443 interface (docs/card-spec.md §7).
    Cps3Contactless,
    /// CPS4 (NXP ChipDoc), logical channel 1 (docs/card-spec.md §10).
    Cps4,
    /// Not a real card: the test-only stub generation of cpx-card (its feature
    /// `stub-generation`), a ChipDoc model with its own ATR and applet AID and 6–8 digit PINs
    /// ([`crate::choices::TEST_STUB`]).
    Cps5Test,
}

/// Errors while loading a card image.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The TOML file or a DER file beside it could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The TOML is malformed or has unknown fields.
    #[error("bad card.toml: {0}")]
    Toml(#[from] toml::de::Error),
    /// A field has an invalid value.
    #[error("bad value for {field}: {reason}")]
    Value {
        /// The field.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// A private key file is not a PKCS#8 RSA key.
    #[error("bad private key {file}: {reason}")]
    Key {
        /// The file.
        file: String,
        /// The decoding error.
        reason: String,
    },
}

fn bad(field: &str, reason: impl Into<String>) -> ImageError {
    ImageError::Value {
        field: field.to_owned(),
        reason: reason.into(),
    }
}

/// A PIN-like secret and its counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinImage {
    /// The value (ASCII digits, unpadded). CPS3: PIN 4 digits, PUK 8 (the card compares them
    /// padded to 8 bytes with FF, `facts::AODF_CPS3`); CPS4: PIN 4..8, PUK 8, unpadded.
    pub value: Vec<u8>,
    /// Maximum tries (tag 9A).
    pub max_tries: u8,
    /// Tries left (tag 9B); 0 = blocked.
    pub tries_left: u8,
    /// Remaining uses (tag 9D, PUK only: 100 unblocks on a new card).
    pub usage_left: Option<u16>,
    /// Minimum length (AODF / `7F41` tag 81).
    pub min_len: u8,
    /// Maximum length (AODF / `7F41` tag 80).
    pub max_len: u8,
}

/// A private key and its certificate.
#[derive(Debug, Clone)]
pub struct KeyImage {
    /// The RSA private key (kept on the card, never exported).
    pub key: RsaPrivateKey,
    /// The certificate (DER), served from its EF.
    pub cert: Vec<u8>,
    /// The key reference (PrKDF, MSE) when not the card model's (a replayed report's PrKDF).
    pub reference: Option<u8>,
}

/// A business data object (PKCS#15 DODF entry + its EF).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataObjectImage {
    /// PKCS#15 label, e.g. `CPS_NAME_PS` (docs/card-spec.md §2.4).
    pub label: String,
    /// FID of the EF under the application DF.
    pub fid: u16,
    /// Read needs the PIN (CKA_PRIVATE).
    pub private: bool,
    /// PKCS#15 "modifiable" flag (CKA_MODIFIABLE).
    pub modifiable: bool,
    /// The EF takes UPDATE BINARY after PIN verification (default: `modifiable`). The CPS4 image
    /// sets it without `modifiable` (docs/card-spec.md §6.1, see `choices::CPS4_CPS_DATA_MODIFIABLE`).
    pub writable: bool,
    /// File content (already padded to the file size).
    pub content: Vec<u8>,
}

/// An EF served as given, over the card model's layout: what a replayed report recorded
/// ([`crate::replay`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileImage {
    /// FIDs from the MF, `3F00` first; the DF must exist in the card model's layout.
    pub path: Vec<u16>,
    /// The content. An EF of the layout keeps its access rules; a new one is public.
    pub content: Vec<u8>,
    /// The FCP (`62…`) or FCI (`6F…`) a SELECT asking for that template answers, when recorded.
    pub fcp: Option<Vec<u8>>,
    /// Only the FCP was recorded (a trace that selected the file but did not read it): the EF of
    /// the layout keeps its content and gets [`FileImage::fcp`].
    pub fcp_only: bool,
}

/// Everything the emulator needs to build one card.
#[derive(Debug, Clone)]
pub struct CardImage {
    /// The card model.
    pub kind: CardKind,
    /// The ATR to present.
    pub atr: Vec<u8>,
    /// The 10-byte PAN of EF.SN.ICC (`5A 0A` + PAN, docs/card-spec.md §1.3).
    pub pan: [u8; 10],
    /// The 10-digit card serial used in the token label `CPS3v3-<serial>` (docs/card-spec.md §1.4).
    pub token_serial: String,
    /// TokenInfo label.
    pub token_label: String,
    /// TokenInfo lastUpdate (GeneralizedTime text).
    pub last_update: String,
    /// EF_ACTUA (`3F00/D010`) content when present (docs/card-spec.md §5.7).
    pub ef_actua: Option<Vec<u8>>,
    /// User PIN (CHV 01). `None` on the contactless interface.
    pub pin: Option<PinImage>,
    /// Unblocking code (CHV 02).
    pub puk: Option<PinImage>,
    /// CPS_PRIV_SIG + "Certificat de Signature CPS".
    pub sign: Option<KeyImage>,
    /// CPS_PRIV_AUT + "Certificat d'Authentification CPS".
    pub auth: Option<KeyImage>,
    /// CPS_PRIV_TECH_AUT + "Certificat Technique CPS" (contactless application).
    pub tech: Option<KeyImage>,
    /// Business data objects of the DODF.
    pub data: Vec<DataObjectImage>,
    /// CPS2ter `CPS_SIT_FACT` (`3F00/7F01/4000`) content (binary layout not public).
    pub sit_fact: Vec<u8>,
    /// Whether each PSO CDS with the signature key needs its own VERIFY (see `choices`).
    pub sig_key_fresh_verify: bool,
    /// EFs served as given over the layout built from the fields above (a replayed report's
    /// recorded files; empty for a `card.toml`).
    pub files: Vec<FileImage>,
    /// EFs of the layout the card does not have (a replayed report's probes answered `6A82`);
    /// FIDs from the MF, 3F00 first.
    pub absent: Vec<Vec<u16>>,
    /// Transport limits a field card showed (a replayed report's `[link]`); the default is the
    /// card model's behaviour.
    pub link: LinkImage,
    /// Security environments a field card answered for (a replayed report's
    /// `[[security_environments]]`): number, and the CRTs of its `7B` template, or `None` when
    /// the card has no such SE (`6A88`). A number not listed keeps the card model's answer.
    pub security_environments: Vec<RecordedSe>,
}

/// One security environment of a field card: its number, and the CRTs of its `7B` template, or
/// `None` when the card answered that it has no such SE.
pub type RecordedSe = (u8, Option<Vec<u8>>);

/// How a card answers at the edges of its transport: chunk limits and READ BINARY past the end
/// (docs/card-report.md, `[link]`). `None` everywhere = the card model's choices
/// (crates/cpx-emulator/CHOICES.md, "Commands and transport").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkImage {
    /// Largest Le (1..=256) a READ BINARY is answered for; a larger one gets `6700`.
    pub read_binary_max: Option<u16>,
    /// Largest Le (1..=256) a GET RESPONSE is answered for; a larger one gets `6700` and the
    /// pending data stays.
    pub get_response_max: Option<u16>,
    /// The answer to a READ BINARY asking more bytes than the file has after the offset.
    pub read_past_end: Option<PastEnd>,
}

/// The answers a READ BINARY past the end of the file can get (ISO/IEC 7816-4 allows each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PastEnd {
    /// `6Cxx`, xx = the bytes left (T=0 "wrong Le, use xx").
    WrongLe,
    /// The bytes left and `6282` (end of file reached before Le bytes).
    EndOfFile,
    /// `6700`, no data.
    WrongLength,
    /// `6B00`, no data.
    WrongOffset,
}

impl PastEnd {
    /// The report's spelling (`6Cxx`, `6282`, `6700`, `6B00`).
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text.to_ascii_uppercase().as_str() {
            "6CXX" => PastEnd::WrongLe,
            "6282" => PastEnd::EndOfFile,
            "6700" => PastEnd::WrongLength,
            "6B00" => PastEnd::WrongOffset,
            _ => return None,
        })
    }

    /// What a report writes for an answer whose status word is `sw`.
    pub fn from_sw(sw: u16) -> Option<Self> {
        Some(match sw {
            0x6C00..=0x6CFF => PastEnd::WrongLe,
            0x6282 => PastEnd::EndOfFile,
            0x6700 => PastEnd::WrongLength,
            0x6B00 => PastEnd::WrongOffset,
            _ => return None,
        })
    }

    /// The report's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            PastEnd::WrongLe => "6Cxx",
            PastEnd::EndOfFile => "6282",
            PastEnd::WrongLength => "6700",
            PastEnd::WrongOffset => "6B00",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImageToml {
    kind: CardKind,
    #[serde(default)]
    atr: Option<String>,
    #[serde(default)]
    pan: Option<String>,
    token_serial: String,
    #[serde(default)]
    token_label: Option<String>,
    #[serde(default)]
    last_update: Option<String>,
    #[serde(default)]
    ef_actua: Option<EfActuaToml>,
    #[serde(default)]
    pin: Option<PinToml>,
    #[serde(default)]
    puk: Option<PinToml>,
    #[serde(default)]
    keys: KeysToml,
    #[serde(default)]
    data: Vec<DataToml>,
    #[serde(default)]
    sit_fact: Option<String>,
    #[serde(default)]
    sig_key_fresh_verify: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EfActuaToml {
    #[serde(default)]
    start: Option<String>,
    #[serde(default)]
    end: Option<String>,
    #[serde(default)]
    hex: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PinToml {
    value: String,
    #[serde(default)]
    max_tries: Option<u8>,
    #[serde(default)]
    tries_left: Option<u8>,
    #[serde(default)]
    usage_left: Option<u16>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysToml {
    #[serde(default)]
    sign: Option<KeyToml>,
    #[serde(default)]
    auth: Option<KeyToml>,
    #[serde(default)]
    tech: Option<KeyToml>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyToml {
    key: String,
    cert: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DataToml {
    label: String,
    fid: String,
    #[serde(default)]
    private: bool,
    #[serde(default)]
    modifiable: bool,
    #[serde(default)]
    writable: Option<bool>,
    #[serde(default)]
    size: Option<usize>,
    #[serde(default)]
    hex: Option<String>,
    #[serde(default)]
    template: Option<String>,
    #[serde(default)]
    fields: Vec<FieldToml>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldToml {
    tag: String,
    text: String,
}

fn parse_hex(field: &str, s: &str) -> Result<Vec<u8>, ImageError> {
    let clean: String = s.chars().filter(|c| !c.is_whitespace() && *c != ':').collect();
    hex::decode(clean).map_err(|e| bad(field, e.to_string()))
}

fn parse_fid(field: &str, s: &str) -> Result<u16, ImageError> {
    match parse_hex(field, s)?.as_slice() {
        [a, b] => Ok(u16::from_be_bytes([*a, *b])),
        _ => Err(bad(field, "a FID is 2 bytes of hex")),
    }
}

/// Default PAN: issuer `8025000001`, the last 8 digits of the card serial, a Luhn digit over
/// those 18 digits, and `F` padding (docs/card-spec.md §1.3 format; the real mapping is not public, see
/// `choices`). `serial` is all digits, at least 8.
pub(crate) fn default_pan(serial: &str) -> String {
    let mut digits = String::from("8025000001");
    digits.push_str(&serial[serial.len().saturating_sub(8)..]);
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 0 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    digits.push(char::from(b'0' + ((10 - sum % 10) % 10) as u8));
    digits.push('F');
    digits
}

/// BCD of a `YYYYMMDDhhmmss` date (EF_ACTUA, docs/card-spec.md §5.7).
fn bcd_date(field: &str, s: &str) -> Result<Vec<u8>, ImageError> {
    if s.len() != 14 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(field, "expected YYYYMMDDhhmmss"));
    }
    parse_hex(field, s)
}

impl PinToml {
    fn build(
        &self,
        field: &str,
        default_max: u8,
        min_len: u8,
        max_len: u8,
        usage: Option<u16>,
    ) -> Result<PinImage, ImageError> {
        let value = self.value.as_bytes().to_vec();
        if value.len() < usize::from(min_len) || value.len() > usize::from(max_len) {
            return Err(bad(field, format!("length must be {min_len}..={max_len}")));
        }
        if !value.iter().all(u8::is_ascii_digit) {
            return Err(bad(field, "digits only (pinType asciiNumeric)"));
        }
        let max_tries = self.max_tries.unwrap_or(default_max);
        let tries_left = self.tries_left.unwrap_or(max_tries);
        if tries_left > max_tries || max_tries == 0 || max_tries > 15 {
            return Err(bad(field, "need 0 <= tries_left <= max_tries <= 15"));
        }
        Ok(PinImage {
            value,
            max_tries,
            tries_left,
            usage_left: self.usage_left.or(usage),
            min_len,
            max_len,
        })
    }
}

impl CardImage {
    /// Load `card.toml` and the DER files it names (relative to its directory).
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ImageError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ImageError::Io {
            path: path.to_owned(),
            source,
        })?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Self::from_toml(&text, &mut |name| {
            let p = dir.join(name);
            std::fs::read(&p).map_err(|source| ImageError::Io { path: p, source })
        })
    }

    /// Build an image from TOML text; `files` returns the bytes of a file the TOML names (tests use
    /// it to substitute generated keys while the real test PKI is not there).
    pub fn from_toml(
        text: &str,
        files: &mut dyn FnMut(&str) -> Result<Vec<u8>, ImageError>,
    ) -> Result<Self, ImageError> {
        let t: ImageToml = toml::from_str(text)?;
        let atr = match t.atr.as_deref() {
            None => facts::default_atr(t.kind).to_vec(),
            Some(name) => match facts::named_atr(name) {
                Some(a) => a.to_vec(),
                None => parse_hex("atr", name)?,
            },
        };
        if t.token_serial.len() < 8 || !t.token_serial.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("token_serial", "at least 8 digits"));
        }
        let pan_hex = t.pan.clone().unwrap_or_else(|| default_pan(&t.token_serial));
        let pan: [u8; 10] = parse_hex("pan", &pan_hex)?
            .try_into()
            .map_err(|_| bad("pan", "EF.SN.ICC holds a 10-byte PAN (docs/card-spec.md §1.3)"))?;
        let token_label = t.token_label.clone().unwrap_or_else(|| match t.kind {
            CardKind::Cps4 => format!("CPS4v1-{}", t.token_serial),
            CardKind::Cps5Test => format!("CPS5TEST-{}", t.token_serial),
            _ => format!("CPS3v3-{}", t.token_serial),
        });
        let ef_actua = match &t.ef_actua {
            None => None,
            Some(EfActuaToml { hex: Some(h), .. }) => Some(parse_hex("ef_actua.hex", h)?),
            Some(EfActuaToml { start, end, .. }) => {
                let mut inner = Vec::new();
                if let Some(s) = start {
                    inner.extend(crate::tlv::tlv(&[0x81], &bcd_date("ef_actua.start", s)?));
                }
                if let Some(e) = end {
                    inner.extend(crate::tlv::tlv(&[0x82], &bcd_date("ef_actua.end", e)?));
                }
                Some(crate::tlv::tlv(&[0xEC], &inner))
            }
        };
        // CPS3: the real AODF fixes 4-digit PINs and 8-digit PUKs (facts::AODF_CPS3); CPS4 PINs
        // are unpadded, 4..8 (docs/card-spec.md §10, the AODF defaults of docs/card-spec.md §3.1).
        let (pin_min, pin_max, puk_len) = match t.kind {
            CardKind::Cps4 => (4, 8, 8),
            CardKind::Cps5Test => (choices::TEST_STUB.pin_min, 8, 8),
            CardKind::Cps3 | CardKind::Cps3Contactless => {
                use facts::cps3_pin::{PIN_LEN, PUK_LEN};
                (PIN_LEN, PIN_LEN, PUK_LEN)
            }
        };
        let pin = t
            .pin
            .as_ref()
            .map(|p| p.build("pin", 3, pin_min, pin_max, None))
            .transpose()?;
        let puk = t
            .puk
            .as_ref()
            .map(|p| p.build("puk", 10, puk_len, puk_len, Some(100)))
            .transpose()?;
        let mut key = |k: &Option<KeyToml>| -> Result<Option<KeyImage>, ImageError> {
            let Some(k) = k else { return Ok(None) };
            let der = files(&k.key)?;
            let key = RsaPrivateKey::from_pkcs8_der(&der).map_err(|e| ImageError::Key {
                file: k.key.clone(),
                reason: e.to_string(),
            })?;
            Ok(Some(KeyImage {
                key,
                cert: files(&k.cert)?,
                reference: None,
            }))
        };
        let sign = key(&t.keys.sign)?;
        let auth = key(&t.keys.auth)?;
        let tech = key(&t.keys.tech)?;
        let mut data = Vec::new();
        for d in &t.data {
            let field = format!("data.{}", d.label);
            let mut content = match (&d.hex, d.fields.is_empty()) {
                (Some(h), true) => parse_hex(&field, h)?,
                (None, false) => {
                    let template = parse_hex(&field, d.template.as_deref().unwrap_or("EE"))?;
                    let mut inner = Vec::new();
                    for f in &d.fields {
                        inner.extend(crate::tlv::tlv(&parse_hex(&field, &f.tag)?, f.text.as_bytes()));
                    }
                    crate::tlv::tlv(&template, &inner)
                }
                (None, true) => Vec::new(),
                (Some(_), false) => return Err(bad(&field, "give either hex or fields")),
            };
            if let Some(size) = d.size {
                if size < content.len() {
                    return Err(bad(&field, "size smaller than the value"));
                }
                content.resize(size, 0);
            }
            data.push(DataObjectImage {
                label: d.label.clone(),
                fid: parse_fid(&field, &d.fid)?,
                private: d.private,
                modifiable: d.modifiable,
                writable: d.writable.unwrap_or(d.modifiable),
                content,
            });
        }
        let sit_fact = match &t.sit_fact {
            Some(h) => parse_hex("sit_fact", h)?,
            None => choices::DEFAULT_SIT_FACT.to_vec(),
        };
        Ok(Self {
            kind: t.kind,
            atr,
            pan,
            token_serial: t.token_serial,
            token_label,
            last_update: t
                .last_update
                .unwrap_or_else(|| choices::DEFAULT_LAST_UPDATE.to_owned()),
            ef_actua,
            pin,
            puk,
            sign,
            auth,
            tech,
            data,
            sit_fact,
            sig_key_fresh_verify: t.sig_key_fresh_verify.unwrap_or(choices::SIG_KEY_FRESH_VERIFY),
            files: Vec::new(),
            absent: Vec::new(),
            link: LinkImage::default(),
            security_environments: Vec::new(),
        })
    }

    /// EF.SN.ICC content: `5A 0A` + PAN (docs/card-spec.md §1.3).
    pub fn ef_sn_icc(&self) -> Vec<u8> {
        crate::tlv::tlv(&[0x5A], &self.pan)
    }
}
