//! [`CardChannel`] over PC/SC (pcsc-lite on Linux, through the `pcsc` crate).

use std::ffi::CString;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cpx_apdu::{Command, Response};
use pcsc::{Disposition, Protocols, ReaderState, Scope, ShareMode, State};

use crate::channel::{CardChannel, CardTransaction, Protocol, WireTap};
use crate::exchange::{RawTransmit, exchange};
use crate::features::{self, ControlCode, ReaderFeatures};
use crate::fork_guard;
use crate::turns::{Turn, Turns};
use crate::{ExchangePolicy, TransportError};
use zeroize::Zeroize;

/// A PC/SC context: the entry point to readers, cards and events.
///
/// ```no_run
/// let pcsc = cpx_transport::Pcsc::establish()?;
/// for reader in pcsc.readers()? {
///     println!("{}: {}", reader.name, reader.status);
/// }
/// # Ok::<(), cpx_transport::TransportError>(())
/// ```
#[derive(Clone)]
pub struct Pcsc {
    pub(crate) ctx: pcsc::Context,
    /// When a card connected through this context last made progress (see [`Pcsc::idle_for`]).
    activity: Arc<Activity>,
}

/// A timestamp shared by a context and its channels: milliseconds since
/// [`crate::since_start`]'s origin, updated when a transaction begins and when a command is
/// answered.
#[derive(Debug, Default)]
struct Activity(AtomicU64);

impl Activity {
    fn touch(&self) {
        let ms = u64::try_from(crate::since_start().as_millis()).unwrap_or(u64::MAX);
        self.0.store(ms, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        let last = Duration::from_millis(self.0.load(Ordering::Relaxed));
        crate::since_start().saturating_sub(last)
    }
}

impl std::fmt::Debug for Pcsc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pcsc")
    }
}

impl Pcsc {
    /// Connect to the PC/SC service (pcscd). Honours `PCSCLITE_CSOCK_NAME`.
    pub fn establish() -> Result<Self, TransportError> {
        let ctx = {
            let _pc = fork_guard::establishing();
            pcsc::Context::establish(Scope::User)
        }
        .map_err(|e| TransportError::from_pcsc("SCardEstablishContext", "", e))?;
        let activity = Arc::new(Activity::default());
        activity.touch();
        Ok(Self { ctx, activity })
    }

    /// How long since a card connected through this context last made progress: a transaction
    /// begun or a command answered (or since the context was made, or since [`Pcsc::connect`]).
    ///
    /// pcsc-lite's `SCardTransmit` has no timeout: a card (or reader) that stops answering keeps
    /// the calling thread inside it until the reader gives up. A caller that shares a card
    /// between threads uses this to tell a queue of quick operations from one that is stuck.
    ///
    /// ```no_run
    /// let pcsc = cpx_transport::Pcsc::establish()?;
    /// assert!(pcsc.idle_for() < std::time::Duration::from_secs(1));
    /// # Ok::<(), cpx_transport::TransportError>(())
    /// ```
    pub fn idle_for(&self) -> Duration {
        self.activity.idle_for()
    }

    /// Connect to the card in `reader`, in shared mode (other programs may use the card between our
    /// transactions), accepting T=0 or T=1 as the card offers.
    pub fn connect(&self, reader: &str) -> Result<PcscChannel, TransportError> {
        let name = reader_cstring(reader)?;
        let mut turns = Turns::new(reader);
        // pcscd holds SCardConnect while another program's transaction is open, and
        // SCardStatus fails (retried every 100 ms) while it is: a turn like a transaction's.
        let (card, (atr, protocol)) = {
            let mut turn = turns.take();
            let start = Instant::now();
            let card = {
                let _pc = fork_guard::enter();
                self.ctx.connect(&name, ShareMode::Shared, Protocols::ANY)
            }
            .map_err(|e| TransportError::from_pcsc("SCardConnect", reader, e))?;
            self.activity.touch();
            if start.elapsed() >= Duration::from_millis(50) {
                log::debug!("{reader}: SCardConnect took {:?}", start.elapsed());
            }
            turn.began();
            let status = read_status(&card, reader);
            drop(turn);
            match status {
                Ok(status) => (LeavingCard(Some(card)), status),
                Err(e) => {
                    drop(LeavingCard(Some(card)));
                    return Err(e);
                }
            }
        };
        Ok(PcscChannel {
            activity: Arc::clone(&self.activity),
            card,
            reader: reader.to_owned(),
            atr,
            protocol,
            policy: ExchangePolicy::default(),
            reset_pending: false,
            turns,
            recv: ReceiveBuffer::default(),
            features: None,
            tap: None,
        })
    }
}

