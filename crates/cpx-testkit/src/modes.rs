//! Cards that misbehave on demand: a [`VirtualCard`] wrapper whose fault modes a test switches at
//! run time through a cloneable [`FaultModes`] handle.
//!
//! - **mute**: the card stops answering. A command reaches the card and no answer is ever sent,
//!   while its vpcd connection stays open: vpcd waits in `recv`, so the client's `SCardTransmit`
//!   on that reader blocks, as behind a real reader without a timeout. The test releases it with
//!   [`FaultModes::unmute`] (the held command is answered by the card),
//!   [`FaultModes::unmute_with`] (answered with a status word only), or [`FaultModes::pull_seen`]
//!   (the card leaves the reader: the connection closes, as a [`crate::FaultyCard`] pull, and
//!   the call returns once pcscd has noticed; see there why a bare [`FaultModes::pull`] is not
//!   enough before the reader is used again). A held
//!   command is released by a pull after [`FaultModes::set_mute_limit`] (120 s by default), a hang
//!   guard so a forgotten release cannot wedge a test run; `CardSlot::remove` would otherwise
//!   wait for the held command.
//! - **slow**: every APDU's answer is sent [`FaultModes::set_delay`] later (presence polls are not
//!   delayed, so pcscd's 400 ms polls do not slow down).
//! - **FCP size override**: the FCP/FCI answered to a SELECT of a chosen file gets the value of
//!   its size tag (`80`, else `81`) replaced ([`FaultModes::override_size`]), the template's
//!   length fixed up. On T=0 (CPS3), where the FCP comes through `61xx` + GET RESPONSE, the
//!   wrapper fetches the whole FCP from the card and serves the rewritten one in GET RESPONSE
//!   chunks itself.
//!
//! # What a mute card looks like to pcscd
//! A real card that stops answering mid-session is still in the reader: its reader still reports
//! it present. The mute card does the same. Until a command reaches it, it answers vpcd's GET ATR
//! presence polls (so `SCardConnect` works, and the first APDU is the one that hangs). Once a
//! command is held, vpcd sends nothing else on that connection: its presence poll waits for the
//! slot's I/O lock, which the held transmit keeps (vpcd 0.8 `vicc_transmit`), so pcscd keeps
//! showing the card present.
//!
//! Checked through the real pcscd 1.9.9 + vpcd 0.8 (`tests/modes.rs`): while a command is held,
//! cards in the **other slot of the same vpcd entry** (`cpx virtual N 00 01` next to
//! `cpx virtual N 00 00`) and in a reader of **another entry** answer at once (under 1 ms), and
//! their reader states stay readable: pcscd does not serialise the slots of one vpcd entry
//! (vpcd's lock is per slot). A held `SCardTransmit` released by a pull returns a 0-byte
//! response (vpcd 0.8), where a CCID reader would report an error.
//!
//! ```no_run
//! use cpx_testkit::{FaultModeCard, apdu};
//! use cpx_vpcd::CardSlot;
//! use std::time::Duration;
//!
//! let (card, modes) = FaultModeCard::new(cpx_testkit::emulated("cps3-doctor")?);
//! let mut slot = CardSlot::new("127.0.0.1:35963", Box::new(card));
//! slot.insert()?;
//! // The first signature hangs, with the card still present.
//! modes.mute_on("PSO CDS", apdu::is_pso_cds);
//! // … a client thread calls C_Sign and blocks …
//! let held = modes.wait_held(Duration::from_secs(5)).ok_or("nothing reached the card")?;
//! assert_eq!(held[1], 0x2A);
//! // The blocked client gets its error; the card is out of the reader, as pcscd sees it.
//! modes.pull_seen("cpx virtual 1 00 00")?;
//! // A TokenInfo whose FCP claims 4 GiB (CPS3 path 3F00 D000 5032).
//! modes.override_size(&[0x50, 0x32], &[0xFF, 0xFF, 0xFF, 0xFF]);
//! // Every answer 50 ms late.
//! modes.set_delay(Duration::from_millis(50));
//! # Ok::<(), cpx_testkit::Failed>(())
//! ```

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use std::ffi::CString;

