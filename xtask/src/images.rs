//! `card.toml`: the emulator image of a test card (format: crates/cpx-emulator/src/lib.rs, "Card
//! image format"), rendered from the same card table as the certificates and `holder.toml`.
//!
//! Every identity value of the business data is derived from the table: names and national id
//! from the holder, type, token id and validity from what the certificates encode, structure ids
//! of cabinets from the RPPS (`4` + RPPS + rang + Luhn key, docs/data-and-certs.md §2.7). Only what no
//! certificate carries is set per card in [`Image`]: card model, PIN state, specialty,
//! situations.

use std::fmt::Write as _;

use crate::Result;
use crate::cards::{Card, Role, Structure};
use crate::holder::s;
use crate::luhn;
use crate::profile;
use crate::x509::Date;

/// Card model (`kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ImageKind {
    /// CPS3, contact interface.
    Cps3,
    /// CPS3 through its contactless interface: no PIN, technical key only (docs/card-spec.md §7).
    Cps3Contactless,
    /// CPS4 (NXP ChipDoc): CPS2ter objects are physical DODF objects (docs/card-spec.md §2.4, §10.14).
    Cps4,
}

impl ImageKind {
    fn name(self) -> &'static str {
        match self {
            ImageKind::Cps3 => "cps3",
            ImageKind::Cps3Contactless => "cps3-contactless",
            ImageKind::Cps4 => "cps4",
        }
    }
}

/// PIN and PUK counters (no certificate encodes them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Secrets {
    /// Full counters.
    Fresh,
    /// PIN tries left 0; the PUK can unblock it.
    PinBlocked,
    /// PIN blocked and PUK exhausted (tries left 0, uses left 0).
    PukBlocked,
}

/// EF_ACTUA present (`3F00/D010`, docs/card-spec.md §5.7): the card was updated once. `YYYYMMDDhhmmss`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct EfActua {
    /// Tag 81.
    pub(crate) start: &'static str,
    /// Tag 82.
    pub(crate) end: &'static str,
}

/// One situation (activité) of `CPS_ACTIVITY_nn_PS`: `84` raison sociale, `85` Struct_IdNat,
/// `86` secteur (docs/data-and-certs.md §1.2).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Situation {
    /// The RPPS holder's own cabinet: `CABINET DR <surname>`, Struct_IdNat `4` + RPPS + 2-digit
    /// rang + Luhn key (G07 "cabinet RPPS", docs/data-and-certs.md §2.7), secteur SA07 (cabinet
    /// individuel).
    Cabinet {
        /// Rang of the cabinet (00 = the first).
        rang: u8,
    },
    /// The card's organisation: the certificates' subject `O` and `OU`.
    Employer,
    /// Another structure.
    At(Structure),
}

/// What only the emulator image holds.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Image {
    /// Card model.
    pub(crate) kind: ImageKind,
    /// PIN/PUK counters (ignored on the contactless interface, which has none).
    pub(crate) secrets: Secrets,
    /// EF_ACTUA, when the card was updated.
    pub(crate) ef_actua: Option<EfActua>,
    /// Specialty (DICO R01), last field of `CPS_INFO_PS` (docs/data-and-certs.md §1.3).
    pub(crate) specialty: Option<&'static str>,
    /// Situations, `CPS_ACTIVITY_01_PS` first.
    pub(crate) situations: &'static [Situation],
}

/// Test PIN and PUK of every card (CPS3: 4 and 8 digits, `facts::AODF_CPS3`).
const PIN: &str = "1234";
const PUK: &str = "12345678";
/// Secteur of a cabinet individuel (DICO R02).
const CABINET_SECTOR: &str = "SA07";
/// CPS4 final ATR, the emulator's default for `kind = "cps4"` (cpx-emulator `facts::ATR_CPS4`).
const ATR_CPS4: &str = "3B9B188001001225006480040100009044";
/// The 8-byte CPS_SIT_FACT placeholder (cpx-emulator `choices::DEFAULT_SIT_FACT`).
const SIT_FACT: &str = "0001303100000000";
/// Size of CPS_DATA, the free writable object.
const CPS_DATA_SIZE: usize = 128;

/// Contents of a business data object.
#[derive(Clone)]
enum Content {
    /// `EE { tag text … }`; tags as hex.
    Fields(Vec<(u8, String)>),
    /// Raw hex.
    Hex(String),
    /// Zero-filled (with `size`).
    Empty,
}

