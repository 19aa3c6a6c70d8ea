//! A wire recorder around any [`VirtualCard`], and emulated card images inserted into the
//! sandbox's readers.

use std::ops::Deref;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use cpx_emulator::timing::{AtrError, ReaderClock, SessionFigures, Timing};
use cpx_vpcd::{CardSlot, VirtualCard};
use libtest_mimic::Failed;

use crate::{DEADLINE, ReaderLease, SandboxEnv, wait_for_card};

/// [`DEADLINE`] under its former name: how long [`insert_card`] waits for pcscd to see an
/// inserted card.
pub const CARD_SEEN: Duration = DEADLINE;

/// One command APDU that reached the card and its raw response (data and SW1 SW2).
pub type Exchange = (Vec<u8>, Vec<u8>);

/// The card behind a [`Recorder`], shared: tests can swap it for another card in the same
/// reader, or talk to it directly ("another program") without the exchange being recorded.
pub type SharedCard = Arc<Mutex<Box<dyn VirtualCard>>>;

/// A test's own answer to some commands, in place of the card's (see [`Recorder::answering`]).
type Answer = Box<dyn FnMut(&[u8]) -> Option<Vec<u8>> + Send>;

/// What a [`Recorder`] saw, shared with the test that inspects it (clones share the same log).
///
/// Derefs to the [`Mutex`] of the exchanges, so `recording.lock().unwrap()` reads them in place;
/// [`take`](Recording::take) and the other accessors cover the common cases.
#[derive(Debug, Clone, Default)]
pub struct Recording {
    exchanges: Arc<Mutex<Vec<Exchange>>>,
    resets: Arc<AtomicUsize>,
}

impl Deref for Recording {
    type Target = Mutex<Vec<Exchange>>;

    fn deref(&self) -> &Self::Target {
        &self.exchanges
    }
}

impl Recording {
    fn guard(&self) -> MutexGuard<'_, Vec<Exchange>> {
        self.exchanges.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The exchanges recorded since the last call, removed from the log.
    pub fn take(&self) -> Vec<Exchange> {
        std::mem::take(&mut *self.guard())
    }

    /// A copy of every exchange still in the log.
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.guard().clone()
    }

    /// The command APDUs still in the log, without their responses.
    pub fn commands(&self) -> Vec<Vec<u8>> {
        self.guard().iter().map(|(c, _)| c.clone()).collect()
    }

    /// Number of exchanges in the log.
    pub fn len(&self) -> usize {
        self.guard().len()
    }

    /// Whether the log is empty.
    pub fn is_empty(&self) -> bool {
        self.guard().is_empty()
    }

    /// What the exchanges still in the log would take on a real reader with the card whose ATR
    /// is `atr` (`cpx_emulator::timing`, docs/reader-timing.md): APDUs, bytes and modelled
    /// time. Each recorded exchange is one exchange on the wire (a T=0 GET RESPONSE is its own).
    ///
    /// ```
    /// use cpx_testkit::{Recorder, TestCard, CPS3_ATR};
    /// use cpx_vpcd::VirtualCard;
    ///
    /// let (mut card, recording) = Recorder::new(Box::new(TestCard::new()));
    /// card.transmit(&[0x80, 0x20, 0x00, 0x00]);
    /// let figures = recording.modelled(&CPS3_ATR)?;
    /// assert_eq!((figures.apdus, figures.bytes), (1, 6));
    /// // 4 header bytes and SW at 93 µs per etu, 2 ms of dispatch and 1 ms of USB.
    /// assert!(figures.total().as_millis() >= 3);
    /// # Ok::<(), cpx_emulator::timing::AtrError>(())
    /// ```
    pub fn modelled(&self, atr: &[u8]) -> Result<SessionFigures, AtrError> {
        let clock = ReaderClock::for_atr(atr)?;
        let log = self.guard();
        Ok(clock.session(log.iter().map(|(c, r)| (c.as_slice(), r.as_slice()))))
    }

    /// Number of warm resets the card received (never cleared by [`take`](Recording::take)).
    pub fn resets(&self) -> usize {
        self.resets.load(Ordering::SeqCst)
    }
}

/// A [`VirtualCard`] that records every exchange crossing the "wire" (GET RESPONSE included), so
/// counts are what a real card would see, and the warm resets it receives.
pub struct Recorder {
    card: SharedCard,
    recording: Recording,
    answer: Option<Answer>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("recording", &self.recording)
            .field("answering", &self.answer.is_some())
            .finish_non_exhaustive()
    }
}

impl Recorder {
    /// Wrap `card`; the [`Recording`] is the test's view of the wire.
    pub fn new(card: Box<dyn VirtualCard>) -> (Recorder, Recording) {
        let (r, w, _) = Recorder::swappable(card);
        (r, w)
    }

    /// Wrap `card`, and keep a handle on it to swap it or talk to it directly.
    pub fn swappable(card: Box<dyn VirtualCard>) -> (Recorder, Recording, SharedCard) {
        let recording = Recording::default();
        let shared: SharedCard = Arc::new(Mutex::new(card));
        (
            Recorder {
                card: Arc::clone(&shared),
                recording: recording.clone(),
                answer: None,
            },
            recording,
            shared,
        )
    }

    /// Answer the commands for which `answer` returns a response itself, without the card
    /// seeing them (a card that behaves differently on those commands); the exchange is
    /// recorded all the same.
    pub fn answering(mut self, answer: impl FnMut(&[u8]) -> Option<Vec<u8>> + Send + 'static) -> Self {
        self.answer = Some(Box::new(answer));
        self
    }