use cpx_vpcd::VirtualCard;
use libtest_mimic::Failed;

use crate::{DEADLINE, Matcher, PulledOut};

/// Default hang guard of a held command (see [`FaultModes::set_mute_limit`]).
pub const DEFAULT_MUTE_LIMIT: Duration = Duration::from_secs(120);

/// Whether, and from which command, the card is mute.
#[derive(Debug, Clone)]
enum Mute {
    Off,
    /// Mute from the first command matching this predicate (named for reports).
    From(&'static str, Matcher),
    On,
}

/// How a held command is let go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Release {
    /// The card executes it and answers; mute ends.
    Answer,
    /// Answered with this status word only, the card never executes it; mute ends.
    Status([u8; 2]),
    /// The card leaves the reader (the connection closes).
    Pull,
}

#[derive(Debug)]
struct State {
    mute: Mute,
    /// The command the card is holding unanswered.
    held: Option<Vec<u8>>,
    release: Option<Release>,
    /// Pull the card at the next message when nothing is held.
    pull_next: bool,
    mute_limit: Duration,
    delay: Duration,
    /// (file id or path as it appears at the end of a SELECT's data, size value).
    sizes: Vec<(Vec<u8>, Vec<u8>)>,
    /// Commands held so far, in order.
    held_log: Vec<Vec<u8>>,
}

impl Default for State {
    fn default() -> Self {
        Self {
            mute: Mute::Off,
            held: None,
            release: None,
            pull_next: false,
            mute_limit: DEFAULT_MUTE_LIMIT,
            delay: Duration::ZERO,
            sizes: Vec::new(),
            held_log: Vec::new(),
        }
    }
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wait_timeout<'a>(&self, guard: MutexGuard<'a, State>, left: Duration) -> MutexGuard<'a, State> {
        self.changed
            .wait_timeout(guard, left)
            .unwrap_or_else(PoisonError::into_inner)
            .0
    }
}

/// The test's handle on a [`FaultModeCard`] (clones share the same card).
#[derive(Debug, Clone, Default)]
pub struct FaultModes(Arc<Shared>);

impl FaultModes {
    /// Mute from now on: the next command, whatever it is, is held unanswered.
    pub fn mute(&self) {
        self.0.lock().mute = Mute::On;
    }

    /// Mute from the first command matching `matches` (`what` names it in logs); the commands
    /// before it are answered.
    pub fn mute_on(&self, what: &'static str, matches: Matcher) {
        self.0.lock().mute = Mute::From(what, matches);
    }

    /// Whether the card is holding a command unanswered right now.
    pub fn is_holding(&self) -> bool {
        self.0.lock().held.is_some()
    }

    /// Wait until a command is held; returns it, or `None` if none was within `timeout`.
    pub fn wait_held(&self, timeout: Duration) -> Option<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        let mut st = self.0.lock();
        loop {
            if let Some(c) = &st.held {
                return Some(c.clone());
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            st = self.0.wait_timeout(st, left);
        }
    }

    /// Every command held so far (released or not), in order.
    pub fn held_commands(&self) -> Vec<Vec<u8>> {
        self.0.lock().held_log.clone()
    }

    /// End mute: a held command is executed by the card and answered now.
    pub fn unmute(&self) {
        self.release(Release::Answer);
    }

    /// End mute: a held command is answered with `sw` alone, without reaching the card (e.g.
    /// `[0x6F, 0x00]`, no precise diagnosis).
    pub fn unmute_with(&self, sw: [u8; 2]) {
        self.release(Release::Status(sw));
    }

    /// Pull the card out of the reader: a held command gets no answer and the connection closes
    /// (pcscd then sees the card removed). With no command held, the card is pulled at the next
    /// message from vpcd (an APDU, or the next presence poll within 400 ms). Reinsert with
    /// [`crate::reinsert`].
    pub fn pull(&self) {
        self.release(Release::Pull);
    }

