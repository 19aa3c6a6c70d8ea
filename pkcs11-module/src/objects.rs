//! Token objects with the card's labels (spec §5.3), C_FindObjects*, C_GetAttributeValue,
//! C_SetAttributeValue.
//!
//! Objects are built when first needed (first search, attribute read or key use) from the
//! PKCS#15 directories only: the CDF (certificates), the PrKDF (private keys: label, iD, usage,
//! modulus size, private flag come from the card) and the DODF (data objects). Nothing else is
//! read then:
//! - a certificate is read when an attribute that needs it is asked for (CKA_VALUE, CKA_SUBJECT,
//!   CKA_ISSUER, CKA_SERIAL_NUMBER, CKA_MODULUS, CKA_PUBLIC_EXPONENT, CKA_PUBLIC_KEY_INFO), when
//!   a search template names one of them, or when its key is used; the certificate, its public
//!   key and its private key are filled together;
//! - a data object's value is read when CKA_VALUE is first asked for with a buffer; a size query
//!   (NULL pValue) or CKA_VALUE_LEN takes the file size from the FCP/FCI (spec §5.3).
//!
//! With the disk cache ([`crate::cache`]) the sources come from the card's file when it is
//! valid (certificates and cached data values filled at once, nothing read); when it is cold,
//! every certificate is read at the first listing and the file written; a public,
//! non-modifiable data value read from the card is added to the file.
//!
//! Objects with CKA_PRIVATE = TRUE are invisible until the user logs in.

use cpx_card::{CardError, Interface, KeyRole};
use cryptoki_sys::*;
use x509_parser::prelude::*;

