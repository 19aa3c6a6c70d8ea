//! Message digesting (PKCS#11 2.40 §5.10, software SHA-1 / SHA-256): the calls of
//! `ffi/digest.rs`. Each C_DigestUpdate part is hashed as it comes; none is kept.

use cryptoki_sys::*;

use crate::error::{Error, Result, ck};
use crate::mechanisms::{self, MechanismArg};
use crate::ops::{DigestOp, Digesting, Output, Parts, check_cap};
use crate::state::Module;

/// C_DigestInit (software).
pub fn digest_init(m: &Module, h: CK_SESSION_HANDLE, arg: &MechanismArg) -> Result<()> {
    m.with_session(h, |_, ops, _| {
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
pub fn digest_update(m: &Module, h: CK_SESSION_HANDLE, part: &[u8]) -> Result<()> {
    m.with_session(h, |_, ops, _| {
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
pub fn digest(m: &Module, h: CK_SESSION_HANDLE, data: Option<&[u8]>, cap: Option<usize>) -> Result<Output> {
    m.with_session(h, |_, ops, _| {
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