/// One `[[data]]` entry.
struct Data {
    comment: String,
    label: String,
    fid: u16,
    private: bool,
    modifiable: Option<bool>,
    writable: Option<bool>,
    size: Option<usize>,
    content: Content,
}

impl Data {
    fn new(comment: impl Into<String>, label: impl Into<String>, fid: u16, content: Content) -> Self {
        Data {
            comment: comment.into(),
            label: label.into(),
            fid,
            private: false,
            modifiable: None,
            writable: None,
            size: None,
            content,
        }
    }

    fn private(mut self) -> Self {
        self.private = true;
        self
    }

    fn render(&self, out: &mut String) -> Result<()> {
        writeln!(out)?;
        for line in self.comment.lines() {
            writeln!(out, "# {line}")?;
        }
        writeln!(
            out,
            "[[data]]\nlabel = {}\nfid = \"{:04X}\"",
            s(&self.label),
            self.fid
        )?;
        if self.private {
            writeln!(out, "private = true")?;
        }
        if let Some(m) = self.modifiable {
            writeln!(out, "modifiable = {m}")?;
        }
        if let Some(w) = self.writable {
            writeln!(out, "writable = {w}")?;
        }
        if let Some(size) = self.size {
            writeln!(out, "size = {size}")?;
        }
        match &self.content {
            Content::Fields(fields) => {
                writeln!(out, "fields = [")?;
                for (tag, text) in fields {
                    writeln!(out, "  {{ tag = \"{tag:02X}\", text = {} }},", s(text))?;
                }
                writeln!(out, "]")?;
            }
            Content::Hex(hex) => writeln!(out, "hex = {}", s(hex))?,
            Content::Empty => {}
        }
        Ok(())
    }
}

/// Fields tagged `80`, `81`, … in order.
fn fields<I: IntoIterator<Item = String>>(texts: I) -> Content {
    Content::Fields((0x80..).zip(texts).collect())
}

fn yyyymmdd(d: Date) -> String {
    format!("{:04}{:02}{:02}", d.year, d.month, d.day)
}

/// `CPS_ID_CARD` without (`CPS2TER_ID`) or with (`CPS_ID_CARD`) the validity dates.
fn id_card(card: &Card, with_validity: bool) -> Content {
    let mut texts = vec![
        format!("{:02}", card.card_type.g02_code()),
        format!("{:02X}", profile::G01_TEST_CARD),
        profile::token_id(card),
    ];
    if with_validity {
        texts.push(yyyymmdd(card.period.not_before));
        texts.push(yyyymmdd(card.period.not_after));
    }
    fields(texts)
}

fn name_ps(card: &Card) -> Content {
    fields([card.holder.surname.to_owned(), card.holder.given_name.to_owned()])
}

fn info_ps(card: &Card) -> Content {
    let h = &card.holder;
    let (prefix, identifier) = h.national_id.split_at(h.national_id_prefix_len);
    let mut texts = vec![prefix.to_owned(), identifier.to_owned()];
    if let Some((_, code)) = crate::cards::profession(h.title) {
        texts.push(code.to_owned());
    }
    texts.extend(card.image.specialty.map(str::to_owned));
    fields(texts)
}

/// `4` + RPPS + rang + Luhn key over the 13 digits after the prefix.
pub(crate) fn rpps_rang(card: &Card, rang: u8) -> Result<String> {
    let h = &card.holder;
    let (prefix, rpps) = h.national_id.split_at(h.national_id_prefix_len);
    if prefix != "8" || !luhn::is_valid(rpps) {
        return Err(format!(
            "{}: a cabinet needs a valid RPPS holder, not {}",
            card.stem, h.national_id
        )
        .into());
    }
    if rang > 99 {
        return Err(format!("{}: rang {rang} has more than 2 digits", card.stem).into());
    }
    Ok(format!(
        "4{}",
        luhn::with_check_digit(&format!("{rpps}{rang:02}"))?
    ))
}

fn situation(card: &Card, situation: &Situation) -> Result<Content> {
    let (name, struct_id, sector) = match situation {
        Situation::Cabinet { rang } => (
            format!("CABINET DR {}", card.holder.surname),
            rpps_rang(card, *rang)?,
            CABINET_SECTOR,
        ),
        Situation::Employer => {
            let org = card
                .organisation
                .ok_or_else(|| format!("{}: Employer situation without an organisation", card.stem))?;
            let st = org.structure;
            (st.name.to_owned(), st.struct_id.to_owned(), st.sector)
        }
        Situation::At(st) => (st.name.to_owned(), st.struct_id.to_owned(), st.sector),
    };
    Ok(Content::Fields(vec![
        (0x84, name),
        (0x85, struct_id),
        (0x86, sector.to_owned()),
    ]))
}

