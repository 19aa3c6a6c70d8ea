//! A BER-TLV tree decoder that never panics and keeps everything it reads.
//!
//! Card data objects are ISO 7816-4 / IAS BER-TLV (docs/data-and-certs.md §1.2): multi-byte tags,
//! short and long-form lengths, constructed templates (`EE`, `EC`, …) holding primitive `8x`
//! fields. The decoder builds the whole tree with offsets, so unknown tags are shown, never
//! dropped. Each header (tag, class, length) is read by asn1-rs, the BER layer x509-parser parses
//! certificates with; not by `cpx-apdu`'s TLV module, since `cpx-profile` depends on none of our
//! crates (docs/architecture.md). This module adds what asn1-rs does not do: the tree with
//! offsets, padding, the limits below and precise error positions.
//!
//! Rules:
//! - `00` and `FF` bytes between data objects are padding (ISO 7816-4 §5.2.2.1); they are counted,
//!   not decoded (a zero-filled `CPS_DATA` file is all padding).
//! - Indefinite lengths (`80`) are refused: card files are definite-length.
//! - Tags are at most 4 bytes, lengths at most 4 length bytes, nesting at most [`MAX_DEPTH`].
//!
//! ```
//! use cpx_profile::tlv;
//!
//! // CPS_ACTIVITY_01_PS as in docs/data-and-certs.md §1.2: EE { 84 raison sociale, 86 secteur }
//! let doc = tlv::decode(&[0xEE, 0x0A, 0x84, 0x02, b'A', b'B', 0x86, 0x04, b'S', b'A', b'0', b'7'])?;
//! let ee = &doc.nodes[0];
//! assert_eq!(ee.tag, "EE");
//! assert_eq!(ee.class, tlv::TagClass::Private);
//! assert_eq!(ee.children[1].text.as_deref(), Some("SA07"));
//! assert!(doc.to_text().contains("86 (4) \"SA07\""));
//! # Ok::<(), cpx_profile::TlvError>(())
//! ```

use serde::Serialize;
use x509_parser::asn1_rs::{self, Class, FromBer, Header as BerHeader, Length};

use crate::error::{TlvError, TlvErrorKind};

/// Deepest nesting of constructed data objects the decoder follows.
pub const MAX_DEPTH: usize = 32;

/// The class of a BER tag (bits 8–7 of its first byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TagClass {
    /// `00xxxxxx`: ASN.1 universal types.
    Universal,
    /// `01xxxxxx`.
    Application,
    /// `10xxxxxx`: context-specific, e.g. the `8x` fields of card data.
    Context,
    /// `11xxxxxx`, e.g. the `EE` template of situations.
    Private,
}

/// One decoded data object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TlvNode {
    /// Tag bytes in upper-case hex, e.g. `"EE"`, `"5F20"`.
    pub tag: String,
    /// Tag class.
    pub class: TagClass,
    /// Constructed (bit 6 of the first tag byte): the value is a sequence of data objects.
    pub constructed: bool,
    /// Offset of the tag's first byte in the decoded input.
    pub offset: usize,
    /// Length of the value, in bytes.
    pub length: usize,
    /// The value in upper-case hex for primitive objects; `None` for constructed ones.
    pub value: Option<String>,
    /// The value as text when it is valid UTF-8 without control characters; `None` otherwise
    /// (and always for constructed objects).
    pub text: Option<String>,
    /// The data objects inside a constructed object; empty for primitive ones.
    pub children: Vec<TlvNode>,
    /// Padding bytes (`00`/`FF`) skipped inside a constructed object.
    pub padding: usize,
}

/// A decoded byte string: its top-level data objects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TlvDocument {
    /// Top-level data objects, in input order.
    pub nodes: Vec<TlvNode>,
    /// Padding bytes (`00`/`FF`) skipped between or after top-level objects.
    pub padding: usize,
}

