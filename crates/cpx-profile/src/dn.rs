//! Distinguished names: every RDN and every attribute, in DER order, raw and decoded.
//!
//! IGC-Santé person certificates end with ONE multi-valued RDN `{GN + CN + SN}` whose order
//! follows DER SET sorting (docs/data-and-certs.md §2.1, §2.3), so nothing here assumes one attribute per
//! RDN.

use serde::Serialize;
use x509_parser::asn1_rs::{Oid, Tag};

use crate::error::{NameField, ProfileError};
use crate::{der, oids};

/// One attribute of a DN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attribute {
    /// Attribute type OID, dotted.
    pub oid: String,
    /// Short name (`C`, `CN`, `SN`, `GN`, `title`, `pseudonym`, …), `None` for unknown types.
    pub name: Option<String>,
    /// ASN.1 type of the value: `UTF8String`, `PrintableString`, …, `[Universal n]` for other
    /// universal types, `[tag XX]` for other classes.
    pub string_type: String,
    /// The decoded text; `None` when the value is not a string type.
    pub value: Option<String>,
    /// The value's content octets, lower-case hex.
    pub raw: String,
}

/// A relative distinguished name: one or more attributes (a SET, kept in DER order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Rdn {
    /// The attributes.
    pub attributes: Vec<Attribute>,
}

/// A distinguished name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dn {
    /// One-line display form in DER order: `C=FR, title=Médecin, GN=ALICE + CN=… + SN=…`
    /// (RFC 4514 escaping inside values). For people, not for parsing.
    pub text: String,
    /// Every RDN in DER order.
    pub rdns: Vec<Rdn>,
    /// The DER encoding, for exact comparison.
    #[serde(skip)]
    pub(crate) der: Vec<u8>,
}

impl Dn {
    /// Decode a DER `Name` (the whole TLV). Parsed here rather than through x509-parser, which
    /// stops silently at a malformed attribute inside an RDN and drops the rest of it.
    pub(crate) fn from_der(name: &[u8], field: NameField) -> Result<Dn, ProfileError> {
        let bad = |detail: String| ProfileError::BadName { name: field, detail };
        let mut rest = der::only(name, 0x30).ok_or_else(|| bad("not a DER SEQUENCE".into()))?;
        let mut rdns = Vec::new();
        while !rest.is_empty() {
            let i = rdns.len();
            let (tag, set, tail) = der::element(rest).ok_or_else(|| bad(format!("RDN #{i} truncated")))?;
            if tag != 0x31 {
                return Err(bad(format!("RDN #{i} has tag {tag:02X}, expected 31 (SET)")));
            }
            rest = tail;
            let mut attributes = Vec::new();
            let mut items = set;
            while !items.is_empty() {
                let (tag, atv, tail) =
                    der::element(items).ok_or_else(|| bad(format!("RDN #{i}: attribute truncated")))?;
                items = tail;
                let parts = (tag == 0x30).then(|| der::element(atv)).flatten();
                let Some((0x06, oid, value_tlv)) = parts else {
                    return Err(bad(format!(
                        "RDN #{i}: attribute is not SEQUENCE {{ OID, value }}"
                    )));
                };
                let Some((value_tag, value, [])) = der::element(value_tlv) else {
                    return Err(bad(format!("RDN #{i}: attribute value malformed")));
                };
                attributes.push(attribute(oid, value_tag, value, field, i)?);
            }
            if attributes.is_empty() {
                return Err(bad(format!("RDN #{i} is empty")));
            }
            rdns.push(Rdn { attributes });
        }
        let text = rdns
            .iter()
            .map(|r| {
                r.attributes
                    .iter()
                    .map(Attribute::display)
                    .collect::<Vec<_>>()
                    .join(" + ")
            })
            .collect::<Vec<_>>()
            .join(", ");
        Ok(Dn {
            text,
            rdns,
            der: name.to_vec(),
        })
    }

    /// Every attribute, flattened, in DER order.
    pub fn attributes(&self) -> impl Iterator<Item = &Attribute> {
        self.rdns.iter().flat_map(|r| r.attributes.iter())
    }

    /// The decoded value of the first attribute with this type OID.
    pub fn first(&self, oid: &str) -> Option<&str> {
        self.attributes()
            .find(|a| a.oid == oid)
            .and_then(|a| a.value.as_deref())
    }

    /// The decoded values of every attribute with this type OID, in DER order.
    pub fn all(&self, oid: &str) -> Vec<&str> {
        self.attributes()
            .filter(|a| a.oid == oid)
            .filter_map(|a| a.value.as_deref())
            .collect()
    }

    /// The common name, if any.
    pub fn common_name(&self) -> Option<&str> {
        self.first(oids::CN)
    }