/// The card's ATR and protocol, from `SCardStatus`.
fn read_status(card: &pcsc::Card, reader: &str) -> Result<(Vec<u8>, Protocol), TransportError> {
    let _pc = fork_guard::enter();
    let status = card
        .status2_owned()
        .map_err(|e| TransportError::from_pcsc("SCardStatus", reader, e))?;
    let protocol = match status.protocol2() {
        Some(pcsc::Protocol::T0) => Protocol::T0,
        Some(pcsc::Protocol::T1) => Protocol::T1,
        _ => Protocol::Raw,
    };
    Ok((status.atr().to_vec(), protocol))
}

pub(crate) fn reader_cstring(reader: &str) -> Result<CString, TransportError> {
    CString::new(reader).map_err(|_| TransportError::UnknownReader(reader.to_owned()))
}

/// A `pcsc::Card` that disconnects with `SCARD_LEAVE_CARD` when dropped.
///
/// The `pcsc` crate's own drop disconnects with `SCARD_RESET_CARD`, which would reset the card
/// under every other program using it (a browser's login gone because `cpx status` ran). The
/// card's security state is ours to clear explicitly: `cpx_card::Card` logs out on drop when it
/// verified a code.
struct LeavingCard(Option<pcsc::Card>);

impl std::ops::Deref for LeavingCard {
    type Target = pcsc::Card;
    fn deref(&self) -> &pcsc::Card {
        // Only `drop` takes the card out.
        self.0
            .as_ref()
            .unwrap_or_else(|| unreachable!("card used after disconnect"))
    }
}

impl std::ops::DerefMut for LeavingCard {
    fn deref_mut(&mut self) -> &mut pcsc::Card {
        self.0
            .as_mut()
            .unwrap_or_else(|| unreachable!("card used after disconnect"))
    }
}

impl Drop for LeavingCard {
    fn drop(&mut self) {
        let Some(card) = self.0.take() else { return };
        let _pc = fork_guard::enter();
        if let Err((_, e)) = card.disconnect(Disposition::LeaveCard) {
            // The handle is released by the pcsc crate's drop (with a reset) after this.
            log::debug!("SCardDisconnect(LEAVE_CARD): {e}");
        }
    }
}

/// How long a failed exchange waits for pcscd to report that the card left before the failure is
/// reported as what it is.
///
/// pcscd learns of a removal at its next poll of the reader: every 400 ms for vpcd and other
/// polled readers (CCID readers with an interrupt endpoint report at once), and later still on a
/// loaded machine. [`card_left`] waits for that *event*, so a card that really left costs only
/// pcscd's delay; this bound is what a card that is still there but gave no proper answer (mute,
/// hostile) costs before its error is reported. A fixed short poll (600 ms, before) turned slow
/// removals into CKR_DEVICE_ERROR under load; 3 s on a path that is already a failure is cheap.
const REMOVAL_CONFIRMATION: Duration = Duration::from_secs(3);

/// Whether our handle says the card left: `Some(true)` removed (or replaced, or the reader
/// gone), `Some(false)` another failure that is no removal, `None` still there as far as pcscd
/// knows.
fn handle_says_left(card: &pcsc::Card) -> Option<bool> {
    let _pc = fork_guard::enter();
    match card.status2_owned() {
        Err(pcsc::Error::RemovedCard | pcsc::Error::NoSmartcard | pcsc::Error::ReaderUnavailable) => {
            Some(true)
        }
        Err(_) => Some(false),
        Ok(_) => None,
    }
}

/// Whether a reader state shows no card, or no reader any more.
fn no_card(state: State) -> bool {
    state.intersects(State::EMPTY | State::UNKNOWN | State::UNAVAILABLE | State::IGNORE)
        || !state.contains(State::PRESENT)
}