/// Decode `input` as a sequence of BER-TLV data objects.
///
/// # Errors
/// A [`TlvError`] giving the offset and the cause: truncated tag, length or value, a tag longer
/// than 4 bytes, a length field longer than 4 bytes, an indefinite length, or nesting deeper
/// than [`MAX_DEPTH`].
pub fn decode(input: &[u8]) -> Result<TlvDocument, TlvError> {
    let (nodes, padding) = decode_sequence(input, 0, 0)?;
    Ok(TlvDocument { nodes, padding })
}

/// Longest tag accepted, in bytes (asn1-rs reads up to 6; card data uses at most 3).
const MAX_TAG_LEN: usize = 4;

/// Most length bytes accepted after a long-form length byte (asn1-rs reads up to 126 as long as
/// the value fits a `u64`).
const MAX_LENGTH_BYTES: usize = 4;

/// Header of one data object: tag bytes, value position and length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header<'a> {
    /// Tag bytes.
    pub(crate) tag: &'a [u8],
    /// Tag class.
    pub(crate) class: TagClass,
    /// Constructed encoding.
    pub(crate) constructed: bool,
    /// Header length (tag + length bytes).
    pub(crate) header_len: usize,
    /// Declared value length.
    pub(crate) length: usize,
}

/// Read the tag and length at the start of `input` (`base` = its offset, for errors). The value
/// is not checked against the input length: callers decide (see [`TlvErrorKind::ValueOverrun`]).
///
/// asn1-rs (x509-parser's BER layer) reads the header. What stays here is the adapter: this
/// crate's limits (4 tag bytes, 4 length bytes, no indefinite length), which are narrower than
/// asn1-rs's, and the error position, which asn1-rs does not give (its `InvalidTag` covers both a
/// truncated and an over-long tag, its `Incomplete` both a missing length byte and missing length
/// bytes), so [`header_error`] looks at the header bytes to say which and where.
pub(crate) fn read_header(input: &[u8], base: usize) -> Result<Header<'_>, TlvError> {
    let err = |at: usize, kind| TlvError {
        offset: base + at,
        kind,
    };
    if input.is_empty() {
        return Err(err(0, TlvErrorKind::TruncatedTag));
    }
    let (rest, h) = BerHeader::from_ber(input).map_err(|e| header_error(input, base, &e))?;
    let tag_len = h.raw_tag().map_or(1, <[u8]>::len);
    if tag_len > MAX_TAG_LEN {
        return Err(err(0, TlvErrorKind::TagTooLong));
    }
    let Length::Definite(length) = h.length() else {
        return Err(err(tag_len, TlvErrorKind::IndefiniteLength));
    };
    let header_len = input.len() - rest.len();
    let length_bytes = header_len - tag_len - 1;
    if length_bytes > MAX_LENGTH_BYTES {
        return Err(err(tag_len, TlvErrorKind::LengthTooLong { bytes: length_bytes }));
    }
    Ok(Header {
        tag: input.get(..tag_len).unwrap_or_default(),
        class: match h.class() {
            Class::Universal => TagClass::Universal,
            Class::Application => TagClass::Application,
            Class::ContextSpecific => TagClass::Context,
            Class::Private => TagClass::Private,
        },
        constructed: h.is_constructed(),
        header_len,
        length,
    })
}

