//! X.509 v3 extensions: every extension listed in order, the standard ones decoded, unknown
//! critical ones refused (RFC 5280 §4.2).

use serde::Serialize;
use x509_parser::extensions::{DistributionPointName, GeneralName as XName, ParsedExtension, X509Extension};

use crate::dn::{Dn, decode_string};
use crate::error::{NameField, ProfileError};
use crate::health::{self, HealthExtensions};
use crate::text;
use crate::{der, oids, tlv};

/// An OID with its name when known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NamedOid {
    /// Dotted OID.
    pub oid: String,
    /// Conventional name (`clientAuth`, `sha256WithRSAEncryption`, …), `None` when unknown.
    pub name: Option<String>,
}

impl NamedOid {
    pub(crate) fn new(oid: String, lookup: fn(&str) -> Option<&'static str>) -> Self {
        let name = lookup(&oid).map(str::to_owned);
        NamedOid { oid, name }
    }
}

/// One extension as it appears in the certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExtensionEntry {
    /// Dotted OID.
    pub oid: String,
    /// Name when known (`keyUsage`, `cpxCardType`, …).
    pub name: Option<String>,
    /// The critical flag.
    pub critical: bool,
    /// `extnValue` content octets, lower-case hex.
    pub value: String,
}

/// basicConstraints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BasicConstraints {
    /// The critical flag.
    pub critical: bool,
    /// `cA`.
    pub ca: bool,
    /// `pathLenConstraint`, `None` when absent.
    pub path_len: Option<u32>,
}

/// keyUsage: the bits set, by RFC 5280 name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyUsage {
    /// The critical flag.
    pub critical: bool,
    /// Names of the bits set, in bit order: `digitalSignature`, `nonRepudiation`,
    /// `keyEncipherment`, `dataEncipherment`, `keyAgreement`, `keyCertSign`, `cRLSign`,
    /// `encipherOnly`, `decipherOnly`.
    pub usages: Vec<String>,
}

impl KeyUsage {
    /// Whether the bit with this RFC 5280 name is set.
    pub fn has(&self, name: &str) -> bool {
        self.usages.iter().any(|u| u == name)
    }
}

/// extKeyUsage, in certificate order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExtendedKeyUsage {
    /// The critical flag.
    pub critical: bool,
    /// The purposes.
    pub usages: Vec<NamedOid>,
}

impl ExtendedKeyUsage {
    /// Whether the purpose with this OID is present.
    pub fn has(&self, oid: &str) -> bool {
        self.usages.iter().any(|u| u.oid == oid)
    }
}

/// One certificate policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Policy {
    /// Policy OID.
    pub oid: String,
    /// Name when known.
    pub name: Option<String>,
    /// CPS pointer qualifiers (URIs).
    pub cps_uris: Vec<String>,
}

/// One subjectAltName entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AltName {
    /// `upn`, `other_name`, `rfc822`, `dns`, `uri`, `directory`, `ip`, `registered_id`,
    /// `x400`, `edi_party` or `invalid`.
    pub kind: String,
    /// The value as text (hex for binary values, the DN text for directory names).
    pub value: String,
    /// The otherName type OID, for `upn` and `other_name`.
    pub oid: Option<String>,
}

/// The decoded extensions of a certificate. Absent extension → `None` / empty list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Extensions {
    /// Every extension, in certificate order.
    pub list: Vec<ExtensionEntry>,
    /// basicConstraints.
    pub basic_constraints: Option<BasicConstraints>,
    /// keyUsage.
    pub key_usage: Option<KeyUsage>,
    /// extKeyUsage.
    pub extended_key_usage: Option<ExtendedKeyUsage>,
    /// certificatePolicies.
    pub policies: Vec<Policy>,
    /// subjectAltName entries.
    pub subject_alt_names: Vec<AltName>,
    /// subjectKeyIdentifier, lower-case hex.
    pub subject_key_id: Option<String>,
    /// authorityKeyIdentifier keyIdentifier, lower-case hex.
    pub authority_key_id: Option<String>,
    /// cRLDistributionPoints full-name URIs.
    pub crl_distribution_points: Vec<String>,
    /// freshestCRL (delta CRL) URIs.
    pub freshest_crl: Vec<String>,
    /// authorityInfoAccess OCSP URIs.
    pub ocsp: Vec<String>,
    /// authorityInfoAccess caIssuers URIs.
    pub ca_issuers: Vec<String>,
    /// The ANS health-specific extensions (docs/data-and-certs.md §2.2).
    pub health: HealthExtensions,
}

