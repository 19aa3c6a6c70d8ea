//! Operations: sign (card), verify and encrypt (software, the certificate's key), decrypt
//! (card), digest (software); the per-session operation state.
//!
//! Multi-part operations are streamed: C_SignUpdate, C_VerifyUpdate and C_DigestUpdate hash each
//! part as it comes and keep none of the message, so memory stays bounded whatever its length.
//! For the CPS3 signature key the host keeps the SHA state and the last block and the card ends
//! the hash at C_SignFinal (spec §4.2); every other key signs a digest the host computed
//! ([`cpx_card::MessageHash`]). The mechanisms without hashing (CKM_RSA_PKCS,
//! CKM_RSA_PKCS_PSS) take at most a modulus' worth of data: their parts are kept up to that
//! length, and more is CKR_DATA_LEN_RANGE at the final call, as a single-part call would say.

use cpx_card::{Generation, HashAlg, Interface, KeyRole, Mechanism, MessageHash};
use cryptoki_sys::*;
use rsa::{BigUint, Pkcs1v15Encrypt, Pkcs1v15Sign, Pss, RsaPublicKey};
use sha2::Digest;
use zeroize::Zeroizing;

use crate::error::{Error, Result, ck};
use crate::mechanisms::{self, CardKind, MechanismArg, SignMech};
use crate::objects::{self, Kind, Object};
use crate::slots::SlotState;
use crate::state::{Module, lock};

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
/// row the official conformance plan passes (spec §6.1, row 812).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Parts {
    updated: bool,
}

impl Parts {
    /// Record a C_*Update.
    fn update(&mut self) {
        self.updated = true;
    }

    /// Whether a call with `data` (C_Sign, C_Verify, C_Digest) or without (C_*Final) may go on.
    fn allows(self, data: Option<&[u8]>) -> bool {
        data.is_none() || !self.updated
    }
}

/// A signature in progress.
pub struct SignOp {
    role: KeyRole,
    modulus_len: usize,
    private: bool,
    input: SignInput,
    parts: Parts,
}

/// A signature in progress: its mechanism and what it has of the data.
enum SignInput {
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
    key: RsaPublicKey,
    /// The card key whose public half this is: CKM_RSA_PKCS verifies as that key signs.
    role: KeyRole,
    mech: SignMech,
    input: VerifyInput,
    parts: Parts,
}

/// The operation a failed call ends (see [`Module::end_after_failure`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// C_Digest, C_DigestUpdate, C_DigestFinal.
    Digest,
    /// C_Decrypt.
    Decrypt,
}

/// A C_Digest* operation in progress.
pub struct Digesting {
    hash: DigestOp,
    parts: Parts,
}

/// What a verification in progress has of its data.
enum VerifyInput {
    /// CKM_SHA*_RSA_PKCS[_PSS]: the message hashed so far.
    Message(DigestOp),
    /// CKM_RSA_PKCS, CKM_RSA_PKCS_PSS: the data itself (at most a modulus long).
    Raw(RawInput),
}

/// The most data a mechanism without hashing takes: a modulus, of at most 4096 bits (the cards'
/// keys are 2048-bit, spec §4.1; a PrKDF claiming more does not raise the bound).
const MAX_RAW_INPUT: usize = 512;

/// The parts of a CKM_RSA_PKCS / CKM_RSA_PKCS_PSS operation: kept while they fit `cap` bytes,
/// beyond which the data is too long whatever follows (CKR_DATA_LEN_RANGE at the end) and
/// nothing more is kept. Wiped on drop (it may be a hash of a secret document, or a TLS
/// handshake's).
struct RawInput {
    data: Zeroizing<Vec<u8>>,
    cap: usize,
    too_long: bool,
}

impl RawInput {
    fn new(cap: usize) -> Self {
        RawInput {
            data: Zeroizing::new(Vec::new()),
            cap: cap.min(MAX_RAW_INPUT),
            too_long: false,
        }
    }

