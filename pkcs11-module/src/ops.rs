//! The per-session operation state: what a sign, verify, digest, encrypt or decrypt operation in
//! progress keeps between its calls, and the software halves (hashing, verifying). The
//! operations themselves are in [`crate::sign`], [`crate::decrypt`] and [`crate::digest`].
//!
//! Multi-part operations are streamed: C_SignUpdate, C_VerifyUpdate and C_DigestUpdate hash each
//! part as it comes and keep none of the message, so memory stays bounded whatever its length.
//! For the CPS3 signature key the host keeps the SHA state and the last block and the card ends
//! the hash at C_SignFinal (docs/card-spec.md §4.2); every other key signs a digest the host computed
//! ([`cpx_card::MessageHash`]). The mechanisms without hashing (CKM_RSA_PKCS,
//! CKM_RSA_PKCS_PSS) take at most a modulus' worth of data: their parts are kept up to that
//! length, and more is CKR_DATA_LEN_RANGE at the final call, as a single-part call would say.

use cpx_card::{HashAlg, KeyRole, MessageHash};
use cryptoki_sys::*;
use rsa::{BigUint, Pkcs1v15Sign, Pss, RsaPublicKey};
use sha2::Digest;
use zeroize::Zeroizing;

use crate::error::{Error, Result, ck};
use crate::mechanisms::SignMech;
use crate::objects::Object;

/// An operation's output under the two-call protocol.
#[derive(Debug, PartialEq, Eq)]
pub enum Output {
    /// The caller asked for the size only (NULL buffer).
    Size(usize),
    /// The result.
    Data(Vec<u8>),
}

/// Whether an operation has had a C_*Update: PKCS#11 2.40 §5.12 (and §5.10, §5.13 for
/// C_Digest, C_Verify): C_Sign "must be called after C_SignInit without intervening
/// C_SignUpdate calls". C_Sign, C_Verify or C_Digest after an update ends the operation with
/// CKR_OPERATION_NOT_INITIALIZED — the code each lists for an operation that is not the one the
/// call needs — instead of signing, verifying or hashing a concatenation no caller asked for
/// (issue 14). The other order stays open: a C_Digest length query before C_DigestFinal is a
/// row the official conformance plan passes (docs/card-spec.md §6.1, row 812).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Parts {
    pub(crate) updated: bool,
}

impl Parts {
    /// Record a C_*Update.
    pub(crate) fn update(&mut self) {
        self.updated = true;
    }

    /// Whether a call with `data` (C_Sign, C_Verify, C_Digest) or without (C_*Final) may go on.
    pub(crate) fn allows(self, data: Option<&[u8]>) -> bool {
        data.is_none() || !self.updated
    }
}

/// A signature in progress.
pub struct SignOp {
    pub(crate) role: KeyRole,
    pub(crate) modulus_len: usize,
    pub(crate) private: bool,
    pub(crate) input: SignInput,
    pub(crate) parts: Parts,
}

/// A signature in progress: its mechanism and what it has of the data.
pub(crate) enum SignInput {
    /// CKM_SHA*_RSA_PKCS (`pss` false), CKM_SHA*_RSA_PKCS_PSS: the message hashed so far, in
    /// the form the card needs.
    Message { pss: bool, hash: MessageHash },
    /// CKM_RSA_PKCS: the data itself (at most a modulus long).
    RsaPkcs(RawInput),
    /// CKM_RSA_PKCS_PSS: the hash of this algorithm.
    PssHash(HashAlg, RawInput),
}

/// A verification in progress.
pub struct VerifyOp {
    pub(crate) key: RsaPublicKey,
    /// The card key whose public half this is: CKM_RSA_PKCS verifies as that key signs.
    pub(crate) role: KeyRole,
    pub(crate) mech: SignMech,
    pub(crate) input: VerifyInput,
    pub(crate) parts: Parts,
}

/// The operation a failed call ends (see [`crate::session::end_after_failure`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// C_Digest, C_DigestUpdate, C_DigestFinal.
    Digest,
    /// C_Decrypt.
    Decrypt,
}

