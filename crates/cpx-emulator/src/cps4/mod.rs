//! The CPS4 card (NXP ChipDoc on a Java Card): the ChipDoc applet on logical channel 1, T=1 with
//! the final and RC ATRs, T=0 with the "RC, T=0 only" ATR (docs/card-spec.md §1.1, §1.3, §4.4, §10).
//!
//! Channels follow the Java Card runtime rules: channel 0 is open at reset with the default applet
//! (the CPS2ter applet, see `choices::CPS4_DEFAULT_APPLET`); SELECT by AID on a closed channel opens
//! it; the ChipDoc applet is not multiselectable, so selecting it while it is active on another
//! channel answers 6985, which is what the module's re-select sequence (docs/card-spec.md §1.3, §10.15)
//! undoes.

mod files;
mod layout;
mod ops;

use cpx_vpcd::VirtualCard;

use crate::apdu::{Command, sw, sw_bytes};
use crate::choices;
use crate::common::{Core, Cursor, Interface, Profile, SelectForms, isd_fci};
use crate::facts;
use crate::fs::{Access, MF, Rules};
use crate::image::{CardImage, CardKind};
use crate::link::{Delivery, Link, Protocol, Reply, Step};
use crate::state::{CardState, EmulatedCard, StateError};
use crate::variants::{DefaultApplet, Knobs, Responses};
use layout::Cps4Key;

/// How the ChipDoc applet processes the commands the CPS4 shares with the CPS3.
pub(crate) static PROFILE: Profile = Profile {
    select: SelectForms {
        // ISO 7816-4 §7.1.1: no data = MF; a FID is searched in the current DF, its children,
        // its parent and the parent's children; P1 02 = EF under the current DF; P1 09 = path
        // from the current DF (docs/card-spec.md §2.2 CPS4 column).
        empty_fid_is_mf: true,
        fid_searches_parent: true,
        p1_02_ef_only: true,
        p1_09_from_3f00: false,
    },
    // READ BINARY `01 B0 <offset> 00` is a case-2 command (docs/card-spec.md §10.13).
    read_refuses_data: true,
    // `01 2C 03 81` (docs/card-spec.md §10.8).
    rrc_accepts_81: true,
    // `01 24 01 01` after the unblock (docs/card-spec.md §10.8, `choices::CPS4_PUK_AUTHORISES_PIN_CHANGE`).
    puk_authorises_pin_change: choices::CPS4_PUK_AUTHORISES_PIN_CHANGE,
    // CPS_DATA-like private objects take UPDATE BINARY after the PIN (docs/card-spec.md §5.4).
    private_writable: Rules {
        read: Access::Pin,
        update: Access::Pin,
    },
};

/// Logical channels of the card (ISO 7816-4 first interindustry class: 0–3).
const CHANNELS: usize = 4;

/// The applets a channel can have selected (docs/card-spec.md §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Applet {
    /// The ChipDoc applet (AID `80 25 00 00 01 FF 01 00`): the PKCS#15 card.
    ChipDoc,
    /// The GlobalPlatform issuer security domain ("IDS").
    Isd,
    /// The CPS2ter applet (AID `80 25 00 00 01 FF 00 02`), not modelled beyond selection.
    Cps2ter,
}

/// The AID of the ChipDoc applet: the test stub's own for `cps5-test` ([`choices::TEST_STUB`]).
pub(super) fn chipdoc_aid(kind: CardKind) -> &'static [u8] {
    match kind {
        CardKind::Cps5Test => &choices::TEST_STUB.aid,
        _ => &facts::cps4::AID_CHIPDOC,
    }
}

fn applet_of(aid: &[u8], chipdoc: &[u8]) -> Option<Applet> {
    if aid == chipdoc {
        Some(Applet::ChipDoc)
    } else if aid == facts::AID_ISD {
        Some(Applet::Isd)
    } else if aid == facts::AID_CPS2TER {
        Some(Applet::Cps2ter)
    } else {
        None
    }
}

/// The channel a CLA addresses, or the SW refusing it (ISO 7816-4 §5.4.1).
fn channel_of(cla: u8) -> Result<usize, u16> {
    if cla == 0xFF {
        return Err(sw::CLA_NOT_SUPPORTED);
    }
    if cla & 0x40 != 0 {
        // Further interindustry class: channels 4-19, none of which the card has.
        return Err(sw::CHANNEL_NOT_SUPPORTED);
    }
    if cla & 0x80 == 0 && cla & 0x20 != 0 {
        return Err(sw::CLA_NOT_SUPPORTED); // 20-3F: RFU
    }
    if cla & 0x0C != 0 {
        return Err(sw::SM_NOT_SUPPORTED);
    }
    Ok(usize::from(cla & 0x03))
}

