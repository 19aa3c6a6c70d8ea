//! Session management (PKCS#11 2.40 §5.6) and the session calls of `ffi/session.rs`:
//! C_OpenSession … C_Logout, C_InitPIN, C_SetPIN, the legacy parallel functions
//! (C_GetFunctionStatus, C_CancelFunction); how a failed call ends its operation.
//!
//! Login state belongs to the slot, shared by all its sessions; it is dropped with the token
//! (removal, reset, another card). The module never presents a PIN on its own: after a reset
//! the next private operation fails with CKR_DEVICE_REMOVED and the application logs in again.

use cpx_card::{CardError, PinEntry, PinKind};
use cryptoki_sys::*;

use crate::error::{Error, Result, ck};
use crate::ops::Ending;
use crate::state::Module;
use crate::state::slot::{LOGIN_CHECK_AFTER, Login, SlotState};
use crate::sync::lock;
use crate::token::Token;

/// C_GetFunctionStatus and C_CancelFunction: CKR_FUNCTION_NOT_PARALLEL for a valid session
/// (PKCS#11 2.40 §5.16: the legacy code of a library whose functions never run in parallel
/// with the application).
pub fn legacy_parallel_function(m: &Module, h: CK_SESSION_HANDLE) -> Result<()> {
    m.session(h)?;
    ck(CKR_FUNCTION_NOT_PARALLEL)
}

/// C_OpenSession. The card is opened here if it was not yet.
pub fn open_session(m: &Module, id: CK_SLOT_ID, flags: CK_FLAGS) -> Result<CK_SESSION_HANDLE> {
    if flags & CKF_SERIAL_SESSION == 0 {
        return ck(CKR_SESSION_PARALLEL_NOT_SUPPORTED);
    }
    let slot = m.slot(id)?;
    m.refresh_slots()?;
    let rw = flags & CKF_RW_SESSION != 0;
    let epoch = {
        let mut st = slot.state()?;
        st.with_token(|_| Ok(()))?;
        if !rw && matches!(st.login, Login::So) {
            return ck(CKR_SESSION_READ_WRITE_SO_EXISTS);
        }
        st.epoch
    };
    let handle = m.add_session(slot, rw, epoch);
    log::debug!(
        "slot {id}: session {handle} opened ({})",
        if rw { "rw" } else { "ro" }
    );
    Ok(handle)
}

/// C_CloseSession. Closing the last session of a slot logs out.
pub fn close_session(m: &Module, h: CK_SESSION_HANDLE) -> Result<()> {
    let session = m.remove_session(h).ok_or(Error::Ck(CKR_SESSION_HANDLE_INVALID))?;
    if m.session_counts(session.slot.id).0 == 0 {
        logout_card(&mut *session.slot.state()?);
    }
    Ok(())
}

/// C_CloseAllSessions (logs out).
pub fn close_all_sessions(m: &Module, id: CK_SLOT_ID) -> Result<()> {
    let slot = m.slot(id)?;
    m.remove_sessions_of(id);
    logout_card(&mut *slot.state()?);
    Ok(())
}

/// C_GetSessionInfo. Never waits for a card operation: the login state is what the last call
/// on the slot left. While the user is logged in, the card is asked (VERIFY without data, no
/// try spent) whether its PIN is still verified when that was last confirmed more than
/// [`LOGIN_CHECK_AFTER`] ago and the slot is free: the card's security state is shared by
/// every program using it, another may have logged it out or reset it, and NSS decides from
/// this answer whether to ask for the PIN again.
pub fn session_info(m: &Module, h: CK_SESSION_HANDLE) -> Result<CK_SESSION_INFO> {
    let session = m.session(h)?;
    m.refresh_slots_throttled()?;
    let slot = &session.slot;
    let (epoch, login) = match slot.try_state() {
        Some(mut st) => {
            if matches!(st.login, Login::User)
                && st.card_present
                && st.epoch == session.epoch
                && st
                    .login_confirmed
                    .is_none_or(|t| t.elapsed() >= LOGIN_CHECK_AFTER)
            {
                check_login(&mut st);
            }
            (st.epoch, st.login)
        }
        None => (slot.epoch_view(), slot.login_view()),
    };
    if epoch != session.epoch || !slot.card_present() {
        m.remove_session(h);
        return ck(CKR_DEVICE_REMOVED);
    }
    let state = match (login, session.rw) {
        (Login::Public, false) => CKS_RO_PUBLIC_SESSION,
        (Login::Public, true) => CKS_RW_PUBLIC_SESSION,
        (Login::User, false) => CKS_RO_USER_FUNCTIONS,
        (Login::User, true) => CKS_RW_USER_FUNCTIONS,
        (Login::So, _) => CKS_RW_SO_FUNCTIONS,
    };
    Ok(CK_SESSION_INFO {
        slotID: slot.id,
        state,
        flags: CKF_SERIAL_SESSION | if session.rw { CKF_RW_SESSION } else { 0 },
        ulDeviceError: 0,
    })
}

