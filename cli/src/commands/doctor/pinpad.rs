//! The `pin-pad` check: does the reader of the examined card have a PIN pad (PC/SC part 10
//! secure PIN entry, docs/reader-features.md), and does cpx use it or was it turned off
//! (`CPX_PINPAD=off`, `CPX_PINPAD_IGNORE`; docs/pinpad-readers.md). Asks the reader only: nothing
//! reaches the card.

use cpx_transport::Pcsc;

use super::Check;
use crate::pinpad::{self, PadInfo};
use crate::session::Session;

pub(super) fn check(session: &Session) -> Check {
    let reader = session.reader();
    let pad = Pcsc::establish()
        .ok()
        .and_then(|pcsc| pinpad::probe(&pcsc, session.card.reader(), true));
    match pad {
        None => Check::skip(
            "pin-pad",
            format!("{reader} could not be asked for its features (CPX_LOG=debug says why)"),
        ),
        Some(pad) => judge(&reader, &pad),
    }
}

/// The verdict on what `reader` answered.
pub(super) fn judge(reader: &str, pad: &PadInfo) -> Check {
    let mut details = Vec::new();
    if pad.features.is_empty() {
        details.push("features: none (no PC/SC part 10 support)".to_owned());
    } else {
        details.push(format!("features: {}", pad.features.join(", ")));
    }
    if !pad.available {
        return Check::skip(
            "pin-pad",
            format!("{reader} has no PIN pad: the PIN is typed on the computer's keyboard"),
        )
        .details(details);
    }
    details.push(match pad.display {
        Some(d) => format!("display: {} lines of {} characters", d.lines, d.characters),
        None => "display: none".to_owned(),
    });
    if let (Some(min), Some(max)) = (pad.min_digits, pad.max_digits) {
        details.push(format!("PIN length on the keypad: {min} to {max} digits"));
    }
    if let Some(f) = &pad.firmware {
        details.push(format!("firmware: {f}"));
    }
    if let Some(why) = &pad.turned_off {
        return Check::warn(
            "pin-pad",
            format!(
                "{reader} has a PIN pad, turned off by {why}: the PIN is typed on the computer's \
                 keyboard"
            ),
            "if the pad works, unset CPX_PINPAD (or take the reader out of CPX_PINPAD_IGNORE) so \
             the PIN never passes through the computer",
        )
        .details(details);
    }
    let change = if pad.modify {
        "verify, change and unblock"
    } else {
        "verify only (this reader cannot change a PIN on its pad)"
    };
    Check::ok(
        "pin-pad",
        format!("{reader} has a PIN pad: cpx asks for the PIN on the reader's keypad ({change})"),
    )
    .details(details)
}
