//! `cpx emulate`: virtual CPx cards behind the real pcscd, through vsmartcard's vpcd readers.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use cpx_emulator::timing::Timing;
use cpx_emulator::{Rig, builtin_stems, find_card};
use cpx_transport::Pcsc;

use crate::error::CliError;
use crate::output::outln;

/// How long `cpx emulate` waits for pcscd to poll the inserted cards, then for PC/SC to show
/// them: pcscd polls every 400 ms, but a loaded machine can take much longer, and the wait ends
/// as soon as the cards show.
const SHOWN: Duration = Duration::from_secs(30);

/// Arguments of `cpx emulate`.
#[derive(Debug, Args)]
pub(crate) struct EmulateArgs {
    /// A card image: a built-in stem (see --list), a card.toml path, a `cpx report` file (replayed,
    /// docs/card-report.md) or a variant of the matrix (`cps4-doctor+rb-chunk=64`,
    /// docs/variants.md), optionally `@HOST:PORT` for its vpcd reader. Repeat for several
    /// cards: without `@`, the i-th card goes to --vpcd's port + i.
    #[arg(long = "card", value_name = "IMAGE")]
    cards: Vec<String>,
    /// vpcd address of the first card's reader (Debian's vpcd: 127.0.0.1:35963 and :35964).
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:35963")]
    vpcd: String,
    /// Unix socket taking `status`, `insert|remove|reset <n|all>` and `quit` (one per connection).
    #[arg(long, value_name = "PATH")]
    control: Option<PathBuf>,
    /// Keep each card's state (PIN/PUK counters and values, written data) in this directory, one
    /// file per card (`card<i>-<image>.state.toml`), so a blocked card stays blocked across runs.
    /// The images are never modified.
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Start with the cards out of their readers (insert them through the control socket).
    #[arg(long)]
    removed: bool,
    /// How the cards answer: `instant` (as soon as computed), or `real`: no sooner than a real
    /// USB reader and card would (link speed from the ATR, T=0/T=1 framing, card processing
    /// time, a USB round trip per exchange; docs/reader-timing.md).
    #[arg(long, value_name = "instant|real", default_value_t = Timing::Instant)]
    timing: Timing,
    /// List the built-in card images and exit.
    #[arg(long)]
    list: bool,
    /// Send one command to the running emulator at --control and print its reply, e.g.
    /// `cpx emulate --control /tmp/cards.sock --send "remove 0"`.
    #[arg(long, value_name = "COMMAND", requires = "control")]
    send: Option<String>,
}

/// `cps3-doctor` → `cps3-doctor`; `images/my card/card.toml` → `images_my_card_card_toml`.
fn file_name_part(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

pub(crate) fn run(args: EmulateArgs) -> Result<(), CliError> {
    if args.list {
        for stem in builtin_stems() {
            outln!("{stem}");
        }
        return Ok(());
    }
    if let (Some(command), Some(path)) = (&args.send, &args.control) {
        let reply = cpx_emulator::control(path, command)
            .map_err(|e| CliError::Emulator(format!("{}: {e}", path.display())))?;
        outln!("{reply}");
        return if reply.starts_with("ok") {
            Ok(())
        } else {
            Err(CliError::Emulator(reply))
        };
    }
    if args.cards.is_empty() {
        return Err(CliError::Usage(
            "cpx emulate needs at least one --card (see --list)".into(),
        ));
    }
    let (host, port) = args
        .vpcd
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h.to_owned(), p.parse::<u16>().ok()?)))
        .ok_or_else(|| CliError::Usage(format!("--vpcd {:?}: expected HOST:PORT", args.vpcd)))?;

    // Before any card goes in: a SIGTERM from then on must remove the cards, not kill us.
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .map_err(|e| CliError::Emulator(e.to_string()))?;
    }
    let mut rig = Rig::default();
    let mut atrs = Vec::new();
    for (i, spec) in args.cards.iter().enumerate() {
        let (name, addr) = match spec.rsplit_once('@') {
            Some((name, addr)) => (name, addr.to_owned()),
            None => {
                let card_port = u16::try_from(usize::from(port) + i)
                    .map_err(|_| CliError::Usage("too many cards for the vpcd port range".into()))?;
                (spec.as_str(), format!("{host}:{card_port}"))
            }
        };
        // An image, a report, or a variant of the matrix (`cps4-doctor+rb-chunk=64`, docs/variants.md).
        let card = find_card(name).map_err(|e| CliError::Emulator(format!("{name}: {e}")))?;
        let card = args.timing.apply(card);
        atrs.push(card.atr());
        match &args.state_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| CliError::Emulator(format!("{}: {e}", dir.display())))?;
                let file = dir.join(format!("card{i}-{}.state.toml", file_name_part(name)));
                rig.add_persistent(name, addr, card, file)
                    .map_err(|e| CliError::Emulator(e.to_string()))?;
            }
            None => {
                rig.add(name, addr, card);
            }
        }
    }
    if !args.removed {
        rig.insert_all().map_err(|e| CliError::Emulator(e.to_string()))?;
        if !rig.wait_seen(SHOWN) {
            log::warn!("pcscd has not polled every card yet (is the reader configured for these ports?)");
        } else if let Err(e) = wait_shown(&atrs, SHOWN) {
            log::warn!("PC/SC does not show every card yet: {e}");
        }
    }
    for (i, label, addr, inserted) in rig.status() {
        outln!(
            "card {i}: {label} at vpcd {addr}, {}{}",
            if inserted { "inserted" } else { "removed" },
            if args.timing == Timing::Real {
                ", answering on a real reader's clock"
            } else {
                ""
            }
        );
    }

    match &args.control {
        Some(path) => {
            outln!("control socket {}", path.display());
            rig.serve_control(path, &stop)
                .map_err(|e| CliError::Emulator(e.to_string()))?;
        }
        None => {
            while !stop.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
    rig.remove_all();
    Ok(())
}

/// Wait until PC/SC shows the inserted cards, so that whoever reads "inserted" below can use
/// them at once: pcscd has polled each card ([`Rig::wait_seen`]), but shows a card to its
/// clients only once it has powered it up, a moment later. A vpcd reader's name does not give
/// its port, so the cards are recognised by their ATRs: as many readers must show an ATR as
/// there are cards with it. One PC/SC context, polled.
fn wait_shown(atrs: &[Vec<u8>], timeout: Duration) -> Result<(), String> {
    let pcsc = Pcsc::establish().map_err(|e| e.to_string())?;
    let deadline = Instant::now() + timeout;
    loop {
        let readers = pcsc.readers().map_err(|e| e.to_string())?;
        let showing = |atr: &Vec<u8>| {
            readers
                .iter()
                .filter(|r| r.status.has_card() && r.atr.as_ref() == Some(atr))
                .count()
        };
        let missing = atrs
            .iter()
            .filter(|atr| showing(atr) < atrs.iter().filter(|a| a == atr).count())
            .count();
        if missing == 0 {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!("{missing} card(s) not shown after {timeout:?}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