/// A C_Digest* operation in progress.
pub struct Digesting {
    pub(crate) hash: DigestOp,
    pub(crate) parts: Parts,
}

/// What a verification in progress has of its data.
pub(crate) enum VerifyInput {
    /// CKM_SHA*_RSA_PKCS[_PSS]: the message hashed so far.
    Message(DigestOp),
    /// CKM_RSA_PKCS, CKM_RSA_PKCS_PSS: the data itself (at most a modulus long).
    Raw(RawInput),
}

/// The most data a mechanism without hashing takes: a modulus, of at most 4096 bits (the cards'
/// keys are 2048-bit, docs/card-spec.md §4.1; a PrKDF claiming more does not raise the bound).
const MAX_RAW_INPUT: usize = 512;

/// The parts of a CKM_RSA_PKCS / CKM_RSA_PKCS_PSS operation: kept while they fit `cap` bytes,
/// beyond which the data is too long whatever follows (CKR_DATA_LEN_RANGE at the end) and
/// nothing more is kept. Wiped on drop (it may be a hash of a secret document, or a TLS
/// handshake's).
pub(crate) struct RawInput {
    pub(crate) data: Zeroizing<Vec<u8>>,
    pub(crate) cap: usize,
    pub(crate) too_long: bool,
}

impl RawInput {
    pub(crate) fn new(cap: usize) -> Self {
        RawInput {
            data: Zeroizing::new(Vec::new()),
            cap: cap.min(MAX_RAW_INPUT),
            too_long: false,
        }
    }

    pub(crate) fn push(&mut self, part: &[u8]) {
        if self.too_long {
            return;
        }
        if part.len() > self.cap.saturating_sub(self.data.len()) {
            self.too_long = true;
            zeroize::Zeroize::zeroize(&mut *self.data);
        } else {
            self.data.extend_from_slice(part);
        }
    }

    /// The data, or CKR_DATA_LEN_RANGE when it went past the cap.
    pub(crate) fn get(&self) -> Result<&[u8]> {
        if self.too_long {
            return ck(CKR_DATA_LEN_RANGE);
        }
        Ok(&self.data)
    }
}

/// A digest in progress.
#[derive(Clone)]
pub enum DigestOp {
    /// SHA-1.
    Sha1(sha1::Sha1),
    /// SHA-256.
    Sha256(sha2::Sha256),
}

impl DigestOp {
    pub(crate) fn new(alg: HashAlg) -> Self {
        match alg {
            HashAlg::Sha1 => DigestOp::Sha1(sha1::Sha1::new()),
            HashAlg::Sha256 => DigestOp::Sha256(sha2::Sha256::new()),
        }
    }

    pub(crate) fn update(&mut self, part: &[u8]) {
        match self {
            DigestOp::Sha1(d) => d.update(part),
            DigestOp::Sha256(d) => d.update(part),
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            DigestOp::Sha1(_) => 20,
            DigestOp::Sha256(_) => 32,
        }
    }

    pub(crate) fn finish(self) -> Vec<u8> {
        match self {
            DigestOp::Sha1(d) => d.finalize().to_vec(),
            DigestOp::Sha256(d) => d.finalize().to_vec(),
        }
    }
}

impl SignInput {
    pub(crate) fn push(&mut self, part: &[u8]) {
        match self {
            SignInput::Message { hash, .. } => hash.update(part),
            SignInput::RsaPkcs(raw) | SignInput::PssHash(_, raw) => raw.push(part),
        }
    }
}

impl VerifyInput {
    pub(crate) fn push(&mut self, part: &[u8]) {
        match self {
            VerifyInput::Message(d) => d.update(part),
            VerifyInput::Raw(r) => r.push(part),
        }
    }
}

/// A decryption in progress (the plaintext kept if the caller's buffer was too small).
pub struct DecryptOp {
    pub(crate) modulus_len: usize,
    pub(crate) result: Option<Zeroizing<Vec<u8>>>,
}

/// An encryption in progress.
pub struct EncryptOp {
    pub(crate) key: RsaPublicKey,
}

