//! Slots: one per PC/SC reader, IDs stable for the life of the process; C_GetSlotList,
//! C_GetSlotInfo (no APDU: PC/SC reader state only), C_WaitForSlotEvent.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, TryLockError};
use std::time::{Duration, Instant};

use cpx_card::{Card, CardError};
use cpx_transport::{ReaderEvent, TransportError};
use cryptoki_sys::*;

use crate::cache::TokenCache;
use crate::error::{Error, Result, ck, token_lost};
use crate::readers::Pcsc;
use crate::state::{Module, lock};
use crate::token::Token;

/// The minimum interval between two PC/SC polls made by session calls.
pub const SESSION_POLL: Duration = Duration::from_millis(100);

/// How long a card operation may go without any progress (no transaction begun, no command
/// answered) before the calls waiting for its slot give up with CKR_DEVICE_ERROR.
///
/// pcsc-lite's `SCardTransmit` has no timeout: a card that stops answering keeps the thread that
/// sent the command inside pcsc-lite until the reader gives up (a CCID reader after the card's
/// waiting time; a reader without a timeout, never). That thread cannot be freed, but nothing
/// else waits on it for longer than this: the other slots never do (each has its own PC/SC
/// context), slot-level queries answer from what is known (C_GetSlotList, C_GetSlotInfo,
/// C_GetSessionInfo, and C_GetTokenInfo once the token was read), and the calls that need this
/// slot's card fail after this bound. Operations that merely queue behind each other keep
/// making progress and are never cut short, however long the queue.
pub const STUCK_AFTER: Duration = Duration::from_secs(10);

/// How often a call waiting for a busy slot looks whether the card operation is stuck.
const STUCK_POLL: Duration = Duration::from_millis(250);

/// Who is logged in on a slot (shared by all its sessions).
#[derive(Default, Clone, Copy, PartialEq, Eq, Debug)]
pub enum Login {
    /// Nobody.
    #[default]
    Public,
    /// The holder (C_Login CKU_USER with the PIN).
    User,
    /// The security officer: the PUK was verified on the card (C_InitPIN then unblocks with
    /// the PUK already verified, spec §3.2; the PUK is not kept).
    So,
}

impl Login {
    fn to_u8(self) -> u8 {
        match self {
            Login::Public => 0,
            Login::User => 1,
            Login::So => 2,
        }
    }

    fn from_u8(v: u8) -> Login {
        match v {
            1 => Login::User,
            2 => Login::So,
            _ => Login::Public,
        }
    }
}

/// A slot's mutable state.
#[derive(Default)]
pub struct SlotState {
    /// PC/SC shows a card in the reader (as of the last refresh; copied from the slot's
    /// lock-free view whenever the lock is taken).
    pub card_present: bool,
    /// The opened CPx card, once needed.
    pub token: Option<Token>,
    /// Bumped whenever the token goes away; sessions remember the epoch they were opened in.
    pub epoch: u64,
    /// Login state.
    pub login: Login,
    /// When the card last confirmed the login (a private operation done, or the PIN's state
    /// read): C_GetSessionInfo checks the card again when this is older than
    /// [`LOGIN_CHECK_AFTER`].
    pub login_confirmed: Option<Instant>,
    /// This slot's own PC/SC context (shared with the [`Slot`] only to read its activity).
    context: Arc<Mutex<Option<Pcsc>>>,
}

/// How old the last confirmation of a login may be before C_GetSessionInfo asks the card whether
/// its PIN is still verified (another program may have logged the card out). NSS asks
/// C_GetSessionInfo at most once a second per slot before using a key, and prompts for the PIN
/// only when it answers a public session.
pub const LOGIN_CHECK_AFTER: Duration = Duration::from_secs(1);

