//! Status-word handling shared by the PIN commands of both generations (spec §3.2, §3.3).

use cpx_apdu::StatusWord;

use crate::error::CardError;
use crate::pin::PinKind;

/// Result of VERIFY / CHANGE: `63Cx` is a wrong code with x tries left (x = 0: blocked, as
/// `63C0` on CPS4, spec §3.3), `6983`/`6984` blocked. Never retried.
pub(crate) fn check(kind: PinKind, operation: &'static str, sw: StatusWord) -> Result<(), CardError> {
    match (sw.0, sw.1) {
        (0x90, 0x00) => Ok(()),
        (0x63, 0xC0) | (0x69, 0x83) | (0x69, 0x84) => Err(CardError::PinBlocked { kind }),
        (0x63, x) if x & 0xF0 == 0xC0 => Err(CardError::WrongPin {
            kind,
            tries_left: x & 0x0F,
        }),
        _ => Err(CardError::from_sw(operation, sw)),
    }
}
