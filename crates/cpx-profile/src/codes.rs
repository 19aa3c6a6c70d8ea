//! Code tables from the Cryptolib's `DICO-FR.GIP` (docs/data-and-certs.md §1.6), for labels only.
//!
//! The tables in `codes/tables.rs` are derived from `DICO-FR.GIP` version "02.18 - 28/02/2020"
//! (not shipped in this repository). To regenerate them from a copy of the file:
//!
//! ```text
//! python3 - <<'EOF'
//! rows = {}
//! for line in open('DICO-FR.GIP', encoding='latin-1'):
//!     f = line.rstrip('\r\n').split('\t')
//!     if len(f) >= 6: rows.setdefault(f[0], []).append((f[1], f[5]))
//! for t in ['G01', 'G02', 'G07', 'G08', 'G15', 'G16', 'R01', 'R02']:
//!     print(t, rows[t])   # then format as in tables.rs
//! EOF
//! ```
//!
//! ```
//! use cpx_profile::codes::{self, Table};
//!
//! assert_eq!(codes::label(Table::G15, "10"), Some("Médecin"));
//! assert_eq!(codes::label(Table::R02, "SA07"), Some("Cabinet individuel"));
//! assert_eq!(codes::code_for_label(Table::G16, "Médecin en formation"), Some("10"));
//! assert_eq!(codes::label(Table::G02, "07"), None);
//! ```

mod tables;

use serde::Serialize;

/// The DICO tables this crate knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Table {
    /// Catégories cartes (TRE_G01; certificate ext `1.2.250.1.71.1.2.5`).
    G01,
    /// Types de cartes CPS (TRE_G02; certificate ext `1.2.250.1.71.1.2.2`).
    G02,
    /// Types d'identifiants des structures (Struct_IdNat prefix).
    G07,
    /// Types d'identifiants des personnes (IdNat_PS prefix).
    G08,
    /// Professions.
    G15,
    /// Professions en formation (CPF).
    G16,
    /// Spécialités RPPS (TRE_R01).
    R01,
    /// Secteurs d'activité RPPS (TRE_R02).
    R02,
}

impl Table {
    /// The table's name in DICO (`"G15"`).
    pub fn name(self) -> &'static str {
        match self {
            Table::G01 => "G01",
            Table::G02 => "G02",
            Table::G07 => "G07",
            Table::G08 => "G08",
            Table::G15 => "G15",
            Table::G16 => "G16",
            Table::R01 => "R01",
            Table::R02 => "R02",
        }
    }

    fn rows(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Table::G01 => tables::G01,
            Table::G02 => tables::G02,
            Table::G07 => tables::G07,
            Table::G08 => tables::G08,
            Table::G15 => tables::G15,
            Table::G16 => tables::G16,
            Table::R01 => tables::R01,
            Table::R02 => tables::R02,
        }
    }
}

/// The DICO label of `code` in `table`, `None` when the table has no such code.
pub fn label(table: Table, code: &str) -> Option<&'static str> {
    table.rows().iter().find(|(c, _)| *c == code).map(|(_, l)| *l)
}

/// The code whose DICO label is exactly `label`, `None` when none is.
pub fn code_for_label(table: Table, label: &str) -> Option<&'static str> {
    table.rows().iter().find(|(_, l)| *l == label).map(|(c, _)| *c)
}

/// A code with its table and label, as shown in profiles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Code {
    /// DICO table name (`"G15"`, `"R01"`, …).
    pub table: String,
    /// The code as found.
    pub code: String,
    /// Its DICO label, `None` when the code is not in the 2020 dictionary.
    pub label: Option<String>,
}

impl Code {
    /// `code` of `table`, labelled when known.
    pub fn new(table: Table, code: &str) -> Code {
        Code {
            table: table.name().to_owned(),
            code: code.to_owned(),
            label: label(table, code).map(str::to_owned),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_hold_what_the_notes_cite() {
        // docs/data-and-certs.md §1.6 samples.
        assert_eq!(
            label(Table::G01, "80"),
            Some("Carte de PS ou de Personnel de Santé de TEST")
        );
        assert_eq!(
            label(Table::G02, "02"),
            Some("Carte de Personnel d'Etablissement (CDE/CPE)")
        );
        assert_eq!(label(Table::G07, "1"), Some("FINESS"));
        assert_eq!(label(Table::G08, "8"), Some("N° RPPS"));
        assert_eq!(label(Table::G15, "21"), Some("Pharmacien"));
        assert_eq!(
            label(Table::R01, "SM26"),
            Some("Qualifié en Médecine Générale (SM)")
        );
        assert_eq!(label(Table::R02, "SA33"), Some("Pharmacie d'officine"));
        assert_eq!(Table::R01.rows().len(), 244);
        assert_eq!(Table::R02.rows().len(), 63);
        assert_eq!(Code::new(Table::R02, "SA99").label, None);
    }
}
