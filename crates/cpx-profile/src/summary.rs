//! The holder facts in the one JSON layout every caller shows: `cpx status --json`'s `holder`
//! object (docs/cli-json.md) and the `holder` of [`Profile::to_json`], produced here so the CLI
//! and any other program agree.

use serde::Serialize;

use crate::codes::Code;
use crate::national_id::IdStatus;
use crate::profile::Profile;

/// Who holds the card, flattened for display: the `holder` object of `cpx status --json`
/// (docs/cli-json.md) and of [`Profile::to_json`]. Field order is the JSON's. Every field of
/// [`crate::Holder`] is here (the national id as its value, scheme and status), plus the
/// organisation's name.
///
/// ```
/// use cpx_profile::{Profile, Timestamp, TrustStore};
///
/// let profile = Profile::builder().build(&TrustStore::new(), Timestamp::now());
/// let holder = profile.holder_summary();
/// assert_eq!(holder.surname, None);
/// assert_eq!(
///     serde_json::to_string(&holder).unwrap(),
///     r#"{"national_id":null,"national_id_scheme":null,"national_id_status":null,"given_name":null,"surname":null,"title":null,"profession":null,"organisation":null,"pseudonym":null,"specialty":null,"upn":null}"#
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HolderSummary {
    /// IdNat_PS, e.g. `899700000013`.
    pub national_id: Option<String>,
    /// `rpps`, `adeli`, `finess`, …
    pub national_id_scheme: Option<String>,
    /// Whether the identifier passed its format and key checks.
    pub national_id_status: Option<IdStatus>,
    /// Subject GN.
    pub given_name: Option<String>,
    /// Subject SN.
    pub surname: Option<String>,
    /// Subject title.
    pub title: Option<String>,
    /// The profession (DICO G15/G16) the title names.
    pub profession: Option<Code>,
    /// CPE/CPA: the establishment's name.
    pub organisation: Option<String>,
    /// Subject pseudonym (CPE "non directement nominative").
    pub pseudonym: Option<String>,
    /// Specialty (DICO R01), from the `CPS_INFO_PS` business data object only: `None` when the
    /// profile was built without it.
    pub specialty: Option<Code>,
    /// subjectAltName UPN (`<IdNat>@carte-cps.fr`).
    pub upn: Option<String>,
}

impl Profile {
    /// The holder facts in `cpx status`'s layout (see [`HolderSummary`]).
    pub fn holder_summary(&self) -> HolderSummary {
        let h = &self.holder;
        HolderSummary {
            national_id: h.national_id.as_ref().map(|i| i.value.clone()),
            national_id_scheme: h.national_id.as_ref().and_then(|i| i.scheme.clone()),
            national_id_status: h.national_id.as_ref().map(|i| i.status),
            given_name: h.given_name.clone(),
            surname: h.surname.clone(),
            title: h.title.clone(),
            profession: h.profession.clone(),
            organisation: self.organisation.as_ref().and_then(|o| o.name.clone()),
            pseudonym: h.pseudonym.clone(),
            specialty: h.specialty.clone(),
            upn: h.upn.clone(),
        }
    }
}