/// C_Login. CKU_USER verifies the PIN; CKU_SO verifies the PUK (for C_InitPIN).
pub fn login(m: &Module, h: CK_SESSION_HANDLE, user: CK_USER_TYPE, pin: Option<&[u8]>) -> Result<()> {
    let slot_id = m.session(h)?.slot.id;
    let has_ro = m.has_ro_session(slot_id);
    m.with_session(h, |s, _, st| {
        if user == CKU_USER && matches!(st.login, Login::User) {
            // Logged in as far as we know: unless the card lost the PIN since (another
            // program logged it out), a second login is refused as PKCS#11 says.
            check_login(st);
        }
        match (user, &st.login) {
            (CKU_USER, Login::User) | (CKU_SO, Login::So) => return ck(CKR_USER_ALREADY_LOGGED_IN),
            (CKU_USER, Login::So) | (CKU_SO, Login::User) => {
                return ck(CKR_USER_ANOTHER_ALREADY_LOGGED_IN);
            }
            (CKU_CONTEXT_SPECIFIC, _) => return ck(CKR_OPERATION_NOT_INITIALIZED),
            (CKU_USER | CKU_SO, Login::Public) => {}
            _ => return ck(CKR_USER_TYPE_INVALID),
        }
        if user == CKU_SO && has_ro {
            return ck(CKR_SESSION_READ_ONLY_EXISTS);
        }
        let kind = if user == CKU_SO {
            PinKind::Puk
        } else {
            PinKind::User
        };
        let r = st.with_token(|t| {
            if !t.has_pin() {
                // docs/card-spec.md §7: no PIN on the contactless interface; nothing is sent.
                return ck(CKR_USER_PIN_NOT_INITIALIZED);
            }
            let entry = t.entry(pin)?;
            t.pins_changed();
            let r = t.card.verify_entry(kind, &entry);
            note_pin_result(t, kind, &r);
            r.map_err(Error::from)
        });
        r?;
        st.login = match kind {
            PinKind::User => Login::User,
            PinKind::Puk => Login::So,
        };
        st.login_confirmed = Some(std::time::Instant::now());
        log::info!(
            "slot {}: {} logged in",
            s.slot.id,
            if user == CKU_SO { "SO" } else { "user" }
        );
        Ok(())
    })
}

/// C_Logout: the module's login is dropped and so is the card's: VERIFY P1=FF of the PIN
/// (and of the PUK after an SO login), or a card reset when the card refuses that form
/// ([`cpx_card::Card::logout`]). Private operations then fail with CKR_USER_NOT_LOGGED_IN
/// here, and the card itself answers `6982`. The login is dropped even if the card could not
/// be reached; the error is returned then.
pub fn logout(m: &Module, h: CK_SESSION_HANDLE) -> Result<()> {
    m.with_session(h, |_, _, st| {
        if matches!(st.login, Login::Public) {
            return ck(CKR_USER_NOT_LOGGED_IN);
        }
        let r = st.with_token(|t| {
            t.pins_changed();
            t.card.release_login().map_err(Error::from)
        });
        st.login = Login::Public;
        r
    })
}

/// C_InitPIN: with the SO logged in (PUK verified on the card by C_Login), unblock the PIN
/// and set it without sending the PUK again (docs/card-spec.md §3.2: CPS3 `00 2C 02`, CPS4 `01 2C 03` +
/// `01 24 01`).
pub fn init_pin(m: &Module, h: CK_SESSION_HANDLE, new: Option<&[u8]>) -> Result<()> {
    m.with_session(h, |s, _, st| {
        let Login::So = &st.login else {
            return ck(CKR_USER_NOT_LOGGED_IN);
        };
        if !s.rw {
            return ck(CKR_SESSION_READ_ONLY);
        }
        st.with_token(|t| {
            let entry = t.entry(new)?;
            t.pins_changed();
            let r = t.card.unblock_pin_after_puk_entry(&entry);
            note_pin_result(t, PinKind::User, &r);
            r.map_err(new_pin_error)
        })
    })
}

