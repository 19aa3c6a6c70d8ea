//! Business data objects (docs/card-spec.md §2.4, §5.3), the CPS2ter volet of the CPS3 (docs/card-spec.md
//! §2.2), EF_ACTUA (docs/card-spec.md §5.7).

use cpx_apdu::tlv;

use crate::atr::Interface;
use crate::commands::{self as cmd, CLA_CPS2TER};
use crate::error::CardError;
use crate::generation::Generation;
use crate::io::{Io, MAX_READ_OFFSET, addressable, reserve};
use crate::state::State;

/// Where a data object's value is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DataLocation {
    /// A transparent EF of the IAS/ChipDoc file system (absolute path, 3F00 first).
    File(Vec<u8>),
    /// A file of the CPS3's CPS2ter volet, read with CLA A0 (absolute path).
    Cps2ter(Vec<u8>),
}

impl DataLocation {
    /// The absolute path, whichever file system holds it.
    pub(crate) fn path(&self) -> &[u8] {
        match self {
            DataLocation::File(p) | DataLocation::Cps2ter(p) => p,
        }
    }
}

/// A business data object (CKO_DATA) as the card lists it: the listing entry, what the DODF
/// says of it (docs/card-spec.md §2.4, §5.3). It names the object; the card layer finds where
/// its value is from the label ([`crate::Card::read_data_object`]), so an entry kept elsewhere
/// (the PKCS#11 module's disk cache) is the same value as the one the card lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataObject {
    /// Label, e.g. "CPS_NAME_PS".
    pub label: String,
    /// Application, e.g. "CPS".
    pub application: Option<String>,
    /// Reading needs the PIN.
    pub private: bool,
    /// The PKCS#15 modifiable flag (CKA_MODIFIABLE).
    pub modifiable: bool,
}

/// A listed data object and where its value is.
#[derive(Debug, Clone)]
pub(crate) struct Located {
    /// The listing entry.
    pub(crate) object: DataObject,
    /// Where the value is.
    pub(crate) location: DataLocation,
}

/// `CPS_ACTIVITY_nn_PS` → nn in 1..=16.
fn activity_index(label: &str) -> Option<u8> {
    let n = label.strip_prefix("CPS_ACTIVITY_")?.strip_suffix("_PS")?;
    n.parse().ok().filter(|n| (1..=16).contains(n))
}

/// The DODF's objects, plus on a CPS3 contact card the CPS2ter objects the official module adds:
/// CPS_SIT_FACT at 3F00/7F01/4000 and CPS2TER_ACTIVITY_nn_PS at 3F00/40(0F+nn) for each
/// CPS_ACTIVITY_nn_PS, all private, application "CPS" (docs/card-spec.md §2.4, §8.8). Nothing is added on
/// CPS4 (docs/card-spec.md §10.14).
pub(crate) fn list(io: &mut Io<'_>, st: &mut State) -> Result<Vec<Located>, CardError> {
    let mut out: Vec<Located> = st
        .dodf(io)?
        .into_iter()
        .map(|d| Located {
            location: DataLocation::File(d.path.absolute(&st.app_path)),
            object: DataObject {
                label: d.common.label,
                application: d.application,
                private: d.common.private,
                modifiable: d.common.modifiable,
            },
        })
        .collect();
    if st.generation.capabilities().cps2ter_objects && st.interface == Interface::Contact {
        let synth = |label: String, path: Vec<u8>| Located {
            object: DataObject {
                label,
                application: Some("CPS".into()),
                private: true,
                modifiable: false,
            },
            location: DataLocation::Cps2ter(path),
        };
        let mut extra = vec![synth(
            "CPS_SIT_FACT".into(),
            vec![0x3F, 0x00, 0x7F, 0x01, 0x40, 0x00],
        )];
        for n in out.iter().filter_map(|o| activity_index(&o.object.label)) {
            let fid = 0x400F + u16::from(n);
            let [a, b] = fid.to_be_bytes();
            extra.push(synth(
                format!("CPS2TER_ACTIVITY_{n:02}_PS"),
                vec![0x3F, 0x00, a, b],
            ));
        }
        out.extend(extra);
    }
    Ok(out)
}

