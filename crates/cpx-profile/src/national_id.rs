//! National identifiers: IdNat_PS (people, DICO G08 prefix) and Struct_IdNat (structures, DICO
//! G07 prefix), parsed and validated (docs/data-and-certs.md §2.7, docs/card-notes.md §8).
//!
//! | person prefix | identifier | check |
//! |---|---|---|
//! | `0` | ADELI, 9 chars | length, digits (département `2A`/`2B`/`0B` allowed) |
//! | `1` | cabinet ADELI-rang (11) `/` internal id | length, digits, `/` |
//! | `2` | DRASS (legacy) | format not public: unchecked |
//! | `3` | FINESS (9) `/` internal id | length, digits, `/` |
//! | `4` | SIREN (9) `/` internal id | length, digits, `/` |
//! | `5` | SIRET (14) `/` internal id | length, digits, `/` |
//! | `6` | cabinet RPPS-rang (14) `/` internal id | length, digits, Luhn, `/` |
//! | `8` | RPPS, 11 digits | length, digits, Luhn |
//! | `9` | étudiant (legacy) | format not public: unchecked |
//! | `10` | MSSanté address | one `@` |
//!
//! | structure prefix | identifier | check |
//! |---|---|---|
//! | `0` | cabinet ADELI-rang, 11 chars | length, digits |
//! | `1` | FINESS, 9 chars | length, digits (`2A`/`2B`/`0B`) |
//! | `2` | SIREN, 9 digits | length, digits |
//! | `3` | SIRET, 14 digits | length, digits |
//! | `4` | cabinet RPPS-rang, 14 digits | length, digits, Luhn |
//!
//! Luhn is enforced only where the notes establish it (RPPS and RPPS-rang, docs/data-and-certs.md §2.7);
//! SIREN/SIRET keys have known exceptions, so they are not checked.
//!
//! ```
//! use cpx_profile::{NationalId, IdStatus};
//!
//! let id = NationalId::person("899700000013");
//! assert_eq!(id.scheme.as_deref(), Some("rpps"));
//! assert_eq!(id.type_label.as_deref(), Some("N° RPPS"));
//! assert_eq!(id.number, "99700000013");
//! assert_eq!(id.status, IdStatus::Valid);
//!
//! let id = NationalId::person("30B0012345/CPET0003");
//! assert_eq!((id.number.as_str(), id.internal_id.as_deref()), ("0B0012345", Some("CPET0003")));
//!
//! assert_eq!(NationalId::person("899700000014").status, IdStatus::Invalid); // Luhn
//! ```

use serde::Serialize;

use crate::codes::{self, Table};

/// Person or structure identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IdKind {
    /// IdNat_PS: prefix from DICO G08.
    Person,
    /// Struct_IdNat: prefix from DICO G07.
    Structure,
}

/// Outcome of the format check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IdStatus {
    /// Known prefix, and the identifier has the documented length, characters and key.
    Valid,
    /// Unknown prefix, or a documented rule is broken (`problem` says which).
    Invalid,
    /// Known prefix whose format is not public (legacy DRASS, étudiant): not checked.
    Unchecked,
}

/// A parsed national identifier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NationalId {
    /// The identifier as read (CN, OU, or a business data field).
    pub value: String,
    /// Person or structure.
    pub kind: IdKind,
    /// The type prefix (DICO G08 or G07 code), `None` when unknown.
    pub type_code: Option<String>,
    /// DICO label of the prefix (e.g. `N° RPPS`, `FINESS/N° de registre`).
    pub type_label: Option<String>,
    /// Short scheme name: `rpps`, `adeli`, `adeli_rang`, `rpps_rang`, `finess`, `siren`,
    /// `siret`, `drass`, `student`, `mssante`; `None` when the prefix is unknown.
    pub scheme: Option<String>,
    /// Everything after the prefix (`0B0012345/CPET0003`).
    pub identifier: String,
    /// The registry number: after the prefix, before any `/`.
    pub number: String,
    /// The internal id after `/` (CPE/CPA registre numbers), `None` when there is no `/`.
    pub internal_id: Option<String>,
    /// Format check outcome.
    pub status: IdStatus,
    /// Why the status is not `valid`.
    pub problem: Option<String>,
}

/// Format of the registry number.
#[derive(Clone, Copy)]
enum Number {
    /// Digits only, this many.
    Digits(usize),
    /// Digits only, this many, Luhn over all of them.
    Luhn(usize),
    /// This many chars, département form: first char digit, second digit or A/B, rest digits.
    Departement(usize),
    /// Not public.
    Unknown,
    /// user@domain.
    Mail,
}

