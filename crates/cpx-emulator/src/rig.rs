//! Several virtual cards on several vpcd readers, driven from outside through a control socket:
//! what `cpx emulate` runs, and what an editor's CI can embed.
//!
//! Control protocol: a Unix stream socket; each connection sends one command line and reads the
//! reply (first word `ok` or `error`), then the connection closes.
//!
//! | command | effect |
//! |---|---|
//! | `status` | one line per card: `<index> <label> <vpcd address> inserted\|removed` |
//! | `insert <index\|all>` | put the card(s) in |
//! | `remove <index\|all>` | pull the card(s) out (pcscd notices within 0.4 s) |
//! | `reset <index\|all>` | power-cycle: remove then insert (volatile state lost, PC/SC clients see a new card) |
//! | `quit` | remove every card and stop |

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cpx_vpcd::{CardSlot, VirtualCard, VpcdError};

use crate::state::{CardState, EmulatedCard};

/// One card of a rig.
#[derive(Debug)]
struct RigCard {
    label: String,
    slot: CardSlot,
}

/// Virtual cards plugged into vpcd readers.
///
/// ```no_run
/// use cpx_emulator::{Rig, builtin_image, card_from_image};
///
/// let mut rig = Rig::default();
/// let image = builtin_image("cps3-doctor").expect("built in")?;
/// rig.add("cps3-doctor", "127.0.0.1:35963", card_from_image(&image));
/// rig.insert_all()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Default)]
pub struct Rig {
    cards: Vec<RigCard>,
}

