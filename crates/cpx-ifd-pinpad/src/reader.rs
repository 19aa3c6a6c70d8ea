//! One emulated PIN-pad reader: the reader side of the vpcd protocol (a TCP server a virtual
//! card connects to, as in `cpx_vpcd`'s crate documentation), and the part 10 control commands.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use cpx_vpcd::{CTRL_GET_ATR, CTRL_POWER_OFF, CTRL_POWER_ON, CTRL_RESET};

use crate::keypad;
use crate::pin::{self, PadOutcome};

/// pcsc-lite's `SCARD_CTL_CODE(code)`: `0x42000000 + code` (reader.h).
const fn scard_ctl_code(code: u32) -> u32 {
    0x4200_0000 + code
}

/// `CM_IOCTL_GET_FEATURE_REQUEST` (docs/reader-features.md).
pub const GET_FEATURE_REQUEST: u32 = scard_ctl_code(3400);

/// The control code of feature `tag`: libccid's scheme, `SCARD_CTL_CODE(0x330000 + tag)`
/// (`CLASS2_IOCTL_MAGIC`), so that our reader looks like a CCID one to the middleware.
pub const fn feature_code(tag: u8) -> u32 {
    scard_ctl_code(0x33_0000 + tag as u32)
}

/// Feature tags (PC/SC part 10 §2.3, reader.h).
pub mod tag {
    /// `FEATURE_VERIFY_PIN_DIRECT`.
    pub const VERIFY_PIN_DIRECT: u8 = 0x06;
    /// `FEATURE_MODIFY_PIN_DIRECT`.
    pub const MODIFY_PIN_DIRECT: u8 = 0x07;
    /// `FEATURE_IFD_PIN_PROPERTIES`.
    pub const IFD_PIN_PROPERTIES: u8 = 0x0A;
    /// `FEATURE_GET_TLV_PROPERTIES`.
    pub const GET_TLV_PROPERTIES: u8 = 0x12;
}

const FEATURES: [u8; 4] = [
    tag::VERIFY_PIN_DIRECT,
    tag::MODIFY_PIN_DIRECT,
    tag::IFD_PIN_PROPERTIES,
    tag::GET_TLV_PROPERTIES,
];

/// The shortest and longest PIN the keypad takes (announced as `bMinPINSize`/`bMaxPINSize`).
pub const PAD_MIN_PIN: u8 = 4;
/// See [`PAD_MIN_PIN`].
pub const PAD_MAX_PIN: u8 = 8;

/// `bEntryValidationCondition`: validation key pressed (part 10 §2.5.2).
const VALIDATION_KEY: u8 = 0x02;

/// How long we wait for the emulated card to answer one message (RSA in a debug emulator is
/// slow; a mute card must still not hang pcscd forever).
const CARD_TIMEOUT: Duration = Duration::from_secs(60);

/// The answer to `CM_IOCTL_GET_FEATURE_REQUEST`: tag, 4, big-endian code, per feature.
///
/// ```
/// let list = cpx_ifd_pinpad::reader::feature_list();
/// assert_eq!(&list[..6], [0x06, 0x04, 0x42, 0x33, 0x00, 0x06]);
/// ```
pub fn feature_list() -> Vec<u8> {
    FEATURES
        .iter()
        .flat_map(|&t| {
            let mut entry = vec![t, 4];
            entry.extend(feature_code(t).to_be_bytes());
            entry
        })
        .collect()
}

/// `PIN_PROPERTIES_STRUCTURE`: `wLcdLayout` (LE; 0, no display), `bEntryValidationCondition`,
/// `bTimeOut2`.
pub fn pin_properties() -> Vec<u8> {
    vec![0x00, 0x00, VALIDATION_KEY, 0x00]
}

