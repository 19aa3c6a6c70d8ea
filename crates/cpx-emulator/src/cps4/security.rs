//! ChipDoc VERIFY, CHANGE REFERENCE DATA, RESET RETRY COUNTER (spec §3.2 CPS4 column, §10.6–§10.8).

use super::Cps4Card;
use crate::apdu::{Command, sw};
use crate::link::Reply;

const PIN: u8 = 0x01;
const PUK: u8 = 0x02;

impl Cps4Card {
    /// VERIFY `01 20 00 <ref> [Lc PIN]`; no data = counter query: 63Cx / 9000 (verified) / 6983
    /// (spec §10.6). P1 FF with no data resets the verified state (ISO).
    pub(super) fn verify(&mut self, cmd: &Command) -> Reply {
        let Some(pin) = self.pin_mut(cmd.p2) else {
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

    /// CHANGE REFERENCE DATA. P1 01 = new value only (the module's form, spec §10.7, §10.8): needs
    /// the object itself verified, or, for the user PIN, the PUK (after an unblock,
    /// `choices::CPS4_PUK_AUTHORISES_PIN_CHANGE`). P1 00 = old ‖ new, split at the stored length.
    pub(super) fn change_reference_data(&mut self, cmd: &Command) -> Reply {
        let puk_verified = self.pin(PUK).is_some_and(|p| p.verified);
        let Some(pin) = self.pin_mut(cmd.p2) else {
            return sw::DATA_NOT_FOUND.into();
        };
        if pin.blocked() {
            return sw::BLOCKED.into();
        }
        match cmd.p1 {
            0x00 => {
                let stored = pin.value.len();
                if cmd.data.len() <= stored {
                    return sw::WRONG_DATA.into();
                }
                let (old, new) = cmd.data.split_at(stored);
                if !pin.acceptable(new) {
                    return sw::WRONG_DATA.into();
                }
                let status = pin.verify(old);
                if status == sw::OK {
                    pin.set(new);
                }
                status.into()
            }
            0x01 => {
                let by_puk =
                    pin.reference == PIN && puk_verified && crate::choices::CPS4_PUK_AUTHORISES_PIN_CHANGE;
                if !pin.verified && !by_puk {
                    return sw::SECURITY_NOT_SATISFIED.into();
                }
                if !pin.acceptable(&cmd.data) {
                    return sw::WRONG_DATA.into();
                }
                pin.set(&cmd.data);
                Reply::ok()
            }
            _ => sw::WRONG_P1P2.into(),
        }
    }

    /// RESET RETRY COUNTER of the user PIN, P2 = 01 or 81 (`01 2C 03 81`, spec §10.8): P1 03 = no
    /// data, P1 02 = new PIN, both after VERIFY of the PUK; P1 00 = PUK ‖ new, P1 01 = PUK (ISO).
    /// Each unblock uses one of the PUK's uses (as on CPS3, spec §8.4).
    pub(super) fn reset_retry_counter(&mut self, cmd: &Command) -> Reply {
        if cmd.p2 & 0x7F != PIN {
            return sw::DATA_NOT_FOUND.into();
        }
        let Some((min, max)) = self
            .pin(PIN)
            .map(|p| (usize::from(p.min_len), usize::from(p.max_len)))
        else {
            return sw::DATA_NOT_FOUND.into();
        };
        let Some(puk) = self.pin_mut(PUK) else {
            return sw::DATA_NOT_FOUND.into();
        };
        if puk.blocked() {
            return sw::BLOCKED.into();
        }
        let puk_len = puk.value.len();
        let (puk_value, new): (Option<&[u8]>, Option<&[u8]>) = match (cmd.p1, cmd.data.len()) {
            (0x00, n) if n > puk_len => (Some(&cmd.data[..puk_len]), Some(&cmd.data[puk_len..])),
            (0x01, n) if n > 0 => (Some(&cmd.data[..]), None),
            (0x02, n) if n > 0 => (None, Some(&cmd.data[..])),
            (0x03, 0) => (None, None),
            (0x00..=0x03, _) => return sw::WRONG_LENGTH.into(),
            _ => return sw::WRONG_P1P2.into(),
        };
        if new.is_some_and(|n| !(min..=max).contains(&n.len())) {
            return sw::WRONG_DATA.into();
        }
        match puk_value {
            Some(v) => {
                // A PUK given in the command is one-shot (as on the CPS3 model).
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
            Some(n) => pin.set(n),
            None => pin.tries_left = pin.max_tries,
        }
        pin.verified = false;
        Reply::ok()
    }
}