/// What went wrong with a control command.
#[derive(Debug, thiserror::Error)]
pub enum RigError {
    /// The command is not one of the protocol's.
    #[error("unknown command {0:?} (status, insert, remove, reset, quit)")]
    UnknownCommand(String),
    /// The card index does not exist.
    #[error("no card {0} (cards are numbered from 0)")]
    NoSuchCard(String),
    /// vpcd refused the connection.
    #[error(transparent)]
    Vpcd(#[from] VpcdError),
    /// Socket error on the control socket.
    #[error("control socket: {0}")]
    Io(#[from] std::io::Error),
    /// A state file cannot be read, parsed or applied to its card.
    #[error("state file {path}: {reason}")]
    State {
        /// The state file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

impl Rig {
    /// Add a card for the vpcd reader at `addr` (not inserted yet); returns its index.
    pub fn add(
        &mut self,
        label: impl Into<String>,
        addr: impl Into<String>,
        card: Box<dyn VirtualCard>,
    ) -> usize {
        self.cards.push(RigCard {
            label: label.into(),
            slot: CardSlot::new(addr, card),
        });
        self.cards.len() - 1
    }

    /// Add a card whose non-volatile state (PIN/PUK counters and values, written files) lives in
    /// `state_file`: restored from it when it exists, saved to it after every command that changes
    /// it. The card image itself is never modified.
    pub fn add_persistent(
        &mut self,
        label: impl Into<String>,
        addr: impl Into<String>,
        mut card: Box<dyn EmulatedCard>,
        state_file: impl Into<PathBuf>,
    ) -> Result<usize, RigError> {
        let path = state_file.into();
        let err = |reason: String| RigError::State {
            path: path.clone(),
            reason,
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let state: CardState = toml::from_str(&text).map_err(|e| err(e.to_string()))?;
                card.restore(&state).map_err(|e| err(e.to_string()))?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(err(e.to_string())),
        }
        let saved = card.state();
        Ok(self.add(label, addr, Box::new(Persisted { card, path, saved })))
    }

    /// Number of cards.
    pub fn len(&self) -> usize {
        self.cards.len()
    }

    /// Whether the rig has no card.
    pub fn is_empty(&self) -> bool {
        self.cards.is_empty()
    }

    /// Insert every card.
    pub fn insert_all(&mut self) -> Result<(), RigError> {
        for c in &mut self.cards {
            c.slot.insert()?;
        }
        Ok(())
    }

    /// Remove every card.
    pub fn remove_all(&mut self) {
        for c in &mut self.cards {
            c.slot.remove();
        }
    }

    /// `(index, label, vpcd address, inserted)` for each card.
    pub fn status(&self) -> Vec<(usize, &str, &str, bool)> {
        self.cards
            .iter()
            .enumerate()
            .map(|(i, c)| (i, c.label.as_str(), c.slot.addr(), c.slot.is_inserted()))
            .collect()
    }

    /// Wait until pcscd has polled every inserted card (PC/SC clients then see them).
    pub fn wait_seen(&self, timeout: Duration) -> bool {
        self.cards
            .iter()
            .filter(|c| c.slot.is_inserted())
            .all(|c| c.slot.wait_seen(timeout))
    }

    /// Run one control command; `Ok((reply, quit))`.
    pub fn command(&mut self, line: &str) -> Result<(String, bool), RigError> {
        let mut words = line.split_whitespace();
        let verb = words.next().unwrap_or_default();
        let target = words.next();
        match verb {
            "status" => {
                let mut out = String::from("ok");
                for (i, label, addr, inserted) in self.status() {
                    out.push_str(&format!(
                        "\n{i} {label} {addr} {}",
                        if inserted { "inserted" } else { "removed" }
                    ));
                }
                Ok((out, false))
            }
            "insert" | "remove" | "reset" => {
                for i in self.targets(target)? {
                    let slot = &mut self.cards[i].slot;
                    match verb {
                        "insert" => slot.insert()?,
                        "remove" => slot.remove(),
                        _ => {
                            slot.remove();
                            // pcscd must see the removal, or it would take the new connection for
                            // the old card (vpcd polls every 400 ms).
                            std::thread::sleep(Duration::from_millis(600));
                            slot.insert()?;
                        }
                    }
                }
                Ok(("ok".into(), false))
            }
            "quit" => {
                self.remove_all();
                Ok(("ok".into(), true))
            }
            other => Err(RigError::UnknownCommand(other.to_owned())),
        }
    }

    fn targets(&self, target: Option<&str>) -> Result<Vec<usize>, RigError> {
        match target {
            None | Some("all") => Ok((0..self.cards.len()).collect()),
            Some(t) => match t.parse::<usize>() {
                Ok(i) if i < self.cards.len() => Ok(vec![i]),
                _ => Err(RigError::NoSuchCard(t.to_owned())),
            },
        }
    }

    /// Serve the control socket at `path` until `quit` or until `stop` is set. The socket file is
    /// created (replacing a stale one) and removed on return.
    pub fn serve_control(&mut self, path: &Path, stop: &AtomicBool) -> Result<(), RigError> {
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path)?;
        let _cleanup = RemoveOnDrop(path.to_owned());
        listener.set_nonblocking(true)?;
        while !stop.load(Ordering::Acquire) {
            match listener.accept() {
                Ok((stream, _)) => {
                    if self.handle(stream)? {
                        return Ok(());
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Answer one control connection; true on `quit`.
    fn handle(&mut self, stream: UnixStream) -> Result<bool, RigError> {
        stream.set_nonblocking(false)?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut line = String::new();
        BufReader::new(&stream).read_line(&mut line)?;
        let (reply, quit) = match self.command(line.trim()) {
            Ok(r) => r,
            Err(e) => (format!("error {e}"), false),
        };
        let mut stream = stream;
        // The client may have gone already; that is its business.
        let _ = writeln!(stream, "{reply}");
        Ok(quit)
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.remove_all();
    }
}

/// A card that writes its state file whenever its non-volatile state changes.
struct Persisted {
    card: Box<dyn EmulatedCard>,
    path: PathBuf,
    saved: CardState,
}

impl Persisted {
    fn save_if_changed(&mut self) {
        let state = self.card.state();
        if state == self.saved {
            return;
        }
        match write_atomically(&self.path, &state) {
            Ok(()) => self.saved = state,
            Err(e) => log::error!("cannot save card state to {}: {e}", self.path.display()),
        }
    }
}

/// Write to a temporary file beside `path`, then rename: a crash never leaves half a state.
fn write_atomically(path: &Path, state: &CardState) -> std::io::Result<()> {
    let text = toml::to_string_pretty(state).map_err(std::io::Error::other)?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

impl VirtualCard for Persisted {
    fn atr(&self) -> Vec<u8> {
        self.card.atr()
    }
    fn power_on(&mut self) {
        self.card.power_on()
    }
    fn power_off(&mut self) {
        self.card.power_off()
    }
    fn reset(&mut self) {
        self.card.reset()
    }
    fn transmit(&mut self, command: &[u8]) -> Vec<u8> {
        let response = self.card.transmit(command);
        self.save_if_changed();
        response
    }
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Send one control command to a running rig and return its reply.
pub fn control(path: &Path, command: &str) -> std::io::Result<String> {
    let mut stream = UnixStream::connect(path)?;
    writeln!(stream, "{command}")?;
    let mut reply = String::new();
    std::io::Read::read_to_string(&mut stream, &mut reply)?;
    Ok(reply.trim_end().to_owned())
}
