//! Business data objects ("données métier", CKO_DATA values read from the card): always shown
//! as a BER-TLV tree, decoded into named fields only where the sources establish the meaning.
//!
//! What is established (docs/data-and-certs.md):
//! - `CPS_ACTIVITY_nn_PS` (§1.2, confidence M): template `EE` holding `84` raison sociale, `85`
//!   Struct_IdNat, `86` secteur d'activité (RPPS code `SAxx`, DICO R02); other tags may exist
//!   and are kept as TLV;
//! - `CPS_INFO_PS` (§1.3, confidence M): the last field is the specialty code (DICO R01);
//!   nothing else in it is established.
//!
//! Not public (§1.4, §2.8): the layouts of `CPS_ID_CARD`, `CPS_NAME_PS`, `CPS_LANG_PS`,
//! `CPS_SIT_FACT`, `CPS2TER_*`. Those, and `CPS_DATA` (free content), are shown as TLV only.
//!
//! ```
//! use cpx_profile::business::{self, Decoded};
//!
//! // The second situation of the real test card in §1.2.
//! let mut fields = Vec::new();
//! for (tag, text) in [(0x84u8, "CABINET M DOC0073574"), (0x85, "499700735741008"), (0x86, "SA07")] {
//!     fields.extend([tag, text.len() as u8]);
//!     fields.extend(text.as_bytes());
//! }
//! let mut value = vec![0xEE, fields.len() as u8];
//! value.extend(fields);
//! let obj = business::decode("CPS_ACTIVITY_02_PS", &value);
//! let Some(Decoded::Activity(a)) = &obj.decoded else { panic!() };
//! assert_eq!(a.number, 2);
//! assert_eq!(a.raison_sociale.as_deref(), Some("CABINET M DOC0073574"));
//! assert_eq!(a.sector.as_ref().and_then(|s| s.label.as_deref()), Some("Cabinet individuel"));
//! assert_eq!(a.structure_id.as_ref().and_then(|s| s.scheme.as_deref()), Some("rpps_rang"));
//! ```

use serde::Serialize;

use crate::codes::{Code, Table};
use crate::error::TlvError;
use crate::national_id::NationalId;
use crate::tlv::{self, TlvDocument, TlvNode};

/// What a data object is, from its PKCS#11 label (docs/card-notes.md §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    /// `CPS_ACTIVITY_nn_PS`: a situation d'exercice.
    Activity,
    /// `CPS_INFO_PS`: professional characteristics.
    InfoPs,
    /// `CPS_ID_CARD`.
    IdCard,
    /// `CPS_NAME_PS`.
    NamePs,
    /// `CPS_LANG_PS`.
    LangPs,
    /// `CPS_SIT_FACT`: billing situation.
    SitFact,
    /// `CPS_DATA`: the free, writable object.
    Data,
    /// `CPS2TER_ACTIVITY_nn_PS`.
    Cps2terActivity,
    /// Other `CPS2TER_*` objects (CPS4).
    Cps2ter,
    /// Any other label.
    Unknown,
}

/// A situation d'exercice (`CPS_ACTIVITY_nn_PS`, docs/data-and-certs.md §1.2). `None` = tag absent or not
/// UTF-8 text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Activity {
    /// `nn` from the label (1–16).
    pub number: u8,
    /// Tag `84`: raison sociale.
    pub raison_sociale: Option<String>,
    /// Tag `85`: Struct_IdNat of the structure.
    pub structure_id: Option<NationalId>,
    /// Tag `86`: secteur d'activité, DICO R02.
    pub sector: Option<Code>,
}

/// `CPS_INFO_PS`, as far as it is established (docs/data-and-certs.md §1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InfoPs {
    /// The last field, when it is a DICO R01 specialty code.
    pub specialty: Option<Code>,
}

/// Named fields of an object whose layout the sources establish.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Decoded {
    /// A situation (boxed: much larger than the other variant).
    Activity(Box<Activity>),
    /// Professional characteristics.
    InfoPs(InfoPs),
}

/// One business data object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BusinessObject {
    /// PKCS#11 label, as given, control characters replaced by U+FFFD.
    pub label: String,
    /// Kind from the label.
    pub kind: ObjectKind,
    /// `nn` of `…_ACTIVITY_nn_PS` labels.
    pub number: Option<u8>,
    /// Value length in bytes.
    pub length: usize,
    /// The whole value, upper-case hex.
    pub value: String,
    /// The BER-TLV tree, `None` when the value is not BER-TLV (see `tlv_error`).
    pub tlv: Option<TlvDocument>,
    /// Why the value is not BER-TLV.
    pub tlv_error: Option<TlvError>,
    /// Named fields, for the kinds whose layout is established.
    pub decoded: Option<Decoded>,
    /// What is known about the layout, with the source.
    pub note: String,
    /// Problems met while decoding named fields.
    pub warnings: Vec<String>,
}

