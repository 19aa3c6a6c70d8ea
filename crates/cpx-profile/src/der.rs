//! The DER reads x509-parser does not do for us, all through x509-parser's own DER layer
//! (asn1-rs): the certificate's outer envelope (its header read by [`crate::tlv`]'s asn1-rs
//! adapter, for precise errors before x509-parser runs), the elements of the ANS private
//! extensions and of DN values, INTEGER values; the RSA public key with x509-parser.

use x509_parser::asn1_rs::{Any, FromDer, Tag};
use x509_parser::public_key::RSAPublicKey;

use crate::error::{ProfileError, TlvErrorKind};
use crate::tlv::read_header;

/// Largest certificate accepted, header included. Real CPx and IGC-Santé certificates are
/// 1.5–2.5 KiB; 64 KiB leaves room for anything plausible and refuses absurd lengths early.
pub const MAX_CERT_LEN: usize = 64 * 1024;

/// Check the outer `SEQUENCE` of a DER certificate: tag, length form, declared size against the
/// input. Returns the certificate's total length.
pub(crate) fn check_envelope(input: &[u8]) -> Result<usize, ProfileError> {
    let first = *input.first().ok_or(ProfileError::Empty)?;
    if first != 0x30 {
        return Err(ProfileError::WrongTag {
            offset: 0,
            found: first,
        });
    }
    let h = read_header(input, 0).map_err(|e| match e.kind {
        TlvErrorKind::IndefiniteLength => ProfileError::AbsurdLength {
            offset: 1,
            detail: "indefinite length is not DER".into(),
        },
        TlvErrorKind::LengthTooLong { bytes } => ProfileError::AbsurdLength {
            offset: 1,
            detail: format!("{bytes} length bytes"),
        },
        _ => ProfileError::Truncated {
            declared: input.len() + 1,
            available: input.len(),
        },
    })?;
    let total = h.header_len.saturating_add(h.length);
    if total > MAX_CERT_LEN {
        return Err(ProfileError::AbsurdLength {
            offset: 1,
            detail: format!(
                "{} bytes declared, more than the {MAX_CERT_LEN} a certificate may have",
                h.length
            ),
        });
    }
    if total > input.len() {
        return Err(ProfileError::Truncated {
            declared: total,
            available: input.len(),
        });
    }
    if total < input.len() {
        return Err(ProfileError::TrailingBytes {
            count: input.len() - total,
        });
    }
    Ok(total)
}

/// One DER element at the start of `input`: (first tag byte, value, rest). Read by asn1-rs (through
/// x509-parser, which parses the rest of the certificate with it), not by hand.
pub(crate) fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (rest, any) = Any::from_der(input).ok()?;
    let first = *any.header.raw_tag()?.first()?;
    Some((first, any.data, rest))
}

/// The whole input as exactly one element with this tag; its value.
pub(crate) fn only(input: &[u8], tag: u8) -> Option<&[u8]> {
    match element(input)? {
        (t, value, []) if t == tag => Some(value),
        _ => None,
    }
}

/// `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }` (RFC 8017 A.1.1), read
/// by x509-parser: (modulus, exponent) without leading zero bytes.
pub(crate) fn rsa_public_key(input: &[u8]) -> Option<(&[u8], &[u8])> {
    let (rest, key) = RSAPublicKey::from_der(input).ok()?;
    let (n, e) = (key.modulus, key.exponent);
    if !rest.is_empty() || n.is_empty() || e.is_empty() {
        return None;
    }
    // Negative integers are not RSA parameters.
    if n[0] & 0x80 != 0 || e[0] & 0x80 != 0 {
        return None;
    }
    Some((strip_zeros(n), strip_zeros(e)))
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|x| *x != 0).unwrap_or(b.len());
    &b[start..]
}

/// Bits in a big-endian unsigned integer without leading zeros.
pub(crate) fn bit_length(n: &[u8]) -> usize {
    match n.first() {
        Some(first) => n.len() * 8 - first.leading_zeros() as usize,
        None => 0,
    }
}