/// Whether a failed exchange means the card left: true if pcscd reports, within
/// [`REMOVAL_CONFIRMATION`], that the card in `reader` was removed or replaced by another one.
///
/// It waits with `SCardGetStatusChange` on a context of its own: pcsc-lite holds a context's
/// lock for the whole of that call, so waiting on the channel's context would stall every other
/// card the process talks to through it.
fn card_left(card: &pcsc::Card, reader: &str) -> bool {
    let deadline = Instant::now() + REMOVAL_CONFIRMATION;
    if let Some(left) = handle_says_left(card) {
        return left;
    }
    let established = {
        let _pc = fork_guard::establishing();
        pcsc::Context::establish(Scope::User)
    };
    let (ctx, name) = match (established, reader_cstring(reader)) {
        (Ok(ctx), Ok(name)) => (ctx, name),
        (Err(e), _) => {
            // pcscd itself is gone (or full): no event will come; the failure stands.
            log::debug!("{reader}: no context to confirm a removal: {e}");
            return false;
        }
        (_, Err(_)) => return false,
    };
    // The reader's state now (UNAWARE: answered at once), then our handle's view again: a removal
    // pcscd processed before this read shows on the handle; one processed after it changes the
    // state we wait from (its event counter counts insertions and removals, so a swap shows too).
    let mut states = [ReaderState::new(name, State::UNAWARE)];
    let first = {
        let _pc = fork_guard::enter();
        ctx.get_status_change(Duration::ZERO, &mut states)
    };
    if let Err(e) = first {
        log::debug!("{reader}: SCardGetStatusChange while confirming a removal: {e}");
        return e == pcsc::Error::UnknownReader;
    }
    let start_count = states[0].event_count();
    loop {
        let [state] = &mut states;
        if no_card(state.event_state()) || state.event_count() != start_count {
            return true;
        }
        if let Some(left) = handle_says_left(card) {
            return left;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            log::debug!("{reader}: the card is still there after {REMOVAL_CONFIRMATION:?}");
            return false;
        }
        // Any other change (another program connecting, exclusive use ending) is no removal:
        // wait on from the state just seen.
        state.sync_current_state();
        let changed = {
            let _pc = fork_guard::enter();
            ctx.get_status_change(left, &mut states)
        };
        match changed {
            Ok(()) => {}
            Err(pcsc::Error::Timeout) => {
                log::debug!("{reader}: the card is still there after {REMOVAL_CONFIRMATION:?}");
                return handle_says_left(card).unwrap_or(false);
            }
            Err(pcsc::Error::UnknownReader) => return true,
            Err(e) => {
                log::debug!("{reader}: SCardGetStatusChange while confirming a removal: {e}");
                return false;
            }
        }
    }
}

/// Whether an exchange error may hide a removal (see [`card_left`]).
fn may_be_removal(e: &TransportError) -> bool {
    matches!(
        e,
        TransportError::MalformedResponse { .. } | TransportError::CardMute(_) | TransportError::Pcsc { .. }
    )
}

/// A shared PC/SC connection to one card. See [`CardChannel`].
pub struct PcscChannel {
    activity: Arc<Activity>,
    card: LeavingCard,
    reader: String,
    atr: Vec<u8>,
    protocol: Protocol,
    policy: ExchangePolicy,
    /// Another program reset the card while we were in a transaction; reconnect before going on.
    reset_pending: bool,
    /// Our turns on the card among the processes that use it (see `turns.rs`).
    turns: Turns,
    /// SCardTransmit's answer buffer, see [`ReceiveBuffer`].
    recv: ReceiveBuffer,
    /// The reader's features, once asked (the reader stays the same across reconnects).
    features: Option<ReaderFeatures>,
    /// Sees every APDU and answer ([`CardChannel::set_wire_tap`]).
    tap: Option<WireTap>,
}

/// The buffer `SCardTransmit` writes the card's answer into, allocated once per channel: large
/// enough for anything a card can send (an oversized answer is then the APDU layer's precise
/// "too long" error rather than PC/SC's "insufficient buffer"), which, zeroed afresh for each
/// APDU, was a fifth of a warm `pkcs11-tool -O` process's instructions (callgrind, issue 15).
/// What an answer wrote is wiped once it is copied out: answers may be decrypted secrets.
#[derive(Default)]
struct ReceiveBuffer(Vec<u8>);

impl ReceiveBuffer {
    /// Run `f` on the whole buffer; the bytes it reports written are wiped afterwards.
    fn with<T>(&mut self, f: impl FnOnce(&mut [u8]) -> (T, usize)) -> T {
        if self.0.is_empty() {
            self.0 = vec![0u8; pcsc::MAX_BUFFER_SIZE_EXTENDED];
        }
        let (r, written) = f(&mut self.0);
        self.0[..written.min(pcsc::MAX_BUFFER_SIZE_EXTENDED)].zeroize();
        r
    }
}