/// Milliseconds since the module's time origin (0 is never returned: it means "free").
fn now_ms() -> u64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    let base = *BASE.get_or_init(Instant::now);
    u64::try_from(base.elapsed().as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// One reader.
pub struct Slot {
    /// Slot ID (index in the module's table).
    pub id: CK_SLOT_ID,
    /// PC/SC reader name.
    pub reader: String,
    /// Card, login, objects: use [`Slot::state`].
    inner: Mutex<SlotState>,
    /// Lock releases, counted, for the calls waiting in [`Slot::state`].
    released: Mutex<u64>,
    released_cv: Condvar,
    /// When the current holder of `inner` took it ([`now_ms`]; 0 = free).
    held_since: AtomicU64,
    /// PC/SC reported a removal while the slot was busy: drop the token at the next lock.
    changed: AtomicBool,
    /// PC/SC presence, updated by every refresh whether the slot is busy or not.
    reader_present: AtomicBool,
    card_present: AtomicBool,
    /// The login state and token epoch as the last holder of the lock left them, for the
    /// queries that must not wait for a card operation (C_GetSessionInfo).
    login_view: AtomicU8,
    epoch_view: AtomicU64,
    /// C_GetTokenInfo's last answer, for a slot busy with a card operation.
    info_cache: Mutex<Option<CK_TOKEN_INFO>>,
    /// The slot's PC/SC context (see [`SlotState`]).
    context: Arc<Mutex<Option<Pcsc>>>,
}

/// The locked state of a slot; publishes the login state and epoch when released.
pub struct SlotGuard<'a> {
    slot: &'a Slot,
    st: Option<MutexGuard<'a, SlotState>>,
}

impl Deref for SlotGuard<'_> {
    type Target = SlotState;
    fn deref(&self) -> &SlotState {
        match &self.st {
            Some(g) => g,
            None => unreachable!("slot state used after release"),
        }
    }
}

impl DerefMut for SlotGuard<'_> {
    fn deref_mut(&mut self) -> &mut SlotState {
        match &mut self.st {
            Some(g) => g,
            None => unreachable!("slot state used after release"),
        }
    }
}

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        if let Some(g) = self.st.take() {
            self.slot.login_view.store(g.login.to_u8(), Ordering::SeqCst);
            self.slot.epoch_view.store(g.epoch, Ordering::SeqCst);
            self.slot.held_since.store(0, Ordering::SeqCst);
            // Released before the waiters are told, so that their next try succeeds.
            drop(g);
        }
        *lock(&self.slot.released) += 1;
        self.slot.released_cv.notify_all();
    }
}

impl Slot {
    fn new(id: CK_SLOT_ID, reader: String) -> Slot {
        let context = Arc::new(Mutex::new(None));
        Slot {
            id,
            reader,
            inner: Mutex::new(SlotState {
                context: Arc::clone(&context),
                ..SlotState::default()
            }),
            released: Mutex::new(0),
            released_cv: Condvar::new(),
            held_since: AtomicU64::new(0),
            changed: AtomicBool::new(false),
            reader_present: AtomicBool::new(false),
            card_present: AtomicBool::new(false),
            login_view: AtomicU8::new(0),
            epoch_view: AtomicU64::new(0),
            info_cache: Mutex::new(None),
            context,
        }
    }

    fn guard<'a>(&'a self, g: MutexGuard<'a, SlotState>) -> SlotGuard<'a> {
        self.held_since.store(now_ms(), Ordering::SeqCst);
        let mut guard = SlotGuard {
            slot: self,
            st: Some(g),
        };
        if self.changed.swap(false, Ordering::SeqCst) {
            guard.drop_token();
        }
        guard.card_present = self.card_present.load(Ordering::SeqCst);
        guard
    }