    /// [`pull`](Self::pull), then wait (at most [`DEADLINE`]) until pcscd itself has seen the
    /// card leave `reader`: its event counter for the reader moved and the reader shows empty.
    ///
    /// Waiting for "empty" alone is not enough: when the client whose command was cut
    /// disconnects, pcscd's failed reset marks the reader empty at once, before its presence
    /// poll has noticed the removal (seen with pcscd 1.9.9); a card inserted again before that
    /// poll is taken by pcscd for the same card still there, and PC/SC never shows it.
    pub fn pull_seen(&self, reader: &str) -> Result<(), Failed> {
        let before = reader_events(reader)?;
        self.pull();
        let deadline = Instant::now() + DEADLINE;
        loop {
            let (count, state) = reader_events(reader)?;
            if count != before.0 && state.contains(pcsc::State::EMPTY) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(
                    format!("{reader}: pcscd did not see the pulled card leave within {DEADLINE:?}").into(),
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn release(&self, how: Release) {
        let mut st = self.0.lock();
        if st.held.is_some() {
            st.release = Some(how);
        } else {
            match how {
                Release::Pull => st.pull_next = true,
                Release::Answer | Release::Status(_) => st.mute = Mute::Off,
            }
        }
        self.0.changed.notify_all();
    }

    /// After how long a held command is released by a pull if the test did not release it
    /// (default [`DEFAULT_MUTE_LIMIT`]): a hang guard, never a verdict.
    pub fn set_mute_limit(&self, limit: Duration) {
        self.0.lock().mute_limit = limit;
    }

    /// Delay every APDU's answer by `delay` (zero: answer at once). Takes effect at the next APDU.
    pub fn set_delay(&self, delay: Duration) {
        self.0.lock().delay = delay;
    }

    /// The current answer delay.
    pub fn delay(&self) -> Duration {
        self.0.lock().delay
    }

    /// Replace the size (tag `80`, else `81`; added as `80` when the template has neither) in the
    /// FCP/FCI answered to every SELECT whose data ends with `file`: a file id (`[0x50, 0x32]`)
    /// or a path as the card's SELECT carries it (CPS3 with `3F00`, CPS4 without). `value` is the
    /// new value, e.g. `[0xFF; 4]` for `80 04 FF FF FF FF`. Replaces an earlier override of the
    /// same `file`.
    pub fn override_size(&self, file: &[u8], value: &[u8]) {
        let mut st = self.0.lock();
        st.sizes.retain(|(f, _)| f != file);
        st.sizes.push((file.to_vec(), value.to_vec()));
    }

    /// Remove every size override.
    pub fn clear_size_overrides(&self) {
        self.0.lock().sizes.clear();
    }
}

/// A [`VirtualCard`] with the fault modes of [`FaultModes`] (see the module docs).
pub struct FaultModeCard {
    card: Box<dyn VirtualCard>,
    modes: FaultModes,
    /// A rewritten FCP announced with `61xx`, served by GET RESPONSE.
    pending: Vec<u8>,
}

impl std::fmt::Debug for FaultModeCard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultModeCard")
            .field("modes", &self.modes)
            .finish_non_exhaustive()
    }
}

impl FaultModeCard {
    /// Wrap `card`; every mode is off.
    pub fn new(card: Box<dyn VirtualCard>) -> (FaultModeCard, FaultModes) {
        let modes = FaultModes::default();
        let card = FaultModeCard {
            card,
            modes: modes.clone(),
            pending: Vec::new(),
        };
        (card, modes)
    }

    /// Leave the reader: no power, and unwind so the serving thread closes the connection.
    fn pulled(&mut self) -> ! {
        self.card.power_off();
        std::panic::resume_unwind(Box::new(PulledOut))
    }

