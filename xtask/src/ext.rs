//! Encoders for the X.509 extensions used by the test PKI, each with the exact DER shape seen in
//! the real IGC-Santé certificates (docs/data-and-certs.md §2.1, §2.2; docs/card-notes.md §8).

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5280::{
    ID_AD_CA_ISSUERS, ID_AD_OCSP, ID_CE_AUTHORITY_KEY_IDENTIFIER, ID_CE_BASIC_CONSTRAINTS,
    ID_CE_CERTIFICATE_POLICIES, ID_CE_CRL_DISTRIBUTION_POINTS, ID_CE_EXT_KEY_USAGE, ID_CE_FRESHEST_CRL,
    ID_CE_KEY_USAGE, ID_CE_SUBJECT_ALT_NAME, ID_CE_SUBJECT_KEY_IDENTIFIER, ID_PE_AUTHORITY_INFO_ACCESS,
    ID_QT_CPS,
};
use x509_cert::der::Encode;
use x509_cert::der::asn1::{Any, Ia5String, OctetString, PrintableStringRef, Utf8StringRef};
use x509_cert::der::flagset::FlagSet;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::certpolicy::{PolicyInformation, PolicyQualifierInfo};
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName, OtherName};
use x509_cert::ext::pkix::{
    AccessDescription, AuthorityInfoAccessSyntax, AuthorityKeyIdentifier, BasicConstraints,
    CertificatePolicies, CrlDistributionPoints, ExtendedKeyUsage, FreshestCrl, KeyUsage, KeyUsages,
    SubjectAltName, SubjectKeyIdentifier,
};

use crate::Result;

/// `anyPolicy` (2.5.29.32.0): the policy of the real IGC-Santé CA certificates (docs/card-notes.md §8).
pub(crate) const ANY_POLICY: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.32.0");
/// The IGC-Santé TEST card-certificate policy seen on the real TEST CPE card (docs/data-and-certs.md
/// §2.1, §2.6). The production card policies are not public, so every leaf uses this one.
pub(crate) const TEST_CARD_POLICY: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.250.1.213.1.7.2.1.1.1.1");
/// EKU TLS client authentication.
pub(crate) const EKU_CLIENT_AUTH: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.2");
/// EKU Microsoft smart-card logon.
pub(crate) const EKU_MS_SMARTCARD_LOGIN: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.20.2.2");
/// otherName type of the Microsoft UPN used in the auth certificate's SAN (docs/data-and-certs.md §2.1).
pub(crate) const MS_UPN: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.20.2.3");
/// ANS "catégorie de produit" extension (DICO G01), an OCTET STRING of one byte (§2.2).
pub(crate) const ANS_PRODUCT_CATEGORY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.250.1.71.1.2.5");
/// ANS "type de carte" extension (DICO G02), an INTEGER (§2.2).
pub(crate) const ANS_CARD_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.250.1.71.1.2.2");
/// ANS token id extension, PrintableString `8025000001/<card serial>` (§2.2).
pub(crate) const ANS_TOKEN_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.250.1.71.1.2.3");

fn ext(extn_id: ObjectIdentifier, critical: bool, value: &impl Encode) -> Result<Extension> {
    Ok(Extension {
        extn_id,
        critical,
        extn_value: OctetString::new(value.to_der()?)?,
    })
}

fn uri(s: &str) -> Result<GeneralName> {
    Ok(GeneralName::UniformResourceIdentifier(Ia5String::new(s)?))
}

/// basicConstraints. Leaves: non-critical empty SEQUENCE `30 00` (§2.1). CAs: critical, `cA`
/// TRUE, `pathLen 0` on intermediates only (docs/card-notes.md §8, real CA certificates).
pub(crate) fn basic_constraints(ca: bool, path_len: Option<u8>) -> Result<Extension> {
    ext(
        ID_CE_BASIC_CONSTRAINTS,
        ca,
        &BasicConstraints {
            ca,
            path_len_constraint: path_len,
        },
    )
}

/// subjectKeyIdentifier.
pub(crate) fn subject_key_id(key_id: &[u8]) -> Result<Extension> {
    ext(
        ID_CE_SUBJECT_KEY_IDENTIFIER,
        false,
        &SubjectKeyIdentifier(OctetString::new(key_id)?),
    )
}

/// authorityKeyIdentifier with the keyIdentifier only, as in every real certificate.
pub(crate) fn authority_key_id(key_id: &[u8]) -> Result<Extension> {
    let aki = AuthorityKeyIdentifier {
        key_identifier: Some(OctetString::new(key_id)?),
        ..Default::default()
    };
    ext(ID_CE_AUTHORITY_KEY_IDENTIFIER, false, &aki)
}