/// Where and why asn1-rs refused the header at the start of `input` (not empty).
fn header_error(input: &[u8], base: usize, e: &asn1_rs::Err<asn1_rs::Error>) -> TlvError {
    let err = |at: usize, kind| TlvError {
        offset: base + at,
        kind,
    };
    let cause = match e {
        asn1_rs::Err::Error(c) | asn1_rs::Err::Failure(c) => Some(c),
        asn1_rs::Err::Incomplete(_) => None,
    };
    if cause == Some(&asn1_rs::Error::InvalidTag) {
        // The input ends inside the tag, or the tag is longer than asn1-rs's 6 bytes. Within our
        // 4 bytes, only the former; at 4 bytes and beyond, the tag is too long for us anyway.
        return match input.len() {
            n if n < MAX_TAG_LEN => err(n, TlvErrorKind::TruncatedTag),
            _ => err(0, TlvErrorKind::TagTooLong),
        };
    }
    // The tag was read: it ends at the first byte after the first one without bit 8 (X.690
    // 8.1.2.4), or is the first byte alone (low tag number form).
    let tag_len = if input.first().is_some_and(|b| b & 0x1F == 0x1F) {
        input
            .iter()
            .skip(1)
            .position(|b| b & 0x80 == 0)
            .map_or(input.len(), |p| p + 2)
    } else {
        1
    };
    if tag_len > MAX_TAG_LEN {
        return err(0, TlvErrorKind::TagTooLong);
    }
    match input.get(tag_len) {
        // asn1-rs: `ConstructExpected` (indefinite length on a primitive object).
        Some(0x80) => err(tag_len, TlvErrorKind::IndefiniteLength),
        // asn1-rs: `InvalidLength` (`FF`, or a length beyond u64), or `Incomplete` in more
        // length bytes than we accept: the count is wrong before the bytes are missing.
        Some(l0) if usize::from(l0 & 0x7F) > MAX_LENGTH_BYTES && l0 & 0x80 != 0 => err(
            tag_len,
            TlvErrorKind::LengthTooLong {
                bytes: usize::from(l0 & 0x7F),
            },
        ),
        // asn1-rs: `Incomplete` (no length byte, or missing length bytes).
        _ => err(tag_len, TlvErrorKind::TruncatedLength),
    }
}

fn decode_sequence(input: &[u8], base: usize, depth: usize) -> Result<(Vec<TlvNode>, usize), TlvError> {
    if depth > MAX_DEPTH {
        return Err(TlvError {
            offset: base,
            kind: TlvErrorKind::TooDeep { max: MAX_DEPTH },
        });
    }
    let mut nodes = Vec::new();
    let mut padding = 0;
    let mut pos = 0;
    while let Some(rest) = input.get(pos..).filter(|r| !r.is_empty()) {
        if matches!(rest.first(), Some(0x00 | 0xFF)) {
            padding += 1;
            pos += 1;
            continue;
        }
        let h = read_header(rest, base + pos)?;
        let available = rest.len() - h.header_len;
        let value = rest
            .get(h.header_len..h.header_len.saturating_add(h.length))
            .ok_or(TlvError {
                offset: base + pos,
                kind: TlvErrorKind::ValueOverrun {
                    length: h.length,
                    available,
                },
            })?;
        let (class, constructed) = (h.class, h.constructed);
        let value_base = base + pos + h.header_len;
        let (children, inner_padding, hex_value, text) = if constructed {
            let (children, p) = decode_sequence(value, value_base, depth + 1)?;
            (children, p, None, None)
        } else {
            (
                Vec::new(),
                0,
                Some(hex::encode_upper(value)),
                printable_text(value),
            )
        };
        nodes.push(TlvNode {
            tag: hex::encode_upper(h.tag),
            class,
            constructed,
            offset: base + pos,
            length: h.length,
            value: hex_value,
            text,
            children,
            padding: inner_padding,
        });
        pos += h.header_len + h.length;
    }
    Ok((nodes, padding))
}

/// `bytes` as text if valid UTF-8 with no control characters (and not empty).
pub(crate) fn printable_text(bytes: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(bytes).ok()?;
    (!s.is_empty() && !s.chars().any(char::is_control)).then(|| s.to_owned())
}

impl TlvDocument {
    /// Depth-first iterator over every node (parents before children).
    pub fn iter(&self) -> impl Iterator<Item = &TlvNode> {
        let mut stack: Vec<&TlvNode> = self.nodes.iter().rev().collect();
        std::iter::from_fn(move || {
            let node = stack.pop()?;
            stack.extend(node.children.iter().rev());
            Some(node)
        })
    }

