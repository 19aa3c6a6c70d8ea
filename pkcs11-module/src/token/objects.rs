//! A token's objects looked up and completed: an object by handle (building only as much of the
//! list as needed), its certificate read, a data object's value or size read, the disk cache
//! kept in step.

use cryptoki_sys::*;

use super::Token;
use super::build::{key_objects, load_cert, objects, private_key_objects};
use crate::error::Result;
use crate::objects::{CERT_ATTRIBUTES, Kind, Object};

/// Read the certificate of object `handle` if it still lacks it.
pub fn ensure_cert(token: &mut Token, handle: CK_OBJECT_HANDLE) -> Result<()> {
    let pending = token
        .objects
        .as_ref()
        .and_then(|v| v.iter().find(|o| o.handle == handle))
        .and_then(|o| o.cert.clone());
    match pending {
        Some(cert) => load_cert(token, &cert).map(drop),
        None => Ok(()),
    }
}

/// The object `handle`, building only as much of the list as needed to find it: the private
/// keys first (a key handle needs only the PrKDF), then the certificates and public keys, then
/// the data objects; every object is built before a handle is found missing (a handle the list
/// built at once would have given is never refused).
pub fn by_handle(token: &mut Token, handle: CK_OBJECT_HANDLE) -> Result<Option<Object>> {
    fn get(token: &Token, handle: CK_OBJECT_HANDLE) -> Option<Object> {
        token
            .objects
            .as_ref()?
            .iter()
            .find(|o| o.handle == handle)
            .cloned()
    }
    private_key_objects(token)?;
    if let Some(o) = get(token, handle) {
        return Ok(Some(o));
    }
    if !token.certs_listed {
        key_objects(token)?;
        if let Some(o) = get(token, handle) {
            return Ok(Some(o));
        }
    }
    if !token.data_listed {
        objects(token)?;
    }
    Ok(get(token, handle))
}

/// A private key built from the PrKDF alone does not know its certificate yet: when answering
/// `types` needs it (an attribute only the certificate holds, or the size of a key whose PrKDF
/// entry gives none), the CDF is listed first, which links the key to its certificate.
pub fn link_cert_for(token: &mut Token, o: &Object, types: &[CK_ATTRIBUTE_TYPE]) -> Result<bool> {
    let Kind::PrivateKey(k) = &o.kind else {
        return Ok(false);
    };
    let needs = types
        .iter()
        .any(|t| CERT_ATTRIBUTES.contains(t) || (k.entry.modulus_bits == 0 && *t == CKA_MODULUS_BITS));
    if token.certs_listed || o.cert.is_some() || !needs {
        return Ok(false);
    }
    key_objects(token)?;
    Ok(true)
}

/// The object `handle` of the built list.
pub fn object_mut(token: &mut Token, handle: CK_OBJECT_HANDLE) -> Option<&mut Object> {
    token
        .objects
        .as_mut()
        .and_then(|v| v.iter_mut().find(|o| o.handle == handle))
}

/// Read a data object's value into the cache if it is not there.
pub fn load_value(token: &mut Token, handle: CK_OBJECT_HANDLE) -> Result<()> {
    let label = match object_mut(token, handle) {
        Some(Object {
            kind: Kind::Data { value: None, .. },
            label,
            ..
        }) => label.clone(),
        _ => return Ok(()),
    };
    let v = token.card.read_data_object(&label)?;
    remember_value(token, &label, Some(&v));
    if let Some(Object {
        kind: Kind::Data { value, size, .. },
        ..
    }) = object_mut(token, handle)
    {
        *size = Some(v.len());
        *value = Some(v);
    }
    Ok(())
}

/// Put a data object's value in the disk cache (or take it out: `None`), when it is cached
/// there at all ([`crate::cache::Data::value_cacheable`], on a card with EF_ACTUA).
pub fn remember_value(token: &mut Token, label: &str, value: Option<&[u8]>) {
    let Some(c) = &mut token.cache else { return };
    let Some(d) = c
        .entry
        .objects
        .as_mut()
        .and_then(|o| o.data.as_mut())
        .and_then(|d| d.iter_mut().find(|d| d.object.label == label))
    else {
        return;
    };
    let new = value.filter(|_| d.value_cacheable()).map(<[u8]>::to_vec);
    if d.value == new {
        return;
    }
    d.value = new;
    c.changed();
    token.persist_cache();
}

/// Take a data object's size from its FCP/FCI if neither it nor the value is known (docs/card-spec.md §5.3).
pub fn load_size(token: &mut Token, handle: CK_OBJECT_HANDLE) -> Result<()> {
    let label = match object_mut(token, handle) {
        Some(Object {
            kind:
                Kind::Data {
                    value: None,
                    size: None,
                    ..
                },
            label,
            ..
        }) => label.clone(),
        _ => return Ok(()),
    };
    let n = token.card.data_object_size(&label)?;
    if let Some(Object {
        kind: Kind::Data { size, .. },
        ..
    }) = object_mut(token, handle)
    {
        *size = Some(n);
    }
    Ok(())
}
