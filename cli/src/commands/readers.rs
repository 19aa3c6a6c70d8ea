//! `cpx readers`: every PC/SC reader, what it holds, the card's ATR and whether it is a CPx card.

use cpx_transport::Pcsc;

use crate::error::CliError;
use crate::output::{self, Format, outln};
use crate::view::readers::{CardKind, Reader, Readers};

/// JSON schema version of `cpx readers --json`.
const VERSION: u32 = 1;

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
