//! EF.AODF: PIN objects (docs/card-spec.md §3.1). The real CPS3 PIN: initialized + needs-padding (+ bit 11),
//! min 4, stored 8, max 4, reference 01, padChar FF; its flags are the non-DER `03 01 08`.

use cpx_apdu::tlv::Tlv;

use super::{CommonObject, entries, required};
use crate::ber::{self, Ber};
use crate::error::CardError;
use crate::pin::{PinPolicy, PinType};

/// pinFlags bits (ISO 7816-15).
const NEEDS_PADDING: u32 = 1 << 5;
const UNBLOCKING_PIN: u32 = 1 << 6;
const SO_PIN: u32 = 1 << 7;

/// One PIN object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthObject {
    /// Common attributes (label …).
    pub common: CommonObject,
    /// authId.
    pub auth_id: Vec<u8>,
    /// pinFlags.
    pub flags: u32,
    /// Check and format policy.
    pub policy: PinPolicy,
    /// Path to select before VERIFY, if any (docs/card-spec.md §3.1).
    pub path: Option<ber::Path>,
}

impl AuthObject {
    /// The unblocking code (PUK): flagged unblockingPin (or soPin).
    pub fn is_unblocking(&self) -> bool {
        self.flags & (UNBLOCKING_PIN | SO_PIN) != 0
    }
}

fn parse_entry(t: &Tlv<'_>) -> Ber<Option<AuthObject>> {
    let items = ber::expect(t, ber::SEQUENCE, "PIN object")?;
    let common = CommonObject::parse(items.first().ok_or("CommonObjectAttributes missing")?)?;
    let class = ber::children(
        items
            .get(1)
            .ok_or("CommonAuthenticationObjectAttributes missing")?,
    )?;
    let auth_id = required(&class, ber::OCTET_STRING, "authId")?.value.to_vec();
    // Only PIN objects ([1] pinAttributes) matter; biometric and others are skipped.
    let Some(type_attrs) = items.iter().find(|c| c.tag == 0xA1) else {
        return Ok(None);
    };
    let attrs_outer = ber::children(type_attrs)?;
    let attrs = ber::expect(
        attrs_outer.first().ok_or("PinAttributes empty")?,
        ber::SEQUENCE,
        "PinAttributes",
    )?;
    let flags = ber::bits(required(&attrs, ber::BIT_STRING, "pinFlags")?);
    let pin_type = match attrs.iter().find(|c| c.tag == 0x0A) {
        Some(e) => PinType::from_enum(ber::uint(e, "pinType")?).ok_or("unknown pinType")?,
        None => return Err("pinType missing".into()),
    };
    let ints: Vec<u32> = attrs
        .iter()
        .filter(|c| c.tag == ber::INTEGER)
        .map(|c| ber::uint(c, "PIN length"))
        .collect::<Ber<_>>()?;
    let (min, stored, max) = match ints[..] {
        [min, stored] => (min, stored, stored),
        [min, stored, max, ..] => (min, stored, max),
        _ => return Err("minLength / storedLength missing".into()),
    };
    let reference = match attrs.iter().find(|c| c.tag == 0x80) {
        Some(r) => u8::try_from(ber::uint(r, "pinReference")? & 0xFF).unwrap_or(0),
        None => 0,
    };
    let pad_char = attrs
        .iter()
        .find(|c| c.tag == ber::OCTET_STRING)
        .and_then(|c| c.value.first().copied())
        .unwrap_or(0x00);
    let path = match attrs.iter().find(|c| c.tag == ber::SEQUENCE) {
        Some(p) => Some(ber::Path::parse(p)?),
        None => None,
    };
    let to_len = |v: u32| usize::try_from(v).unwrap_or(usize::MAX);
    if min > max || max > 64 || stored > 64 {
        return Err(format!(
            "inconsistent lengths min {min} stored {stored} max {max}"
        ));
    }
    Ok(Some(AuthObject {
        common,
        auth_id,
        flags,
        policy: PinPolicy {
            min_len: to_len(min),
            max_len: to_len(max),
            stored_len: to_len(stored),
            needs_padding: flags & NEEDS_PADDING != 0,
            pad_char,
            pin_type,
            reference,
        },
        path,
    }))
}

/// Parse the AODF.
pub fn parse(data: &[u8]) -> Result<Vec<AuthObject>, CardError> {
    entries("AODF", data, parse_entry)
}