/// The answer to `FEATURE_GET_TLV_PROPERTIES` (part 10 §2.6.14; little-endian values).
pub fn tlv_properties() -> Vec<u8> {
    let mut tlv = vec![
        0x01,
        0x02,
        0x00,
        0x00, // wLcdLayout: no display
        0x02,
        0x01,
        VALIDATION_KEY, // bEntryValidationCondition
        0x03,
        0x01,
        0x00, // bTimeOut2
        0x06,
        0x01,
        PAD_MIN_PIN, // bMinPINSize
        0x07,
        0x01,
        PAD_MAX_PIN, // bMaxPINSize
    ];
    let firmware = concat!("cpx-ifd-pinpad ", env!("CARGO_PKG_VERSION"));
    tlv.push(0x08);
    tlv.push(firmware.len() as u8);
    tlv.extend(firmware.as_bytes());
    tlv
}

/// Where the reader listens and where its keypad script is, from the reader.conf `DEVICENAME`:
/// `<keypad script path>:<tcp port>` (docs/pinpad-reader.md). The form is vpcd's
/// (`/dev/null:<port>`) because pcscd's reader.conf parser takes no `;` or `=` in a value, and
/// stats a `DEVICENAME` without a `:` as a device file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceName {
    /// The TCP port the virtual card connects to (127.0.0.1).
    pub port: u16,
    /// The keypad script.
    pub keypad: PathBuf,
}

impl DeviceName {
    /// Parse a `DEVICENAME`.
    ///
    /// ```
    /// use cpx_ifd_pinpad::reader::DeviceName;
    /// let d = DeviceName::parse("/tmp/s/keypad:36001").unwrap();
    /// assert_eq!((d.port, d.keypad.to_str()), (36001, Some("/tmp/s/keypad")));
    /// assert!(DeviceName::parse("/tmp/s/keypad").is_none());
    /// assert!(DeviceName::parse(":36001").is_none());
    /// ```
    pub fn parse(text: &str) -> Option<DeviceName> {
        let (keypad, port) = text.rsplit_once(':')?;
        if keypad.is_empty() {
            return None;
        }
        Some(DeviceName {
            port: port.trim().parse().ok()?,
            keypad: PathBuf::from(keypad),
        })
    }
}

/// What a control command produced, for the C side.
#[derive(Debug)]
pub enum ControlError {
    /// Not a code this reader has.
    Unsupported(u32),
    /// The input structure is refused.
    Structure(pin::StructureError),
    /// The keypad script could not be read.
    Keypad(keypad::KeypadError),
    /// No card, or the card went away.
    Card(io::Error),
}

impl std::fmt::Display for ControlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unsupported(code) => write!(f, "control code 0x{code:08X} not supported"),
            Self::Structure(e) => write!(f, "{e}"),
            Self::Keypad(e) => write!(f, "{e}"),
            Self::Card(e) => write!(f, "card: {e}"),
        }
    }
}

/// One PIN-pad reader (one slot).
#[derive(Debug)]
pub struct Reader {
    listener: TcpListener,
    card: Option<TcpStream>,
    keypad: PathBuf,
}

