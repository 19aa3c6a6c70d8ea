//! Where a process's time goes at the card: the emulator's own time per exchange (timestamped
//! around each `transmit`), and the PC/SC round trip around it (a bare `SCardTransmit` through
//! pcscd + vpcd, measured from this process), so that "time inside card exchanges" is a
//! measurement, not a guess.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use cpx_testkit::{Failed, Recording};
use cpx_vpcd::VirtualCard;

/// The emulator's time for each exchange since the last [`take`](CardTime::take).
#[derive(Debug, Clone, Default)]
pub struct CardTime(Arc<Mutex<Vec<Duration>>>);

impl CardTime {
    pub fn take(&self) -> Vec<Duration> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// A card whose every `transmit` is timed into a [`CardTime`].
pub struct TimedCard {
    inner: Box<dyn VirtualCard>,
    spent: CardTime,
}

impl TimedCard {
    pub fn new(inner: Box<dyn VirtualCard>) -> (TimedCard, CardTime) {
        let spent = CardTime::default();
        (
            TimedCard {
                inner,
                spent: spent.clone(),
            },
            spent,
        )
    }
}

impl VirtualCard for TimedCard {
    fn atr(&self) -> Vec<u8> {
        self.inner.atr()
    }
    fn power_on(&mut self) {
        self.inner.power_on();
    }
    fn power_off(&mut self) {
        self.inner.power_off();
    }
    fn reset(&mut self) {
        self.inner.reset();
    }
    fn transmit(&mut self, command: &[u8]) -> Vec<u8> {
        let t = Instant::now();
        let r = self.inner.transmit(command);
        let took = t.elapsed();
        self.spent
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(took);
        r
    }
}

/// How many bare exchanges [`pcsc_hop`] times.
const HOPS: usize = 51;

/// The median cost of one exchange's PC/SC path, card time excluded: `SCardTransmit` of a
/// command that changes nothing on the card (GET DATA of an absent tag: `6A88`-like answer),
/// timed here, minus the emulator's own time for it. Sent in one transaction, as a module's
/// exchanges are.
pub fn pcsc_hop(reader: &str, wire: &Recording, card: &CardTime) -> Result<Duration, Failed> {
    let ctx = pcsc::Context::establish(pcsc::Scope::User)?;
    let name = std::ffi::CString::new(reader)?;
    let mut handle = ctx.connect(&name, pcsc::ShareMode::Shared, pcsc::Protocols::ANY)?;
    let tx = handle.transaction()?;
    wire.take();
    card.take();
    let mut round_trips = Vec::with_capacity(HOPS);
    let mut buf = [0u8; 258];
    for _ in 0..HOPS {
        let t = Instant::now();
        // GET DATA, proprietary class, tag 0x0000: no card answers it with data or state change.
        tx.transmit(&[0x80, 0xCA, 0x00, 0x00, 0x00], &mut buf)?;
        round_trips.push(t.elapsed());
    }
    let _ = tx.end(pcsc::Disposition::LeaveCard);
    let spent = card.take();
    let n = wire.take().len();
    if n != HOPS || spent.len() != HOPS {
        return Err(format!("the hop probe reached the card {n} times, not {HOPS}").into());
    }
    Ok(median(round_trips).saturating_sub(median(spent)))
}

pub fn median<T: Copy + Ord>(mut v: Vec<T>) -> T {
    v.sort_unstable();
    v[v.len() / 2]
}
