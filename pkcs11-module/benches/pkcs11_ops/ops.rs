//! The operations measured, shared by the PKCS#11 worker and the in-process run.

use cpx_card::{HashAlg, KeyRole};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use rsa::{Pkcs1v15Sign, Pss, RsaPublicKey};
use sha2::Digest;

/// The card the operations run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardModel {
    Cps3,
    Cps4,
}

impl CardModel {
    pub fn stem(self) -> &'static str {
        match self {
            CardModel::Cps3 => "cps3-doctor",
            CardModel::Cps4 => "cps4-doctor",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            CardModel::Cps3 => "CPS3",
            CardModel::Cps4 => "CPS4",
        }
    }

    pub fn parse(s: &str) -> Option<CardModel> {
        match s {
            "CPS3" => Some(CardModel::Cps3),
            "CPS4" => Some(CardModel::Cps4),
            _ => None,
        }
    }
}

/// One signature: its name on the wire protocol and in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signing {
    /// CKM_SHA256_RSA_PKCS, signature key, 1024-byte message (docs/card-spec.md §8.6).
    Sha256Sig,
    /// CKM_SHA1_RSA_PKCS, signature key.
    Sha1Sig,
    /// CKM_RSA_PKCS, signature key, SHA-256 DigestInfo (a precomputed hash, docs/card-spec.md §4.2).
    RsaPkcsSig,
    /// CKM_RSA_PKCS, authentication key, SHA-256 DigestInfo (docs/card-spec.md §8.7).
    RsaPkcsAuth,
    /// CKM_SHA256_RSA_PKCS_PSS, signature key (CPS4).
    Sha256PssSig,
    /// CKM_SHA256_RSA_PKCS_PSS, authentication key (CPS4, TLS 1.3).
    Sha256PssAuth,
    /// CKM_RSA_PKCS_PSS over a SHA-256 hash, signature key (CPS4).
    PssHashSig,
}

pub const CPS3_SIGS: &[Signing] = &[
    Signing::Sha256Sig,
    Signing::Sha1Sig,
    Signing::RsaPkcsSig,
    Signing::RsaPkcsAuth,
];
pub const CPS4_SIGS: &[Signing] = &[
    Signing::Sha256Sig,
    Signing::Sha1Sig,
    Signing::RsaPkcsSig,
    Signing::RsaPkcsAuth,
    Signing::Sha256PssSig,
    Signing::Sha256PssAuth,
    Signing::PssHashSig,
];

/// The message signed (the 1024 bytes of docs/card-spec.md §8.6).
pub const MESSAGE: [u8; 1024] = [b'A'; 1024];

