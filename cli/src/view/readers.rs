//! What `cpx readers` shows: the structs the command fills, as its JSON (docs/cli-json.md)
//! and its text.

use cpx_card::identify_atr;
use cpx_transport::ReaderInfo;
use serde::Serialize;

use crate::pinpad::PadInfo;
use crate::session::{generation_name, interface_name};

#[derive(Serialize)]
pub(crate) struct Readers {
    pub(crate) readers: Vec<Reader>,
}

#[derive(Serialize)]
pub(crate) struct Reader {
    pub(crate) name: String,
    /// empty | card_present | in_use | in_use_exclusive | mute | unavailable
    pub(crate) state: &'static str,
    /// Upper-case hex, no spaces; null when no card.
    pub(crate) atr: Option<String>,
    /// What the ATR says (docs/card-spec.md §1.1); null when no card.
    pub(crate) card: Option<CardKind>,
    /// The reader's PIN pad (asked through the card, or directly when the reader is empty);
    /// null when it could not be asked (a mute card, an unavailable reader).
    pub(crate) pin_pad: Option<PadInfo>,
}

#[derive(Serialize)]
pub(crate) struct CardKind {
    /// Whether the ATR is one of a CPx card.
    pub(crate) recognised: bool,
    /// CPS3 | CPS4; null when not recognised.
    pub(crate) generation: Option<&'static str>,
    /// contact | contactless; null when not recognised.
    pub(crate) interface: Option<&'static str>,
}

impl CardKind {
    pub(crate) fn of(atr: &[u8]) -> Self {
        match identify_atr(atr) {
            Ok((g, i)) => CardKind {
                recognised: true,
                generation: Some(generation_name(g)),
                interface: Some(interface_name(i)),
            },
            Err(_) => CardKind {
                recognised: false,
                generation: None,
                interface: None,
            },
        }
    }

    pub(crate) fn describe(&self) -> String {
        match (self.generation, self.interface) {
            (Some(g), Some(i)) => format!("{g} {i}"),
            _ => "not a CPx card".to_string(),
        }
    }
}

impl From<&ReaderInfo> for Reader {
    fn from(r: &ReaderInfo) -> Self {
        use cpx_transport::ReaderStatus as S;
        Reader {
            // Shown, not used to connect: controls from a driver become U+FFFD (docs/cli-json.md).
            name: cpx_card::text::display_safe(&r.name).into_owned(),
            state: match r.status {
                S::Empty => "empty",
                S::CardPresent => "card_present",
                S::InUse => "in_use",
                S::InUseExclusive => "in_use_exclusive",
                S::Mute => "mute",
                S::Unavailable => "unavailable",
            },
            atr: r.atr.as_deref().map(hex::encode_upper),
            card: r.atr.as_deref().map(CardKind::of),
            pin_pad: None,
        }
    }
}
