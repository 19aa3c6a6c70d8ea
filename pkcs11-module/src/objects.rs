//! Token objects with the card's labels (docs/card-spec.md §5.3), C_FindObjects*, C_GetAttributeValue,
//! C_SetAttributeValue.
//!
//! Objects are built when first needed, each part from the PKCS#15 directories it needs only
//! (see `build`): the private keys from the PrKDF (label, iD, usage, modulus size, private
//! flag come from the card) at the first search, attribute read or key use; the certificates
//! and public keys from the CDF when a search or a handle may concern them; the data objects
//! from the DODF at the first search that may return them. Nothing else
//! is read then:
//! - a certificate is read when an attribute that needs it is asked for (CKA_VALUE, CKA_SUBJECT,
//!   CKA_ISSUER, CKA_SERIAL_NUMBER, CKA_MODULUS, CKA_PUBLIC_EXPONENT, CKA_PUBLIC_KEY_INFO), when
//!   a search template names one of them, or when its public key is used (C_VerifyInit,
//!   C_EncryptInit); the certificate, its public key and its private key are filled together.
//!   Signing and decrypting need only the PrKDF's modulus size;
//! - a data object's value is read when CKA_VALUE is first asked for with a buffer; a size query
//!   (NULL pValue) or CKA_VALUE_LEN takes the file size from the FCP/FCI (docs/card-spec.md §5.3).
//!
//! The disk cache ([`crate::cache`]) keeps whatever was read: the descriptions, each
//! certificate once read, the data list and the public, non-modifiable data values (where
//! EF_ACTUA tells updates apart); a later process builds from it and reads only what it still
//! lacks.
//!
//! Objects with CKA_PRIVATE = TRUE are invisible until the user logs in.

use cpx_card::{CardError, KeyRole};
use cryptoki_sys::*;
use x509_parser::prelude::*;

use crate::attributes::{AttrValue, attribute};
use crate::error::{Error, Result, ck};
use crate::slots::SlotState;
use crate::state::Module;
use crate::token::Token;

mod build;

use build::load_cert;
pub use build::{key_objects, objects, private_key_objects};

/// A certificate's fields (DER, names, serial empty until the certificate is read).
#[derive(Debug, Clone, Default)]
pub struct CertData {
    /// X.509 DER.
    pub der: Vec<u8>,
    /// Subject Name DER.
    pub subject: Vec<u8>,
    /// Issuer Name DER.
    pub issuer: Vec<u8>,
    /// Serial number as a DER INTEGER.
    pub serial: Vec<u8>,
    /// CA certificate.
    pub authority: bool,
}

/// An RSA key (public part; the private part never leaves the card). The modulus, exponent,
/// SPKI and subject come from the certificate, empty until it is read.
#[derive(Debug, Clone)]
pub struct KeyData {
    /// Which card key.
    pub role: KeyRole,
    /// Modulus, big-endian without leading zeros.
    pub modulus: Vec<u8>,
    /// Public exponent, big-endian.
    pub exponent: Vec<u8>,
    /// SubjectPublicKeyInfo DER.
    pub spki: Vec<u8>,
    /// The certificate's subject.
    pub subject: Vec<u8>,
    /// modulusLength from the PrKDF (CKA_MODULUS_BITS without reading the certificate).
    pub modulus_bits: CK_ULONG,
    /// The key decrypts (authentication key on a contact interface).
    pub decrypt: bool,
    /// CKA_ENCRYPT of the public key.
    pub encrypt: bool,
}

impl KeyData {
    /// The modulus length in bytes (from the certificate, else from the PrKDF).
    pub fn modulus_len(&self) -> usize {
        if self.modulus.is_empty() {
            usize::try_from(self.modulus_bits.div_ceil(8)).unwrap_or(256)
        } else {
            self.modulus.len()
        }
    }
}