/// (prefix, scheme, number format, internal id after `/` required).
const PERSON: &[(&str, &str, Number, bool)] = &[
    ("0", "adeli", Number::Departement(9), false),
    ("1", "adeli_rang", Number::Departement(11), true),
    ("2", "drass", Number::Unknown, false),
    ("3", "finess", Number::Departement(9), true),
    ("4", "siren", Number::Digits(9), true),
    ("5", "siret", Number::Digits(14), true),
    ("6", "rpps_rang", Number::Luhn(14), true),
    ("8", "rpps", Number::Luhn(11), false),
    ("9", "student", Number::Unknown, false),
    ("10", "mssante", Number::Mail, false),
];

const STRUCTURE: &[(&str, &str, Number, bool)] = &[
    ("0", "adeli_rang", Number::Departement(11), false),
    ("1", "finess", Number::Departement(9), false),
    ("2", "siren", Number::Digits(9), false),
    ("3", "siret", Number::Digits(14), false),
    ("4", "rpps_rang", Number::Luhn(14), false),
];

impl NationalId {
    /// Parse an IdNat_PS (subject CN of a CPx certificate, docs/data-and-certs.md §2.3).
    pub fn person(value: &str) -> NationalId {
        // "10" (MSSanté) is the only two-digit prefix; it carries an address, so an '@'.
        let prefix = if value.starts_with("10") && value.contains('@') {
            "10"
        } else {
            first_char(value)
        };
        Self::parse(value, IdKind::Person, prefix, PERSON, Table::G08)
    }

    /// Parse a Struct_IdNat (subject OU of CPE/CPA certificates, situation tag `85`).
    pub fn structure(value: &str) -> NationalId {
        Self::parse(value, IdKind::Structure, first_char(value), STRUCTURE, Table::G07)
    }

    fn parse(
        value: &str,
        kind: IdKind,
        prefix: &str,
        rules: &[(&str, &str, Number, bool)],
        table: Table,
    ) -> NationalId {
        let identifier = value.get(prefix.len()..).unwrap_or_default();
        let (number, internal_id) = match identifier.split_once('/') {
            Some((n, i)) => (n, Some(i.to_owned())),
            None => (identifier, None),
        };
        let mut id = NationalId {
            value: value.to_owned(),
            kind,
            type_code: None,
            type_label: None,
            scheme: None,
            identifier: identifier.to_owned(),
            number: number.to_owned(),
            internal_id,
            status: IdStatus::Invalid,
            problem: None,
        };
        let Some((_, scheme, format, needs_internal)) = rules.iter().find(|r| r.0 == prefix) else {
            id.problem = Some(if value.is_empty() {
                "empty".into()
            } else {
                format!("unknown prefix {prefix:?}")
            });
            return id;
        };
        id.type_code = Some(prefix.to_owned());
        id.type_label = codes::label(table, prefix).map(str::to_owned);
        id.scheme = Some((*scheme).to_owned());
        let problem = check_number(*format, number).or_else(|| match (&id.internal_id, needs_internal) {
            (None, true) => Some("missing \"/<internal id>\"".to_owned()),
            (Some(i), true) if i.is_empty() => Some("empty internal id after \"/\"".to_owned()),
            (Some(_), false) if !matches!(format, Number::Unknown) => Some("unexpected \"/\"".to_owned()),
            _ => None,
        });
        (id.status, id.problem) = match (problem, format) {
            (Some(p), _) => (IdStatus::Invalid, Some(p)),
            (None, Number::Unknown) => (IdStatus::Unchecked, Some("format not public".to_owned())),
            (None, _) => (IdStatus::Valid, None),
        };
        id
    }
}

fn first_char(s: &str) -> &str {
    s.char_indices().nth(1).map_or(s, |(i, _)| &s[..i])
}