impl Reader {
    /// Listen on 127.0.0.1:`device.port` for the virtual card.
    pub fn open(device: &DeviceName) -> io::Result<Reader> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, device.port))?;
        listener.set_nonblocking(true)?;
        Ok(Reader {
            listener,
            card: None,
            keypad: device.keypad.clone(),
        })
    }

    fn send(&mut self, message: &[u8]) -> io::Result<()> {
        let stream = self.card.as_mut().ok_or_else(no_card)?;
        let len = u16::try_from(message.len()).map_err(|_| io::Error::other("message too long for vpcd"))?;
        // One write for length and body: no 40 ms stall with delayed ACKs (crates/cpx-vpcd/src/lib.rs).
        let mut framed = zeroize::Zeroizing::new(Vec::with_capacity(message.len() + 2));
        framed.extend(len.to_be_bytes());
        framed.extend(message);
        let result = stream.write_all(&framed);
        self.drop_on_error(result)
    }

    fn receive(&mut self) -> io::Result<Vec<u8>> {
        let stream = self.card.as_mut().ok_or_else(no_card)?;
        let result = (|| {
            let mut len = [0u8; 2];
            stream.read_exact(&mut len)?;
            let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
            stream.read_exact(&mut body)?;
            if body.is_empty() {
                // The card's way of leaving (cpx_vpcd): a removal.
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "card left"));
            }
            Ok(body)
        })();
        self.drop_on_error(result)
    }

    fn drop_on_error<T>(&mut self, result: io::Result<T>) -> io::Result<T> {
        if result.is_err() {
            self.card = None;
        }
        result
    }

    /// The card's ATR, or an error if there is no card (accepting a waiting one first).
    pub fn atr(&mut self) -> io::Result<Vec<u8>> {
        if self.card.is_none() {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    stream.set_nonblocking(false)?;
                    stream.set_nodelay(true)?;
                    stream.set_read_timeout(Some(CARD_TIMEOUT))?;
                    stream.set_write_timeout(Some(CARD_TIMEOUT))?;
                    self.card = Some(stream);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Err(no_card()),
                Err(e) => return Err(e),
            }
        }
        self.send(&[CTRL_GET_ATR])?;
        self.receive()
    }

    /// Whether a card is in the reader (pcscd's presence poll).
    pub fn present(&mut self) -> bool {
        self.atr().is_ok()
    }

    /// Power the card up (cold reset), and return its ATR.
    pub fn power_up(&mut self) -> io::Result<Vec<u8>> {
        self.atr()?;
        self.send(&[CTRL_POWER_ON])?;
        self.atr()
    }

    /// Warm reset, and return the ATR.
    pub fn reset(&mut self) -> io::Result<Vec<u8>> {
        self.atr()?;
        self.send(&[CTRL_RESET])?;
        self.atr()
    }

    /// Power the card down.
    pub fn power_down(&mut self) -> io::Result<()> {
        if self.card.is_some() {
            self.send(&[CTRL_POWER_OFF])?;
        }
        Ok(())
    }

    /// Send a command APDU, return the card's response.
    pub fn transmit(&mut self, apdu: &[u8]) -> io::Result<Vec<u8>> {
        if apdu.len() < 2 {
            // A 1-byte message would be read as a vpcd control code by the card.
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "APDU shorter than 2 bytes",
            ));
        }
        self.send(apdu)?;
        self.receive()
    }

    /// Answer the control command `code` with `input`.
    pub fn control(&mut self, code: u32, input: &[u8]) -> Result<Vec<u8>, ControlError> {
        match code {
            GET_FEATURE_REQUEST => Ok(feature_list()),
            c if c == feature_code(tag::IFD_PIN_PROPERTIES) => Ok(pin_properties()),
            c if c == feature_code(tag::GET_TLV_PROPERTIES) => Ok(tlv_properties()),
            c if c == feature_code(tag::VERIFY_PIN_DIRECT) => {
                let s = pin::parse_verify(input).map_err(ControlError::Structure)?;
                let entry = keypad::next_entry(&self.keypad).map_err(ControlError::Keypad)?;
                self.finish(pin::verify_apdu(&s, &entry))
            }
            c if c == feature_code(tag::MODIFY_PIN_DIRECT) => {
                let s = pin::parse_modify(input).map_err(ControlError::Structure)?;
                let keypad = self.keypad.clone();
                let outcome =
                    pin::modify_apdu(&s, || keypad::next_entry(&keypad)).map_err(ControlError::Keypad)?;
                self.finish(outcome)
            }
            other => Err(ControlError::Unsupported(other)),
        }
    }

    fn finish(&mut self, outcome: PadOutcome) -> Result<Vec<u8>, ControlError> {
        match outcome {
            PadOutcome::Answer(sw) => Ok(sw.to_vec()),
            PadOutcome::Send(apdu) => self.transmit(&apdu).map_err(ControlError::Card),
        }
    }
}

fn no_card() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "no card in the reader")
}
