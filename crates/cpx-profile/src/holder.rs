//! The card, its holder and (for establishment cards) the organisation, from one certificate.
//!
//! Where the facts sit (docs/data-and-certs.md):
//! - card type: extension `1.2.250.1.71.1.2.2` (DICO G02), not the DN (§2.2);
//! - card category / TEST flag: extension `1.2.250.1.71.1.2.5` (DICO G01) (§2.2);
//! - token id and card serial: extension `1.2.250.1.71.1.2.3` (§2.2);
//! - national id = subject CN, surname = SN, given name = GN, all in one multi-valued RDN;
//!   `title` = profession label (DICO G15, or G16 for CPF) or a CPE label; `pseudonym` on
//!   "non directement nominative" CPE (§2.3);
//! - organisation: subject `O`, `ST`, `L`, and `OU` = Struct_IdNat on CPE/CPA (§2.1, §2.3).
//!
//! A field the certificate does not carry is `None`: nothing is guessed.

use serde::Serialize;

use crate::cert::Certificate;
use crate::codes::{self, Code, Table};
use crate::national_id::{IdStatus, NationalId};
use crate::oids;

/// Card type (DICO G02 code → TRE_R87 letter code, docs/data-and-certs.md §1.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum CardType {
    /// 0: Carte de Professionnel de Santé.
    #[serde(rename = "CPS")]
    Cps,
    /// 1: CPS en Formation.
    #[serde(rename = "CPF")]
    Cpf,
    /// 2: Carte de Personnel d'Établissement (CDE/CPE).
    #[serde(rename = "CPE")]
    Cpe,
    /// 3: Carte de Personnel Autorisé (CDA/CPA).
    #[serde(rename = "CPA")]
    Cpa,
}

impl CardType {
    /// From the G02 code of extension `1.2.250.1.71.1.2.2`.
    pub fn from_code(code: i64) -> Option<CardType> {
        match code {
            0 => Some(CardType::Cps),
            1 => Some(CardType::Cpf),
            2 => Some(CardType::Cpe),
            3 => Some(CardType::Cpa),
            _ => None,
        }
    }
}

/// The card, as its certificates describe it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Card {
    /// `CPS`, `CPF`, `CPE`, `CPA`.
    #[serde(rename = "type")]
    pub card_type: Option<CardType>,
    /// Raw G02 code.
    pub type_code: Option<i64>,
    /// DICO G02 label.
    pub type_label: Option<String>,
    /// DICO G01 category code (`"80"` = CPx de TEST).
    pub category_code: Option<String>,
    /// DICO G01 label.
    pub category_label: Option<String>,
    /// Whether the G01 category is a TEST one (`80`, `82`, `83`); `None` when unknown.
    pub test: Option<bool>,
    /// Token id `<issuer id>/<card serial>`.
    pub token_id: Option<String>,
    /// Token id before the `/` (`8025000001` = ANS, the EF.SN.ICC issuer prefix).
    pub issuer_id: Option<String>,
    /// Card serial, after the `/` (10 digits; the token label's `CPS3v3-<serial>`).
    pub serial: Option<String>,
}

/// The card holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Holder {
    /// IdNat_PS from the subject CN.
    pub national_id: Option<NationalId>,
    /// Subject GN.
    pub given_name: Option<String>,
    /// Subject SN (nom d'exercice).
    pub surname: Option<String>,
    /// Subject pseudonym (CPE "non directement nominative").
    pub pseudonym: Option<String>,
    /// Subject title.
    pub title: Option<String>,
    /// The profession whose DICO G15 (or G16, in training) label equals the title.
    pub profession: Option<Code>,
    /// Specialty (DICO R01), from `CPS_INFO_PS` business data only.
    pub specialty: Option<Code>,
    /// subjectAltName UPN (`<IdNat>@carte-cps.fr`).
    pub upn: Option<String>,
}

/// The organisation of an establishment card (CPE, CPA).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Organisation {
    /// Subject O (raison sociale).
    pub name: Option<String>,
    /// Subject ST.
    pub state: Option<String>,
    /// Subject L.
    pub locality: Option<String>,
    /// Every subject OU, in order.
    pub units: Vec<String>,
    /// The first OU that is a well-formed Struct_IdNat.
    pub structure_id: Option<NationalId>,
}

/// The card facts of `cert`.
pub fn card(cert: &Certificate) -> Card {
    let h = &cert.extensions.health;
    let type_label = h
        .card_type_code
        .filter(|c| (0..100).contains(c))
        .and_then(|c| codes::label(Table::G02, &format!("{c:02}")));
    let category_label = h
        .category_code
        .as_deref()
        .and_then(|c| codes::label(Table::G01, c));
    let (issuer_id, serial) = match h.token_id.as_deref().and_then(|t| t.split_once('/')) {
        Some((i, s)) => (Some(i.to_owned()), Some(s.to_owned())),
        None => (None, None),
    };
    Card {
        card_type: h.card_type_code.and_then(CardType::from_code),
        type_code: h.card_type_code,
        type_label: type_label.map(str::to_owned),
        category_code: h.category_code.clone(),
        category_label: category_label.map(str::to_owned),
        // DICO G01: 80/82/83 are the "de TEST" variants of 00/02/03.
        test: category_label.map(|l| l.ends_with("de TEST")),
        token_id: h.token_id.clone(),
        issuer_id,
        serial,
    }
}

/// The holder facts of `cert` (the specialty is left `None`: it comes from business data).
pub fn holder(cert: &Certificate) -> Holder {
    let s = &cert.subject;
    let title = s.first(oids::TITLE).map(str::to_owned);
    let profession = title.as_deref().and_then(|t| {
        [Table::G15, Table::G16]
            .into_iter()
            .find_map(|table| codes::code_for_label(table, t).map(|code| Code::new(table, code)))
    });
    let upn = cert
        .extensions
        .subject_alt_names
        .iter()
        .find(|a| a.kind == "upn")
        .map(|a| a.value.clone());
    Holder {
        national_id: s.common_name().map(NationalId::person),
        given_name: s.first(oids::GN).map(str::to_owned),
        surname: s.first(oids::SN).map(str::to_owned),
        pseudonym: s.first(oids::PSEUDONYM).map(str::to_owned),
        title,
        profession,
        specialty: None,
        upn,
    }
}

/// The organisation of `cert`'s subject; `None` when it has no O, ST, L or OU (person cards).
pub fn organisation(cert: &Certificate) -> Option<Organisation> {
    let s = &cert.subject;
    let units: Vec<String> = s.all(oids::OU).into_iter().map(str::to_owned).collect();
    let name = s.first(oids::O).map(str::to_owned);
    let state = s.first(oids::ST).map(str::to_owned);
    let locality = s.first(oids::L).map(str::to_owned);
    if name.is_none() && state.is_none() && locality.is_none() && units.is_empty() {
        return None;
    }
    let structure_id = units
        .iter()
        .map(|u| NationalId::structure(u))
        .find(|id| id.status != IdStatus::Invalid);
    Some(Organisation {
        name,
        state,
        locality,
        units,
        structure_id,
    })
}