/// The 10-byte EF.SN.ICC PAN the emulator derives from the serial when the image gives none:
/// issuer `8025000001`, the last 8 serial digits, a Luhn key, `F` (cpx-emulator CHOICES.md).
fn default_pan(serial: &str) -> Result<String> {
    let tail = serial
        .get(serial.len().saturating_sub(8)..)
        .ok_or("card serial shorter than 8 digits")?;
    Ok(format!(
        "{}F",
        luhn::with_check_digit(&format!("8025000001{tail}"))?
    ))
}

fn header(out: &mut String, card: &Card) -> Result<()> {
    writeln!(out, "# cpx emulator image `{}`: {}.", card.stem, card.purpose)?;
    writeln!(
        out,
        "# GENERATED by `cargo run -p xtask -- gen-test-pki` (xtask/src/images.rs) from the card table\n\
         # (xtask/src/cards.rs), like holder.toml and the certificates beside it: do not edit.\n\
         # Fictitious TEST identity; TEST ONLY. Format: crates/cpx-emulator/src/lib.rs (\"Card image\n\
         # format\"). Business data contents are NOT the real (unpublished) ASIP layout: plausible\n\
         # BER-TLV EE {{ 8x text }} (docs/data-and-certs.md §1.2), see crates/cpx-emulator/CHOICES.md."
    )?;
    if card.image.kind == ImageKind::Cps4 {
        writeln!(
            out,
            "# CPS4: every object, CPS2TER_* and CPS_SIT_FACT included, is a physical DODF object (docs/card-spec.md\n\
             # §2.4, §10.14). FIDs are not public: D1xx for CPS_*, D2xx for CPS2TER_* (crates/cpx-emulator/CHOICES.md)."
        )?;
    }
    Ok(())
}

fn secrets(out: &mut String, card: &Card) -> Result<()> {
    let image = &card.image;
    if image.kind == ImageKind::Cps3Contactless {
        if image.secrets != Secrets::Fresh {
            return Err(format!("{}: the contactless interface has no PIN", card.stem).into());
        }
        return Ok(());
    }
    writeln!(out, "\n[pin]\nvalue = {}", s(PIN))?;
    if image.secrets != Secrets::Fresh {
        writeln!(out, "tries_left = 0  # blocked")?;
    }
    writeln!(out, "\n[puk]\nvalue = {}", s(PUK))?;
    if image.secrets == Secrets::PukBlocked {
        writeln!(
            out,
            "tries_left = 0  # exhausted: the PIN cannot be unblocked\nusage_left = 0"
        )?;
    }
    Ok(())
}

fn keys(out: &mut String, card: &Card) -> Result<()> {
    let contactless = card.image.kind == ImageKind::Cps3Contactless;
    if contactless != (card.roles == [Role::Tech]) {
        return Err(format!(
            "{}: a contactless image carries the technical key alone",
            card.stem
        )
        .into());
    }
    for role in [Role::Sign, Role::Auth, Role::Tech] {
        if card.roles.contains(&role) {
            let stem = role.stem();
            writeln!(
                out,
                "\n[keys.{stem}]\nkey = \"{stem}.TEST-ONLY.key.der\"\ncert = \"{stem}.der\""
            )?;
        }
    }
    Ok(())
}

