//! The card (leaf) certificate profile, copied field by field from the real IGC-Santé TEST CPE
//! authentication certificate (docs/data-and-certs.md §2.1) and adapted per certificate role.
//!
//! Facts and their sources:
//! - subject `C=FR`, then `ST`, `O`, `OU`=Struct_IdNat (CPE/CPA only), `title`, then one
//!   multi-valued RDN `{GN + CN + SN}` (§2.1, §2.3); CPS subjects have no ST/O/OU (§2.3);
//! - serial 16 bytes, sha256WithRSA, RSA-2048 (§2.1, docs/card-notes.md §5);
//! - extension order and criticality as in the real cert: basicConstraints `30 00`, SKI, AKI,
//!   keyUsage (critical), certificatePolicies, EKU, SAN, CRL DP, freshestCRL, AIA, then the ANS
//!   extensions `1.2.250.1.71.1.2.5`, `.2.2`, `.2.3` (§2.1, §2.2);
//! - auth keyUsage: digitalSignature only on the real CPE (H); a real CPS3 auth cert reportedly
//!   adds keyEncipherment (§2.5, M), so CPS/CPF auth certs carry both and CPE/CPA only
//!   digitalSignature: consumers must accept both;
//! - sign keyUsage digitalSignature + nonRepudiation (§2.5, M); no EKU and no SAN (none observed);
//! - tech (contactless) certificate: not observed at all (docs/card-notes.md §9). Inferred profile:
//!   digitalSignature, EKU clientAuth (TLS without PIN), no UPN (no smart-card logon without PIN).

use const_oid::ObjectIdentifier;
use x509_cert::certificate::Certificate;
use x509_cert::der::flagset::FlagSet;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::KeyUsages;
use x509_cert::name::Name;

use crate::Result;
use crate::cards::{Card, CardType, Role, TOKEN_ISSUER_ID};
use crate::dn::{self, DnBuilder};
use crate::ext;
use crate::keys::{self, KeyPair};
use crate::pki::{CPS_URI, Ca, Hierarchy, OCSP_URL, Population};
use crate::x509::{self, CertSpec};

/// DICO G01 code `80`: "Carte de PS ou de Personnel de Santé de TEST" (§2.2). Every test card
/// carries it; production cards would carry `00`.
pub(crate) const G01_TEST_CARD: u8 = 0x80;
/// Domain of the UPN in the auth certificate's SAN, as on the real TEST card (§2.1).
const UPN_DOMAIN: &str = "carte-cps.fr";

/// What distinguishes the certificate roles.
pub(crate) struct RoleProfile {
    /// keyUsage bits.
    pub(crate) key_usages: FlagSet<KeyUsages>,
    /// extendedKeyUsage, with the names used in `holder.toml`; empty = no EKU extension.
    pub(crate) ekus: &'static [(ObjectIdentifier, &'static str)],
    /// Whether the SAN carries the `<IdNat>@carte-cps.fr` UPN.
    pub(crate) upn: bool,
}

const AUTH_EKUS: &[(ObjectIdentifier, &str)] = &[
    (ext::EKU_CLIENT_AUTH, "clientAuth"),
    (ext::EKU_MS_SMARTCARD_LOGIN, "msSmartcardLogin"),
];
const TECH_EKUS: &[(ObjectIdentifier, &str)] = &[(ext::EKU_CLIENT_AUTH, "clientAuth")];

/// The profile of `role` on a card of type `card_type` (see the module docs for sources).
pub(crate) fn role_profile(card_type: CardType, role: Role) -> RoleProfile {
    match role {
        Role::Auth => RoleProfile {
            key_usages: match card_type {
                CardType::Cpe | CardType::Cpa => KeyUsages::DigitalSignature.into(),
                CardType::Cps | CardType::Cpf => KeyUsages::DigitalSignature | KeyUsages::KeyEncipherment,
            },
            ekus: AUTH_EKUS,
            upn: true,
        },
        Role::Sign => RoleProfile {
            key_usages: KeyUsages::DigitalSignature | KeyUsages::NonRepudiation,
            ekus: &[],
            upn: false,
        },
        Role::Tech => RoleProfile {
            key_usages: KeyUsages::DigitalSignature.into(),
            ekus: TECH_EKUS,
            upn: false,
        },
    }
}

