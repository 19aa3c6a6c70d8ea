//! The card side of vsmartcard's **vpcd** protocol: serve a [`VirtualCard`] to a real `pcscd`.
//!
//! `vpcd` is a PC/SC reader driver (Debian package `vsmartcard-vpcd`) that listens on a TCP port per
//! reader slot; a virtual card is a TCP *client* that connects to that port. Every message in both
//! directions is a 2-byte big-endian length followed by that many bytes. A 1-byte message from vpcd is
//! a control code (power off, power on, reset, get ATR); anything longer is a command APDU, answered by
//! one response APDU. Closing the socket is a card removal; connecting again is an insertion.
//!
//! Debian 12's vpcd 0.8 sends the length and the body of each message in two `send()` calls, so with
//! delayed ACKs every APDU stalls ~40 ms; the card side fixes that by setting `TCP_QUICKACK` before each
//! read (seen with strace on Debian 12), which this crate does.
//!
//! ```no_run
//! use cpx_vpcd::{CardSlot, VirtualCard};
//!
//! struct Hello;
//! impl VirtualCard for Hello {
//!     fn atr(&self) -> Vec<u8> { vec![0x3B, 0x02, 0x14, 0x00] }
//!     fn transmit(&mut self, _apdu: &[u8]) -> Vec<u8> { vec![0x90, 0x00] }
//! }
//!
//! let mut slot = CardSlot::new("127.0.0.1:35963", Box::new(Hello));
//! slot.insert().expect("vpcd reachable");   // the reader now shows a card
//! slot.remove();                            // and now it does not
//! ```

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Control code sent by vpcd: power the card off (no reply).
pub const CTRL_POWER_OFF: u8 = 0x00;
/// Control code sent by vpcd: power the card on (no reply).
pub const CTRL_POWER_ON: u8 = 0x01;
/// Control code sent by vpcd: warm reset (no reply).
pub const CTRL_RESET: u8 = 0x02;
/// Control code sent by vpcd: the card replies with its ATR.
pub const CTRL_GET_ATR: u8 = 0x04;

/// The default vpcd port of Debian's `/etc/reader.conf.d/vpcd` (`CHANNELID 0x8C7B`).
pub const DEFAULT_VPCD_PORT: u16 = 35963;

/// A smart card as seen from the reader: an ATR and an APDU processor.
///
/// Implementations keep their non-volatile state (files, PIN counters) across [`power_on`] and
/// [`reset`]; volatile state (selected file, verified PIN, security environment) is lost there, as on a
/// real card.
///
/// [`power_on`]: VirtualCard::power_on
/// [`reset`]: VirtualCard::reset
pub trait VirtualCard: Send {
    /// The answer-to-reset. vpcd asks for it on every presence poll (every 400 ms), even between two
    /// APDUs of a transaction, so this must not change card state.
    fn atr(&self) -> Vec<u8>;

    /// Cold reset: the card is powered.
    fn power_on(&mut self) {}

    /// The card is powered off.
    fn power_off(&mut self) {}

    /// Warm reset (another PC/SC client asked for `SCARD_RESET_CARD`). Defaults to a power cycle.
    fn reset(&mut self) {
        self.power_off();
        self.power_on();
    }

    /// Process one command APDU and return the response APDU (data followed by SW1 SW2).
    ///
    /// Do not return an empty vector: Debian's vpcd 0.8 then waits for an answer that never
    /// comes and the client's `SCardTransmit` blocks (about 10 s). To model a card pulled out
    /// in the middle of a command, end the connection instead (cpx-testkit's `FaultyCard` does,
    /// by unwinding out of this method: [`CardSlot`]'s serving thread then closes the socket).
    fn transmit(&mut self, command: &[u8]) -> Vec<u8>;
}

impl<T: VirtualCard + ?Sized> VirtualCard for Box<T> {
    fn atr(&self) -> Vec<u8> {
        (**self).atr()
    }
    fn power_on(&mut self) {
        (**self).power_on()
    }
    fn power_off(&mut self) {
        (**self).power_off()
    }
    fn reset(&mut self) {
        (**self).reset()
    }
    fn transmit(&mut self, command: &[u8]) -> Vec<u8> {
        (**self).transmit(command)
    }
}

