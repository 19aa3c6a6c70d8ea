//! The test cards: who holds them, which certificates they carry and what their emulator images
//! hold. This table is the one source of every card's facts: certificates and `holder.toml`
//! (profile.rs, holder.rs) and `card.toml` (images.rs) are all rendered from it.
//!
//! Every identity is fictitious and marked TEST (surnames `…-TEST00nn`, organisations `… TEST
//! CPX`). RPPS numbers use the test range `997…` seen on real test cards and are Luhn-valid
//! (docs/data-and-certs.md §2.7); card serials use `99000000nn`.

use crate::images::{EfActua, Image, ImageKind, Secrets, Situation};
use crate::pki::Level;
use crate::x509::{Date, Period};

/// Card type: DICO G02 code carried by extension `1.2.250.1.71.1.2.2` (docs/data-and-certs.md §2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CardType {
    /// Carte de Professionnel de Santé.
    Cps,
    /// CPS en Formation.
    Cpf,
    /// Carte de Personnel d'Établissement.
    Cpe,
    /// Carte de Personnel Autorisé.
    Cpa,
}

impl CardType {
    /// DICO G02 code.
    pub(crate) fn g02_code(self) -> u8 {
        match self {
            CardType::Cps => 0,
            CardType::Cpf => 1,
            CardType::Cpe => 2,
            CardType::Cpa => 3,
        }
    }

    /// Letter code (TRE_R87, docs/data-and-certs.md §1.6) used in `holder.toml`.
    pub(crate) fn letters(self) -> &'static str {
        match self {
            CardType::Cps => "CPS",
            CardType::Cpf => "CPF",
            CardType::Cpe => "CPE",
            CardType::Cpa => "CPA",
        }
    }

    /// DICO G02 label.
    pub(crate) fn g02_label(self) -> &'static str {
        match self {
            CardType::Cps => "Carte de Professionnel de Santé (CPS)",
            CardType::Cpf => "Carte de Professionnel de Santé en Formation (CPF)",
            CardType::Cpe => "Carte de Personnel d'Etablissement (CDE/CPE)",
            CardType::Cpa => "Carte de Personnel Autorisé (CDA/CPA)",
        }
    }

    /// Issuing level: FORT for CPS/CPF, STANDARD for CPE/CPA (docs/data-and-certs.md §2.4: the real TEST
    /// CPE is issued by STANDARD PERSONNES; CPS → FORT is confidence M).
    pub(crate) fn level(self) -> Level {
        match self {
            CardType::Cps | CardType::Cpf => Level::Fort,
            CardType::Cpe | CardType::Cpa => Level::Standard,
        }
    }
}

/// Which certificate of a card.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// Authentication ("Certificat d'Authentification CPS", key `CPS_PRIV_AUT`).
    Auth,
    /// Signature ("Certificat de Signature CPS", key `CPS_PRIV_SIG`).
    Sign,
    /// Contactless technical authentication ("Certificat Technique CPS", `CPS_PRIV_TECH_AUT`).
    Tech,
}

impl Role {
    /// File stem in the card directory and suffix of the seed.
    pub(crate) fn stem(self) -> &'static str {
        match self {
            Role::Auth => "auth",
            Role::Sign => "sign",
            Role::Tech => "tech",
        }
    }
}

/// A health structure: raison sociale, Struct_IdNat and secteur. One value per structure, shared
/// by the certificates of the CPE/CPA that work there and by the situations of the cards that
/// practise there.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Structure {
    /// Raison sociale: subject `O`, situation tag `84`.
    pub(crate) name: &'static str,
    /// Struct_IdNat = DICO G07 prefix + identifier (§2.7): subject `OU`, situation tag `85`.
    pub(crate) struct_id: &'static str,
    /// Secteur d'activité (DICO R02): situation tag `86` only, no certificate carries it.
    pub(crate) sector: &'static str,
}