    /// Name equality for chain building: identical DER, or the same RDNs with values compared
    /// after trimming, collapsing inner spaces and ignoring case (RFC 5280 §7.1, simplified).
    pub fn same_name(&self, other: &Dn) -> bool {
        if self.der == other.der {
            return true;
        }
        self.rdns.len() == other.rdns.len()
            && self.rdns.iter().zip(&other.rdns).all(|(a, b)| {
                a.attributes.len() == b.attributes.len()
                    && a.attributes
                        .iter()
                        .all(|x| b.attributes.iter().any(|y| x.same_value(y)))
            })
    }
}

impl Attribute {
    fn label(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.oid)
    }

    fn display(&self) -> String {
        match &self.value {
            Some(v) => format!("{}={}", self.label(), escape(v)),
            None => format!("{}=#{}", self.label(), self.raw),
        }
    }

    fn same_value(&self, other: &Attribute) -> bool {
        if self.oid != other.oid {
            return false;
        }
        match (&self.value, &other.value) {
            (Some(a), Some(b)) => normalise(a) == normalise(b),
            _ => self.raw == other.raw,
        }
    }
}

fn normalise(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

/// RFC 4514 §2.4 escaping.
fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let last = v.chars().count().saturating_sub(1);
    for (i, c) in v.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn attribute(
    oid: &[u8],
    tag: u8,
    data: &[u8],
    field: NameField,
    rdn: usize,
) -> Result<Attribute, ProfileError> {
    let oid = Oid::new(oid.into()).to_id_string();
    let name = oids::attribute(&oid).map(str::to_owned);
    // Universal class, primitive, low tag number: a string type (or another universal type).
    let (string_type, decoded) = if tag & 0xE0 == 0 && tag & 0x1F != 0x1F {
        decode_string(Tag(u32::from(tag)), data)
    } else {
        (format!("[tag {tag:02X}]"), Ok(None))
    };
    let value = decoded.map_err(|detail| ProfileError::BadString {
        name: field,
        rdn,
        attribute: name.clone().unwrap_or_else(|| oid.clone()),
        string_type: string_type.clone(),
        detail,
    })?;
    Ok(Attribute {
        oid,
        name,
        string_type,
        value,
        raw: hex::encode(data),
    })
}

/// Decode an ASN.1 string by type. `Ok(None)` for non-string types; `Err` for bytes that are
/// invalid for the declared type (a UTF8String that is not UTF-8, a PrintableString with
/// non-ASCII bytes, an odd-length BMPString…). Control characters in a decoded value become
/// U+FFFD ([`crate::text`]): every DN value and otherName goes through here.
pub(crate) fn decode_string(tag: Tag, data: &[u8]) -> (String, Result<Option<String>, String>) {
    let (string_type, value) = decode_string_as_is(tag, data);
    (string_type, value.map(|v| v.map(crate::text::safe)))
}

// By hand, not with asn1-rs's string types, which would change what is accepted: its
// TeletexString refuses the Latin-1 issuers write there, its PrintableString enforces a charset
// real certificates break ('*', '@'), and its BMPString reads an odd final byte as a code unit
// where this crate reports "odd length".
fn decode_string_as_is(tag: Tag, data: &[u8]) -> (String, Result<Option<String>, String>) {
    let ascii = |name: &str| {
        let r = if data.is_ascii() {
            Ok(Some(data.iter().map(|b| char::from(*b)).collect()))
        } else {
            Err("non-ASCII byte".to_owned())
        };
        (name.to_owned(), r)
    };
    match tag {
        Tag::Utf8String => (
            "UTF8String".to_owned(),
            std::str::from_utf8(data)
                .map(|s| Some(s.to_owned()))
                .map_err(|e| format!("not UTF-8: {e}")),
        ),
        // Charset not enforced beyond ASCII: some issuers use '*' or '@' (x509-parser does the same).
        Tag::PrintableString => ascii("PrintableString"),
        Tag::Ia5String => ascii("IA5String"),
        Tag::NumericString => ascii("NumericString"),
        Tag::VisibleString => ascii("VisibleString"),
        // T.61 in practice carries Latin-1.
        Tag::TeletexString => (
            "TeletexString".to_owned(),
            Ok(Some(data.iter().map(|b| char::from(*b)).collect())),
        ),
        Tag::BmpString => ("BMPString".to_owned(), utf16(data)),
        Tag::UniversalString => ("UniversalString".to_owned(), utf32(data)),
        t => (format!("[Universal {}]", t.0), Ok(None)),
    }
}

fn utf16(data: &[u8]) -> Result<Option<String>, String> {
    if !data.len().is_multiple_of(2) {
        return Err(format!("odd length {}", data.len()));
    }
    let units: Vec<u16> = data
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16(&units)
        .map(Some)
        .map_err(|_| "invalid UTF-16".to_owned())
}

fn utf32(data: &[u8]) -> Result<Option<String>, String> {
    if !data.len().is_multiple_of(4) {
        return Err(format!("length {} not a multiple of 4", data.len()));
    }
    data.chunks_exact(4)
        .map(|c| {
            char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]])).ok_or("invalid UTF-32".to_owned())
        })
        .collect::<Result<String, _>>()
        .map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_in_any_string_type_become_the_replacement_character() {
        let shown = Ok(Some("Dr\u{FFFD}[2J\u{FFFD}\u{FFFD}1m".to_owned()));
        assert_eq!(
            decode_string(Tag::Utf8String, b"Dr\x1b[2J\x00\xC2\x9B1m").1,
            shown
        );
        assert_eq!(decode_string(Tag::TeletexString, b"Dr\x1b[2J\x00\x9B1m").1, shown);
        assert_eq!(decode_string(Tag::Ia5String, b"Dr\x1b[2J\x00\x7F1m").1, shown);
    }

    #[test]
    fn strings_by_type() {
        assert_eq!(
            decode_string(Tag::Utf8String, "Médecin".as_bytes()).1,
            Ok(Some("Médecin".into()))
        );
        assert!(decode_string(Tag::Utf8String, &[0x4D, 0xE9]).1.is_err());
        assert!(decode_string(Tag::PrintableString, &[0xE9]).1.is_err());
        assert_eq!(
            decode_string(Tag::TeletexString, &[0x4D, 0xE9]).1,
            Ok(Some("Mé".into()))
        );
        assert_eq!(
            decode_string(Tag::BmpString, &[0x00, 0xE9]).1,
            Ok(Some("é".into()))
        );
        assert!(decode_string(Tag::BmpString, &[0x00]).1.is_err());
        assert!(decode_string(Tag::BmpString, &[0xD8, 0x00]).1.is_err());
        assert_eq!(
            decode_string(Tag::UniversalString, &[0, 0, 0, 0x41]).1,
            Ok(Some("A".into()))
        );
        assert!(decode_string(Tag::UniversalString, &[0, 0x11, 0, 0]).1.is_err());
        assert_eq!(decode_string(Tag::OctetString, &[1]).1, Ok(None));
    }

    fn name(rdns: &[&[u8]]) -> Vec<u8> {
        let inner: Vec<u8> = rdns.concat();
        let mut out = vec![0x30, u8::try_from(inner.len()).unwrap()];
        out.extend(inner);
        out
    }

    #[test]
    fn multi_valued_rdn_in_der_order() {
        // SET { SEQ { GN "A" }, SEQ { CN "8" } }
        let set = [
            0x31, 0x14, 0x30, 0x08, 0x06, 0x03, 0x55, 0x04, 0x2A, 0x0C, 0x01, b'A', 0x30, 0x08, 0x06, 0x03,
            0x55, 0x04, 0x03, 0x13, 0x01, b'8',
        ];
        let dn = Dn::from_der(&name(&[&set]), NameField::Subject).unwrap();
        assert_eq!(dn.text, "GN=A + CN=8");
        assert_eq!(dn.rdns[0].attributes[1].string_type, "PrintableString");
        assert_eq!(dn.common_name(), Some("8"));
        assert!(dn.same_name(&dn.clone()));
    }

    #[test]
    fn malformed_names() {
        let bad = |der: &[u8]| match Dn::from_der(der, NameField::Issuer) {
            Err(ProfileError::BadName {
                name: NameField::Issuer,
                detail,
            }) => detail,
            other => panic!("{other:?}"),
        };
        assert_eq!(bad(&[0x31, 0x00]), "not a DER SEQUENCE");
        assert_eq!(
            bad(&name(&[&[0x30, 0x00]])),
            "RDN #0 has tag 30, expected 31 (SET)"
        );
        assert_eq!(bad(&name(&[&[0x31, 0x00]])), "RDN #0 is empty");
        assert_eq!(
            bad(&name(&[&[0x31, 0x02, 0x30, 0x05]])),
            "RDN #0: attribute truncated"
        );
        assert_eq!(
            bad(&name(&[&[0x31, 0x04, 0x30, 0x02, 0x05, 0x00]])),
            "RDN #0: attribute is not SEQUENCE { OID, value }"
        );
        assert_eq!(
            bad(&name(&[&[
                0x31, 0x09, 0x30, 0x07, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0C, 0x05
            ]])),
            "RDN #0: attribute value malformed"
        );
        // An empty name is valid (an empty SEQUENCE).
        assert!(
            Dn::from_der(&[0x30, 0x00], NameField::Subject)
                .unwrap()
                .rdns
                .is_empty()
        );
    }

    #[test]
    fn escaping() {
        assert_eq!(escape("Paris (75)"), "Paris (75)");
        assert_eq!(escape("A,B+C"), "A\\,B\\+C");
        assert_eq!(escape("#x "), "\\#x\\ ");
        assert_eq!(normalise("  Ab   c "), "ab c");
    }
}
