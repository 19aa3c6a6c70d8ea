//! `cpx readers`: every PC/SC reader, what it holds, the card's ATR, whether it is a CPx card,
//! and the reader's PIN pad (`crate::pinpad`).

use cpx_transport::{Pcsc, ReaderStatus};

use crate::error::CliError;
use crate::output::{self, Format, outln};
use crate::pinpad;
use crate::view::readers::{CardKind, Reader, Readers};

/// JSON schema version of `cpx readers --json`.
const VERSION: u32 = 1;

pub(crate) fn run(format: Format) -> Result<(), CliError> {
    let pcsc = Pcsc::establish()?;
    let readers = pcsc.readers()?;
    let shown: Vec<Reader> = readers
        .iter()
        .map(|r| {
            let mut shown = Reader::from(r);
            // Through the card when there is one; directly when the reader is empty; a mute card
            // or an unavailable reader is not asked.
            shown.pin_pad = match r.status {
                ReaderStatus::Mute | ReaderStatus::Unavailable => None,
                s => pinpad::probe(&pcsc, &r.name, s.has_card()),
            };
            shown
        })
        .collect();
    match format {
        Format::Json => output::print_json("readers", VERSION, &Readers { readers: shown }),
        Format::Text => {
            if readers.is_empty() {
                outln!("No smart card reader found.");
            }
            for (r, shown) in readers.iter().zip(&shown) {
                let pad = match &shown.pin_pad {
                    Some(p) if p.available => format!(", {}", p.text()),
                    _ => String::new(),
                };
                match &r.atr {
                    Some(atr) => outln!(
                        "{}: {}, {}, ATR {}{pad}",
                        r.name,
                        r.status,
                        CardKind::of(atr).describe(),
                        output::spaced_hex(atr)
                    ),
                    None => outln!("{}: {}{pad}", r.name, r.status),
                }
            }
            Ok(())
        }
    }
}
