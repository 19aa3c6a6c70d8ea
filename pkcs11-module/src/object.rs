//! Object management (PKCS#11 2.40 §5.7), the calls of `ffi/object.rs`: C_FindObjectsInit,
//! C_FindObjects, C_FindObjectsFinal, C_GetAttributeValue, C_SetAttributeValue; the key lookup of
//! the cryptographic operations ([`key_for`]).
//!
//! What an object is: [`crate::objects`]; how a token builds its list and reads what an
//! attribute needs: [`crate::token::build`], [`crate::token::objects`]. A certificate is read
//! when an attribute that needs it is asked for (CKA_VALUE, CKA_SUBJECT, CKA_ISSUER,
//! CKA_SERIAL_NUMBER, CKA_MODULUS, CKA_PUBLIC_EXPONENT, CKA_PUBLIC_KEY_INFO), when a search
//! template names one of them, or when its public key is used (C_VerifyInit, C_EncryptInit); a
//! data object's value when CKA_VALUE is first asked for with a buffer (a size query takes the
//! FCP/FCI size, docs/card-spec.md §5.3). Objects with CKA_PRIVATE = TRUE are invisible until the user logs
//! in.

use cpx_card::CardError;
use cryptoki_sys::*;

use crate::attributes::{AttrValue, Wanted, attribute};
use crate::error::{Error, Result, ck};
use crate::objects::{CERT_ATTRIBUTES, Kind, Object};
use crate::state::Module;
use crate::state::slot::SlotState;
use crate::token::build::{key_objects, objects, private_key_objects};
use crate::token::objects::{
    by_handle, ensure_cert, link_cert_for, load_size, load_value, object_mut, remember_value,
};

/// C_FindObjectsInit.
pub fn find_init(m: &Module, h: CK_SESSION_HANDLE, template: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)]) -> Result<()> {
    m.with_session(h, |_, ops, st| {
        if ops.find.is_some() {
            return ck(CKR_OPERATION_ACTIVE);
        }
        let mut found = find(st, template)?;
        found.reverse();
        ops.find = Some(found);
        Ok(())
    })
}

