//! The invariant on signatures: one the module answered CKR_OK for verifies with the public key
//! of one of the card's certificates (parsed from the DER the emulated card serves).

use cryptoki_sys::*;
use rsa::pkcs8::DecodePublicKey;
use rsa::{Pkcs1v15Sign, Pss, RsaPublicKey};
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// The public keys of the card's certificates.
pub fn public_keys(certificates: &[Vec<u8>]) -> Vec<RsaPublicKey> {
    certificates
        .iter()
        .filter_map(|der| {
            let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
            RsaPublicKey::from_public_key_der(cert.tbs_certificate.subject_pki.raw).ok()
        })
        .collect()
}

/// A signing operation as C_SignInit started it.
#[derive(Clone, Debug)]
pub struct SignOp {
    pub mechanism: CK_MECHANISM_TYPE,
    /// The PSS parameters passed (hash, salt length), when well-formed.
    pub pss: Option<(CK_MECHANISM_TYPE, usize)>,
    /// The parts passed to C_SignUpdate so far.
    pub parts: Vec<u8>,
}

/// Whether `signature` over `message` verifies with one of `keys` under `op`'s mechanism. For
/// CKM_RSA_PKCS a bare SHA-1/SHA-256 hash may have been signed as a DigestInfo (the card's rule,
/// as the official module; issue 14 "Consistency").
pub fn verifies(keys: &[RsaPublicKey], op: &SignOp, message: &[u8], signature: &[u8]) -> bool {
    keys.iter().any(|key| verifies_with(key, op, message, signature))
}

fn verifies_with(key: &RsaPublicKey, op: &SignOp, message: &[u8], signature: &[u8]) -> bool {
    match op.mechanism {
        CKM_RSA_PKCS => {
            key.verify(Pkcs1v15Sign::new_unprefixed(), message, signature)
                .is_ok()
                || (message.len() == 20
                    && key
                        .verify(Pkcs1v15Sign::new::<Sha1>(), message, signature)
                        .is_ok())
                || (message.len() == 32
                    && key
                        .verify(Pkcs1v15Sign::new::<Sha256>(), message, signature)
                        .is_ok())
        }
        CKM_SHA1_RSA_PKCS => key
            .verify(Pkcs1v15Sign::new::<Sha1>(), &Sha1::digest(message), signature)
            .is_ok(),
        CKM_SHA256_RSA_PKCS => key
            .verify(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(message), signature)
            .is_ok(),
        CKM_RSA_PKCS_PSS | CKM_SHA1_RSA_PKCS_PSS | CKM_SHA256_RSA_PKCS_PSS => {
            let Some((hash, salt)) = op.pss else { return false };
            let hashed = match op.mechanism {
                CKM_SHA1_RSA_PKCS_PSS => Sha1::digest(message).to_vec(),
                CKM_SHA256_RSA_PKCS_PSS => Sha256::digest(message).to_vec(),
                _ => message.to_vec(),
            };
            match hash {
                CKM_SHA_1 => key
                    .verify(Pss::new_with_salt::<Sha1>(salt), &hashed, signature)
                    .is_ok(),
                CKM_SHA256 => key
                    .verify(Pss::new_with_salt::<Sha256>(salt), &hashed, signature)
                    .is_ok(),
                _ => false,
            }
        }
        // Any other mechanism answering CKR_OK is checked by nothing here: say so loudly.
        other => panic!("C_Sign answered CKR_OK for mechanism 0x{other:X}, which the harness cannot check"),
    }
}