/// Decode the value of the data object labelled `label`. Never fails: what cannot be decoded is
/// shown raw, with the reason.
pub fn decode(label: &str, value: &[u8]) -> BusinessObject {
    let (kind, number) = kind_of(label);
    let (tlv, tlv_error) = match tlv::decode(value) {
        Ok(doc) => (Some(doc), None),
        Err(e) => (None, Some(e)),
    };
    let mut warnings = Vec::new();
    let decoded = match (kind, &tlv) {
        (ObjectKind::Activity, Some(doc)) => Some(Decoded::Activity(Box::new(activity(
            number.unwrap_or_default(),
            doc,
            &mut warnings,
        )))),
        (ObjectKind::InfoPs, Some(doc)) => Some(Decoded::InfoPs(info_ps(doc, &mut warnings))),
        _ => None,
    };
    let note = match kind {
        ObjectKind::Activity => {
            "tags 84 raison sociale, 85 Struct_IdNat, 86 secteur (R02) per docs/data-and-certs.md §1.2; other tags shown as TLV"
        }
        ObjectKind::InfoPs => {
            "only the last field (specialty, R01) is established, docs/data-and-certs.md §1.3; the rest shown as TLV"
        }
        ObjectKind::Data => "free content, the only writable object (docs/card-notes.md §6)",
        ObjectKind::Unknown => "unknown label: shown raw, and as TLV when it parses",
        _ => "layout not public (docs/data-and-certs.md §1.4, §2.8): shown raw, and as TLV when it parses",
    };
    BusinessObject {
        label: crate::text::safe(label.to_owned()),
        kind,
        number,
        length: value.len(),
        value: hex::encode_upper(value),
        tlv,
        tlv_error,
        decoded,
        note: note.to_owned(),
        warnings,
    }
}

fn kind_of(label: &str) -> (ObjectKind, Option<u8>) {
    let nn = |rest: &str| {
        rest.strip_suffix("_PS")
            .filter(|n| n.len() == 2 && n.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|n| n.parse::<u8>().ok())
    };
    if let Some(n) = label.strip_prefix("CPS_ACTIVITY_").and_then(nn) {
        return (ObjectKind::Activity, Some(n));
    }
    if let Some(n) = label.strip_prefix("CPS2TER_ACTIVITY_").and_then(nn) {
        return (ObjectKind::Cps2terActivity, Some(n));
    }
    let kind = match label {
        "CPS_INFO_PS" => ObjectKind::InfoPs,
        "CPS_ID_CARD" => ObjectKind::IdCard,
        "CPS_NAME_PS" => ObjectKind::NamePs,
        "CPS_LANG_PS" => ObjectKind::LangPs,
        "CPS_SIT_FACT" => ObjectKind::SitFact,
        "CPS_DATA" => ObjectKind::Data,
        l if l.starts_with("CPS2TER_") => ObjectKind::Cps2ter,
        _ => ObjectKind::Unknown,
    };
    (kind, None)
}

fn text_of(node: Option<&TlvNode>, what: &str, warnings: &mut Vec<String>) -> Option<String> {
    let node = node?;
    if node.constructed || node.text.is_none() {
        warnings.push(format!("tag {} ({what}) is not UTF-8 text", node.tag));
    }
    node.text.clone()
}

fn activity(number: u8, doc: &TlvDocument, warnings: &mut Vec<String>) -> Activity {
    let template = doc.nodes.iter().find(|n| n.tag == "EE" && n.constructed);
    if template.is_none() {
        warnings.push("no EE template (docs/data-and-certs.md §1.2)".to_owned());
    }
    let field = |tag: &str| template.and_then(|t| t.child(tag));
    let raison_sociale = text_of(field("84"), "raison sociale", warnings);
    let structure_id = text_of(field("85"), "Struct_IdNat", warnings).map(|s| NationalId::structure(&s));
    let sector = text_of(field("86"), "secteur d'activité", warnings).map(|s| Code::new(Table::R02, &s));
    Activity {
        number,
        raison_sociale,
        structure_id,
        sector,
    }
}

