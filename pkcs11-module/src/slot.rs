//! Slot and token management (PKCS#11 2.40 §5.5), the calls of `ffi/slot.rs`: C_GetSlotList,
//! C_GetSlotInfo (no APDU: PC/SC reader state only), C_GetTokenInfo, C_GetMechanismList,
//! C_GetMechanismInfo, C_WaitForSlotEvent. C_InitPIN and C_SetPIN, which work in a session, are
//! in [`crate::session`].

use cryptoki_sys::*;

use crate::error::{Error, Result, ck};
use crate::mechanisms;
use crate::state::Module;
use crate::token::pad;

/// C_GetSlotList: PC/SC's view only, never waiting for a card operation.
pub fn slot_list(m: &Module, token_present: bool) -> Result<Vec<CK_SLOT_ID>> {
    m.refresh_slots()?;
    Ok(m.slots()
        .iter()
        .filter(|s| !token_present || s.card_present())
        .map(|s| s.id)
        .collect())
}

/// C_GetSlotInfo (no APDU, never waiting for a card operation).
pub fn slot_info(m: &Module, id: CK_SLOT_ID) -> Result<CK_SLOT_INFO> {
    let slot = m.slot(id)?;
    m.refresh_slots()?;
    let mut flags = CKF_REMOVABLE_DEVICE | CKF_HW_SLOT;
    if slot.card_present() {
        flags |= CKF_TOKEN_PRESENT;
    }
    Ok(CK_SLOT_INFO {
        slotDescription: pad::<64>(&slot_description(&slot.reader)),
        manufacturerID: [b' '; 32],
        flags,
        hardwareVersion: CK_VERSION { major: 0, minor: 0 },
        firmwareVersion: CK_VERSION { major: 0, minor: 0 },
    })
}

/// C_GetTokenInfo. A slot busy with a card operation answers from its last C_GetTokenInfo
/// (with the current session counts) instead of waiting: NSS asks for it from its slot
/// checks, and one card that stops answering must not freeze those.
pub fn token_info(m: &Module, id: CK_SLOT_ID) -> Result<CK_TOKEN_INFO> {
    let slot = m.slot(id)?;
    m.refresh_slots()?;
    if !slot.card_present() {
        return ck(CKR_TOKEN_NOT_PRESENT);
    }
    let (n, rw) = m.session_counts(id);
    let mut st = match slot.try_state() {
        Some(st) => st,
        None => match slot.remembered_info() {
            Some(mut info) => {
                info.ulSessionCount = n as CK_ULONG;
                info.ulRwSessionCount = rw as CK_ULONG;
                return Ok(info);
            }
            None => slot.state()?,
        },
    };
    let info = st
        .with_token(|t| t.info(n, rw))
        // A token that left during the call is simply not present for a slot-level query
        // (pkcs11-tool -L and NSS list the slot as empty instead of failing).
        .map_err(|e| {
            if e.rv() == CKR_DEVICE_REMOVED {
                Error::Ck(CKR_TOKEN_NOT_PRESENT)
            } else {
                e
            }
        })?;
    slot.remember_info(&info);
    Ok(info)
}

/// C_GetMechanismList (the card is opened to know its generation).
pub fn mechanism_list(m: &Module, id: CK_SLOT_ID) -> Result<Vec<CK_MECHANISM_TYPE>> {
    let slot = m.slot(id)?;
    m.refresh_slots()?;
    let mut st = slot.state()?;
    Ok(mechanisms::list(st.card_kind()?))
}

/// C_GetMechanismInfo.
pub fn mechanism_info(m: &Module, id: CK_SLOT_ID, mech: CK_MECHANISM_TYPE) -> Result<CK_MECHANISM_INFO> {
    let slot = m.slot(id)?;
    m.refresh_slots()?;
    let mut st = slot.state()?;
    mechanisms::info(st.card_kind()?, mech)
}

/// C_WaitForSlotEvent: a card inserted or removed, a reader added or removed (see
/// [`Module::wait_for_slot_event`]).
pub fn wait_for_slot_event(m: &Module, dont_block: bool) -> Result<CK_SLOT_ID> {
    m.wait_for_slot_event(dont_block)
}

/// C_GetSlotInfo's slotDescription: the reader name blank-padded to 64; longer names become
/// the first 30 characters + "..." + the last 31 (docs/card-spec.md §5.2).
pub fn slot_description(reader: &str) -> String {
    // Reader names come from PC/SC drivers: controls never reach the caller's field.
    let reader = cpx_card::text::display_safe(reader);
    let reader = reader.as_ref();
    let chars: Vec<char> = reader.chars().collect();
    if reader.len() <= 64 {
        return reader.to_owned();
    }
    let head: String = chars.iter().take(30).collect();
    let tail: String = chars[chars.len().saturating_sub(31)..].iter().collect();
    let s = format!("{head}...{tail}");
    // Keep within 64 bytes even with multi-byte characters.
    let mut out = String::new();
    for c in s.chars() {
        if out.len() + c.len_utf8() > 64 {
            break;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_reader_names_are_cut_as_the_official_module_does() {
        let long = format!("{}{}", "A".repeat(40), "B".repeat(40));
        let d = slot_description(&long);
        assert_eq!(d.len(), 64);
        assert!(d.starts_with(&"A".repeat(30)));
        assert!(d.contains("..."));
        assert!(d.ends_with(&"B".repeat(31)));
        assert_eq!(slot_description("short"), "short");
        let p = pad::<8>("abc");
        assert_eq!(&p, b"abc     ");
    }

    #[test]
    fn no_control_reaches_a_fixed_field() {
        let p = pad::<16>("Dr\u{1b}[2J\0\u{9b}X");
        assert!(p.iter().all(|b| *b >= 0x20 && *b != 0x7F), "{p:02X?}");
        assert!(String::from_utf8_lossy(&p).starts_with("Dr\u{FFFD}[2J\u{FFFD}\u{FFFD}X"));
        let d = slot_description("Reader\u{1b}]0;x\u{7}");
        assert!(!d.chars().any(|c| c.is_control()), "{d:?}");
    }
}