/// What an object is.
#[derive(Debug, Clone)]
pub enum Kind {
    /// CKO_CERTIFICATE.
    Certificate(CertData),
    /// CKO_PUBLIC_KEY.
    PublicKey(KeyData),
    /// CKO_PRIVATE_KEY.
    PrivateKey(KeyData),
    /// CKO_DATA.
    Data {
        /// CKA_APPLICATION.
        application: String,
        /// CKA_MODIFIABLE.
        modifiable: bool,
        /// CKA_VALUE once read.
        value: Option<Vec<u8>>,
        /// The file size (FCP/FCI) once known.
        size: Option<usize>,
    },
}

/// A token object.
#[derive(Debug, Clone)]
pub struct Object {
    /// Its handle.
    pub handle: CK_OBJECT_HANDLE,
    /// CKA_LABEL.
    pub label: String,
    /// CKA_ID.
    pub id: Vec<u8>,
    /// CKA_PRIVATE.
    pub private: bool,
    /// Class and class-specific data.
    pub kind: Kind,
    /// The certificate (index in [`Token::cert_infos`]) whose fields this object still lacks.
    pub pending_cert: Option<usize>,
}

impl Object {
    /// CKA_CLASS.
    pub fn class(&self) -> CK_OBJECT_CLASS {
        match self.kind {
            Kind::Certificate(_) => CKO_CERTIFICATE,
            Kind::PublicKey(_) => CKO_PUBLIC_KEY,
            Kind::PrivateKey(_) => CKO_PRIVATE_KEY,
            Kind::Data { .. } => CKO_DATA,
        }
    }

    /// The key data of a key object.
    pub fn key(&self) -> Option<&KeyData> {
        match &self.kind {
            Kind::PublicKey(k) | Kind::PrivateKey(k) => Some(k),
            _ => None,
        }
    }

    /// Whether reading `types` needs this object's certificate first: an attribute only the
    /// certificate holds, or CKA_MODULUS_BITS of a key whose PrKDF entry gives no size.
    pub fn needs_cert(&self, types: &[CK_ATTRIBUTE_TYPE]) -> bool {
        let no_size = self.key().is_some_and(|k| k.modulus_bits == 0);
        self.pending_cert.is_some()
            && types
                .iter()
                .any(|t| CERT_ATTRIBUTES.contains(t) || (no_size && *t == CKA_MODULUS_BITS))
    }

    /// Whether using this key needs its certificate first: a public key (software operations
    /// take the modulus and exponent), or a private key whose PrKDF entry gives no modulus size.
    pub fn needs_cert_for_use(&self) -> bool {
        self.pending_cert.is_some()
            && match &self.kind {
                Kind::PublicKey(_) => true,
                Kind::PrivateKey(k) => k.modulus_bits == 0,
                _ => false,
            }
    }
}

/// The attributes whose value comes from the certificate.
pub const CERT_ATTRIBUTES: &[CK_ATTRIBUTE_TYPE] = &[
    CKA_VALUE,
    CKA_SUBJECT,
    CKA_ISSUER,
    CKA_SERIAL_NUMBER,
    CKA_MODULUS,
    CKA_PUBLIC_EXPONENT,
    CKA_PUBLIC_KEY_INFO,
];

/// A DER INTEGER from big-endian magnitude bytes as X.509 stores them.
fn der_integer(v: &[u8]) -> Vec<u8> {
    let mut out = vec![0x02];
    let len = v.len();
    if len < 0x80 {
        out.push(len as u8);
    } else if len < 0x100 {
        out.extend_from_slice(&[0x81, len as u8]);
    } else {
        out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]);
    }
    out.extend_from_slice(v);
    out
}

fn strip_zeros(v: &[u8]) -> Vec<u8> {
    let i = v
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(v.len().saturating_sub(1));
    v[i..].to_vec()
}

struct Parsed {
    cert: CertData,
    /// Modulus, exponent, SPKI of an RSA certificate.
    rsa: Option<(Vec<u8>, Vec<u8>, Vec<u8>)>,
}

