//! The ANS private certificate extensions of CPx cards (arc 1.2.250.1.71.1.2, docs/data-and-certs.md §2.2).
//!
//! | OID | content | meaning |
//! |---|---|---|
//! | `1.2.250.1.71.1.2.5` | OCTET STRING, 1 byte | catégorie (DICO G01); the byte read as 2 hex digits is the code (`80` = CPx de TEST) |
//! | `1.2.250.1.71.1.2.2` | INTEGER | type de carte (DICO G02): 0 CPS, 1 CPF, 2 CPE, 3 CPA |
//! | `1.2.250.1.71.1.2.3` | PrintableString | token id `8025000001/<card serial>` |

use serde::Serialize;

use crate::{der, oids};

/// The three ANS extensions, raw but decoded from DER. `None` = the extension is absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct HealthExtensions {
    /// Card category code, DICO G01 (`"80"` on TEST cards), from `1.2.250.1.71.1.2.5`.
    pub category_code: Option<String>,
    /// Card type code, DICO G02, from `1.2.250.1.71.1.2.2`.
    pub card_type_code: Option<i64>,
    /// Token id `<issuer id>/<card serial>`, from `1.2.250.1.71.1.2.3`.
    pub token_id: Option<String>,
}

/// Decode `value` if `oid` is one of the ANS extensions; other OIDs are left alone.
pub(crate) fn decode(oid: &str, value: &[u8], out: &mut HealthExtensions) -> Result<(), String> {
    match oid {
        oids::CATEGORY_EXT => {
            // docs/data-and-certs.md §2.2: OCTET STRING of 1 byte, seen as 80 / 82 / 83.
            let v = der::only(value, 0x04).ok_or("expected an OCTET STRING")?;
            if v.len() != 1 {
                return Err(format!("expected 1 byte, found {}", v.len()));
            }
            out.category_code = Some(hex::encode_upper(v));
        }
        oids::CARD_TYPE_EXT => {
            let v = der::only(value, 0x02).ok_or("expected an INTEGER")?;
            out.card_type_code = Some(der::integer(v).ok_or("INTEGER out of range")?);
        }
        oids::TOKEN_ID_EXT => {
            let v = der::only(value, 0x13).ok_or("expected a PrintableString")?;
            if !v.is_ascii() {
                return Err("non-ASCII PrintableString".into());
            }
            out.token_id = Some(crate::text::safe(v.iter().map(|b| char::from(*b)).collect()));
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_test_cpe_values() {
        // docs/data-and-certs.md §2.1, the real TEST CPE certificate.
        let mut h = HealthExtensions::default();
        decode(oids::CATEGORY_EXT, &[0x04, 0x01, 0x80], &mut h).unwrap();
        decode(oids::CARD_TYPE_EXT, &[0x02, 0x01, 0x02], &mut h).unwrap();
        let mut token = vec![0x13, 21];
        token.extend_from_slice(b"8025000001/2600301752");
        decode(oids::TOKEN_ID_EXT, &token, &mut h).unwrap();
        assert_eq!(h.category_code.as_deref(), Some("80"));
        assert_eq!(h.card_type_code, Some(2));
        assert_eq!(h.token_id.as_deref(), Some("8025000001/2600301752"));
    }

    #[test]
    fn malformed_values() {
        let mut h = HealthExtensions::default();
        assert!(decode(oids::CATEGORY_EXT, &[0x04, 0x02, 0x80, 0x00], &mut h).is_err());
        assert!(decode(oids::CATEGORY_EXT, &[0x02, 0x01, 0x80], &mut h).is_err());
        assert!(decode(oids::CARD_TYPE_EXT, &[0x02, 0x00], &mut h).is_err());
        assert!(decode(oids::TOKEN_ID_EXT, &[0x13, 0x01, 0xE9], &mut h).is_err());
        assert!(decode("1.2.3", &[0xFF], &mut h).is_ok());
        assert_eq!(h, HealthExtensions::default());
    }
}