/// keyUsage, always critical (real CA and card certificates).
pub(crate) fn key_usage(usages: FlagSet<KeyUsages>) -> Result<Extension> {
    ext(ID_CE_KEY_USAGE, true, &KeyUsage(usages))
}

/// certificatePolicies: one policy with one CPS-URI qualifier, like every real IGC-Santé cert.
pub(crate) fn certificate_policies(policy: ObjectIdentifier, cps_uri: &str) -> Result<Extension> {
    let qualifier = PolicyQualifierInfo {
        policy_qualifier_id: ID_QT_CPS,
        qualifier: Some(Any::encode_from(&Ia5String::new(cps_uri)?)?),
    };
    let info = PolicyInformation {
        policy_identifier: policy,
        policy_qualifiers: Some(vec![qualifier]),
    };
    ext(
        ID_CE_CERTIFICATE_POLICIES,
        false,
        &CertificatePolicies(vec![info]),
    )
}

/// extendedKeyUsage (non-critical, §2.1).
pub(crate) fn extended_key_usage(oids: &[ObjectIdentifier]) -> Result<Extension> {
    ext(ID_CE_EXT_KEY_USAGE, false, &ExtendedKeyUsage(oids.to_vec()))
}

/// subjectAltName holding one otherName UPN (UTF8String), as on the real auth cert (§2.1).
pub(crate) fn upn_san(upn: &str) -> Result<Extension> {
    let name = OtherName {
        type_id: MS_UPN,
        value: Any::encode_from(&Utf8StringRef::new(upn)?)?,
    };
    ext(
        ID_CE_SUBJECT_ALT_NAME,
        false,
        &SubjectAltName(vec![GeneralName::OtherName(name)]),
    )
}

/// One DistributionPoint per URI, each a `fullName` with a single URI: the real layout
/// (an HTTP point, then an LDAP point).
fn distribution_points(uris: &[&str]) -> Result<Vec<DistributionPoint>> {
    uris.iter()
        .map(|u| {
            Ok(DistributionPoint {
                distribution_point: Some(DistributionPointName::FullName(vec![uri(u)?])),
                reasons: None,
                crl_issuer: None,
            })
        })
        .collect()
}

/// cRLDistributionPoints.
pub(crate) fn crl_distribution_points(uris: &[&str]) -> Result<Extension> {
    ext(
        ID_CE_CRL_DISTRIBUTION_POINTS,
        false,
        &CrlDistributionPoints(distribution_points(uris)?),
    )
}

/// freshestCRL (delta CRL pointer; the real leaf has an LDAP one).
pub(crate) fn freshest_crl(uris: &[&str]) -> Result<Extension> {
    ext(
        ID_CE_FRESHEST_CRL,
        false,
        &FreshestCrl(distribution_points(uris)?),
    )
}

/// authorityInfoAccess: OCSP first, then caIssuers, as on the real leaf.
pub(crate) fn authority_info_access(ocsp: &str, ca_issuers: &str) -> Result<Extension> {
    let aia = AuthorityInfoAccessSyntax(vec![
        AccessDescription {
            access_method: ID_AD_OCSP,
            access_location: uri(ocsp)?,
        },
        AccessDescription {
            access_method: ID_AD_CA_ISSUERS,
            access_location: uri(ca_issuers)?,
        },
    ]);
    ext(ID_PE_AUTHORITY_INFO_ACCESS, false, &aia)
}

/// `1.2.250.1.71.1.2.5` catégorie de produit: OCTET STRING of one byte whose hex digits are the
/// DICO G01 code (`80` = "Carte de PS … de TEST"), §2.2.
pub(crate) fn ans_product_category(code: u8) -> Result<Extension> {
    ext(ANS_PRODUCT_CATEGORY, false, &OctetString::new([code])?)
}

/// `1.2.250.1.71.1.2.2` type de carte: INTEGER, DICO G02 (0 CPS, 1 CPF, 2 CPE, 3 CPA), §2.2.
pub(crate) fn ans_card_type(code: u8) -> Result<Extension> {
    ext(ANS_CARD_TYPE, false, &code)
}

/// `1.2.250.1.71.1.2.3` token id: PrintableString `<issuer id>/<card serial>`, §2.2.
pub(crate) fn ans_token_id(token_id: &str) -> Result<Extension> {
    ext(ANS_TOKEN_ID, false, &PrintableStringRef::new(token_id)?)
}
