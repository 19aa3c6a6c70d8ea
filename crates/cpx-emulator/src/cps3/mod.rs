//! The CPS3 card (Oberthur IAS-ECC): contact interface (T=0) and contactless interface (spec §7).

mod cps2ter;
mod files;
mod layout;
mod ops;
mod security;

use cpx_vpcd::VirtualCard;

use crate::apdu::{Command, sw, sw_bytes};
use crate::crypto::CardKey;
use crate::fs::{Access, FileSystem, MF, Rules};
use crate::image::{CardImage, CardKind};
use crate::link::{Link, Protocol, Reply, Step};
use crate::pin::Pin;
use crate::sha_resume::HashAlg;
use crate::state::{self, CardState, EmulatedCard, NonVolatile, StateError};

/// Which interface the card is used through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interface {
    /// ISO 7816-3 contacts.
    Contact,
    /// ISO 14443.
    Contactless,
}

/// The current security environment (volatile, spec §4.2–§4.3).
#[derive(Debug, Clone, Default)]
struct SecEnv {
    ht: Option<HashAlg>,
    hash: Option<(HashAlg, Vec<u8>)>,
    dst: Option<(u8, u8)>,
    at: Option<(u8, u8)>,
    ct: Option<(u8, u8)>,
}

/// Volatile state, lost at reset.
#[derive(Debug, Clone, Default)]
struct Session {
    current_df: usize,
    current_ef: Option<usize>,
    cps2ter_df: usize,
    cps2ter_ef: Option<usize>,
    isd_selected: bool,
    se: SecEnv,
}

/// A virtual CPS3. Build it with [`Cps3Card::new`] from a [`CardImage`] of kind `cps3` or
/// `cps3-contactless`; it implements [`VirtualCard`].
#[derive(Debug, Clone)]
pub struct Cps3Card {
    kind: CardKind,
    atr: Vec<u8>,
    interface: Interface,
    protocol: Protocol,
    fs: FileSystem,
    cps2ter: FileSystem,
    keys: Vec<CardKey>,
    pins: Vec<Pin>,
    pan: [u8; 10],
    challenges: u64,
    sig_fresh_verify: bool,
    session: Session,
    link: Link,
}

impl Cps3Card {
    /// Build the card. A `cps4` image is accepted but modelled as a CPS3 (use the CPS4 model).
    pub fn new(image: &CardImage) -> Self {
        let layout = layout::build(image);
        let interface = match image.kind {
            CardKind::Cps3Contactless => Interface::Contactless,
            _ => Interface::Contact,
        };
        Self {
            kind: image.kind,
            atr: image.atr.clone(),
            interface,
            protocol: match interface {
                Interface::Contact => Protocol::T0,
                Interface::Contactless => Protocol::T1,
            },
            fs: layout.fs,
            cps2ter: layout.cps2ter,
            keys: layout.keys,
            pins: layout.pins,
            pan: image.pan,
            challenges: 0,
            sig_fresh_verify: image.sig_key_fresh_verify,
            session: Session::default(),
            link: Link::default(),
        }
    }

    /// The interface this card is used through.
    pub fn interface(&self) -> Interface {
        self.interface
    }

    /// Tries left of a PIN object (01 = PIN, 02 = PUK), for tests and tools.
    pub fn tries_left(&self, reference: u8) -> Option<u8> {
        self.pin(reference).map(|p| p.tries_left)
    }

    /// Whether a PIN object is verified in the current session.
    pub fn is_verified(&self, reference: u8) -> bool {
        self.pin(reference).is_some_and(|p| p.verified)
    }

    /// Current content of an EF by absolute path (e.g. `[0x3F00, 0x0001, 0xD107]`).
    pub fn file(&self, path: &[u16]) -> Option<&[u8]> {
        let (first, rest) = path.split_first()?;
        if *first != 0x3F00 {
            return None;
        }
        self.fs.data(self.fs.walk(MF, rest)?)
    }

    fn pin(&self, reference: u8) -> Option<&Pin> {
        self.pins.iter().find(|p| p.reference == reference)
    }

    fn pin_mut(&mut self, reference: u8) -> Option<&mut Pin> {
        self.pins.iter_mut().find(|p| p.reference == reference)
    }

