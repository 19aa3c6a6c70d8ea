//! VERIFY, CHANGE REFERENCE DATA, RESET RETRY COUNTER, GET DATA on SDOs (spec §3, §8, §9).

use super::{Cps3Card, Interface};
use crate::apdu::{Command, sw};
use crate::choices;
use crate::facts;
use crate::fs::MF;
use crate::link::Reply;
use crate::tlv::{self, tlv};

const PIN: u8 = 0x01;
const PUK: u8 = 0x02;

impl Cps3Card {
    /// The PIN object a P2 names, or the SW to answer.
    fn pin_ref(&self, p2: u8) -> Result<u8, u16> {
        if self.interface == Interface::Contactless {
            return Err(choices::CL_PIN_SW);
        }
        match self.pin(p2) {
            Some(p) => Ok(p.reference),
            None => Err(sw::DATA_NOT_FOUND),
        }
    }

    /// VERIFY `00 20 00 <ref> [Lc PIN]`; empty = status (63Cx / 9000 / 6983); P1 FF resets.
    pub(super) fn verify(&mut self, cmd: &Command) -> Reply {
        let reference = match self.pin_ref(cmd.p2) {
            Ok(r) => r,
            Err(e) => return e.into(),
        };
        let Some(pin) = self.pin_mut(reference) else {
            return sw::DATA_NOT_FOUND.into();
        };
        match (cmd.p1, cmd.data.is_empty()) {
            (0x00, true) => pin.status().into(),
            (0x00, false) => pin.verify(&cmd.data).into(),
            (0xFF, true) => {
                pin.verified = false;
                Reply::ok()
            }
            _ => sw::WRONG_P1P2.into(),
        }
    }

    /// CHANGE REFERENCE DATA (spec §3.2, §9): P1 00 = old ‖ new, each a padded 8-byte block
    /// (AODF storedLength, `facts::AODF_CPS3`), split at 8; P1 01 = new only, after VERIFY. Data
    /// of the wrong length: `choices::PIN_WRONG_LENGTH_SW`, no try consumed; a new value that is
    /// not 4 digits + padding: 6A80, no try consumed.
    pub(super) fn change_reference_data(&mut self, cmd: &Command) -> Reply {
        let reference = match self.pin_ref(cmd.p2) {
            Ok(r) => r,
            Err(e) => return e.into(),
        };
        let Some(pin) = self.pin_mut(reference) else {
            return sw::DATA_NOT_FOUND.into();
        };
        if pin.blocked() {
            return sw::BLOCKED.into();
        }
        let block = pin.block_len();
        match cmd.p1 {
            0x00 => {
                let padded = pin.padding.is_some();
                if padded && cmd.data.len() != 2 * block {
                    return choices::PIN_WRONG_LENGTH_SW.into();
                }
                if cmd.data.len() <= block {
                    return sw::WRONG_DATA.into();
                }
                let (old, new) = cmd.data.split_at(block);
                let Some(new) = pin.new_value(new) else {
                    return sw::WRONG_DATA.into();
                };
                let status = pin.verify(old);
                if status == sw::OK {
                    pin.set(&new);
                }
                status.into()
            }
            0x01 => {
                if pin.padding.is_some() && cmd.data.len() != block {
                    return choices::PIN_WRONG_LENGTH_SW.into();
                }
                if !pin.verified {
                    return sw::SECURITY_NOT_SATISFIED.into();
                }
                let Some(new) = pin.new_value(&cmd.data) else {
                    return sw::WRONG_DATA.into();
                };
                pin.set(&new);
                Reply::ok()
            }
            _ => sw::WRONG_P1P2.into(),
        }
    }

