//! The whole profile of a card: certificates with roles and chains, card, holder, organisation,
//! business data, at one instant.

use serde::Serialize;

use crate::business::{self, BusinessObject, Decoded};
use crate::ca::{self, CaInfo};
use crate::cert::Certificate;
use crate::chain::{ChainReport, ChainStatus, TrustStore};
use crate::expiry::{Expiry, ExpiryStatus};
use crate::holder::{self, Card, Holder, Organisation};
use crate::role::Role;
use crate::summary::HolderSummary;
use crate::timestamp::Timestamp;

/// Version of the JSON layout; bumped on any incompatible change (see `json` module docs).
/// 2: `holder` is [`HolderSummary`], the CLI's layout (`national_id` a string, with
/// `national_id_scheme` and `national_id_status` beside it).
pub const SCHEMA_VERSION: u32 = 2;

/// One certificate of the profile, with what depends on the instant and the trust store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertificateReport {
    /// Position in the input (identification only: the role comes from the usages).
    pub index: usize,
    /// Where the caller read it from (e.g. a PKCS#11 label or a file name), if given.
    pub source: Option<String>,
    /// The parsed certificate (its fields appear inline in the JSON).
    #[serde(flatten)]
    pub certificate: Certificate,
    /// What the issuer DN says about the issuing CA.
    pub issuer_ca: CaInfo,
    /// Expiry status at the instant.
    pub expiry: Expiry,
    /// Chain validation at the instant.
    pub chain: ChainReport,
}

/// An input certificate that did not parse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InputError {
    /// Position in the input.
    pub index: usize,
    /// Where the caller read it from, if given.
    pub source: Option<String>,
    /// The error, as text.
    pub error: String,
}

/// Summary for admins: is the card usable at the instant?
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// At least one certificate, and every certificate within its validity period.
    pub all_in_validity: bool,
    /// At least one certificate, and every chain `valid`.
    pub all_chains_valid: bool,
    /// The earliest notAfter of the certificates.
    pub earliest_not_after: Option<Timestamp>,
    /// Whole days from the instant to `earliest_not_after` (negative once expired).
    pub days_left: Option<i64>,
}

/// The profile of a card. Build it with [`Profile::builder`]. Its JSON ([`Profile::to_json`])
/// has these fields in this order, except `holder`, written as [`Profile::holder_summary`].
///
/// ```
/// use cpx_profile::{CardType, Profile, Role, Timestamp, TrustStore};
///
/// # let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../test-vectors");
/// let mut store = TrustStore::new();
/// store.load_dir(format!("{root}/pki"))?;
/// let auth = std::fs::read(format!("{root}/cards/cpe/auth.der"))?;
/// let sign = std::fs::read(format!("{root}/cards/cpe/sign.der"))?;
/// // The order does not matter: roles come from the usages.
/// let profile = Profile::builder()
///     .certificate(&sign)
///     .certificate(&auth)
///     .build(&store, Timestamp::parse("2027-01-01T00:00:00Z")?);
/// assert_eq!(profile.card.card_type, Some(CardType::Cpe));
/// assert_eq!(profile.holder.surname.as_deref(), Some("ADMINISTRATIF-TEST0003"));
/// assert_eq!(profile.certificates[profile.identity_certificate.unwrap_or(0)].certificate.role.role, Role::Authentication);
/// let org = profile.organisation.as_ref().and_then(|o| o.name.as_deref());
/// assert_eq!(org, Some("CENTRE HOSPITALIER TEST CPX"));
/// assert!(profile.summary.all_chains_valid);
/// let json = profile.to_json();
/// assert!(json.contains("\"schema_version\": 2"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The instant expiry and chains were evaluated at.
    pub evaluated_at: Timestamp,
    /// Card facts, from the identity certificate.
    pub card: Card,
    /// Holder facts, from the identity certificate (specialty from `CPS_INFO_PS`). In the JSON:
    /// [`Profile::holder_summary`], the one holder layout.
    pub holder: Holder,
    /// Organisation, for establishment cards.
    pub organisation: Option<Organisation>,
    /// The identity certificate's issuing CA, from its issuer DN.
    pub issuer: Option<CaInfo>,
    /// Index in `certificates` of the certificate card and holder come from: the
    /// authentication one, else technical, else signature, else the first.
    pub identity_certificate: Option<usize>,
    /// Usability summary.
    pub summary: Summary,
    /// The certificates that parsed, in input order.
    pub certificates: Vec<CertificateReport>,
    /// The certificates that did not parse.
    pub certificate_errors: Vec<InputError>,
    /// Business data objects, in input order.
    pub business_data: Vec<BusinessObject>,
    /// Inconsistencies between certificates and business data.
    pub warnings: Vec<String>,
}

/// The JSON form of a [`Profile`]: its fields, borrowed, with the holder in the one holder
/// layout ([`HolderSummary`], the CLI's).
#[derive(Serialize)]
struct ProfileJson<'a> {
    schema_version: u32,
    evaluated_at: Timestamp,
    card: &'a Card,
    holder: HolderSummary,
    organisation: &'a Option<Organisation>,
    issuer: &'a Option<CaInfo>,
    identity_certificate: Option<usize>,
    summary: &'a Summary,
    certificates: &'a [CertificateReport],
    certificate_errors: &'a [InputError],
    business_data: &'a [BusinessObject],
    warnings: &'a [String],
}

impl Serialize for Profile {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        ProfileJson {
            schema_version: self.schema_version,
            evaluated_at: self.evaluated_at,
            card: &self.card,
            holder: self.holder_summary(),
            organisation: &self.organisation,
            issuer: &self.issuer,
            identity_certificate: self.identity_certificate,
            summary: &self.summary,
            certificates: &self.certificates,
            certificate_errors: &self.certificate_errors,
            business_data: &self.business_data,
            warnings: &self.warnings,
        }
        .serialize(serializer)
    }
}

