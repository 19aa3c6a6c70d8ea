//! `cpx readers`: every PC/SC reader, what it holds, the card's ATR and whether it is a CPx card.

use cpx_card::identify_atr;
use cpx_transport::{Pcsc, ReaderInfo};
use serde::Serialize;

use crate::error::CliError;
use crate::output::{self, Format, outln};
use crate::session::{generation_name, interface_name};

/// JSON schema version of `cpx readers --json`.
const VERSION: u32 = 1;

#[derive(Serialize)]
struct Readers {
    readers: Vec<Reader>,
}

#[derive(Serialize)]
struct Reader {
    name: String,
    /// empty | card_present | in_use | in_use_exclusive | mute | unavailable
    state: &'static str,
    /// Upper-case hex, no spaces; null when no card.
    atr: Option<String>,
    /// What the ATR says (spec §1.1); null when no card.
    card: Option<CardKind>,
}

#[derive(Serialize)]
struct CardKind {
    /// Whether the ATR is one of a CPx card.
    recognised: bool,
    /// CPS3 | CPS4; null when not recognised.
    generation: Option<&'static str>,
    /// contact | contactless; null when not recognised.
    interface: Option<&'static str>,
}

impl CardKind {
    fn of(atr: &[u8]) -> Self {
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

    fn describe(&self) -> String {
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
        }
    }
}

pub(crate) fn run(format: Format) -> Result<(), CliError> {
    let pcsc = Pcsc::establish()?;
    let readers = pcsc.readers()?;
    match format {
        Format::Json => output::print_json(
            "readers",
            VERSION,
            &Readers {
                readers: readers.iter().map(Reader::from).collect(),
            },
        ),
        Format::Text => {
            if readers.is_empty() {
                outln!("No smart card reader found.");
            }
            for r in &readers {
                match &r.atr {
                    Some(atr) => outln!(
                        "{}: {}, {}, ATR {}",
                        r.name,
                        r.status,
                        CardKind::of(atr).describe(),
                        output::spaced_hex(atr)
                    ),
                    None => outln!("{}: {}", r.name, r.status),
                }
            }
            Ok(())
        }
    }
}
