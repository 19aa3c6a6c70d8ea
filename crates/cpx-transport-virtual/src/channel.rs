//! [`CardChannel`] straight to a [`VirtualCard`] in the same process: no pcscd, no sockets.
//!
//! The card still only sees bytes, exactly as they would cross vpcd, and the protocol comes from
//! its ATR, so T=0 behaviour (case 4 without Le, `61xx`) is the same as through pcscd. Removal and
//! a reset by "another program" are simulated through [`VirtualControl`].

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use cpx_apdu::{Command, Response};
use cpx_vpcd::VirtualCard;

use cpx_transport::{
    CardChannel, CardTransaction, ControlCode, ExchangePolicy, Protocol, RawTransmit, ReaderFeatures,
    TransportError, exchange,
};

#[derive(Debug, Default)]
struct SlotState {
    removed: bool,
    /// Incremented by every reset done by someone else.
    resets: u64,
    /// Incremented by every insertion.
    insertions: u64,
}

struct Shared {
    card: Mutex<Box<dyn VirtualCard>>,
    state: Mutex<SlotState>,
}

fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The protocol pcsc-lite would pick with `SCARD_PROTOCOL_ANY` for this ATR: T=1 when the card
/// offers it, T=0 otherwise (docs/card-spec.md §10.1: the CPS4 final ATR offers both and gets T=1).
///
/// ```
/// use cpx_transport::Protocol;
/// use cpx_transport_virtual::protocol_from_atr;
/// let cps3 = [0x3B, 0xAC, 0x00, 0x40, 0x2A, 0x00, 0x12, 0x25, 0x00, 0x64, 0x80, 0x00, 0x03, 0x10, 0x00, 0x90, 0x00];
/// assert_eq!(protocol_from_atr(&cps3), Protocol::T0);
/// let cps4 = [0x3B, 0x9B, 0x18, 0x80, 0x01, 0x00, 0x12, 0x25, 0x00, 0x64, 0x80, 0x04, 0x01, 0x00, 0x00, 0x90, 0x44];
/// assert_eq!(protocol_from_atr(&cps4), Protocol::T1);
/// ```
pub fn protocol_from_atr(atr: &[u8]) -> Protocol {
    // ISO 7816-3 §8.2: T0 then TA1/TB1/TC1/TD1 as flagged, each TDi announcing the next group
    // and a protocol in its low nibble.
    let Some(&t0) = atr.get(1) else {
        return Protocol::Raw;
    };
    let mut y = t0 >> 4;
    let mut i = 2;
    let mut t1 = false;
    while y & 0x8 != 0 {
        i += (y & 0x7).count_ones() as usize; // TA, TB, TC present before TD
        let Some(&td) = atr.get(i) else { break };
        if td & 0x0F == 1 {
            t1 = true;
        }
        y = td >> 4;
        i += 1;
    }
    if t1 { Protocol::T1 } else { Protocol::T0 }
}

/// Controls a virtual card from the outside: pull it out, put it back, or reset it as another
/// program would.
#[derive(Clone)]
pub struct VirtualControl {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for VirtualControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VirtualControl")
            .field("state", &*lock(&self.shared.state))
            .finish()
    }
}

impl VirtualControl {
    /// Remove the card: channels get [`TransportError::CardRemoved`].
    pub fn remove(&self) {
        lock(&self.shared.card).power_off();
        lock(&self.shared.state).removed = true;
    }

    /// Insert the card again (powered up); existing channels must [`CardChannel::reconnect`].
    pub fn insert(&self) {
        lock(&self.shared.card).power_on();
        let mut state = lock(&self.shared.state);
        state.removed = false;
        state.insertions += 1;
    }

    /// Reset the card as another program would (`SCARD_RESET_CARD`): channels get
    /// [`TransportError::CardReset`] once, then go on.
    pub fn reset(&self) {
        lock(&self.shared.card).reset();
        lock(&self.shared.state).resets += 1;
    }

    /// Whether the card is in its reader (not [`VirtualControl::remove`]d).
    pub fn is_present(&self) -> bool {
        !lock(&self.shared.state).removed
    }

    /// How many times the card was inserted again: a removal and an insertion between two
    /// looks still count as a change, as pcscd's event counter makes them.
    pub fn insertions(&self) -> u64 {
        lock(&self.shared.state).insertions
    }

    /// Run `f` on the card itself (inspect or change its state).
    pub fn with_card<R>(&self, f: impl FnOnce(&mut dyn VirtualCard) -> R) -> R {
        let mut card = lock(&self.shared.card);
        f(&mut **card)
    }
}

/// An in-process [`CardChannel`] to a [`VirtualCard`].
///
/// ```
/// use cpx_apdu::Command;
/// use cpx_transport::CardChannel;
/// use cpx_transport_virtual::VirtualChannel;
///
/// struct Ok9000;
/// impl cpx_vpcd::VirtualCard for Ok9000 {
///     fn atr(&self) -> Vec<u8> { vec![0x3B, 0x02, 0x14, 0x00] }
///     fn transmit(&mut self, _apdu: &[u8]) -> Vec<u8> { vec![0x90, 0x00] }
/// }
///
/// let (mut channel, control) = VirtualChannel::new("virtual reader", Box::new(Ok9000));
/// assert!(channel.transmit(&Command::new(0x00, 0xA4, 0x04, 0x0C))?.is_success());
/// control.remove();
/// assert!(channel.transmit(&Command::new(0x00, 0xA4, 0x04, 0x0C)).is_err());
/// # Ok::<(), cpx_transport::TransportError>(())
/// ```
pub struct VirtualChannel {
    shared: Arc<Shared>,
    reader: String,
    atr: Vec<u8>,
    protocol: Protocol,
    policy: ExchangePolicy,
    seen_resets: u64,
    seen_insertions: u64,
}

