//! The TEST copy of the IGC-Santé CA hierarchy: a root per assurance level (ELEMENTAIRE,
//! STANDARD, FORT) and under each root the intermediates PERSONNES and ORGANISATIONS.
//!
//! Shape copied from the real CA certificates (docs/card-notes.md §8, docs/data-and-certs.md §2.4):
//! DN `C=FR, O=ASIP-SANTE, OU=0002 187512751, OU=IGC-SANTE TEST, CN=…`; roots valid 20 years,
//! intermediates one day less; sha256WithRSA; extensions in the real order.
//! Every CN starts with `TEST CPX` so that no DN equals a real production *or* real TEST CA.

use x509_cert::certificate::Certificate;
use x509_cert::ext::pkix::KeyUsages;
use x509_cert::name::Name;

use crate::Result;
use crate::dn::{self, DnBuilder};
use crate::ext;
use crate::keys::{self, KeyPair};
use crate::x509::{self, CertSpec, Date, Period};

/// Organisation of every IGC-Santé CA (docs/card-notes.md §8).
const CA_O: &str = "ASIP-SANTE";
/// ASIP's registry identifier OU of every IGC-Santé CA (docs/card-notes.md §8).
const CA_OU_ID: &str = "0002 187512751";
/// The OU of the real TEST hierarchy (docs/data-and-certs.md §2.4), kept so TEST detection by OU works.
const CA_OU_TEST: &str = "IGC-SANTE TEST";
/// Project marker in every CN: the real TEST CAs are `TEST AC …`, ours `TEST CPX AC …`.
const CN_PREFIX: &str = "TEST CPX AC";

/// Base of the (unresolvable, RFC 2606 `.invalid`) HTTP publication point.
pub(crate) const HTTP_BASE: &str = "http://igc-sante.test.invalid";
/// Base of the LDAP directory (real: `ldap://annuaire-igc.esante.gouv.fr`).
pub(crate) const LDAP_BASE: &str = "ldap://annuaire-igc.test.invalid";
/// OCSP responder (real: `http://ocsp.esante.gouv.fr`).
pub(crate) const OCSP_URL: &str = "http://ocsp.igc-sante.test.invalid";
/// CPS URI qualifier (real TEST: `http://igc-sante.esante.gouv.fr/PC%20TEST`, §2.1).
pub(crate) const CPS_URI: &str = "http://igc-sante.test.invalid/PC%20TEST";

/// Roots: 2018-01-01 → 2038-01-01 (20 years, like the real 2013 → 2033), wide enough for the
/// expired card (2019 → 2022) and the current ones.
const ROOT_PERIOD: Period = Period {
    not_before: Date::ymd(2018, 1, 1),
    not_after: Date::ymd(2038, 1, 1),
};
/// Intermediates end one day before their root, as the real ones do (2033-06-24 vs 06-25).
const INTERMEDIATE_PERIOD: Period = Period {
    not_before: Date::ymd(2018, 1, 1),
    not_after: Date::ymd(2037, 12, 31),
};

/// IGC-Santé assurance level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Level {
    /// ELEMENTAIRE.
    Elementaire,
    /// STANDARD: issues CPE/CPA certificates (real TEST CPE, §2.1, §2.4).
    Standard,
    /// FORT: issues CPS/CPF certificates (§2.4, confidence M).
    Fort,
}

impl Level {
    /// All levels, in file order.
    pub(crate) const ALL: [Level; 3] = [Level::Elementaire, Level::Standard, Level::Fort];

    fn name(self) -> &'static str {
        match self {
            Level::Elementaire => "ELEMENTAIRE",
            Level::Standard => "STANDARD",
            Level::Fort => "FORT",
        }
    }

    /// Short form used in CRL/AIA file names (real: `ACR-EL`, `ACR-ST`, `ACR-FO`, docs/card-notes.md §8).
    fn abbr(self) -> &'static str {
        match self {
            Level::Elementaire => "EL",
            Level::Standard => "ST",
            Level::Fort => "FO",
        }
    }
}