/// C_FindObjects: up to `max` handles.
pub fn find_next(m: &Module, h: CK_SESSION_HANDLE, max: usize) -> Result<Vec<CK_OBJECT_HANDLE>> {
    m.with_session(h, |_, ops, _| {
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
pub fn find_final(m: &Module, h: CK_SESSION_HANDLE) -> Result<()> {
    m.with_session(h, |_, ops, _| {
        ops.find
            .take()
            .map(|_| ())
            .ok_or(Error::Ck(CKR_OPERATION_NOT_INITIALIZED))
    })
}

/// C_GetAttributeValue.
pub fn get_attributes(
    m: &Module,
    h: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
    wanted: &[Wanted],
) -> Result<Vec<AttrValue>> {
    m.with_session(h, |_, _, st| attributes_of(st, object, wanted))
}

/// C_SetAttributeValue (docs/card-spec.md §5.4): only CKA_VALUE of a modifiable data object (CPS_DATA), in a
/// R/W session; the value is written zero-padded to the file size.
///
/// - other attributes, or an object without CKA_MODIFIABLE: CKR_ATTRIBUTE_READ_ONLY;
/// - a R/O session: CKR_SESSION_READ_ONLY (every object is a token object);
/// - the DODF protects the write with the PIN and the user is not logged in:
///   CKR_USER_NOT_LOGGED_IN, nothing sent (the card's `6982` maps to the same code);
/// - a value longer than the file: **CKR_ATTRIBUTE_VALUE_INVALID**, nothing written (the
///   official module answers CKR_GENERAL_ERROR; PKCS#11 2.40 §5.7 names VALUE_INVALID for "an
///   invalid value was specified for an attribute", which tells the caller what is wrong).
///
/// The cached value is dropped: the next read returns what the card holds (zero-padded).
pub fn set_attributes(
    m: &Module,
    h: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
    template: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)],
) -> Result<()> {
    m.with_session(h, |s, _, st| set_value(st, s.rw, object, template))
}

/// A visible object by handle (private objects only when the user is logged in).
fn find_object(st: &mut SlotState, handle: CK_OBJECT_HANDLE) -> Result<Object> {
    let user = st.user_logged_in();
    st.with_token(|t| {
        by_handle(t, handle)?
            .filter(|o| user || !o.private)
            .ok_or(Error::Ck(CKR_OBJECT_HANDLE_INVALID))
    })
}

/// C_GetAttributeValue: one value per requested attribute. A size-only query of a data
/// object's CKA_VALUE is answered from the FCP/FCI ([`AttrValue::Size`]) without reading it.
fn attributes_of(st: &mut SlotState, handle: CK_OBJECT_HANDLE, wanted: &[Wanted]) -> Result<Vec<AttrValue>> {
    let types: Vec<CK_ATTRIBUTE_TYPE> = wanted.iter().map(|w| w.kind).collect();
    let mut obj = find_object(st, handle)?;
    if st.with_token(|t| link_cert_for(t, &obj, &types))? {
        obj = find_object(st, handle)?;
    }
    let is_data = matches!(obj.kind, Kind::Data { .. });
    let value_read = is_data && wanted.iter().any(|w| w.kind == CKA_VALUE && !w.size_only);
    let size_asked = is_data
        && wanted
            .iter()
            .any(|w| w.kind == CKA_VALUE || w.kind == CKA_VALUE_LEN);
    let obj = if obj.needs_cert(&types) || value_read || size_asked {
        st.with_token(|t| {
            if !is_data {
                ensure_cert(t, handle)?;
            } else if value_read {
                load_value(t, handle)?;
            } else {
                load_size(t, handle)?;
            }
            by_handle(t, handle)?.ok_or(Error::Ck(CKR_OBJECT_HANDLE_INVALID))
        })?
    } else {
        obj
    };
    Ok(wanted
        .iter()
        .map(|w| match (&obj.kind, w.kind, w.size_only) {
            (
                Kind::Data {
                    value: None,
                    size: Some(n),
                    ..
                },
                CKA_VALUE,
                true,
            ) => AttrValue::Size(*n),
            _ => attribute(&obj, w.kind),
        })
        .collect())
}

/// C_FindObjectsInit: the handles matching `template` (type, value bytes).
fn find(st: &mut SlotState, template: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)]) -> Result<Vec<CK_OBJECT_HANDLE>> {
    let user = st.user_logged_in();
    let wants_value = template.iter().any(|(t, _)| *t == CKA_VALUE);
    let types: Vec<CK_ATTRIBUTE_TYPE> = template.iter().map(|(t, _)| *t).collect();
    // A search for certificates or keys only needs them built, not the data objects.
    let class = template
        .iter()
        .find(|(t, _)| *t == CKA_CLASS)
        .and_then(|(_, v)| <[u8; std::mem::size_of::<CK_ULONG>()]>::try_from(v.as_slice()).ok())
        .map(CK_ULONG::from_ne_bytes);
    let keys_only = matches!(class, Some(CKO_CERTIFICATE | CKO_PUBLIC_KEY | CKO_PRIVATE_KEY));
    // A search for private keys needs only the PrKDF, unless it names an attribute only the
    // certificate holds.
    let private_only = class == Some(CKO_PRIVATE_KEY)
        && !types
            .iter()
            .any(|t| CERT_ATTRIBUTES.contains(t) || *t == CKA_MODULUS_BITS);
    st.with_token(|t| {
        let listed = if private_only {
            private_key_objects(t)?
        } else if keys_only {
            key_objects(t)?
        } else {
            objects(t)?
        };
        let handles: Vec<CK_OBJECT_HANDLE> = listed
            .iter()
            .filter(|o| user || !o.private)
            .map(|o| o.handle)
            .collect();
        let mut out = Vec::new();
        for h in handles {
            let Some(o) = t.objects.as_ref().and_then(|v| v.iter().find(|o| o.handle == h)) else {
                continue;
            };
            // Attributes that can be compared without reading anything first: a mismatch
            // there spares the certificate or value read.
            let cheap_mismatch = template.iter().any(|(ty, want)| {
                !CERT_ATTRIBUTES.contains(ty)
                    && *ty != CKA_VALUE
                    && !matches!(attribute(o, *ty), AttrValue::Bytes(v) if &v == want)
            });
            if cheap_mismatch {
                continue;
            }
            let needs_cert = o.needs_cert(&types);
            let is_data = matches!(o.kind, Kind::Data { .. });
            if needs_cert && let Err(e) = ensure_cert(t, h) {
                if crate::error::token_lost(&e) {
                    return Err(e);
                }
                log::debug!("certificate for search: {e}");
            }
            if wants_value
                && is_data
                && let Err(e) = load_value(t, h)
            {
                log::debug!("data value for search: {e}");
            }
            let Some(o) = t.objects.as_ref().and_then(|v| v.iter().find(|o| o.handle == h)) else {
                continue;
            };
            let matches = template
                .iter()
                .all(|(ty, want)| matches!(attribute(o, *ty), AttrValue::Bytes(v) if &v == want));
            if matches {
                out.push(h);
            }
        }
        Ok(out)
    })
}