/// Errors of the card side of the vpcd link.
#[derive(Debug, thiserror::Error)]
pub enum VpcdError {
    /// The vpcd port did not accept a connection before the deadline.
    #[error("cannot connect to vpcd at {addr}: {source}")]
    Connect {
        /// Where we tried to connect.
        addr: String,
        /// The last connection error.
        #[source]
        source: io::Error,
    },
    /// vpcd closed the connection (pcscd stopped, or it dropped the card).
    #[error("vpcd closed the connection")]
    Closed,
    /// A response longer than the 2-byte length prefix can carry.
    #[error("response of {0} bytes does not fit a vpcd message")]
    ResponseTooLong(usize),
    /// Any other socket error.
    #[error("vpcd socket error: {0}")]
    Io(#[from] io::Error),
}

/// What one served message was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Served {
    /// A control code (power on/off, reset, get ATR).
    Control(u8),
    /// A command APDU and the response sent back.
    Apdu {
        /// The command as received.
        command: Vec<u8>,
        /// The response as sent.
        response: Vec<u8>,
    },
    /// No complete message arrived within the read timeout.
    Idle,
}

/// One TCP connection to a vpcd reader slot (one inserted card).
#[derive(Debug)]
pub struct VpcdConnection {
    stream: TcpStream,
    pending: Vec<u8>,
}