fn check_number(format: Number, n: &str) -> Option<String> {
    let len = |want: usize| {
        (n.chars().count() != want).then(|| format!("{} characters, expected {want}", n.chars().count()))
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    match format {
        Number::Digits(l) => len(l).or_else(|| (!digits(n)).then(|| "not all digits".to_owned())),
        Number::Luhn(l) => len(l)
            .or_else(|| (!digits(n)).then(|| "not all digits".to_owned()))
            .or_else(|| (!luhn(n)).then(|| "Luhn check digit wrong".to_owned())),
        Number::Departement(l) => len(l).or_else(|| {
            let b = n.as_bytes();
            let ok = b.first().is_some_and(u8::is_ascii_digit)
                && b.get(1)
                    .is_some_and(|c| c.is_ascii_digit() || *c == b'A' || *c == b'B')
                && b.get(2..).is_some_and(digits_bytes);
            (!ok).then(|| "not digits (only a département letter A/B in position 2 is allowed)".to_owned())
        }),
        Number::Unknown => None,
        Number::Mail => match n.split_once('@') {
            Some((user, domain)) if !user.is_empty() && !domain.is_empty() && !domain.contains('@') => None,
            _ => Some("not an address user@domain".to_owned()),
        },
    }
}

fn digits_bytes(b: &[u8]) -> bool {
    b.iter().all(u8::is_ascii_digit)
}

/// Luhn (mod 10) over all digits, the last one being the key.
pub(crate) fn luhn(digits: &str) -> bool {
    let mut sum = 0u32;
    for (i, c) in digits.bytes().rev().enumerate() {
        let mut d = u32::from(c.wrapping_sub(b'0'));
        if d > 9 {
            return false;
        }
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    !digits.is_empty() && sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_on_real_samples() {
        // docs/data-and-certs.md §2.7: every real sample passes; the MOS illustration fails.
        for n in [
            "10002813839",
            "99700735741",
            "99700075122",
            "99700367917",
            "99700218896",
            "99700735741008",
        ] {
            assert!(luhn(n), "{n}");
        }
        assert!(!luhn("10005678901"));
        assert!(!luhn(""));
        assert!(!luhn("12a"));
    }

    #[test]
    fn person_ids() {
        let rpps = NationalId::person("810002813839");
        assert_eq!(
            (rpps.status, rpps.scheme.as_deref()),
            (IdStatus::Valid, Some("rpps"))
        );
        let cpe = NationalId::person("30B0057881/CPET0002"); // the real TEST CPE, docs/data-and-certs.md §2.1
        assert_eq!(cpe.status, IdStatus::Valid);
        assert_eq!(cpe.type_label.as_deref(), Some("FINESS/N° de registre"));
        assert_eq!(cpe.identifier, "0B0057881/CPET0002");
        let cpa = NationalId::person("500000000029751/CPAT0001"); // [CP], docs/data-and-certs.md §2.3
        assert_eq!(
            (cpa.status, cpa.number.as_str()),
            (IdStatus::Valid, "00000000029751")
        );
        let adeli = NationalId::person("00B7010446"); // [CP] older test card
        assert_eq!(
            (adeli.status, adeli.scheme.as_deref()),
            (IdStatus::Valid, Some("adeli"))
        );
        let mss = NationalId::person("10jean.dupont@medecin.mssante.fr");
        assert_eq!(
            (mss.status, mss.type_code.as_deref()),
            (IdStatus::Valid, Some("10"))
        );
        assert_eq!(NationalId::person("2123").status, IdStatus::Unchecked);
        let cab = NationalId::person("112345678901/00001"); // MOS example
        assert_eq!(cab.status, IdStatus::Valid);
    }

    #[test]
    fn invalid_person_ids() {
        let p = |s: &str| NationalId::person(s);
        assert_eq!(p("").problem.as_deref(), Some("empty"));
        assert_eq!(p("7123").problem.as_deref(), Some("unknown prefix \"7\""));
        assert_eq!(p("7123").type_code, None);
        assert_eq!(
            p("89970000001").problem.as_deref(),
            Some("10 characters, expected 11")
        );
        assert_eq!(p("8997000000A3").problem.as_deref(), Some("not all digits"));
        assert_eq!(
            p("899700000014").problem.as_deref(),
            Some("Luhn check digit wrong")
        );
        assert_eq!(
            p("30B0012345").problem.as_deref(),
            Some("missing \"/<internal id>\"")
        );
        assert_eq!(
            p("30B0012345/").problem.as_deref(),
            Some("empty internal id after \"/\"")
        );
        assert_eq!(p("899700000013/X").problem.as_deref(), Some("unexpected \"/\""));
        assert_eq!(p("30C0012345/X").status, IdStatus::Invalid);
        assert_eq!(p("é99").status, IdStatus::Invalid);
        assert_eq!(p("10@").status, IdStatus::Invalid);
    }

    #[test]
    fn structure_ids() {
        let s = |v: &str| NationalId::structure(v);
        assert_eq!(s("10B0307377").status, IdStatus::Valid); // [DEH] situation 1
        assert_eq!(s("499700735741008").status, IdStatus::Valid); // [DEH] situation 2
        assert_eq!(
            s("499700735741008").type_label.as_deref(),
            Some("Id Cabinet RPPS")
        );
        assert_eq!(s("300000000029751").status, IdStatus::Valid); // [CP]
        assert_eq!(
            s("499700735741009").problem.as_deref(),
            Some("Luhn check digit wrong")
        );
        assert_eq!(s("1760021832").status, IdStatus::Valid);
        assert_eq!(s("10B0012345/X").problem.as_deref(), Some("unexpected \"/\""));
        assert_eq!(s("5123").problem.as_deref(), Some("unknown prefix \"5\""));
    }
}