/// The structure a CPE/CPA holder works for (subject `ST`, `O`, `OU`, §2.1).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Organisation {
    /// Subject `ST`, "Département (nn)" style as in the real cert.
    pub(crate) state: &'static str,
    /// Subject `O` (name) and `OU` (Struct_IdNat).
    pub(crate) structure: Structure,
}

/// The card holder as written into the subject DN.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Holder {
    /// IdNat_PS (subject CN): DICO G08 prefix + identifier (§2.7).
    pub(crate) national_id: &'static str,
    /// Length of the G08 type prefix of `national_id` (1 for all our cards).
    pub(crate) national_id_prefix_len: usize,
    /// Subject GN (prénom).
    pub(crate) given_name: &'static str,
    /// Subject SN (nom d'exercice).
    pub(crate) surname: &'static str,
    /// Subject `title`: profession label (DICO G15/G16) or the CPE label.
    pub(crate) title: &'static str,
}

/// One test card.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Card {
    /// Directory name under `test-vectors/cards/`.
    pub(crate) stem: &'static str,
    /// Card type (extension 2.2).
    pub(crate) card_type: CardType,
    /// 10-digit card serial number (extension 2.3 after `8025000001/`).
    pub(crate) card_serial: &'static str,
    /// Holder.
    pub(crate) holder: Holder,
    /// Structure, for CPE/CPA.
    pub(crate) organisation: Option<Organisation>,
    /// Validity of every certificate of the card.
    pub(crate) period: Period,
    /// Certificates on the card.
    pub(crate) roles: &'static [Role],
    /// One line on what the card is for (README, holder.toml and card.toml headers).
    pub(crate) purpose: &'static str,
    /// What only the emulator image (`card.toml`) holds: card model, PIN state, business data.
    pub(crate) image: Image,
}

/// Issuer id prefix of the token id (extension 2.3): ANS's national issuer number, the EF.SN.ICC
/// issuer prefix `80 25 00 00 01` (docs/data-and-certs.md §2.2, docs/card-notes.md §3).
pub(crate) const TOKEN_ISSUER_ID: &str = "8025000001";

/// Current cards: 3 years from 2026-01-01 (the real TEST CPE is valid 3 years, §2.1).
const CURRENT: Period = Period {
    not_before: Date::ymd(2026, 1, 1),
    not_after: Date::ymd(2029, 1, 1),
};
/// The expired card: 2019-01-01 → 2022-01-01, entirely in the past.
const EXPIRED: Period = Period {
    not_before: Date::ymd(2019, 1, 1),
    not_after: Date::ymd(2022, 1, 1),
};

const CONTACT: &[Role] = &[Role::Auth, Role::Sign];
const CONTACTLESS: &[Role] = &[Role::Tech];

/// The hospital of the CPE, where the CPF student also trains. G07 prefix 1 = FINESS; `0B…` is
/// the test FINESS range (§2.7).
const HOSPITAL: Structure = Structure {
    name: "CENTRE HOSPITALIER TEST CPX",
    struct_id: "10B0012345",
    sector: "SA01", // Etablissement public de santé
};
/// A second hospital, where the doctor of `cps3-doctor` also works (situation 2). Its 12-byte name
/// is pinned by crates/cpx-emulator/tests/vectors/business_data.apdu.
const SECOND_HOSPITAL: Structure = Structure {
    name: "HOPITAL TEST",
    struct_id: "10B0067890",
    sector: "SA01",
};
/// The private practice of the CPA. G07 prefix 3 = SIRET (14 digits, Luhn-valid).
const PRACTICE: Structure = Structure {
    name: "CABINET MEDICAL TEST CPX",
    struct_id: "399900001100018",
    sector: "SA07", // Cabinet individuel
};
/// The pharmacist's pharmacy. G07 prefix 3 = SIRET (Luhn-valid, SIREN `999000029` too).
const PHARMACY: Structure = Structure {
    name: "PHARMACIE TEST",
    struct_id: "399900002900028",
    sector: "SA33", // Pharmacie d'officine
};