    /// Lock the slot's state, applying a removal seen meanwhile. Waits while another call
    /// works on the card, and gives up with CKR_DEVICE_ERROR only when that call has made no
    /// progress for [`STUCK_AFTER`] (a card that stopped answering).
    pub fn state(&self) -> Result<SlotGuard<'_>> {
        loop {
            let seen = *lock(&self.released);
            match self.inner.try_lock() {
                Ok(g) => return Ok(self.guard(g)),
                Err(TryLockError::Poisoned(p)) => return Ok(self.guard(p.into_inner())),
                Err(TryLockError::WouldBlock) => {}
            }
            if self.stuck() {
                log::warn!(
                    "{}: a card operation has made no progress for {STUCK_AFTER:?}: giving up",
                    self.reader
                );
                return ck(CKR_DEVICE_ERROR);
            }
            let released = lock(&self.released);
            if *released == seen {
                drop(self.released_cv.wait_timeout(released, STUCK_POLL));
            }
        }
    }

    /// The slot's state if nobody works on it right now.
    pub fn try_state(&self) -> Option<SlotGuard<'_>> {
        match self.inner.try_lock() {
            Ok(g) => Some(self.guard(g)),
            Err(TryLockError::Poisoned(p)) => Some(self.guard(p.into_inner())),
            Err(TryLockError::WouldBlock) => None,
        }
    }

    /// Whether the call holding the slot has been at it, without progress on the card, for
    /// longer than [`STUCK_AFTER`].
    fn stuck(&self) -> bool {
        let since = self.held_since.load(Ordering::SeqCst);
        if since == 0 || now_ms().saturating_sub(since) < STUCK_AFTER.as_millis() as u64 {
            return false;
        }
        lock(&self.context)
            .as_ref()
            .is_some_and(|p| p.idle_for() >= STUCK_AFTER)
    }

    /// Whether PC/SC shows a card (no lock, no PC/SC call).
    pub fn card_present(&self) -> bool {
        self.reader_present.load(Ordering::SeqCst) && self.card_present.load(Ordering::SeqCst)
    }

    /// The login state as the last call that held the slot left it (no lock).
    pub fn login_view(&self) -> Login {
        Login::from_u8(self.login_view.load(Ordering::SeqCst))
    }

    /// The token epoch as the last call that held the slot left it (no lock).
    pub fn epoch_view(&self) -> u64 {
        self.epoch_view.load(Ordering::SeqCst)
    }

    /// Remember C_GetTokenInfo's answer for when the slot is busy.
    pub fn remember_info(&self, info: &CK_TOKEN_INFO) {
        *lock(&self.info_cache) = Some(*info);
    }

    /// C_GetTokenInfo's last answer (forgotten when the card goes).
    pub fn remembered_info(&self) -> Option<CK_TOKEN_INFO> {
        *lock(&self.info_cache)
    }

    /// PC/SC says the card left (or pcscd went): whoever holds the slot next drops the token.
    fn mark_changed(&self) {
        self.changed.store(true, Ordering::SeqCst);
        *lock(&self.info_cache) = None;
    }
}

impl SlotState {
    /// Forget the token: login state, objects, sessions (through the epoch).
    pub fn drop_token(&mut self) {
        if self.token.take().is_some() {
            log::debug!("token dropped (epoch {})", self.epoch);
        }
        self.epoch += 1;
        self.login = Login::Public;
        self.login_confirmed = None;
    }

    /// Whether the user is logged in.
    pub fn user_logged_in(&self) -> bool {
        matches!(self.login, Login::User)
    }

    /// This slot's PC/SC context, established on first need (or again after pcscd was lost).
    fn context(&self) -> Result<Pcsc> {
        let mut g = lock(&self.context);
        if g.is_none() {
            *g = Some(Pcsc::establish().map_err(|e| {
                log::debug!("PC/SC context for a slot: {e}");
                Error::Ck(CKR_DEVICE_ERROR)
            })?);
        }
        g.clone().ok_or(Error::Ck(CKR_DEVICE_ERROR))
    }

    /// Drop the slot's PC/SC context (pcscd was lost: the next use establishes a new one).
    fn forget_context(&self) {
        *lock(&self.context) = None;
    }

