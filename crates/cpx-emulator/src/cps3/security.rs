//! GET DATA on SDOs (docs/card-spec.md §3, §8, §9). VERIFY, CHANGE REFERENCE DATA and RESET RETRY COUNTER are
//! shared with the CPS4 (`common`, [`super::PROFILE`]).

use super::Cps3Card;
use crate::apdu::{Command, sw};
use crate::choices;
use crate::common::PUK;
use crate::facts;
use crate::fs::MF;
use crate::link::Reply;
use crate::tlv::{self, tlv};

impl Cps3Card {
    /// GET DATA `00 CB 3F FF Lc 4D { 70 { <SDO tag> { <template tag> 80 } } }` (docs/card-spec.md §3.2, §8,
    /// §9).
    pub(super) fn get_data(&mut self, cmd: &Command) -> Reply {
        if cmd.p1 != 0x3F || cmd.p2 != 0xFF {
            return sw::WRONG_P1P2.into();
        }
        let Some((sdo, template)) = parse_sdo_query(&cmd.data) else {
            return sw::WRONG_DATA.into();
        };
        let current_fid = self.core.fs.get(self.core.cursor.df).map(|f| f.fid);
        let body = match (sdo, template.as_slice()) {
            ([0xBF, 0x81, r], t) => {
                let pin = match self.core.chv(r) {
                    Ok(p) => p,
                    Err(e) => return e.into(),
                };
                match t {
                    [0xA0] => pin.docp(
                        if r == PUK {
                            &facts::PUK_SDO_ACL
                        } else {
                            &facts::PIN_SDO_ACL
                        },
                        self.core.knobs.usage_one_byte,
                    ),
                    [0x7F, 0x41] => pin.policy(),
                    _ => return sw::DATA_NOT_FOUND.into(),
                }
            }
            ([0xBF, 0x90, r], t) => {
                let Some(key) = self.key(0x80 | r) else {
                    return sw::DATA_NOT_FOUND.into();
                };
                // Readable only with the key's application DF selected (real, docs/card-spec.md §9).
                if current_fid != Some(key.home_df) {
                    return sw::DATA_NOT_FOUND.into();
                }
                match t {
                    [0x7F, 0x48] => return choices::PRIVATE_KEY_DATA_SW.into(),
                    [0xA0] => key_docp(key, self.core.knobs.scb_user_pin()),
                    _ => return sw::DATA_NOT_FOUND.into(),
                }
            }
            ([0xBF, 0xFB, n], [0x7B]) => {
                // SE readable only from the MF (real, docs/card-notes.md §5.1).
                if self.core.cursor.df != MF {
                    return sw::DATA_NOT_FOUND.into();
                }
                // A replayed field card's SEs (its report's GET DATA answers), else the model's
                // (the user SE number is a variant knob).
                let user_se = self.core.knobs.user_se.unwrap_or(2);
                match self.core.security_environments.iter().find(|(k, _)| *k == n) {
                    Some((_, Some(crts))) => tlv(&[0x7B], crts),
                    Some((_, None)) => return sw::DATA_NOT_FOUND.into(),
                    None => match n {
                        n if n == user_se => tlv(&[0x7B], &choices::SE2_CRT),
                        // docs/card-spec.md §9: AT CRT with CHV 02.
                        3 => tlv(&[0x7B], &[0xA4, 0x06, 0x83, 0x01, 0x02, 0x95, 0x01, 0x08]),
                        _ => return sw::DATA_NOT_FOUND.into(),
                    },
                }
            }
            _ => return sw::DATA_NOT_FOUND.into(),
        };
        let mut inner = sdo.to_vec();
        inner.extend(tlv::len_bytes(body.len()));
        inner.extend(body);
        Reply::data(tlv(&[0x70], &inner))
    }
}

/// `A0 { 80 <modulus bytes>, A1 { 8C 7B <6 SCBs> } }` (docs/card-spec.md §9, "std" layout).
fn key_docp(key: &crate::crypto::CardKey, scb_user_pin: u8) -> Vec<u8> {
    let u = key.usage;
    let user = if u.needs_pin { scb_user_pin } else { 0x00 };
    let scb = |allowed: bool| if allowed { user } else { 0xFF };
    // AMB 7B: PSO CDS, INTERNAL AUTHENTICATE, PSO DECIPHER, GENERATE, PUT DATA, GET DATA.
    let acl = [
        0x7B,
        scb(u.sign),
        scb(u.int_auth),
        scb(u.decipher),
        0xFF,
        0xFF,
        0x00,
    ];
    let size = u16::try_from(key.modulus_len()).unwrap_or(0).to_be_bytes();
    tlv(
        &[0xA0],
        &[tlv(&[0x80], &size), tlv(&[0xA1], &tlv(&[0x8C], &acl))].concat(),
    )
}

/// `4D { 70 { <SDO tag 3 bytes> len <template tag> [80] } }` → (SDO tag, template tag).
fn parse_sdo_query(data: &[u8]) -> Option<([u8; 3], Vec<u8>)> {
    let (outer, rest) = tlv::read(data)?;
    if outer.tag != [0x4D] || !rest.is_empty() {
        return None;
    }
    let (t70, _) = tlv::read(outer.value)?;
    if t70.tag != [0x70] {
        return None;
    }
    let (sdo, _) = tlv::read(t70.value)?;
    let tag: [u8; 3] = sdo.tag.try_into().ok()?;
    // The template tag is followed by an extended-header length byte (80 = whole template).
    let v = sdo.value;
    let tlen = if v.first()? & 0x1F == 0x1F { 2 } else { 1 };
    Some((tag, v.get(..tlen)?.to_vec()))
}