    fn user_verified(&self) -> bool {
        self.is_verified(0x01)
    }

    fn key(&self, reference: u8) -> Option<&CardKey> {
        self.keys.iter().find(|k| k.reference == reference)
    }

    fn rules(&self, fs: &FileSystem, idx: usize) -> Rules {
        match (fs.get(idx), self.interface) {
            (Some(f), Interface::Contact) => f.contact,
            (Some(f), Interface::Contactless) => f.contactless,
            (None, _) => Rules::NONE,
        }
    }

    fn check(&self, access: Access) -> Result<(), u16> {
        match access {
            Access::Always => Ok(()),
            Access::Pin if self.user_verified() => Ok(()),
            Access::Pin => Err(sw::SECURITY_NOT_SATISFIED),
            Access::Never => Err(crate::choices::ACCESS_NEVER_SW),
        }
    }

    fn reset_session(&mut self) {
        self.session = Session::default();
        self.link.clear();
        for p in &mut self.pins {
            p.verified = false;
        }
    }

    fn dispatch(&mut self, cmd: &Command) -> Reply {
        match cmd.cla {
            0x00 => self.iso(cmd),
            0xA0 if self.interface == Interface::Contact && !self.session.isd_selected => self.cps2ter(cmd),
            c if c & 0x80 != 0 => sw::CLA_NOT_SUPPORTED.into(),
            c if c & 0x40 == 0 && c & 0x0C != 0 => sw::SM_NOT_SUPPORTED.into(),
            c if c & 0x40 == 0 && c & 0x03 != 0 => crate::choices::CPS3_CHANNEL_SW.into(),
            _ => sw::CLA_NOT_SUPPORTED.into(),
        }
    }

    fn iso(&mut self, cmd: &Command) -> Reply {
        if self.session.isd_selected && !(cmd.ins == 0xA4 && cmd.p1 == 0x04) {
            // choices::ISD_DESELECTS_IAS
            return sw::CLA_NOT_SUPPORTED.into();
        }
        match cmd.ins {
            0xA4 => self.select(cmd),
            0xB0 => self.read_binary(cmd),
            0xD6 => self.update_binary(cmd),
            0xCB => self.get_data(cmd),
            0x20 => self.verify(cmd),
            0x24 => self.change_reference_data(cmd),
            0x2C => self.reset_retry_counter(cmd),
            0x22 => self.manage_security_environment(cmd),
            0x2A => self.perform_security_operation(cmd),
            0x88 => self.internal_authenticate(cmd),
            0x84 => self.get_challenge(cmd),
            _ => sw::INS_NOT_SUPPORTED.into(),
        }
    }
}

impl VirtualCard for Cps3Card {
    fn atr(&self) -> Vec<u8> {
        self.atr.clone()
    }

    fn power_on(&mut self) {
        self.reset_session();
    }

    fn power_off(&mut self) {
        self.reset_session();
    }

    fn transmit(&mut self, command: &[u8]) -> Vec<u8> {
        let Some(cmd) = Command::parse(command) else {
            return sw_bytes(sw::WRONG_LENGTH).to_vec();
        };
        let protocol = self.protocol;
        let cps2ter = self.interface == Interface::Contact;
        let step = self.link.before(
            protocol,
            cmd,
            |ins| matches!(ins, 0x2A | 0x88),
            |cla| cla == 0x00 || (cla == 0xA0 && cps2ter),
        );
        match step {
            Step::Answer(bytes) => bytes,
            Step::Process(cmd) => {
                let reply = self.dispatch(&cmd);
                self.link.after(protocol, &cmd, reply)
            }
        }
    }
}

impl EmulatedCard for Cps3Card {
    fn kind(&self) -> CardKind {
        self.kind
    }

    fn state(&self) -> CardState {
        state::capture(self.kind, &self.pan, &self.fs, &self.pins, self.challenges)
    }

    fn restore(&mut self, saved: &CardState) -> Result<(), StateError> {
        state::apply(
            &mut NonVolatile {
                kind: self.kind,
                pan: &self.pan,
                fs: &mut self.fs,
                pins: &mut self.pins,
                challenges: &mut self.challenges,
            },
            saved,
        )?;
        self.reset_session();
        Ok(())
    }
}
