//! EF.TokenInfo (app/5032): token label and manufacturer (docs/card-spec.md §1.4 point 5, §9).

use crate::ber;
use crate::error::CardError;

/// What the card layer uses of TokenInfo.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TokenInfo {
    /// version.
    pub version: u32,
    /// serialNumber (ignored by the official module, docs/card-spec.md §1.3).
    pub serial: Vec<u8>,
    /// manufacturerID, e.g. "ASIP SANTE".
    pub manufacturer: Option<String>,
    /// label `[0]`, e.g. "CPS3v3-2900995266".
    pub label: Option<String>,
    /// tokenflags bits (readOnly 0, loginRequired 1, …).
    pub flags: u32,
}

/// Parse TokenInfo.
pub fn parse(data: &[u8]) -> Result<TokenInfo, CardError> {
    let bad = |r: String| CardError::malformed("TokenInfo", r);
    let top = ber::elements(data).map_err(bad)?;
    let seq = top.first().ok_or_else(|| bad("empty".into()))?;
    let items = ber::expect(seq, ber::SEQUENCE, "TokenInfo").map_err(bad)?;
    let mut ti = TokenInfo::default();
    let mut it = items.iter();
    match it.next() {
        Some(v) if v.tag == ber::INTEGER => ti.version = ber::uint(v, "version").map_err(bad)?,
        _ => return Err(bad("version missing".into())),
    }
    match it.next() {
        Some(s) if s.tag == ber::OCTET_STRING => ti.serial = s.value.to_vec(),
        _ => return Err(bad("serialNumber missing".into())),
    }
    for c in it {
        match c.tag {
            ber::UTF8_STRING if ti.manufacturer.is_none() => ti.manufacturer = Some(ber::text(c)),
            0x80 => ti.label = Some(ber::text(c)),
            ber::BIT_STRING => ti.flags = ber::bits(c),
            _ => {}
        }
    }
    Ok(ti)
}
