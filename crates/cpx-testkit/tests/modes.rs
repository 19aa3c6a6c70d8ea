//! The fault modes of `FaultModeCard` through the real pcscd + vpcd: a mute card blocks
//! `SCardTransmit` on its own reader only (cards in the other slot of its vpcd entry and in
//! another entry keep answering) until released; a slow card answers late; an FCP size override
//! reaches the client.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::ffi::CString;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cpx_testkit::{
    DEADLINE, Failed, FaultModeCard, ReaderLease, SandboxConfig, SandboxEnv, TestCard, Trial, card_present,
    insert_seen,
};
use cpx_vpcd::CardSlot;
use pcsc::{Card, Context, Protocols, Scope, ShareMode};

const VERIFY: [u8; 4] = [0x80, 0x20, 0x00, 0x00];
/// How long a blocked transmit is watched before it counts as blocked: a hang guard only, the
/// verdict is that it completes once (and only once) the card is released.
const WATCH: Duration = Duration::from_millis(1500);

fn main() -> ExitCode {
    // Two entries: readers `cpx virtual 1 00 00/01` and `cpx virtual 2 00 00/01`.
    let config = SandboxConfig {
        entries: 2,
        ..SandboxConfig::default()
    };
    cpx_testkit::run_tests(&config, || {
        vec![
            Trial::test(
                "mute_card_blocks_its_reader_not_another_entrys",
                mute_blocks_its_reader_only,
            ),
            Trial::test("slow_card_answers_late_through_pcscd", slow_answers_late),
            Trial::test(
                "size_override_reaches_the_client",
                size_override_reaches_the_client,
            ),
        ]
    })
}

fn connect(reader: &str) -> Result<Card, Failed> {
    let ctx = Context::establish(Scope::User)?;
    let name = CString::new(reader)?;
    Ok(ctx.connect(&name, ShareMode::Shared, Protocols::ANY)?)
}

fn transmit(card: &Card, command: &[u8]) -> Result<Vec<u8>, pcsc::Error> {
    let mut buf = [0u8; 300];
    card.transmit(command, &mut buf).map(<[u8]>::to_vec)
}

/// `command` sent on `reader` from a thread of its own (its own PC/SC context): the answer
/// arrives on the channel, with the time it took.
fn transmit_in_thread(
    reader: &str,
    command: &'static [u8],
) -> mpsc::Receiver<(Result<Vec<u8>, String>, Duration)> {
    let (tx, rx) = mpsc::channel();
    let reader = reader.to_owned();
    std::thread::spawn(move || {
        let started = Instant::now();
        let r = connect(&reader)
            .map_err(|e| format!("{e:?}"))
            .and_then(|card| transmit(&card, command).map_err(|e| e.to_string()));
        let _ = tx.send((r, started.elapsed()));
    });
    rx
}

/// Every reader of the sandbox, leased, with test cards in all but `mute` (a fault-mode card).
struct Readers {
    leases: Vec<ReaderLease>,
    slots: Vec<CardSlot>,
}

impl Readers {
    fn slot_of(&mut self, name: &str) -> &mut CardSlot {
        let i = self.leases.iter().position(|l| l.name == name).unwrap();
        &mut self.slots[i]
    }
}

fn insert_everywhere(mute_reader: &str, card: FaultModeCard) -> Result<Readers, Failed> {
    let env = SandboxEnv::get()?;
    let leases = env.try_lease_many(env.readers().len(), DEADLINE)?;
    let mut card = Some(card);
    let mut slots = Vec::new();
    for lease in &leases {
        let inner: Box<dyn cpx_vpcd::VirtualCard> = if lease.name == mute_reader {
            Box::new(card.take().unwrap())
        } else {
            Box::new(TestCard::new())
        };
        let mut slot = CardSlot::new(lease.vpcd_addr(), inner);
        insert_seen(&mut slot, &lease.name)?;
        slots.push(slot);
    }
    Ok(Readers { leases, slots })
}

