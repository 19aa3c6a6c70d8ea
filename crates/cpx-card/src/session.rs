//! Card identity and session continuity: EF.SN.ICC, the serial number, and recovery after a reset
//! or a reinsertion (a different card is never taken for the old one).

use crate::error::CardError;
use crate::io::Io;

/// EF.SN.ICC, `3F00/D003` (docs/card-spec.md §1.3).
pub(crate) const EF_SN_ICC: [u8; 4] = [0x3F, 0x00, 0xD0, 0x03];
/// The ANS issuer number at the start of the PAN (docs/card-spec.md §1.3).
const ISSUER: [u8; 5] = [0x80, 0x25, 0x00, 0x00, 0x01];

/// The serial number as the official module derives it (docs/card-spec.md §1.3): the PAN without its last
/// byte (Luhn digit + F) in hex, minus its first 10 characters when "8025000001" appears in it.
///
/// ```
/// let sn = [0x5A, 0x0A, 0x80, 0x25, 0x00, 0x00, 0x01, 0x99, 0x21, 0x38, 0x45, 0x0F];
/// assert_eq!(cpx_card::serial_from_ef_sn_icc(&sn)?, "99213845");
/// # Ok::<(), cpx_card::CardError>(())
/// ```
pub fn serial_from_ef_sn_icc(data: &[u8]) -> Result<String, CardError> {
    let bad = |r: &str| CardError::malformed("EF.SN.ICC", r);
    let pan = match data {
        [0x5A, 0x0A, pan @ ..] if pan.len() >= 10 => &pan[..10],
        _ => return Err(bad("not 5A 0A + 10-byte PAN")),
    };
    if pan[..5] != ISSUER {
        return Err(CardError::WrongIssuer {
            found: hex::encode_upper(&pan[..5]),
        });
    }
    let text = hex::encode_upper(&pan[..9]);
    Ok(if text.contains("8025000001") {
        text[10..].to_owned()
    } else {
        text
    })
}

/// Select and read EF.SN.ICC: CPS3 `00 A4 09 0C` + `00 B0 00 00 0C` (no FCP: the content check
/// covers the size check, one APDU less); where [`crate::Capabilities::serial_size_checked`]
/// (CPS4) the module's `01 A4 08 00 02 D003 00`, whose FCI must give size 12 (docs/card-spec.md §1.3), then
/// `01 B0 00 00 0C`.
pub(crate) fn read_serial(io: &mut Io<'_>) -> Result<String, CardError> {
    if io.caps().serial_size_checked {
        match io.select_size(&EF_SN_ICC, "EF.SN.ICC")? {
            Some(12) => {}
            Some(n) => return Err(CardError::malformed("EF.SN.ICC", format!("size {n}, not 12"))),
            None => return Err(CardError::ObjectNotFound("EF.SN.ICC".into())),
        }
    } else {
        io.select(&EF_SN_ICC, "select EF.SN.ICC")?;
    }
    let mut data = Vec::with_capacity(12);
    io.read(0, 12, &mut data)?;
    serial_from_ef_sn_icc(&data)
}

/// After a reset (ours or another program's) or a reinsertion: re-select the application and
/// check that the card is still the one with `serial`.
pub(crate) fn reattach(io: &mut Io<'_>, serial: &str) -> Result<(), CardError> {
    if io.caps().select_aid_at_open {
        io.select_cps_aid()?;
    }
    let found = read_serial(io)?;
    if found != serial {
        log::warn!(target: "cpx::card", "different card in the reader: {found}, expected {serial}");
        return Err(CardError::DifferentCard {
            expected: serial.to_owned(),
            found,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_rules() {
        let real = [
            0x5A, 0x0A, 0x80, 0x25, 0x00, 0x00, 0x01, 0x99, 0x21, 0x38, 0x45, 0x0F,
        ];
        assert_eq!(serial_from_ef_sn_icc(&real).unwrap(), "99213845");
        let mut other = real;
        other[3] = 0x26;
        assert!(matches!(
            serial_from_ef_sn_icc(&other),
            Err(CardError::WrongIssuer { .. })
        ));
        assert!(matches!(
            serial_from_ef_sn_icc(&real[..11]),
            Err(CardError::MalformedCardData { .. })
        ));
        assert!(serial_from_ef_sn_icc(&[0x5A, 0x09, 0, 0]).is_err());
    }
}