impl std::fmt::Debug for VirtualChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VirtualChannel")
            .field("reader", &self.reader)
            .field("protocol", &self.protocol)
            .finish()
    }
}

impl VirtualChannel {
    /// A powered, inserted card in a reader called `reader`, and the handle that controls it.
    pub fn new(reader: impl Into<String>, mut card: Box<dyn VirtualCard>) -> (Self, VirtualControl) {
        card.power_on();
        let atr = card.atr();
        let shared = Arc::new(Shared {
            card: Mutex::new(card),
            state: Mutex::new(SlotState::default()),
        });
        let channel = VirtualChannel {
            shared: Arc::clone(&shared),
            reader: reader.into(),
            protocol: protocol_from_atr(&atr),
            atr,
            policy: ExchangePolicy::default(),
            seen_resets: 0,
            seen_insertions: 0,
        };
        (channel, VirtualControl { shared })
    }

    /// Another connection to the same card (another program, for concurrency tests).
    pub fn connect_again(&self) -> Result<Self, TransportError> {
        let state = lock(&self.shared.state);
        if state.removed {
            return Err(TransportError::NoCard(self.reader.clone()));
        }
        Ok(VirtualChannel {
            shared: Arc::clone(&self.shared),
            reader: self.reader.clone(),
            atr: self.atr.clone(),
            protocol: self.protocol,
            policy: self.policy,
            seen_resets: state.resets,
            seen_insertions: state.insertions,
        })
    }

    /// Removal and resets since we last looked, as PC/SC would report them.
    fn check(&mut self) -> Result<(), TransportError> {
        let state = lock(&self.shared.state);
        if state.removed || state.insertions != self.seen_insertions {
            return Err(TransportError::CardRemoved(self.reader.clone()));
        }
        if state.resets != self.seen_resets {
            self.seen_resets = state.resets;
            return Err(TransportError::CardReset(self.reader.clone()));
        }
        Ok(())
    }
}

struct Raw<'a> {
    card: &'a mut dyn VirtualCard,
    reader: &'a str,
    protocol: Protocol,
}

impl RawTransmit for Raw<'_> {
    fn transmit_raw(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        Ok(self.card.transmit(command))
    }
    fn protocol(&self) -> Protocol {
        self.protocol
    }
    fn reader(&self) -> &str {
        self.reader
    }
}

impl CardChannel for VirtualChannel {
    fn reader(&self) -> &str {
        &self.reader
    }
    fn atr(&self) -> &[u8] {
        &self.atr
    }
    fn protocol(&self) -> Protocol {
        self.protocol
    }
    fn policy(&self) -> ExchangePolicy {
        self.policy
    }
    fn set_policy(&mut self, policy: ExchangePolicy) {
        self.policy = policy;
    }

    fn transmit(&mut self, command: &Command) -> Result<Response, TransportError> {
        self.check()?;
        let mut card = lock(&self.shared.card);
        exchange(
            &mut Raw {
                card: &mut **card,
                reader: &self.reader,
                protocol: self.protocol,
            },
            command,
            &self.policy,
        )
    }

    fn transaction(&mut self) -> Result<Box<dyn CardTransaction + '_>, TransportError> {
        self.check()?;
        // Holding the card's lock for the whole transaction is what makes it exclusive.
        let card = lock(&self.shared.card);
        Ok(Box::new(VirtualTransaction {
            card,
            reader: &self.reader,
            protocol: self.protocol,
            policy: self.policy,
        }))
    }

    fn reconnect(&mut self, reset: bool) -> Result<(), TransportError> {
        let state = lock(&self.shared.state);
        if state.removed {
            return Err(TransportError::NoCard(self.reader.clone()));
        }
        self.seen_resets = state.resets;
        self.seen_insertions = state.insertions;
        drop(state);
        let mut card = lock(&self.shared.card);
        if reset {
            card.reset();
        }
        self.atr = card.atr();
        self.protocol = protocol_from_atr(&self.atr);
        Ok(())
    }

    /// A virtual reader has no control command, like vpcd.
    fn control(&mut self, _code: ControlCode, _input: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.check()?;
        Err(TransportError::ControlUnsupported(self.reader.clone()))
    }

    fn reader_features(&mut self) -> Result<ReaderFeatures, TransportError> {
        self.check()?;
        Ok(ReaderFeatures::none())
    }
}

struct VirtualTransaction<'a> {
    card: MutexGuard<'a, Box<dyn VirtualCard>>,
    reader: &'a str,
    protocol: Protocol,
    policy: ExchangePolicy,
}

impl CardTransaction for VirtualTransaction<'_> {
    fn transmit(&mut self, command: &Command) -> Result<Response, TransportError> {
        exchange(
            &mut Raw {
                card: &mut **self.card,
                reader: self.reader,
                protocol: self.protocol,
            },
            command,
            &self.policy,
        )
    }
    fn reader(&self) -> &str {
        self.reader
    }
    fn control(&mut self, _code: ControlCode, _input: &[u8]) -> Result<Vec<u8>, TransportError> {
        Err(TransportError::ControlUnsupported(self.reader.to_owned()))
    }
    fn reader_features(&mut self) -> Result<ReaderFeatures, TransportError> {
        Ok(ReaderFeatures::none())
    }
    fn end(mut self: Box<Self>, reset: bool) -> Result<(), TransportError> {
        if reset {
            self.card.reset();
        }
        Ok(())
    }
}
