//! PKCS#15 conveniences over [`cpx_apdu::tlv`], the one BER reader of the driver side (which also
//! decodes INTEGERs and the CPS3's non-DER BIT STRINGs, `03 01 08`, `03 02 08 00`, GH#2224):
//! universal tags, children with an expected tag, the Path type. Errors are plain strings; the
//! caller names the object.

use cpx_apdu::tlv::{self, Tlv};

/// Result of this module: the reason text on failure.
pub(crate) type Ber<T> = Result<T, String>;

/// Universal tags.
pub(crate) const BOOLEAN: u32 = 0x01;
pub(crate) const INTEGER: u32 = 0x02;
pub(crate) const BIT_STRING: u32 = 0x03;
pub(crate) const OCTET_STRING: u32 = 0x04;
pub(crate) const UTF8_STRING: u32 = 0x0C;
pub(crate) const SEQUENCE: u32 = 0x30;

/// All top-level elements of `data` (padding `00`/`FF` between them skipped).
pub(crate) fn elements(data: &[u8]) -> Ber<Vec<Tlv<'_>>> {
    tlv::parse_all(data).map_err(|e| e.to_string())
}

/// The children of a constructed element.
pub(crate) fn children<'a>(t: &Tlv<'a>) -> Ber<Vec<Tlv<'a>>> {
    if !t.is_constructed() {
        return Err(format!("tag {:X} is not constructed", t.tag));
    }
    t.children()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())
}

/// The children of `t`, which must have tag `tag`.
pub(crate) fn expect<'a>(t: &Tlv<'a>, tag: u32, what: &str) -> Ber<Vec<Tlv<'a>>> {
    if t.tag != tag {
        return Err(format!("{what}: tag {:X} where {tag:X} was expected", t.tag));
    }
    children(t)
}

/// A non-negative INTEGER that fits a `u32` ([`Tlv::uint`]), the error naming `what`.
pub(crate) fn uint(t: &Tlv<'_>, what: &str) -> Ber<u32> {
    t.uint().map_err(|e| format!("{what}: {e}"))
}

/// A BIT STRING as PKCS#15 flags, tolerant of the CPS3's non-DER forms ([`Tlv::bit_flags`]).
pub(crate) fn bits(t: &Tlv<'_>) -> u32 {
    t.bit_flags()
}

/// UTF-8 text of a string element, safe to show: invalid UTF-8 and control characters replaced
/// by U+FFFD ([`crate::text`]), never an error: labels are display data. Every PKCS#15 label,
/// the TokenInfo label and manufacturerID go through here, so no consumer sees a raw control.
pub(crate) fn text(t: &Tlv<'_>) -> String {
    crate::text::display_safe_bytes(t.value).into_owned()
}

/// A PKCS#15 / ISO 7816-15 Path: `SEQUENCE { efidOrPath OCTET STRING, index INTEGER OPTIONAL,
/// length [0] INTEGER OPTIONAL, aid [APPLICATION 15] OPTIONAL }`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Path {
    /// File identifiers, from the MF when the path starts with `3F00`.
    pub path: Vec<u8>,
    /// The application the path is relative to (`4F`), if any.
    pub aid: Option<Vec<u8>>,
}

impl Path {
    /// Parse a Path SEQUENCE.
    pub(crate) fn parse(t: &Tlv<'_>) -> Ber<Path> {
        let mut out = Path::default();
        for c in expect(t, SEQUENCE, "Path")? {
            match c.tag {
                OCTET_STRING => out.path = c.value.to_vec(),
                0x4F => out.aid = Some(c.value.to_vec()),
                _ => {}
            }
        }
        if out.path.len() % 2 != 0 {
            return Err("Path: odd number of bytes".into());
        }
        Ok(out)
    }

    /// The path as FIDs.
    pub fn fids(&self) -> Vec<u16> {
        self.path
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect()
    }

    /// The absolute path from the MF (`3F00` first): relative paths are put under `app`.
    pub(crate) fn absolute(&self, app: &[u8]) -> Vec<u8> {
        if self.path.starts_with(&[0x3F, 0x00]) {
            self.path.clone()
        } else {
            let mut p = app.to_vec();
            p.extend_from_slice(&self.path);
            p
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(data: &[u8]) -> Tlv<'_> {
        elements(data).unwrap().remove(0)
    }

    #[test]
    fn bit_strings_der_and_cps3_quirks() {
        assert_eq!(bits(&one(&[0x03, 0x02, 0x07, 0x80])), 1);
        assert_eq!(bits(&one(&[0x03, 0x02, 0x06, 0xC0])), 0b11);
        // pinFlags initialized(4) + needs-padding(5) + bit 11: 03 03 04 0C 10
        assert_eq!(
            bits(&one(&[0x03, 0x03, 0x04, 0x0C, 0x10])),
            (1 << 4) | (1 << 5) | (1 << 11)
        );
        // The real CPS3's non-DER forms (GH#2224).
        assert_eq!(bits(&one(&[0x03, 0x01, 0x08])), 0);
        assert_eq!(bits(&one(&[0x03, 0x02, 0x08, 0x00])), 0);
        assert_eq!(bits(&one(&[0x03, 0x01, 0x07])), 0);
        assert_eq!(bits(&one(&[0x03, 0x00])), 0);
    }

    #[test]
    fn integers() {
        assert_eq!(uint(&one(&[0x02, 0x01, 0x08]), "x"), Ok(8));
        assert_eq!(uint(&one(&[0x02, 0x02, 0x00, 0x81]), "x"), Ok(0x81));
        assert_eq!(uint(&one(&[0x02, 0x02, 0x08, 0x00]), "x"), Ok(2048));
        assert!(uint(&one(&[0x02, 0x01, 0x80]), "x").is_err());
        assert!(uint(&one(&[0x02, 0x00]), "x").is_err());
        assert!(uint(&one(&[0x02, 0x05, 1, 2, 3, 4, 5]), "x").is_err());
    }
}