fn info_ps(doc: &TlvDocument, warnings: &mut Vec<String>) -> InfoPs {
    let last = doc.iter().filter(|n| !n.constructed).last();
    let specialty = match last.and_then(|n| n.text.as_deref()) {
        Some(code) if crate::codes::label(Table::R01, code).is_some() => Some(Code::new(Table::R01, code)),
        Some(code) => {
            warnings.push(format!("last field {code:?} is not a DICO R01 specialty code"));
            None
        }
        None => {
            warnings.push("no last text field".to_owned());
            None
        }
    };
    InfoPs { specialty }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ee(fields: &[(u8, &[u8])]) -> Vec<u8> {
        let mut inner = Vec::new();
        for (tag, v) in fields {
            inner.push(*tag);
            inner.push(u8::try_from(v.len()).unwrap());
            inner.extend_from_slice(v);
        }
        let mut out = vec![0xEE, u8::try_from(inner.len()).unwrap()];
        out.extend(inner);
        out
    }

    #[test]
    fn labels() {
        assert_eq!(kind_of("CPS_ACTIVITY_16_PS"), (ObjectKind::Activity, Some(16)));
        assert_eq!(
            kind_of("CPS2TER_ACTIVITY_01_PS"),
            (ObjectKind::Cps2terActivity, Some(1))
        );
        assert_eq!(kind_of("CPS_ACTIVITY_1_PS"), (ObjectKind::Unknown, None));
        assert_eq!(kind_of("CPS2TER_DIRAMO"), (ObjectKind::Cps2ter, None));
        assert_eq!(kind_of("CPS_NAME_PS"), (ObjectKind::NamePs, None));
    }

    #[test]
    fn situation_from_the_notes() {
        // docs/data-and-certs.md §1.2 situation 1, with an unknown tag first: skipped, kept in the TLV.
        let v = ee(&[
            (0x83, b"?"),
            (0x84, b"HOPITAL GENERIQUE"),
            (0x85, b"10B0307377"),
            (0x86, b"SA01"),
        ]);
        let obj = decode("CPS_ACTIVITY_01_PS", &v);
        let Some(Decoded::Activity(a)) = obj.decoded else {
            panic!("{obj:?}")
        };
        assert_eq!(a.raison_sociale.as_deref(), Some("HOPITAL GENERIQUE"));
        assert_eq!(a.structure_id.unwrap().scheme.as_deref(), Some("finess"));
        assert_eq!(
            a.sector.unwrap().label.as_deref(),
            Some("Etablissement public de santé")
        );
        assert_eq!(obj.tlv.unwrap().nodes[0].children[0].tag, "83");
        assert!(obj.warnings.is_empty());
    }

    #[test]
    fn situation_with_missing_and_binary_fields() {
        let obj = decode("CPS_ACTIVITY_03_PS", &ee(&[(0x84, &[0xFF, 0xFE])]));
        let Some(Decoded::Activity(a)) = obj.decoded else {
            panic!()
        };
        assert_eq!((a.raison_sociale, a.structure_id, a.sector), (None, None, None));
        assert_eq!(obj.warnings, ["tag 84 (raison sociale) is not UTF-8 text"]);
        let obj = decode("CPS_ACTIVITY_03_PS", &[0x84, 0x01, 0x41]);
        assert_eq!(obj.warnings, ["no EE template (docs/data-and-certs.md §1.2)"]);
    }

    #[test]
    fn info_ps_specialty_is_the_last_field() {
        let obj = decode("CPS_INFO_PS", &ee(&[(0x80, b"8"), (0x83, b"SM26")]));
        let Some(Decoded::InfoPs(i)) = obj.decoded else {
            panic!()
        };
        assert_eq!(
            i.specialty.unwrap().label.as_deref(),
            Some("Qualifié en Médecine Générale (SM)")
        );
        let obj = decode("CPS_INFO_PS", &ee(&[(0x83, b"ZZ99")]));
        let Some(Decoded::InfoPs(i)) = obj.decoded else {
            panic!()
        };
        assert_eq!(i.specialty, None);
        assert_eq!(obj.warnings.len(), 1);
    }

    #[test]
    fn undecodable_values_are_kept() {
        let obj = decode("CPS_NAME_PS", &[0xEE, 0x05, 0x80]);
        assert!(obj.tlv.is_none());
        assert_eq!(obj.tlv_error.unwrap().offset, 0);
        assert_eq!(obj.value, "EE0580");
        assert_eq!(obj.decoded, None);
        let data = decode("CPS_DATA", &[0; 16]);
        assert_eq!(data.tlv.unwrap().padding, 16);
    }
}