    /// The token, opening the card on first use (this is where connect-time APDUs happen).
    pub fn token(&mut self, module: &Module, reader: &str) -> Result<&mut Token> {
        if !self.card_present {
            return ck(CKR_TOKEN_NOT_PRESENT);
        }
        if self.token.is_none() {
            let pcsc = self.context()?;
            let channel = pcsc.connect(reader).map_err(|e| match e {
                TransportError::NoService => {
                    self.forget_context();
                    Error::Ck(CKR_TOKEN_NOT_PRESENT)
                }
                TransportError::NoCard(_) | TransportError::CardRemoved(_) => {
                    Error::Ck(CKR_TOKEN_NOT_PRESENT)
                }
                TransportError::CardMute(_) => Error::Ck(CKR_TOKEN_NOT_RECOGNIZED),
                other => Error::Card(CardError::from(other)),
            })?;
            let open_error = |e: CardError| match e {
                // Pulled out while we were opening it: there is no token (yet) to have lost.
                CardError::CardRemoved { .. }
                | CardError::Transport(
                    TransportError::CardRemoved(_)
                    | TransportError::NoCard(_)
                    | TransportError::ReaderUnavailable(_),
                ) => Error::Ck(CKR_TOKEN_NOT_PRESENT),
                other @ CardError::Transport(_) => Error::Card(other),
                // Any other answer than a CPx card's at connect — a refused selection (a blank
                // "muette" card with a CPx ATR, spec §6.1 row 1201), malformed EF.SN.ICC or
                // PKCS#15 files, unexpected status words — is a token we do not recognise
                // (C_GetTokenInfo's code for it, PKCS#11 2.40 §5.5).
                other => {
                    log::info!("{reader}: not recognised as a CPx token: {other}");
                    Error::Ck(CKR_TOKEN_NOT_RECOGNIZED)
                }
            };
            // Identify the card (serial), check its disk cache's freshness, then open it with
            // the PKCS#15 files cached for it: a warm open reads EF.SN.ICC (and EF_ACTUA on a
            // CPS3 contact card) and nothing else.
            let mut identified = Card::identify(channel).map_err(open_error)?;
            let cache = module
                .cache
                .clone()
                .and_then(|s| TokenCache::open(s, &mut identified));
            // Nothing else is read at open: TokenInfo when C_GetTokenInfo asks for it, the
            // other PKCS#15 files when an operation needs them (issue 15).
            let card = identified
                .open_lazy(cache.as_ref().and_then(TokenCache::seed))
                .map_err(open_error)?;
            log::info!("{reader}: card {} ({})", card.serial(), card.model());
            self.token = Some(Token::new(card, cache));
        }
        self.token.as_mut().ok_or(Error::Ck(CKR_TOKEN_NOT_PRESENT))
    }

    /// Run a card operation; a lost token (removed, replaced, reset with the PIN lost) drops
    /// the token and its login state.
    pub fn with_token<T>(
        &mut self,
        module: &Module,
        reader: &str,
        f: impl FnOnce(&mut Token, &Login) -> Result<T>,
    ) -> Result<T> {
        let login = std::mem::take(&mut self.login);
        let mut card_logged_out = false;
        let r = match self.token(module, reader) {
            Ok(t) => {
                let r = f(t, &login);
                if r.is_ok() {
                    t.note_files();
                }
                // The card layer forgets our PIN verification when the card shows it gone
                // (`6982` to a private operation, or the PIN's state read): another program
                // logged the card out or reset it. The whole slot is public from then on.
                card_logged_out = matches!(login, Login::User) && !t.card.pin_verified();
                r
            }
            Err(e) => Err(e),
        };
        self.login = login;
        if card_logged_out {
            log::info!("{reader}: the card no longer has our PIN verified: every session is public again");
            self.login = Login::Public;
            self.login_confirmed = None;
        }
        if let Err(e) = &r
            && token_lost(e)
        {
            log::info!("{reader}: token lost ({e})");
            if matches!(e, Error::Card(CardError::Transport(TransportError::NoService))) {
                self.forget_context();
            }
            self.drop_token();
        }
        r
    }
}

/// C_GetSlotInfo's slotDescription: the reader name blank-padded to 64; longer names become
/// the first 30 characters + "..." + the last 31 (spec §5.2).
pub fn slot_description(reader: &str) -> String {
    // Reader names come from PC/SC drivers: controls never reach the caller's field.
    let reader = cpx_card::text::display_safe(reader);
    let reader = reader.as_ref();
    let chars: Vec<char> = reader.chars().collect();
    if reader.len() <= 64 {
        return reader.to_owned();
    }
    let head: String = chars.iter().take(30).collect();
    let tail: String = chars[chars.len().saturating_sub(31)..].iter().collect();
    let s = format!("{head}...{tail}");
    // Keep within 64 bytes even with multi-byte characters.
    let mut out = String::new();
    for c in s.chars() {
        if out.len() + c.len_utf8() > 64 {
            break;
        }
        out.push(c);
    }
    out
}

