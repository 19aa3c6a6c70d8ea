//! EF.ODF (app/5031): where the other directory files are (docs/card-spec.md §1.4 point 5).

use crate::ber::{self, Path};
use crate::error::CardError;

/// The directory files an ODF lists.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Odf {
    /// `[0]` private keys.
    pub prkdf: Option<Path>,
    /// `[4]` certificates.
    pub cdf: Option<Path>,
    /// `[7]` data objects.
    pub dodf: Option<Path>,
    /// `[8]` authentication objects.
    pub aodf: Option<Path>,
}

/// Parse the ODF: a list of `[n] Path` choices; unknown choices are ignored.
pub fn parse(data: &[u8]) -> Result<Odf, CardError> {
    let bad = |r: String| CardError::malformed("ODF", r);
    let mut odf = Odf::default();
    for item in ber::elements(data).map_err(bad)? {
        let children = ber::children(&item).map_err(bad)?;
        let Some(path) = children.first() else {
            return Err(bad(format!("entry {:X} is empty", item.tag)));
        };
        let path = Path::parse(path).map_err(bad)?;
        let slot = match item.tag {
            0xA0 => &mut odf.prkdf,
            0xA4 => &mut odf.cdf,
            0xA7 => &mut odf.dodf,
            0xA8 => &mut odf.aodf,
            _ => continue,
        };
        slot.get_or_insert(path);
    }
    Ok(odf)
}
