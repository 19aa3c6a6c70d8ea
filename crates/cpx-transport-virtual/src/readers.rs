//! A set of readers holding virtual cards in this process: the reader list, card presence and
//! events that [`Pcsc`](cpx_transport::Pcsc) gets from pcscd, and a [`VirtualChannel`] per connection.
//!
//! This is the seam that lets a layer above the transport (the PKCS#11 module's slots) run its
//! real code against emulated cards without pcscd, for tests and in-process fuzzing only: release
//! builds never link this crate.
//! Only what [`Pcsc`](cpx_transport::Pcsc) offers is mirrored (`readers`, `connect`, `monitor`,
//! `idle_for`), with the same types and error kinds, so the caller's code paths stay the real
//! ones; what cannot happen in-process (pcscd stopping, a stuck reader) never happens here.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use cpx_vpcd::VirtualCard;

use cpx_transport::{ReaderEvent, ReaderInfo, ReaderStatus, TransportError};

use crate::{VirtualChannel, VirtualControl};

/// How often a blocking [`VirtualMonitor::wait`] looks for changes and for its cancel.
const POLL: Duration = Duration::from_millis(20);

struct Reader {
    name: String,
    /// The connection every other one is made from ([`VirtualChannel::connect_again`]).
    first: VirtualChannel,
    control: VirtualControl,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Readers with virtual cards, shared by its clones (like a PC/SC context's view of pcscd).
///
/// ```
/// use cpx_transport::{CardChannel, ReaderStatus};
/// use cpx_transport_virtual::VirtualReaders;
///
/// struct Ok9000;
/// impl cpx_vpcd::VirtualCard for Ok9000 {
///     fn atr(&self) -> Vec<u8> { vec![0x3B, 0x02, 0x14, 0x00] }
///     fn transmit(&mut self, _apdu: &[u8]) -> Vec<u8> { vec![0x90, 0x00] }
/// }
///
/// let readers = VirtualReaders::new();
/// let control = readers.insert("Virtual reader 0", Box::new(Ok9000));
/// assert_eq!(readers.readers()[0].status, ReaderStatus::CardPresent);
/// let mut channel = readers.connect("Virtual reader 0")?;
/// assert!(channel.transmit(&cpx_apdu::Command::new(0x00, 0xA4, 0x04, 0x0C))?.is_success());
/// control.remove();
/// assert_eq!(readers.readers()[0].status, ReaderStatus::Empty);
/// # Ok::<(), cpx_transport::TransportError>(())
/// ```
#[derive(Clone, Default)]
pub struct VirtualReaders {
    readers: Arc<Mutex<Vec<Reader>>>,
}

impl std::fmt::Debug for VirtualReaders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = lock(&self.readers).iter().map(|r| r.name.clone()).collect();
        f.debug_struct("VirtualReaders").field("readers", &names).finish()
    }
}

impl VirtualReaders {
    /// No reader yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Plug in a reader called `reader` with `card` inserted and powered; the handle pulls the
    /// card out, puts it back or resets it (a reader of that name already there is replaced).
    pub fn insert(&self, reader: &str, card: Box<dyn VirtualCard>) -> VirtualControl {
        let (first, control) = VirtualChannel::new(reader, card);
        let mut readers = lock(&self.readers);
        readers.retain(|r| r.name != reader);
        readers.push(Reader {
            name: reader.to_owned(),
            first,
            control: control.clone(),
        });
        control
    }

    /// Every reader with its state, as [`Pcsc::readers`](cpx_transport::Pcsc::readers) gives them.
    pub fn readers(&self) -> Vec<ReaderInfo> {
        lock(&self.readers)
            .iter()
            .map(|r| {
                let present = r.control.is_present();
                ReaderInfo {
                    name: r.name.clone(),
                    status: if present {
                        ReaderStatus::CardPresent
                    } else {
                        ReaderStatus::Empty
                    },
                    atr: present.then(|| r.control.with_card(|c| c.atr())),
                }
            })
            .collect()
    }

    /// A new connection to the card in `reader`, as [`Pcsc::connect`](cpx_transport::Pcsc::connect).
    pub fn connect(&self, reader: &str) -> Result<VirtualChannel, TransportError> {
        let readers = lock(&self.readers);
        let r = readers
            .iter()
            .find(|r| r.name == reader)
            .ok_or_else(|| TransportError::UnknownReader(reader.to_owned()))?;
        let mut channel = r.first.connect_again()?;
        // A fresh connection sees the card as it is now, not the resets and insertions that
        // happened before it (those belong to older connections).
        cpx_transport::CardChannel::reconnect(&mut channel, false)?;
        Ok(channel)
    }