impl std::fmt::Debug for PcscChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcscChannel")
            .field("reader", &self.reader)
            .field("atr", &hex::encode_upper(&self.atr))
            .field("protocol", &self.protocol)
            .finish()
    }
}

impl PcscChannel {
    fn refresh_status(&mut self) -> Result<(), TransportError> {
        (self.atr, self.protocol) = read_status(&self.card, &self.reader)?;
        Ok(())
    }

    /// After a reset by another program, `SCardReconnect` (leaving the card as it is) makes the
    /// handle usable again; the card's security state is gone either way.
    fn recover_from_reset(&mut self) -> Result<(), TransportError> {
        let _pc = fork_guard::enter();
        self.card
            .reconnect(ShareMode::Shared, Protocols::ANY, Disposition::LeaveCard)
            .map_err(|e| TransportError::from_pcsc("SCardReconnect", &self.reader, e))?;
        self.reset_pending = false;
        self.refresh_status()
    }

    /// Run `call` in a transaction of its own, in our turn among the processes using the card
    /// (after [`PcscChannel::before_use`]).
    fn in_own_transaction<T>(
        &mut self,
        call: impl FnOnce(&mut Raw<'_>) -> Result<T, TransportError>,
    ) -> Result<T, TransportError> {
        let Self {
            card,
            reader,
            protocol,
            turns,
            activity,
            recv,
            tap,
            ..
        } = self;
        let mut turn = turns.take();
        let tx = begin_transaction(card, reader)
            .map_err(|e| TransportError::from_pcsc("SCardBeginTransaction", reader, e))?;
        turn.began();
        activity.touch();
        let result = call(&mut Raw {
            card: &tx,
            reader,
            protocol: *protocol,
            activity,
            recv,
            tap: tap.as_ref(),
        });
        // SCardEndTransaction, then the turn is over.
        {
            let _pc = fork_guard::enter();
            drop(tx);
        }
        drop(turn);
        result
    }

    /// A failed control command: a reset by another program is recovered from as after a
    /// transmit; nothing else is taken for a removal (a reader without the command answers at
    /// once, and must not cost [`card_left`]'s wait).
    fn after_control_error(&mut self, e: TransportError) -> TransportError {
        match e {
            TransportError::CardReset(_) => self.after_error(e),
            e => e,
        }
    }

    fn before_use(&mut self) -> Result<(), TransportError> {
        if self.reset_pending {
            self.recover_from_reset()?;
        }
        Ok(())
    }

    /// Turn "reset by someone else" into: reconnect now, then report [`TransportError::CardReset`].
    /// Turn a command that got no proper answer into [`TransportError::CardRemoved`] when the
    /// card turns out to have left: a card pulled out in the middle of a command reaches us as a
    /// failed or empty exchange first, and as a removal only at pcscd's next poll of the reader.
    fn after_error(&mut self, e: TransportError) -> TransportError {
        match e {
            TransportError::CardReset(_) => {
                self.reset_pending = true;
                if let Err(again) = self.recover_from_reset() {
                    log::debug!("{}: reconnect after reset failed: {again}", self.reader);
                }
                e
            }
            TransportError::MalformedResponse { .. }
            | TransportError::CardMute(_)
            | TransportError::Pcsc { .. } => {
                if card_left(&self.card, &self.reader) {
                    log::debug!("{}: the card left during the command ({e})", self.reader);
                    TransportError::CardRemoved(self.reader.clone())
                } else {
                    e
                }
            }
            e => e,
        }
    }
}

/// `SCardBeginTransaction`; a long wait (another program's transaction, pcsc-lite's 200 ms
/// polling) is logged at debug level.
fn begin_transaction<'a>(
    card: &'a mut pcsc::Card,
    reader: &str,
) -> Result<pcsc::Transaction<'a>, pcsc::Error> {
    let start = Instant::now();
    let tx = {
        let _pc = fork_guard::enter();
        card.transaction()
    };
    if start.elapsed() >= Duration::from_millis(50) {
        log::debug!("{reader}: SCardBeginTransaction took {:?}", start.elapsed());
    }
    tx
}

struct Raw<'a> {
    card: &'a pcsc::Card,
    reader: &'a str,
    protocol: Protocol,
    activity: &'a Activity,
    recv: &'a mut ReceiveBuffer,
    tap: Option<&'a WireTap>,
}

