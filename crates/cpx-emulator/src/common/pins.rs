//! VERIFY, CHANGE REFERENCE DATA, RESET RETRY COUNTER (docs/card-spec.md §3.2 CPS3 and CPS4 columns, §8, §9,
//! §10.6–§10.8, docs/card-notes.md §4). Padded objects (CPS3, `facts::AODF_CPS3`) take every value as a block
//! of their stored length and answer `choices::PIN_WRONG_LENGTH_SW` to other lengths without
//! consuming a try; unpadded ones (CPS4, docs/card-spec.md §10) split `old ‖ new` at the current value's
//! length ([`Pin::block_len`]).

use super::{Core, Interface, PIN, PUK};
use crate::apdu::{Command, sw};
use crate::choices;
use crate::link::Reply;
use crate::pin::Pin;

impl Core {
    /// The PIN object a P2 names, or the SW to answer: on the contactless interface the PIN does
    /// not exist (docs/card-spec.md §7, `choices::CL_PIN_SW`); an unknown reference is 6A88.
    pub(crate) fn chv(&self, p2: u8) -> Result<&Pin, u16> {
        if self.interface == Interface::Contactless {
            return Err(choices::CL_PIN_SW);
        }
        self.pin(p2).ok_or(sw::DATA_NOT_FOUND)
    }

    fn chv_mut(&mut self, p2: u8) -> Result<&mut Pin, u16> {
        self.chv(p2)?;
        self.pin_mut(p2).ok_or(sw::DATA_NOT_FOUND)
    }

    /// VERIFY `xx 20 00 <ref> [Lc PIN]`; no data = counter query: 63Cx / 9000 (verified) / 6983
    /// (docs/card-spec.md §10.6). P1 FF with no data resets the verified state (ISO).
    pub(crate) fn verify(&mut self, cmd: &Command) -> Reply {
        let pin = match self.chv_mut(cmd.p2) {
            Ok(p) => p,
            Err(e) => return e.into(),
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

    /// CHANGE REFERENCE DATA (docs/card-spec.md §3.2, §9, §10.7): P1 00 = old ‖ new, split at one block; P1
    /// 01 = new only (the CPS4 module's form, docs/card-spec.md §10.8), after VERIFY of the object (or of the
    /// PUK, [`super::Profile::puk_authorises_pin_change`]). A new value that is not acceptable: 6A80,
    /// no try consumed.
    pub(crate) fn change_reference_data(&mut self, cmd: &Command) -> Reply {
        let by_puk = self.profile.puk_authorises_pin_change && self.pin(PUK).is_some_and(|p| p.verified);
        let pin = match self.chv_mut(cmd.p2) {
            Ok(p) => p,
            Err(e) => return e.into(),
        };
        if pin.blocked() {
            return sw::BLOCKED.into();
        }
        let block = pin.block_len();
        let padded = pin.padding.is_some();
        match cmd.p1 {
            0x00 => {
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
                if padded && cmd.data.len() != block {
                    return choices::PIN_WRONG_LENGTH_SW.into();
                }
                let authorised = pin.verified || (by_puk && pin.reference == PIN);
                if !authorised {
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

    /// RESET RETRY COUNTER of the user PIN (docs/card-notes.md §4, docs/card-spec.md §10.8): P1 00 PUK ‖ new
    /// PIN, 01 PUK, 02 new PIN (PUK verified before), 03 nothing (PUK verified before). Each unblock uses one
    /// of the PUK's uses (tag 9D, docs/card-spec.md §8.4).
    pub(crate) fn reset_retry_counter(&mut self, cmd: &Command) -> Reply {
        let named = if self.profile.rrc_accepts_81 {
            cmd.p2 & 0x7F
        } else {
            cmd.p2
        };
        if let Err(e) = self.chv(named) {
            return e.into();
        }
        if named != PIN {
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
}