/// Extensions this crate understands well enough to accept when critical. certificatePolicies is
/// shown but no policy processing is done (no CPx source gives policies to enforce).
const UNDERSTOOD: &[&str] = &[
    "2.5.29.14",
    "2.5.29.15",
    "2.5.29.17",
    "2.5.29.19",
    "2.5.29.31",
    "2.5.29.32",
    "2.5.29.35",
    "2.5.29.37",
    oids::FRESHEST_CRL,
    "1.3.6.1.5.5.7.1.1",
    oids::CATEGORY_EXT,
    oids::CARD_TYPE_EXT,
    oids::TOKEN_ID_EXT,
];

const KEY_USAGE_BITS: [&str; 9] = [
    "digitalSignature",
    "nonRepudiation",
    "keyEncipherment",
    "dataEncipherment",
    "keyAgreement",
    "keyCertSign",
    "cRLSign",
    "encipherOnly",
    "decipherOnly",
];

/// Decode `exts`. Non-fatal problems (a malformed non-critical extension) go to `warnings`.
pub(crate) fn decode(
    exts: &[X509Extension<'_>],
    warnings: &mut Vec<String>,
) -> Result<Extensions, ProfileError> {
    let mut out = Extensions::default();
    for ext in exts {
        let oid = ext.oid.to_id_string();
        let name = oids::extension(&oid).map(str::to_owned);
        if ext.critical && !UNDERSTOOD.contains(&oid.as_str()) {
            return Err(ProfileError::UnknownCriticalExtension { oid });
        }
        out.list.push(ExtensionEntry {
            oid: oid.clone(),
            name: name.clone(),
            critical: ext.critical,
            value: hex::encode(ext.value),
        });
        let fail = |detail: String| ProfileError::BadExtension {
            oid: oid.clone(),
            name: name.clone().unwrap_or_else(|| oid.clone()),
            detail,
        };
        let result = decode_one(ext, &oid, &mut out);
        match result {
            Ok(()) => {}
            Err(detail) if ext.critical => return Err(fail(detail)),
            Err(detail) => warnings.push(fail(detail).to_string()),
        }
    }
    Ok(out)
}

fn decode_one(ext: &X509Extension<'_>, oid: &str, out: &mut Extensions) -> Result<(), String> {
    let critical = ext.critical;
    match ext.parsed_extension() {
        ParsedExtension::ParseError { error } => return Err(error.to_string()),
        ParsedExtension::BasicConstraints(bc) => {
            out.basic_constraints = Some(BasicConstraints {
                critical,
                ca: bc.ca,
                path_len: bc.path_len_constraint,
            })
        }
        ParsedExtension::KeyUsage(ku) => {
            let usages = KEY_USAGE_BITS
                .iter()
                .enumerate()
                .filter(|(bit, _)| ku.flags & (1 << bit) != 0)
                .map(|(_, n)| (*n).to_owned())
                .collect();
            out.key_usage = Some(KeyUsage { critical, usages });
        }
        ParsedExtension::ExtendedKeyUsage(_) => {
            out.extended_key_usage = Some(ExtendedKeyUsage {
                critical,
                usages: eku_in_order(ext.value)?,
            });
        }
        ParsedExtension::CertificatePolicies(policies) => {
            for p in policies {
                let oid = p.policy_id.to_id_string();
                let mut cps_uris = Vec::new();
                for q in p.policy_qualifiers.iter().flatten() {
                    if q.policy_qualifier_id.to_id_string() == oids::QT_CPS {
                        cps_uris.push(ia5(q.qualifier).ok_or("CPS qualifier is not an IA5String")?);
                    }
                }
                let name = oids::policy(&oid).map(str::to_owned);
                out.policies.push(Policy { oid, name, cps_uris });
            }
        }
        ParsedExtension::SubjectAlternativeName(san) => {
            for gn in &san.general_names {
                out.subject_alt_names.push(alt_name(gn)?);
            }
        }
        ParsedExtension::SubjectKeyIdentifier(ki) => out.subject_key_id = Some(hex::encode(ki.0)),
        ParsedExtension::AuthorityKeyIdentifier(aki) => {
            out.authority_key_id = aki.key_identifier.as_ref().map(|k| hex::encode(k.0))
        }
        ParsedExtension::CRLDistributionPoints(points) => {
            for p in points.iter() {
                if let Some(DistributionPointName::FullName(names)) = &p.distribution_point {
                    out.crl_distribution_points.extend(uris(names));
                }
            }
        }
        ParsedExtension::AuthorityInfoAccess(aia) => {
            for ad in aia.iter() {
                let target = match ad.access_method.to_id_string().as_str() {
                    oids::AD_OCSP => &mut out.ocsp,
                    oids::AD_CA_ISSUERS => &mut out.ca_issuers,
                    _ => continue,
                };
                target.extend(uris(std::slice::from_ref(&ad.access_location)));
            }
        }
        _ if oid == oids::FRESHEST_CRL => out.freshest_crl = freshest_uris(ext.value)?,
        _ => health::decode(oid, ext.value, &mut out.health)?,
    }
    Ok(())
}

/// EKU purposes in certificate order (x509-parser's struct keeps flags, not order).
fn eku_in_order(value: &[u8]) -> Result<Vec<NamedOid>, String> {
    let mut rest = der::only(value, 0x30).ok_or("not a SEQUENCE")?;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let (tag, oid, tail) = der::element(rest).ok_or("truncated purpose")?;
        if tag != 0x06 {
            return Err(format!("purpose with tag {tag:02X}, expected an OID"));
        }
        let oid = x509_parser::asn1_rs::Oid::new(oid.into()).to_id_string();
        out.push(NamedOid::new(oid, oids::eku));
        rest = tail;
    }
    Ok(out)
}