/// Collects the inputs of a [`Profile`].
#[derive(Debug, Clone, Default)]
pub struct ProfileBuilder<'a> {
    certificates: Vec<(Option<String>, &'a [u8])>,
    data: Vec<(String, &'a [u8])>,
}

impl<'a> ProfileBuilder<'a> {
    /// Add a DER certificate.
    pub fn certificate(mut self, der: &'a [u8]) -> Self {
        self.certificates.push((None, der));
        self
    }

    /// Add a DER certificate with a note of where it was read (shown as `source`).
    pub fn certificate_from(mut self, source: &str, der: &'a [u8]) -> Self {
        self.certificates
            .push((Some(crate::text::safe(source.to_owned())), der));
        self
    }

    /// Add a business data object: its PKCS#11 label and raw value.
    pub fn data_object(mut self, label: &str, value: &'a [u8]) -> Self {
        self.data.push((label.to_owned(), value));
        self
    }

    /// Build the profile, validating chains against `store` at `at`. Never fails: inputs that
    /// do not parse are listed in `certificate_errors` / `tlv_error`.
    pub fn build(self, store: &TrustStore, at: Timestamp) -> Profile {
        let mut certificates = Vec::new();
        let mut certificate_errors = Vec::new();
        for (index, (source, der)) in self.certificates.into_iter().enumerate() {
            match Certificate::from_der(der) {
                Ok(certificate) => certificates.push(CertificateReport {
                    index,
                    source,
                    issuer_ca: ca::classify(&certificate.issuer),
                    expiry: Expiry::at(&certificate.validity, at),
                    chain: store.validate(&certificate, &[], at),
                    certificate,
                }),
                Err(e) => certificate_errors.push(InputError {
                    index,
                    source,
                    error: e.to_string(),
                }),
            }
        }
        let business_data: Vec<BusinessObject> = self
            .data
            .iter()
            .map(|(label, value)| business::decode(label, value))
            .collect();
        let identity_certificate = [Role::Authentication, Role::Technical, Role::Signature]
            .into_iter()
            .find_map(|r| certificates.iter().position(|c| c.certificate.role.role == r))
            .or((!certificates.is_empty()).then_some(0));
        let identity = identity_certificate
            .and_then(|i| certificates.get(i))
            .map(|c| &c.certificate);
        let mut holder = identity.map(holder::holder).unwrap_or_default();
        holder.specialty = business_data.iter().find_map(|o| match &o.decoded {
            Some(Decoded::InfoPs(info)) => info.specialty.clone(),
            _ => None,
        });
        let card = identity.map(holder::card).unwrap_or_default();
        let warnings = consistency(&certificates, identity, &holder);
        let earliest_not_after = certificates
            .iter()
            .map(|c| c.certificate.validity.not_after)
            .min();
        let summary = Summary {
            all_in_validity: !certificates.is_empty()
                && certificates
                    .iter()
                    .all(|c| c.expiry.status == ExpiryStatus::Valid),
            all_chains_valid: !certificates.is_empty()
                && certificates.iter().all(|c| c.chain.status == ChainStatus::Valid),
            earliest_not_after,
            days_left: earliest_not_after.map(|t| at.days_until(t)),
        };
        Profile {
            schema_version: SCHEMA_VERSION,
            evaluated_at: at,
            organisation: identity.and_then(holder::organisation),
            issuer: identity.map(|c| ca::classify(&c.issuer)),
            card,
            holder,
            identity_certificate,
            summary,
            certificates,
            certificate_errors,
            business_data,
            warnings,
        }
    }
}

impl Profile {
    /// Start collecting inputs.
    pub fn builder<'a>() -> ProfileBuilder<'a> {
        ProfileBuilder::default()
    }

    /// The decoded situations (`CPS_ACTIVITY_nn_PS`), in input order.
    pub fn activities(&self) -> impl Iterator<Item = &business::Activity> {
        self.business_data.iter().filter_map(|o| match &o.decoded {
            Some(Decoded::Activity(a)) => Some(a.as_ref()),
            _ => None,
        })
    }
}

/// Disagreements between the card's certificates, and within the identity certificate.
fn consistency(certs: &[CertificateReport], identity: Option<&Certificate>, holder: &Holder) -> Vec<String> {
    let mut warnings = Vec::new();
    let Some(id) = identity else { return warnings };
    for c in certs {
        let other = &c.certificate;
        if other.sha256 == id.sha256 {
            continue;
        }
        // The signature and authentication certificates share the subject (docs/data-and-certs.md §2.5).
        if !other.subject.same_name(&id.subject) {
            warnings.push(format!(
                "certificate #{} has another subject: {}",
                c.index, other.subject.text
            ));
        }
        if other.extensions.health != id.extensions.health {
            warnings.push(format!(
                "certificate #{} has other card extensions (type, category, token id)",
                c.index
            ));
        }
    }
    // UPN = <IdNat>@carte-cps.fr (docs/data-and-certs.md §2.1).
    if let (Some(upn), Some(nid)) = (&holder.upn, &holder.national_id)
        && upn.split_once('@').map(|(local, _)| local) != Some(nid.value.as_str())
    {
        warnings.push(format!(
            "UPN {upn} does not start with the national id {}",
            nid.value
        ));
    }
    let roles: Vec<Role> = certs.iter().map(|c| c.certificate.role.role).collect();
    for r in [Role::Authentication, Role::Signature, Role::Technical] {
        if roles.iter().filter(|x| **x == r).count() > 1 {
            warnings.push(format!("more than one {} certificate", r.as_str()));
        }
    }
    warnings
}
