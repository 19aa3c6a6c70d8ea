//! The card layer through the real stack: pcscd + vpcd + the emulated CPS3, CPS4 and CPS3
//! contactless. Each test leases its own virtual reader.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::process::ExitCode;
use std::time::Duration;

use common::*;
use cpx_card::{Card, CardError, Generation, HashAlg, Interface, KeyRole, Mechanism, Pin, PinKind};
use cpx_testkit::{DEADLINE, Failed, ReaderLease, SandboxConfig, Trial, insert_seen, wait_for_card};
use cpx_transport::Pcsc;
use cpx_vpcd::CardSlot;

const SEEN: Duration = DEADLINE;

fn main() -> ExitCode {
    cpx_testkit::run_tests(&SandboxConfig::default(), || {
        vec![
            Trial::test("cps3_closing_keeps_others_and_logs_out_its_own", || {
                closing("cps3-doctor")
            }),
            Trial::test("cps4_closing_keeps_others_and_logs_out_its_own", || {
                closing("cps4-doctor")
            }),
            Trial::test("cps3_full_flow", || full_flow("cps3-doctor")),
            Trial::test("cps4_full_flow", || full_flow("cps4-doctor")),
            Trial::test("cps3_contactless_flow", contactless_flow),
            Trial::test("cps3_reset_by_another_client", || {
                reset_by_another_client("cps3-doctor")
            }),
            Trial::test("cps4_reset_by_another_client", || {
                reset_by_another_client("cps4-doctor")
            }),
            Trial::test("cps3_reinsertion_same_then_other_card", || {
                reinsertion("cps3-doctor", "cps3-pharmacist")
            }),
            Trial::test("cps4_reinsertion_same_then_other_card", || {
                reinsertion("cps4-doctor", "cps3-doctor")
            }),
        ]
    })
}

fn insert(stem: &str) -> Result<(ReaderLease, CardSlot, Wire), Failed> {
    let (rec, wire) = Recorder::new(emulated(stem));
    let (lease, slot) = cpx_testkit::insert_card(Box::new(rec))?;
    Ok((lease, slot, wire))
}

fn open(lease: &ReaderLease) -> Result<Card, Failed> {
    let channel = Pcsc::establish()?.connect(&lease.name)?;
    Ok(Card::open(Box::new(channel))?)
}

/// Another program (here another connection) that opens the card and closes it must not reset
/// it: a verified PIN survives. One that verified the PIN while another program had it verified
/// leaves that login in place when it closes; one whose VERIFY is what logged the card in logs
/// the card out when it closes (the card's verified state is shared: each program undoes only
/// its own login).
fn closing(stem: &str) -> Result<(), Failed> {
    let (lease, _slot, _wire) = insert(stem)?;
    let mut browser = open(&lease)?;
    browser.verify_pin(&Pin::new("1234"))?;
    let di = HashAlg::Sha256.digest_info(&HashAlg::Sha256.digest(b"login"));
    browser.sign(KeyRole::Authentication, Mechanism::RsaPkcs, &di)?;

    let status = open(&lease)?;
    assert_eq!(status.serial(), browser.serial());
    drop(status);
    browser
        .sign(KeyRole::Authentication, Mechanism::RsaPkcs, &di)
        .map_err(|e| format!("a plain open + close reset the card: {e}"))?;

    let mut signer = open(&lease)?;
    signer.verify_pin(&Pin::new("1234"))?;
    signer.sign(KeyRole::Authentication, Mechanism::RsaPkcs, &di)?;
    drop(signer);
    browser
        .sign(KeyRole::Authentication, Mechanism::RsaPkcs, &di)
        .map_err(|e| format!("a program closing logged out another program's login: {e}"))?;
    assert_eq!(browser.pin_verified_on_card()?, Some(true));

    // The browser logs out; a program that then logs in alone takes its login away with it.
    browser.logout()?;
    let mut alone = open(&lease)?;
    alone.verify_pin(&Pin::new("1234"))?;
    assert_eq!(browser.pin_verified_on_card()?, Some(true), "verified by `alone`");
    drop(alone);
    assert!(
        matches!(
            browser.sign(KeyRole::Authentication, Mechanism::RsaPkcs, &di),
            Err(CardError::SecurityStatusNotSatisfied { .. })
        ),
        "the PIN verified by a closed program (alone on the card) is still valid on the card"
    );
    assert_eq!(browser.pin_verified_on_card()?, Some(false));
    Ok(())
}

