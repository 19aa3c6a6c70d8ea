//! The testkit's own promises, in a real sandbox: a leased reader is empty as PC/SC sees it (or
//! the lease fails and says why), an inserted card is shown before `insert_card` returns, and the
//! waits report what they did not see.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::process::ExitCode;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cpx_testkit::{
    DEADLINE, Failed, SandboxConfig, SandboxEnv, TestCard, Trial, card_present, insert_card, insert_seen,
    wait_for_card,
};
use cpx_vpcd::CardSlot;

/// The trials below reason about which reader the pool hands out next: one at a time.
static TURN: Mutex<()> = Mutex::new(());

fn main() -> ExitCode {
    // One entry: two readers, so the pool's choice is known.
    let config = SandboxConfig {
        entries: 1,
        ..SandboxConfig::default()
    };
    cpx_testkit::run_tests(&config, || {
        vec![
            Trial::test("lease_waits_until_the_previous_card_is_gone", || {
                turn(lease_waits_for_removal)
            }),
            Trial::test("lease_of_a_reader_still_holding_a_card_fails_clearly", || {
                turn(lease_fails_on_a_kept_card)
            }),
            Trial::test("insert_card_returns_with_its_card_shown", || {
                turn(insert_card_shows_the_card)
            }),
            Trial::test("waits_say_what_they_did_not_see", || turn(waits_time_out)),
            Trial::test("wait_until_empty_names_the_reader_holding_a_card", || {
                turn(wait_until_empty_names_the_reader)
            }),
        ]
    })
}

fn turn(test: fn() -> Result<(), Failed>) -> Result<(), Failed> {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    SandboxEnv::get()?.wait_until_empty(&[], DEADLINE)?;
    test()
}

/// Both readers, each with a test card that PC/SC shows.
fn two_cards() -> Result<Vec<(cpx_testkit::ReaderLease, CardSlot)>, Failed> {
    let leases = SandboxEnv::get()?.try_lease_many(2, DEADLINE)?;
    let mut out = Vec::new();
    for lease in leases {
        let mut slot = CardSlot::new(lease.vpcd_addr(), Box::new(TestCard::new()));
        insert_seen(&mut slot, &lease.name)?;
        out.push((lease, slot));
    }
    Ok(out)
}

/// A card removed the instant its lease is given back (what a test's end does): the next lease
/// of that reader returns only once PC/SC shows it empty.
fn lease_waits_for_removal() -> Result<(), Failed> {
    let env = SandboxEnv::get()?;
    for _ in 0..3 {
        let mut cards = two_cards()?;
        // Both readers given back, [0] first: it is the one the pool hands out next.
        let (first, mut first_slot) = cards.remove(0);
        let first_name = first.name.clone();
        drop(first);
        drop(cards);
        // Removed after its lease went back, without waiting: pcscd notices at its next poll.
        first_slot.remove();
        let lease = env.try_lease(DEADLINE)?;
        assert_eq!(lease.name, first_name, "the reader given back first");
        assert!(
            !card_present(&lease.name)?,
            "{}: leased while PC/SC still shows the previous card",
            lease.name
        );
    }
    Ok(())
}

/// A card left in a reader whose lease was given back: the next lease of the reader fails with
/// a message that says so, and gives the reader back.
fn lease_fails_on_a_kept_card() -> Result<(), Failed> {
    let env = SandboxEnv::get()?;
    let mut cards = two_cards()?;
    let (kept, kept_slot) = cards.remove(0);
    let kept_name = kept.name.clone();
    drop(kept);
    drop(cards);
    let started = Instant::now();
    let e = env.try_lease(Duration::from_secs(1)).unwrap_err();
    assert!(started.elapsed() >= Duration::from_secs(1), "gave up early");
    assert!(
        e.contains(&kept_name) && e.contains("not empty") && e.contains("no card removal seen"),
        "{e}"
    );
    // The failed lease gave the reader back: once the card is out, it can be leased again.
    drop(kept_slot);
    let again = env.try_lease_many(2, DEADLINE)?;
    assert!(again.iter().any(|l| l.name == kept_name));
    Ok(())
}

/// `insert_card` returns once PC/SC shows the card, several times over in the same readers.
fn insert_card_shows_the_card() -> Result<(), Failed> {
    for _ in 0..4 {
        let (lease, slot) = insert_card(Box::new(TestCard::new()))?;
        assert!(card_present(&lease.name)?, "{}: not shown", lease.name);
        drop(slot);
        drop(lease);
    }
    Ok(())
}

fn waits_time_out() -> Result<(), Failed> {
    let lease = SandboxEnv::get()?.try_lease(DEADLINE)?;
    let started = Instant::now();
    let e = wait_for_card(&lease.name, true, Duration::from_millis(800)).unwrap_err();
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(800), "{waited:?}");
    assert_eq!(e, format!("{}: no card insertion seen within 800ms", lease.name));
    // A reader pcscd does not know has no card: waiting for its removal succeeds at once,
    // waiting for an insertion times out.
    wait_for_card("no such reader", false, Duration::ZERO)?;
    let e = wait_for_card("no such reader", true, Duration::from_millis(300)).unwrap_err();
    assert!(e.contains("no such reader: no card insertion seen"), "{e}");

    let mut slot = CardSlot::new(lease.vpcd_addr(), Box::new(TestCard::new()));
    insert_seen(&mut slot, &lease.name)?;
    let e = wait_for_card(&lease.name, false, Duration::from_millis(300)).unwrap_err();
    assert!(e.contains("no card removal seen"), "{e}");
    slot.remove();
    wait_for_card(&lease.name, false, DEADLINE)?;
    assert!(!card_present(&lease.name)?);
    Ok(())
}

fn wait_until_empty_names_the_reader() -> Result<(), Failed> {
    let env = SandboxEnv::get()?;
    let (lease, mut slot) = insert_card(Box::new(TestCard::new()))?;
    env.wait_until_empty(&[&lease.name], Duration::ZERO)?;
    let e = env.wait_until_empty(&[], Duration::from_millis(300)).unwrap_err();
    assert!(
        e.contains(&format!("{}: no card removal seen", lease.name)),
        "{e}"
    );
    slot.remove();
    env.wait_until_empty(&[], DEADLINE)?;
    Ok(())
}