fn mute_blocks_its_reader_only() -> Result<(), Failed> {
    let (mute_reader, sibling, other_entry) = (
        "cpx virtual 1 00 00",
        "cpx virtual 1 00 01",
        "cpx virtual 2 00 00",
    );
    let (card, modes) = FaultModeCard::new(Box::new(TestCard::new()));
    let mut readers = insert_everywhere(mute_reader, card)?;
    modes.set_mute_limit(Duration::from_secs(60));

    // Unmute: the held command is answered, and the card goes on answering (the presence polls
    // pcscd made meanwhile did not desynchronise the link).
    modes.mute();
    let blocked = transmit_in_thread(mute_reader, &VERIFY);
    assert_eq!(
        modes.wait_held(DEADLINE),
        Some(VERIFY.to_vec()),
        "VERIFY never reached the card"
    );
    assert!(
        blocked.recv_timeout(WATCH).is_err(),
        "SCardTransmit on a mute card returned"
    );
    assert!(card_present(mute_reader)?, "a mute card stays in its reader");
    modes.unmute();
    let (answer, took) = blocked.recv_timeout(DEADLINE)?;
    assert_eq!(answer?, [0x90, 0x00]);
    println!("   unmuted: the held SCardTransmit answered after {took:?}");
    let card = connect(mute_reader)?;
    assert_eq!(transmit(&card, &VERIFY)?, [0x90, 0x00], "the card answers again");
    drop(card);

    // Mute again: other readers answer while the command is held, those of another vpcd entry
    // and the other slot of the same entry alike.
    modes.mute();
    let blocked = transmit_in_thread(mute_reader, &VERIFY);
    assert_eq!(modes.wait_held(DEADLINE), Some(VERIFY.to_vec()));
    for reader in [other_entry, sibling] {
        let (answer, took) = transmit_in_thread(reader, &VERIFY).recv_timeout(DEADLINE)?;
        assert_eq!(answer?, [0x90, 0x00], "{reader}");
        println!("   {reader} answered in {took:?} while the mute card held its command");
        assert!(card_present(reader)?);
    }
    assert!(
        modes.is_holding(),
        "the held command was released by another reader's traffic"
    );
    assert!(card_present(mute_reader)?, "a mute card stays in its reader");

    // Pull: the blocked transmit ends without an answer (vpcd 0.8 gives 0 bytes), the card is
    // out of the reader.
    modes.pull_seen(mute_reader)?;
    let (answer, took) = blocked.recv_timeout(DEADLINE)?;
    println!("   pulled: the held SCardTransmit ended after {took:?} with {answer:?}");
    assert_ne!(
        answer.as_deref().ok(),
        Some(&[0x90, 0x00][..]),
        "answered although pulled"
    );
    assert!(!card_present(mute_reader)?);
    readers.slot_of(mute_reader).remove();
    Ok(())
}

fn slow_answers_late() -> Result<(), Failed> {
    let (card, modes) = FaultModeCard::new(Box::new(TestCard::new()));
    let env = SandboxEnv::get()?;
    let lease = env.try_lease(DEADLINE)?;
    let mut slot = CardSlot::new(lease.vpcd_addr(), Box::new(card));
    insert_seen(&mut slot, &lease.name)?;
    let pcsc_card = connect(&lease.name)?;
    let started = Instant::now();
    assert_eq!(transmit(&pcsc_card, &VERIFY)?, [0x90, 0x00]);
    let fast = started.elapsed();
    modes.set_delay(Duration::from_millis(300));
    let started = Instant::now();
    assert_eq!(transmit(&pcsc_card, &VERIFY)?, [0x90, 0x00]);
    let slow = started.elapsed();
    println!("   SCardTransmit: {fast:?} at once, {slow:?} with a 300 ms delay");
    // A sleep of 300 ms happens before the answer leaves the card: a lower bound, not a timing.
    assert!(slow >= Duration::from_millis(300), "{slow:?}");
    Ok(())
}

fn size_override_reaches_the_client() -> Result<(), Failed> {
    let (card, modes) = FaultModeCard::new(cpx_testkit::emulated("cps3-doctor")?);
    modes.override_size(&[0xD0, 0x03], &[0xFF; 4]);
    let env = SandboxEnv::get()?;
    let lease = env.try_lease(DEADLINE)?;
    let mut slot = CardSlot::new(lease.vpcd_addr(), Box::new(card));
    insert_seen(&mut slot, &lease.name)?;
    let pcsc_card = connect(&lease.name)?;
    // T=0 (CPS3 ATR): 61xx, then GET RESPONSE (docs/card-spec.md §2.2).
    let r = transmit(
        &pcsc_card,
        &[0x00, 0xA4, 0x09, 0x04, 0x04, 0x3F, 0x00, 0xD0, 0x03],
    )?;
    assert_eq!(r[0], 0x61, "{r:02X?}");
    let fcp = transmit(&pcsc_card, &[0x00, 0xC0, 0x00, 0x00, r[1]])?;
    assert_eq!(
        fcp[..8],
        [0x62, 0x27, 0x80, 0x04, 0xFF, 0xFF, 0xFF, 0xFF],
        "{fcp:02X?}"
    );
    assert_eq!(fcp[fcp.len() - 2..], [0x90, 0x00]);
    Ok(())
}
