//! Card removal and reinsertion under an open session, through the built module. Kept apart
//! from `pkcs11_stack` (run alone, with fresh readers): under heavy parallel use of the same
//! sandbox, pcscd was seen not to notice a vpcd card removal within 5 s (the waits are now the
//! testkit's 30 s deadline).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::process::ExitCode;

use common::*;
use cpx_testkit::{Failed, Trial, wait_for_card};
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::ObjectClass;
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;

fn main() -> ExitCode {
    cpx_testkit::run_tests(&common::sandbox(4), || {
        vec![
            Trial::test("cps3_removal_mid_session", || removal("cps3-doctor")),
            Trial::test("cps4_removal_mid_session", || removal("cps4-doctor")),
        ]
    })
}

fn pin(p: &str) -> AuthPin {
    AuthPin::from(p)
}

fn sha256_di(data: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    let mut v = vec![
        0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00,
        0x04, 0x20,
    ];
    v.extend_from_slice(&sha2::Sha256::digest(data));
    v
}

fn session_on(
    stem: &str,
) -> Result<(cpx_testkit::ReaderLease, cpx_vpcd::CardSlot, cryptoki::slot::Slot), Failed> {
    let (lease, card) = insert(stem)?;
    let slot = slot_of(pkcs11()?, &lease.name)?;
    Ok((lease, card, slot))
}

fn removal(stem: &str) -> Result<(), Failed> {
    let (lease, mut card, slot) = session_on(stem)?;
    let p11 = pkcs11()?;
    let s = p11.open_ro_session(slot)?;
    let s2 = p11.open_ro_session(slot)?;
    s.login(UserType::User, Some(&pin("1234")))?;
    let key = find_one(&s, ObjectClass::PRIVATE_KEY, "CPS_PRIV_AUT")?;
    let di = sha256_di(b"before");
    s.sign(&Mechanism::RsaPkcs, key, &di)?;
    card.remove();
    wait_for_card(&lease.name, false, SEEN)?;
    expect_rv(
        s.sign(&Mechanism::RsaPkcs, key, &di),
        RvError::DeviceRemoved,
        "after removal",
    )?;
    expect_rv(
        s.get_session_info(),
        RvError::SessionHandleInvalid,
        "closed session",
    )?;
    expect_rv(s2.get_session_info(), RvError::DeviceRemoved, "other session")?;
    expect_rv(
        s2.get_session_info(),
        RvError::SessionHandleInvalid,
        "other session, again",
    )?;
    assert!(!p11.get_slots_with_token()?.contains(&slot));
    assert!(!p11.get_slot_info(slot)?.token_present());
    expect_rv(p11.open_ro_session(slot), RvError::TokenNotPresent, "no card")?;
    cpx_testkit::insert_seen(&mut card, &lease.name)?;
    let s3 = p11.open_ro_session(slot)?;
    expect_rv(
        s3.sign(&Mechanism::RsaPkcs, key, &di),
        RvError::KeyHandleInvalid,
        "stale handle",
    )?;
    s3.login(UserType::User, Some(&pin("1234")))?;
    let key = find_one(&s3, ObjectClass::PRIVATE_KEY, "CPS_PRIV_AUT")?;
    s3.sign(&Mechanism::RsaPkcs, key, &di)?;
    drop((s, s2));
    Ok(())
}