/// Copy `s` into a blank-padded fixed field (truncated at a character boundary), controls
/// replaced by U+FFFD ([`cpx_card::text::display_safe`]; card text is already made safe where
/// it is parsed: this is the last guard of every CK_*_INFO field).
pub fn pad<const N: usize>(s: &str) -> [CK_UTF8CHAR; N] {
    let mut out = [b' '; N];
    let mut n = 0;
    for c in cpx_card::text::display_safe(s).chars() {
        let mut buf = [0u8; 4];
        let b = c.encode_utf8(&mut buf).as_bytes();
        if n + b.len() > N {
            break;
        }
        out[n..n + b.len()].copy_from_slice(b);
        n += b.len();
    }
    out
}

impl Module {
    /// Re-read the reader list and card presence (PC/SC only, no APDU). New readers get new
    /// slots; a reader that went keeps its slot, empty. A slot busy with a card operation is
    /// skipped: that operation sees a removal itself.
    pub fn refresh_slots(&self) -> Result<()> {
        self.refresh(None)
    }

    /// [`Module::refresh_slots`] unless done less than [`SESSION_POLL`] ago: session calls
    /// (sign loops) do not hammer pcscd; a removal in between is seen by the card operation.
    pub fn refresh_slots_throttled(&self) -> Result<()> {
        self.refresh(Some(SESSION_POLL))
    }

    fn refresh(&self, throttle: Option<Duration>) -> Result<()> {
        let (events, readers) = {
            let mut g = lock(&self.monitor);
            if let Some(t) = throttle {
                let mut last = lock(&self.last_poll);
                if last.is_some_and(|l| l.elapsed() < t) {
                    return Ok(());
                }
                *last = Some(Instant::now());
            }
            if g.is_none() {
                let Some(pcsc) = self.pcsc() else {
                    // No pcscd (never there, or gone since the monitor failed): no card handle
                    // of ours can be alive, whatever error told us first.
                    drop(g);
                    self.forget_every_token();
                    return Ok(());
                };
                *g = pcsc.monitor().ok();
            }
            let Some(monitor) = g.as_mut() else {
                return Ok(());
            };
            // Zero timeout: only what PC/SC already knows. The monitor compares event counters,
            // so a removal followed by an insertion between two calls is seen too.
            let events = match monitor.wait(Some(Duration::ZERO)) {
                Ok(e) => e,
                Err(TransportError::Timeout) => Vec::new(),
                Err(e) => {
                    *g = None;
                    self.pcsc_failed(&e);
                    drop(g);
                    if e.is_service_lost() {
                        // pcscd is gone, and with it every card handle: no slot holds a token
                        // any more (their IDs stay); the next refresh finds the readers again.
                        log::warn!("the PC/SC service stopped: every token is gone");
                        self.forget_every_token();
                        return Ok(());
                    }
                    return Err(Error::Card(e.into()));
                }
            };
            if !events.is_empty() {
                log::debug!("PC/SC events: {events:?}");
            }
            let readers: Vec<(String, bool)> = monitor
                .readers()
                .map(|(name, status)| (name.to_owned(), status.has_card()))
                .collect();
            (events, readers)
        };
        let mut slots = lock(&self.slots);
        for (name, _) in &readers {
            if !slots.iter().any(|s| &s.reader == name) {
                let id = slots.len() as CK_SLOT_ID;
                log::debug!("slot {id}: reader {name:?}");
                slots.push(Arc::new(Slot::new(id, name.clone())));
            }
        }
        for slot in slots.iter() {
            let removed = events.iter().any(|e| {
                matches!(e, ReaderEvent::CardRemoved { reader } | ReaderEvent::ReaderRemoved { reader } if *reader == slot.reader)
            });
            let info = readers.iter().find(|(name, _)| *name == slot.reader);
            let present = info.is_some_and(|(_, has)| *has);
            let was_present = slot.card_present.swap(present, Ordering::SeqCst);
            slot.reader_present.store(info.is_some(), Ordering::SeqCst);
            if removed || (was_present && !present) {
                log::info!("{}: card removed", slot.reader);
                slot.mark_changed();
            }
            // A free slot applies the change now (taking the lock copies the presence and drops
            // a token marked changed); a busy one when its operation ends: never waited for.
            drop(slot.try_state());
        }
        Ok(())
    }

