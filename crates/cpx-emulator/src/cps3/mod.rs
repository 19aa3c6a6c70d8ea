//! The CPS3 card (Oberthur IAS-ECC): contact interface (T=0) and contactless interface (docs/card-spec.md
//! §7).

mod cps2ter;
mod files;
mod layout;
mod ops;
mod security;

use cpx_vpcd::VirtualCard;

use crate::apdu::{Command, sw, sw_bytes};
pub use crate::common::Interface;
use crate::common::{Core, Cursor, Profile, SelectForms};
use crate::crypto::CardKey;
use crate::fs::{FileSystem, Rules};
use crate::image::{CardImage, CardKind};
use crate::link::{Link, Protocol, Reply, Step};
use crate::sha_resume::HashAlg;
use crate::state::{CardState, EmulatedCard, StateError};
use crate::variants::Knobs;

/// How the CPS3 processes the commands it shares with the CPS4.
pub(crate) static PROFILE: Profile = Profile {
    select: SelectForms {
        // `00 A4 00 xx` needs a FID; P1 00 and 02 both find the MF, the current DF and its
        // children (docs/card-spec.md §2.2).
        empty_fid_is_mf: false,
        fid_searches_parent: false,
        p1_02_ef_only: false,
        // The CPS3 path form `00 A4 09 xx 3F00 …` (docs/card-spec.md §2.2).
        p1_09_from_3f00: true,
    },
    read_refuses_data: false,
    // `00 2C xx 01` only (docs/card-notes.md §4).
    rrc_accepts_81: false,
    // P1 01 after VERIFY of the object itself (docs/card-spec.md §3.2, §9).
    puk_authorises_pin_change: false,
    // Private business data stay read-only whatever the image's `writable` says.
    private_writable: Rules::PRIVATE,
};

/// The current security environment (volatile, docs/card-spec.md §4.2–§4.3).
#[derive(Debug, Clone, Default)]
struct SecEnv {
    ht: Option<HashAlg>,
    hash: Option<(HashAlg, Vec<u8>)>,
    dst: Option<(u8, u8)>,
    at: Option<(u8, u8)>,
    ct: Option<(u8, u8)>,
}

/// Volatile state besides the IAS current file ([`Core::cursor`]), lost at reset.
#[derive(Debug, Clone, Default)]
struct Session {
    cps2ter: Cursor,
    isd_selected: bool,
    se: SecEnv,
}

/// A virtual CPS3. Build it with [`Cps3Card::new`] from a [`CardImage`] of kind `cps3` or
/// `cps3-contactless`; it implements [`VirtualCard`].
#[derive(Debug, Clone)]
pub struct Cps3Card {
    kind: CardKind,
    core: Core,
    cps2ter: FileSystem,
    keys: Vec<CardKey>,
    session: Session,
    link: Link,
}

impl Cps3Card {
    /// Build the card. A `cps4` image is accepted but modelled as a CPS3 (use the CPS4 model).
    pub fn new(image: &CardImage) -> Self {
        Self::with_knobs(image, Knobs::default())
    }

    /// Build the card of a variant: the image, answering as the knobs say ([`crate::variants`]).
    pub fn with_knobs(image: &CardImage, knobs: Knobs) -> Self {
        let layout = layout::build(image, &knobs);
        let interface = match image.kind {
            CardKind::Cps3Contactless => Interface::Contactless,
            _ => Interface::Contact,
        };
        let protocol = match interface {
            Interface::Contact => Protocol::T0,
            Interface::Contactless => Protocol::T1,
        };
        let mut core = Core::new(&PROFILE, image, interface, protocol, layout.fs, layout.pins);
        let link = Link::new(image.link.get_response_max, &knobs);
        core.knobs = knobs;
        Self {
            kind: image.kind,
            core,
            cps2ter: layout.cps2ter,
            keys: layout.keys,
            session: Session::default(),
            link,
        }
    }

    /// The interface this card is used through.
    pub fn interface(&self) -> Interface {
        self.core.interface
    }

    /// Tries left of a PIN object (01 = PIN, 02 = PUK), for tests and tools.
    pub fn tries_left(&self, reference: u8) -> Option<u8> {
        self.core.pin(reference).map(|p| p.tries_left)
    }

    /// Whether a PIN object is verified in the current session.
    pub fn is_verified(&self, reference: u8) -> bool {
        self.core.pin(reference).is_some_and(|p| p.verified)
    }

    /// Current content of an EF by absolute path (e.g. `[0x3F00, 0x0001, 0xD107]`).
    pub fn file(&self, path: &[u16]) -> Option<&[u8]> {
        self.core.file(path)
    }

    fn key(&self, reference: u8) -> Option<&CardKey> {
        self.keys.iter().find(|k| k.reference == reference)
    }

    fn reset_session(&mut self) {
        self.session = Session::default();
        self.core.clear_session();
        self.link.clear();
    }

    fn dispatch(&mut self, cmd: &Command) -> Reply {
        match cmd.cla {
            0x00 => self.iso(cmd),
            0xA0 if self.core.interface == Interface::Contact && !self.session.isd_selected => {
                self.cps2ter(cmd)
            }
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
            0xB0 => self.core.read_binary(cmd),
            0xD6 => self.core.update_binary(cmd),
            0xCB => self.get_data(cmd),
            0x20 => self.core.verify(cmd),
            0x24 => self.core.change_reference_data(cmd),
            0x2C => self.core.reset_retry_counter(cmd),
            0x22 => self.manage_security_environment(cmd),
            0x2A => self.perform_security_operation(cmd),
            0x88 => self.internal_authenticate(cmd),
            0x84 => self.core.get_challenge(cmd),
            _ => sw::INS_NOT_SUPPORTED.into(),
        }
    }
}

impl VirtualCard for Cps3Card {
    fn atr(&self) -> Vec<u8> {
        self.core.atr.clone()
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
        let protocol = self.core.protocol;
        let cps2ter = self.core.interface == Interface::Contact;
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
        self.core.state(self.kind)
    }

    fn restore(&mut self, saved: &CardState) -> Result<(), StateError> {
        self.core.restore(self.kind, saved)?;
        self.reset_session();
        Ok(())
    }
}