/// Names of keyUsage bits in `holder.toml`, in bit order.
pub(crate) fn key_usage_names(usages: FlagSet<KeyUsages>) -> Vec<&'static str> {
    [
        (KeyUsages::DigitalSignature, "digitalSignature"),
        (KeyUsages::NonRepudiation, "nonRepudiation"),
        (KeyUsages::KeyEncipherment, "keyEncipherment"),
    ]
    .into_iter()
    .filter(|(bit, _)| usages.contains(*bit))
    .map(|(_, name)| name)
    .collect()
}

/// The subject DN shared by all certificates of `card` (§2.5: auth and sign share the DN).
pub(crate) fn subject(card: &Card) -> Result<Name> {
    let h = &card.holder;
    let org = card.organisation.as_ref();
    Ok(DnBuilder::default()
        .rdn(dn::C, "FR")?
        .rdn_opt(dn::ST, org.map(|o| o.state))?
        .rdn_opt(dn::O, org.map(|o| o.structure.name))?
        .rdn_opt(dn::OU, org.map(|o| o.structure.struct_id))?
        .rdn(dn::TITLE, h.title)?
        .multi(&[
            (dn::GN, h.given_name),
            (dn::CN, h.national_id),
            (dn::SN, h.surname),
        ])?
        .build())
}

/// The issuing CA of every certificate of `card`: the PERSONNES intermediate of its level.
pub(crate) fn issuer<'h>(pki: &'h Hierarchy, card: &Card) -> Result<&'h Ca> {
    pki.intermediate(card.card_type.level(), Population::Personnes)
}

/// The UPN of the card holder: `<IdNat>@carte-cps.fr` (§2.1).
pub(crate) fn upn(card: &Card) -> String {
    format!("{}@{UPN_DOMAIN}", card.holder.national_id)
}

/// The token id of extension 2.3: `8025000001/<card serial>` (§2.2).
pub(crate) fn token_id(card: &Card) -> String {
    format!("{TOKEN_ISSUER_ID}/{}", card.card_serial)
}

/// Seed of the key of `role` on `card`: `cpx-test/<stem>/<role>`.
pub(crate) fn seed(card: &Card, role: Role) -> String {
    format!("cpx-test/{}/{}", card.stem, role.stem())
}

/// Issues the `role` certificate of `card`, returning its key pair and certificate.
pub(crate) fn issue(pki: &Hierarchy, card: &Card, role: Role) -> Result<(KeyPair, Certificate)> {
    let ca = issuer(pki, card)?;
    let seed = seed(card, role);
    let key = KeyPair::from_seed(&seed)?;
    let profile = role_profile(card.card_type, role);
    let spec = CertSpec {
        serial: keys::serial(&seed, 16)?,
        issuer: ca.subject.clone(),
        period: card.period,
        subject: subject(card)?,
        subject_key: &key,
        extensions: extensions(ca, card, &key, &profile)?,
    };
    let cert = x509::issue(spec, &ca.key)?;
    Ok((key, cert))
}

fn extensions(ca: &Ca, card: &Card, key: &KeyPair, profile: &RoleProfile) -> Result<Vec<Extension>> {
    let mut exts = vec![
        ext::basic_constraints(false, None)?,
        ext::subject_key_id(&key.key_id()?)?,
        ext::authority_key_id(&ca.key_id)?,
        ext::key_usage(profile.key_usages)?,
        ext::certificate_policies(ext::TEST_CARD_POLICY, CPS_URI)?,
    ];
    if !profile.ekus.is_empty() {
        let oids: Vec<_> = profile.ekus.iter().map(|(oid, _)| *oid).collect();
        exts.push(ext::extended_key_usage(&oids)?);
    }
    if profile.upn {
        exts.push(ext::upn_san(&upn(card))?);
    }
    exts.extend([
        ext::crl_distribution_points(&[&ca.crl_http(), &ca.leaf_ldap_crl("certificaterevocationlist")])?,
        ext::freshest_crl(&[&ca.leaf_ldap_crl("deltarevocationlist")])?,
        ext::authority_info_access(OCSP_URL, &ca.cert_http())?,
        ext::ans_product_category(G01_TEST_CARD)?,
        ext::ans_card_type(card.card_type.g02_code())?,
        ext::ans_token_id(&token_id(card))?,
    ]);
    Ok(exts)
}