    /// Every slot empty, its token and sessions dropped (a slot busy with an operation is marked
    /// changed: it drops its token as soon as it is free).
    fn forget_every_token(&self) {
        for slot in lock(&self.slots).iter() {
            slot.card_present.store(false, Ordering::SeqCst);
            slot.reader_present.store(false, Ordering::SeqCst);
            slot.mark_changed();
            *lock(&slot.context) = None;
            drop(slot.try_state());
        }
    }

    /// The slot with this ID.
    pub fn slot(&self, id: CK_SLOT_ID) -> Result<Arc<Slot>> {
        usize::try_from(id)
            .ok()
            .and_then(|i| lock(&self.slots).get(i).cloned())
            .ok_or(Error::Ck(CKR_SLOT_ID_INVALID))
    }

    /// C_GetSlotList: PC/SC's view only, never waiting for a card operation.
    pub fn slot_list(&self, token_present: bool) -> Result<Vec<CK_SLOT_ID>> {
        self.refresh_slots()?;
        let slots: Vec<Arc<Slot>> = lock(&self.slots).clone();
        Ok(slots
            .iter()
            .filter(|s| !token_present || s.card_present())
            .map(|s| s.id)
            .collect())
    }

    /// C_GetSlotInfo (no APDU, never waiting for a card operation).
    pub fn slot_info(&self, id: CK_SLOT_ID) -> Result<CK_SLOT_INFO> {
        let slot = self.slot(id)?;
        self.refresh_slots()?;
        let mut flags = CKF_REMOVABLE_DEVICE | CKF_HW_SLOT;
        if slot.card_present() {
            flags |= CKF_TOKEN_PRESENT;
        }
        Ok(CK_SLOT_INFO {
            slotDescription: pad::<64>(&slot_description(&slot.reader)),
            manufacturerID: [b' '; 32],
            flags,
            hardwareVersion: CK_VERSION { major: 0, minor: 0 },
            firmwareVersion: CK_VERSION { major: 0, minor: 0 },
        })
    }

    /// Record the current card presence of every reader as "already reported".
    pub fn snapshot_events(&self) {
        if let Ok(Some(readers)) = self.with_pcsc(|p| p.readers()) {
            let mut snap = lock(&self.event_snapshot);
            for r in readers {
                snap.insert(r.name, Some(r.status.has_card()));
            }
        }
    }

    /// A reader whose card presence changed since the last report, updating the snapshot. With
    /// pcscd gone there is no reader: each one known is reported gone, once.
    fn changed_reader(&self) -> Result<Option<String>> {
        let readers = self.with_pcsc(|p| p.readers())?.unwrap_or_default();
        let mut snap = lock(&self.event_snapshot);
        for r in &readers {
            let has = Some(r.status.has_card());
            if snap.get(&r.name) != Some(&has) {
                snap.insert(r.name.clone(), has);
                return Ok(Some(r.name.clone()));
            }
        }
        let gone: Vec<String> = snap
            .keys()
            .filter(|k| !readers.iter().any(|r| &r.name == *k))
            .cloned()
            .collect();
        if let Some(g) = gone.into_iter().next() {
            snap.remove(&g);
            return Ok(Some(g));
        }
        Ok(None)
    }

    fn slot_of(&self, reader: &str) -> Result<CK_SLOT_ID> {
        self.refresh_slots()?;
        lock(&self.slots)
            .iter()
            .find(|s| s.reader == reader)
            .map(|s| s.id)
            .ok_or(Error::Ck(CKR_GENERAL_ERROR))
    }

