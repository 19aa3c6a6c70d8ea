//! Pulling a card out in the middle of a command: a [`VirtualCard`] wrapper that, when the k-th
//! command matching a predicate arrives, behaves as a card whose contacts left the reader.
//!
//! # How the card is "pulled"
//! On the fatal command the card's connection to vpcd is closed without any answer: the reader
//! loses the card while the command is in flight. The wrapper does it from inside the
//! [`CardSlot`]'s serving thread, by unwinding out of [`VirtualCard::transmit`] with
//! [`std::panic::resume_unwind`] (no panic message): the serving thread ends and drops the
//! socket, and [`CardSlot`] already tolerates a card that unwound. Two other ways were tried
//! and rejected:
//! - answering an empty response: Debian's vpcd 0.8 then keeps waiting on the socket, so the
//!   middleware's `SCardTransmit` blocks until the card side closes (seen: 10 s);
//! - removing the card from the test thread ([`CardSlot::remove`]): that only ever happens
//!   *between* two commands (the serving thread holds the card while it answers), which
//!   `removal.rs` already covers.
//!
//! What the middleware sees: for the interrupted `SCardTransmit`, vpcd 0.8 reports a response
//! of 0 bytes (`IFDHTransmitToICC` returns success with `RxLength` 0 when the card's socket is
//! closed), where a CCID reader reports an error (`SCARD_E_NOT_TRANSACTED`); in both cases the
//! middleware gets no response APDU for that command. At its next presence poll (at most
//! 400 ms later) pcscd finds the card gone: later calls on the same handle get
//! `SCARD_W_REMOVED_CARD`, and the reader shows no card.
//!
//! The fatal command either never reaches the card ([`Pull::before_card`], the card was out
//! before the command got to it) or is executed and only its answer is lost
//! ([`Pull::after_card`], the card was pulled while answering — a CHANGE REFERENCE DATA may
//! then have changed the PIN). Either way the card then loses power, so its volatile state
//! (verified PIN, selected file, security environment) is gone, as with a real card.
//!
//! Put it back with [`CardSlot::remove`] (to reap the ended connection) then
//! [`CardSlot::insert`], or use [`reinsert`]. Outside a [`CardSlot`], a fired pull unwinds out of
//! `transmit` with a [`PulledOut`] payload.
//!
//! ```no_run
//! use cpx_testkit::{FaultyCard, Pull, apdu};
//! use cpx_vpcd::CardSlot;
//!
//! let (card, faults) = FaultyCard::new(cpx_testkit::emulated("cps3-doctor")?);
//! let mut slot = CardSlot::new("127.0.0.1:35963", Box::new(card));
//! slot.insert()?;
//! // The first PSO COMPUTE DIGITAL SIGNATURE pulls the card out.
//! faults.arm(Pull::on("PSO CDS", apdu::is_pso_cds));
//! // … the middleware signs, and fails …
//! let cut = faults.wait_pulled(std::time::Duration::from_secs(5)).ok_or("no pull")?;
//! assert_eq!(cut[1], 0x2A);
//! // Back in the reader, with its non-volatile state (PIN counters, files) as it was.
//! cpx_testkit::reinsert(&mut slot, "cpx virtual 1 00 00")?;
//! # Ok::<(), cpx_testkit::Failed>(())
//! ```
//!
//! [`CardSlot`]: cpx_vpcd::CardSlot
//! [`CardSlot::remove`]: cpx_vpcd::CardSlot::remove
//! [`CardSlot::insert`]: cpx_vpcd::CardSlot::insert

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use cpx_vpcd::{CardSlot, VirtualCard};
use libtest_mimic::Failed;

use crate::{DEADLINE, insert_seen, wait_for_card};

/// The unwind payload of a fired pull (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PulledOut;

/// A command predicate (the command APDU as it arrives from the reader).
pub type Matcher = fn(&[u8]) -> bool;

/// When to pull the card: on the `nth` command matching a predicate.
#[derive(Debug, Clone)]
pub struct Pull {
    what: &'static str,
    matches: Matcher,
    nth: usize,
    card_executes: bool,
}