impl Signing {
    pub fn all(card: CardModel) -> &'static [Signing] {
        match card {
            CardModel::Cps3 => CPS3_SIGS,
            CardModel::Cps4 => CPS4_SIGS,
        }
    }

    pub fn id(self) -> &'static str {
        match self {
            Signing::Sha256Sig => "sign-sha256-sig",
            Signing::Sha1Sig => "sign-sha1-sig",
            Signing::RsaPkcsSig => "sign-rsa-pkcs-sig",
            Signing::RsaPkcsAuth => "sign-rsa-pkcs-auth",
            Signing::Sha256PssSig => "sign-sha256-pss-sig",
            Signing::Sha256PssAuth => "sign-sha256-pss-auth",
            Signing::PssHashSig => "sign-pss-hash-sig",
        }
    }

    pub fn from_id(s: &str) -> Option<Signing> {
        CPS4_SIGS.iter().copied().find(|g| g.id() == s)
    }

    pub fn title(self) -> &'static str {
        match self {
            Signing::Sha256Sig => "C_Sign CKM_SHA256_RSA_PKCS, signature key, 1 KiB",
            Signing::Sha1Sig => "C_Sign CKM_SHA1_RSA_PKCS, signature key, 1 KiB",
            Signing::RsaPkcsSig => "C_Sign CKM_RSA_PKCS, signature key, SHA-256 DigestInfo",
            Signing::RsaPkcsAuth => "C_Sign CKM_RSA_PKCS, authentication key, SHA-256 DigestInfo",
            Signing::Sha256PssSig => "C_Sign CKM_SHA256_RSA_PKCS_PSS, signature key, 1 KiB",
            Signing::Sha256PssAuth => "C_Sign CKM_SHA256_RSA_PKCS_PSS, authentication key, 1 KiB",
            Signing::PssHashSig => "C_Sign CKM_RSA_PKCS_PSS, signature key, SHA-256 hash",
        }
    }

    pub fn role(self) -> KeyRole {
        match self {
            Signing::RsaPkcsAuth | Signing::Sha256PssAuth => KeyRole::Authentication,
            _ => KeyRole::Signature,
        }
    }

    /// The PKCS#11 mechanism and the data given to C_Sign.
    pub fn p11(self) -> (Mechanism<'static>, Vec<u8>) {
        let pss = PkcsPssParams {
            hash_alg: MechanismType::SHA256,
            mgf: PkcsMgfType::MGF1_SHA256,
            s_len: 32u64.into(),
        };
        match self {
            Signing::Sha256Sig => (Mechanism::Sha256RsaPkcs, MESSAGE.to_vec()),
            Signing::Sha1Sig => (Mechanism::Sha1RsaPkcs, MESSAGE.to_vec()),
            Signing::RsaPkcsSig | Signing::RsaPkcsAuth => (Mechanism::RsaPkcs, sha256_digest_info()),
            Signing::Sha256PssSig | Signing::Sha256PssAuth => {
                (Mechanism::Sha256RsaPkcsPss(pss), MESSAGE.to_vec())
            }
            Signing::PssHashSig => (Mechanism::RsaPkcsPss(pss), sha2::Sha256::digest(MESSAGE).to_vec()),
        }
    }

    /// The card-layer mechanism and data (in-process run).
    pub fn card(self) -> (cpx_card::Mechanism, Vec<u8>) {
        use cpx_card::Mechanism as M;
        match self {
            Signing::Sha256Sig => (M::Pkcs1(HashAlg::Sha256), MESSAGE.to_vec()),
            Signing::Sha1Sig => (M::Pkcs1(HashAlg::Sha1), MESSAGE.to_vec()),
            Signing::RsaPkcsSig | Signing::RsaPkcsAuth => (M::RsaPkcs, sha256_digest_info()),
            Signing::Sha256PssSig | Signing::Sha256PssAuth => (M::Pss(HashAlg::Sha256), MESSAGE.to_vec()),
            Signing::PssHashSig => (M::PssHash, sha2::Sha256::digest(MESSAGE).to_vec()),
        }
    }

    /// Check a signature with the certificate's key: a benchmark of wrong answers is worthless.
    pub fn verify(self, key: &RsaPublicKey, sig: &[u8]) -> Result<(), String> {
        let h256 = sha2::Sha256::digest(MESSAGE);
        let r = match self {
            Signing::Sha256Sig | Signing::RsaPkcsSig => {
                key.verify(Pkcs1v15Sign::new::<sha2::Sha256>(), &h256, sig)
            }
            Signing::Sha1Sig => key.verify(
                Pkcs1v15Sign::new::<sha1::Sha1>(),
                &sha1::Sha1::digest(MESSAGE),
                sig,
            ),
            Signing::RsaPkcsAuth => key.verify(Pkcs1v15Sign::new_unprefixed(), &sha256_digest_info(), sig),
            Signing::Sha256PssSig | Signing::Sha256PssAuth | Signing::PssHashSig => {
                key.verify(Pss::new_with_salt::<sha2::Sha256>(32), &h256, sig)
            }
        };
        r.map_err(|e| format!("{}: signature does not verify: {e}", self.id()))
    }
}

/// DigestInfo(SHA-256) of [`MESSAGE`].
pub fn sha256_digest_info() -> Vec<u8> {
    let mut v = vec![
        0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00,
        0x04, 0x20,
    ];
    v.extend_from_slice(&sha2::Sha256::digest(MESSAGE));
    v
}

/// The plaintext of the decryption benchmark.
pub const SECRET: &[u8] = b"a 32-byte session key, for bench";

/// One measurement of one operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Command APDUs that reached the card (GET RESPONSE included).
    pub apdus: usize,
    /// Bytes on the wire: commands plus responses (status words included).
    pub bytes: usize,
    /// Wall time of the operation.
    pub nanos: u64,
}

impl Sample {
    pub fn new(wire: &[cpx_testkit::Exchange], nanos: u64) -> Sample {
        Sample {
            apdus: wire.len(),
            bytes: wire.iter().map(|(c, r)| c.len() + r.len()).sum(),
            nanos,
        }
    }
}
