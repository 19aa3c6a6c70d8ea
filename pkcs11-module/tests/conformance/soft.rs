//! Software checks of what the card produced: hashes, DigestInfos and RSA signature
//! verification with the certificate's public key (`rsa` crate), independent of the module.

use rsa::{Pkcs1v15Sign, Pss, RsaPublicKey};
use sha2::Digest;

/// The plan's message for hash signatures (`BuildFullHash` input, docs/card-spec.md §6.1 rows 619–644).
pub const DOCUMENT: &[u8] = b"document_to_sign";

/// DigestInfo prefix for SHA-1 (PKCS#1 v2.2 §9.2 note 1).
const SHA1_PREFIX: [u8; 15] = [
    0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14,
];
/// DigestInfo prefix for SHA-256.
const SHA256_PREFIX: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00,
    0x04, 0x20,
];

/// SHA-1.
pub fn sha1(data: &[u8]) -> Vec<u8> {
    sha1::Sha1::digest(data).to_vec()
}

/// SHA-256.
pub fn sha256(data: &[u8]) -> Vec<u8> {
    sha2::Sha256::digest(data).to_vec()
}

/// DigestInfo(SHA-1(data)): 35 bytes.
pub fn digest_info_sha1(data: &[u8]) -> Vec<u8> {
    [SHA1_PREFIX.as_slice(), &sha1(data)].concat()
}

/// DigestInfo(SHA-256(data)): 51 bytes.
pub fn digest_info_sha256(data: &[u8]) -> Vec<u8> {
    [SHA256_PREFIX.as_slice(), &sha256(data)].concat()
}

/// A hash algorithm of the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    /// SHA-1.
    Sha1,
    /// SHA-256.
    Sha256,
}

/// A PKCS#1 v1.5 signature over `block` as given (CKM_RSA_PKCS: the caller's DigestInfo or data).
pub fn check_raw(key: &RsaPublicKey, block: &[u8], sig: &[u8]) -> Result<(), String> {
    key.verify(Pkcs1v15Sign::new_unprefixed(), block, sig)
        .map_err(|e| format!("CKM_RSA_PKCS signature does not verify: {e}"))
}

/// A PKCS#1 v1.5 signature of a hash already computed (DigestInfo added here).
pub fn check_hash(key: &RsaPublicKey, h: Hash, hash: &[u8], sig: &[u8]) -> Result<(), String> {
    let r = match h {
        Hash::Sha1 => key.verify(Pkcs1v15Sign::new::<sha1::Sha1>(), hash, sig),
        Hash::Sha256 => key.verify(Pkcs1v15Sign::new::<sha2::Sha256>(), hash, sig),
    };
    r.map_err(|e| format!("PKCS#1 v1.5 {h:?} signature does not verify: {e}"))
}

/// A CKM_SHA*_RSA_PKCS signature of `msg`.
pub fn check_message(key: &RsaPublicKey, h: Hash, msg: &[u8], sig: &[u8]) -> Result<(), String> {
    let hash = match h {
        Hash::Sha1 => sha1(msg),
        Hash::Sha256 => sha256(msg),
    };
    check_hash(key, h, &hash, sig)
}

/// A CKM_SHA*_RSA_PKCS_PSS signature of `msg`: MGF1 with the same hash, salt = hash length
/// (what the card does, docs/card-spec.md §10.10).
pub fn check_pss(key: &RsaPublicKey, h: Hash, msg: &[u8], sig: &[u8]) -> Result<(), String> {
    let r = match h {
        Hash::Sha1 => key.verify(Pss::new_with_salt::<sha1::Sha1>(20), &sha1(msg), sig),
        Hash::Sha256 => key.verify(Pss::new_with_salt::<sha2::Sha256>(32), &sha256(msg), sig),
    };
    r.map_err(|e| format!("PSS {h:?} signature does not verify: {e}"))
}
