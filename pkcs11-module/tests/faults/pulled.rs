//! The card pulled out in the middle of a command: during C_Sign (each key), C_SetPIN and a
//! cold certificate read. Each time: the call fails at once with a precise code, the sessions
//! go as documented, no PIN try is spent, and the card works again once put back.

use cpx_testkit::{Failed, Pull, apdu};
use cryptoki::error::RvError;
use cryptoki::types::AuthPin;

use crate::common::*;
use crate::known::check_code;
use crate::rig::*;

/// What the interrupted call must return. PKCS#11 2.40 §5.1 (return values of functions that
/// use a token): CKR_DEVICE_REMOVED is "the token was removed from its slot during the
/// execution of the function", which is what happened.
const INTERRUPTED: RvError = RvError::DeviceRemoved;

/// C_Sign while the card is pulled out on the key operation itself.
pub fn during_sign(stem: &str, key: Key) -> Result<(), Failed> {
    let mut rig = Rig::insert(stem)?;
    let p11 = pkcs11()?;
    let pk = rig.public_key(key)?;
    let s = fresh_login(&rig, PIN)?;
    let other = p11.open_ro_session(rig.p11slot)?;
    // One good signature first: certificates and key descriptions are read, so the pull hits
    // the signature and nothing else.
    sign_checked(&s, key, &pk, b"before")?;

    // On the CPS4, the authentication key's raw RSA is a chained PSO DECIPHER (docs/card-spec.md §4.4):
    // pulling on its first part cuts the card off in the middle of the chain.
    rig.faults
        .arm(Pull::on("private key operation", apdu::is_private_key_operation));
    let h = find_one(&s, cryptoki::object::ObjectClass::PRIVATE_KEY, key.label())?;
    let (s, r) = bounded("C_Sign with the card pulled out", CALL_BOUND, move || {
        let r = s.sign(&cryptoki::mechanism::Mechanism::Sha256RsaPkcs, h, b"pulled");
        (s, r)
    })?;
    let cut = rig.pulled()?;
    let rv = rv_of(r, "C_Sign interrupted")?;
    assert!(apdu::is_private_key_operation(&cut));
    let reported = check_code(rv, INTERRUPTED, "C_Sign interrupted")?;

    rig.wait_gone()?;
    session_dropped(&s, reported, "signing session after the pull")?;
    session_dropped(&other, false, "other session after the pull")?;
    rig.counters_at_max("after the pull")?;

    // Back in: a new session, one login, a good signature; the old session stays closed.
    rig.reinsert()?;
    let s2 = fresh_login(&rig, PIN)?;
    expect_rv(
        s.get_session_info(),
        RvError::SessionHandleInvalid,
        "old session after reinsertion",
    )?;
    sign_checked(&s2, key, &pk, b"after")?;
    rig.counters_at_max("after reinsertion")?;
    Ok(())
}

/// C_SetPIN while the card is pulled out on CHANGE REFERENCE DATA: before the card gets it, or
/// after the card executed it (its answer lost). Afterwards the PIN is the old or the new one
/// (the card's own state says which), never blocked, and no try was spent.
pub fn during_set_pin(stem: &str, card_executes: bool) -> Result<(), Failed> {
    let mut rig = Rig::insert(stem)?;
    let p11 = pkcs11()?;
    let s = p11.open_rw_session(rig.p11slot)?;
    let pull = Pull::on("CHANGE REFERENCE DATA", apdu::is_change_reference_data);
    rig.faults.arm(if card_executes {
        pull.after_card()
    } else {
        pull.before_card()
    });
    rig.wire.take();
    let (s, r) = bounded("C_SetPIN with the card pulled out", CALL_BOUND, move || {
        let r = s.set_pin(&AuthPin::from(PIN), &AuthPin::from("4321"));
        (s, r)
    })?;
    rig.pulled()?;
    let rv = rv_of(r, "C_SetPIN interrupted")?;
    let reported = check_code(rv, INTERRUPTED, "C_SetPIN interrupted")?;
    // The module must not have tried again (a retry of a CHANGE with the old PIN on a card
    // that already took the new one would cost a try).
    let changes = rig
        .wire
        .commands()
        .iter()
        .filter(|c| apdu::is_change_reference_data(c))
        .count();
    let expected_changes = usize::from(card_executes);
    if changes != expected_changes {
        return Err(
            format!("{changes} CHANGE REFERENCE DATA reached the card, expected {expected_changes}").into(),
        );
    }

    rig.wait_gone()?;
    session_dropped(&s, reported, "session after the pull")?;
    rig.counters_at_max("after the pull")?;
    let now = rig.current_pin()?;
    let expected = if card_executes { "4321" } else { PIN };
    if now != expected {
        return Err(format!("PIN on the card is {now:?}, expected {expected:?}").into());
    }

    rig.reinsert()?;
    let ti = p11.get_token_info(rig.p11slot)?;
    assert!(
        !ti.user_pin_locked() && !ti.user_pin_count_low() && !ti.user_pin_final_try(),
        "token flags after reinsertion: {ti:?}"
    );
    let s2 = fresh_login(&rig, &now)?;
    rig.counters_at_max("after one login with the current PIN")?;
    sign_checked(
        &s2,
        Key::Authentication,
        &rig.public_key(Key::Authentication)?,
        b"after",
    )?;
    Ok(())
}

/// Reading a certificate's value (cold: no disk cache, see `main`) while the card is pulled out
/// on the second READ BINARY chunk; then recovery, with the complete certificate.
pub fn during_certificate_read(stem: &str) -> Result<(), Failed> {
    const LABEL: &str = "Certificat d'Authentification CPS";
    let mut rig = Rig::insert(stem)?;
    let p11 = pkcs11()?;
    let s = p11.open_ro_session(rig.p11slot)?;
    let cert = find_one(&s, cryptoki::object::ObjectClass::CERTIFICATE, LABEL)?;
    rig.faults.arm(Pull::on(
        "READ BINARY past offset 0",
        apdu::is_read_binary_past_start,
    ));
    let (s, r) = bounded(
        "C_GetAttributeValue with the card pulled out",
        CALL_BOUND,
        move || {
            let r = s.get_attributes(cert, &[cryptoki::object::AttributeType::Value]);
            (s, r)
        },
    )?;
    if rig.faults.wait_pulled(PULL_BOUND).is_none() {
        rig.faults.disarm();
        return Err(format!(
            "the certificate was not read from the card (warm cache?): C_GetAttributeValue gave {r:?}"
        )
        .into());
    }
    let rv = rv_of(r, "certificate read interrupted")?;
    let reported = check_code(rv, INTERRUPTED, "certificate read interrupted")?;

    rig.wait_gone()?;
    session_dropped(&s, reported, "session after the pull")?;
    rig.reinsert()?;
    let s2 = p11.open_ro_session(rig.p11slot)?;
    let der = cert_value(&s2, LABEL)?;
    let image = rig.image.auth.as_ref().ok_or("no auth key in the image")?;
    if der != image.cert {
        return Err(format!(
            "certificate after recovery: {} bytes, differs from the card's {} bytes",
            der.len(),
            image.cert.len()
        )
        .into());
    }
    rig.counters_at_max("after recovery")?;
    Ok(())
}