fn full_flow(stem: &str) -> Result<(), Failed> {
    let (lease, _slot, wire) = insert(stem)?;
    let mut card = open(&lease)?;
    let g4 = card.generation() == Generation::Cps4;
    assert_eq!(card.interface(), Interface::Contact);
    assert!(
        card.token_label()
            .starts_with(if g4 { "CPS4v1-" } else { "CPS3v3-" })
    );
    let sig_pk = public_key(&card.certificate(KeyRole::Signature)?.der);
    let auth_pk = public_key(&card.certificate(KeyRole::Authentication)?.der);
    assert_eq!(card.pin_status(PinKind::User)?.tries_left, Some(3));
    assert!(matches!(
        card.verify_pin(&Pin::new("12")),
        Err(CardError::PinFormat { .. })
    ));
    assert!(matches!(
        card.verify_pin(&Pin::new("0000")),
        Err(CardError::WrongPin { tries_left: 2, .. })
    ));
    assert!(matches!(
        card.read_data_object("CPS_ACTIVITY_01_PS"),
        Err(CardError::SecurityStatusNotSatisfied { .. })
    ));
    card.verify_pin(&Pin::new("1234"))?;
    for alg in [HashAlg::Sha1, HashAlg::Sha256] {
        let msg = vec![0x5A; 1405];
        verify_pkcs1(
            &sig_pk,
            alg,
            &msg,
            &card.sign(KeyRole::Signature, Mechanism::Pkcs1(alg), &msg)?,
        );
        let h = alg.digest(b"hash");
        verify_pkcs1(
            &sig_pk,
            alg,
            b"hash",
            &card.sign(KeyRole::Signature, Mechanism::RsaPkcs, &h)?,
        );
        let di = alg.digest_info(&h);
        verify_raw_pkcs1(
            &auth_pk,
            &di,
            &card.sign(KeyRole::Authentication, Mechanism::RsaPkcs, &di)?,
        );
        if g4 {
            verify_pss(
                &sig_pk,
                alg,
                b"pss",
                &card.sign(KeyRole::Signature, Mechanism::Pss(alg), b"pss")?,
            );
            verify_pss(
                &auth_pk,
                alg,
                b"pss",
                &card.sign(KeyRole::Authentication, Mechanism::Pss(alg), b"pss")?,
            );
        }
    }
    let secret = b"a 32-byte session key, for test!".to_vec();
    assert_eq!(
        &card.decrypt(KeyRole::Authentication, &encrypt(&auth_pk, &secret))?[..],
        &secret[..]
    );
    assert!(!card.read_data_object("CPS_NAME_PS")?.is_empty());
    assert!(!card.read_data_object("CPS_ACTIVITY_01_PS")?.is_empty());
    card.read_data_object("CPS_SIT_FACT")?;
    card.change_pin(&Pin::new("1234"), &Pin::new("4321"))?;
    card.unblock_pin(&Pin::new("12345678"), &Pin::new("1234"))?;
    card.verify_pin(&Pin::new("1234"))?;
    let puk = card.pin_status(PinKind::Puk)?;
    assert!(!puk.blocked);
    // What crossed pcscd: on CPS3 T=0, case-4 commands without Le and GET RESPONSE ≤ E7.
    for (c, _) in wire.lock().unwrap().iter() {
        if !g4 && c[1] == 0xC0 {
            assert!(c[4] != 0 && c[4] <= 0xE7, "{}", hex(c));
        }
        if g4 {
            assert_eq!(c[0] & 0x03, 1, "{}", hex(c));
        }
    }
    Ok(())
}

fn contactless_flow() -> Result<(), Failed> {
    let (lease, _slot, _wire) = insert("cps3-contactless")?;
    let mut card = open(&lease)?;
    assert_eq!(card.interface(), Interface::Contactless);
    let certs = card.certificates()?;
    assert_eq!(certs.len(), 1);
    let pk = public_key(&certs[0].der);
    let di = HashAlg::Sha256.digest_info(&HashAlg::Sha256.digest(b"badge"));
    verify_raw_pkcs1(
        &pk,
        &di,
        &card.sign(KeyRole::Authentication, Mechanism::RsaPkcs, &di)?,
    );
    assert!(matches!(
        card.verify_pin(&Pin::new("1234")),
        Err(CardError::NoSuchPin(_))
    ));
    assert!(matches!(
        card.sign(KeyRole::Signature, Mechanism::Pkcs1(HashAlg::Sha256), b"x"),
        Err(CardError::Unsupported { .. })
    ));
    Ok(())
}

fn reset_by_another_client(stem: &str) -> Result<(), Failed> {
    let (lease, _slot, _wire) = insert(stem)?;
    let mut card = open(&lease)?;
    card.verify_pin(&Pin::new("1234"))?;
    card.certificates()?;
    let mut other = Pcsc::establish()?.connect(&lease.name)?;
    cpx_transport::CardChannel::reconnect(&mut other, true)?;
    let e = card
        .sign(KeyRole::Signature, Mechanism::Pkcs1(HashAlg::Sha256), b"x")
        .unwrap_err();
    assert!(matches!(e, CardError::PinStateLost), "{e}");
    // Reads go on transparently after another reset when no PIN was verified.
    cpx_transport::CardChannel::reconnect(&mut other, true)?;
    assert_eq!(card.certificates()?.len(), 2);
    card.verify_pin(&Pin::new("1234"))?;
    card.sign(KeyRole::Signature, Mechanism::Pkcs1(HashAlg::Sha256), b"x")?;
    Ok(())
}

fn reinsertion(stem: &str, other: &str) -> Result<(), Failed> {
    let (lease, mut slot, _wire) = insert(stem)?;
    let mut card = open(&lease)?;
    card.verify_pin(&Pin::new("1234"))?;
    slot.remove();
    wait_for_card(&lease.name, false, SEEN)?;
    let e = card.pin_status(PinKind::User).unwrap_err();
    assert!(matches!(e, CardError::CardRemoved { .. }), "{e}");
    insert_seen(&mut slot, &lease.name)?;
    let e = card
        .sign(KeyRole::Signature, Mechanism::Pkcs1(HashAlg::Sha256), b"x")
        .unwrap_err();
    assert!(matches!(e, CardError::PinStateLost), "{e}");
    card.verify_pin(&Pin::new("1234"))?;
    card.sign(KeyRole::Signature, Mechanism::Pkcs1(HashAlg::Sha256), b"x")?;

    slot.remove();
    wait_for_card(&lease.name, false, SEEN)?;
    slot.replace_card(emulated(other));
    insert_seen(&mut slot, &lease.name)?;
    let e = card.certificates().unwrap_err();
    assert!(matches!(e, CardError::DifferentCard { .. }), "{e}");
    assert!(matches!(
        card.pin_status(PinKind::User),
        Err(CardError::DifferentCard { .. })
    ));
    Ok(())
}
