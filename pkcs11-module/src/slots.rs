//! Slots: one per PC/SC reader, IDs stable for the life of the process; C_GetSlotList,
//! C_GetSlotInfo (no APDU: PC/SC reader state only), C_WaitForSlotEvent.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use cpx_card::{Card, CardError};
use cpx_transport::{ReaderEvent, TransportError};
use cryptoki_sys::*;

use crate::cache::TokenCache;
use crate::error::{Error, Result, ck, token_lost};
use crate::state::{Module, lock};
use crate::token::Token;

/// The minimum interval between two PC/SC polls made by session calls.
pub const SESSION_POLL: Duration = Duration::from_millis(100);

/// Who is logged in on a slot (shared by all its sessions).
#[derive(Default)]
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

/// A slot's mutable state.
#[derive(Default)]
pub struct SlotState {
    /// The reader is still listed by PC/SC.
    pub reader_present: bool,
    /// PC/SC shows a card in the reader.
    pub card_present: bool,
    /// The opened CPx card, once needed.
    pub token: Option<Token>,
    /// Bumped whenever the token goes away; sessions remember the epoch they were opened in.
    pub epoch: u64,
    /// Login state.
    pub login: Login,
}

/// One reader.
pub struct Slot {
    /// Slot ID (index in the module's table).
    pub id: CK_SLOT_ID,
    /// PC/SC reader name.
    pub reader: String,
    /// Card, login, objects: use [`Slot::state`].
    inner: Mutex<SlotState>,
    /// PC/SC reported a removal while the slot was busy: drop the token at the next lock.
    changed: AtomicBool,
}

impl Slot {
    /// Lock the slot's state, applying a removal seen meanwhile.
    pub fn state(&self) -> MutexGuard<'_, SlotState> {
        let mut g = lock(&self.inner);
        if self.changed.swap(false, Ordering::SeqCst) {
            g.drop_token();
        }
        g
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
    }

    /// Whether the user is logged in.
    pub fn user_logged_in(&self) -> bool {
        matches!(self.login, Login::User)
    }

    /// The token, opening the card on first use (this is where connect-time APDUs happen).
    pub fn token(&mut self, module: &Module, reader: &str) -> Result<&mut Token> {
        if !self.card_present {
            return ck(CKR_TOKEN_NOT_PRESENT);
        }
        if self.token.is_none() {
            let pcsc = module.pcsc().ok_or(Error::Ck(CKR_DEVICE_ERROR))?;
            let channel = pcsc.connect(reader).map_err(|e| match e {
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
            let mut identified = Card::identify(Box::new(channel)).map_err(open_error)?;
            let cache = module
                .cache
                .clone()
                .and_then(|s| TokenCache::open(s, &mut identified));
            let card = identified
                .open(cache.as_ref().and_then(TokenCache::seed))
                .map_err(open_error)?;
            log::info!("{reader}: token {} ({})", card.token_label(), card.model());
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
        let r = match self.token(module, reader) {
            Ok(t) => {
                let r = f(t, &login);
                if r.is_ok() {
                    t.note_files();
                }
                r
            }
            Err(e) => Err(e),
        };
        self.login = login;
        if let Err(e) = &r
            && token_lost(e)
        {
            log::info!("{reader}: token lost ({e})");
            self.drop_token();
        }
        r
    }
}

/// C_GetSlotInfo's slotDescription: the reader name blank-padded to 64; longer names become
/// the first 30 characters + "..." + the last 31 (spec §5.2).
pub fn slot_description(reader: &str) -> String {
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

/// Copy `s` into a blank-padded fixed field (truncated at a character boundary).
pub fn pad<const N: usize>(s: &str) -> [CK_UTF8CHAR; N] {
    let mut out = [b' '; N];
    let mut n = 0;
    for c in s.chars() {
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
                slots.push(Arc::new(Slot {
                    id,
                    reader: name.clone(),
                    inner: Mutex::new(SlotState::default()),
                    changed: AtomicBool::new(false),
                }));
            }
        }
        for slot in slots.iter() {
            let removed = events.iter().any(|e| {
                matches!(e, ReaderEvent::CardRemoved { reader } | ReaderEvent::ReaderRemoved { reader } if *reader == slot.reader)
            });
            if removed {
                log::info!("{}: card removed", slot.reader);
                slot.changed.store(true, Ordering::SeqCst);
            }
            let Ok(mut st) = slot.inner.try_lock() else {
                continue;
            };
            if slot.changed.swap(false, Ordering::SeqCst) {
                st.drop_token();
            }
            let info = readers.iter().find(|(name, _)| *name == slot.reader);
            st.reader_present = info.is_some();
            let present = info.is_some_and(|(_, has)| *has);
            if !present && st.token.is_some() {
                log::info!("{}: card gone", slot.reader);
                st.drop_token();
            }
            st.card_present = present;
        }
        Ok(())
    }

    /// Every slot empty, its token and sessions dropped (a slot busy with an operation is marked
    /// changed: it drops its token as soon as it is free).
    fn forget_every_token(&self) {
        for slot in lock(&self.slots).iter() {
            slot.changed.store(true, Ordering::SeqCst);
            if let Ok(mut st) = slot.inner.try_lock() {
                slot.changed.store(false, Ordering::SeqCst);
                st.drop_token();
                st.card_present = false;
                st.reader_present = false;
            }
        }
    }

    /// The slot with this ID.
    pub fn slot(&self, id: CK_SLOT_ID) -> Result<Arc<Slot>> {
        usize::try_from(id)
            .ok()
            .and_then(|i| lock(&self.slots).get(i).cloned())
            .ok_or(Error::Ck(CKR_SLOT_ID_INVALID))
    }

    /// C_GetSlotList.
    pub fn slot_list(&self, token_present: bool) -> Result<Vec<CK_SLOT_ID>> {
        self.refresh_slots()?;
        let slots: Vec<Arc<Slot>> = lock(&self.slots).clone();
        Ok(slots
            .iter()
            .filter(|s| {
                let st = s.state();
                !token_present || (st.reader_present && st.card_present)
            })
            .map(|s| s.id)
            .collect())
    }

    /// C_GetSlotInfo (no APDU).
    pub fn slot_info(&self, id: CK_SLOT_ID) -> Result<CK_SLOT_INFO> {
        let slot = self.slot(id)?;
        self.refresh_slots()?;
        let st = slot.state();
        let mut flags = CKF_REMOVABLE_DEVICE | CKF_HW_SLOT;
        if st.card_present {
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
        let Some(pcsc) = self.pcsc() else { return };
        if let Ok(readers) = pcsc.readers() {
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
    fn with_pcsc<T>(
        &self,
        f: impl Fn(&cpx_transport::Pcsc) -> std::result::Result<T, TransportError>,
    ) -> Result<Option<T>> {
        let mut retried = false;
        loop {
            let Some(pcsc) = self.pcsc() else { return Ok(None) };
            match f(&pcsc) {
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
}