/// DICO R01 "Qualifié en Médecine Générale (SM)".
const GENERAL_PRACTICE: Option<&str> = Some("SM26");

/// A CPS3 card with full PIN/PUK counters, no EF_ACTUA.
const fn cps3(specialty: Option<&'static str>, situations: &'static [Situation]) -> Image {
    Image {
        kind: ImageKind::Cps3,
        secrets: Secrets::Fresh,
        ef_actua: None,
        specialty,
        situations,
    }
}

/// A general practitioner in a cabinet of their own, on a CPS3.
const GP_CPS3: Image = cps3(GENERAL_PRACTICE, &[Situation::Cabinet { rang: 0 }]);

/// A médecin (G15 code 10) with an RPPS national id (G08 prefix 8).
const fn doctor(rpps_id: &'static str, given_name: &'static str, surname: &'static str) -> Holder {
    Holder {
        national_id: rpps_id,
        national_id_prefix_len: 1,
        given_name,
        surname,
        title: "Médecin",
    }
}

/// All test cards, in README order.
pub(crate) const CARDS: &[Card] = &[
    Card {
        stem: "cps3-doctor",
        card_type: CardType::Cps,
        card_serial: "9900000001",
        holder: doctor("899700000013", "ALICE", "MEDECIN-TEST0001"),
        organisation: None,
        period: CURRENT,
        roles: CONTACT,
        purpose: "CPS3 of a médecin (RPPS): the default happy-path card",
        image: cps3(
            GENERAL_PRACTICE,
            &[Situation::Cabinet { rang: 0 }, Situation::At(SECOND_HOSPITAL)],
        ),
    },
    Card {
        stem: "cps3-pharmacist",
        card_type: CardType::Cps,
        card_serial: "9900000002",
        holder: Holder {
            national_id: "899700000021",
            national_id_prefix_len: 1,
            given_name: "BRUNO",
            surname: "PHARMACIEN-TEST0002",
            title: "Pharmacien",
        },
        organisation: None,
        period: CURRENT,
        roles: CONTACT,
        purpose: "CPS3 of a pharmacien (RPPS)",
        image: Image {
            ef_actua: Some(EfActua {
                start: "20250101000000",
                end: "20301231235959",
            }),
            ..cps3(None, &[Situation::At(PHARMACY)])
        },
    },
    Card {
        stem: "cpe",
        card_type: CardType::Cpe,
        card_serial: "9900000003",
        holder: Holder {
            // G08 prefix 3 = "FINESS/N° de registre": FINESS + "/" + internal id, like the
            // real `30B0057881/CPET0002` (§2.1). `0B…` is the test FINESS range (§2.7).
            national_id: "30B0012345/CPET0003",
            national_id_prefix_len: 1,
            given_name: "CHLOE",
            surname: "ADMINISTRATIF-TEST0003",
            title: "Personnel santé ou social",
        },
        organisation: Some(Organisation {
            state: "Paris (75)",
            structure: HOSPITAL,
        }),
        period: CURRENT,
        roles: CONTACT,
        purpose: "CPE of an establishment employee (FINESS), modelled on the real TEST CPE",
        image: cps3(None, &[Situation::Employer]),
    },
    Card {
        stem: "cpa",
        card_type: CardType::Cpa,
        card_serial: "9900000004",
        holder: Holder {
            // G08 prefix 5 = "SIRET/N° de registre", like `500000000029751/CPAT0001` (§2.3).
            national_id: "599900001100018/CPAT0004",
            national_id_prefix_len: 1,
            given_name: "DAVID",
            surname: "SECRETAIRE-TEST0004",
            // Not observed on a real CPA: the real CPE label is reused (README).
            title: "Personnel santé ou social",
        },
        organisation: Some(Organisation {
            state: "Rhône (69)",
            structure: PRACTICE,
        }),
        period: CURRENT,
        roles: CONTACT,
        purpose: "CPA of a staff member of a private practice (SIRET)",
        image: cps3(None, &[Situation::Employer]),
    },
    Card {
        stem: "cpf",
        card_type: CardType::Cpf,
        card_serial: "9900000005",
        holder: Holder {
            national_id: "899700000054",
            national_id_prefix_len: 1,
            given_name: "EMMA",
            surname: "ETUDIANT-TEST0005",
            // DICO G16 "Professions en formation", code 10.
            title: "Médecin en formation",
        },
        organisation: None,
        period: CURRENT,
        roles: CONTACT,
        purpose: "CPF of a médecin en formation (RPPS)",
        image: cps3(GENERAL_PRACTICE, &[Situation::At(HOSPITAL)]),
    },
    Card {
        stem: "cps4-doctor",
        card_type: CardType::Cps,
        card_serial: "9900000006",
        holder: doctor("899700000062", "FABIEN", "MEDECIN-TEST0006"),
        organisation: None,
        period: CURRENT,
        roles: CONTACT,
        purpose: "CPS4 of a médecin (no CPS4-specific certificate difference is known)",
        image: Image {
            kind: ImageKind::Cps4,
            ..GP_CPS3
        },
    },
    Card {
        stem: "cps3-expired",
        card_type: CardType::Cps,
        card_serial: "9900000007",
        holder: doctor("899700000070", "GABRIELLE", "MEDECIN-TEST0007"),
        organisation: None,
        period: EXPIRED,
        roles: CONTACT,
        purpose: "CPS3 whose two certificates expired (2019-01-01 → 2022-01-01)",
        image: GP_CPS3,
    },
    Card {
        stem: "cps3-pin-blocked",
        card_type: CardType::Cps,
        card_serial: "9900000008",
        holder: doctor("899700000088", "HUGO", "MEDECIN-TEST0008"),
        organisation: None,
        period: CURRENT,
        roles: CONTACT,
        purpose: "CPS3 whose PIN is blocked (PIN state lives in the emulator image)",
        image: Image {
            secrets: Secrets::PinBlocked,
            ..GP_CPS3
        },
    },
    Card {
        stem: "cps3-puk-blocked",
        card_type: CardType::Cps,
        card_serial: "9900000009",
        holder: doctor("899700000096", "INES", "MEDECIN-TEST0009"),
        organisation: None,
        period: CURRENT,
        roles: CONTACT,
        purpose: "CPS3 whose PIN and PUK are blocked (state lives in the emulator image)",
        image: Image {
            secrets: Secrets::PukBlocked,
            ..GP_CPS3
        },
    },
    Card {
        stem: "cps3-contactless",
        card_type: CardType::Cps,
        card_serial: "9900000010",
        holder: doctor("899700000104", "JULES", "MEDECIN-TEST0010"),
        organisation: None,
        period: CURRENT,
        roles: CONTACTLESS,
        purpose: "CPS3 seen through its contactless interface: technical certificate only",
        image: Image {
            kind: ImageKind::Cps3Contactless,
            ..GP_CPS3
        },
    },
];

/// The DICO table, code and label matching a subject `title`, when the title is a DICO
/// profession label (G15 "Professions", G16 "Professions en formation").
pub(crate) fn profession(title: &str) -> Option<(&'static str, &'static str)> {
    match title {
        "Médecin" => Some(("G15", "10")),
        "Pharmacien" => Some(("G15", "21")),
        "Médecin en formation" => Some(("G16", "10")),
        _ => None,
    }
}

/// DICO G08 label of a national-id type prefix.
pub(crate) fn g08_label(prefix: &str) -> Option<&'static str> {
    match prefix {
        "3" => Some("FINESS/N° de registre"),
        "5" => Some("SIRET/N° de registre"),
        "8" => Some("N° RPPS"),
        _ => None,
    }
}

/// DICO G07 label of a structure-id type prefix.
pub(crate) fn g07_label(prefix: &str) -> Option<&'static str> {
    match prefix {
        "1" => Some("FINESS"),
        "3" => Some("SIRET"),
        _ => None,
    }
}