use crate::attributes::{AttrValue, attribute};
use crate::cache;
use crate::error::{Error, Result, ck};
use crate::slots::SlotState;
use crate::state::Module;
use crate::token::Token;

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

    /// Whether reading `types` needs this object's certificate first.
    pub fn needs_cert(&self, types: &[CK_ATTRIBUTE_TYPE]) -> bool {
        self.pending_cert.is_some() && types.iter().any(|t| CERT_ATTRIBUTES.contains(t))
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

/// The object list's sources read from the card: the CDF (certificates not read yet: empty
/// DER), the PrKDF, the DODF. Also whether they may go to the disk cache (no private
/// certificate).
fn listing_from_card(token: &mut Token) -> Result<(cache::Objects, bool)> {
    let infos = token.card.certificate_infos()?;
    let keys = token.card.private_keys()?;
    let certs = infos
        .iter()
        .map(|c| cache::Cert {
            label: c.common.label.clone(),
            id: c.id.clone(),
            authority: c.authority,
            der: Vec::new(),
        })
        .collect();
    let keys = keys
        .into_iter()
        .map(|k| cache::PrivateKey {
            label: k.label,
            id: k.id,
            role: k.role,
            modulus_bits: k.modulus_bits,
            private: k.private,
        })
        .collect();
    let cacheable = !infos.iter().any(|c| c.common.private);
    token.cert_infos = infos;
    let data = card_data(token)?;
    Ok((cache::Objects { certs, keys, data }, cacheable))
}

/// The data objects of the DODF (values not read); `None` when they cannot be listed (the
/// token still works without them).
fn card_data(token: &mut Token) -> Result<Option<Vec<cache::Data>>> {
    match token.card.data_objects() {
        Ok(list) => Ok(Some(
            list.into_iter()
                .map(|d| cache::Data {
                    label: d.label,
                    application: d.application,
                    private: d.private,
                    modifiable: d.modifiable,
                    value: None,
                })
                .collect(),
        )),
        Err(e) => {
            let e = Error::from(e);
            if crate::error::token_lost(&e) {
                return Err(e);
            }
            log::warn!("data objects: {e}");
            Ok(None)
        }
    }
}

/// Build the token's objects from their sources: certificates with a DER (from the disk cache)
/// are filled at once, the others wait for [`load_cert`].
fn assemble(module: &Module, token: &Token, listing: &cache::Objects) -> Vec<Object> {
    let contactless = token.card.interface() == Interface::Contactless;
    let g4 = token.card.generation() == cpx_card::Generation::Cps4;
    let mut out = Vec::new();
    for (i, c) in listing.certs.iter().enumerate() {
        out.push(Object {
            handle: module.new_object_handle(),
            label: c.label.clone(),
            id: c.id.clone(),
            private: false,
            kind: Kind::Certificate(CertData {
                authority: c.authority,
                ..CertData::default()
            }),
            pending_cert: Some(i),
        });
    }
    for k in &listing.keys {
        let cert = listing.certs.iter().position(|c| c.id == k.id && !c.authority);
        let key = KeyData {
            role: k.role,
            modulus: Vec::new(),
            exponent: Vec::new(),
            spki: Vec::new(),
            subject: Vec::new(),
            modulus_bits: CK_ULONG::from(k.modulus_bits),
            decrypt: k.role == KeyRole::Authentication && !contactless,
            // spec §4.5: a public key whose label contains "Sign" does not encrypt; CPS4 forces
            // ENCRYPT/VERIFY true.
            encrypt: g4 || k.role == KeyRole::Authentication,
        };
        if let Some(ci) = cert {
            // spec §5.3: no PuKDF on CPx cards, "Cle publique - " + the certificate label.
            out.push(Object {
                handle: module.new_object_handle(),
                label: format!("Cle publique - {}", listing.certs[ci].label),
                id: k.id.clone(),
                private: false,
                kind: Kind::PublicKey(key.clone()),
                pending_cert: cert,
            });
        } else {
            log::warn!("private key {:?}: no certificate with its iD", k.label);
        }
        out.push(Object {
            handle: module.new_object_handle(),
            label: k.label.clone(),
            id: k.id.clone(),
            // spec §5.3: the contactless technical key is public (PrKDF flag).
            private: k.private,
            kind: Kind::PrivateKey(key),
            pending_cert: cert,
        });
    }
    for d in listing.data.iter().flatten() {
        out.push(Object {
            handle: module.new_object_handle(),
            label: d.label.clone(),
            id: Vec::new(),
            private: d.private,
            kind: Kind::Data {
                application: d.application.clone().unwrap_or_else(|| "CPS".into()),
                modifiable: d.modifiable,
                size: d.value.as_ref().map(Vec::len),
                value: d.value.clone(),
            },
            pending_cert: None,
        });
    }
    for (i, c) in listing.certs.iter().enumerate() {
        if c.der.is_empty() {
            continue;
        }
        match parse_cert(&c.der, c.authority) {
            Some(parsed) => fill_cert(&mut out, i, &c.label, &parsed),
            // Left pending: read (and checked) from the card when needed.
            None => log::warn!("certificate {:?} from the disk cache: not X.509", c.label),
        }
    }
    log::debug!("{} objects", out.len());
    out
}

/// Fill every object that waits for certificate `index` from its parsed form.
fn fill_cert(objects: &mut [Object], index: usize, label: &str, p: &Parsed) {
    for o in objects.iter_mut().filter(|o| o.pending_cert == Some(index)) {
        o.pending_cert = None;
        match &mut o.kind {
            Kind::Certificate(cd) => *cd = p.cert.clone(),
            Kind::PublicKey(k) | Kind::PrivateKey(k) => {
                k.subject = p.cert.subject.clone();
                match &p.rsa {
                    Some((m, e, spki)) => {
                        k.modulus = m.clone();
                        k.exponent = e.clone();
                        k.spki = spki.clone();
                    }
                    None => log::warn!("certificate {label:?}: not an RSA key"),
                }
            }
            _ => {}
        }
    }
}

/// Read certificate `index` from the card and fill every object that waits for it; its DER.
fn load_cert(token: &mut Token, index: usize) -> Result<Vec<u8>> {
    let Some(info) = token.cert_infos.get(index).cloned() else {
        return ck(CKR_GENERAL_ERROR);
    };
    let c = token.card.read_certificate(&info)?;
    let Some(parsed) = parse_cert(&c.der, c.authority) else {
        // Whatever the card sent is not a certificate (a broken or hostile card): served as
        // CKA_VALUE it would be a wrong answer given as right. The objects stay unread.
        log::warn!(
            "certificate {:?}: the card's data is not an X.509 certificate",
            c.label
        );
        return ck(CKR_DEVICE_ERROR);
    };
    if let Some(objects) = token.objects.as_mut() {
        fill_cert(objects, index, &c.label, &parsed);
    }
    Ok(c.der)
}

/// Cold disk cache: read every certificate now (listings and key use need them all) and write
/// the card's file. A certificate that cannot be read leaves the cache cold (and the objects
/// lazy), without failing.
fn fill_cache(token: &mut Token, mut listing: cache::Objects) -> Result<()> {
    let Some(caches_data) = token.cache.as_ref().map(|c| c.entry.key.caches_data()) else {
        return Ok(());
    };
    if !caches_data {
        // No EF_ACTUA on this card: its data objects are not cached (see crate::cache).
        listing.data = None;
    } else if listing.data.is_none() {
        return Ok(());
    }
    for i in 0..listing.certs.len() {
        match load_cert(token, i) {
            Ok(der) => listing.certs[i].der = der,
            Err(e) if crate::error::token_lost(&e) => return Err(e),
            Err(e) => {
                log::debug!("certificate {i}: {e}; disk cache not filled");
                return Ok(());
            }
        }
    }
    if let Some(c) = &mut token.cache {
        c.entry.objects = Some(listing);
        c.changed();
    }
    token.persist_cache();
    Ok(())
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

/// The objects, building them on first use.
pub fn objects<'a>(module: &Module, token: &'a mut Token) -> Result<&'a mut Vec<Object>> {
    if token.objects.is_none() {
        let cached = token.cache.as_ref().and_then(|c| c.entry.objects.clone());
        // Only complete entries are written; an empty DER would leave a certificate without a
        // path to read it from.
        match cached.filter(|l| l.certs.iter().all(|c| !c.der.is_empty())) {
            Some(mut listing) => {
                log::debug!("objects from the disk cache");
                if listing.data.is_none() {
                    // Not cached on this card (no EF_ACTUA): listed as without a cache.
                    listing.data = card_data(token)?;
                }
                token.objects = Some(assemble(module, token, &listing));
            }
            None => {
                let (listing, cacheable) = listing_from_card(token)?;
                token.objects = Some(assemble(module, token, &listing));
                if cacheable {
                    fill_cache(token, listing)?;
                }
            }
        }
    }
    token.objects.as_mut().ok_or(Error::Ck(CKR_GENERAL_ERROR))
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
        objects(module, t)?
            .iter()
            .find(|o| o.handle == handle && (user || !o.private))
            .cloned()
            .ok_or(Error::Ck(CKR_OBJECT_HANDLE_INVALID))
    })
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