fn parse_cert(der: &[u8], authority: bool) -> Option<Parsed> {
    let (_, c) = X509Certificate::from_der(der).ok()?;
    let tbs = &c.tbs_certificate;
    let spki = tbs.subject_pki.raw.to_vec();
    let rsa = match tbs.subject_pki.parsed() {
        Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => {
            Some((strip_zeros(rsa.modulus), strip_zeros(rsa.exponent), spki))
        }
        _ => None,
    };
    Some(Parsed {
        cert: CertData {
            der: der.to_vec(),
            subject: tbs.subject.as_raw().to_vec(),
            issuer: tbs.issuer.as_raw().to_vec(),
            serial: der_integer(tbs.raw_serial()),
            authority,
        },
        rsa,
    })
}

/// Read the certificate of object `handle` if it still lacks it.
fn ensure_cert(token: &mut Token, handle: CK_OBJECT_HANDLE) -> Result<()> {
    let pending = token
        .objects
        .as_ref()
        .and_then(|v| v.iter().find(|o| o.handle == handle))
        .and_then(|o| o.pending_cert);
    match pending {
        Some(i) => load_cert(token, i).map(drop),
        None => Ok(()),
    }
}

/// A visible object by handle (private objects only when the user is logged in).
pub fn find_object(
    module: &Module,
    st: &mut SlotState,
    reader: &str,
    handle: CK_OBJECT_HANDLE,
) -> Result<Object> {
    let user = st.user_logged_in();
    st.with_token(module, reader, |t, _| {
        by_handle(module, t, handle)?
            .filter(|o| user || !o.private)
            .ok_or(Error::Ck(CKR_OBJECT_HANDLE_INVALID))
    })
}

/// The object `handle`, building only as much of the list as needed to find it: the private
/// keys first (a key handle needs only the PrKDF), then the certificates and public keys, then
/// the data objects; every object is built before a handle is found missing (a handle the list
/// built at once would have given is never refused).
fn by_handle(module: &Module, token: &mut Token, handle: CK_OBJECT_HANDLE) -> Result<Option<Object>> {
    fn get(token: &Token, handle: CK_OBJECT_HANDLE) -> Option<Object> {
        token
            .objects
            .as_ref()?
            .iter()
            .find(|o| o.handle == handle)
            .cloned()
    }
    private_key_objects(module, token)?;
    if let Some(o) = get(token, handle) {
        return Ok(Some(o));
    }
    if !token.certs_listed {
        key_objects(module, token)?;
        if let Some(o) = get(token, handle) {
            return Ok(Some(o));
        }
    }
    if !token.data_listed {
        objects(module, token)?;
    }
    Ok(get(token, handle))
}

/// A private key built from the PrKDF alone does not know its certificate yet: when answering
/// `types` needs it (an attribute only the certificate holds, or the size of a key whose PrKDF
/// entry gives none), the CDF is listed first, which links the key to its certificate.
fn link_cert_for(
    module: &Module,
    token: &mut Token,
    o: &Object,
    types: &[CK_ATTRIBUTE_TYPE],
) -> Result<bool> {
    let Kind::PrivateKey(k) = &o.kind else {
        return Ok(false);
    };
    let needs = types
        .iter()
        .any(|t| CERT_ATTRIBUTES.contains(t) || (k.modulus_bits == 0 && *t == CKA_MODULUS_BITS));
    if token.certs_listed || o.pending_cert.is_some() || !needs {
        return Ok(false);
    }
    key_objects(module, token)?;
    Ok(true)
}

/// The object `handle` of the built list.
fn object_mut(token: &mut Token, handle: CK_OBJECT_HANDLE) -> Option<&mut Object> {
    token
        .objects
        .as_mut()
        .and_then(|v| v.iter_mut().find(|o| o.handle == handle))
}

