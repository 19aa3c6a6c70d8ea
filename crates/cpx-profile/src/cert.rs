//! One X.509 certificate, parsed from DER into owned, serialisable facts.

use serde::Serialize;
use sha2::{Digest, Sha256};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::dn::Dn;
use crate::error::{NameField, ProfileError};
use crate::ext::{self, Extensions, NamedOid};
use crate::role::{self, RoleInfo};
use crate::timestamp::Timestamp;
use crate::{der, oids};

pub use crate::der::MAX_CERT_LEN;

/// Validity period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Validity {
    /// notBefore.
    pub not_before: Timestamp,
    /// notAfter.
    pub not_after: Timestamp,
}

impl Validity {
    /// Whether `at` lies in `[not_before, not_after]` (RFC 5280 §4.1.2.5, both ends included).
    pub fn contains(&self, at: Timestamp) -> bool {
        self.not_before <= at && at <= self.not_after
    }
}

/// An RSA public key's size and exponent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RsaKey {
    /// Modulus size in bits (2048 on CPx cards, 4096 on the real IGC-Santé CAs).
    pub modulus_bits: usize,
    /// Public exponent, `None` when it does not fit 64 bits (see `exponent_hex`).
    pub exponent: Option<u64>,
    /// Public exponent, lower-case hex.
    pub exponent_hex: String,
}

/// subjectPublicKeyInfo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublicKeyInfo {
    /// Algorithm.
    pub algorithm: NamedOid,
    /// RSA parameters, `None` for other key types or an undecodable RSA key.
    pub rsa: Option<RsaKey>,
}

/// A parsed certificate. Build it with [`Certificate::from_der`].
///
/// ```
/// use cpx_profile::{Certificate, Role};
///
/// # let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../test-vectors/cards/cps3-doctor");
/// let der = std::fs::read(format!("{dir}/auth.der"))?;
/// let cert = Certificate::from_der(&der)?;
/// assert_eq!(cert.role.role, Role::Authentication);
/// assert_eq!(cert.subject.common_name(), Some("899700000013"));
/// assert_eq!(cert.public_key.rsa.as_ref().map(|k| k.modulus_bits), Some(2048));
/// assert_eq!(cert.extensions.health.card_type_code, Some(0)); // CPS (DICO G02)
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Certificate {
    /// SHA-256 of the DER, lower-case hex.
    pub sha256: String,
    /// X.509 version (1, 2 or 3).
    pub version: u32,
    /// serialNumber, lower-case hex, as encoded (minus a sign-padding leading zero).
    pub serial: String,
    /// Signature algorithm.
    pub signature_algorithm: NamedOid,
    /// Issuer DN.
    pub issuer: Dn,
    /// Subject DN.
    pub subject: Dn,
    /// Validity period.
    pub validity: Validity,
    /// Subject public key.
    pub public_key: PublicKeyInfo,
    /// Extensions.
    pub extensions: Extensions,
    /// Role from the usages.
    pub role: RoleInfo,
    /// Non-fatal oddities (e.g. a malformed non-critical extension).
    pub warnings: Vec<String>,
    /// The DER, for signature checks.
    #[serde(skip)]
    pub(crate) der: Vec<u8>,
    /// Byte range of tbsCertificate in `der`.
    #[serde(skip)]
    pub(crate) tbs: std::ops::Range<usize>,
    /// signatureValue bits.
    #[serde(skip)]
    pub(crate) signature: Vec<u8>,
    /// RSA (modulus, exponent) without leading zeros.
    #[serde(skip)]
    pub(crate) rsa: Option<(Vec<u8>, Vec<u8>)>,
}

impl Certificate {
    /// Parse a DER certificate.
    ///
    /// # Errors
    /// [`ProfileError::Empty`], [`ProfileError::WrongTag`], [`ProfileError::Truncated`],
    /// [`ProfileError::AbsurdLength`], [`ProfileError::TrailingBytes`] for the outer envelope;
    /// [`ProfileError::Malformed`] when the X.509 structure inside is wrong;
    /// [`ProfileError::BadString`] for a DN value invalid for its string type (e.g. non-UTF-8
    /// in a UTF8String); [`ProfileError::UnknownCriticalExtension`] and
    /// [`ProfileError::BadExtension`] (malformed critical extension).
    pub fn from_der(input: &[u8]) -> Result<Certificate, ProfileError> {
        der::check_envelope(input)?;
        let (rest, x) =
            X509Certificate::from_der(input).map_err(|e| ProfileError::Malformed(e.to_string()))?;
        if !rest.is_empty() {
            return Err(ProfileError::TrailingBytes { count: rest.len() });
        }
        let tbs = x.tbs_certificate.as_ref();
        let tbs_start = tbs.as_ptr() as usize - input.as_ptr() as usize;
        let mut warnings = Vec::new();
        let extensions = ext::decode(x.tbs_certificate.extensions(), &mut warnings)?;
        let role = role::classify(&extensions);
        let spki = &x.tbs_certificate.subject_pki;
        let key_oid = spki.algorithm.algorithm.to_id_string();
        // The GIP-CPS private OID (docs/card-notes.md §8) also holds an RSAPublicKey.
        let rsa = match key_oid.as_str() {
            oids::RSA_ENCRYPTION | oids::GIP_CPS_RSA => {
                let parsed = der::rsa_public_key(&spki.subject_public_key.data);
                if parsed.is_none() {
                    warnings.push("RSA public key does not decode as RSAPublicKey".to_owned());
                }
                parsed
            }
            _ => None,
        };
        let public_key = PublicKeyInfo {
            algorithm: NamedOid::new(key_oid, oids::key),
            rsa: rsa.map(|(n, e)| RsaKey {
                modulus_bits: der::bit_length(n),
                exponent: u64::try_from(der::integer(e).unwrap_or(-1))
                    .ok()
                    .filter(|_| e.len() <= 8),
                exponent_hex: hex::encode(e),
            }),
        };
        let raw_serial = x.tbs_certificate.raw_serial();
        let serial = match raw_serial {
            [0, rest @ ..] if rest.first().is_some_and(|b| b & 0x80 != 0) => rest,
            s => s,
        };
        let validity = &x.tbs_certificate.validity;
        Ok(Certificate {
            sha256: hex::encode(Sha256::digest(input)),
            version: x.tbs_certificate.version.0 + 1,
            serial: hex::encode(serial),
            signature_algorithm: NamedOid::new(
                x.signature_algorithm.algorithm.to_id_string(),
                oids::signature,
            ),
            issuer: Dn::from_der(x.tbs_certificate.issuer.as_raw(), NameField::Issuer)?,
            subject: Dn::from_der(x.tbs_certificate.subject.as_raw(), NameField::Subject)?,
            validity: Validity {
                not_before: Timestamp::from_unix(validity.not_before.timestamp()),
                not_after: Timestamp::from_unix(validity.not_after.timestamp()),
            },
            public_key,
            extensions,
            role,
            warnings,
            der: input.to_vec(),
            tbs: tbs_start..tbs_start + tbs.len(),
            signature: x.signature_value.data.to_vec(),
            rsa: rsa.map(|(n, e)| (n.to_vec(), e.to_vec())),
        })
    }

    /// The DER bytes this certificate was parsed from.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// Subject and issuer are the same name (a root, or a self-issued certificate).
    pub fn is_self_issued(&self) -> bool {
        self.subject.same_name(&self.issuer)
    }

    /// The signed part (tbsCertificate DER).
    pub(crate) fn tbs_bytes(&self) -> &[u8] {
        self.der.get(self.tbs.clone()).unwrap_or_default()
    }
}
