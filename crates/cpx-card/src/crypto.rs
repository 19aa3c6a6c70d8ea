//! Keys and mechanisms of the card API, and the checks shared by both generations.

use crate::error::CardError;
use crate::hash::{HashAlg, MessageHash};

/// Which private key (docs/card-spec.md §1.5, §5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyRole {
    /// CPS_PRIV_SIG: nonRepudiation.
    Signature,
    /// CPS_PRIV_AUT (decrypt + sign); on the CPS3 contactless interface CPS_PRIV_TECH_AUT.
    Authentication,
}

/// What is signed, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mechanism {
    /// PKCS#1 v1.5 over a message hashed with this algorithm (CKM_SHA*_RSA_PKCS). CPS3 signature
    /// key: the card finishes the hash (docs/card-spec.md §4.2); otherwise the host hashes.
    Pkcs1(HashAlg),
    /// PKCS#1 v1.5 over caller data (CKM_RSA_PKCS): a 20/32-byte hash or a DigestInfo for the
    /// signature key (docs/card-spec.md §4.2, §4.4); any data the card can pad for the authentication key
    /// (≤ 40 % of the modulus on CPS3, docs/card-spec.md §4.3).
    RsaPkcs,
    /// PSS over a message hashed on the host (CKM_SHA*_RSA_PKCS_PSS), CPS4 only (docs/card-spec.md §4.4):
    /// MGF1 with the same hash, salt length = hash length (docs/card-spec.md §10.10).
    Pss(HashAlg),
    /// PSS over a precomputed 20/32-byte hash (CKM_RSA_PKCS_PSS), CPS4 only.
    PssHash,
}

/// The hash of a precomputed-hash input, or the error of docs/card-spec.md §4.2 (an invalid DigestInfo).
pub(crate) fn hash_input<'a>(
    operation: &'static str,
    data: &'a [u8],
) -> Result<(HashAlg, &'a [u8]), CardError> {
    crate::hash::strip_digest_info(data).ok_or_else(|| CardError::InvalidInput {
        operation,
        reason: format!(
            "{} bytes: neither a SHA-1/SHA-256 hash nor its DigestInfo",
            data.len()
        ),
    })
}

/// What a driver signs, with the mechanism that says how (built by [`crate::Card`] from a
/// [`Mechanism`]).
#[derive(Debug, Clone, Copy)]
pub(crate) enum ToSign<'a> {
    /// CKM_SHA*_RSA_PKCS (`pss` false) or CKM_SHA*_RSA_PKCS_PSS: a message hashed as it came.
    Message {
        /// PSS rather than PKCS#1 v1.5.
        pss: bool,
        /// The hashed message.
        message: &'a MessageHash,
    },
    /// CKM_RSA_PKCS: caller data.
    RsaPkcs(&'a [u8]),
    /// CKM_RSA_PKCS_PSS: a precomputed hash.
    PssHash(&'a [u8]),
}

/// The digest of a message the host hashed, or the error of a message hashed for the card's
/// own ending of the hash (a [`MessageHash`] made by another card).
pub(crate) fn host_digest(message: &MessageHash) -> Result<Vec<u8>, CardError> {
    message.host_digest().ok_or_else(|| CardError::InvalidInput {
        operation: "sign a message",
        reason: "the message was hashed for the CPS3 signature key, which ends the hash on the card".into(),
    })
}
