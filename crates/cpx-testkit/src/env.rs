//! The child side: which readers the sandbox has, who is using which, and waiting for cards.

use std::ffi::CString;
use std::sync::{Condvar, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use crate::{ENV_READERS, SandboxError, VirtualReader};

/// The sandbox this process runs in, as described by its environment.
#[derive(Debug)]
pub struct SandboxEnv {
    readers: Vec<VirtualReader>,
    /// Per reader: `Some(n)` = free since the n-th return (0 = never used), `None` = leased.
    free: Mutex<Vec<Option<u64>>>,
    returns: std::sync::atomic::AtomicU64,
    returned: Condvar,
}

/// Exclusive use of one virtual reader by one test; given back on drop.
#[derive(Debug)]
pub struct ReaderLease {
    /// The reader's PC/SC name.
    pub name: String,
    /// Its vpcd port.
    pub port: u16,
    index: usize,
    env: &'static SandboxEnv,
}

impl ReaderLease {
    /// `127.0.0.1:<port>`, where a [`cpx_vpcd::CardSlot`] connects.
    pub fn vpcd_addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl ReaderLease {
    fn settle(&self) {
        if let Err(e) = wait_for_card(&self.name, false, Duration::from_secs(5)) {
            log::warn!("leased reader not empty: {e}");
        }
    }
}

impl Drop for ReaderLease {
    fn drop(&mut self) {
        let mut free = self.env.free.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(slot) = free.get_mut(self.index) {
            let n = self
                .env
                .returns
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                + 1;
            *slot = Some(n);
        }
        self.env.returned.notify_all();
    }
}

static ENV: OnceLock<Option<SandboxEnv>> = OnceLock::new();

impl SandboxEnv {
    /// The sandbox of this process, or [`SandboxError::NotInSandbox`].
    pub fn get() -> Result<&'static SandboxEnv, SandboxError> {
        ENV.get_or_init(Self::from_env)
            .as_ref()
            .ok_or(SandboxError::NotInSandbox)
    }

    fn from_env() -> Option<SandboxEnv> {
        let spec = std::env::var(ENV_READERS).ok()?;
        let readers: Vec<VirtualReader> = spec
            .split(';')
            .filter_map(|item| {
                let (name, port) = item.rsplit_once('=')?;
                Some(VirtualReader {
                    name: name.to_owned(),
                    port: port.parse().ok()?,
                })
            })
            .collect();
        let free = Mutex::new(vec![Some(0); readers.len()]);
        Some(SandboxEnv {
            readers,
            free,
            returns: std::sync::atomic::AtomicU64::new(0),
            returned: Condvar::new(),
        })
    }

    /// All readers of the sandbox.
    pub fn readers(&self) -> &[VirtualReader] {
        &self.readers
    }

    /// Take a free reader, waiting for one if every reader is leased. The reader is empty as PC/SC
    /// sees it: a card the previous user removed may take pcscd up to 0.4 s to notice, and a test
    /// must not mistake it for its own.
    pub fn lease(&'static self) -> ReaderLease {
        let lease = {
            let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
            loop {
                // The reader free for the longest time: a reader just given back may still show
                // its previous card to PC/SC clients that poll slowly (a PKCS#11 module, a browser).
                let oldest = free
                    .iter()
                    .enumerate()
                    .filter_map(|(i, f)| f.map(|n| (n, i)))
                    .min();
                if let Some((_, index)) = oldest {
                    free[index] = None;
                    let r = &self.readers[index];
                    break ReaderLease {
                        name: r.name.clone(),
                        port: r.port,
                        index,
                        env: self,
                    };
                }
                free = self.returned.wait(free).unwrap_or_else(PoisonError::into_inner);
            }
        };
        lease.settle();
        lease
    }

    /// Take `n` distinct free readers at once (for tests with several cards).
    pub fn lease_many(&'static self, n: usize) -> Vec<ReaderLease> {
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            let mut available: Vec<(u64, usize)> = free
                .iter()
                .enumerate()
                .filter_map(|(i, f)| f.map(|n| (n, i)))
                .collect();
            available.sort_unstable();
            let available: Vec<usize> = available.into_iter().map(|(_, i)| i).collect();
            if available.len() >= n.min(self.readers.len()) {
                let leases: Vec<ReaderLease> = available
                    .into_iter()
                    .take(n)
                    .map(|index| {
                        free[index] = None;
                        let r = &self.readers[index];
                        ReaderLease {
                            name: r.name.clone(),
                            port: r.port,
                            index,
                            env: self,
                        }
                    })
                    .collect();
                drop(free);
                leases.iter().for_each(ReaderLease::settle);
                return leases;
            }
            free = self.returned.wait(free).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// Whether PC/SC shows a card in `reader` right now (through the sandbox's pcscd).
pub fn card_present(reader: &str) -> Result<bool, pcsc::Error> {
    let ctx = pcsc::Context::establish(pcsc::Scope::User)?;
    let name = CString::new(reader).map_err(|_| pcsc::Error::UnknownReader)?;
    let mut states = [pcsc::ReaderState::new(name, pcsc::State::UNAWARE)];
    ctx.get_status_change(Duration::ZERO, &mut states)?;
    let s = states[0].event_state();
    Ok(s.contains(pcsc::State::PRESENT) && !s.contains(pcsc::State::EMPTY))
}

/// Wait until PC/SC shows (`present = true`) or no longer shows a card in `reader`.
pub fn wait_for_card(reader: &str, present: bool, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        match card_present(reader) {
            Ok(p) if p == present => return Ok(()),
            Ok(_) | Err(pcsc::Error::UnknownReader) => {}
            Err(e) => return Err(format!("{reader}: {e}")),
        }
        if Instant::now() >= deadline {
            let what = if present { "insertion" } else { "removal" };
            return Err(format!("{reader}: no card {what} seen within {timeout:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