impl Pull {
    /// Pull the card on the first command matching `matches`; `what` names it in reports.
    /// The command does not reach the card ([`before_card`](Self::before_card)).
    pub fn on(what: &'static str, matches: Matcher) -> Self {
        Self {
            what,
            matches,
            nth: 1,
            card_executes: false,
        }
    }

    /// On the `n`-th matching command (1 = the first); the earlier ones go through.
    pub fn nth(mut self, n: usize) -> Self {
        self.nth = n.max(1);
        self
    }

    /// The card is gone before the command reaches it: the card never executes it.
    pub fn before_card(mut self) -> Self {
        self.card_executes = false;
        self
    }

    /// The card executes the command, and is pulled out before its answer gets back.
    pub fn after_card(mut self) -> Self {
        self.card_executes = true;
        self
    }

    /// What the pull is armed on, for reports.
    pub fn what(&self) -> &'static str {
        self.what
    }
}

#[derive(Debug, Default)]
struct State {
    armed: Option<Pull>,
    /// Matching commands seen since the pull was armed.
    seen: usize,
    /// Commands the card was pulled on, in order.
    pulled: Vec<Vec<u8>>,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The test's handle on a [`FaultyCard`]: arm a pull, wait for it, see what it cut.
#[derive(Debug, Clone, Default)]
pub struct Faults(Arc<Shared>);

impl Faults {
    /// Arm `pull` (replacing any pull not yet fired) and restart its count of matching commands.
    pub fn arm(&self, pull: Pull) {
        let mut st = self.0.lock();
        st.armed = Some(pull);
        st.seen = 0;
    }

    /// Disarm the pending pull, if any; returns whether one was pending.
    pub fn disarm(&self) -> bool {
        self.0.lock().armed.take().is_some()
    }

    /// How many times the card was pulled out so far.
    pub fn pulls(&self) -> usize {
        self.0.lock().pulled.len()
    }

    /// Wait until the armed pull has fired; returns the command it cut, or `None` if it did
    /// not fire within `timeout` (it then stays armed: disarm it before going on).
    pub fn wait_pulled(&self, timeout: Duration) -> Option<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        let mut st = self.0.lock();
        while st.armed.is_some() {
            let left = deadline.checked_duration_since(Instant::now())?;
            st = self
                .0
                .changed
                .wait_timeout(st, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        st.pulled.last().cloned()
    }
}

/// A [`VirtualCard`] that is pulled out of the reader on an armed command (see the module docs).
pub struct FaultyCard {
    card: Box<dyn VirtualCard>,
    faults: Faults,
}

impl std::fmt::Debug for FaultyCard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultyCard")
            .field("faults", &self.faults)
            .finish_non_exhaustive()
    }
}

impl FaultyCard {
    /// Wrap `card`; nothing is armed yet.
    pub fn new(card: Box<dyn VirtualCard>) -> (FaultyCard, Faults) {
        let faults = Faults::default();
        (
            FaultyCard {
                card,
                faults: faults.clone(),
            },
            faults,
        )
    }

    /// Whether `command` is the armed one; counts matching commands.
    fn fires(&self, command: &[u8]) -> Option<bool> {
        let mut st = self.faults.0.lock();
        let pull = st.armed.as_ref()?;
        if !(pull.matches)(command) {
            return None;
        }
        let (nth, card_executes) = (pull.nth, pull.card_executes);
        st.seen += 1;
        (st.seen >= nth).then_some(card_executes)
    }
}

