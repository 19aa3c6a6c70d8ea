//! Names of the OIDs this crate shows. Unknown OIDs are shown as dotted numbers, never dropped.

/// DN attribute types: (OID, short name as OpenSSL prints it).
const ATTRIBUTES: &[(&str, &str)] = &[
    ("2.5.4.3", "CN"),
    ("2.5.4.4", "SN"),
    ("2.5.4.5", "serialNumber"),
    ("2.5.4.6", "C"),
    ("2.5.4.7", "L"),
    ("2.5.4.8", "ST"),
    ("2.5.4.9", "street"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("2.5.4.12", "title"),
    ("2.5.4.17", "postalCode"),
    ("2.5.4.42", "GN"),
    ("2.5.4.43", "initials"),
    ("2.5.4.44", "generationQualifier"),
    ("2.5.4.46", "dnQualifier"),
    ("2.5.4.65", "pseudonym"),
    ("2.5.4.97", "organizationIdentifier"),
    ("1.2.840.113549.1.9.1", "emailAddress"),
    ("0.9.2342.19200300.100.1.1", "UID"),
    ("0.9.2342.19200300.100.1.25", "DC"),
];

/// Extensions: (OID, name).
const EXTENSIONS: &[(&str, &str)] = &[
    ("2.5.29.14", "subjectKeyIdentifier"),
    ("2.5.29.15", "keyUsage"),
    ("2.5.29.17", "subjectAltName"),
    ("2.5.29.18", "issuerAltName"),
    ("2.5.29.19", "basicConstraints"),
    ("2.5.29.30", "nameConstraints"),
    ("2.5.29.31", "cRLDistributionPoints"),
    ("2.5.29.32", "certificatePolicies"),
    ("2.5.29.33", "policyMappings"),
    ("2.5.29.35", "authorityKeyIdentifier"),
    ("2.5.29.36", "policyConstraints"),
    ("2.5.29.37", "extKeyUsage"),
    ("2.5.29.46", "freshestCRL"),
    ("2.5.29.54", "inhibitAnyPolicy"),
    ("1.3.6.1.5.5.7.1.1", "authorityInfoAccess"),
    ("1.3.6.1.5.5.7.1.11", "subjectInfoAccess"),
    // ANS private extensions, docs/data-and-certs.md §2.2 (nomenclature OIDs TRE_G01, TRE_G02, token id).
    (CATEGORY_EXT, "cpxCardCategory"),
    (CARD_TYPE_EXT, "cpxCardType"),
    (TOKEN_ID_EXT, "cpxTokenId"),
];

/// Extended key usages: (OID, name).
const EKUS: &[(&str, &str)] = &[
    ("2.5.29.37.0", "anyExtendedKeyUsage"),
    ("1.3.6.1.5.5.7.3.1", "serverAuth"),
    (CLIENT_AUTH, "clientAuth"),
    ("1.3.6.1.5.5.7.3.3", "codeSigning"),
    ("1.3.6.1.5.5.7.3.4", "emailProtection"),
    ("1.3.6.1.5.5.7.3.8", "timeStamping"),
    ("1.3.6.1.5.5.7.3.9", "OCSPSigning"),
    (MS_SMARTCARD_LOGIN, "msSmartcardLogin"),
];

/// Signature algorithms: (OID, name).
const SIGNATURES: &[(&str, &str)] = &[
    ("1.2.840.113549.1.1.4", "md5WithRSAEncryption"),
    (SHA1_RSA, "sha1WithRSAEncryption"),
    ("1.2.840.113549.1.1.10", "rsassaPss"),
    (SHA256_RSA, "sha256WithRSAEncryption"),
    (SHA384_RSA, "sha384WithRSAEncryption"),
    (SHA512_RSA, "sha512WithRSAEncryption"),
    (SHA224_RSA, "sha224WithRSAEncryption"),
    ("1.2.840.10045.4.3.2", "ecdsa-with-SHA256"),
    ("1.2.840.10045.4.3.3", "ecdsa-with-SHA384"),
];

/// Public-key algorithms: (OID, name).
const KEYS: &[(&str, &str)] = &[
    (RSA_ENCRYPTION, "rsaEncryption"),
    // docs/card-notes.md §8: GIP-CPS's private RSA OID (IGC-CPS2ter era), per ANSSI-FR/x509-parser.
    (GIP_CPS_RSA, "gipCpsRsa"),
    ("1.2.840.10045.2.1", "id-ecPublicKey"),
];

/// Certificate policies: (OID, name).
const POLICIES: &[(&str, &str)] = &[
    ("2.5.29.32.0", "anyPolicy"),
    // docs/data-and-certs.md §2.6: seen on the real TEST CPE auth certificate and on TEST ORG software
    // certificates, so it names the TEST PKI, not a card profile.
    ("1.2.250.1.213.1.7.2.1.1.1.1", "IGC-Santé TEST policy"),
];

/// ANS ext "catégorie de produit" (TRE_G01), docs/data-and-certs.md §2.2.
pub(crate) const CATEGORY_EXT: &str = "1.2.250.1.71.1.2.5";
/// ANS ext "type de carte" (TRE_G02), docs/data-and-certs.md §2.2.
pub(crate) const CARD_TYPE_EXT: &str = "1.2.250.1.71.1.2.2";
/// ANS ext token id "issuer/serial", docs/data-and-certs.md §2.2.
pub(crate) const TOKEN_ID_EXT: &str = "1.2.250.1.71.1.2.3";
/// freshestCRL (RFC 5280 §4.2.1.15), not decoded by x509-parser.
pub(crate) const FRESHEST_CRL: &str = "2.5.29.46";
/// id-kp-clientAuth.
pub(crate) const CLIENT_AUTH: &str = "1.3.6.1.5.5.7.3.2";
/// Microsoft smart-card logon EKU (docs/data-and-certs.md §2.1).
pub(crate) const MS_SMARTCARD_LOGIN: &str = "1.3.6.1.4.1.311.20.2.2";
/// Microsoft UPN otherName (docs/data-and-certs.md §2.1).
pub(crate) const UPN: &str = "1.3.6.1.4.1.311.20.2.3";
/// id-ad-ocsp.
pub(crate) const AD_OCSP: &str = "1.3.6.1.5.5.7.48.1";
/// id-ad-caIssuers.
pub(crate) const AD_CA_ISSUERS: &str = "1.3.6.1.5.5.7.48.2";
/// id-qt-cps.
pub(crate) const QT_CPS: &str = "1.3.6.1.5.5.7.2.1";
/// rsaEncryption.
pub(crate) const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
/// GIP-CPS private RSA key OID (docs/card-notes.md §8).
pub(crate) const GIP_CPS_RSA: &str = "1.2.250.1.71.2.6.1";
/// sha1WithRSAEncryption.
pub(crate) const SHA1_RSA: &str = "1.2.840.113549.1.1.5";
/// sha256WithRSAEncryption.
pub(crate) const SHA256_RSA: &str = "1.2.840.113549.1.1.11";
/// sha384WithRSAEncryption.
pub(crate) const SHA384_RSA: &str = "1.2.840.113549.1.1.12";
/// sha512WithRSAEncryption.
pub(crate) const SHA512_RSA: &str = "1.2.840.113549.1.1.13";
/// sha224WithRSAEncryption.
pub(crate) const SHA224_RSA: &str = "1.2.840.113549.1.1.14";
/// CN.
pub(crate) const CN: &str = "2.5.4.3";
/// SN (surname).
pub(crate) const SN: &str = "2.5.4.4";
/// L.
pub(crate) const L: &str = "2.5.4.7";
/// ST.
pub(crate) const ST: &str = "2.5.4.8";
/// O.
pub(crate) const O: &str = "2.5.4.10";
/// OU.
pub(crate) const OU: &str = "2.5.4.11";
/// title.
pub(crate) const TITLE: &str = "2.5.4.12";
/// GN (givenName).
pub(crate) const GN: &str = "2.5.4.42";
/// pseudonym (CPE "non directement nominative", docs/data-and-certs.md §2.3).
pub(crate) const PSEUDONYM: &str = "2.5.4.65";

fn lookup(table: &[(&str, &'static str)], oid: &str) -> Option<&'static str> {
    table.iter().find(|(o, _)| *o == oid).map(|(_, n)| *n)
}

/// Short name of a DN attribute type.
pub(crate) fn attribute(oid: &str) -> Option<&'static str> {
    lookup(ATTRIBUTES, oid)
}

/// Name of an extension.
pub(crate) fn extension(oid: &str) -> Option<&'static str> {
    lookup(EXTENSIONS, oid)
}

/// Name of an extended key usage.
pub(crate) fn eku(oid: &str) -> Option<&'static str> {
    lookup(EKUS, oid)
}

/// Name of a signature algorithm.
pub(crate) fn signature(oid: &str) -> Option<&'static str> {
    lookup(SIGNATURES, oid)
}

/// Name of a public-key algorithm.
pub(crate) fn key(oid: &str) -> Option<&'static str> {
    lookup(KEYS, oid)
}

/// Name of a certificate policy.
pub(crate) fn policy(oid: &str) -> Option<&'static str> {
    lookup(POLICIES, oid)
}
