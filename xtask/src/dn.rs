//! Distinguished names with the string types and RDN layout of the real IGC-Santé certificates.
//!
//! docs/data-and-certs.md §2.1: `C` is a PrintableString, every other attribute a UTF8String, in the
//! issuer as in the subject. Person subjects end with ONE multi-valued RDN `{GN + CN + SN}`
//! (§2.3); the order of the AVAs inside it is the DER SET OF order, which `SetOfVec` computes.

use const_oid::ObjectIdentifier;
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::der::Tag;
use x509_cert::der::asn1::{Any, SetOfVec};
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};

use crate::Result;

/// `countryName` (2.5.4.6).
pub(crate) const C: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.6");
/// `stateOrProvinceName` (2.5.4.8).
pub(crate) const ST: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.8");
/// `organizationName` (2.5.4.10).
pub(crate) const O: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.10");
/// `organizationalUnitName` (2.5.4.11).
pub(crate) const OU: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.11");
/// `title` (2.5.4.12).
pub(crate) const TITLE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.12");
/// `commonName` (2.5.4.3).
pub(crate) const CN: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");
/// `surname` (2.5.4.4).
pub(crate) const SN: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.4");
/// `givenName` (2.5.4.42).
pub(crate) const GN: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.42");

/// Builds a [`Name`] one RDN at a time, in the order given (DER keeps RDN order).
#[derive(Default)]
pub(crate) struct DnBuilder {
    rdns: Vec<RelativeDistinguishedName>,
}

impl DnBuilder {
    /// Appends a single-valued RDN.
    pub(crate) fn rdn(mut self, oid: ObjectIdentifier, value: &str) -> Result<Self> {
        self.rdns.push(rdn(&[(oid, value)])?);
        Ok(self)
    }

    /// Appends a single-valued RDN if `value` is present.
    pub(crate) fn rdn_opt(self, oid: ObjectIdentifier, value: Option<&str>) -> Result<Self> {
        match value {
            Some(v) => self.rdn(oid, v),
            None => Ok(self),
        }
    }

    /// Appends one multi-valued RDN holding all `avas` (DER-sorted).
    pub(crate) fn multi(mut self, avas: &[(ObjectIdentifier, &str)]) -> Result<Self> {
        self.rdns.push(rdn(avas)?);
        Ok(self)
    }

    /// The finished name.
    pub(crate) fn build(self) -> Name {
        RdnSequence(self.rdns)
    }
}

fn rdn(avas: &[(ObjectIdentifier, &str)]) -> Result<RelativeDistinguishedName> {
    let mut set = SetOfVec::new();
    for &(oid, value) in avas {
        set.insert(ava(oid, value)?)?;
    }
    Ok(RelativeDistinguishedName(set))
}

fn ava(oid: ObjectIdentifier, value: &str) -> Result<AttributeTypeAndValue> {
    // docs/data-and-certs.md §2.1: only the country is a PrintableString.
    let tag = if oid == C {
        Tag::PrintableString
    } else {
        Tag::Utf8String
    };
    Ok(AttributeTypeAndValue {
        oid,
        value: Any::new(tag, value.as_bytes())?,
    })
}

/// The value of the first attribute `oid` anywhere in `name` (test and holder checks).
#[cfg(test)]
pub(crate) fn find(name: &Name, oid: ObjectIdentifier) -> Option<String> {
    name.0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .find(|ava| ava.oid == oid)
        .and_then(|ava| String::from_utf8(ava.value.value().to_vec()).ok())
}