impl VirtualCard for FaultyCard {
    fn atr(&self) -> Vec<u8> {
        self.card.atr()
    }
    fn power_on(&mut self) {
        self.card.power_on();
    }
    fn power_off(&mut self) {
        self.card.power_off();
    }
    fn reset(&mut self) {
        self.card.reset();
    }
    fn transmit(&mut self, command: &[u8]) -> Vec<u8> {
        let Some(card_executes) = self.fires(command) else {
            return self.card.transmit(command);
        };
        if card_executes {
            // The card did the work; its answer never reaches the reader.
            let _ = self.card.transmit(command);
        }
        // Out of the reader: no power, volatile state lost.
        self.card.power_off();
        {
            let mut st = self.faults.0.lock();
            if let Some(pull) = st.armed.take() {
                log::debug!("card pulled out on {} ({:02X?})", pull.what, command.get(..4));
            }
            st.pulled.push(command.to_vec());
            self.faults.0.changed.notify_all();
        }
        // No answer at all: the serving thread ends here and its socket closes, which is what
        // vpcd sees of a card leaving the reader mid-command. resume_unwind skips the panic
        // hook: nothing is printed.
        std::panic::resume_unwind(Box::new(PulledOut))
    }
}

/// Put a pulled card back: reap its ended connection, wait until PC/SC shows the reader empty,
/// insert the card again and wait until pcscd has polled it and PC/SC shows it
/// ([`insert_seen`]).
pub fn reinsert(slot: &mut CardSlot, reader: &str) -> Result<(), Failed> {
    slot.remove();
    wait_for_card(reader, false, DEADLINE)?;
    insert_seen(slot, reader)
}

/// Predicates on command APDUs for [`Pull::on`]. They ignore the class byte's channel and
/// chaining bits, so they match CPS3 (CLA 00) and CPS4 (CLA 01, channel 1) alike.
pub mod apdu {
    fn header(c: &[u8]) -> Option<(u8, u8, u8)> {
        match c {
            [_, ins, p1, p2, ..] => Some((*ins, *p1, *p2)),
            _ => None,
        }
    }

    /// PERFORM SECURITY OPERATION / COMPUTE DIGITAL SIGNATURE (`2A 9E 9A`; docs/card-spec.md §4.2, §4.4).
    pub fn is_pso_cds(c: &[u8]) -> bool {
        header(c) == Some((0x2A, 0x9E, 0x9A))
    }

    /// PERFORM SECURITY OPERATION / DECIPHER (`2A 80 86`): the CPS4 authentication key's raw
    /// RSA signature is one (docs/card-spec.md §4.4).
    pub fn is_pso_decipher(c: &[u8]) -> bool {
        header(c) == Some((0x2A, 0x80, 0x86))
    }

    /// INTERNAL AUTHENTICATE (`88`): the CPS3 authentication key's signature (docs/card-spec.md §4.3).
    pub fn is_internal_authenticate(c: &[u8]) -> bool {
        header(c).is_some_and(|(ins, ..)| ins == 0x88)
    }

    /// The command that makes a signature with any key: PSO CDS, INTERNAL AUTHENTICATE or
    /// PSO DECIPHER.
    pub fn is_private_key_operation(c: &[u8]) -> bool {
        is_pso_cds(c) || is_internal_authenticate(c) || is_pso_decipher(c)
    }

    /// VERIFY (`20`) with data: a PIN or PUK presentation (not the data-less status query nor
    /// the `P1 = FF` logout).
    pub fn is_verify_with_data(c: &[u8]) -> bool {
        matches!(c, [_, 0x20, 0x00, _, lc, ..] if *lc > 0)
    }

    /// CHANGE REFERENCE DATA (`24`): a PIN change.
    pub fn is_change_reference_data(c: &[u8]) -> bool {
        header(c).is_some_and(|(ins, ..)| ins == 0x24)
    }

