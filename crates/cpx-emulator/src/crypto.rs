//! RSA operations of the card keys (`rsa` crate; the emulator holds test keys only).

use rsa::traits::PublicKeyParts;
use rsa::{Pkcs1v15Encrypt, Pkcs1v15Sign, RsaPrivateKey};

use crate::sha_resume::HashAlg;

/// What a key may do on which interface (its SDO access rules, spec §9 `8C` SCBs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KeyUse {
    pub(crate) sign: bool,
    pub(crate) int_auth: bool,
    pub(crate) decipher: bool,
    pub(crate) needs_pin: bool,
    pub(crate) contactless_only: bool,
}

/// A private key on the card.
#[derive(Debug, Clone)]
pub(crate) struct CardKey {
    pub(crate) reference: u8,
    pub(crate) key: RsaPrivateKey,
    pub(crate) usage: KeyUse,
    /// FID of the DF holding the key SDO (GET DATA on `BF 90` works only there, spec §9).
    pub(crate) home_df: u16,
}

impl CardKey {
    pub(crate) fn modulus_len(&self) -> usize {
        self.key.size()
    }

    /// PKCS#1 v1.5 signature of a hash (DigestInfo added by the card), PSO CDS.
    pub(crate) fn sign_hash(&self, alg: HashAlg, hash: &[u8]) -> Option<Vec<u8>> {
        let scheme = match alg {
            HashAlg::Sha1 => Pkcs1v15Sign::new::<sha1::Sha1>(),
            HashAlg::Sha256 => Pkcs1v15Sign::new::<sha2::Sha256>(),
        };
        self.key.sign(scheme, hash).ok()
    }

    /// PKCS#1 type-1 padding of arbitrary data then RSA (INTERNAL AUTHENTICATE, spec §4.3).
    pub(crate) fn sign_raw(&self, data: &[u8]) -> Option<Vec<u8>> {
        self.key.sign(Pkcs1v15Sign::new_unprefixed(), data).ok()
    }

    /// RSA then removal of the PKCS#1 type-2 padding (PSO DECIPHER, spec §4.3).
    pub(crate) fn decrypt(&self, cryptogram: &[u8]) -> Option<Vec<u8>> {
        self.key.decrypt(Pkcs1v15Encrypt, cryptogram).ok()
    }
}
