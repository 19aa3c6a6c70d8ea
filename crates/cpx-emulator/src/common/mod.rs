//! What the CPS3 (IAS-ECC) and CPS4 (ChipDoc) models share: the PKCS#15 file system, the CHV
//! objects, the current file and the GET CHALLENGE counter ([`Core`]), and the commands both cards
//! process the same way (`files`: SELECT resolution, READ/UPDATE BINARY; `pins`: VERIFY, CHANGE
//! REFERENCE DATA, RESET RETRY COUNTER; `layout`: building the PKCS#15 application).
//!
//! Where the two cards differ inside those commands, the difference is a field of [`Profile`], set
//! once per card (`cps3::PROFILE`, `cps4::PROFILE`) with its source. What only one card has (IAS
//! GET DATA, CPS2ter, Java Card channels, the security environments and crypto operations) stays
//! in its own module.

mod files;
pub(crate) mod layout;
mod pins;

use sha2::Digest;

use crate::apdu::{Command, sw};
use crate::choices;
use crate::fs::{Access, FileSystem, MF, Rules};
use crate::image::{CardImage, CardKind};
use crate::link::{Protocol, Reply};
use crate::pin::Pin;
use crate::state::{self, CardState, NonVolatile, StateError};
use crate::tlv::tlv;

pub(crate) use files::{Cursor, SelectForms};

/// Which interface the card is used through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interface {
    /// ISO 7816-3 contacts.
    Contact,
    /// ISO 14443.
    Contactless,
}

/// The user PIN (CHV 01) and the PUK (CHV 02).
pub(crate) const PIN: u8 = 0x01;
/// See [`PIN`].
pub(crate) const PUK: u8 = 0x02;

/// What differs between the cards in the commands they share. One value per card, each field
/// citing the source of its value.
#[derive(Debug)]
pub(crate) struct Profile {
    /// The SELECT forms inside the application (docs/card-spec.md §2.2, CPS3 and CPS4 columns).
    pub(crate) select: SelectForms,
    /// READ BINARY with command data answers 6700 before anything else; otherwise the data is
    /// ignored.
    pub(crate) read_refuses_data: bool,
    /// RESET RETRY COUNTER also names the user PIN with bit 8 set (`81`); otherwise only `01`.
    pub(crate) rrc_accepts_81: bool,
    /// CHANGE REFERENCE DATA P1 01 of the user PIN is allowed after VERIFY of the PUK (not only
    /// after VERIFY of the PIN itself).
    pub(crate) puk_authorises_pin_change: bool,
    /// File rules of a private business data object the image marks `writable`.
    pub(crate) private_writable: Rules,
}

/// The state both card models hold. Non-volatile: the file system, the PIN objects, the GET
/// CHALLENGE counter (see [`crate::state`]); volatile: the current file and verified PINs.
#[derive(Debug, Clone)]
pub(crate) struct Core {
    pub(crate) profile: &'static Profile,
    pub(crate) atr: Vec<u8>,
    pub(crate) interface: Interface,
    pub(crate) protocol: Protocol,
    pub(crate) fs: FileSystem,
    pub(crate) pins: Vec<Pin>,
    pub(crate) pan: [u8; 10],
    pub(crate) challenges: u64,
    /// `choices::SIG_KEY_FRESH_VERIFY`, per image.
    sig_fresh_verify: bool,
    pub(crate) cursor: Cursor,
    /// Transport limits of a replayed field card ([`crate::LinkImage`]).
    pub(crate) link_image: crate::LinkImage,
    /// A replayed field card's security environments ([`CardImage::security_environments`]).
    pub(crate) security_environments: Vec<crate::image::RecordedSe>,
    /// The variant knobs the card answers with ([`crate::variants`]; default: the model card).
    pub(crate) knobs: crate::variants::Knobs,
}

impl Core {
    pub(crate) fn new(
        profile: &'static Profile,
        image: &CardImage,
        interface: Interface,
        protocol: Protocol,
        mut fs: FileSystem,
        pins: Vec<Pin>,
    ) -> Self {
        for f in &image.files {
            let content = (!f.fcp_only).then(|| f.content.clone());
            if !fs.put_ef(&f.path, content, f.fcp.clone()) {
                log::warn!(
                    "recorded file {:04X?}: its path goes through an EF, left out",
                    f.path
                );
            }
        }
        for path in &image.absent {
            fs.remove_ef(path);
        }
        Self {
            profile,
            atr: image.atr.clone(),
            interface,
            protocol,
            fs,
            pins,
            pan: image.pan,
            challenges: 0,
            sig_fresh_verify: image.sig_key_fresh_verify,
            cursor: Cursor::default(),
            link_image: image.link,
            security_environments: image.security_environments.clone(),
            knobs: crate::variants::Knobs::default(),
        }
    }