    /// A monitor that knows the current state of every reader, as
    /// [`Pcsc::monitor`](cpx_transport::Pcsc::monitor).
    pub fn monitor(&self) -> VirtualMonitor {
        let mut monitor = VirtualMonitor {
            readers: self.clone(),
            known: BTreeMap::new(),
            cancelled: Arc::new(AtomicBool::new(false)),
        };
        monitor.rescan();
        monitor
    }

    /// Always zero: an in-process card answers at once, it is never stuck.
    pub fn idle_for(&self) -> Duration {
        Duration::ZERO
    }

    /// Name, presence and insertion count of every reader.
    fn snapshot(&self) -> Vec<(String, bool, u64)> {
        lock(&self.readers)
            .iter()
            .map(|r| (r.name.clone(), r.control.is_present(), r.control.insertions()))
            .collect()
    }
}

/// Reports the changes of a [`VirtualReaders`] as [`Monitor`](cpx_transport::Monitor) does for pcscd.
#[derive(Debug)]
pub struct VirtualMonitor {
    readers: VirtualReaders,
    /// Per reader: the status last reported and the insertion count then.
    known: BTreeMap<String, (ReaderStatus, u64)>,
    cancelled: Arc<AtomicBool>,
}

/// Wakes a [`VirtualMonitor::wait`] (it returns [`TransportError::Cancelled`]).
#[derive(Debug, Clone)]
pub struct VirtualCanceller {
    cancelled: Arc<AtomicBool>,
}

impl VirtualCanceller {
    /// Cancel the wait in progress, or the next one.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
    }
}

impl VirtualMonitor {
    /// A handle that can cancel a wait from another thread.
    pub fn canceller(&self) -> VirtualCanceller {
        VirtualCanceller {
            cancelled: Arc::clone(&self.cancelled),
        }
    }

    /// The readers this monitor currently knows, with their last seen status.
    pub fn readers(&self) -> impl Iterator<Item = (&str, ReaderStatus)> {
        self.known
            .iter()
            .map(|(name, (status, _))| (name.as_str(), *status))
    }

    /// Block until at least one event, the timeout (`None` = forever; then
    /// [`TransportError::Timeout`]) or a cancel.
    pub fn wait(&mut self, timeout: Option<Duration>) -> Result<Vec<ReaderEvent>, TransportError> {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        loop {
            if self.cancelled.swap(false, Ordering::SeqCst) {
                return Err(TransportError::Cancelled);
            }
            let events = self.rescan();
            if !events.is_empty() {
                return Ok(events);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(TransportError::Timeout);
            }
            std::thread::sleep(POLL);
        }
    }

    fn rescan(&mut self) -> Vec<ReaderEvent> {
        let now = self.readers.snapshot();
        let mut events = Vec::new();
        let gone: Vec<String> = self
            .known
            .keys()
            .filter(|k| !now.iter().any(|(n, _, _)| n == *k))
            .cloned()
            .collect();
        for reader in gone {
            self.known.remove(&reader);
            events.push(ReaderEvent::ReaderRemoved { reader });
        }
        for (name, present, insertions) in now {
            let status = if present {
                ReaderStatus::CardPresent
            } else {
                ReaderStatus::Empty
            };
            let before = self.known.insert(name.clone(), (status, insertions));
            let reader = name;
            match before {
                None => events.push(ReaderEvent::ReaderAdded { reader }),
                Some((old, old_insertions)) => {
                    let reinserted = old_insertions != insertions;
                    if old.has_card() && (!present || reinserted) {
                        events.push(ReaderEvent::CardRemoved {
                            reader: reader.clone(),
                        });
                    }
                    if present && (!old.has_card() || reinserted) {
                        let atr = self.atr_of(&reader);
                        events.push(ReaderEvent::CardInserted { reader, atr });
                    }
                }
            }
        }
        events
    }

    fn atr_of(&self, reader: &str) -> Vec<u8> {
        lock(&self.readers.readers)
            .iter()
            .find(|r| r.name == reader)
            .map(|r| r.control.with_card(|c| c.atr()))
            .unwrap_or_default()
    }
}