/// Take a data object's size from its FCP/FCI if neither it nor the value is known (spec §5.3).
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
    let obj = find_object(module, st, reader, handle)?;
    let types: Vec<CK_ATTRIBUTE_TYPE> = wanted.iter().map(|w| w.kind).collect();
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
            objects(module, t)?
                .iter()
                .find(|o| o.handle == handle)
                .cloned()
                .ok_or(Error::Ck(CKR_OBJECT_HANDLE_INVALID))
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
    st.with_token(module, reader, |t, _| {
        let handles: Vec<CK_OBJECT_HANDLE> = objects(module, t)?
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
/// the login and answers CKR_USER_NOT_LOGGED_IN). Its certificate is read if it was not yet
/// (the operation needs the modulus).
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
        Ok(objects(module, t)?.iter().find(|o| o.handle == handle).cloned())
    })?;
    let Some(o) = found else {
        return ck(bad_handle);
    };
    if o.pending_cert.is_none() || o.key().is_none() {
        return Ok(o);
    }
    st.with_token(module, reader, |t, _| {
        ensure_cert(t, handle)?;
        objects(module, t)?
            .iter()
            .find(|o| o.handle == handle)
            .cloned()
            .ok_or(Error::Ck(bad_handle))
    })
}

/// C_SetAttributeValue (spec §5.4): only CKA_VALUE of a modifiable data object (CPS_DATA), in a
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
