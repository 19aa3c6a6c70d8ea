//! EF.DIR (3F00/2F00): application templates `61 { 4F aid, 50 label, 51 path }` (docs/card-spec.md §1.4).

use cpx_apdu::tlv;

use crate::error::CardError;

/// The path (from the MF, `3F00` included) of the application `aid`, if EF.DIR lists it with a
/// path (tag 51); the CPS4 needs it there (docs/card-spec.md §10.3).
pub fn app_path(data: &[u8], aid: &[u8]) -> Result<Option<Vec<u8>>, CardError> {
    let bad = |e: cpx_apdu::TlvError| CardError::malformed("EF.DIR", e.to_string());
    for rec in tlv::parse_all(data).map_err(bad)? {
        if rec.tag != 0x61 {
            continue;
        }
        let found = rec.find(0x4F).map_err(bad)?;
        if found.map(|t| t.value) != Some(aid) {
            continue;
        }
        return Ok(rec.find(0x51).map_err(bad)?.map(|p| {
            let mut path = p.value.to_vec();
            if !path.starts_with(&[0x3F, 0x00]) {
                path.splice(0..0, [0x3F, 0x00]);
            }
            path
        }));
    }
    Ok(None)
}
