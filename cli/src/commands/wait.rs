//! `cpx wait`: block until a card is inserted or removed, then print the event. A spinner is drawn
//! on stderr only when stderr is a terminal.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use cpx_transport::{Pcsc, ReaderEvent};

use crate::error::CliError;
use crate::output::{self, Format, outln};
use crate::view::wait::Event;

/// JSON schema version of `cpx wait --json` (docs/cli-json.md).
const VERSION: u32 = 1;

/// Arguments of `cpx wait`.
#[derive(Debug, Args)]
pub(crate) struct WaitArgs {
    /// Give up after this many seconds (exit 12); default: wait forever.
    #[arg(long, value_name = "SECONDS")]
    timeout: Option<f64>,
    /// Only events of this reader.
    #[arg(long, value_name = "READER")]
    reader: Option<String>,
}

/// Draws `⠋⠙⠹…` on stderr until dropped.
struct Spinner {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Spinner {
    fn start() -> Spinner {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let frames = ['|', '/', '-', '\\'];
            let mut i = 0;
            while !flag.load(Ordering::Acquire) {
                eprint!("\r{} waiting for a card to be inserted or removed", frames[i % 4]);
                let _ = std::io::stderr().flush();
                i += 1;
                std::thread::sleep(Duration::from_millis(120));
            }
            eprint!("\r\x1b[2K");
            let _ = std::io::stderr().flush();
        });
        Spinner {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub(crate) fn run(args: WaitArgs, format: Format) -> Result<(), CliError> {
    let timeout = match args.timeout {
        Some(s) if s.is_finite() && s >= 0.0 => Some(Duration::from_secs_f64(s)),
        Some(s) => return Err(CliError::Usage(format!("--timeout {s}: expected seconds ≥ 0"))),
        None => None,
    };
    let pcsc = Pcsc::establish()?;
    let mut monitor = pcsc.monitor()?;
    if let Some(r) = &args.reader
        && !monitor.readers().any(|(name, _)| name == r)
    {
        return Err(cpx_transport::TransportError::UnknownReader(r.clone()).into());
    }
    let spinner = std::io::stderr().is_terminal().then(Spinner::start);
    if spinner.is_none() {
        eprintln!("waiting for a card to be inserted or removed");
    }
    let deadline = timeout.map(|t| Instant::now() + t);
    let event = loop {
        let remaining = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if remaining == Some(Duration::ZERO) {
            drop(spinner);
            return Err(CliError::Timeout(format!("{}", args.timeout.unwrap_or_default())));
        }
        let events = match monitor.wait(remaining) {
            Ok(events) => events,
            Err(cpx_transport::TransportError::Timeout) => continue,
            Err(e) => return Err(e.into()),
        };
        let found = events.into_iter().find_map(|e| {
            let ev = match e {
                ReaderEvent::CardInserted { reader, atr } => Event {
                    event: "inserted",
                    reader,
                    atr: Some(hex::encode_upper(atr)),
                },
                ReaderEvent::CardRemoved { reader } => Event {
                    event: "removed",
                    reader,
                    atr: None,
                },
                ReaderEvent::ReaderAdded { .. } | ReaderEvent::ReaderRemoved { .. } => return None,
            };
            args.reader.as_ref().is_none_or(|r| r == &ev.reader).then_some(ev)
        });
        if let Some(ev) = found {
            // Shown only: controls in a driver's reader name become U+FFFD (docs/cli-json.md).
            let reader = cpx_card::text::display_safe(&ev.reader).into_owned();
            break Event { reader, ..ev };
        }
    };
    drop(spinner);
    match format {
        Format::Json => output::print_json("wait", VERSION, &event),
        Format::Text => {
            match &event.atr {
                Some(atr) => outln!(
                    "card inserted in {}, ATR {}",
                    event.reader,
                    output::spaced_hex(&hex::decode(atr).unwrap_or_default())
                ),
                None => outln!("card removed from {}", event.reader),
            }
            Ok(())
        }
    }
}