/// C_SetPIN: change the user PIN (R/W session; not as SO: the PUK cannot be changed).
pub fn set_pin(m: &Module, h: CK_SESSION_HANDLE, old: Option<&[u8]>, new: Option<&[u8]>) -> Result<()> {
    m.with_session(h, |s, _, st| {
        if !s.rw {
            return ck(CKR_SESSION_READ_ONLY);
        }
        // C_SetPIN's list (PKCS#11 2.40 §5.6) has no code for "this PIN cannot be set";
        // CKR_FUNCTION_NOT_SUPPORTED is for functions the library lacks (§5.1). So both
        // cases below are CKR_FUNCTION_FAILED, with the reason logged (issue 14, found by the
        // pkcs11_calls fuzz target).
        if matches!(st.login, Login::So) {
            log::info!("C_SetPIN in an SO session: a CPx card's PUK cannot be changed");
            return ck(CKR_FUNCTION_FAILED);
        }
        st.with_token(|t| {
            if !t.has_pin() {
                log::info!("C_SetPIN: this interface has no PIN (contactless)");
                return ck(CKR_FUNCTION_FAILED);
            }
            let (old, new) = (t.entry(old)?, t.entry(new)?);
            if matches!(old, PinEntry::PinPad) != matches!(new, PinEntry::PinPad) {
                // Both on the pad or both given: a change is done on one side (cpx-card
                // refuses a mixed pair).
                return ck(CKR_ARGUMENTS_BAD);
            }
            t.pins_changed();
            let r = t.card.change_pin_entry(&old, &new);
            note_pin_result(t, PinKind::User, &r);
            r.map_err(new_pin_error)
        })
    })
}

/// After a failed C_Digest* or C_Decrypt (other than CKR_BUFFER_TOO_SMALL), whatever failed,
/// a NULL argument included: the operation is over (PKCS#11 2.40 §5.9, §5.10: such a call
/// "always terminates the active operation" unless it returns CKR_BUFFER_TOO_SMALL or
/// answers a length query). The official conformance plan goes on after a NULL argument
/// (docs/card-spec.md §6.1 rows 509–510, 407–408, and the signing rows); for decryption and digests
/// cpx follows the standard (issue 14), for C_Encrypt and C_Sign the plan.
pub fn end_after_failure(m: &Module, h: CK_SESSION_HANDLE, op: Ending, e: &Error) {
    if e.rv() == CKR_BUFFER_TOO_SMALL {
        return;
    }
    if let Ok(session) = m.session(h) {
        let mut ops = lock(&session.ops);
        match op {
            Ending::Digest => ops.digest = None,
            Ending::Decrypt => ops.decrypt = None,
        }
    }
}

/// Closing the last session logs out: the card's verified state goes too (best effort; a card
/// that is gone has nothing verified).
fn logout_card(st: &mut SlotState) {
    if matches!(st.login, Login::Public) {
        return;
    }
    st.login = Login::Public;
    if let Some(t) = st.token.as_mut() {
        t.pins_changed();
        if let Err(e) = t.card.release_login() {
            log::debug!("logout on close: {e}");
        }
    }
}

/// Ask the card whether the PIN of our login is still verified (one VERIFY without data; no try
/// spent). If another program logged the card out or reset it, the slot drops to public for
/// every session, so that C_GetSessionInfo tells the truth and C_Login works again.
fn check_login(st: &mut SlotState) {
    let r = st.with_token(|t| t.card.pin_verified_on_card().map_err(Error::from));
    match r {
        Ok(Some(true)) => st.login_confirmed = Some(std::time::Instant::now()),
        // Not verified: `with_token` saw the card layer forget the login and dropped it.
        Ok(Some(false)) => {}
        Ok(None) => st.login_confirmed = Some(std::time::Instant::now()),
        Err(e) => log::debug!("{}: is the PIN still verified? {e}", st.reader()),
    }
}

/// C_SetPIN / C_InitPIN: a value outside the policy is CKR_PIN_LEN_RANGE (docs/card-spec.md §3.1); on
/// unblock, NOT_ALLOWED means the PUK is blocked (docs/card-spec.md §3.3); `6982` (the card no longer has
/// the PUK verified) is CKR_USER_NOT_LOGGED_IN.
fn new_pin_error(e: CardError) -> Error {
    match e {
        CardError::PinFormat { .. } | CardError::PinPadLength { .. } => Error::Ck(CKR_PIN_LEN_RANGE),
        CardError::NotAllowed { .. } => Error::Ck(CKR_PIN_LOCKED),
        other => Error::Card(other),
    }
}

/// Update the cached counters from a PIN operation's own result (no APDU).
fn note_pin_result(t: &mut Token, kind: PinKind, r: &std::result::Result<(), CardError>) {
    let slot = match kind {
        PinKind::User => &mut t.pins.user,
        PinKind::Puk => &mut t.pins.puk,
    };
    match r {
        Err(CardError::WrongPin { tries_left, .. }) => {
            if let Some(s) = slot.as_mut() {
                s.tries_left = Some(*tries_left);
                s.blocked = *tries_left == 0;
            }
        }
        Err(CardError::PinBlocked { .. }) => {
            if let Some(s) = slot.as_mut() {
                s.tries_left = Some(0);
                s.blocked = true;
            }
        }
        _ => {}
    }
}
