//! Attribute values of the token objects.
//!
//! CKA_ALWAYS_AUTHENTICATE is FALSE on every key: the CPx access rules ask for the PIN once per
//! card session (SCB "user authentication", docs/card-spec.md §9: PSO CDS and INTERNAL AUTHENTICATE under
//! the same SE as VERIFY), and a card signs repeatedly after one VERIFY. The official module
//! does not implement the attribute (CKR_ATTRIBUTE_TYPE_INVALID, docs/card-spec.md §4.5); FALSE is what NSS
//! and OpenSSL expect for "no context-specific login".

use cryptoki_sys::*;

use crate::objects::{Kind, Object};

/// One attribute asked for by C_GetAttributeValue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted {
    /// CKA_*.
    pub kind: CK_ATTRIBUTE_TYPE,
    /// pValue was NULL: only the length is asked for.
    pub size_only: bool,
}

/// One attribute's value, or why there is none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttrValue {
    /// The value's bytes.
    Bytes(Vec<u8>),
    /// The attribute exists but cannot be revealed (CKR_ATTRIBUTE_SENSITIVE).
    Sensitive,
    /// Not an attribute of this object (CKR_ATTRIBUTE_TYPE_INVALID).
    Invalid,
    /// Only the length is known (a size query of a data object's CKA_VALUE answered from the
    /// FCP/FCI, docs/card-spec.md §5.3); the value itself was not read.
    Size(usize),
}

fn b(v: bool) -> AttrValue {
    AttrValue::Bytes(vec![CK_BBOOL::from(v)])
}

fn ul(v: CK_ULONG) -> AttrValue {
    AttrValue::Bytes(v.to_ne_bytes().to_vec())
}

fn bytes(v: &[u8]) -> AttrValue {
    AttrValue::Bytes(v.to_vec())
}