    /// C_WaitForSlotEvent: a card inserted or removed, a reader added or removed. With
    /// `dont_block`, CKR_NO_EVENT when nothing changed since the last report; otherwise blocks
    /// until an event or C_Finalize (then CKR_CRYPTOKI_NOT_INITIALIZED).
    ///
    /// pcscd stopping is an event too: every token is gone with it, so each slot is reported
    /// (then no reader until it is back), and a blocking wait goes on until pcscd returns and
    /// reports the readers found again. An error here would end the event thread of NSS
    /// (Firefox's smart-card monitor stops on one) until the browser restarts.
    pub fn wait_for_slot_event(&self, dont_block: bool) -> Result<CK_SLOT_ID> {
        if dont_block {
            return match self.changed_reader()? {
                Some(reader) => self.slot_of(&reader),
                None => ck(CKR_NO_EVENT),
            };
        }
        let id = self.new_object_handle();
        let r = self.wait_blocking(id);
        lock(&self.waiters).retain(|(i, _)| *i != id);
        r
    }

    fn wait_blocking(&self, id: CK_OBJECT_HANDLE) -> Result<CK_SLOT_ID> {
        loop {
            if self.finalized.load(Ordering::SeqCst) {
                return ck(CKR_CRYPTOKI_NOT_INITIALIZED);
            }
            if let Some(slot) = self.changed_slot() {
                return Ok(slot);
            }
            let Some(mut monitor) = self.with_pcsc(|p| p.monitor()).unwrap_or(None) else {
                self.wait_for_pcscd()?;
                continue;
            };
            {
                // C_Finalize sets `finalized`, then cancels every registered waiter under this
                // lock: a waiter registered before that is cancelled (the monitor keeps the
                // cancel until its wait returns for it), one registered after it sees
                // `finalized` below.
                let mut waiters = lock(&self.waiters);
                waiters.retain(|(i, _)| *i != id);
                waiters.push((id, monitor.canceller()));
            }
            if self.finalized.load(Ordering::SeqCst) {
                return ck(CKR_CRYPTOKI_NOT_INITIALIZED);
            }
            // Changes between the check above and the monitor's start.
            if let Some(slot) = self.changed_slot() {
                return Ok(slot);
            }
            match monitor.wait(None) {
                Ok(events) => {
                    let Some(reader) = events.first().map(|e| match e {
                        ReaderEvent::CardInserted { reader, .. }
                        | ReaderEvent::CardRemoved { reader }
                        | ReaderEvent::ReaderAdded { reader }
                        | ReaderEvent::ReaderRemoved { reader } => reader.clone(),
                    }) else {
                        continue;
                    };
                    // Only this reader counts as reported: the other events of the batch (two
                    // readers polled in the same pcscd cycle) are what the next calls return.
                    {
                        let mut snap = lock(&self.event_snapshot);
                        match monitor.readers().find(|(name, _)| *name == reader) {
                            Some((_, status)) => snap.insert(reader.clone(), Some(status.has_card())),
                            None => snap.remove(&reader),
                        };
                    }
                    if let Some(slot) = self.report(self.slot_of(&reader).map(Some)) {
                        return Ok(slot);
                    }
                }
                Err(TransportError::Cancelled) => return ck(CKR_CRYPTOKI_NOT_INITIALIZED),
                Err(e) if e.is_service_lost() => {
                    // pcscd died under the wait: every card handle is gone with it. The refresh
                    // forgets the tokens; every reader is reported, now or once pcscd is back.
                    log::warn!("C_WaitForSlotEvent: the PC/SC service was lost ({e}); waiting on");
                    self.pcsc_failed(&e);
                    if let Err(e) = self.refresh_slots() {
                        log::debug!("reader scan after the PC/SC failure: {e}");
                    }
                    std::thread::sleep(PCSC_RETRY);
                }
                Err(e) => return Err(Error::Card(e.into())),
            }
        }
    }