/// A session's active operations.
#[derive(Default)]
pub struct Ops {
    /// C_FindObjects results not yet returned.
    pub find: Option<Vec<CK_OBJECT_HANDLE>>,
    /// C_Sign*.
    pub sign: Option<SignOp>,
    /// C_Verify*.
    pub verify: Option<VerifyOp>,
    /// C_Digest*.
    pub digest: Option<Digesting>,
    /// C_Decrypt.
    pub decrypt: Option<DecryptOp>,
    /// C_Encrypt.
    pub encrypt: Option<EncryptOp>,
}

pub(crate) fn public_key(o: &Object) -> Result<RsaPublicKey> {
    let k = o.key().ok_or(Error::Ck(CKR_KEY_TYPE_INCONSISTENT))?;
    RsaPublicKey::new(
        BigUint::from_bytes_be(&k.modulus),
        BigUint::from_bytes_be(&k.exponent),
    )
    .map_err(|_| Error::Ck(CKR_KEY_TYPE_INCONSISTENT))
}

/// Size query / too small / go, for outputs whose length is known in advance.
pub(crate) fn check_cap(len: usize, cap: Option<usize>) -> Result<Option<Output>> {
    match cap {
        None => Ok(Some(Output::Size(len))),
        Some(c) if c < len => Err(Error::BufferTooSmall(len)),
        Some(_) => Ok(None),
    }
}

pub(crate) fn verify_sig(
    key: &RsaPublicKey,
    role: KeyRole,
    mech: SignMech,
    input: VerifyInput,
    sig: &[u8],
) -> Result<()> {
    use rsa::traits::PublicKeyParts;
    let k = key.size();
    // The data is checked before the signature's length: the official conformance plan
    // (docs/card-spec.md §6.1 row 712) expects CKR_DATA_LEN_RANGE for over-long data with a short signature.
    let hashed = match (mech, input) {
        (_, VerifyInput::Message(d)) => d.finish(),
        (SignMech::PssHash(h), VerifyInput::Raw(r)) => {
            let data = r.get()?;
            if data.len() != h.digest_len() {
                return ck(CKR_DATA_LEN_RANGE);
            }
            data.to_vec()
        }
        (_, VerifyInput::Raw(r)) => {
            let data = r.get()?;
            if data.len() > k.saturating_sub(11) {
                return ck(CKR_DATA_LEN_RANGE);
            }
            match (role, cpx_card::strip_digest_info(data)) {
                // The signature key signs a bare SHA-1/SHA-256 hash as its DigestInfo (docs/card-spec.md
                // §4.2; the official module's release note 1104): verified the same way, so
                // that C_Sign and C_Verify agree on the same data (issue 14).
                (KeyRole::Signature, Some((alg, hash))) => alg.digest_info(hash),
                _ => data.to_vec(),
            }
        }
    };
    if sig.len() != k {
        return ck(CKR_SIGNATURE_LEN_RANGE);
    }
    let r = match mech {
        SignMech::RsaPkcs => key.verify(Pkcs1v15Sign::new_unprefixed(), &hashed, sig),
        SignMech::Pkcs1(HashAlg::Sha1) => key.verify(Pkcs1v15Sign::new::<sha1::Sha1>(), &hashed, sig),
        SignMech::Pkcs1(HashAlg::Sha256) => key.verify(Pkcs1v15Sign::new::<sha2::Sha256>(), &hashed, sig),
        SignMech::Pss(HashAlg::Sha1) | SignMech::PssHash(HashAlg::Sha1) => {
            key.verify(Pss::new_with_salt::<sha1::Sha1>(20), &hashed, sig)
        }
        SignMech::Pss(HashAlg::Sha256) | SignMech::PssHash(HashAlg::Sha256) => {
            key.verify(Pss::new_with_salt::<sha2::Sha256>(32), &hashed, sig)
        }
    };
    r.map_err(|_| Error::Ck(CKR_SIGNATURE_INVALID))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_call_protocol() {
        assert_eq!(check_cap(256, None).ok().flatten(), Some(Output::Size(256)));
        assert!(matches!(
            check_cap(256, Some(10)),
            Err(Error::BufferTooSmall(256))
        ));
        assert_eq!(check_cap(256, Some(256)).ok().flatten(), None);
    }
}