/// The raw value of a data object.
pub(crate) fn read(io: &mut Io<'_>, located: &Located) -> Result<Vec<u8>, CardError> {
    let object = &located.object;
    match &located.location {
        DataLocation::File(path) => io
            .read_file(path, &object.label)?
            .ok_or_else(|| CardError::ObjectNotFound(object.label.clone())),
        DataLocation::Cps2ter(path) => read_cps2ter(io, path, &object.label),
    }
}

/// The size of a data object's value from its FCP/FCI, without reading it (docs/card-spec.md §5.3 "a size
/// query takes the FCI size"; §2.2 CPS2ter FCI `85`).
pub(crate) fn size(io: &mut Io<'_>, located: &Located) -> Result<usize, CardError> {
    let object = &located.object;
    match &located.location {
        DataLocation::File(path) => io
            .select_size(path, &object.label)?
            .ok_or_else(|| CardError::ObjectNotFound(object.label.clone())),
        DataLocation::Cps2ter(path) => select_cps2ter(io, path, &object.label),
    }
}

/// Largest UPDATE BINARY data field (docs/card-spec.md §2.3).
const UPDATE_CHUNK: usize = 255;

/// Write a data object (docs/card-spec.md §5.4): SELECT with FCP/FCI for the file size, then UPDATE BINARY of
/// `value` zero-padded to that size, in parts of at most 255 bytes (docs/card-spec.md §2.3). A value larger
/// than the file is refused before any UPDATE BINARY. Returns the file size.
pub(crate) fn write(io: &mut Io<'_>, located: &Located, value: &[u8]) -> Result<usize, CardError> {
    let object = &located.object;
    let DataLocation::File(path) = &located.location else {
        return Err(CardError::Unsupported {
            operation: "write data object",
            reason: "the CPS2ter objects of a CPS3 are read-only (docs/card-spec.md §2.4, §5.4)",
        });
    };
    let size = io
        .select_size(path, &object.label)?
        .ok_or_else(|| CardError::ObjectNotFound(object.label.clone()))?;
    if value.len() > size {
        return Err(CardError::InvalidInput {
            operation: "write data object",
            reason: format!("{} bytes, the file of {} holds {size}", value.len(), object.label),
        });
    }
    if size > 0x8000 {
        return Err(CardError::malformed(
            object.label.clone(),
            "file larger than 32 KiB",
        ));
    }
    let cla = io.caps().cla;
    let mut padded = value.to_vec();
    padded.resize(size, 0);
    for (i, part) in padded.chunks(UPDATE_CHUNK).enumerate() {
        let offset = (i * UPDATE_CHUNK) as u16;
        io.ok(&cmd::update_binary(cla, offset, part)?, "update binary")?;
    }
    Ok(size)
}

/// CPS2ter: `A0 A4 00 00 02 <fid>` per element (3F00 skipped), FCI `85 { size(2) fid(2) type }`
/// (docs/card-spec.md §2.2). Returns the size.
fn select_cps2ter(io: &mut Io<'_>, path: &[u8], label: &str) -> Result<usize, CardError> {
    let fids: Vec<[u8; 2]> = path
        .chunks_exact(2)
        .map(|c| [c[0], c[1]])
        .filter(|f| *f != [0x3F, 0x00])
        .collect();
    let mut fci = Vec::new();
    for (i, fid) in fids.iter().enumerate() {
        let r = io.transmit(&cmd::cps2ter_select(*fid, i + 1 == fids.len())?)?;
        match r.sw().to_u16() {
            0x9000 => fci = r.into_data(),
            0x9404 | 0x6A82 => return Err(CardError::ObjectNotFound(label.to_owned())),
            _ => return Err(CardError::from_sw("CPS2ter select", r.sw())),
        }
    }
    match tlv::find(&fci, 0x85) {
        Ok(Some(t)) if t.value.len() >= 2 => addressable(
            usize::from(u16::from_be_bytes([t.value[0], t.value[1]])),
            MAX_READ_OFFSET + CPS2TER_CHUNK,
            label,
            "its CPS2ter FCI",
        ),
        _ => Err(CardError::malformed(
            format!("CPS2ter FCI of {label}"),
            "no 85 size",
        )),
    }
}

