//! Decryption (PKCS#11 2.40 §5.9, on the card, the authentication key) and encryption (§5.8,
//! in software with the certificate's public key, single part): the calls of `ffi/decrypt.rs`.

use cpx_card::KeyRole;
use cryptoki_sys::*;
use rsa::Pkcs1v15Encrypt;

use crate::error::{Error, Result, ck};
use crate::mechanisms::{self, MechanismArg};
use crate::object::key_for;
use crate::objects::Kind;
use crate::ops::{DecryptOp, EncryptOp, Output, check_cap, public_key};
use crate::state::Module;

/// C_EncryptInit (CKM_RSA_PKCS with a public key whose CKA_ENCRYPT is true, docs/card-spec.md §4.5).
pub fn encrypt_init(
    m: &Module,
    h: CK_SESSION_HANDLE,
    arg: &MechanismArg,
    key: CK_OBJECT_HANDLE,
) -> Result<()> {
    m.with_session(h, |_, ops, st| {
        if ops.encrypt.is_some() {
            return ck(CKR_OPERATION_ACTIVE);
        }
        if arg.mechanism != CKM_RSA_PKCS {
            return ck(CKR_MECHANISM_INVALID);
        }
        arg.no_stray_parameter()?;
        let o = key_for(st, key, CKR_KEY_HANDLE_INVALID)?;
        match &o.kind {
            Kind::PublicKey(k) if k.encrypt => {}
            _ => return ck(CKR_KEY_TYPE_INCONSISTENT),
        }
        ops.encrypt = Some(EncryptOp { key: public_key(&o)? });
        Ok(())
    })
}

/// C_Encrypt (single part, in software, no APDU).
pub fn encrypt(m: &Module, h: CK_SESSION_HANDLE, data: &[u8], cap: Option<usize>) -> Result<Output> {
    use rsa::traits::PublicKeyParts;
    m.with_session(h, |_, ops, _| {
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
/// CKR_OBJECT_HANDLE_INVALID as in the official module, docs/card-spec.md §6.1 row 503).
pub fn decrypt_init(
    m: &Module,
    h: CK_SESSION_HANDLE,
    arg: &MechanismArg,
    key: CK_OBJECT_HANDLE,
) -> Result<()> {
    m.with_session(h, |_, ops, st| {
        if ops.decrypt.is_some() {
            return ck(CKR_OPERATION_ACTIVE);
        }
        let kind = st.card_kind()?;
        let info = mechanisms::info(kind, arg.mechanism)?;
        if info.flags & CKF_DECRYPT == 0 {
            return ck(CKR_MECHANISM_INVALID);
        }
        arg.no_stray_parameter()?;
        let o = key_for(st, key, CKR_OBJECT_HANDLE_INVALID)?;
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
pub fn decrypt(m: &Module, h: CK_SESSION_HANDLE, data: &[u8], cap: Option<usize>) -> Result<Output> {
    m.with_session(h, |_, ops, st| {
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
            let r = st.with_token(|t| {
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