/// The current security environment of the ChipDoc applet (volatile, docs/card-spec.md §4.4).
#[derive(Debug, Clone, Default)]
struct SecEnv {
    /// MSE DST: key reference (without bit 8) and algorithm.
    dst: Option<(u8, u8)>,
    /// MSE CT: key reference.
    ct: Option<u8>,
}

/// Volatile state of the ChipDoc applet besides its current file ([`Core::cursor`]), lost when it
/// is deselected or the card reset.
#[derive(Debug, Clone, Default)]
struct Session {
    se: SecEnv,
}

/// A virtual CPS4. Build it with [`Cps4Card::new`] from a [`CardImage`] of kind `cps4`; it
/// implements [`VirtualCard`] and [`EmulatedCard`].
#[derive(Debug, Clone)]
pub struct Cps4Card {
    /// `cps4`, or the test stub `cps5-test` (another applet AID).
    kind: CardKind,
    core: Core,
    keys: Vec<Cps4Key>,
    /// The applet selected on each channel; `None` = channel closed.
    channels: [Option<Applet>; CHANNELS],
    session: Session,
    link: Link,
}

impl Cps4Card {
    /// Build the card. The protocol follows the image's ATR (T=1 when offered, docs/card-spec.md §10.1);
    /// there is no contactless interface (docs/card-spec.md §7).
    pub fn new(image: &CardImage) -> Self {
        Self::with_knobs(image, Knobs::default())
    }

    /// Build the card of a variant: the image, answering as the knobs say ([`crate::variants`]).
    pub fn with_knobs(image: &CardImage, knobs: Knobs) -> Self {
        let layout = layout::build(image, &knobs);
        let protocol = Protocol::from_atr(&image.atr);
        let link = Link::new(image.link.get_response_max, &knobs);
        let mut card = Self {
            kind: image.kind,
            core: Core::new(
                &PROFILE,
                image,
                Interface::Contact,
                protocol,
                layout.fs,
                layout.pins,
            ),
            keys: layout.keys,
            channels: [None; CHANNELS],
            session: Session::default(),
            link,
        };
        card.core.knobs = knobs;
        card.reset_all();
        card
    }

    /// The transmission protocol in use (from the ATR).
    pub fn protocol(&self) -> Protocol {
        self.core.protocol
    }

    /// Tries left of a PIN object (01 = PIN, 02 = PUK), for tests and tools.
    pub fn tries_left(&self, reference: u8) -> Option<u8> {
        self.core.pin(reference).map(|p| p.tries_left)
    }

    /// Current content of an EF by absolute path (e.g. `[0x3F00, 0x0001, 0xD107]`).
    pub fn file(&self, path: &[u16]) -> Option<&[u8]> {
        self.core.file(path)
    }

    /// The ChipDoc applet loses its volatile state (deselected, reset): files, SE, verified PINs.
    fn clear_applet_session(&mut self) {
        self.session = Session::default();
        self.core.clear_session();
    }

    /// Power-on state: channel 0 open with the default applet, the others closed.
    fn reset_all(&mut self) {
        self.channels = [None; CHANNELS];
        self.channels[0] = match self.core.knobs.default_applet {
            DefaultApplet::Model => applet_of(&choices::CPS4_DEFAULT_APPLET_AID, chipdoc_aid(self.kind)),
            DefaultApplet::ChipDoc => Some(Applet::ChipDoc),
            DefaultApplet::None => None,
        };
        self.clear_applet_session();
        self.link.clear();
    }

    fn chipdoc_channel(&self) -> Option<usize> {
        self.channels.iter().position(|a| *a == Some(Applet::ChipDoc))
    }

    fn dispatch(&mut self, channel: usize, cmd: &Command) -> Reply {
        if cmd.ins == 0xA4
            && cmd.p1 == 0x04
            && let Some(applet) = applet_of(&cmd.data, chipdoc_aid(self.kind))
        {
            return self.select_applet(channel, applet, cmd);
        }
        match self.channels.get(channel).copied().flatten() {
            // An AID no applet has, on a closed channel: not found, the channel stays closed.
            None if cmd.ins == 0xA4 && cmd.p1 == 0x04 => sw::FILE_NOT_FOUND.into(),
            // Java Card: a command on a closed channel (the module re-selects on 6881, docs/card-spec.md
            // §3.2).
            None => sw::CHANNEL_NOT_SUPPORTED.into(),
            Some(Applet::ChipDoc) if cmd.cla & 0x80 == 0 => self.chipdoc(cmd),
            // ChipDoc has no proprietary class; the ISD and the CPS2ter applet are not modelled.
            Some(_) => choices::CPS4_OTHER_APPLET_SW.into(),
        }
    }

