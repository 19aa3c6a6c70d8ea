//! The token objects as PKCS#11 sees them (docs/card-spec.md §5.3): certificates, public and private keys,
//! data objects; the certificate parsing that fills them. No I/O here: a token builds and
//! completes its list ([`crate::token::build`], [`crate::token::objects`]); the object
//! functions of PKCS#11 ([`crate::object`]) read it.
//!
//! Objects are built when first needed, each part from the PKCS#15 directories it needs only
//! (see [`crate::token::build`]): the private keys from the PrKDF (label, iD, usage, modulus size, private
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

use std::sync::atomic::{AtomicU64, Ordering};

use cpx_card::{Certificate, DataObject, PrivateKeyInfo};
use cryptoki_sys::*;
use x509_parser::prelude::*;

/// Object handles: never reused for the life of the process, across C_Finalize and
/// C_Initialize too, so a stale handle kept by an application never names a new object.
static NEXT_OBJECT: AtomicU64 = AtomicU64::new(1);

/// A new object handle.
pub fn new_object_handle() -> CK_OBJECT_HANDLE {
    NEXT_OBJECT.fetch_add(1, Ordering::Relaxed) as CK_OBJECT_HANDLE
}

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

/// An RSA key (public part; the private part never leaves the card): the PrKDF's listing entry
/// of the key pair (role, modulusLength, as the card lists it and the disk cache keeps it), and
/// the modulus, exponent, SPKI and subject from the certificate, empty until it is read.
#[derive(Debug, Clone)]
pub struct KeyData {
    /// The card's listing entry of the key (for a public key, its private key's).
    pub entry: PrivateKeyInfo,
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

impl KeyData {
    /// The modulus length in bytes (from the certificate, else from the PrKDF).
    pub fn modulus_len(&self) -> usize {
        if self.modulus.is_empty() {
            usize::try_from(self.entry.modulus_bits.div_ceil(8)).unwrap_or(256)
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
        /// The card's listing entry (CKA_APPLICATION, CKA_MODIFIABLE).
        entry: DataObject,
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
    /// The listing entry of the certificate whose fields this object still lacks (the
    /// certificate itself, or a key's: same iD): the card's listing entry, the same value the
    /// disk cache keeps (matched by label and iD, [`Object::waits_for`]); `None` once filled,
    /// and for objects without a certificate.
    pub cert: Option<Certificate>,
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

    /// CKA_MODIFIABLE: a data object the DODF flags modifiable.
    pub fn modifiable(&self) -> bool {
        matches!(&self.kind, Kind::Data { entry, .. } if entry.modifiable)
    }

    /// Whether this object still lacks the fields of the certificate `cert` lists.
    pub fn waits_for(&self, cert: &Certificate) -> bool {
        self.cert
            .as_ref()
            .is_some_and(|c| (&c.label, &c.id) == (&cert.label, &cert.id))
    }

    /// Whether reading `types` needs this object's certificate first: an attribute only the
    /// certificate holds, or CKA_MODULUS_BITS of a key whose PrKDF entry gives no size.
    pub fn needs_cert(&self, types: &[CK_ATTRIBUTE_TYPE]) -> bool {
        let no_size = self.key().is_some_and(|k| k.entry.modulus_bits == 0);
        self.cert.is_some()
            && types
                .iter()
                .any(|t| CERT_ATTRIBUTES.contains(t) || (no_size && *t == CKA_MODULUS_BITS))
    }

    /// Whether using this key needs its certificate first: a public key (software operations
    /// take the modulus and exponent), or a private key whose PrKDF entry gives no modulus size.
    pub fn needs_cert_for_use(&self) -> bool {
        self.cert.is_some()
            && match &self.kind {
                Kind::PublicKey(_) => true,
                Kind::PrivateKey(k) => k.entry.modulus_bits == 0,
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

pub(crate) struct Parsed {
    pub(crate) cert: CertData,
    /// Modulus, exponent, SPKI of an RSA certificate.
    pub(crate) rsa: Option<(Vec<u8>, Vec<u8>, Vec<u8>)>,
}

pub(crate) fn parse_cert(der: &[u8], authority: bool) -> Option<Parsed> {
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