    /// Hold `command` if the card is mute (or becomes mute on it); the release, if held.
    fn hold(&self, command: &[u8]) -> Option<Release> {
        let shared = &self.modes.0;
        let mut st = shared.lock();
        let mute = match &st.mute {
            Mute::Off => false,
            Mute::On => true,
            Mute::From(what, matches) => {
                let now = matches(command);
                if now {
                    log::debug!("card mute from {what} ({:02X?})", command.get(..4));
                }
                now
            }
        };
        if !mute {
            return None;
        }
        st.mute = Mute::On;
        st.held = Some(command.to_vec());
        st.held_log.push(command.to_vec());
        st.release = None;
        shared.changed.notify_all();
        let deadline = Instant::now() + st.mute_limit;
        let how = loop {
            if let Some(how) = st.release.take() {
                break how;
            }
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                log::warn!("mute card: held command never released, pulling the card (hang guard)");
                break Release::Pull;
            };
            st = shared.wait_timeout(st, left);
        };
        st.held = None;
        if how != Release::Pull {
            st.mute = Mute::Off;
        }
        shared.changed.notify_all();
        Some(how)
    }

    /// Answer a GET RESPONSE from the rewritten FCP: ISO 7816-3 T=0 rules, as the card would.
    fn get_response(&mut self, command: &[u8]) -> Vec<u8> {
        let ne = match command.get(4) {
            Some(0) | None => 256,
            Some(n) => usize::from(*n),
        };
        if ne > self.pending.len() {
            // Wrong Le: SW2 = what is available (pending is at most 255 here).
            return vec![0x6C, (self.pending.len() & 0xFF) as u8];
        }
        let mut out: Vec<u8> = self.pending.drain(..ne).collect();
        out.extend(more_sw(self.pending.len()));
        out
    }

    /// The card's answer to a SELECT of an overridden file, with the size replaced.
    fn select_with_size(&mut self, command: &[u8], value: &[u8]) -> Vec<u8> {
        let first = self.card.transmit(command);
        let Some((mut fcp, sw)) = split(&first) else {
            return first;
        };
        let deferred = sw[0] == 0x61;
        if deferred {
            // Fetch the whole FCP now (T=0), so the rewritten one can be served in any chunks.
            let mut sw = sw;
            while sw[0] == 0x61 {
                let get = [command[0] & !0x10, 0xC0, 0x00, 0x00, sw[1]];
                let r = self.card.transmit(&get);
                let Some((data, next)) = split(&r) else {
                    return r;
                };
                fcp.extend_from_slice(&data);
                sw = next;
            }
            if sw != [0x90, 0x00] {
                return sw.to_vec();
            }
        } else if sw != [0x90, 0x00] || fcp.is_empty() {
            return first;
        }
        let Some(rewritten) = replace_size(&fcp, value) else {
            log::warn!("FCP override: not an FCP/FCI template ({fcp:02X?}), left as is");
            return first;
        };
        if deferred {
            self.pending = rewritten;
            more_sw(self.pending.len()).to_vec()
        } else {
            let mut out = rewritten;
            out.extend(sw);
            out
        }
    }
}

/// pcscd's event counter of `reader` and its state.
fn reader_events(reader: &str) -> Result<(u32, pcsc::State), Failed> {
    let ctx = pcsc::Context::establish(pcsc::Scope::User)?;
    let mut states = [pcsc::ReaderState::new(
        CString::new(reader)?,
        pcsc::State::UNAWARE,
    )];
    ctx.get_status_change(Duration::ZERO, &mut states)?;
    Ok((states[0].event_count(), states[0].event_state()))
}

/// `90 00` when nothing is left, else `61 xx` (`xx` = what is left, `00` for 256 or more).
fn more_sw(left: usize) -> [u8; 2] {
    match left {
        0 => [0x90, 0x00],
        n => [0x61, (n.min(256) & 0xFF) as u8],
    }
}

/// A response split into data and SW1 SW2.
fn split(response: &[u8]) -> Option<(Vec<u8>, [u8; 2])> {
    let at = response.len().checked_sub(2)?;
    Some((response[..at].to_vec(), [response[at], response[at + 1]]))
}

/// BER length encoding (short form, or `81`/`82` long form).
fn ber_len(n: usize) -> Vec<u8> {
    match n {
        0..=0x7F => vec![n as u8],
        0x80..=0xFF => vec![0x81, n as u8],
        _ => vec![0x82, (n >> 8) as u8, n as u8],
    }
}