/// A DER INTEGER value (content octets) as i64, if it has 1 to 8 bytes. asn1-rs converts; the
/// size check stays here because asn1-rs reads an empty INTEGER as 0 and accepts more than 8
/// bytes when the extra leading ones are zeros, which this crate has always refused.
pub(crate) fn integer(value: &[u8]) -> Option<i64> {
    if value.is_empty() || value.len() > 8 {
        return None;
    }
    i64::try_from(Any::from_tag_and_data(Tag::Integer, value)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_errors() {
        assert_eq!(check_envelope(&[]), Err(ProfileError::Empty));
        assert_eq!(
            check_envelope(&[0x31, 0x00]),
            Err(ProfileError::WrongTag {
                offset: 0,
                found: 0x31
            })
        );
        assert_eq!(
            check_envelope(&[0x30, 0x05, 0x00]),
            Err(ProfileError::Truncated {
                declared: 7,
                available: 3
            })
        );
        assert_eq!(
            check_envelope(&[0x30]),
            Err(ProfileError::Truncated {
                declared: 2,
                available: 1
            })
        );
        assert!(matches!(
            check_envelope(&[0x30, 0x80]),
            Err(ProfileError::AbsurdLength { .. })
        ));
        assert!(matches!(
            check_envelope(&[0x30, 0x89, 1, 2, 3, 4, 5, 6, 7, 8, 9]),
            Err(ProfileError::AbsurdLength { .. })
        ));
        assert!(matches!(
            check_envelope(&[0x30, 0x84, 0x7F, 0xFF, 0xFF, 0xFF]),
            Err(ProfileError::AbsurdLength { .. })
        ));
        assert_eq!(
            check_envelope(&[0x30, 0x00, 0x00]),
            Err(ProfileError::TrailingBytes { count: 1 })
        );
        assert_eq!(check_envelope(&[0x30, 0x00]), Ok(2));
    }

    #[test]
    fn integers_and_keys() {
        assert_eq!(integer(&[0x02]), Some(2));
        assert_eq!(integer(&[0xFF]), Some(-1));
        assert_eq!(integer(&[]), None);
        assert_eq!(integer(&[0x80]), Some(-128));
        assert_eq!(integer(&[0x00, 0xFF]), Some(255));
        assert_eq!(
            integer(&[0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]),
            Some(i64::MAX)
        );
        assert_eq!(integer(&[0x80, 0, 0, 0, 0, 0, 0, 0]), Some(i64::MIN));
        assert_eq!(integer(&[0, 0, 0, 0, 0, 0, 0, 0, 5]), None, "more than 8 bytes");
        assert_eq!(bit_length(&[0x01, 0x00]), 9);
        assert_eq!(bit_length(&[]), 0);
        let key = [0x30, 0x08, 0x02, 0x03, 0x00, 0xC1, 0x01, 0x02, 0x01, 0x03];
        assert_eq!(rsa_public_key(&key), Some((&[0xC1, 0x01][..], &[0x03][..])));
        assert_eq!(rsa_public_key(&key[..9]), None);
        // Negative modulus, trailing bytes, wrong outer tag.
        assert_eq!(
            rsa_public_key(&[0x30, 0x06, 0x02, 0x01, 0x81, 0x02, 0x01, 0x03]),
            None
        );
        assert_eq!(
            rsa_public_key(&[0x30, 0x06, 0x02, 0x01, 0x41, 0x02, 0x01, 0x03, 0x00]),
            None
        );
        assert_eq!(
            rsa_public_key(&[0x31, 0x06, 0x02, 0x01, 0x41, 0x02, 0x01, 0x03]),
            None
        );
    }

    #[test]
    fn elements() {
        assert_eq!(
            element(&[0x04, 0x01, 0xAA, 0x05]),
            Some((0x04, &[0xAA][..], &[0x05][..]))
        );
        assert_eq!(
            element(&[0xA0, 0x81, 0x01, 0xAA]),
            Some((0xA0, &[0xAA][..], &[][..]))
        );
        assert_eq!(
            element(&[0x30, 0x80, 0x00, 0x00]),
            None,
            "indefinite length is not DER"
        );
        assert_eq!(element(&[0x04, 0x02, 0xAA]), None, "truncated");
        assert_eq!(element(&[]), None);
        assert_eq!(only(&[0x04, 0x01, 0xAA], 0x04), Some(&[0xAA][..]));
        assert_eq!(only(&[0x04, 0x01, 0xAA, 0x00], 0x04), None);
        assert_eq!(only(&[0x04, 0x01, 0xAA], 0x02), None);
    }

    proptest::proptest! {
        #[test]
        fn elements_of_any_input_are_inside_it(input in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            if let Some((tag, value, rest)) = element(&input) {
                proptest::prop_assert_eq!(Some(&tag), input.first());
                proptest::prop_assert!(value.len() + rest.len() < input.len());
                proptest::prop_assert!(input.ends_with(rest));
            }
            let _ = rsa_public_key(&input);
        }
    }
}
