//! PKCS#15 (ISO 7816-15) structures of the CPx cards, parsed with a real BER reader (docs/card-spec.md §1.4,
//! §1.5, §2.4, §9). Every parser returns [`CardError::MalformedCardData`] naming the object, and
//! accepts the CPS3's non-DER BIT STRINGs.

pub mod aodf;
pub mod cdf;
pub mod dir;
pub mod dodf;
pub mod odf;
pub mod prkdf;
pub mod tokeninfo;

use cpx_apdu::tlv::Tlv;

use crate::ber::{self, Ber};
use crate::error::CardError;

/// CommonObjectFlags bit 0.
const FLAG_PRIVATE: u32 = 1 << 0;
/// CommonObjectFlags bit 1.
const FLAG_MODIFIABLE: u32 = 1 << 1;

/// CommonObjectAttributes: label, flags, authId.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CommonObject {
    /// The object's label.
    pub label: String,
    /// `private` flag: reading needs the PIN.
    pub private: bool,
    /// `modifiable` flag.
    pub modifiable: bool,
    /// The authentication object protecting it.
    pub auth_id: Option<Vec<u8>>,
}

impl CommonObject {
    fn parse(t: &Tlv<'_>) -> Ber<CommonObject> {
        let mut out = CommonObject::default();
        for c in ber::expect(t, ber::SEQUENCE, "CommonObjectAttributes")? {
            match c.tag {
                ber::UTF8_STRING => out.label = ber::text(&c),
                ber::BIT_STRING => {
                    let f = ber::bits(&c);
                    out.private = f & FLAG_PRIVATE != 0;
                    out.modifiable = f & FLAG_MODIFIABLE != 0;
                }
                ber::OCTET_STRING => out.auth_id = Some(c.value.to_vec()),
                _ => {}
            }
        }
        Ok(out)
    }
}

/// Parse a directory file (xDF): a sequence of entries, `parse` for each one.
pub(crate) fn entries<T>(
    object: &str,
    data: &[u8],
    parse: impl Fn(&Tlv<'_>) -> Ber<Option<T>>,
) -> Result<Vec<T>, CardError> {
    let items = ber::elements(data).map_err(|r| CardError::malformed(object, r))?;
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match parse(item) {
            Ok(Some(v)) => out.push(v),
            Ok(None) => {}
            Err(reason) => return Err(CardError::malformed(format!("{object} entry {i}"), reason)),
        }
    }
    Ok(out)
}

/// The first child with `tag`, or an error naming `what`.
pub(crate) fn required<'a>(items: &'a [Tlv<'a>], tag: u32, what: &str) -> Ber<&'a Tlv<'a>> {
    items
        .iter()
        .find(|c| c.tag == tag)
        .ok_or_else(|| format!("{what} missing"))
}

/// The Path inside a `[1] { SEQUENCE { Path … } }` or `[1] { Path }` typeAttributes.
pub(crate) fn type_path(items: &[Tlv<'_>], what: &str) -> Ber<ber::Path> {
    let attrs = required(items, 0xA1, what)?;
    let inner = ber::children(attrs)?;
    let first = inner.first().ok_or_else(|| format!("{what}: empty"))?;
    // Either the Path itself (DODF, CDF "indirect") or a SEQUENCE whose first element is it.
    let fields = ber::children(first)?;
    match fields.first() {
        Some(f) if f.tag == ber::SEQUENCE => ber::Path::parse(f),
        _ => ber::Path::parse(first),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests;
