//! Personal data out of a `cpx report` (docs/card-report.md, "What is redacted"): certificates
//! and business data keep their lengths and their TLV structure, their personal values become
//! placeholders. The structure is found with cpx-profile's BER-TLV decoder
//! ([`cpx_profile::tlv::decode`]), the one the profile itself reads these values with.
//!
//! Rules, for every primitive value of a certificate (outside its issuer name and validity) or
//! of a business data object (a value of an ASN.1 string type is text whatever its bytes):
//! - text (bytes from space up, no C1 control): each ASCII digit becomes `0`, each other byte that
//!   is not ASCII punctuation or space becomes `X`; kept when it is at most 8 digits (codes,
//!   dates, flags: not personal, and the card's parsing depends on them);
//! - a BIT STRING or OCTET STRING longer than 8 bytes that holds DER (a public key, an
//!   extension) is redacted inside;
//! - INTEGER longer than 8 bytes (serial number, modulus): deterministic filler after the first
//!   byte (sign and size kept); other binary values longer than 8 bytes (signature, key
//!   identifiers): deterministic filler;
//! - OBJECT IDENTIFIER, BOOLEAN, NULL, ENUMERATED and times, and short binary values: kept.
//!
//! A value whose structure does not decode is replaced whole by filler.

use std::ops::Range;

use cpx_profile::tlv::{self, TlvNode};

/// Where the value of `node` lies in `input` (the input `node` was decoded from).
fn value_range(input: &[u8], node: &TlvNode) -> Option<Range<usize>> {
    let tag_len = node.tag.len() / 2;
    let first_length_byte = *input.get(node.offset.checked_add(tag_len)?)?;
    let length_len = if first_length_byte < 0x80 {
        1
    } else {
        1 + usize::from(first_length_byte & 0x7F)
    };
    let start = node.offset.checked_add(tag_len + length_len)?;
    let end = start.checked_add(node.length)?;
    (end <= input.len()).then_some(start..end)
}

/// Text a person may have written: every byte from space up, no DEL or C1 control, and at
/// least one ASCII letter or digit (a lone flag byte such as `A0` is not text).
fn looks_like_text(bytes: &[u8]) -> bool {
    bytes.iter().any(u8::is_ascii_alphanumeric)
        && bytes.iter().all(|&b| b >= 0x20 && !(0x7F..=0x9F).contains(&b))
}

/// Short digit strings (codes, dates, flags) stay: not personal, and parsing depends on them.
fn keeps(bytes: &[u8]) -> bool {
    bytes.len() <= 8 && bytes.iter().all(u8::is_ascii_digit)
}

/// Same-length placeholder text: digits `0`, letters and other bytes `X`, punctuation kept.
fn placeholder(bytes: &mut [u8]) {
    for b in bytes {
        *b = if b.is_ascii_digit() {
            b'0'
        } else if b.is_ascii_punctuation() || *b == b' ' {
            *b
        } else {
            b'X'
        };
    }
}

/// Deterministic filler (xorshift seeded by the position): the same input gives the same report.
fn filler(bytes: &mut [u8], seed: usize) {
    let mut state = (seed as u64) ^ 0x9E37_79B9_7F4A_7C15;
    for b in bytes {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        *b = (state >> 56) as u8;
    }
}

/// Redact `out[range]`, which holds (in `original`) a sequence of DER objects covering it
/// exactly; `false` (nothing changed) when it does not.
fn redact_der(out: &mut [u8], original: &[u8], range: Range<usize>) -> bool {
    let Some(input) = original.get(range.clone()) else {
        return false;
    };
    let Ok(doc) = tlv::decode(input) else {
        return false;
    };
    let covers = doc.padding == 0
        && doc
            .nodes
            .last()
            .and_then(|n| value_range(input, n))
            .is_some_and(|r| r.end == input.len());
    if !covers {
        return false;
    }
    for node in &doc.nodes {
        redact_node(out, input, node, range.start);
    }
    true
}

/// Redact one decoded node (`input` is what it was decoded from, at `base` in `out`).
fn redact_node(out: &mut [u8], input: &[u8], node: &TlvNode, base: usize) {
    let Some(range) = value_range(input, node) else {
        return;
    };
    if node.constructed {
        for child in &node.children {
            redact_node(out, input, child, base);
        }
        return;
    }
    let value = &input[range.clone()];
    let at = base + range.start..base + range.end;
    let tag = node.tag.as_str();
    match tag {
        // OBJECT IDENTIFIER, BOOLEAN, NULL, ENUMERATED, UTCTime, GeneralizedTime.
        "06" | "01" | "05" | "0A" | "17" | "18" => {}
        // The ASN.1 string types: text whatever bytes it holds.
        "0C" | "12" | "13" | "14" | "15" | "16" | "19" | "1A" | "1B" | "1C" | "1D" | "1E"
            if !keeps(value) =>
        {
            placeholder(&mut out[at]);
        }
        "0C" | "12" | "13" | "14" | "15" | "16" | "19" | "1A" | "1B" | "1C" | "1D" | "1E" => {}
        "02" if value.len() > 8 => filler(&mut out[at.start + 1..at.end], at.start),
        "02" => {}
        // Short ones are flags (key usage) or small identifiers: kept, or text below.
        "03" | "04" if value.len() > 8 => {
            // A BIT STRING's first byte counts the unused bits.
            let skip = usize::from(tag == "03");
            let inner = base + range.start + skip..base + range.end;
            let inner_original = range.start + skip..range.end;
            // Redact inside when it is DER (in `input` coordinates, written at `base`).
            let mut scratch = input.to_vec();
            if redact_der(&mut scratch, input, inner_original.clone()) {
                out[inner.clone()].copy_from_slice(&scratch[inner_original]);
            } else if looks_like_text(&value[skip..]) {
                if !keeps(&value[skip..]) {
                    placeholder(&mut out[inner]);
                }
            } else if value.len() > 8 {
                filler(&mut out[inner.clone()], inner.start);
            }
        }
        _ if looks_like_text(value) && !keeps(value) => placeholder(&mut out[at]),
        _ if looks_like_text(value) => {}
        _ if value.len() > 8 => filler(&mut out[at.clone()], at.start),
        _ => {}
    }
}

