//! EF.DODF: business data objects (docs/card-spec.md §2.4, §5.3).

use cpx_apdu::tlv::Tlv;

use super::{CommonObject, entries, type_path};
use crate::ber::{self, Ber, Path};
use crate::error::CardError;

/// One opaque data object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataObjectInfo {
    /// Common attributes: label (e.g. "CPS_NAME_PS"), private (needs the PIN), modifiable.
    pub common: CommonObject,
    /// applicationName, e.g. "CPS".
    pub application: Option<String>,
    /// Where the value is.
    pub path: Path,
}

fn parse_entry(t: &Tlv<'_>) -> Ber<Option<DataObjectInfo>> {
    // Only opaqueDO (untagged SEQUENCE) is used on CPx cards.
    if t.tag != ber::SEQUENCE {
        return Ok(None);
    }
    let items = ber::children(t)?;
    let common = CommonObject::parse(items.first().ok_or("CommonObjectAttributes missing")?)?;
    let class = ber::children(items.get(1).ok_or("CommonDataObjectAttributes missing")?)?;
    let application = class.iter().find(|c| c.tag == ber::UTF8_STRING).map(ber::text);
    let path = type_path(&items, "data object value")?;
    Ok(Some(DataObjectInfo {
        common,
        application,
        path,
    }))
}

/// Parse the DODF.
pub fn parse(data: &[u8]) -> Result<Vec<DataObjectInfo>, CardError> {
    entries("DODF", data, parse_entry)
}
