//! Signing (PKCS#11 2.40 §5.11, on the card) and verifying signatures (§5.12, in software
//! with the certificate's public key): the calls of `ffi/sign.rs`.
//!
//! Multi-part operations are streamed: C_SignUpdate and C_VerifyUpdate hash each part as it
//! comes and keep none of the message (see [`crate::ops`]). For the CPS3 signature key the host
//! keeps the SHA state and the last block and the card ends the hash at C_SignFinal (docs/card-spec.md
//! §4.2); every other key signs a digest the host computed ([`cpx_card::MessageHash`]).

use cpx_card::{Interface, Mechanism, MessageHash};
use cryptoki_sys::*;

use crate::error::{Error, Result, ck};
use crate::mechanisms::{self, CardKind, MechanismArg, SignMech};
use crate::object::key_for;
use crate::objects::Kind;
use crate::ops::{
    DigestOp, Output, Parts, RawInput, SignInput, SignOp, VerifyInput, VerifyOp, check_cap, public_key,
    verify_sig,
};
use crate::state::Module;

/// C_SignInit.
pub fn sign_init(m: &Module, h: CK_SESSION_HANDLE, arg: &MechanismArg, key: CK_OBJECT_HANDLE) -> Result<()> {
    m.with_session(h, |s, ops, st| {
        if ops.sign.is_some() {
            return ck(CKR_OPERATION_ACTIVE);
        }
        let kind = st.card_kind()?;
        let mech =
            mechanisms::sign_mech(kind, arg).inspect_err(|_| explain_refusal(&s.slot.reader, kind, arg))?;
        let o = key_for(st, key, CKR_KEY_HANDLE_INVALID)?;
        let Kind::PrivateKey(k) = &o.kind else {
            return ck(CKR_KEY_TYPE_INCONSISTENT);
        };
        if o.private && !st.user_logged_in() {
            return ck(CKR_USER_NOT_LOGGED_IN);
        }
        let (role, modulus_len) = (k.entry.role, k.modulus_len());
        // The card decides what to keep of a message: the CPS3 signature key ends the hash
        // itself (docs/card-spec.md §4.2).
        let mut message_hash = |alg| st.with_token(|t| Ok(t.card.message_hash(role, alg)));
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
pub fn sign_update(m: &Module, h: CK_SESSION_HANDLE, part: &[u8]) -> Result<()> {
    m.with_session(h, |_, ops, _| {
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
pub fn sign(m: &Module, h: CK_SESSION_HANDLE, data: Option<&[u8]>, cap: Option<usize>) -> Result<Output> {
    m.with_session(h, |_, ops, st| {
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
        let sig = st.with_token(|t| {
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
pub fn verify_init(
    m: &Module,
    h: CK_SESSION_HANDLE,
    arg: &MechanismArg,
    key: CK_OBJECT_HANDLE,
) -> Result<()> {
    m.with_session(h, |_, ops, st| {
        if ops.verify.is_some() {
            return ck(CKR_OPERATION_ACTIVE);
        }
        let kind = st.card_kind()?;
        let mech = mechanisms::sign_mech(kind, arg)?;
        let o = key_for(st, key, CKR_KEY_HANDLE_INVALID)?;
        let Kind::PublicKey(data) = &o.kind else {
            return ck(CKR_KEY_TYPE_INCONSISTENT);
        };
        let role = data.entry.role;
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
pub fn verify_update(m: &Module, h: CK_SESSION_HANDLE, part: &[u8]) -> Result<()> {
    m.with_session(h, |_, ops, _| {
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
pub fn verify(m: &Module, h: CK_SESSION_HANDLE, data: Option<&[u8]>, sig: &[u8]) -> Result<()> {
    m.with_session(h, |_, ops, _| {
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

/// Say why a card refuses a signature mechanism a client asked for, where the answer is not
/// obvious to whoever reads the log: TLS 1.3 client authentication needs RSA-PSS, which only a
/// CPS4 does (docs/card-spec.md §4.1 Tableau 2), so a TLS 1.3 login with a CPS3 fails at this point.
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
            "{reader}: {what} is not available on the contactless interface (CKM_RSA_PKCS only, docs/card-spec.md §7)"
        ),
        (g, _) if pss && !g.capabilities().pss => log::warn!(
            "{reader}: {what} is not available on a {} (PKCS#1 v1.5 signatures only, docs/card-spec.md §4.1 \
             Tableau 2); TLS 1.3 client authentication needs RSA-PSS: use TLS 1.2 with this card",
            g.name()
        ),
        _ => log::info!("{reader}: {what} is not a signature mechanism of this card"),
    }
}