impl VpcdConnection {
    /// Connect to vpcd, retrying refused connections until `timeout` (pcscd may still be starting).
    pub fn connect(addr: impl ToSocketAddrs, timeout: Duration) -> Result<Self, VpcdError> {
        let addrs: Vec<SocketAddr> = addr.to_socket_addrs()?.collect();
        let label = addrs.first().map(ToString::to_string).unwrap_or_default();
        let deadline = Instant::now() + timeout;
        loop {
            let mut last = io::Error::new(io::ErrorKind::InvalidInput, "no address");
            for a in &addrs {
                match TcpStream::connect_timeout(a, Duration::from_millis(500)) {
                    Ok(stream) => return Self::from_stream(stream),
                    Err(e) => last = e,
                }
            }
            if Instant::now() >= deadline {
                return Err(VpcdError::Connect {
                    addr: label,
                    source: last,
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn from_stream(stream: TcpStream) -> Result<Self, VpcdError> {
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_millis(50)))?;
        Ok(Self {
            stream,
            pending: Vec::with_capacity(300),
        })
    }

    /// Read and answer at most one message. Returns [`Served::Idle`] when nothing complete arrived
    /// within the socket's read timeout (50 ms), so a serving loop can check a stop flag.
    pub fn serve_one(&mut self, card: &mut dyn VirtualCard) -> Result<Served, VpcdError> {
        match self.read_message()? {
            Some(message) => self.dispatch(message, card),
            None => Ok(Served::Idle),
        }
    }

    fn dispatch(&mut self, message: Vec<u8>, card: &mut dyn VirtualCard) -> Result<Served, VpcdError> {
        log::trace!(target: "cpx::vpcd", "{:?} <- {:02X?}", self.stream.peer_addr().ok(), message.get(..5));
        match message.as_slice() {
            [] => Ok(Served::Idle),
            [code] => {
                match *code {
                    CTRL_POWER_OFF => card.power_off(),
                    CTRL_POWER_ON => card.power_on(),
                    CTRL_RESET => card.reset(),
                    CTRL_GET_ATR => {
                        let atr = card.atr();
                        self.write_message(&atr)?;
                    }
                    other => log::warn!("vpcd: unknown control code {other:#04x}"),
                }
                Ok(Served::Control(*code))
            }
            command => {
                let response = card.transmit(command);
                self.write_message(&response)?;
                Ok(Served::Apdu {
                    command: message,
                    response,
                })
            }
        }
    }

    /// Serve messages until `stop` is set or vpcd closes the connection.
    pub fn serve(&mut self, card: &Mutex<Box<dyn VirtualCard>>, stop: &AtomicBool) -> Result<(), VpcdError> {
        self.serve_counting(card, stop, &AtomicU64::new(0))
    }

    fn serve_counting(
        &mut self,
        card: &Mutex<Box<dyn VirtualCard>>,
        stop: &AtomicBool,
        served: &AtomicU64,
    ) -> Result<(), VpcdError> {
        while !stop.load(Ordering::Acquire) {
            // Wait for a message without holding the card, so tests can inspect it meanwhile.
            let Some(message) = self.read_message()? else {
                continue;
            };
            let mut guard = lock(card);
            if self.dispatch(message, &mut **guard)? != Served::Idle {
                served.fetch_add(1, Ordering::AcqRel);
            }
        }
        Ok(())
    }

    fn read_message(&mut self) -> Result<Option<Vec<u8>>, VpcdError> {
        loop {
            if self.pending.len() >= 2 {
                let n = usize::from(u16::from_be_bytes([self.pending[0], self.pending[1]]));
                if self.pending.len() >= 2 + n {
                    let message = self.pending[2..2 + n].to_vec();
                    self.pending.drain(..2 + n);
                    return Ok(Some(message));
                }
            }
            // Debian's vpcd 0.8 writes length and body separately: without QUICKACK our delayed ACK
            // holds its second write back ~40 ms (measured on Debian 12). The option resets itself.
            let _ = rustix::net::sockopt::set_tcp_quickack(&self.stream, true);
            let mut buf = [0u8; 1024];
            match self.stream.read(&mut buf) {
                Ok(0) => return Err(VpcdError::Closed),
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                    return Ok(None);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn write_message(&mut self, body: &[u8]) -> Result<(), VpcdError> {
        let n = u16::try_from(body.len()).map_err(|_| VpcdError::ResponseTooLong(body.len()))?;
        let mut frame = Vec::with_capacity(body.len() + 2);
        frame.extend_from_slice(&n.to_be_bytes());
        frame.extend_from_slice(body);
        self.stream.write_all(&frame)?;
        Ok(())
    }
}

fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A card that panicked mid-APDU is still the best card we have: keep serving it.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The serving thread of an inserted card and its stop flag.
type Serving = (Arc<AtomicBool>, JoinHandle<Result<(), VpcdError>>);

/// A virtual card that can be inserted into and removed from one vpcd reader slot.
///
/// The card object outlives insertions: removing and re-inserting keeps its non-volatile state, as
/// with a physical card. Dropping the slot removes the card.
pub struct CardSlot {
    addr: String,
    card: Arc<Mutex<Box<dyn VirtualCard>>>,
    running: Option<Serving>,
    connect_timeout: Duration,
    /// Messages served on the current connection: > 0 once pcscd has polled the card.
    served: Arc<AtomicU64>,
}

impl std::fmt::Debug for CardSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardSlot")
            .field("addr", &self.addr)
            .field("inserted", &self.is_inserted())
            .finish()
    }
}

impl CardSlot {
    /// A slot for vpcd at `addr` (`host:port`), with the card not yet inserted.
    pub fn new(addr: impl Into<String>, card: Box<dyn VirtualCard>) -> Self {
        Self {
            addr: addr.into(),
            card: Arc::new(Mutex::new(card)),
            running: None,
            connect_timeout: Duration::from_secs(10),
            served: Arc::new(AtomicU64::new(0)),
        }
    }

    /// How long [`insert`](Self::insert) keeps retrying a refused connection (default 10 s).
    pub fn set_connect_timeout(&mut self, timeout: Duration) {
        self.connect_timeout = timeout;
    }

    /// The vpcd address this slot connects to.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Insert the card: connect to vpcd and serve it on a background thread. No-op when inserted.
    pub fn insert(&mut self) -> Result<(), VpcdError> {
        if self.is_inserted() {
            return Ok(());
        }
        self.reap();
        let mut conn = VpcdConnection::connect(self.addr.as_str(), self.connect_timeout)?;
        let stop = Arc::new(AtomicBool::new(false));
        self.served.store(0, Ordering::Release);
        let served = Arc::clone(&self.served);
        let card = Arc::clone(&self.card);
        let thread_stop = Arc::clone(&stop);
        let addr = self.addr.clone();
        let handle = std::thread::Builder::new()
            .name(format!("vpcd-card-{addr}"))
            .spawn(move || {
                let result = conn.serve_counting(&card, &thread_stop, &served);
                if let Err(e) = &result {
                    log::debug!("vpcd card at {addr}: {e}");
                }
                result
            })?;
        self.running = Some((stop, handle));
        Ok(())
    }

    /// Remove the card: stop serving and close the socket (pcscd sees the removal within ~0.4 s).
    pub fn remove(&mut self) {
        if let Some((stop, handle)) = self.running.take() {
            stop.store(true, Ordering::Release);
            let _ = handle.join();
        }
    }

    /// Wait until pcscd has talked to the inserted card (its first presence poll, at most ~0.4 s
    /// after insertion): from then on PC/SC clients see the card. False on timeout or if the card
    /// is not inserted.
    pub fn wait_seen(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.is_inserted() {
            if self.served.load(Ordering::Acquire) > 0 {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    /// Whether the card is inserted and its connection alive.
    pub fn is_inserted(&self) -> bool {
        self.running.as_ref().is_some_and(|(_, h)| !h.is_finished())
    }

    /// Exclusive access to the card object, e.g. to inspect or change its state between APDUs.
    pub fn card(&self) -> MutexGuard<'_, Box<dyn VirtualCard>> {
        lock(&self.card)
    }

    /// Replace the card object (a different card in the same reader). Takes effect at the next
    /// insertion; call [`remove`](Self::remove) first to swap a card in place.
    pub fn replace_card(&mut self, card: Box<dyn VirtualCard>) {
        *lock(&self.card) = card;
    }

    fn reap(&mut self) {
        if let Some((_, handle)) = self.running.take() {
            let _ = handle.join();
        }
    }
}

impl Drop for CardSlot {
    fn drop(&mut self) {
        self.remove();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    struct Echo {
        powered: u32,
    }
    impl VirtualCard for Echo {
        fn atr(&self) -> Vec<u8> {
            vec![0x3B, 0x02, 0x14, 0x00]
        }
        fn power_on(&mut self) {
            self.powered += 1;
        }
        fn transmit(&mut self, command: &[u8]) -> Vec<u8> {
            let mut r = command.to_vec();
            r.extend_from_slice(&[0x90, 0x00]);
            r
        }
    }

    fn frame(body: &[u8]) -> Vec<u8> {
        let mut v = (body.len() as u16).to_be_bytes().to_vec();
        v.extend_from_slice(body);
        v
    }

    fn read_frame(s: &mut TcpStream) -> Vec<u8> {
        let mut len = [0u8; 2];
        s.read_exact(&mut len).unwrap();
        let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
        s.read_exact(&mut body).unwrap();
        body
    }

    /// A fake vpcd: the reader side of the protocol, split writes included (as vpcd 0.8 does).
    #[test]
    fn serves_control_codes_and_apdus_like_vpcd_expects() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let mut slot = CardSlot::new(addr, Box::new(Echo { powered: 0 }));
        slot.insert().unwrap();
        let (mut reader, _) = listener.accept().unwrap();

        reader.write_all(&frame(&[CTRL_GET_ATR])).unwrap();
        assert_eq!(read_frame(&mut reader), vec![0x3B, 0x02, 0x14, 0x00]);
        reader.write_all(&frame(&[CTRL_POWER_ON])).unwrap();
        // length and body in two writes, as vpcd 0.8 sends them
        let apdu = [0x00, 0xA4, 0x04, 0x00, 0x00];
        reader.write_all(&(apdu.len() as u16).to_be_bytes()).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        reader.write_all(&apdu).unwrap();
        assert_eq!(
            read_frame(&mut reader),
            vec![0x00, 0xA4, 0x04, 0x00, 0x00, 0x90, 0x00]
        );
        assert_eq!(slot.card().atr().len(), 4);

        slot.remove();
        assert!(!slot.is_inserted());
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).unwrap(); // the card closed its side: EOF
        assert!(rest.is_empty());
    }

    #[test]
    fn connect_gives_up_with_a_precise_error() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let err = VpcdConnection::connect(addr, Duration::from_millis(100)).unwrap_err();
        assert!(matches!(err, VpcdError::Connect { .. }), "{err}");
    }
}