/// The `[[data]]` objects of `card`, in DODF order.
fn data_objects(card: &Card) -> Result<Vec<Data>> {
    let cps4 = card.image.kind == ImageKind::Cps4;
    let mut data = vec![
        Data::new(
            "type (G02), category (G01), token id, validity: as in the certificates (holder.toml)",
            "CPS_ID_CARD",
            0xD101,
            id_card(card, true),
        ),
        Data::new(
            "surname, given name: the certificates' SN and GN",
            "CPS_NAME_PS",
            0xD102,
            name_ps(card),
        ),
        Data::new(
            "ISO 639-1 codes (DICO G00)",
            "CPS_LANG_PS",
            0xD103,
            fields(["fr".to_owned()]),
        ),
        Data::new(
            "id type (G08) and id: the certificates' CN; profession (G15/G16 code of the title),\n\
             specialty (R01) last: docs/data-and-certs.md §1.3",
            "CPS_INFO_PS",
            0xD104,
            info_ps(card),
        ),
    ];
    let mut cps_data = if cps4 {
        let mut d = Data::new(
            "The writable object (docs/card-spec.md §5.4): the EF takes UPDATE BINARY after the PIN, but the CPS4\n\
             DODF does not flag it modifiable (docs/card-spec.md §6.1, \"the 900 block on CPS4\"):\n\
             choices::CPS4_CPS_DATA_MODIFIABLE.",
            "CPS_DATA",
            0xD107,
            Content::Empty,
        );
        (d.modifiable, d.writable) = (Some(false), Some(true));
        d
    } else {
        let mut d = Data::new(
            "the only writable object (docs/card-spec.md §5.4); D107 is the file the Cryptolib never caches",
            "CPS_DATA",
            0xD107,
            Content::Empty,
        );
        d.modifiable = Some(true);
        d
    };
    cps_data.size = Some(CPS_DATA_SIZE);
    data.push(cps_data);
    let mut situations = Vec::new();
    for (n, sit) in (1u16..).zip(card.image.situations) {
        let fid = 0xD11F + n;
        let what = match sit {
            Situation::Cabinet { .. } => "the holder's cabinet, Struct_IdNat 4 + RPPS + rang + Luhn key",
            Situation::Employer => "the card's organisation (the certificates' O and OU)",
            Situation::At(_) => "raison sociale, Struct_IdNat, secteur (docs/data-and-certs.md §1.2)",
        };
        let content = situation(card, sit)?;
        data.push(
            Data::new(
                format!("situation {n}: {what}; 3F00/0001/{fid:04X}"),
                format!("CPS_ACTIVITY_{n:02}_PS"),
                fid,
                content.clone(),
            )
            .private(),
        );
        situations.push((n, content));
    }
    if !cps4 {
        return Ok(data);
    }
    data.push(
        Data::new(
            "Billing situation (layout not public, docs/data-and-certs.md §1.4): the CPS3 default placeholder",
            "CPS_SIT_FACT",
            0xD110,
            Content::Hex(SIT_FACT.to_owned()),
        )
        .private(),
    );
    let icc = format!("5A0A{}", default_pan(card.card_serial)?);
    data.extend([
        Data::new(
            "The seven free-access CPS2ter objects (docs/card-spec.md §2.4), physical on CPS4; binary layouts not\n\
             public: each mirrors its CPS_* twin (ICC: the EF.SN.ICC bytes, ATR: the card ATR) or is a\n\
             placeholder.",
            "CPS2TER_ATR",
            0xD201,
            Content::Hex(ATR_CPS4.to_owned()),
        ),
        Data::new("", "CPS2TER_ID", 0xD202, id_card(card, false)),
        Data::new("", "CPS2TER_ICC", 0xD203, Content::Hex(icc)),
        Data::new("", "CPS2TER_NAME", 0xD204, name_ps(card)),
        Data::new("", "CPS2TER_LANG", 0xD205, fields(["fr".to_owned()])),
        Data::new("", "CPS2TER_PSINFO", 0xD206, info_ps(card)),
        Data::new("", "CPS2TER_DIRAMO", 0xD207, Content::Hex("00".to_owned())),
    ]);
    for (n, content) in situations {
        data.push(
            Data::new(
                "CPS2ter twin of the situation (docs/card-spec.md §2.4): same bytes, physical on CPS4 (docs/card-spec.md §10.14)",
                format!("CPS2TER_ACTIVITY_{n:02}_PS"),
                0xD21F + n,
                content,
            )
            .private(),
        );
    }
    Ok(data)
}

/// Renders `card.toml` for `card`.
pub(crate) fn render(card: &Card) -> Result<String> {
    let mut out = String::new();
    header(&mut out, card)?;
    let kind = card.image.kind;
    writeln!(
        out,
        "\nkind = {}\ntoken_serial = {}",
        s(kind.name()),
        s(card.card_serial)
    )?;
    if kind == ImageKind::Cps4 {
        writeln!(
            out,
            "# atr: the final CPS4 ATR by default (T=0 and T=1, pcscd picks T=1); atr = \"cps4-rc\" or\n\
             # \"cps4-t0\" for the two other ATRs (docs/card-spec.md §1.1)"
        )?;
    }
    if let Some(a) = card.image.ef_actua {
        writeln!(
            out,
            "\n[ef_actua]  # 3F00/D010, docs/card-spec.md §5.7: the card was updated once\nstart = {}\nend = {}",
            s(a.start),
            s(a.end)
        )?;
    }
    secrets(&mut out, card)?;
    keys(&mut out, card)?;
    for d in data_objects(card)? {
        d.render(&mut out)?;
    }
    Ok(out)
}