/// A key for an operation: the object must exist (private objects included: the caller checks
/// the login and answers CKR_USER_NOT_LOGGED_IN). A public key's certificate is read if it was
/// not yet (the software operation needs the modulus and exponent); a private key needs only
/// the PrKDF's modulus size, unless the PrKDF gives none ([`Object::needs_cert_for_use`]).
pub fn key_for(st: &mut SlotState, handle: CK_OBJECT_HANDLE, bad_handle: CK_RV) -> Result<Object> {
    // Private keys are found without login too: the caller answers CKR_USER_NOT_LOGGED_IN
    // (conformance row 609; a handle kept across C_Logout).
    let found = st.with_token(|t| {
        let o = by_handle(t, handle)?;
        match &o {
            Some(k) if link_cert_for(t, k, &[CKA_MODULUS_BITS])? => by_handle(t, handle),
            _ => Ok(o),
        }
    })?;
    let Some(o) = found else {
        return ck(bad_handle);
    };
    if !o.needs_cert_for_use() {
        return Ok(o);
    }
    st.with_token(|t| {
        ensure_cert(t, handle)?;
        by_handle(t, handle)?.ok_or(Error::Ck(bad_handle))
    })
}

/// C_SetAttributeValue's work, see [`set_attributes`].
fn set_value(
    st: &mut SlotState,
    rw: bool,
    handle: CK_OBJECT_HANDLE,
    template: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)],
) -> Result<()> {
    let obj = find_object(st, handle)?;
    let modifiable = obj.modifiable();
    let mut value = None;
    for (ty, v) in template {
        if *ty != CKA_VALUE || !modifiable {
            return ck(CKR_ATTRIBUTE_READ_ONLY);
        }
        value = Some(v);
    }
    let Some(value) = value else {
        // An empty template changes nothing.
        return Ok(());
    };
    if !rw {
        return ck(CKR_SESSION_READ_ONLY);
    }
    let user = st.user_logged_in();
    st.with_token(|t| {
        if !user && t.card.data_object_write_needs_pin(&obj.label)? {
            return ck(CKR_USER_NOT_LOGGED_IN);
        }
        match t.card.write_data_object(&obj.label, value) {
            Ok(()) => {}
            Err(CardError::InvalidInput { .. }) => return ck(CKR_ATTRIBUTE_VALUE_INVALID),
            Err(e) => return Err(e.into()),
        }
        // Forget the cached value: the next read returns what the card holds (zero-padded).
        remember_value(t, &obj.label, None);
        if let Some(Object {
            kind: Kind::Data { value: cached, .. },
            ..
        }) = object_mut(t, handle)
        {
            *cached = None;
        }
        log::info!("{:?}: {} bytes written", obj.label, value.len());
        Ok(())
    })
}