    /// READ BINARY (`B0`) of the current file past its start (P1 bit 8 clear: P1-P2 is the
    /// offset, docs/card-spec.md §2.4): the second and later chunks of a file read.
    pub fn is_read_binary_past_start(c: &[u8]) -> bool {
        matches!(header(c), Some((0xB0, p1, p2)) if p1 & 0x80 == 0 && (p1, p2) != (0, 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TestCard;
    use std::panic::{AssertUnwindSafe, catch_unwind};

    /// `transmit`, with a fired pull as `None`.
    fn send(card: &mut FaultyCard, command: &[u8]) -> Option<Vec<u8>> {
        match catch_unwind(AssertUnwindSafe(|| card.transmit(command))) {
            Ok(r) => Some(r),
            Err(payload) => {
                assert!(payload.is::<PulledOut>());
                None
            }
        }
    }

    #[test]
    fn pulls_on_the_nth_match_only_once() {
        let (mut card, faults) = FaultyCard::new(Box::new(TestCard::new()));
        faults.arm(Pull::on("80 14", |c| c.get(1) == Some(&0x14)).nth(2));
        let echo = [0x80, 0x14, 0x00, 0x00, 0x01, 0xAA];
        assert_eq!(
            send(&mut card, &echo),
            Some(vec![0x61, 0x01]),
            "first match goes through"
        );
        assert_eq!(send(&mut card, &[0x80, 0x20, 0x00, 0x00]), Some(vec![0x90, 0x00]));
        assert_eq!(send(&mut card, &echo), None, "second match: pulled");
        assert_eq!(faults.wait_pulled(Duration::ZERO), Some(echo.to_vec()));
        assert_eq!(faults.pulls(), 1);
        // The pull lost power: the "verify" above is forgotten. Nothing is armed any more.
        assert_eq!(card.transmit(&[0x80, 0x22, 0x00, 0x00]), [0x69, 0x82]);
        assert_eq!(card.transmit(&echo), [0x61, 0x01]);
        assert!(!faults.disarm());
    }

    #[test]
    fn after_card_executes_the_lost_command() {
        let (inner, log) = {
            let c = TestCard::new();
            let log = c.log();
            (c, log)
        };
        let (mut card, faults) = FaultyCard::new(Box::new(inner));
        faults.arm(Pull::on("verify", |c| c.get(1) == Some(&0x20)).after_card());
        assert_eq!(send(&mut card, &[0x80, 0x20, 0x00, 0x00]), None);
        assert_eq!(log.lock().unwrap_or_else(PoisonError::into_inner).len(), 1);
        faults.arm(Pull::on("verify", |c| c.get(1) == Some(&0x20)).before_card());
        assert_eq!(send(&mut card, &[0x80, 0x20, 0x00, 0x00]), None);
        assert_eq!(log.lock().unwrap_or_else(PoisonError::into_inner).len(), 1);
        assert_eq!(faults.pulls(), 2);
        faults.arm(Pull::on("never", |_| false));
        assert_eq!(faults.wait_pulled(Duration::from_millis(10)), None);
        assert!(faults.disarm());
    }

    #[test]
    fn predicates_match_cps3_and_cps4_forms() {
        assert!(apdu::is_pso_cds(&[0x00, 0x2A, 0x9E, 0x9A, 0x00]));
        assert!(apdu::is_pso_cds(&[0x01, 0x2A, 0x9E, 0x9A, 0x20]));
        assert!(!apdu::is_pso_cds(&[0x00, 0x2A, 0x90, 0xA0, 0x10]));
        assert!(apdu::is_pso_decipher(&[0x11, 0x2A, 0x80, 0x86, 0xFF]));
        assert!(apdu::is_internal_authenticate(&[0x00, 0x88, 0x00, 0x00, 0x33]));
        assert!(apdu::is_verify_with_data(&[0x00, 0x20, 0x00, 0x01, 0x08, 1]));
        assert!(!apdu::is_verify_with_data(&[0x00, 0x20, 0x00, 0x01]));
        assert!(!apdu::is_verify_with_data(&[0x00, 0x20, 0xFF, 0x01, 0x00]));
        assert!(apdu::is_change_reference_data(&[0x01, 0x24, 0x00, 0x01, 0x08]));
        assert!(apdu::is_read_binary_past_start(&[0x00, 0xB0, 0x00, 0xE7, 0xE7]));
        assert!(!apdu::is_read_binary_past_start(&[0x00, 0xB0, 0x00, 0x00, 0xE7]));
        assert!(!apdu::is_read_binary_past_start(&[0x00, 0xB0, 0x9C, 0x00, 0xC0]));
    }
}
