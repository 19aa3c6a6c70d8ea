//! RSA operations of the card keys (`rsa` crate; the emulator holds test keys only).

use rsa::rand_core::{CryptoRng, RngCore};
use rsa::traits::{PrivateKeyParts, PublicKeyParts};
use rsa::{BigUint, Pkcs1v15Encrypt, Pkcs1v15Sign, Pss, RsaPrivateKey};
use sha2::Digest;

use crate::sha_resume::HashAlg;

/// What a key may do on which interface (its SDO access rules, docs/card-spec.md §9 `8C` SCBs).
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
    /// FID of the DF holding the key SDO (GET DATA on `BF 90` works only there, docs/card-spec.md §9).
    pub(crate) home_df: u16,
}

impl CardKey {
    pub(crate) fn modulus_len(&self) -> usize {
        self.key.size()
    }

    /// PKCS#1 v1.5 signature of a hash (DigestInfo added by the card), PSO CDS.
    pub(crate) fn sign_hash(&self, alg: HashAlg, hash: &[u8]) -> Option<Vec<u8>> {
        pkcs1_sign(&self.key, alg, hash)
    }

    /// PKCS#1 type-1 padding of arbitrary data then RSA (INTERNAL AUTHENTICATE, docs/card-spec.md §4.3).
    pub(crate) fn sign_raw(&self, data: &[u8]) -> Option<Vec<u8>> {
        self.key.sign(Pkcs1v15Sign::new_unprefixed(), data).ok()
    }

    /// RSA then removal of the PKCS#1 type-2 padding (PSO DECIPHER, docs/card-spec.md §4.3).
    pub(crate) fn decrypt(&self, cryptogram: &[u8]) -> Option<Vec<u8>> {
        self.key.decrypt(Pkcs1v15Encrypt, cryptogram).ok()
    }
}

/// PKCS#1 v1.5 signature of a hash (DigestInfo added by the card).
pub(crate) fn pkcs1_sign(key: &RsaPrivateKey, alg: HashAlg, hash: &[u8]) -> Option<Vec<u8>> {
    let scheme = match alg {
        HashAlg::Sha1 => Pkcs1v15Sign::new::<sha1::Sha1>(),
        HashAlg::Sha256 => Pkcs1v15Sign::new::<sha2::Sha256>(),
    };
    key.sign(scheme, hash).ok()
}

/// RSASSA-PSS of a hash: MGF1 with the same hash, salt length = hash length (docs/card-spec.md §10.10). The
/// salt comes from `seed` (deterministic: the emulator must be reproducible).
pub(crate) fn pss_sign(key: &RsaPrivateKey, alg: HashAlg, hash: &[u8], seed: &[u8]) -> Option<Vec<u8>> {
    let mut rng = SeededRng::new(seed);
    let scheme = match alg {
        HashAlg::Sha1 => Pss::new_with_salt::<sha1::Sha1>(20),
        HashAlg::Sha256 => Pss::new_with_salt::<sha2::Sha256>(32),
    };
    key.sign_with_rng(&mut rng, scheme, hash).ok()
}

/// The raw RSA private operation, left-padded to the modulus length (CPS4 PSO DECIPHER, docs/card-spec.md
/// §4.4, §10.11). `None` when the input is not smaller than the modulus.
pub(crate) fn raw_private(key: &RsaPrivateKey, input: &[u8]) -> Option<Vec<u8>> {
    let c = BigUint::from_bytes_be(input);
    if &c >= key.n() {
        return None;
    }
    // Plain c^d mod n: the test keys are public, no blinding needed (`hazmat` is feature-gated).
    let bytes = c.modpow(key.d(), key.n()).to_bytes_be();
    let n = key.size();
    let mut out = vec![0u8; n.checked_sub(bytes.len())?];
    out.extend(bytes);
    Some(out)
}

/// A deterministic byte stream (SHA-256 in counter mode over a seed) for PSS salts and blinding.
struct SeededRng {
    seed: [u8; 32],
    counter: u64,
    buf: Vec<u8>,
}

impl SeededRng {
    fn new(seed: &[u8]) -> Self {
        Self {
            seed: sha2::Sha256::digest(seed).into(),
            counter: 0,
            buf: Vec::new(),
        }
    }
}

impl RngCore for SeededRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_be_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_be_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for d in dest {
            if self.buf.is_empty() {
                let mut h = sha2::Sha256::new();
                h.update(self.seed);
                h.update(self.counter.to_be_bytes());
                self.counter = self.counter.wrapping_add(1);
                self.buf = h.finalize().to_vec();
            }
            *d = self.buf.remove(0);
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rsa::rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoRng for SeededRng {}
