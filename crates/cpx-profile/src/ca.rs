//! Which CA a DN names: IGC-Santé level and branch, the ANS TEST PKI, our test PKI, or the
//! legacy GIP-CPS PKIs.
//!
//! Naming (docs/card-notes.md §8, docs/data-and-certs.md §2.4, test-vectors/README.md):
//! - production: `C=FR, O=ASIP-SANTE, OU=0002 187512751, OU=IGC-SANTE, CN=…` with roots
//!   `AC RACINE IGC-SANTE {ELEMENTAIRE|STANDARD|FORT}` and intermediates
//!   `AC IGC-SANTE {ELEMENTAIRE|STANDARD|FORT} {PERSONNES|ORGANISATIONS}`;
//! - ANS TEST: `OU=IGC-SANTE TEST`, CN prefixed `TEST `;
//! - this repository's test PKI: `OU=IGC-SANTE TEST`, CN prefixed `TEST CPX `;
//! - legacy IGC-CPS2ter/2bis: `O=GIP-CPS` (`O=GIP-CPS-TEST` for tests).
//!
//! ```
//! use cpx_profile::ca::{self, Branch, Level, Pki};
//!
//! let ca = ca::classify_parts(Some("ASIP-SANTE"), &["0002 187512751", "IGC-SANTE"], Some("AC IGC-SANTE FORT PERSONNES"));
//! assert_eq!((ca.pki, ca.level, ca.branch, ca.root), (Pki::IgcSante, Some(Level::Fort), Some(Branch::Personnes), Some(false)));
//! ```

use serde::Serialize;

use crate::dn::Dn;
use crate::oids;

/// The PKI a CA belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Pki {
    /// Production IGC-Santé (`OU=IGC-SANTE`).
    IgcSante,
    /// The ANS IGC-Santé TEST PKI (`OU=IGC-SANTE TEST`, CN `TEST AC …`).
    IgcSanteTest,
    /// This repository's test PKI (`OU=IGC-SANTE TEST`, CN `TEST CPX AC …`), never to be trusted.
    CpxTest,
    /// Legacy GIP-CPS PKI (IGC-CPS2ter/2bis).
    GipCps,
    /// Legacy GIP-CPS TEST PKI.
    GipCpsTest,
    /// None of the above.
    Unknown,
}

/// IGC-Santé assurance level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// ÉLÉMENTAIRE.
    Elementaire,
    /// STANDARD.
    Standard,
    /// FORT.
    Fort,
}

/// IGC-Santé branch (intermediate CAs only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Branch {
    /// PERSONNES: certificates of people (cards).
    Personnes,
    /// ORGANISATIONS: certificates of structures and servers.
    Organisations,
}

/// What a CA's DN says about it. Fields the name does not tell are `None`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaInfo {
    /// The CN.
    pub name: Option<String>,
    /// The PKI.
    pub pki: Pki,
    /// `true` for the PKI's TEST variants (ANS TEST, our test PKI, GIP-CPS TEST).
    pub test: bool,
    /// Assurance level, from the CN.
    pub level: Option<Level>,
    /// Branch, from an intermediate's CN.
    pub branch: Option<Branch>,
    /// `Some(true)` for an `AC RACINE` name, `Some(false)` for an intermediate name.
    pub root: Option<bool>,
}

/// Classify the CA a DN names (typically a certificate's issuer).
pub fn classify(dn: &Dn) -> CaInfo {
    let units = dn.all(oids::OU);
    classify_parts(dn.first(oids::O), &units, dn.common_name())
}

/// Classify from the O, OU and CN values.
pub fn classify_parts(o: Option<&str>, ous: &[&str], cn: Option<&str>) -> CaInfo {
    let mut info = CaInfo {
        name: cn.map(str::to_owned),
        pki: Pki::Unknown,
        test: false,
        level: None,
        branch: None,
        root: None,
    };
    match o {
        Some("GIP-CPS") => info.pki = Pki::GipCps,
        Some("GIP-CPS-TEST") => (info.pki, info.test) = (Pki::GipCpsTest, true),
        Some("ASIP-SANTE") => {
            let cn = cn.unwrap_or_default();
            if ous.contains(&"IGC-SANTE TEST") {
                info.test = true;
                info.pki = if cn.starts_with("TEST CPX ") {
                    Pki::CpxTest
                } else {
                    Pki::IgcSanteTest
                };
            } else if ous.contains(&"IGC-SANTE") {
                info.pki = Pki::IgcSante;
            } else {
                return info;
            }
            let base = cn
                .strip_prefix("TEST CPX ")
                .or_else(|| cn.strip_prefix("TEST "))
                .unwrap_or(cn);
            let base = if info.test { base } else { cn };
            let words: Vec<&str> = base.split(' ').collect();
            match words.as_slice() {
                ["AC", "RACINE", "IGC-SANTE", level] => {
                    info.level = level_of(level);
                    info.root = info.level.map(|_| true);
                }
                ["AC", "IGC-SANTE", level, branch] => {
                    info.level = level_of(level);
                    info.branch = match *branch {
                        "PERSONNES" => Some(Branch::Personnes),
                        "ORGANISATIONS" => Some(Branch::Organisations),
                        _ => None,
                    };
                    info.root = (info.level.is_some() && info.branch.is_some()).then_some(false);
                }
                _ => {}
            }
        }
        _ => {}
    }
    info
}

fn level_of(word: &str) -> Option<Level> {
    match word {
        "ELEMENTAIRE" => Some(Level::Elementaire),
        "STANDARD" => Some(Level::Standard),
        "FORT" => Some(Level::Fort),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROD: &[&str] = &["0002 187512751", "IGC-SANTE"];
    const TEST: &[&str] = &["0002 187512751", "IGC-SANTE TEST"];

    #[test]
    fn names() {
        let c = |ous, cn| classify_parts(Some("ASIP-SANTE"), ous, Some(cn));
        let root = c(PROD, "AC RACINE IGC-SANTE ELEMENTAIRE");
        assert_eq!(
            (root.pki, root.level, root.root, root.test),
            (Pki::IgcSante, Some(Level::Elementaire), Some(true), false)
        );
        let ans = c(TEST, "TEST AC IGC-SANTE STANDARD PERSONNES"); // the real TEST CPE's issuer
        assert_eq!(
            (ans.pki, ans.level, ans.branch),
            (Pki::IgcSanteTest, Some(Level::Standard), Some(Branch::Personnes))
        );
        let ours = c(TEST, "TEST CPX AC IGC-SANTE FORT ORGANISATIONS");
        assert_eq!(
            (ours.pki, ours.level, ours.branch, ours.test),
            (Pki::CpxTest, Some(Level::Fort), Some(Branch::Organisations), true)
        );
        // A production OU with a "TEST" CN is not stripped: the level stays unknown.
        assert_eq!(c(PROD, "TEST AC IGC-SANTE FORT PERSONNES").level, None);
        assert_eq!(c(PROD, "AC IGC-SANTE FORT AUTRES").root, None);
        assert_eq!(c(&["X"], "AC IGC-SANTE FORT PERSONNES").pki, Pki::Unknown);
        let legacy = classify_parts(Some("GIP-CPS-TEST"), &["AC-CLASSE-4-TEST"], None);
        assert_eq!((legacy.pki, legacy.test), (Pki::GipCpsTest, true));
        assert_eq!(classify_parts(None, &[], None).pki, Pki::Unknown);
    }
}