    fn push(&mut self, part: &[u8]) {
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
    fn get(&self) -> Result<&[u8]> {
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
    fn new(alg: HashAlg) -> Self {
        match alg {
            HashAlg::Sha1 => DigestOp::Sha1(sha1::Sha1::new()),
            HashAlg::Sha256 => DigestOp::Sha256(sha2::Sha256::new()),
        }
    }

    fn update(&mut self, part: &[u8]) {
        match self {
            DigestOp::Sha1(d) => d.update(part),
            DigestOp::Sha256(d) => d.update(part),
        }
    }

    fn len(&self) -> usize {
        match self {
            DigestOp::Sha1(_) => 20,
            DigestOp::Sha256(_) => 32,
        }
    }

    fn finish(self) -> Vec<u8> {
        match self {
            DigestOp::Sha1(d) => d.finalize().to_vec(),
            DigestOp::Sha256(d) => d.finalize().to_vec(),
        }
    }
}

impl SignInput {
    fn push(&mut self, part: &[u8]) {
        match self {
            SignInput::Message { hash, .. } => hash.update(part),
            SignInput::RsaPkcs(raw) | SignInput::PssHash(_, raw) => raw.push(part),
        }
    }
}

impl VerifyInput {
    fn push(&mut self, part: &[u8]) {
        match self {
            VerifyInput::Message(d) => d.update(part),
            VerifyInput::Raw(r) => r.push(part),
        }
    }
}

/// A decryption in progress (the plaintext kept if the caller's buffer was too small).
pub struct DecryptOp {
    modulus_len: usize,
    result: Option<Zeroizing<Vec<u8>>>,
}

/// An encryption in progress.
pub struct EncryptOp {
    key: RsaPublicKey,
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

fn card_kind(module: &Module, st: &mut SlotState, reader: &str) -> Result<CardKind> {
    st.with_token(module, reader, |t, _| {
        Ok(CardKind {
            generation: t.card.generation(),
            interface: t.card.interface(),
        })
    })
}

/// Say why a card refuses a signature mechanism a client asked for, where the answer is not
/// obvious to whoever reads the log: TLS 1.3 client authentication needs RSA-PSS, which only a
/// CPS4 does (spec §4.1 Tableau 2), so a TLS 1.3 login with a CPS3 fails at this point.
fn explain_refusal(reader: &str, card: CardKind, arg: &MechanismArg) {
    let pss = matches!(
        arg.mechanism,
        CKM_RSA_PKCS_PSS
            | CKM_SHA1_RSA_PKCS_PSS
            | CKM_SHA256_RSA_PKCS_PSS
            | CKM_SHA384_RSA_PKCS_PSS
            | CKM_SHA512_RSA_PKCS_PSS
    );
    let what = mechanisms::name(arg.mechanism);
    match (card.generation, card.interface) {
        (_, Interface::Contactless) => log::warn!(
            "{reader}: {what} is not available on the contactless interface (CKM_RSA_PKCS only, spec §7)"
        ),
        (Generation::Cps3, _) if pss => log::warn!(
            "{reader}: {what} is not available on a CPS3 (PKCS#1 v1.5 signatures only, spec §4.1 \
             Tableau 2); TLS 1.3 client authentication needs RSA-PSS: use TLS 1.2 with this card"
        ),
        _ => log::info!("{reader}: {what} is not a signature mechanism of this card"),
    }
}

fn public_key(o: &Object) -> Result<RsaPublicKey> {
    let k = o.key().ok_or(Error::Ck(CKR_KEY_TYPE_INCONSISTENT))?;
    RsaPublicKey::new(
        BigUint::from_bytes_be(&k.modulus),
        BigUint::from_bytes_be(&k.exponent),
    )
    .map_err(|_| Error::Ck(CKR_KEY_TYPE_INCONSISTENT))
}

/// Size query / too small / go, for outputs whose length is known in advance.
fn check_cap(len: usize, cap: Option<usize>) -> Result<Option<Output>> {
    match cap {
        None => Ok(Some(Output::Size(len))),
        Some(c) if c < len => Err(Error::BufferTooSmall(len)),
        Some(_) => Ok(None),
    }
}

fn verify_sig(
    key: &RsaPublicKey,
    role: KeyRole,
    mech: SignMech,
    input: VerifyInput,
    sig: &[u8],
) -> Result<()> {
    use rsa::traits::PublicKeyParts;
    let k = key.size();
    // The data is checked before the signature's length: the official conformance plan
    // (spec §6.1 row 712) expects CKR_DATA_LEN_RANGE for over-long data with a short signature.
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
                // The signature key signs a bare SHA-1/SHA-256 hash as its DigestInfo (spec
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

impl Module {
    /// C_GetMechanismList (the card is opened to know its generation).
    pub fn mechanism_list(&self, id: CK_SLOT_ID) -> Result<Vec<CK_MECHANISM_TYPE>> {
        let slot = self.slot(id)?;
        self.refresh_slots()?;
        let mut st = slot.state()?;
        Ok(mechanisms::list(card_kind(self, &mut st, &slot.reader)?))
    }

    /// C_GetMechanismInfo.
    pub fn mechanism_info(&self, id: CK_SLOT_ID, m: CK_MECHANISM_TYPE) -> Result<CK_MECHANISM_INFO> {
        let slot = self.slot(id)?;
        self.refresh_slots()?;
        let mut st = slot.state()?;
        mechanisms::info(card_kind(self, &mut st, &slot.reader)?, m)
    }

    /// C_SignInit.
    pub fn sign_init(&self, h: CK_SESSION_HANDLE, arg: &MechanismArg, key: CK_OBJECT_HANDLE) -> Result<()> {
        self.with_session(h, |s, ops, st| {
            if ops.sign.is_some() {
                return ck(CKR_OPERATION_ACTIVE);
            }
            let kind = card_kind(self, st, &s.slot.reader)?;
            let mech = mechanisms::sign_mech(kind, arg)
                .inspect_err(|_| explain_refusal(&s.slot.reader, kind, arg))?;
            let o = objects::key_for(self, st, &s.slot.reader, key, CKR_KEY_HANDLE_INVALID)?;
            let Kind::PrivateKey(k) = &o.kind else {
                return ck(CKR_KEY_TYPE_INCONSISTENT);
            };
            if o.private && !st.user_logged_in() {
                return ck(CKR_USER_NOT_LOGGED_IN);
            }
            let (role, modulus_len) = (k.role, k.modulus_len());
            // The card decides what to keep of a message: the CPS3 signature key ends the hash
            // itself (spec §4.2).
            let mut message_hash =
                |alg| st.with_token(self, &s.slot.reader, |t, _| Ok(t.card.message_hash(role, alg)));
            let input = match mech {
                SignMech::Pkcs1(alg) => SignInput::Message {
                    pss: false,
                    hash: message_hash(alg)?,
                },
                SignMech::Pss(alg) => SignInput::Message {
                    pss: true,
                    hash: message_hash(alg)?,
                },
                SignMech::RsaPkcs => SignInput::RsaPkcs(RawInput::new(modulus_len)),
                SignMech::PssHash(alg) => SignInput::PssHash(alg, RawInput::new(modulus_len)),
            };
            ops.sign = Some(SignOp {
                role,
                modulus_len,
                private: o.private,
                input,
                parts: Parts::default(),
            });
            Ok(())
        })
    }

    /// C_SignUpdate.
    pub fn sign_update(&self, h: CK_SESSION_HANDLE, part: &[u8]) -> Result<()> {
        self.with_session(h, |_, ops, _| {
            let op = ops
                .sign
                .as_mut()
                .ok_or(Error::Ck(CKR_OPERATION_NOT_INITIALIZED))?;
            op.parts.update();
            op.input.push(part);
            Ok(())
        })
    }

    /// C_Sign (`data` = Some) or C_SignFinal (`data` = None). `cap` is the output buffer size
    /// (None = NULL: size query, no APDU).
    pub fn sign(&self, h: CK_SESSION_HANDLE, data: Option<&[u8]>, cap: Option<usize>) -> Result<Output> {
        self.with_session(h, |s, ops, st| {
            let op = ops
                .sign
                .as_mut()
                .ok_or(Error::Ck(CKR_OPERATION_NOT_INITIALIZED))?;
            if !op.parts.allows(data) {
                ops.sign = None;
                return ck(CKR_OPERATION_NOT_INITIALIZED);
            }
            if let Some(out) = check_cap(op.modulus_len, cap)? {
                return Ok(out);
            }
            let Some(mut op) = ops.sign.take() else {
                return ck(CKR_OPERATION_NOT_INITIALIZED);
            };
            if let Some(d) = data {
                op.input.push(d);
            }
            if op.private && !st.user_logged_in() {
                return ck(CKR_USER_NOT_LOGGED_IN);
            }
            // What goes to the card, the data's length checked first (no APDU for bad data).
            enum Ready<'a> {
                Message(Mechanism, &'a MessageHash),
                Raw(Mechanism, &'a [u8]),
            }
            let ready = match &op.input {
                SignInput::Message { pss: false, hash } => Ready::Message(Mechanism::Pkcs1(hash.alg()), hash),
                SignInput::Message { pss: true, hash } => Ready::Message(Mechanism::Pss(hash.alg()), hash),
                SignInput::RsaPkcs(raw) => Ready::Raw(Mechanism::RsaPkcs, raw.get()?),
                SignInput::PssHash(alg, raw) => {
                    let data = raw.get()?;
                    if data.len() != alg.digest_len() {
                        return ck(CKR_DATA_LEN_RANGE);
                    }
                    Ready::Raw(Mechanism::PssHash, data)
                }
            };
            let sig = st.with_token(self, &s.slot.reader, |t, _| {
                match ready {
                    Ready::Message(mech, hash) => t.card.sign_message(op.role, mech, hash),
                    Ready::Raw(mech, data) => t.card.sign(op.role, mech, data),
                }
                .map_err(Error::from)
            })?;
            Ok(Output::Data(sig))
        })
    }

    /// C_VerifyInit (software, with the public key of the key object).
    pub fn verify_init(&self, h: CK_SESSION_HANDLE, arg: &MechanismArg, key: CK_OBJECT_HANDLE) -> Result<()> {
        self.with_session(h, |s, ops, st| {
            if ops.verify.is_some() {
                return ck(CKR_OPERATION_ACTIVE);
            }
            let kind = card_kind(self, st, &s.slot.reader)?;
            let mech = mechanisms::sign_mech(kind, arg)?;
            let o = objects::key_for(self, st, &s.slot.reader, key, CKR_KEY_HANDLE_INVALID)?;
            let Kind::PublicKey(data) = &o.kind else {
                return ck(CKR_KEY_TYPE_INCONSISTENT);
            };
            let role = data.role;
            let key = public_key(&o)?;
            let input = match mech {
                SignMech::Pkcs1(alg) | SignMech::Pss(alg) => VerifyInput::Message(DigestOp::new(alg)),
                SignMech::RsaPkcs | SignMech::PssHash(_) => {
                    use rsa::traits::PublicKeyParts;
                    VerifyInput::Raw(RawInput::new(key.size()))
                }
            };
            ops.verify = Some(VerifyOp {
                key,
                role,
                mech,
                input,
                parts: Parts::default(),
            });
            Ok(())
        })
    }

    /// C_VerifyUpdate.
    pub fn verify_update(&self, h: CK_SESSION_HANDLE, part: &[u8]) -> Result<()> {
        self.with_session(h, |_, ops, _| {
            let op = ops
                .verify
                .as_mut()
                .ok_or(Error::Ck(CKR_OPERATION_NOT_INITIALIZED))?;
            op.parts.update();
            op.input.push(part);
            Ok(())
        })
    }

    /// C_Verify (`data` = Some) or C_VerifyFinal. The operation ends whatever the outcome.
    pub fn verify(&self, h: CK_SESSION_HANDLE, data: Option<&[u8]>, sig: &[u8]) -> Result<()> {
        self.with_session(h, |_, ops, _| {
            let mut op = ops
                .verify
                .take()
                .ok_or(Error::Ck(CKR_OPERATION_NOT_INITIALIZED))?;
            if !op.parts.allows(data) {
                return ck(CKR_OPERATION_NOT_INITIALIZED);
            }
            if let Some(d) = data {
                op.input.push(d);
            }
            verify_sig(&op.key, op.role, op.mech, op.input, sig)
        })
    }

    /// C_EncryptInit (CKM_RSA_PKCS with a public key whose CKA_ENCRYPT is true, spec §4.5).
    pub fn encrypt_init(
        &self,
        h: CK_SESSION_HANDLE,
        arg: &MechanismArg,
        key: CK_OBJECT_HANDLE,
    ) -> Result<()> {
        self.with_session(h, |s, ops, st| {
            if ops.encrypt.is_some() {
                return ck(CKR_OPERATION_ACTIVE);
            }
            if arg.mechanism != CKM_RSA_PKCS {
                return ck(CKR_MECHANISM_INVALID);
            }
            arg.no_stray_parameter()?;
            let o = objects::key_for(self, st, &s.slot.reader, key, CKR_KEY_HANDLE_INVALID)?;
            match &o.kind {
                Kind::PublicKey(k) if k.encrypt => {}
                _ => return ck(CKR_KEY_TYPE_INCONSISTENT),
            }
            ops.encrypt = Some(EncryptOp { key: public_key(&o)? });
            Ok(())
        })
    }

    /// C_Encrypt (single part, in software, no APDU).
    pub fn encrypt(&self, h: CK_SESSION_HANDLE, data: &[u8], cap: Option<usize>) -> Result<Output> {
        use rsa::traits::PublicKeyParts;
        self.with_session(h, |_, ops, _| {
            let op = ops
                .encrypt
                .as_ref()
                .ok_or(Error::Ck(CKR_OPERATION_NOT_INITIALIZED))?;
            let k = op.key.size();
            if let Some(out) = check_cap(k, cap)? {
                return Ok(out);
            }
            let Some(op) = ops.encrypt.take() else {
                return ck(CKR_OPERATION_NOT_INITIALIZED);
            };
            if data.len() > k - 11 {
                return ck(CKR_DATA_LEN_RANGE);
            }
            op.key
                .encrypt(&mut rand_core::OsRng, Pkcs1v15Encrypt, data)
                .map(Output::Data)
                .map_err(|_| Error::Ck(CKR_GENERAL_ERROR))
        })
    }

    /// C_DecryptInit (CKM_RSA_PKCS, the authentication key; a bad handle is
    /// CKR_OBJECT_HANDLE_INVALID as in the official module, spec §6.1 row 503).
    pub fn decrypt_init(
        &self,
        h: CK_SESSION_HANDLE,
        arg: &MechanismArg,
        key: CK_OBJECT_HANDLE,
    ) -> Result<()> {
        self.with_session(h, |s, ops, st| {
            if ops.decrypt.is_some() {
                return ck(CKR_OPERATION_ACTIVE);
            }
            let kind = card_kind(self, st, &s.slot.reader)?;
            let info = mechanisms::info(kind, arg.mechanism)?;
            if info.flags & CKF_DECRYPT == 0 {
                return ck(CKR_MECHANISM_INVALID);
            }
            arg.no_stray_parameter()?;
            let o = objects::key_for(self, st, &s.slot.reader, key, CKR_OBJECT_HANDLE_INVALID)?;
            let Kind::PrivateKey(k) = &o.kind else {
                return ck(CKR_KEY_TYPE_INCONSISTENT);
            };
            if !k.decrypt {
                return ck(CKR_KEY_FUNCTION_NOT_PERMITTED);
            }
            if o.private && !st.user_logged_in() {
                return ck(CKR_USER_NOT_LOGGED_IN);
            }
            ops.decrypt = Some(DecryptOp {
                modulus_len: k.modulus_len(),
                result: None,
            });
            Ok(())
        })
    }

    /// C_Decrypt. A NULL buffer gets the modulus length (no APDU); a buffer too small for the
    /// plaintext keeps the result for the next call (no second APDU).
    pub fn decrypt(&self, h: CK_SESSION_HANDLE, data: &[u8], cap: Option<usize>) -> Result<Output> {
        self.with_session(h, |s, ops, st| {
            let op = ops
                .decrypt
                .as_mut()
                .ok_or(Error::Ck(CKR_OPERATION_NOT_INITIALIZED))?;
            let Some(cap) = cap else {
                return Ok(Output::Size(
                    op.result.as_ref().map_or(op.modulus_len, |r| r.len()),
                ));
            };
            if op.result.is_none() {
                if data.len() != op.modulus_len {
                    ops.decrypt = None;
                    return ck(CKR_ENCRYPTED_DATA_LEN_RANGE);
                }
                if !st.user_logged_in() {
                    ops.decrypt = None;
                    return ck(CKR_USER_NOT_LOGGED_IN);
                }
                let r = st.with_token(self, &s.slot.reader, |t, _| {
                    t.card
                        .decrypt(KeyRole::Authentication, data)
                        .map_err(|e| match e {
                            cpx_card::CardError::InvalidInput { .. } => Error::Ck(CKR_ENCRYPTED_DATA_INVALID),
                            other => Error::Card(other),
                        })
                });
                match r {
                    Ok(plain) => op.result = Some(plain),
                    Err(e) => {
                        ops.decrypt = None;
                        return Err(e);
                    }
                }
            }
            let len = op.result.as_ref().map_or(0, |r| r.len());
            if cap < len {
                return Err(Error::BufferTooSmall(len));
            }
            let out = op.result.take().map(|r| r.to_vec()).unwrap_or_default();
            ops.decrypt = None;
            Ok(Output::Data(out))
        })
    }

    /// After a failed C_Digest* or C_Decrypt (other than CKR_BUFFER_TOO_SMALL), whatever failed,
    /// a NULL argument included: the operation is over (PKCS#11 2.40 §5.9, §5.10: such a call
    /// "always terminates the active operation" unless it returns CKR_BUFFER_TOO_SMALL or
    /// answers a length query). The official conformance plan goes on after a NULL argument
    /// (spec §6.1 rows 509–510, 407–408, and the signing rows); for decryption and digests
    /// cpx follows the standard (issue 14), for C_Encrypt and C_Sign the plan.
    pub fn end_after_failure(&self, h: CK_SESSION_HANDLE, op: Ending, e: &Error) {
        if e.rv() == CKR_BUFFER_TOO_SMALL {
            return;
        }
        if let Ok(session) = self.session(h) {
            let mut ops = lock(&session.ops);
            match op {
                Ending::Digest => ops.digest = None,
                Ending::Decrypt => ops.decrypt = None,
            }
        }
    }

    /// C_DigestInit (software).
    pub fn digest_init(&self, h: CK_SESSION_HANDLE, arg: &MechanismArg) -> Result<()> {
        self.with_session(h, |_, ops, _| {
            if ops.digest.is_some() {
                return ck(CKR_OPERATION_ACTIVE);
            }
            ops.digest = Some(Digesting {
                hash: DigestOp::new(mechanisms::digest_mech(arg)?),
                parts: Parts::default(),
            });
            Ok(())
        })
    }

    /// C_DigestUpdate.
    pub fn digest_update(&self, h: CK_SESSION_HANDLE, part: &[u8]) -> Result<()> {
        self.with_session(h, |_, ops, _| {
            let op = ops
                .digest
                .as_mut()
                .ok_or(Error::Ck(CKR_OPERATION_NOT_INITIALIZED))?;
            op.parts.update();
            op.hash.update(part);
            Ok(())
        })
    }

    /// C_Digest (`data` = Some) or C_DigestFinal.
    pub fn digest(&self, h: CK_SESSION_HANDLE, data: Option<&[u8]>, cap: Option<usize>) -> Result<Output> {
        self.with_session(h, |_, ops, _| {
            let op = ops
                .digest
                .as_mut()
                .ok_or(Error::Ck(CKR_OPERATION_NOT_INITIALIZED))?;
            if !op.parts.allows(data) {
                ops.digest = None;
                return ck(CKR_OPERATION_NOT_INITIALIZED);
            }
            if let Some(out) = check_cap(op.hash.len(), cap)? {
                return Ok(out);
            }
            let Some(mut op) = ops.digest.take() else {
                return ck(CKR_OPERATION_NOT_INITIALIZED);
            };
            op.hash.update(data.unwrap_or(&[]));
            Ok(Output::Data(op.hash.finish()))
        })
    }

    /// C_FindObjectsInit.
    pub fn find_init(&self, h: CK_SESSION_HANDLE, template: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)]) -> Result<()> {
        self.with_session(h, |s, ops, st| {
            if ops.find.is_some() {
                return ck(CKR_OPERATION_ACTIVE);
            }
            let mut found = objects::find(self, st, &s.slot.reader, template)?;
            found.reverse();
            ops.find = Some(found);
            Ok(())
        })
    }

    /// C_FindObjects: up to `max` handles.
    pub fn find_next(&self, h: CK_SESSION_HANDLE, max: usize) -> Result<Vec<CK_OBJECT_HANDLE>> {
        self.with_session(h, |_, ops, _| {
            let left = ops
                .find
                .as_mut()
                .ok_or(Error::Ck(CKR_OPERATION_NOT_INITIALIZED))?;
            let mut out = Vec::new();
            while out.len() < max {
                match left.pop() {
                    Some(x) => out.push(x),
                    None => break,
                }
            }
            Ok(out)
        })
    }

    /// C_FindObjectsFinal.
    pub fn find_final(&self, h: CK_SESSION_HANDLE) -> Result<()> {
        self.with_session(h, |_, ops, _| {
            ops.find
                .take()
                .map(|_| ())
                .ok_or(Error::Ck(CKR_OPERATION_NOT_INITIALIZED))
        })
    }

    /// C_GetAttributeValue.
    pub fn get_attributes(
        &self,
        h: CK_SESSION_HANDLE,
        object: CK_OBJECT_HANDLE,
        wanted: &[objects::Wanted],
    ) -> Result<Vec<crate::attributes::AttrValue>> {
        self.with_session(h, |s, _, st| {
            objects::get_attributes(self, st, &s.slot.reader, object, wanted)
        })
    }

    /// C_SetAttributeValue (see [`objects::set_value`]).
    pub fn set_attributes(
        &self,
        h: CK_SESSION_HANDLE,
        object: CK_OBJECT_HANDLE,
        template: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)],
    ) -> Result<()> {
        self.with_session(h, |s, _, st| {
            objects::set_value(self, st, &s.slot.reader, s.rw, object, template)
        })
    }
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