/// The certificate `der` with its subject, alternative names, serial number, public key,
/// extensions' personal values and signature replaced (issuer name, validity, algorithms and
/// every length and tag kept). Filler only when it does not decode.
pub(crate) fn certificate(der: &[u8]) -> Vec<u8> {
    let mut out = der.to_vec();
    let done = (|| {
        let doc = tlv::decode(der).ok()?;
        let cert = doc.nodes.first()?;
        let tbs = cert.children.first()?;
        // TBSCertificate: [0] version?, serialNumber, signature, issuer, validity, subject…
        let issuer = if tbs.children.first()?.tag == "A0" { 3 } else { 2 };
        for (i, child) in tbs.children.iter().enumerate() {
            if i != issuer && i != issuer + 1 {
                redact_node(&mut out, der, child, 0);
            }
        }
        for child in cert.children.iter().skip(1) {
            redact_node(&mut out, der, child, 0);
        }
        Some(())
    })();
    if done.is_none() {
        filler(&mut out, 0);
    }
    out
}

/// A business data object's value with its text values replaced (tags, lengths and padding
/// kept); filler when it is not BER-TLV (e.g. a CPS2ter-format file).
pub(crate) fn business_data(value: &[u8]) -> Vec<u8> {
    let mut out = value.to_vec();
    let Ok(doc) = tlv::decode(value) else {
        filler(&mut out, 0);
        return out;
    };
    for node in doc.iter().filter(|n| !n.constructed) {
        let Some(range) = value_range(value, node) else {
            continue;
        };
        let bytes = &value[range.clone()];
        if looks_like_text(bytes) {
            if !keeps(bytes) {
                placeholder(&mut out[range]);
            }
        } else if bytes.len() > 8 {
            filler(&mut out[range.clone()], range.start);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn business_text_is_replaced_in_place() {
        // EE { 80 "10", 81 "DUPONT Jean", 82 "20260101", 83 "899700000013" }
        let mut v = vec![0xEE, 0x29, 0x80, 0x02];
        v.extend_from_slice(b"10");
        v.extend_from_slice(&[0x81, 0x0B]);
        v.extend_from_slice(b"DUPONT Jean");
        v.extend_from_slice(&[0x82, 0x08]);
        v.extend_from_slice(b"20260101");
        v.extend_from_slice(&[0x83, 0x0C]);
        v.extend_from_slice(b"899700000013");
        v.extend_from_slice(&[0x00, 0x00]);
        let r = business_data(&v);
        assert_eq!(r.len(), v.len());
        let text = String::from_utf8_lossy(&r);
        assert!(text.contains("10") && text.contains("XXXXXX XXXX") && text.contains("20260101"));
        assert!(text.contains("000000000000") && !text.contains("DUPONT") && !text.contains("8997"));
        assert_eq!(tlv::decode(&r).unwrap().nodes.len(), 1, "structure kept");
    }

    #[test]
    fn not_tlv_becomes_filler() {
        let v = b"\xFF\x81not a tlv".to_vec();
        let r = business_data(&v);
        assert_eq!(r.len(), v.len());
        assert_ne!(r, v);
    }

    #[test]
    fn test_certificate_keeps_structure_and_loses_the_holder() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../test-vectors/cards/cps3-doctor");
        let der = std::fs::read(format!("{root}/auth.der")).unwrap();
        let r = certificate(&der);
        assert_eq!(r.len(), der.len());
        let text = String::from_utf8_lossy(&r);
        for personal in ["ALICE", "MEDECIN-TEST0001", "899700000013"] {
            assert!(!text.contains(personal), "{personal} left");
        }
        assert!(
            text.contains("TEST CPX AC IGC-SANTE FORT PERSONNES"),
            "issuer kept"
        );
        assert_ne!(r[r.len() - 32..], der[der.len() - 32..], "signature replaced");
        // Same shape: cpx-profile still reads a certificate with the issuer and validity.
        let profile = cpx_profile::Profile::builder()
            .certificate_from("auth", &r)
            .build(&cpx_profile::TrustStore::new(), cpx_profile::Timestamp::now());
        assert_eq!(profile.certificates.len(), 1, "{}", profile.to_json());
    }
}
