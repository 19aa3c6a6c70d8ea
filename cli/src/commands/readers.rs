//! `cpx readers`: every PC/SC reader, what it holds, and the card's ATR.

use cpx_transport::{Pcsc, ReaderInfo};
use serde::Serialize;

use super::CliError;
use crate::output::{self, Format};

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
}

impl From<&ReaderInfo> for Reader {
    fn from(r: &ReaderInfo) -> Self {
        use cpx_transport::ReaderStatus as S;
        Reader {
            name: r.name.clone(),
            state: match r.status {
                S::Empty => "empty",
                S::CardPresent => "card_present",
                S::InUse => "in_use",
                S::InUseExclusive => "in_use_exclusive",
                S::Mute => "mute",
                S::Unavailable => "unavailable",
            },
            atr: r.atr.as_deref().map(hex::encode_upper),
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
                println!("No smart card reader found.");
            }
            for r in &readers {
                match &r.atr {
                    Some(atr) => println!("{}: {}, ATR {}", r.name, r.status, output::spaced_hex(atr)),
                    None => println!("{}: {}", r.name, r.status),
                }
            }
            Ok(())
        }
    }
}