    /// The slot of a reader that changed since the last report, for a blocking wait.
    fn changed_slot(&self) -> Option<CK_SLOT_ID> {
        let changed = self
            .changed_reader()
            .and_then(|r| r.map(|r| self.slot_of(&r)).transpose());
        self.report(changed)
    }

    /// A blocking wait's view of a step that may fail: an error would end NSS's event thread, so
    /// it is logged and the wait goes on (with PC/SC trouble it looks again in [`PCSC_RETRY`]).
    fn report(&self, step: Result<Option<CK_SLOT_ID>>) -> Option<CK_SLOT_ID> {
        match step {
            Ok(slot) => slot,
            Err(e) => {
                log::debug!("C_WaitForSlotEvent: {e}; waiting on");
                std::thread::sleep(PCSC_RETRY);
                None
            }
        }
    }

    /// A PC/SC call failed on our context: drop it (the next call establishes a new one). If
    /// pcscd itself was lost (stopped, restarted, or the context left dangling), every reader is
    /// to be reported again too, since no token of the old pcscd survives it.
    fn pcsc_failed(&self, e: &TransportError) {
        *lock(&self.pcsc) = None;
        if e.is_service_lost() {
            lock(&self.event_snapshot).values_mut().for_each(|v| *v = None);
        }
    }

    /// `f` on the PC/SC context; `None` when pcscd is away. A context left dangling by a pcscd
    /// restart fails: it is dropped and `f` tried once more on a new one.
    fn with_pcsc<T>(&self, f: impl Fn(&Pcsc) -> std::result::Result<T, TransportError>) -> Result<Option<T>> {
        let mut retried = false;
        loop {
            // The context is used under its lock: pcsc-lite must never see two threads on one
            // context (see `crate::state`).
            let mut g = lock(&self.pcsc);
            if g.is_none() {
                *g = Pcsc::establish().ok();
            }
            let Some(pcsc) = g.as_ref() else { return Ok(None) };
            let r = f(pcsc);
            drop(g);
            match r {
                Ok(v) => return Ok(Some(v)),
                Err(e) => {
                    self.pcsc_failed(&e);
                    match e {
                        TransportError::NoService => return Ok(None),
                        e if retried => return Err(Error::Card(e.into())),
                        e => log::debug!("PC/SC context failed ({e}); on a new one"),
                    }
                    retried = true;
                }
            }
        }
    }

    /// Block while pcscd is away: until it answers again (`Ok`) or C_Finalize.
    fn wait_for_pcscd(&self) -> Result<()> {
        loop {
            if self.finalized.load(Ordering::SeqCst) {
                return ck(CKR_CRYPTOKI_NOT_INITIALIZED);
            }
            std::thread::sleep(PCSC_RETRY);
            if self.pcsc().is_some() {
                return Ok(());
            }
        }
    }
}

/// How often a C_WaitForSlotEvent without pcscd looks for it again (and for C_Finalize).
const PCSC_RETRY: Duration = Duration::from_millis(250);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_reader_names_are_cut_as_the_official_module_does() {
        let long = format!("{}{}", "A".repeat(40), "B".repeat(40));
        let d = slot_description(&long);
        assert_eq!(d.len(), 64);
        assert!(d.starts_with(&"A".repeat(30)));
        assert!(d.contains("..."));
        assert!(d.ends_with(&"B".repeat(31)));
        assert_eq!(slot_description("short"), "short");
        let p = pad::<8>("abc");
        assert_eq!(&p, b"abc     ");
    }

    #[test]
    fn no_control_reaches_a_fixed_field() {
        let p = pad::<16>("Dr\u{1b}[2J\0\u{9b}X");
        assert!(p.iter().all(|b| *b >= 0x20 && *b != 0x7F), "{p:02X?}");
        assert!(String::from_utf8_lossy(&p).starts_with("Dr\u{FFFD}[2J\u{FFFD}\u{FFFD}X"));
        let d = slot_description("Reader\u{1b}]0;x\u{7}");
        assert!(!d.chars().any(|c| c.is_control()), "{d:?}");
    }
}