    /// The structure as indented text, one data object per line:
    /// `tag (length) "text"` or `tag (length) HEX`, children indented by two spaces.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for node in &self.nodes {
            node.write_text(0, &mut out);
        }
        if self.padding > 0 {
            out.push_str(&format!("padding ({} bytes)\n", self.padding));
        }
        out
    }
}

impl TlvNode {
    /// First direct child with this tag (upper-case hex, e.g. `"84"`).
    pub fn child(&self, tag: &str) -> Option<&TlvNode> {
        self.children.iter().find(|c| c.tag == tag)
    }

    fn write_text(&self, indent: usize, out: &mut String) {
        let pad = " ".repeat(indent);
        match (&self.text, &self.value) {
            (Some(t), _) => out.push_str(&format!("{pad}{} ({}) {t:?}\n", self.tag, self.length)),
            (None, Some(v)) => out.push_str(&format!("{pad}{} ({}) {v}\n", self.tag, self.length)),
            (None, None) => out.push_str(&format!("{pad}{} ({})\n", self.tag, self.length)),
        }
        for c in &self.children {
            c.write_text(indent + 2, out);
        }
        if self.padding > 0 {
            out.push_str(&format!("{pad}  padding ({} bytes)\n", self.padding));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_situation_decodes() {
        // docs/data-and-certs.md §1.2, situation 1 of the [DEH] card.
        let mut inner = Vec::new();
        for (tag, text) in [(0x84, "HOPITAL GENERIQUE"), (0x85, "10B0307377"), (0x86, "SA01")] {
            inner.push(tag);
            inner.push(u8::try_from(text.len()).unwrap());
            inner.extend_from_slice(text.as_bytes());
        }
        let mut bytes = vec![0xEE, u8::try_from(inner.len()).unwrap()];
        bytes.extend(inner);
        let doc = decode(&bytes).unwrap();
        assert_eq!(doc.nodes.len(), 1);
        let ee = &doc.nodes[0];
        assert!(ee.constructed);
        assert_eq!(ee.class, TagClass::Private);
        assert_eq!(ee.children.len(), 3);
        assert_eq!(ee.child("85").unwrap().text.as_deref(), Some("10B0307377"));
        assert_eq!(ee.child("85").unwrap().offset, 2 + 2 + 17);
    }

    #[test]
    fn ef_actua_template() {
        // docs/card-notes.md §3: EC { 81 start, 82 end } in BCD.
        let bytes = [
            0xEC, 0x12, 0x81, 0x07, 0x20, 0x24, 0x01, 0x01, 0x00, 0x00, 0x00, 0x82, 0x07, 0x20, 0x30, 0x01,
            0x01, 0x00, 0x00, 0x00,
        ];
        let doc = decode(&bytes).unwrap();
        let ec = &doc.nodes[0];
        assert_eq!(ec.child("81").unwrap().value.as_deref(), Some("20240101000000"));
        assert_eq!(ec.child("82").unwrap().text, None);
    }

    #[test]
    fn multi_byte_tags_and_long_lengths() {
        let mut bytes = vec![0x5F, 0x20, 0x81, 0x80];
        bytes.extend([b'A'; 128]);
        bytes.extend([0xBF, 0x81, 0x01, 0x82, 0x00, 0x03, 0x80, 0x01, 0x07]);
        let doc = decode(&bytes).unwrap();
        assert_eq!(doc.nodes[0].tag, "5F20");
        assert_eq!(doc.nodes[0].class, TagClass::Application);
        assert_eq!(doc.nodes[0].length, 128);
        assert_eq!(doc.nodes[1].tag, "BF8101");
        assert_eq!(doc.nodes[1].children[0].value.as_deref(), Some("07"));
    }

    #[test]
    fn padding_is_counted() {
        let doc = decode(&[0x00, 0x80, 0x01, 0x41, 0x00, 0xFF, 0x00]).unwrap();
        assert_eq!(doc.nodes.len(), 1);
        assert_eq!(doc.padding, 4);
        assert_eq!(decode(&[0u8; 128]).unwrap().padding, 128);
        assert!(decode(&[]).unwrap().nodes.is_empty());
    }

    #[test]
    fn precise_errors() {
        let kind = |b: &[u8]| decode(b).unwrap_err();
        assert_eq!(
            kind(&[0x5F]),
            TlvError {
                offset: 1,
                kind: TlvErrorKind::TruncatedTag
            }
        );
        assert_eq!(
            kind(&[0x84]),
            TlvError {
                offset: 1,
                kind: TlvErrorKind::TruncatedLength
            }
        );
        assert_eq!(
            kind(&[0x84, 0x82, 0x01]),
            TlvError {
                offset: 1,
                kind: TlvErrorKind::TruncatedLength
            }
        );
        assert_eq!(
            kind(&[0x84, 0x80]),
            TlvError {
                offset: 1,
                kind: TlvErrorKind::IndefiniteLength
            }
        );
        assert_eq!(
            kind(&[0x84, 0x85, 1, 2, 3, 4, 5]),
            TlvError {
                offset: 1,
                kind: TlvErrorKind::LengthTooLong { bytes: 5 }
            }
        );
        assert_eq!(
            kind(&[0x84, 0x84, 0xFF, 0xFF, 0xFF, 0xFF, 0x41]),
            TlvError {
                offset: 0,
                kind: TlvErrorKind::ValueOverrun {
                    length: 0xFFFF_FFFF,
                    available: 1
                }
            }
        );
        assert_eq!(
            kind(&[0x9F, 0x81, 0x82, 0x83, 0x01, 0x00]),
            TlvError {
                offset: 0,
                kind: TlvErrorKind::TagTooLong
            }
        );
        // Indefinite length, constructed (with its end-of-contents) or primitive.
        assert_eq!(
            kind(&[0xEE, 0x80, 0x84, 0x01, 0x41, 0x00, 0x00]),
            TlvError {
                offset: 1,
                kind: TlvErrorKind::IndefiniteLength
            }
        );
        assert_eq!(
            kind(&[0x5F, 0x20, 0x80, 0x41]),
            TlvError {
                offset: 2,
                kind: TlvErrorKind::IndefiniteLength
            }
        );
        // `FF` as length byte (reserved, X.690 8.1.3.5); 8 length bytes of a huge length.
        assert_eq!(
            kind(&[0x84, 0xFF, 0x01]),
            TlvError {
                offset: 1,
                kind: TlvErrorKind::LengthTooLong { bytes: 127 }
            }
        );
        assert_eq!(
            kind(&[0x84, 0x88, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]),
            TlvError {
                offset: 1,
                kind: TlvErrorKind::LengthTooLong { bytes: 8 }
            }
        );
        // Tags of 5 and 7 bytes (asn1-rs reads the first, refuses the second), a truncated
        // 3-byte tag.
        for tag in [
            &[0x9F, 0x81, 0x81, 0x81, 0x01][..],
            &[0x9F, 0x81, 0x81, 0x81, 0x81, 0x81, 0x01],
        ] {
            let mut bytes = tag.to_vec();
            bytes.extend([0x01, 0x41]);
            assert_eq!(
                kind(&bytes),
                TlvError {
                    offset: 0,
                    kind: TlvErrorKind::TagTooLong
                }
            );
        }
        assert_eq!(
            kind(&[0x9F, 0x81]),
            TlvError {
                offset: 2,
                kind: TlvErrorKind::TruncatedTag
            }
        );
        // The error inside a template carries the absolute offset.
        assert_eq!(
            kind(&[0xEE, 0x03, 0x84, 0x05, 0x41]),
            TlvError {
                offset: 2,
                kind: TlvErrorKind::ValueOverrun {
                    length: 5,
                    available: 1
                }
            }
        );
    }

    #[test]
    fn nesting_is_bounded() {
        // 40 nested empty-ended constructed objects: A0 len (A0 len (...))
        let mut bytes = vec![0x80, 0x00];
        for _ in 0..40 {
            let mut outer = vec![0xA0, u8::try_from(bytes.len()).unwrap_or(0x7F)];
            if bytes.len() > 0x7F {
                outer = vec![0xA0, 0x81, u8::try_from(bytes.len()).unwrap()];
            }
            outer.extend(bytes);
            bytes = outer;
        }
        assert!(matches!(
            decode(&bytes).unwrap_err().kind,
            TlvErrorKind::TooDeep { max: MAX_DEPTH }
        ));
    }

    /// The hand-written header reader this module had before asn1-rs: the oracle that pins the
    /// behaviour (values, error kinds and offsets) the asn1-rs adapter must keep.
    fn oracle(input: &[u8]) -> Result<(&[u8], usize, usize), TlvError> {
        let err = |at: usize, kind| TlvError { offset: at, kind };
        let first = *input.first().ok_or(err(0, TlvErrorKind::TruncatedTag))?;
        let mut tag_len = 1;
        if first & 0x1F == 0x1F {
            loop {
                let b = *input
                    .get(tag_len)
                    .ok_or(err(tag_len, TlvErrorKind::TruncatedTag))?;
                tag_len += 1;
                if b & 0x80 == 0 {
                    break;
                }
                if tag_len >= 4 {
                    return Err(err(0, TlvErrorKind::TagTooLong));
                }
            }
        }
        let l0 = *input
            .get(tag_len)
            .ok_or(err(tag_len, TlvErrorKind::TruncatedLength))?;
        let (length, header_len) = match l0 {
            0..=0x7F => (usize::from(l0), tag_len + 1),
            0x80 => return Err(err(tag_len, TlvErrorKind::IndefiniteLength)),
            _ => {
                let n = usize::from(l0 & 0x7F);
                if n > 4 {
                    return Err(err(tag_len, TlvErrorKind::LengthTooLong { bytes: n }));
                }
                let bytes = input
                    .get(tag_len + 1..tag_len + 1 + n)
                    .ok_or(err(tag_len, TlvErrorKind::TruncatedLength))?;
                let length = bytes.iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
                (length, tag_len + 1 + n)
            }
        };
        Ok((&input[..tag_len], header_len, length))
    }

    /// Bytes that make headers interesting: high-tag-number starts, continuation bytes, long
    /// and indefinite length bytes, `FF`.
    fn header_byte() -> impl proptest::strategy::Strategy<Value = u8> {
        proptest::prop_oneof![
            proptest::sample::select(vec![
                0x1F, 0x3F, 0x5F, 0x7F, 0x9F, 0xBF, 0xDF, 0xFF, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x88,
                0x89, 0x00, 0x01, 0x7F
            ]),
            proptest::prelude::any::<u8>(),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(20_000))]
        #[test]
        fn asn1_rs_headers_read_as_the_hand_written_reader_did(
            input in proptest::collection::vec(header_byte(), 0..14)
        ) {
            let ours = read_header(&input, 0).map(|h| (h.tag, h.header_len, h.length));
            proptest::prop_assert_eq!(ours, oracle(&input));
            if let Ok(h) = read_header(&input, 0) {
                let first = input[0];
                proptest::prop_assert_eq!(h.constructed, first & 0x20 != 0);
                proptest::prop_assert_eq!(h.class as u8, first >> 6);
            }
        }
    }

    #[test]
    fn text_rendering_and_iteration() {
        let doc = decode(&[0xEE, 0x05, 0x84, 0x03, b'A', b'B', b'C', 0x00]).unwrap();
        assert_eq!(doc.to_text(), "EE (5)\n  84 (3) \"ABC\"\npadding (1 bytes)\n");
        let tags: Vec<_> = doc.iter().map(|n| n.tag.as_str()).collect();
        assert_eq!(tags, ["EE", "84"]);
    }
}