    pub(crate) fn pin(&self, reference: u8) -> Option<&Pin> {
        self.pins.iter().find(|p| p.reference == reference)
    }

    pub(crate) fn pin_mut(&mut self, reference: u8) -> Option<&mut Pin> {
        self.pins.iter_mut().find(|p| p.reference == reference)
    }

    pub(crate) fn user_verified(&self) -> bool {
        self.pin(PIN).is_some_and(|p| p.verified)
    }

    /// Current content of an EF by absolute path (e.g. `[0x3F00, 0x0001, 0xD107]`).
    pub(crate) fn file(&self, path: &[u16]) -> Option<&[u8]> {
        let (first, rest) = path.split_first()?;
        if *first != 0x3F00 {
            return None;
        }
        self.fs.data(self.fs.walk(MF, rest)?)
    }

    /// The rules of a file on the interface in use (`8C` contact, `9C` contactless).
    pub(crate) fn rules(&self, idx: usize) -> Rules {
        match (self.fs.get(idx), self.interface) {
            (Some(f), Interface::Contact) => f.contact,
            (Some(f), Interface::Contactless) => f.contactless,
            (None, _) => Rules::NONE,
        }
    }

    pub(crate) fn check(&self, access: Access) -> Result<(), u16> {
        match access {
            Access::Always => Ok(()),
            Access::Pin if self.user_verified() => Ok(()),
            Access::Pin => Err(sw::SECURITY_NOT_SATISFIED),
            Access::Never => Err(choices::ACCESS_NEVER_SW),
        }
    }

    /// No PIN object verified any more.
    pub(crate) fn logout(&mut self) {
        for p in &mut self.pins {
            p.verified = false;
        }
    }

    /// The application loses its volatile state (reset, deselection): current file, verified PINs.
    pub(crate) fn clear_session(&mut self) {
        self.cursor = Cursor::default();
        self.logout();
    }

    /// After a signature with the signature key: `choices::SIG_KEY_FRESH_VERIFY`.
    pub(crate) fn signed(&mut self) {
        if self.sig_fresh_verify
            && let Some(p) = self.pin_mut(PIN)
        {
            p.verified = false;
        }
    }

    pub(crate) fn state(&self, kind: CardKind) -> CardState {
        state::capture(kind, &self.pan, &self.fs, &self.pins, self.challenges)
    }

    /// Apply a saved state (the caller then resets the card's volatile state).
    pub(crate) fn restore(&mut self, kind: CardKind, saved: &CardState) -> Result<(), StateError> {
        state::apply(
            &mut NonVolatile {
                kind,
                pan: &self.pan,
                fs: &mut self.fs,
                pins: &mut self.pins,
                challenges: &mut self.challenges,
            },
            saved,
        )
    }

    /// GET CHALLENGE `xx 84 00 00 08` (docs/card-spec.md §4.5), deterministic (`choices::CHALLENGE_LEN`).
    pub(crate) fn get_challenge(&mut self, cmd: &Command) -> Reply {
        if cmd.p1 != 0 || cmd.p2 != 0 || !cmd.data.is_empty() {
            return sw::WRONG_P1P2.into();
        }
        if cmd.ne() != Some(choices::CHALLENGE_LEN) {
            return match self.protocol {
                Protocol::T0 => (0x6C00 | choices::CHALLENGE_LEN as u16).into(),
                Protocol::T1 => sw::WRONG_LENGTH.into(),
            };
        }
        self.challenges = self.challenges.wrapping_add(1);
        let mut h = sha2::Sha256::new();
        h.update(self.pan);
        h.update(self.challenges.to_be_bytes());
        Reply::direct(h.finalize()[..choices::CHALLENGE_LEN].to_vec(), sw::OK)
    }
}

/// The FCI of the GlobalPlatform ISD (AID `facts::AID_ISD`), as both cards answer its SELECT.
pub(crate) fn isd_fci() -> Vec<u8> {
    let prop = tlv(&[0xA5], &tlv(&[0x9F, 0x65], &[0xFF]));
    tlv(&[0x6F], &[tlv(&[0x84], &crate::facts::AID_ISD), prop].concat())
}