/// A BER length at `data[0..]`: (length, bytes used).
fn read_len(data: &[u8]) -> Option<(usize, usize)> {
    match *data.first()? {
        n @ 0..=0x7F => Some((usize::from(n), 1)),
        0x81 => Some((usize::from(*data.get(1)?), 2)),
        0x82 => Some(((usize::from(*data.get(1)?) << 8) | usize::from(*data.get(2)?), 3)),
        _ => None,
    }
}

/// `fcp` (a `62` or `6F` template) with its size tag's value replaced by `value`, or `None` if
/// `fcp` is not such a template. Single-byte tags: the FCP/FCI tags of both cards are
/// (docs/card-spec.md §1.3, §10.2).
fn replace_size(fcp: &[u8], value: &[u8]) -> Option<Vec<u8>> {
    let (&template, rest) = fcp.split_first()?;
    if template != 0x62 && template != 0x6F {
        return None;
    }
    let (len, used) = read_len(rest)?;
    let body = rest.get(used..used + len)?;
    let mut children = Vec::new();
    let mut at = 0;
    while at < body.len() {
        let tag = body[at];
        let (n, used) = read_len(&body[at + 1..])?;
        let start = at + 1 + used;
        children.push((tag, body.get(start..start + n)?));
        at = start + n;
    }
    let size_tag = [0x80, 0x81]
        .into_iter()
        .find(|t| children.iter().any(|(tag, _)| tag == t));
    let mut out_body = Vec::new();
    if size_tag.is_none() {
        out_body.push(0x80);
        out_body.extend(ber_len(value.len()));
        out_body.extend_from_slice(value);
    }
    let mut replaced = false;
    for (tag, v) in children {
        out_body.push(tag);
        let v = if Some(tag) == size_tag && !replaced {
            replaced = true;
            value
        } else {
            v
        };
        out_body.extend(ber_len(v.len()));
        out_body.extend_from_slice(v);
    }
    let mut out = vec![template];
    out.extend(ber_len(out_body.len()));
    out.extend(out_body);
    Some(out)
}

impl VirtualCard for FaultModeCard {
    fn atr(&self) -> Vec<u8> {
        if std::mem::take(&mut self.modes.0.lock().pull_next) {
            // A presence poll finds the card gone: end the connection (see `pull`).
            std::panic::resume_unwind(Box::new(PulledOut));
        }
        self.card.atr()
    }
    fn power_on(&mut self) {
        self.pending.clear();
        self.card.power_on();
    }
    fn power_off(&mut self) {
        self.pending.clear();
        self.card.power_off();
    }
    fn reset(&mut self) {
        self.pending.clear();
        self.card.reset();
    }
    fn transmit(&mut self, command: &[u8]) -> Vec<u8> {
        if std::mem::take(&mut self.modes.0.lock().pull_next) {
            self.pulled();
        }
        match self.hold(command) {
            None | Some(Release::Answer) => {}
            Some(Release::Status(sw)) => return sw.to_vec(),
            Some(Release::Pull) => self.pulled(),
        }
        let (delay, size) = {
            let st = self.modes.0.lock();
            let is_select = command.get(1) == Some(&0xA4);
            // Short Lc only: the SELECTs of both cards (docs/card-spec.md §2.2).
            let data = command
                .get(4)
                .and_then(|lc| command.get(5..5 + usize::from(*lc)))
                .unwrap_or_default();
            let size = st
                .sizes
                .iter()
                .find(|(file, _)| is_select && !data.is_empty() && data.ends_with(file))
                .map(|(_, value)| value.clone());
            (st.delay, size)
        };
        let response = if command.get(1) == Some(&0xC0) && !self.pending.is_empty() {
            self.get_response(command)
        } else {
            self.pending.clear();
            match size {
                Some(value) => self.select_with_size(command, &value),
                None => self.card.transmit(command),
            }
        };
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        response
    }
}

#[cfg(test)]
mod tests;