    fn card(&self) -> MutexGuard<'_, Box<dyn VirtualCard>> {
        self.card.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl VirtualCard for Recorder {
    fn atr(&self) -> Vec<u8> {
        self.card().atr()
    }
    fn power_on(&mut self) {
        self.card().power_on();
    }
    fn power_off(&mut self) {
        self.card().power_off();
    }
    fn reset(&mut self) {
        self.recording.resets.fetch_add(1, Ordering::SeqCst);
        self.card().reset();
    }
    fn transmit(&mut self, command: &[u8]) -> Vec<u8> {
        let own = self.answer.as_mut().and_then(|a| a(command));
        let response = match own {
            Some(r) => r,
            None => self.card().transmit(command),
        };
        self.recording.guard().push((command.to_vec(), response.clone()));
        response
    }
}

/// The emulated card of the built-in image `stem` (see `cpx_emulator::builtin_image`), paced on
/// a real reader's clock when the sandbox says so ([`SandboxConfig::timing`](crate::SandboxConfig::timing);
/// outside a sandbox, at once).
pub fn emulated(stem: &str) -> Result<Box<dyn VirtualCard>, Failed> {
    let timing = SandboxEnv::get().map(SandboxEnv::timing).unwrap_or_default();
    emulated_with(stem, timing)
}

fn emulated_with(stem: &str, timing: Timing) -> Result<Box<dyn VirtualCard>, Failed> {
    let image = cpx_emulator::builtin_image(stem).ok_or_else(|| format!("no built-in image {stem}"))??;
    Ok(cpx_emulator::into_virtual(
        timing.apply(cpx_emulator::card_from_image(&image)),
    ))
}

/// `card`, answering no sooner than a real reader would (`cpx_emulator::timing::Paced`, on the
/// clock its ATR gives), whatever the sandbox's timing.
pub fn paced(card: Box<dyn VirtualCard>) -> Result<Box<dyn VirtualCard>, Failed> {
    Ok(Box::new(cpx_emulator::timing::Paced::new(card)?))
}

/// Lease a reader of the sandbox (empty, as PC/SC sees it), insert `card` into it and wait
/// until PC/SC shows it (see [`insert_seen`]).
pub fn insert_card(card: Box<dyn VirtualCard>) -> Result<(ReaderLease, CardSlot), Failed> {
    let lease = SandboxEnv::get()?.try_lease(DEADLINE)?;
    let mut slot = CardSlot::new(lease.vpcd_addr(), card);
    insert_seen(&mut slot, &lease.name)?;
    Ok((lease, slot))
}

/// Insert the card of `slot` into `reader` (which PC/SC shows empty) and wait, at most
/// [`DEADLINE`] each, until pcscd has polled this very connection and PC/SC shows the card.
///
/// Waiting for the poll first means the card PC/SC then shows is this one, not a previous card
/// of the reader whose removal pcscd has not noticed yet.
///
/// ```no_run
/// use cpx_vpcd::CardSlot;
/// let lease = cpx_testkit::SandboxEnv::get()?.try_lease(cpx_testkit::DEADLINE)?;
/// let mut slot = CardSlot::new(lease.vpcd_addr(), cpx_testkit::emulated("cps3-doctor")?);
/// cpx_testkit::insert_seen(&mut slot, &lease.name)?;
/// # Ok::<(), cpx_testkit::Failed>(())
/// ```
pub fn insert_seen(slot: &mut CardSlot, reader: &str) -> Result<(), Failed> {
    slot.insert()?;
    if !slot.wait_seen(DEADLINE) {
        let why = if slot.is_inserted() {
            format!("pcscd did not poll it within {DEADLINE:?}")
        } else {
            "its vpcd connection closed before pcscd polled it".to_owned()
        };
        return Err(format!("{reader}: card inserted at {}, but {why}", slot.addr()).into());
    }
    wait_for_card(reader, true, DEADLINE)?;
    Ok(())
}

/// Lease a reader and insert the emulated built-in image `stem`, wrapped in a [`Recorder`];
/// returns once PC/SC sees the card.
pub fn insert_image(stem: &str) -> Result<(ReaderLease, CardSlot, Recording), Failed> {
    let (recorder, recording) = Recorder::new(emulated(stem)?);
    let (lease, slot) = insert_card(Box::new(recorder))?;
    Ok((lease, slot, recording))
}

/// [`insert_image`] with the card paced on a real reader's clock, whatever the sandbox's timing.
pub fn insert_image_paced(stem: &str) -> Result<(ReaderLease, CardSlot, Recording), Failed> {
    let (recorder, recording) = Recorder::new(emulated_with(stem, Timing::Real)?);
    let (lease, slot) = insert_card(Box::new(recorder))?;
    Ok((lease, slot, recording))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TestCard;

    #[test]
    fn records_answers_and_counts_resets() {
        let (rec, wire, shared) = Recorder::swappable(Box::new(TestCard::new()));
        let mut rec = rec.answering(|c| (c.get(1) == Some(&0x12)).then(|| vec![0x6B, 0x00]));
        assert_eq!(rec.transmit(&[0x80, 0x20, 0x00, 0x00]), [0x90, 0x00]);
        assert_eq!(rec.transmit(&[0x80, 0x12, 0x00, 0x00, 0x0C]), [0x6B, 0x00]);
        rec.reset();
        assert_eq!(wire.len(), 2);
        assert_eq!(wire.commands()[1], [0x80, 0x12, 0x00, 0x00, 0x0C]);
        assert_eq!(wire.resets(), 1);
        // Direct commands through the shared card are not recorded.
        let direct = shared
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .transmit(&[0x80, 0x22, 0x00, 0x00]);
        assert_eq!(direct, [0x69, 0x82], "the reset cleared the security state");
        assert_eq!(wire.take().len(), 2);
        assert!(wire.is_empty());
    }
}
