//! A browser's TLS login with the card in the sandbox's PIN-pad reader (issue 17): the test
//! driver `cpx-ifd-pinpad` (docs/pinpad-reader.md), the keypad script holding the PIN, nothing
//! of the PIN typed into the browser. What the card received is recorded on its side of the
//! wire; its VERIFY can be held back for a while, as a user typing on the pad would hold it,
//! so that the browser's own window during the login can be seen and kept as a screenshot.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use cpx_testkit::{Failed, PinpadReader, Recording};
use cpx_vpcd::{CardSlot, VirtualCard};

use crate::support::{Card, PIN, read_text};

/// How long the card holds a VERIFY back at most (the user still typing on the pad): long enough
/// for a browser on a loaded machine to show its window, short enough that a browser that
/// shows none still logs in within the step's time limit. Never a verdict: when it runs out,
/// the VERIFY goes on.
pub const HOLD_AT_MOST: Duration = Duration::from_secs(20);

/// The test PIN-pad driver for [`cpx_testkit::SandboxConfig::pinpad`]
/// ([`cpx_testkit::built_pinpad_driver`]: built first when run by cargo outside the sandbox).
/// `None` (said on stderr) when it cannot be had: the PIN-pad trials then fail for want of the
/// reader, the other trials run.
pub fn driver_for_sandbox() -> Option<PathBuf> {
    cpx_testkit::built_pinpad_driver()
        .map_err(|e| eprintln!("the PIN-pad reader driver: {e}"))
        .ok()
}

/// Where the card's VERIFY waits: shut until the test opens it, or [`HOLD_AT_MOST`] after the
/// VERIFY arrived.
#[derive(Debug, Default)]
pub struct Gate {
    state: Mutex<GateState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct GateState {
    /// When a VERIFY started waiting, if one did.
    waiting_since: Option<Instant>,
    open: bool,
}

impl Gate {
    fn lock(&self) -> std::sync::MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Lets the held VERIFY (and every later one) through.
    pub fn open(&self) {
        self.lock().open = true;
        self.changed.notify_all();
    }

    /// How long a VERIFY has been waiting, if one is.
    pub fn waiting_for(&self) -> Option<Duration> {
        let state = self.lock();
        if state.open {
            return None;
        }
        state.waiting_since.map(|t| t.elapsed())
    }

    /// Called by the card: waits until the gate is open, [`HOLD_AT_MOST`] at most.
    fn pass(&self) {
        let mut state = self.lock();
        let since = *state.waiting_since.get_or_insert_with(Instant::now);
        while !state.open {
            let Some(left) = HOLD_AT_MOST.checked_sub(since.elapsed()) else {
                break;
            };
            state = self
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// A card that holds every VERIFY carrying a PIN at its [`Gate`] before answering it. The
/// reader formats the keypad's digits into the VERIFY after the entry, so for the browser
/// this is the user still typing on the pad.
struct HeldVerify {
    card: Box<dyn VirtualCard>,
    gate: Arc<Gate>,
}

impl VirtualCard for HeldVerify {
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
        if carries_pin(command) {
            self.gate.pass();
        }
        self.card.transmit(command)
    }
}

/// A VERIFY with data: a PIN (the empty VERIFY that reads the tries left carries none).
fn carries_pin(command: &[u8]) -> bool {
    command.len() > 5 && command[1] == 0x20
}

/// `card` in the sandbox's PIN-pad reader, the keypad script holding the test PIN (one entry);
/// its exchanges recorded. Dropping it pulls the card out and waits (bounded) until PC/SC shows
/// the reader empty, so that the next trial's browser sees no leftover token.
pub struct PadCard {
    /// The reader.
    pub pad: PinpadReader,
    /// What the card received and answered.
    pub wire: Recording,
    /// Where the card holds its VERIFY (open from the start unless [`PadCard::insert_held`]).
    pub gate: Arc<Gate>,
    slot: Option<CardSlot>,
}

impl PadCard {
    /// Inserts `card` with the keypad ready; VERIFY answered at once.
    pub fn insert(card: &Card) -> Result<Self, Failed> {
        let pad = Self::insert_held(card)?;
        pad.gate.open();
        Ok(pad)
    }

    /// [`PadCard::insert`], the card holding its VERIFY until [`Gate::open`] (or
    /// [`HOLD_AT_MOST`]).
    pub fn insert_held(card: &Card) -> Result<Self, Failed> {
        let pad = PinpadReader::from_env().ok_or(
            "the sandbox has no PIN-pad reader (the cpx-ifd-pinpad driver was not built: see the \
             test binary's stderr)",
        )?;
        cpx_testkit::wait_for_card(&pad.name, false, cpx_testkit::DEADLINE)?;
        // One entry: the user types the PIN once. A second entry would find nothing (6400).
        std::fs::write(&pad.keypad, format!("{PIN}\n"))?;
        let gate = Arc::new(Gate::default());
        let held = HeldVerify {
            card: cpx_testkit::emulated(card.stem)?,
            gate: Arc::clone(&gate),
        };
        let (recorder, wire) = cpx_testkit::Recorder::new(Box::new(held));
        let mut slot = CardSlot::new(pad.vpcd_addr(), Box::new(recorder));
        cpx_testkit::insert_seen(&mut slot, &pad.name)?;
        Ok(Self {
            pad,
            wire,
            gate,
            slot: Some(slot),
        })
    }

    /// The keypad entries not used yet (what the script still holds, comments and blank lines
    /// aside). The driver rewrites the script without each entry it reads.
    pub fn keypad_left(&self) -> usize {
        read_text(&self.pad.keypad)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .count()
    }

    /// The card's answers to the VERIFY commands that carried a PIN, with the PIN's digits as
    /// the card received them (ASCII, the reader's padding stripped).
    pub fn verifies(&self) -> Vec<(String, String)> {
        self.wire
            .exchanges()
            .iter()
            .filter(|(c, _)| carries_pin(c))
            .map(|(c, r)| {
                let digits: String = c[5..]
                    .iter()
                    .take_while(|b| b.is_ascii_digit())
                    .map(|&b| char::from(b))
                    .collect();
                let sw = r[r.len().saturating_sub(2)..]
                    .iter()
                    .map(|b| format!("{b:02X}"))
                    .collect::<String>();
                (digits, sw)
            })
            .collect()
    }

    /// The login came from the pad: the keypad's one entry was used, and the card received
    /// exactly one VERIFY with a PIN — the keypad's digits — and accepted it. A PIN typed into
    /// the browser would be another VERIFY, or other digits.
    pub fn assert_pad_login(&self, browser: &str) {
        let verifies = self.verifies();
        eprintln!("{browser}: VERIFY commands at the card (digits, answer): {verifies:?}");
        assert_eq!(
            self.keypad_left(),
            0,
            "{browser}: the keypad entry was not used: the PIN did not come from the pad"
        );
        assert_eq!(
            verifies.len(),
            1,
            "{browser}: one VERIFY with a PIN: {verifies:?}"
        );
        assert_eq!(
            verifies[0],
            (PIN.to_string(), "9000".to_string()),
            "{browser}: the card must have received the keypad's digits and accepted them"
        );
    }
}

impl Drop for PadCard {
    fn drop(&mut self) {
        self.gate.open();
        drop(self.slot.take());
        let _ = std::fs::write(&self.pad.keypad, "");
        if let Err(e) = cpx_testkit::wait_for_card(&self.pad.name, false, cpx_testkit::DEADLINE) {
            eprintln!("{}: the card is still seen after its removal: {e}", self.pad.name);
        }
    }
}
