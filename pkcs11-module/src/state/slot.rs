//! A slot: one PC/SC reader, its ID stable for the life of the process; its lock over the card,
//! the login state and the token; opening the token and running a card operation on it
//! ([`SlotState::with_token`]). The slot functions of PKCS#11 are in [`crate::slot`].

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, TryLockError};
use std::time::{Duration, Instant};

use cpx_card::{Card, CardError};
use cpx_transport::TransportError;
use cryptoki_sys::*;

use crate::cache::{Store, TokenCache};
use crate::error::{Error, Result, ck, token_lost};
use crate::mechanisms::CardKind;
use crate::readers::Pcsc;
use crate::sync::lock;
use crate::token::Token;

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
    /// the PUK already verified, docs/card-spec.md §3.2; the PUK is not kept).
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
    /// The reader's name (the slot's, for opening the card and for the log).
    reader: String,
    /// The module's disk cache, where the token's entry is looked up when it is opened.
    cache: Option<Store>,
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
    pub(super) reader_present: AtomicBool,
    pub(super) card_present: AtomicBool,
    /// The login state and token epoch as the last holder of the lock left them, for the
    /// queries that must not wait for a card operation (C_GetSessionInfo).
    login_view: AtomicU8,
    epoch_view: AtomicU64,
    /// C_GetTokenInfo's last answer, for a slot busy with a card operation.
    info_cache: Mutex<Option<CK_TOKEN_INFO>>,
    /// The slot's PC/SC context (see [`SlotState`]).
    pub(super) context: Arc<Mutex<Option<Pcsc>>>,
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
    /// The slot of `reader`, whose token will use the disk cache `cache`.
    pub(super) fn new(id: CK_SLOT_ID, reader: String, cache: Option<Store>) -> Slot {
        let context = Arc::new(Mutex::new(None));
        Slot {
            id,
            inner: Mutex::new(SlotState {
                context: Arc::clone(&context),
                reader: reader.clone(),
                cache,
                ..SlotState::default()
            }),
            reader,
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
    pub(super) fn mark_changed(&self) {
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

    /// The slot's reader name.
    pub fn reader(&self) -> &str {
        &self.reader
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
    fn token(&mut self) -> Result<&mut Token> {
        if !self.card_present {
            return ck(CKR_TOKEN_NOT_PRESENT);
        }
        if self.token.is_none() {
            let pcsc = self.context()?;
            let reader = self.reader.as_str();
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
                // "muette" card with a CPx ATR, docs/card-spec.md §6.1 row 1201), malformed EF.SN.ICC or
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
            let cache = self
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

    /// Run a card operation on the token (opened first if it was not); a lost token (removed,
    /// replaced, reset with the PIN lost) drops the token and its login state.
    pub fn with_token<T>(&mut self, f: impl FnOnce(&mut Token) -> Result<T>) -> Result<T> {
        let user = self.user_logged_in();
        let mut card_logged_out = false;
        let r = match self.token() {
            Ok(t) => {
                let r = f(t);
                if r.is_ok() {
                    t.note_files();
                }
                // The card layer forgets our PIN verification when the card shows it gone
                // (`6982` to a private operation, or the PIN's state read): another program
                // logged the card out or reset it. The whole slot is public from then on.
                card_logged_out = user && !t.card.pin_verified();
                r
            }
            Err(e) => Err(e),
        };
        let reader = &self.reader;
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

    /// The generation and interface of the card (opened first if it was not), which decide
    /// its mechanisms.
    pub fn card_kind(&mut self) -> Result<CardKind> {
        self.with_token(|t| {
            Ok(CardKind {
                generation: t.card.generation(),
                interface: t.card.interface(),
            })
        })
    }
}
