//! PC/SC watching: the slot table refreshed from the reader list and card events (no APDU),
//! and C_WaitForSlotEvent's wait.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use cpx_transport::{ReaderEvent, TransportError};
use cryptoki_sys::*;

use super::Module;
use super::slot::Slot;
use crate::error::{Error, Result, ck};
use crate::readers::Pcsc;
use crate::sync::lock;

/// The minimum interval between two PC/SC polls made by session calls.
pub const SESSION_POLL: Duration = Duration::from_millis(100);

impl Module {
    /// The PC/SC context, establishing it if pcscd was not there before.
    fn pcsc(&self) -> Option<Pcsc> {
        let mut g = lock(&self.pcsc);
        if g.is_none() {
            *g = Pcsc::establish().ok();
        }
        g.clone()
    }

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
                slots.push(Arc::new(Slot::new(id, name.clone(), self.cache.clone())));
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
        let id = crate::objects::new_object_handle();
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
