//! Operations: sign (card), verify and encrypt (software, the certificate's key), decrypt
//! (card), digest (software); the per-session operation state.
//!
//! Multi-part signing buffers the message (the CPS3 finishes the hash on the card from the
//! whole message, spec §4.2) and sends it at C_SignFinal.

use cpx_card::{Generation, HashAlg, Interface, KeyRole, Mechanism};
use cryptoki_sys::*;
use rsa::{BigUint, Pkcs1v15Encrypt, Pkcs1v15Sign, Pss, RsaPublicKey};
use sha2::Digest;
use zeroize::Zeroizing;

use crate::error::{Error, Result, ck};
use crate::mechanisms::{self, CardKind, MechanismArg, SignMech};
use crate::objects::{self, Kind, Object};
use crate::slots::SlotState;
use crate::state::Module;

/// An operation's output under the two-call protocol.
#[derive(Debug, PartialEq, Eq)]
pub enum Output {
    /// The caller asked for the size only (NULL buffer).
    Size(usize),
    /// The result.
    Data(Vec<u8>),
}

/// A signature in progress.
pub struct SignOp {
    role: KeyRole,
    mech: SignMech,
    modulus_len: usize,
    private: bool,
    data: Zeroizing<Vec<u8>>,
}

/// A verification in progress.
pub struct VerifyOp {
    key: RsaPublicKey,
    mech: SignMech,
    data: Vec<u8>,
}

/// A digest in progress.
#[derive(Clone)]
pub enum DigestOp {
    /// SHA-1.
    Sha1(sha1::Sha1),
    /// SHA-256.
    Sha256(sha2::Sha256),
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
    pub digest: Option<DigestOp>,
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

fn digest(h: HashAlg, data: &[u8]) -> Vec<u8> {
    h.digest(data)
}

fn verify_sig(key: &RsaPublicKey, mech: SignMech, data: &[u8], sig: &[u8]) -> Result<()> {
    use rsa::traits::PublicKeyParts;
    let k = key.size();
    // The data is checked before the signature's length: the official conformance plan
    // (spec §6.1 row 712) expects CKR_DATA_LEN_RANGE for over-long data with a short signature.
    let hashed = match mech {
        SignMech::RsaPkcs if data.len() > k - 11 => return ck(CKR_DATA_LEN_RANGE),
        SignMech::RsaPkcs => data.to_vec(),
        SignMech::Pkcs1(h) | SignMech::Pss(h) => digest(h, data),
        SignMech::PssHash(h) if data.len() != h.digest_len() => return ck(CKR_DATA_LEN_RANGE),
        SignMech::PssHash(_) => data.to_vec(),
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
            ops.sign = Some(SignOp {
                role: k.role,
                mech,
                modulus_len: k.modulus_len(),
                private: o.private,
                data: Zeroizing::new(Vec::new()),
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
            op.data.extend_from_slice(part);
            Ok(())
        })
    }

    /// C_Sign (`data` = Some) or C_SignFinal (`data` = None). `cap` is the output buffer size
    /// (None = NULL: size query, no APDU).
    pub fn sign(&self, h: CK_SESSION_HANDLE, data: Option<&[u8]>, cap: Option<usize>) -> Result<Output> {
        self.with_session(h, |s, ops, st| {
            let op = ops
                .sign
                .as_ref()
                .ok_or(Error::Ck(CKR_OPERATION_NOT_INITIALIZED))?;
            if let Some(out) = check_cap(op.modulus_len, cap)? {
                return Ok(out);
            }
            let Some(mut op) = ops.sign.take() else {
                return ck(CKR_OPERATION_NOT_INITIALIZED);
            };
            if let Some(d) = data {
                op.data.extend_from_slice(d);
            }
            if op.private && !st.user_logged_in() {
                return ck(CKR_USER_NOT_LOGGED_IN);
            }
            let mech = match op.mech {
                SignMech::RsaPkcs => Mechanism::RsaPkcs,
                SignMech::Pkcs1(a) => Mechanism::Pkcs1(a),
                SignMech::Pss(a) => Mechanism::Pss(a),
                SignMech::PssHash(a) => {
                    if op.data.len() != a.digest_len() {
                        return ck(CKR_DATA_LEN_RANGE);
                    }
                    Mechanism::PssHash
                }
            };
            let sig = st.with_token(self, &s.slot.reader, |t, _| {
                t.card.sign(op.role, mech, &op.data).map_err(Error::from)
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
            let Kind::PublicKey(_) = &o.kind else {
                return ck(CKR_KEY_TYPE_INCONSISTENT);
            };
            ops.verify = Some(VerifyOp {
                key: public_key(&o)?,
                mech,
                data: Vec::new(),
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
            op.data.extend_from_slice(part);
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
            if let Some(d) = data {
                op.data.extend_from_slice(d);
            }
            verify_sig(&op.key, op.mech, &op.data, sig)
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

    /// C_DigestInit (software).
    pub fn digest_init(&self, h: CK_SESSION_HANDLE, arg: &MechanismArg) -> Result<()> {
        self.with_session(h, |_, ops, _| {
            if ops.digest.is_some() {
                return ck(CKR_OPERATION_ACTIVE);
            }
            ops.digest = Some(match mechanisms::digest_mech(arg)? {
                HashAlg::Sha1 => DigestOp::Sha1(sha1::Sha1::new()),
                HashAlg::Sha256 => DigestOp::Sha256(sha2::Sha256::new()),
            });
            Ok(())
        })
    }

    /// C_DigestUpdate.
    pub fn digest_update(&self, h: CK_SESSION_HANDLE, part: &[u8]) -> Result<()> {
        self.with_session(h, |_, ops, _| {
            match ops
                .digest
                .as_mut()
                .ok_or(Error::Ck(CKR_OPERATION_NOT_INITIALIZED))?
            {
                DigestOp::Sha1(d) => d.update(part),
                DigestOp::Sha256(d) => d.update(part),
            }
            Ok(())
        })
    }

    /// C_Digest (`data` = Some) or C_DigestFinal.
    pub fn digest(&self, h: CK_SESSION_HANDLE, data: Option<&[u8]>, cap: Option<usize>) -> Result<Output> {
        self.with_session(h, |_, ops, _| {
            let op = ops
                .digest
                .as_ref()
                .ok_or(Error::Ck(CKR_OPERATION_NOT_INITIALIZED))?;
            let len = match op {
                DigestOp::Sha1(_) => 20,
                DigestOp::Sha256(_) => 32,
            };
            if let Some(out) = check_cap(len, cap)? {
                return Ok(out);
            }
            let Some(op) = ops.digest.take() else {
                return ck(CKR_OPERATION_NOT_INITIALIZED);
            };
            let data = data.unwrap_or(&[]);
            Ok(Output::Data(match op {
                DigestOp::Sha1(mut d) => {
                    d.update(data);
                    d.finalize().to_vec()
                }
                DigestOp::Sha256(mut d) => {
                    d.update(data);
                    d.finalize().to_vec()
                }
            }))
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