/// Read a data object's value into the cache if it is not there.
fn load_value(token: &mut Token, handle: CK_OBJECT_HANDLE) -> Result<()> {
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
/// there at all ([`cache::Data::value_cacheable`], on a card with EF_ACTUA).
fn remember_value(token: &mut Token, label: &str, value: Option<&[u8]>) {
    let Some(c) = &mut token.cache else { return };
    let Some(d) = c
        .entry
        .objects
        .as_mut()
        .and_then(|o| o.data.as_mut())
        .and_then(|d| d.iter_mut().find(|d| d.label == label))
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
fn load_size(token: &mut Token, handle: CK_OBJECT_HANDLE) -> Result<()> {
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

/// One attribute asked for by C_GetAttributeValue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted {
    /// CKA_*.
    pub kind: CK_ATTRIBUTE_TYPE,
    /// pValue was NULL: only the length is asked for.
    pub size_only: bool,
}

/// C_GetAttributeValue: one value per requested attribute. A size-only query of a data
/// object's CKA_VALUE is answered from the FCP/FCI ([`AttrValue::Size`]) without reading it.
pub fn get_attributes(
    module: &Module,
    st: &mut SlotState,
    reader: &str,
    handle: CK_OBJECT_HANDLE,
    wanted: &[Wanted],
) -> Result<Vec<AttrValue>> {
    let types: Vec<CK_ATTRIBUTE_TYPE> = wanted.iter().map(|w| w.kind).collect();
    let mut obj = find_object(module, st, reader, handle)?;
    if st.with_token(module, reader, |t, _| link_cert_for(module, t, &obj, &types))? {
        obj = find_object(module, st, reader, handle)?;
    }
    let is_data = matches!(obj.kind, Kind::Data { .. });
    let value_read = is_data && wanted.iter().any(|w| w.kind == CKA_VALUE && !w.size_only);
    let size_asked = is_data
        && wanted
            .iter()
            .any(|w| w.kind == CKA_VALUE || w.kind == CKA_VALUE_LEN);
    let obj = if obj.needs_cert(&types) || value_read || size_asked {
        st.with_token(module, reader, |t, _| {
            if !is_data {
                ensure_cert(t, handle)?;
            } else if value_read {
                load_value(t, handle)?;
            } else {
                load_size(t, handle)?;
            }
            by_handle(module, t, handle)?.ok_or(Error::Ck(CKR_OBJECT_HANDLE_INVALID))
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
pub fn find(
    module: &Module,
    st: &mut SlotState,
    reader: &str,
    template: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)],
) -> Result<Vec<CK_OBJECT_HANDLE>> {
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
    st.with_token(module, reader, |t, _| {
        let listed = if private_only {
            private_key_objects(module, t)?
        } else if keys_only {
            key_objects(module, t)?
        } else {
            objects(module, t)?
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
pub fn key_for(
    module: &Module,
    st: &mut SlotState,
    reader: &str,
    handle: CK_OBJECT_HANDLE,
    bad_handle: CK_RV,
) -> Result<Object> {
    // Private keys are found without login too: the caller answers CKR_USER_NOT_LOGGED_IN
    // (conformance row 609; a handle kept across C_Logout).
    let found = st.with_token(module, reader, |t, _| {
        let o = by_handle(module, t, handle)?;
        match &o {
            Some(k) if link_cert_for(module, t, k, &[CKA_MODULUS_BITS])? => by_handle(module, t, handle),
            _ => Ok(o),
        }
    })?;
    let Some(o) = found else {
        return ck(bad_handle);
    };
    if !o.needs_cert_for_use() {
        return Ok(o);
    }
    st.with_token(module, reader, |t, _| {
        ensure_cert(t, handle)?;
        by_handle(module, t, handle)?.ok_or(Error::Ck(bad_handle))
    })
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
pub fn set_value(
    module: &Module,
    st: &mut SlotState,
    reader: &str,
    rw: bool,
    handle: CK_OBJECT_HANDLE,
    template: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)],
) -> Result<()> {
    let obj = find_object(module, st, reader, handle)?;
    let modifiable = matches!(obj.kind, Kind::Data { modifiable: true, .. });
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
    st.with_token(module, reader, |t, _| {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_integers() {
        assert_eq!(der_integer(&[0x01]), vec![0x02, 0x01, 0x01]);
        assert_eq!(der_integer(&[0x00, 0x80]), vec![0x02, 0x02, 0x00, 0x80]);
        assert_eq!(strip_zeros(&[0, 0, 1, 0]), vec![1, 0]);
        assert_eq!(strip_zeros(&[0]), vec![0]);
    }
}