    /// SELECT by AID of an applet: Java Card runtime level (opens a closed channel).
    fn select_applet(&mut self, channel: usize, applet: Applet, cmd: &Command) -> Reply {
        let template = match cmd.p2 {
            0x00 => Some(0x6F),
            0x04 => Some(0x62),
            0x0C => None,
            _ => return sw::WRONG_P1P2.into(),
        };
        let current = self.chipdoc_channel();
        if applet == Applet::ChipDoc {
            match current {
                // Not multiselectable: busy on another channel (docs/card-spec.md §1.3 "69 85 sur la CPS4").
                Some(other) if other != channel => return choices::CPS4_CHIPDOC_BUSY_SW.into(),
                // Re-selection on its own channel: back to the MF, security state kept.
                Some(_) => self.core.cursor = Cursor::default(),
                None => self.clear_applet_session(),
            }
        } else if current == Some(channel) {
            self.clear_applet_session();
        }
        if let Some(slot) = self.channels.get_mut(channel) {
            *slot = Some(applet);
        }
        match (applet, template) {
            (_, None) | (Applet::Cps2ter, _) => Reply::ok(),
            (Applet::ChipDoc, Some(t)) => match files::fci(&self.core.fs, MF, t) {
                Some(f) => Reply::data(self.core.knobs.fcp(f)),
                None => Reply::ok(),
            },
            (Applet::Isd, Some(_)) => Reply::data(isd_fci()),
        }
    }

    /// A command for the ChipDoc applet.
    fn chipdoc(&mut self, cmd: &Command) -> Reply {
        match cmd.ins {
            0xA4 => self.select(cmd),
            0xB0 => self.core.read_binary(cmd),
            0xD6 => self.core.update_binary(cmd),
            0x20 => self.core.verify(cmd),
            0x24 => self.core.change_reference_data(cmd),
            0x2C => self.core.reset_retry_counter(cmd),
            0x22 => self.manage_security_environment(cmd),
            0x2A => self.perform_security_operation(cmd),
            0x84 => self.core.get_challenge(cmd),
            // No INTERNAL AUTHENTICATE on ChipDoc (docs/card-spec.md §4.4), no IAS GET DATA, no MANAGE
            // CHANNEL.
            _ => sw::INS_NOT_SUPPORTED.into(),
        }
    }
}

impl VirtualCard for Cps4Card {
    fn atr(&self) -> Vec<u8> {
        self.core.atr.clone()
    }

    fn power_on(&mut self) {
        self.reset_all();
    }

    fn power_off(&mut self) {
        self.reset_all();
    }

    fn transmit(&mut self, command: &[u8]) -> Vec<u8> {
        let Some(cmd) = Command::parse(command) else {
            return sw_bytes(sw::WRONG_LENGTH).to_vec();
        };
        let channel = match channel_of(cmd.cla) {
            Ok(c) => c,
            Err(e) => return sw_bytes(e).to_vec(),
        };
        let opens = cmd.ins == 0xA4 && cmd.p1 == 0x04;
        if cmd.ins != 0xC0 && !opens && self.channels.get(channel).copied().flatten().is_none() {
            return sw_bytes(sw::CHANNEL_NOT_SUPPORTED).to_vec();
        }
        let protocol = self.core.protocol;
        let step = self
            .link
            .before(protocol, cmd, |ins| ins == 0x2A, |cla| cla & 0xFC == 0);
        match step {
            Step::Answer(bytes) => bytes,
            Step::Process(cmd) => {
                let mut reply = self.dispatch(channel, &cmd);
                // T=1: data comes back directly even when Le is absent (docs/card-spec.md §10.1, §10.2: the
                // case-3 app DF select is answered with its FCI); no 61xx on the final ATR.
                if protocol == Protocol::T1 && cmd.le.is_none() {
                    match self.core.knobs.responses {
                        Responses::Model => reply.delivery = Delivery::Direct,
                        Responses::Always61 => {}
                        // No Le, no data (ISO 7816-4: Ne = 0).
                        Responses::Strict => reply.data.clear(),
                    }
                }
                self.link.after(protocol, &cmd, reply)
            }
        }
    }
}

impl EmulatedCard for Cps4Card {
    fn kind(&self) -> CardKind {
        self.kind
    }

    fn state(&self) -> CardState {
        self.core.state(self.kind)
    }

    fn restore(&mut self, saved: &CardState) -> Result<(), StateError> {
        self.core.restore(self.kind, saved)?;
        self.reset_all();
        Ok(())
    }
}