/// The value of attribute `t` of `o`.
pub fn attribute(o: &Object, t: CK_ATTRIBUTE_TYPE) -> AttrValue {
    // Common to storage objects.
    match t {
        CKA_CLASS => return ul(o.class()),
        CKA_TOKEN => return b(true),
        CKA_PRIVATE => return b(o.private),
        CKA_LABEL => return bytes(o.label.as_bytes()),
        CKA_COPYABLE | CKA_DESTROYABLE => return b(false),
        CKA_MODIFIABLE => {
            return b(o.modifiable());
        }
        CKA_UNIQUE_ID => return bytes(o.handle.to_string().as_bytes()),
        _ => {}
    }
    match &o.kind {
        Kind::Certificate(c) => match t {
            CKA_CERTIFICATE_TYPE => ul(CKC_X_509),
            // docs/card-spec.md §5.3: CA certificates are trusted.
            CKA_TRUSTED => b(c.authority),
            CKA_CERTIFICATE_CATEGORY => ul(if c.authority {
                CK_CERTIFICATE_CATEGORY_AUTHORITY
            } else {
                CK_CERTIFICATE_CATEGORY_TOKEN_USER
            }),
            CKA_ID => bytes(&o.id),
            CKA_SUBJECT => bytes(&c.subject),
            CKA_ISSUER => bytes(&c.issuer),
            CKA_SERIAL_NUMBER => bytes(&c.serial),
            CKA_VALUE => bytes(&c.der),
            CKA_URL | CKA_HASH_OF_SUBJECT_PUBLIC_KEY | CKA_HASH_OF_ISSUER_PUBLIC_KEY => bytes(&[]),
            CKA_START_DATE | CKA_END_DATE => bytes(&[]),
            CKA_JAVA_MIDP_SECURITY_DOMAIN => ul(CK_SECURITY_DOMAIN_UNSPECIFIED),
            CKA_CHECK_VALUE => AttrValue::Invalid,
            _ => AttrValue::Invalid,
        },
        Kind::PublicKey(k) | Kind::PrivateKey(k) => {
            let private = matches!(o.kind, Kind::PrivateKey(_));
            match t {
                CKA_KEY_TYPE => ul(CKK_RSA),
                CKA_ID => bytes(&o.id),
                CKA_START_DATE | CKA_END_DATE => bytes(&[]),
                CKA_DERIVE => b(false),
                // TRUE on both keys of a pair, as the official module (docs/pkcs11-module.md,
                // "Where it differs…": same): the keys were made in the card, never imported
                // through PKCS#11, and software that checks a key never left its token (LOCAL
                // with NEVER_EXTRACTABLE) accepts them as it did. Not a certificate attribute.
                CKA_LOCAL => b(true),
                CKA_KEY_GEN_MECHANISM => ul(CK_UNAVAILABLE_INFORMATION),
                CKA_SUBJECT => bytes(&k.subject),
                CKA_MODULUS => bytes(&k.modulus),
                CKA_MODULUS_BITS if k.modulus.is_empty() => ul(CK_ULONG::from(k.entry.modulus_bits)),
                CKA_MODULUS_BITS => ul(modulus_bits(&k.modulus)),
                CKA_PUBLIC_EXPONENT => bytes(&k.exponent),
                CKA_PUBLIC_KEY_INFO => bytes(&k.spki),
                CKA_ENCRYPT if !private => b(k.encrypt),
                CKA_VERIFY if !private => b(true),
                CKA_VERIFY_RECOVER | CKA_WRAP if !private => b(false),
                CKA_TRUSTED if !private => b(false),
                CKA_SIGN if private => b(true),
                CKA_DECRYPT if private => b(k.decrypt),
                CKA_SIGN_RECOVER | CKA_UNWRAP | CKA_WRAP_WITH_TRUSTED if private => b(false),
                CKA_SENSITIVE | CKA_ALWAYS_SENSITIVE | CKA_NEVER_EXTRACTABLE if private => b(true),
                CKA_EXTRACTABLE | CKA_ALWAYS_AUTHENTICATE if private => b(false),
                CKA_PRIVATE_EXPONENT | CKA_PRIME_1 | CKA_PRIME_2 | CKA_EXPONENT_1 | CKA_EXPONENT_2
                | CKA_COEFFICIENT | CKA_VALUE
                    if private =>
                {
                    AttrValue::Sensitive
                }
                _ => AttrValue::Invalid,
            }
        }
        Kind::Data { entry, value, size } => match t {
            // The DODF's applicationName (docs/card-spec.md §5.3); "CPS" when the entry has none.
            CKA_APPLICATION => bytes(entry.application.as_deref().unwrap_or("CPS").as_bytes()),
            CKA_OBJECT_ID => bytes(&[]),
            CKA_VALUE => match value {
                Some(v) => bytes(v),
                None => AttrValue::Invalid,
            },
            // Not a CKO_DATA attribute in PKCS#11; given as a convenience: the value's length
            // (the file size, docs/card-spec.md §5.3), known without reading the value.
            CKA_VALUE_LEN => match (value, size) {
                (Some(v), _) => ul(v.len() as CK_ULONG),
                (None, Some(n)) => ul(*n as CK_ULONG),
                (None, None) => AttrValue::Invalid,
            },
            _ => AttrValue::Invalid,
        },
    }
}

fn modulus_bits(m: &[u8]) -> CK_ULONG {
    match m.first() {
        Some(first) => ((m.len() * 8) as CK_ULONG) - CK_ULONG::from(first.leading_zeros()),
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::KeyData;

    #[test]
    fn private_key_attributes() {
        let o = Object {
            handle: 7,
            label: "CPS_PRIV_SIG".into(),
            id: vec![1],
            private: true,
            kind: Kind::PrivateKey(KeyData {
                entry: cpx_card::PrivateKeyInfo {
                    label: "CPS_PRIV_SIG".into(),
                    id: vec![1],
                    role: cpx_card::KeyRole::Signature,
                    modulus_bits: 2048,
                    private: true,
                },
                modulus: vec![0xC0; 256],
                exponent: vec![1, 0, 1],
                spki: vec![],
                subject: vec![0x30, 0],
                decrypt: false,
                encrypt: false,
            }),
            cert: None,
        };
        assert_eq!(attribute(&o, CKA_CLASS), ul(CKO_PRIVATE_KEY));
        assert_eq!(attribute(&o, CKA_MODULUS_BITS), ul(2048));
        assert_eq!(attribute(&o, CKA_PRIVATE_EXPONENT), AttrValue::Sensitive);
        assert_eq!(attribute(&o, CKA_ALWAYS_AUTHENTICATE), b(false));
        assert_eq!(attribute(&o, CKA_VERIFY), AttrValue::Invalid);
        assert_eq!(attribute(&o, CKA_SIGN), b(true));
        assert_eq!(attribute(&o, CKA_LOCAL), b(true));
    }
}