/// CPS2ter READ BINARY chunk (docs/card-spec.md §2.2).
const CPS2TER_CHUNK: usize = 0xE7;

/// CPS2ter: select (docs/card-spec.md §2.2), then `A0 B0` in E7 chunks. The size was checked against the
/// 15-bit offset by [`select_cps2ter`].
fn read_cps2ter(io: &mut Io<'_>, path: &[u8], label: &str) -> Result<Vec<u8>, CardError> {
    let size = select_cps2ter(io, path, label)?;
    let mut out = Vec::new();
    reserve(&mut out, size, label)?;
    while out.len() < size {
        let le = (size - out.len()).min(CPS2TER_CHUNK);
        let offset = u16::try_from(out.len())
            .ok()
            .filter(|o| usize::from(*o) <= MAX_READ_OFFSET)
            .ok_or_else(|| CardError::malformed(label, "CPS2ter file larger than 32 KiB"))?;
        let c = cmd::read_binary(CLA_CPS2TER, offset, le as u16)?;
        let data = io.ok(&c, "CPS2ter read")?;
        if data.is_empty() {
            return Err(CardError::malformed(
                label,
                "CPS2ter READ BINARY returned no data",
            ));
        }
        if data.len() > le {
            return Err(CardError::malformed(
                label,
                format!("CPS2ter READ BINARY returned {} bytes for Le {le}", data.len()),
            ));
        }
        out.extend_from_slice(&data);
    }
    Ok(out)
}

/// EF_ACTUA (3F00/D010): the validity window of the card's last update (docs/card-spec.md §5.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EfActua {
    /// Start date, `YYYYMMDDhhmmss` (tag 81, BCD).
    pub start: String,
    /// End date, `YYYYMMDDhhmmss` (tag 82, BCD).
    pub end: String,
    /// The raw content.
    pub raw: Vec<u8>,
}

/// Parse `EC { 81 start, 82 end }` (docs/card-spec.md §5.7).
pub fn parse_ef_actua(raw: &[u8]) -> Result<EfActua, CardError> {
    let bad = |r: &str| CardError::malformed("EF_ACTUA", r);
    let date = |tag: u32| -> Result<String, CardError> {
        let t = tlv::find_path(raw, &[0xEC, tag])
            .map_err(|e| CardError::malformed("EF_ACTUA", e.to_string()))?
            .ok_or_else(|| bad("date missing"))?;
        let digits: String = t.value.iter().map(|b| format!("{b:02X}")).collect();
        if digits.len() != 14 || !digits.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad("date is not BCD YYYYMMDDhhmmss"));
        }
        Ok(digits)
    };
    Ok(EfActua {
        start: date(0x81)?,
        end: date(0x82)?,
        raw: raw.to_vec(),
    })
}

/// Read EF_ACTUA: CPS3 contact only; the CPS4 sends nothing (docs/card-spec.md §5.7, §10.4). Absent = `None`.
pub(crate) fn ef_actua(
    io: &mut Io<'_>,
    generation: Generation,
    interface: Interface,
) -> Result<Option<EfActua>, CardError> {
    if !generation.capabilities().ef_actua || interface != Interface::Contact {
        return Ok(None);
    }
    match io.read_file(&[0x3F, 0x00, 0xD0, 0x10], "EF_ACTUA")? {
        None => Ok(None),
        Some(raw) => parse_ef_actua(&raw).map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ef_actua_bcd_dates() {
        let raw = [
            0xEC, 0x12, 0x81, 0x07, 0x20, 0x24, 0x01, 0x01, 0x00, 0x00, 0x00, 0x82, 0x07, 0x20, 0x30, 0x01,
            0x01, 0x00, 0x00, 0x00,
        ];
        let a = parse_ef_actua(&raw).unwrap();
        assert_eq!(
            (a.start.as_str(), a.end.as_str()),
            ("20240101000000", "20300101000000")
        );
        assert!(parse_ef_actua(&raw[..10]).is_err());
        assert!(parse_ef_actua(&[]).is_err());
        assert_eq!(activity_index("CPS_ACTIVITY_16_PS"), Some(16));
        assert_eq!(activity_index("CPS_ACTIVITY_17_PS"), None);
    }
}
