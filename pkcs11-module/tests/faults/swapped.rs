//! The card changes under an open, logged-in session without being pulled mid-command: another
//! program resets it, or another card takes its place in the reader. The module must not
//! present the PIN again on its own, nor send the old session's work to the new card.

use cpx_testkit::{Failed, wait_for_card};
use cpx_transport::CardChannel;
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::ObjectClass;

use crate::common::*;
use crate::rig::*;

/// Another program (another PC/SC context, as another process has) resets the card between
/// C_Login and C_Sign. The module documents: "a card reset or removal drops the login and the
/// sessions (CKR_DEVICE_REMOVED once per session, then CKR_SESSION_HANDLE_INVALID)"; a
/// CKR_USER_NOT_LOGGED_IN would also be honest. A signature made anyway would mean the PIN was
/// presented again behind the application's back.
pub fn reset_between_login_and_sign(stem: &str) -> Result<(), Failed> {
    let rig = Rig::insert(stem)?;
    let pk = rig.public_key(Key::Signature)?;
    let s = fresh_login(&rig, PIN)?;
    sign_checked(&s, Key::Signature, &pk, b"before")?;
    let key = find_one(&s, ObjectClass::PRIVATE_KEY, Key::Signature.label())?;

    let resets = rig.wire.resets();
    let mut other = cpx_transport::Pcsc::establish()?.connect(&rig.lease.name)?;
    other.reconnect(true)?;
    drop(other);
    if rig.wire.resets() <= resets {
        return Err("the other program's reset did not reach the card".into());
    }
    rig.wire.take();

    let (s, r) = bounded("C_Sign after a reset", CALL_BOUND, move || {
        let r = s.sign(&Mechanism::Sha256RsaPkcs, key, b"after reset");
        (s, r)
    })?;
    let sent = rig.wire.commands();
    let n = verifies(&sent);
    if n != 0 {
        return Err(format!("silent re-login: {n} PIN presentation(s) after the reset").into());
    }
    match rv_of(r, "C_Sign after a reset")? {
        RvError::DeviceRemoved => expect_rv(
            s.get_session_info(),
            RvError::SessionHandleInvalid,
            "session after CKR_DEVICE_REMOVED",
        )?,
        RvError::UserNotLoggedIn => {
            let state = s.get_session_info()?.session_state();
            assert!(
                matches!(
                    state,
                    cryptoki::session::SessionState::RoPublic | cryptoki::session::SessionState::RwPublic
                ),
                "still logged in after CKR_USER_NOT_LOGGED_IN: {state:?}"
            );
        }
        other => return Err(format!("C_Sign after a reset: {other:?}").into()),
    }

    let s2 = fresh_login(&rig, PIN)?;
    sign_checked(&s2, Key::Signature, &pk, b"after")?;
    rig.counters_at_max("after the reset")?;
    Ok(())
}

/// The card is taken out and another one put in the same reader while a session is open and
/// logged in. The old session's C_Sign must fail without reaching the new card; the token
/// info then shows the new card; a new session works with it.
pub fn other_card(stem: &str, other_stem: &str) -> Result<(), Failed> {
    let mut rig = Rig::insert(stem)?;
    let p11 = pkcs11()?;
    let s = fresh_login(&rig, PIN)?;
    sign_checked(
        &s,
        Key::Authentication,
        &rig.public_key(Key::Authentication)?,
        b"first card",
    )?;
    let key = find_one(&s, ObjectClass::PRIVATE_KEY, Key::Authentication.label())?;
    let first_label = p11.get_token_info(rig.p11slot)?.label().to_owned();

    rig.slot.remove();
    rig.wait_gone()?;
    let (image, faulty, faults, wire, card) = wrapped(other_stem)?;
    rig.slot.replace_card(faulty);
    rig.slot.insert()?;
    wait_for_card(&rig.lease.name, true, PULL_BOUND)?;
    let first_card = std::mem::replace(&mut rig.card, card);
    let first_image = std::mem::replace(&mut rig.image, image);
    (rig.faults, rig.wire) = (faults, wire);

    let (s, r) = bounded("C_Sign on the other card", CALL_BOUND, move || {
        let r = s.sign(&Mechanism::Sha256RsaPkcs, key, b"meant for the first card");
        (s, r)
    })?;
    let sent = rig.wire.commands();
    if key_operations(&sent) + verifies(&sent) != 0 {
        return Err(format!(
            "the old session's C_Sign reached the other card: {:02X?}",
            sent.iter().map(|c| &c[..4.min(c.len())]).collect::<Vec<_>>()
        )
        .into());
    }
    expect_rv(
        r,
        RvError::DeviceRemoved,
        "old session's C_Sign on the other card",
    )?;
    expect_rv(s.get_session_info(), RvError::SessionHandleInvalid, "old session")?;

    let label = p11.get_token_info(rig.p11slot)?.label().to_owned();
    if label.trim_end() != rig.image.token_label || label == first_label {
        return Err(format!("token label {label:?} after the swap (first card: {first_label:?})").into());
    }
    let s2 = fresh_login(&rig, PIN)?;
    sign_checked(
        &s2,
        Key::Authentication,
        &rig.public_key(Key::Authentication)?,
        b"second card",
    )?;
    rig.counters_at_max("other card")?;
    // The first card lost nothing either.
    at_max(&first_card, &first_image, "first card")?;
    Ok(())
}
