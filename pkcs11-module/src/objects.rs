//! Token objects with the official labels (spec §5.3), C_FindObjects*, C_GetAttributeValue.
//!
//! Objects are built when first needed (first search, attribute read or key use): that reads
//! the CDF and the certificates, and the DODF (not the data values). A data object's value is
//! read when CKA_VALUE is first asked for. Objects with CKA_PRIVATE = TRUE are invisible until
//! the user logs in.

use cpx_card::{Interface, KeyRole};
use cryptoki_sys::*;
use x509_parser::prelude::*;

use crate::attributes::{AttrValue, attribute};
use crate::error::{Error, Result, ck};
use crate::slots::SlotState;
use crate::state::Module;
use crate::token::Token;

/// A certificate's fields.
#[derive(Debug, Clone)]
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

/// An RSA key (public part; the private part never leaves the card).
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
    /// The key decrypts (authentication key on a contact interface).
    pub decrypt: bool,
    /// CKA_ENCRYPT of the public key.
    pub encrypt: bool,
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
}

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
    modulus: Vec<u8>,
    exponent: Vec<u8>,
    spki: Vec<u8>,
    non_repudiation: bool,
}

fn parse_cert(der: &[u8], authority: bool) -> Option<Parsed> {
    let (_, c) = X509Certificate::from_der(der).ok()?;
    let tbs = &c.tbs_certificate;
    let spki = tbs.subject_pki.raw.to_vec();
    let (modulus, exponent) = match tbs.subject_pki.parsed() {
        Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => {
            (strip_zeros(rsa.modulus), strip_zeros(rsa.exponent))
        }
        _ => return None,
    };
    let non_repudiation = matches!(tbs.key_usage(), Ok(Some(ku)) if ku.value.non_repudiation());
    Some(Parsed {
        cert: CertData {
            der: der.to_vec(),
            subject: tbs.subject.as_raw().to_vec(),
            issuer: tbs.issuer.as_raw().to_vec(),
            serial: der_integer(tbs.raw_serial()),
            authority,
        },
        modulus,
        exponent,
        spki,
        non_repudiation,
    })
}

/// Build the token's objects (reads the CDF, the certificates and the DODF).
fn build(module: &Module, token: &mut Token) -> Result<Vec<Object>> {
    let contactless = token.card.interface() == Interface::Contactless;
    let g4 = token.card.generation() == cpx_card::Generation::Cps4;
    let mut out = Vec::new();
    for c in token.card.certificates()? {
        let Some(p) = parse_cert(&c.der, c.authority) else {
            log::warn!("certificate {:?}: not an RSA X.509 certificate, skipped", c.label);
            continue;
        };
        let cert_label = c.label.clone();
        out.push(Object {
            handle: module.new_object_handle(),
            label: c.label.clone(),
            id: c.id.clone(),
            private: false,
            kind: Kind::Certificate(p.cert.clone()),
        });
        if c.authority {
            continue;
        }
        // The signature key is the nonRepudiation one (spec §1.5); the label decides otherwise.
        let role = if p.non_repudiation || (c.label.contains("Signature") && !contactless) {
            KeyRole::Signature
        } else {
            KeyRole::Authentication
        };
        let key = KeyData {
            role,
            modulus: p.modulus,
            exponent: p.exponent,
            spki: p.spki,
            subject: p.cert.subject.clone(),
            decrypt: role == KeyRole::Authentication && !contactless,
            // spec §4.5: a public key whose label contains "Sign" does not encrypt; CPS4 forces
            // ENCRYPT/VERIFY true.
            encrypt: g4 || role == KeyRole::Authentication,
        };
        out.push(Object {
            handle: module.new_object_handle(),
            label: format!("Cle publique - {cert_label}"),
            id: c.id.clone(),
            private: false,
            kind: Kind::PublicKey(key.clone()),
        });
        let label = match (role, contactless) {
            (KeyRole::Signature, _) => "CPS_PRIV_SIG",
            (KeyRole::Authentication, false) => "CPS_PRIV_AUT",
            (KeyRole::Authentication, true) => "CPS_PRIV_TECH_AUT",
        };
        out.push(Object {
            handle: module.new_object_handle(),
            label: label.into(),
            id: c.id,
            // spec §5.3: the contactless technical key is public.
            private: !contactless,
            kind: Kind::PrivateKey(key),
        });
    }
    match token.card.data_objects() {
        Ok(list) => {
            for d in list {
                out.push(Object {
                    handle: module.new_object_handle(),
                    label: d.label,
                    id: Vec::new(),
                    private: d.private,
                    kind: Kind::Data {
                        application: d.application.unwrap_or_else(|| "CPS".into()),
                        modifiable: d.modifiable,
                        value: None,
                    },
                });
            }
        }
        Err(e) => {
            let e = Error::from(e);
            if crate::error::token_lost(&e) {
                return Err(e);
            }
            log::warn!("data objects: {e}");
        }
    }
    log::debug!("{} objects", out.len());
    Ok(out)
}

/// The objects, building them on first use.
pub fn objects<'a>(module: &Module, token: &'a mut Token) -> Result<&'a mut Vec<Object>> {
    if token.objects.is_none() {
        let built = build(module, token)?;
        token.objects = Some(built);
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

/// Read a data object's value into the cache if it is not there.
fn load_value(token: &mut Token, handle: CK_OBJECT_HANDLE) -> Result<()> {
    let label = match token
        .objects
        .as_ref()
        .and_then(|v| v.iter().find(|o| o.handle == handle))
    {
        Some(Object {
            kind: Kind::Data { value: None, .. },
            label,
            ..
        }) => label.clone(),
        _ => return Ok(()),
    };
    let v = token.card.read_data_object(&label)?;
    if let Some(Object {
        kind: Kind::Data { value, .. },
        ..
    }) = token
        .objects
        .as_mut()
        .and_then(|v| v.iter_mut().find(|o| o.handle == handle))
    {
        *value = Some(v);
    }
    Ok(())
}

/// C_GetAttributeValue: one value per requested type.
pub fn get_attributes(
    module: &Module,
    st: &mut SlotState,
    reader: &str,
    handle: CK_OBJECT_HANDLE,
    types: &[CK_ATTRIBUTE_TYPE],
) -> Result<Vec<AttrValue>> {
    let obj = find_object(module, st, reader, handle)?;
    let obj = if types.contains(&CKA_VALUE) && matches!(obj.kind, Kind::Data { value: None, .. }) {
        st.with_token(module, reader, |t, _| {
            load_value(t, handle)?;
            objects(module, t)?
                .iter()
                .find(|o| o.handle == handle)
                .cloned()
                .ok_or(Error::Ck(CKR_OBJECT_HANDLE_INVALID))
        })?
    } else {
        obj
    };
    Ok(types.iter().map(|t| attribute(&obj, *t)).collect())
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
    st.with_token(module, reader, |t, _| {
        let handles: Vec<CK_OBJECT_HANDLE> = objects(module, t)?
            .iter()
            .filter(|o| user || !o.private)
            .map(|o| o.handle)
            .collect();
        let mut out = Vec::new();
        for h in handles {
            if wants_value && let Err(e) = load_value(t, h) {
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

/// A key for an operation: the object must exist, be visible and be of `class`.
pub fn key_for(
    module: &Module,
    st: &mut SlotState,
    reader: &str,
    handle: CK_OBJECT_HANDLE,
    bad_handle: CK_RV,
) -> Result<Object> {
    match find_object(module, st, reader, handle) {
        Err(Error::Ck(CKR_OBJECT_HANDLE_INVALID)) => ck(bad_handle),
        other => other,
    }
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