impl Raw<'_> {
    /// `SCardControl`; the answer is wiped from the receive buffer once copied out.
    fn control(&mut self, code: ControlCode, input: &[u8]) -> Result<Vec<u8>, TransportError> {
        if input.len() > pcsc::MAX_BUFFER_SIZE_EXTENDED {
            // What pcsc-lite's client answers too (and the pcsc crate would assert on > 4 GiB).
            return Err(TransportError::Pcsc {
                call: "SCardControl",
                source: pcsc::Error::InsufficientBuffer,
            });
        }
        let card = self.card;
        let r = self.recv.with(|buf| {
            let _pc = fork_guard::enter();
            match card.control(code.0.into(), input, buf) {
                Ok(answer) => (Ok(answer.to_vec()), answer.len()),
                Err(e) => (Err(e), 0),
            }
        });
        let result = r.map_err(|e| TransportError::from_pcsc("SCardControl", self.reader, e));
        crate::trace::control(self.reader, code, input.len(), &result);
        let answer = result?;
        self.activity.touch();
        Ok(answer)
    }
}

impl RawTransmit for Raw<'_> {
    fn transmit_raw(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        let card = self.card;
        let r = self.recv.with(|buf| {
            let _pc = fork_guard::enter();
            match card.transmit(command, buf) {
                Ok(answer) => (Ok(answer.to_vec()), answer.len()),
                Err(e) => (Err(e), 0),
            }
        });
        let r = r.map_err(|e| TransportError::from_pcsc("SCardTransmit", self.reader, e))?;
        self.activity.touch();
        if let Some(tap) = self.tap {
            tap(command, &r);
        }
        Ok(r)
    }
    fn protocol(&self) -> Protocol {
        self.protocol
    }
    fn reader(&self) -> &str {
        self.reader
    }
}

impl CardChannel for PcscChannel {
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
        self.before_use()?;
        let policy = self.policy;
        // A GET RESPONSE chain must not be interleaved with another program's APDUs.
        self.in_own_transaction(|raw| exchange(raw, command, &policy))
            .map_err(|e| self.after_error(e))
    }

    fn transaction(&mut self) -> Result<Box<dyn CardTransaction + '_>, TransportError> {
        self.before_use()?;
        let Self {
            card,
            reader,
            protocol,
            policy,
            reset_pending,
            turns,
            activity,
            recv,
            features,
            tap,
            ..
        } = self;
        let mut turn = turns.take();
        match begin_transaction(card, reader) {
            Ok(tx) => {
                turn.began();
                activity.touch();
                Ok(Box::new(PcscTransaction {
                    tx: EndingTransaction(Some(tx)),
                    turn,
                    activity,
                    reader,
                    protocol: *protocol,
                    policy: *policy,
                    reset_pending,
                    recv,
                    features,
                    tap: tap.as_ref(),
                }))
            }
            Err(e) => {
                let e = TransportError::from_pcsc("SCardBeginTransaction", reader, e);
                if matches!(e, TransportError::CardReset(_)) {
                    // Reconnected before the next use; the caller restarts its operation.
                    *reset_pending = true;
                }
                Err(e)
            }
        }
    }

    fn reconnect(&mut self, reset: bool) -> Result<(), TransportError> {
        let disposition = if reset {
            Disposition::ResetCard
        } else {
            Disposition::LeaveCard
        };
        let _pc = fork_guard::enter();
        self.card
            .reconnect(ShareMode::Shared, Protocols::ANY, disposition)
            .map_err(|e| TransportError::from_pcsc("SCardReconnect", &self.reader, e))?;
        self.reset_pending = false;
        self.refresh_status()
    }

    fn control(&mut self, code: ControlCode, input: &[u8]) -> Result<Vec<u8>, TransportError> {
        // pcsc-lite refuses SCardControl on a card another program holds in a transaction
        // (sharing violation): ours waits for its turn instead, as a transmit does.
        self.before_use()?;
        self.in_own_transaction(|raw| raw.control(code, input))
            .map_err(|e| self.after_control_error(e))
    }

    fn reader_features(&mut self) -> Result<ReaderFeatures, TransportError> {
        if let Some(known) = &self.features {
            return Ok(known.clone());
        }
        let asked = self.control(ControlCode::GET_FEATURE_REQUEST, &[]);
        let found = features::from_answer(&self.reader, asked)?;
        self.features = Some(found.clone());
        Ok(found)
    }

    fn set_wire_tap(&mut self, tap: Option<WireTap>) {
        self.tap = tap;
    }
}

