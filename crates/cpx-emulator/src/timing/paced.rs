//! A virtual card that answers no sooner than a real reader would.

use std::time::Instant;

use cpx_vpcd::VirtualCard;

use super::{AtrError, ReaderClock};
use crate::image::CardKind;
use crate::state::{CardState, EmulatedCard, StateError};

/// Wraps a virtual card so that each exchange takes at least its modelled real-reader time
/// ([`ReaderClock::exchange`]): the answer is held back until that much time has passed since
/// the command arrived (the emulator's own computing time counts towards it). Any PC/SC client
/// then sees a real reader's latency.
///
/// ```
/// use std::time::{Duration, Instant};
/// use cpx_emulator::timing::Paced;
/// use cpx_vpcd::VirtualCard;
///
/// let image = cpx_emulator::builtin_image("cps4-doctor").expect("built in")?;
/// let mut card = Paced::new(cpx_emulator::card_from_image(&image))?;
/// card.power_on();
/// let started = Instant::now();
/// let select_mf = [0x00, 0xA4, 0x00, 0x0C, 0x02, 0x3F, 0x00];
/// let response = card.transmit(&select_mf);
/// assert!(started.elapsed() >= card.clock().exchange(&select_mf, &response));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Paced<C> {
    card: C,
    clock: ReaderClock,
}

impl<C: VirtualCard> Paced<C> {
    /// Pace `card` on the clock its ATR gives ([`ReaderClock::for_atr`]).
    pub fn new(card: C) -> Result<Self, AtrError> {
        let clock = ReaderClock::for_atr(&card.atr())?;
        Ok(Paced { card, clock })
    }

    /// Pace `card` on `clock`.
    pub fn with_clock(card: C, clock: ReaderClock) -> Self {
        Paced { card, clock }
    }

    /// The clock in use.
    pub fn clock(&self) -> &ReaderClock {
        &self.clock
    }

    /// The paced card.
    pub fn inner(&self) -> &C {
        &self.card
    }
}

impl<C: VirtualCard> VirtualCard for Paced<C> {
    fn atr(&self) -> Vec<u8> {
        self.card.atr()
    }
    fn power_on(&mut self) {
        self.card.power_on()
    }
    fn power_off(&mut self) {
        self.card.power_off()
    }
    fn reset(&mut self) {
        self.card.reset()
    }
    fn transmit(&mut self, command: &[u8]) -> Vec<u8> {
        let arrived = Instant::now();
        let response = self.card.transmit(command);
        let due = arrived + self.clock.exchange(command, &response);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        response
    }
}

impl EmulatedCard for Paced<Box<dyn EmulatedCard>> {
    fn kind(&self) -> CardKind {
        self.card.kind()
    }
    fn state(&self) -> CardState {
        self.card.state()
    }
    fn restore(&mut self, state: &CardState) -> Result<(), StateError> {
        self.card.restore(state)
    }
}
