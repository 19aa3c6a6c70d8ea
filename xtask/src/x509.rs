//! Assembling and signing certificates.
//!
//! The TBSCertificate is built field by field (no `x509-cert` builder profile) so that the
//! extension set, order and criticality are exactly the ones chosen in `pki.rs`/`profile.rs`.
//! sha256WithRSAEncryption with PKCS#1 v1.5 padding is deterministic, so the same key and TBS
//! give the same signature on every run.

use const_oid::db::rfc5912::SHA_256_WITH_RSA_ENCRYPTION;
use rsa::pkcs1v15::SigningKey;
use rsa::signature::{SignatureEncoding, Signer};
use sha2::Sha256;
use spki::AlgorithmIdentifierOwned;
use x509_cert::certificate::{Certificate, TbsCertificate, Version};
use x509_cert::der::asn1::{Any, BitString, UtcTime};
use x509_cert::der::{DateTime, Encode};
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};

use crate::Result;
use crate::keys::KeyPair;

/// A calendar date at 00:00:00 UTC (all test-PKI dates are midnight UTC).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Date {
    /// Year (UTCTime: 1950..=2049).
    pub(crate) year: u16,
    /// Month 1..=12.
    pub(crate) month: u8,
    /// Day 1..=31.
    pub(crate) day: u8,
}

impl Date {
    /// `Date { year, month, day }` in a const context.
    pub(crate) const fn ymd(year: u16, month: u8, day: u8) -> Self {
        Self { year, month, day }
    }

    /// As an X.509 `Time`: UTCTime, like every real IGC-Santé certificate.
    pub(crate) fn to_time(self) -> Result<Time> {
        let dt = DateTime::new(self.year, self.month, self.day, 0, 0, 0)?;
        Ok(Time::UtcTime(UtcTime::from_date_time(dt)?))
    }

    /// RFC 3339 form for `holder.toml`.
    pub(crate) fn rfc3339(self) -> String {
        format!("{:04}-{:02}-{:02}T00:00:00Z", self.year, self.month, self.day)
    }
}

/// Validity period `[not_before, not_after]`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Period {
    /// notBefore.
    pub(crate) not_before: Date,
    /// notAfter.
    pub(crate) not_after: Date,
}

impl Period {
    fn to_validity(self) -> Result<Validity> {
        Ok(Validity {
            not_before: self.not_before.to_time()?,
            not_after: self.not_after.to_time()?,
        })
    }
}

/// Everything a certificate needs besides its signer.
pub(crate) struct CertSpec<'a> {
    /// serialNumber.
    pub(crate) serial: SerialNumber,
    /// issuer DN (the signer's subject).
    pub(crate) issuer: Name,
    /// validity.
    pub(crate) period: Period,
    /// subject DN.
    pub(crate) subject: Name,
    /// the subject's key pair (only the public half goes in).
    pub(crate) subject_key: &'a KeyPair,
    /// extensions, in encoding order.
    pub(crate) extensions: Vec<Extension>,
}

/// sha256WithRSAEncryption with explicit NULL parameters (as in the real certificates).
fn sha256_with_rsa() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid: SHA_256_WITH_RSA_ENCRYPTION,
        parameters: Some(Any::null()),
    }
}

/// Builds the TBSCertificate from `spec` and signs it with `signer`.
pub(crate) fn issue(spec: CertSpec<'_>, signer: &KeyPair) -> Result<Certificate> {
    let tbs = TbsCertificate {
        version: Version::V3,
        serial_number: spec.serial,
        signature: sha256_with_rsa(),
        issuer: spec.issuer,
        validity: spec.period.to_validity()?,
        subject: spec.subject,
        subject_public_key_info: spec.subject_key.spki()?,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(spec.extensions),
    };
    let signing_key = SigningKey::<Sha256>::new(signer.private.clone());
    let signature = signing_key
        .try_sign(&tbs.to_der()?)
        .map_err(|e| format!("signing with {}: {e}", signer.seed))?;
    Ok(Certificate {
        tbs_certificate: tbs,
        signature_algorithm: sha256_with_rsa(),
        signature: BitString::from_bytes(&signature.to_bytes())?,
    })
}