/// freshestCRL has the CRLDistributionPoints syntax; its URIs are the `[6]` GeneralNames.
fn freshest_uris(value: &[u8]) -> Result<Vec<String>, String> {
    let doc = tlv::decode(value).map_err(|e| e.to_string())?;
    Ok(doc
        .iter()
        .filter(|n| n.tag == "86")
        .filter_map(|n| n.text.clone())
        .collect())
}

fn uris(names: &[XName<'_>]) -> Vec<String> {
    names
        .iter()
        .filter_map(|n| match n {
            XName::URI(u) => Some(text::safe((*u).to_owned())),
            _ => None,
        })
        .collect()
}

fn ia5(tlv: &[u8]) -> Option<String> {
    let value = der::only(tlv, 0x16)?;
    value
        .is_ascii()
        .then(|| text::safe(value.iter().map(|b| char::from(*b)).collect()))
}

fn alt_name(gn: &XName<'_>) -> Result<AltName, String> {
    let simple = |kind: &str, value: String| AltName {
        kind: kind.to_owned(),
        value,
        oid: None,
    };
    Ok(match gn {
        XName::OtherName(oid, value) => {
            let oid = oid.to_id_string();
            // otherName value = [0] EXPLICIT ANY; the UPN is a UTF8String (docs/data-and-certs.md §2.1).
            let inner = der::only(value, 0xA0).and_then(der::element);
            let text = match inner {
                Some((tag, data, [])) => {
                    let tag = x509_parser::asn1_rs::Tag(u32::from(tag));
                    decode_string(tag, data).1.ok().flatten()
                }
                _ => None,
            };
            match (oid.as_str(), text) {
                (oids::UPN, Some(t)) => AltName {
                    kind: "upn".into(),
                    value: t,
                    oid: Some(oid),
                },
                (oids::UPN, None) => return Err("UPN otherName is not a UTF8String".into()),
                (_, Some(t)) => AltName {
                    kind: "other_name".into(),
                    value: t,
                    oid: Some(oid),
                },
                (_, None) => AltName {
                    kind: "other_name".into(),
                    value: hex::encode(value),
                    oid: Some(oid),
                },
            }
        }
        XName::RFC822Name(s) => simple("rfc822", text::safe((*s).to_owned())),
        XName::DNSName(s) => simple("dns", text::safe((*s).to_owned())),
        XName::URI(s) => simple("uri", text::safe((*s).to_owned())),
        XName::DirectoryName(name) => simple(
            "directory",
            Dn::from_der(name.as_raw(), NameField::Subject)
                .map_err(|e| e.to_string())?
                .text,
        ),
        XName::IPAddress(b) => simple("ip", hex::encode(b)),
        XName::RegisteredID(oid) => simple("registered_id", oid.to_id_string()),
        XName::X400Address(any) => simple("x400", hex::encode(any.data)),
        XName::EDIPartyName(any) => simple("edi_party", hex::encode(any.data)),
        XName::Invalid(_, data) => simple("invalid", hex::encode(data)),
    })
}
