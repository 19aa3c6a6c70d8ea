//! Deterministic key material: RSA keys, serial numbers and key identifiers derived from fixed
//! seed strings, so that every run writes the same bytes.
//!
//! Seed scheme (documented in `test-vectors/README.md`): the seed string, e.g.
//! `cpx-test/cps3-doctor/auth` or `cpx-test/pki/acr-fort`, is hashed with SHA-256 and the digest
//! seeds a ChaCha20 RNG that drives `rsa`'s key generation. Serial numbers hash
//! `<seed>/serial` the same way.

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey};
use rsa::{RsaPrivateKey, RsaPublicKey};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::der::Decode;
use x509_cert::serial_number::SerialNumber;

use crate::Result;

/// Every key in the test PKI is RSA-2048: the card keys because CPS3/CPS4 keys are RSA-2048
/// (docs/card-notes.md §5), the CAs to keep generation fast (the real roots are RSA-4096, docs/card-notes.md
/// §8).
pub(crate) const RSA_BITS: usize = 2048;

/// A generated key pair with the seed it came from.
pub(crate) struct KeyPair {
    /// The seed string (kept for error messages and the README).
    pub(crate) seed: String,
    /// The private key.
    pub(crate) private: RsaPrivateKey,
}

impl KeyPair {
    /// Generates the RSA-2048 key pair for `seed`; same seed, same key (for a given `rsa` version:
    /// the key-generation algorithm is part of the contract, see the README).
    pub(crate) fn from_seed(seed: &str) -> Result<Self> {
        let mut rng = ChaCha20Rng::from_seed(Sha256::digest(seed.as_bytes()).into());
        let private = RsaPrivateKey::new(&mut rng, RSA_BITS)
            .map_err(|e| format!("RSA key generation for {seed}: {e}"))?;
        Ok(Self {
            seed: seed.to_owned(),
            private,
        })
    }

    /// The public half.
    pub(crate) fn public(&self) -> RsaPublicKey {
        self.private.to_public_key()
    }

    /// PKCS#8 `PrivateKeyInfo` DER (unencrypted: these keys are published test keys).
    pub(crate) fn pkcs8_der(&self) -> Result<Vec<u8>> {
        Ok(self.private.to_pkcs8_der()?.as_bytes().to_vec())
    }

    /// SubjectPublicKeyInfo (rsaEncryption with NULL parameters, as in the real certificates).
    pub(crate) fn spki(&self) -> Result<SubjectPublicKeyInfoOwned> {
        let der = self.public().to_public_key_der()?;
        Ok(SubjectPublicKeyInfoOwned::from_der(der.as_bytes())?)
    }

    /// Key identifier = SHA-1 of the `subjectPublicKey` BIT STRING contents (RFC 5280 §4.2.1.2
    /// method 1). Checked on the real IGC-Santé certificates: their SKIs match this method
    /// (e.g. ACR FORT `38:43:05:11…`, and the TEST CPE card `3F:0F:9C:73…`).
    pub(crate) fn key_id(&self) -> Result<Vec<u8>> {
        let spki = self.spki()?;
        Ok(Sha1::digest(spki.subject_public_key.raw_bytes()).to_vec())
    }
}

/// A positive serial number of exactly `len` bytes derived from `<seed>/serial`.
///
/// The first byte is forced into `0x40..=0x7F`: positive (no leading `00` needed) and non-zero, so
/// the INTEGER is exactly `len` bytes long. The real card certificate has a 16-byte serial
/// (docs/data-and-certs.md §2.1); the real CAs have 18-byte serials.
pub(crate) fn serial(seed: &str, len: usize) -> Result<SerialNumber> {
    let digest = Sha256::digest(format!("{seed}/serial").as_bytes());
    let mut bytes = digest.get(..len).ok_or("serial longer than 32 bytes")?.to_vec();
    if let Some(first) = bytes.first_mut() {
        *first = (*first & 0x3F) | 0x40;
    }
    Ok(SerialNumber::new(&bytes)?)
}