/// Population served by an intermediate CA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Population {
    /// PERSONNES: card holders (all our leaves).
    Personnes,
    /// ORGANISATIONS: server/software certificates (no leaf here; kept for a faithful hierarchy).
    Organisations,
}

impl Population {
    /// Both populations, in file order.
    pub(crate) const ALL: [Population; 2] = [Population::Personnes, Population::Organisations];

    fn name(self) -> &'static str {
        match self {
            Population::Personnes => "PERSONNES",
            Population::Organisations => "ORGANISATIONS",
        }
    }

    /// Short form in file names: `PP` from the real TEST `ACI-ST-PP-TEST`; `ORG` from the
    /// confirmed production `ACI-EL-ORG` (docs/data-and-certs.md §2.4).
    fn abbr(self) -> &'static str {
        match self {
            Population::Personnes => "PP",
            Population::Organisations => "ORG",
        }
    }
}

/// One CA: its key, certificate and the names leaves need.
pub(crate) struct Ca {
    /// Subject CN.
    pub(crate) cn: String,
    /// Root CN (its own CN for a root): needed in the LDAP DN of leaf CRL pointers.
    pub(crate) root_cn: String,
    /// File stem under `test-vectors/pki/`, e.g. `aci-fort-personnes`.
    pub(crate) file_stem: String,
    /// Publication name, e.g. `ACI-FO-PP-TEST` (CRL and `.cer` file names).
    pub(crate) pub_name: String,
    /// Subject DN.
    pub(crate) subject: Name,
    /// Key pair.
    pub(crate) key: KeyPair,
    /// Subject key identifier (AKI of what it issues).
    pub(crate) key_id: Vec<u8>,
    /// The certificate.
    pub(crate) cert: Certificate,
    /// Level.
    pub(crate) level: Level,
    /// `None` for a root.
    pub(crate) population: Option<Population>,
}

impl Ca {
    /// HTTP URL of the CRL this CA publishes.
    pub(crate) fn crl_http(&self) -> String {
        format!("{HTTP_BASE}/CRL/{}.crl", self.pub_name)
    }

    /// HTTP URL of this CA's certificate (AIA caIssuers of what it issues).
    pub(crate) fn cert_http(&self) -> String {
        format!("{HTTP_BASE}/AC%20TEST/{}.cer", self.pub_name)
    }

    /// LDAP URL of this CA's (delta) CRL in the leaf style seen on the real TEST card (§2.1):
    /// lower-case types, `ou=<root CN>`, `objectClass=pkiCA`.
    pub(crate) fn leaf_ldap_crl(&self, attribute: &str) -> String {
        format!(
            "{LDAP_BASE}/cn={},ou={},ou={},ou={},o={CA_O},c=FR?{attribute};binary?base?objectClass=pkiCA",
            pct(&self.cn),
            pct(&self.root_cn),
            pct(CA_OU_TEST),
            pct(CA_OU_ID)
        )
    }

    /// LDAP URL of a root's CRL in the style of the real intermediate CA certificates:
    /// upper-case types, `objectclass=pkiCa`.
    fn root_ldap_crl(&self) -> String {
        format!(
            "{LDAP_BASE}/CN={},OU={},OU={},O={CA_O},C=FR?certificaterevocationlist;binary?base?objectclass=pkiCa",
            pct(&self.cn),
            pct(CA_OU_TEST),
            pct(CA_OU_ID)
        )
    }
}

/// Percent-encodes the spaces of a DN value (the only character our names need escaped).
fn pct(s: &str) -> String {
    s.replace(' ', "%20")
}

fn ca_dn(cn: &str) -> Result<Name> {
    Ok(DnBuilder::default()
        .rdn(dn::C, "FR")?
        .rdn(dn::O, CA_O)?
        .rdn(dn::OU, CA_OU_ID)?
        .rdn(dn::OU, CA_OU_TEST)?
        .rdn(dn::CN, cn)?
        .build())
}

fn ca_key_usage() -> Result<x509_cert::ext::Extension> {
    ext::key_usage(KeyUsages::KeyCertSign | KeyUsages::CRLSign)
}