    /// RESET RETRY COUNTER on the PIN (P2 = 01): P1 00 PUK ‖ new PIN, 01 PUK, 02 new PIN (PUK
    /// verified before), 03 nothing (PUK verified before) (notes §4). Every value is an 8-byte
    /// padded block (the PUK's 8 digits need no pad byte); other lengths
    /// `choices::PIN_WRONG_LENGTH_SW`. Each unblock uses one of the PUK's 100 uses (tag 9D,
    /// spec §8.4).
    pub(super) fn reset_retry_counter(&mut self, cmd: &Command) -> Reply {
        let reference = match self.pin_ref(cmd.p2) {
            Ok(r) => r,
            Err(e) => return e.into(),
        };
        if reference != PIN {
            return sw::DATA_NOT_FOUND.into();
        }
        let (Some(pin), Some(puk)) = (self.pin(PIN), self.pin(PUK)) else {
            return sw::DATA_NOT_FOUND.into();
        };
        if puk.blocked() {
            return sw::BLOCKED.into();
        }
        let (pin_len, puk_len) = (pin.block_len(), puk.block_len());
        let padded = pin.padding.is_some();
        let (puk_value, new_block): (Option<&[u8]>, Option<&[u8]>) = match (cmd.p1, cmd.data.len()) {
            (0x00, n) if padded && n != puk_len + pin_len => return choices::PIN_WRONG_LENGTH_SW.into(),
            (0x01, n) if padded && n != puk_len => return choices::PIN_WRONG_LENGTH_SW.into(),
            (0x02, n) if padded && n != pin_len => return choices::PIN_WRONG_LENGTH_SW.into(),
            (0x00, n) if n > puk_len => (Some(&cmd.data[..puk_len]), Some(&cmd.data[puk_len..])),
            (0x01, n) if n > 0 => (Some(&cmd.data[..]), None),
            (0x02, n) if n > 0 => (None, Some(&cmd.data[..])),
            (0x03, 0) => (None, None),
            (0x00..=0x03, _) => return sw::WRONG_LENGTH.into(),
            _ => return sw::WRONG_P1P2.into(),
        };
        let new = match new_block {
            Some(b) => match pin.new_value(b) {
                Some(v) => Some(v),
                None => return sw::WRONG_DATA.into(),
            },
            None => None,
        };
        let Some(puk) = self.pin_mut(PUK) else {
            return sw::DATA_NOT_FOUND.into();
        };
        match puk_value {
            Some(v) => {
                // The PUK given in the command does not leave the PUK verified (one-shot).
                let was_verified = puk.verified;
                let status = puk.verify(v);
                puk.verified = was_verified;
                if status != sw::OK {
                    return status.into();
                }
            }
            None if !puk.verified => return sw::SECURITY_NOT_SATISFIED.into(),
            None => {}
        }
        if let Some(u) = puk.usage_left.as_mut() {
            *u = u.saturating_sub(1);
        }
        let Some(pin) = self.pin_mut(PIN) else {
            return sw::DATA_NOT_FOUND.into();
        };
        match new {
            Some(n) => pin.set(&n),
            None => pin.tries_left = pin.max_tries,
        }
        pin.verified = false;
        Reply::ok()
    }

    /// GET DATA `00 CB 3F FF Lc 4D { 70 { <SDO tag> { <template tag> 80 } } }` (spec §3.2, §8, §9).
    pub(super) fn get_data(&mut self, cmd: &Command) -> Reply {
        if cmd.p1 != 0x3F || cmd.p2 != 0xFF {
            return sw::WRONG_P1P2.into();
        }
        let Some((sdo, template)) = parse_sdo_query(&cmd.data) else {
            return sw::WRONG_DATA.into();
        };
        let current_fid = self.fs.get(self.session.current_df).map(|f| f.fid);
        let body = match (sdo, template.as_slice()) {
            ([0xBF, 0x81, r], t) => {
                if self.interface == Interface::Contactless {
                    return choices::CL_PIN_SW.into();
                }
                let Some(pin) = self.pin(r) else {
                    return sw::DATA_NOT_FOUND.into();
                };
                match t {
                    [0xA0] => pin.docp(if r == PUK {
                        &facts::PUK_SDO_ACL
                    } else {
                        &facts::PIN_SDO_ACL
                    }),
                    [0x7F, 0x41] => pin.policy(),
                    _ => return sw::DATA_NOT_FOUND.into(),
                }
            }
            ([0xBF, 0x90, r], t) => {
                let Some(key) = self.key(0x80 | r) else {
                    return sw::DATA_NOT_FOUND.into();
                };
                // Readable only with the key's application DF selected (real, spec §9).
                if current_fid != Some(key.home_df) {
                    return sw::DATA_NOT_FOUND.into();
                }
                match t {
                    [0x7F, 0x48] => return choices::PRIVATE_KEY_DATA_SW.into(),
                    [0xA0] => key_docp(key),
                    _ => return sw::DATA_NOT_FOUND.into(),
                }
            }
            ([0xBF, 0xFB, n], [0x7B]) => {
                // SE readable only from the MF (real, notes §5.1).
                if self.session.current_df != MF {
                    return sw::DATA_NOT_FOUND.into();
                }
                match n {
                    2 => tlv(&[0x7B], &choices::SE2_CRT),
                    // spec §9: AT CRT with CHV 02.
                    3 => tlv(&[0x7B], &[0xA4, 0x06, 0x83, 0x01, 0x02, 0x95, 0x01, 0x08]),
                    _ => return sw::DATA_NOT_FOUND.into(),
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

/// `A0 { 80 <modulus bytes>, A1 { 8C 7B <6 SCBs> } }` (spec §9, "std" layout).
fn key_docp(key: &crate::crypto::CardKey) -> Vec<u8> {
    let u = key.usage;
    let user = if u.needs_pin { choices::SCB_USER_PIN } else { 0x00 };
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