/// An exclusive PC/SC transaction (`SCardBeginTransaction` … `SCardEndTransaction`).
struct PcscTransaction<'a> {
    tx: EndingTransaction<'a>,
    /// Declared after `tx`: dropped after it, once `SCardEndTransaction` is done.
    turn: Turn<'a>,
    reader: &'a str,
    protocol: Protocol,
    policy: ExchangePolicy,
    reset_pending: &'a mut bool,
    activity: &'a Activity,
    recv: &'a mut ReceiveBuffer,
    features: &'a mut Option<ReaderFeatures>,
    tap: Option<&'a WireTap>,
}

/// A `pcsc::Transaction` whose `SCardEndTransaction` (at drop, or [`EndingTransaction::end`]) is
/// registered with [`fork_guard`] like every other PC/SC call.
struct EndingTransaction<'a>(Option<pcsc::Transaction<'a>>);

impl EndingTransaction<'_> {
    fn card(&self) -> &pcsc::Card {
        match &self.0 {
            Some(tx) => tx,
            None => unreachable!("transaction used after its end"),
        }
    }

    fn end(mut self, disposition: Disposition) -> Result<(), pcsc::Error> {
        let Some(tx) = self.0.take() else { return Ok(()) };
        let _pc = fork_guard::enter();
        tx.end(disposition).map_err(|(_, e)| e)
    }
}

impl Drop for EndingTransaction<'_> {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _pc = fork_guard::enter();
            drop(tx);
        }
    }
}

impl CardTransaction for PcscTransaction<'_> {
    fn transmit(&mut self, command: &Command) -> Result<Response, TransportError> {
        let result = exchange(
            &mut Raw {
                card: self.tx.card(),
                reader: self.reader,
                protocol: self.protocol,
                activity: self.activity,
                recv: &mut *self.recv,
                tap: self.tap,
            },
            command,
            &self.policy,
        );
        match result {
            Err(TransportError::CardReset(_)) => {
                // The channel reconnects as soon as this transaction is over.
                *self.reset_pending = true;
                result
            }
            Err(e) if may_be_removal(&e) && card_left(self.tx.card(), self.reader) => {
                log::debug!("{}: the card left during the command ({e})", self.reader);
                Err(TransportError::CardRemoved(self.reader.to_owned()))
            }
            result => result,
        }
    }

    fn reader(&self) -> &str {
        self.reader
    }

    fn control(&mut self, code: ControlCode, input: &[u8]) -> Result<Vec<u8>, TransportError> {
        let result = Raw {
            card: self.tx.card(),
            reader: self.reader,
            protocol: self.protocol,
            activity: self.activity,
            recv: &mut *self.recv,
            tap: self.tap,
        }
        .control(code, input);
        if matches!(result, Err(TransportError::CardReset(_))) {
            // The channel reconnects as soon as this transaction is over.
            *self.reset_pending = true;
        }
        result
    }

    fn reader_features(&mut self) -> Result<ReaderFeatures, TransportError> {
        if let Some(known) = &*self.features {
            return Ok(known.clone());
        }
        let asked = self.control(ControlCode::GET_FEATURE_REQUEST, &[]);
        let found = features::from_answer(self.reader, asked)?;
        *self.features = Some(found.clone());
        Ok(found)
    }

    fn end(self: Box<Self>, reset: bool) -> Result<(), TransportError> {
        let disposition = if reset {
            Disposition::ResetCard
        } else {
            Disposition::LeaveCard
        };
        let PcscTransaction { tx, turn, reader, .. } = *self;
        let ended = tx
            .end(disposition)
            .map_err(|e| TransportError::from_pcsc("SCardEndTransaction", reader, e));
        // The card is free: the next process may take its turn.
        drop(turn);
        ended
    }
}

#[cfg(test)]
mod tests {
    use super::ReceiveBuffer;

    #[test]
    fn an_answer_does_not_outlive_its_copy_in_the_receive_buffer() {
        let mut recv = ReceiveBuffer::default();
        let copied = recv.with(|buf| {
            buf[..4].copy_from_slice(b"\x12\x34\x90\x00");
            (buf[..4].to_vec(), 4)
        });
        assert_eq!(copied, b"\x12\x34\x90\x00");
        assert_eq!(
            recv.0.len(),
            pcsc::MAX_BUFFER_SIZE_EXTENDED,
            "sized once, for any answer"
        );
        assert!(recv.0.iter().all(|b| *b == 0), "the answer's bytes are wiped");
        // A written length past the end (a misreporting driver) is not a panic.
        recv.with(|_| ((), usize::MAX));
    }
}