/// A self-signed root. Extensions as in the real roots: basicConstraints (critical, cA),
/// keyUsage (critical, keyCertSign+cRLSign), certificatePolicies (anyPolicy + CPS URI), SKI, AKI.
fn root(level: Level) -> Result<Ca> {
    let file_stem = format!("acr-{}", level.name().to_lowercase());
    let cn = format!("{CN_PREFIX} RACINE IGC-SANTE {}", level.name());
    let seed = format!("cpx-test/pki/{file_stem}");
    let key = KeyPair::from_seed(&seed)?;
    let key_id = key.key_id()?;
    let subject = ca_dn(&cn)?;
    let spec = CertSpec {
        serial: keys::serial(&seed, 18)?,
        issuer: subject.clone(),
        period: ROOT_PERIOD,
        subject: subject.clone(),
        subject_key: &key,
        extensions: vec![
            ext::basic_constraints(true, None)?,
            ca_key_usage()?,
            ext::certificate_policies(ext::ANY_POLICY, CPS_URI)?,
            ext::subject_key_id(&key_id)?,
            ext::authority_key_id(&key_id)?,
        ],
    };
    let cert = x509::issue(spec, &key)?;
    Ok(Ca {
        root_cn: cn.clone(),
        cn,
        file_stem,
        pub_name: format!("ACR-{}-TEST", level.abbr()),
        subject,
        key,
        key_id,
        cert,
        level,
        population: None,
    })
}

/// An intermediate under `root`. Extensions as in the real ones: basicConstraints (critical, cA,
/// pathLen 0), keyUsage, certificatePolicies, cRLDistributionPoints (root CRL, HTTP + LDAP), SKI,
/// AKI.
fn intermediate(root: &Ca, population: Population) -> Result<Ca> {
    let level = root.level;
    let file_stem = format!(
        "aci-{}-{}",
        level.name().to_lowercase(),
        population.name().to_lowercase()
    );
    let cn = format!("{CN_PREFIX} IGC-SANTE {} {}", level.name(), population.name());
    let seed = format!("cpx-test/pki/{file_stem}");
    let key = KeyPair::from_seed(&seed)?;
    let key_id = key.key_id()?;
    let subject = ca_dn(&cn)?;
    let spec = CertSpec {
        serial: keys::serial(&seed, 18)?,
        issuer: root.subject.clone(),
        period: INTERMEDIATE_PERIOD,
        subject: subject.clone(),
        subject_key: &key,
        extensions: vec![
            ext::basic_constraints(true, Some(0))?,
            ca_key_usage()?,
            ext::certificate_policies(ext::ANY_POLICY, CPS_URI)?,
            ext::crl_distribution_points(&[&root.crl_http(), &root.root_ldap_crl()])?,
            ext::subject_key_id(&key_id)?,
            ext::authority_key_id(&root.key_id)?,
        ],
    };
    let cert = x509::issue(spec, &root.key)?;
    Ok(Ca {
        cn,
        root_cn: root.cn.clone(),
        file_stem,
        pub_name: format!("ACI-{}-{}-TEST", level.abbr(), population.abbr()),
        subject,
        key,
        key_id,
        cert,
        level,
        population: Some(population),
    })
}

/// The whole hierarchy.
pub(crate) struct Hierarchy {
    /// Roots then intermediates, each root followed by its intermediates.
    pub(crate) cas: Vec<Ca>,
}

impl Hierarchy {
    /// Generates the roots of `levels` and their intermediates (3 RSA-2048 keys per level).
    pub(crate) fn generate_levels(levels: &[Level]) -> Result<Self> {
        let mut cas = Vec::new();
        for &level in levels {
            let root = root(level)?;
            let inters = Population::ALL
                .iter()
                .map(|&p| intermediate(&root, p))
                .collect::<Result<Vec<_>>>()?;
            cas.push(root);
            cas.extend(inters);
        }
        Ok(Self { cas })
    }

    /// The intermediate CA of `level` for `population`.
    pub(crate) fn intermediate(&self, level: Level, population: Population) -> Result<&Ca> {
        self.cas
            .iter()
            .find(|ca| ca.level == level && ca.population == Some(population))
            .ok_or_else(|| format!("no {level:?} {population:?} CA generated").into())
    }
}
