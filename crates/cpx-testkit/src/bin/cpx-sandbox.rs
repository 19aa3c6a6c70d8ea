//! `cpx-sandbox [--entries N] [--test-card] [--card STEM]… [--debug] [--pinpad LIBCPX_IFD_PINPAD.so] -- COMMAND [ARGS…]`
//!
//! Start a private pcscd with vpcd readers (no systemd, no other pcscd touched), optionally plug
//! the transport test card and emulated CPx cards (built-in images: cps3-doctor, cps4-doctor…)
//! into its readers, one per reader in order, run COMMAND with `PCSCLITE_CSOCK_NAME` pointing
//! at that pcscd once PC/SC shows every card, then stop everything this started. Exits with
//! COMMAND's exit code.
//!
//! `--pinpad` also starts the test PIN-pad reader `cpx pinpad 00 00` with that driver
//! (docs/pinpad-reader.md); its port and keypad script are in COMMAND's `CPX_SANDBOX_PINPAD`.
//!
//! pcsc-lite reads `PCSCLITE_CSOCK_NAME` once per process, so this process, which starts the
//! sandbox, cannot ask the sandbox's pcscd whether it shows the cards: it runs itself again
//! inside the sandbox (hidden first argument `--in-sandbox`), and that second process plugs the
//! cards in, waits until PC/SC shows them, and runs COMMAND.

use std::process::{Command, ExitCode};

use cpx_testkit::{DEADLINE, SandboxConfig, SandboxEnv, TestCard, insert_seen};
use cpx_vpcd::CardSlot;

/// First argument of the run inside the sandbox.
const INSIDE: &str = "--in-sandbox";

fn usage() -> ExitCode {
    eprintln!(
        "usage: cpx-sandbox [--entries N] [--test-card] [--card STEM]… [--debug] [--pinpad LIBCPX_IFD_PINPAD.so] -- COMMAND [ARGS…]"
    );
    ExitCode::from(2)
}

/// The command line, parsed.
struct Options {
    config: SandboxConfig,
    test_card: bool,
    images: Vec<String>,
    command: Vec<String>,
}

fn parse(mut args: impl Iterator<Item = String>) -> Option<Options> {
    let mut o = Options {
        config: SandboxConfig {
            entries: 1,
            ..SandboxConfig::default()
        },
        test_card: false,
        images: Vec::new(),
        command: Vec::new(),
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--entries" => o.config.entries = args.next()?.parse().ok()?,
            "--test-card" => o.test_card = true,
            "--card" => o.images.push(args.next()?),
            "--debug" => o.config.debug = true,
            "--pinpad" => o.config.pinpad = Some(args.next()?.into()),
            "--" => o.command.extend(args.by_ref()),
            _ => return None,
        }
    }
    (!o.command.is_empty()).then_some(o)
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let inside = args.first().is_some_and(|a| a == INSIDE);
    if inside {
        args.remove(0);
    }
    let Some(options) = parse(args.iter().cloned()) else {
        return usage();
    };
    if inside {
        return plug_in_and_run(&options);
    }
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("cpx-sandbox: cannot find my own program: {e}");
            return ExitCode::FAILURE;
        }
    };
    args.insert(0, INSIDE.to_owned());
    cpx_testkit::run_command(&options.config, exe.as_os_str(), &args)
}

/// Inside the sandbox: the cards in, PC/SC showing them, then COMMAND; the cards are removed
/// when it ends.
fn plug_in_and_run(options: &Options) -> ExitCode {
    let env = match SandboxEnv::get() {
        Ok(env) => env,
        Err(e) => {
            eprintln!("cpx-sandbox: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut cards: Vec<(String, Box<dyn cpx_vpcd::VirtualCard>)> = Vec::new();
    if options.test_card {
        cards.push(("test card".into(), Box::new(TestCard::new())));
    }
    for stem in &options.images {
        match cpx_testkit::emulated(stem) {
            Ok(card) => cards.push((stem.clone(), card)),
            Err(e) => {
                eprintln!("cpx-sandbox: {stem}: {}", e.message().unwrap_or("unknown image"));
                return ExitCode::FAILURE;
            }
        }
    }
    if cards.len() > env.readers().len() {
        eprintln!(
            "cpx-sandbox: {} cards for {} readers (use --entries)",
            cards.len(),
            env.readers().len()
        );
        return ExitCode::FAILURE;
    }
    let mut slots = Vec::new();
    for ((what, card), reader) in cards.into_iter().zip(env.readers()) {
        let mut slot = CardSlot::new(reader.vpcd_addr(), card);
        // pcscd polled the card, and PC/SC clients see it: COMMAND can count it at once.
        if let Err(e) = insert_seen(&mut slot, &reader.name) {
            eprintln!(
                "cpx-sandbox: the {what}: {} (waited up to {DEADLINE:?})",
                e.message().unwrap_or("not seen")
            );
            return ExitCode::FAILURE;
        }
        eprintln!("cpx-sandbox: {what} in {:?}", reader.name);
        slots.push(slot);
    }
    let Some((program, rest)) = options.command.split_first() else {
        return usage();
    };
    let status = Command::new(program).args(rest).status();
    drop(slots);
    match status {
        Ok(s) => ExitCode::from(u8::try_from(s.code().unwrap_or(1)).unwrap_or(1)),
        Err(e) => {
            eprintln!("cpx-sandbox: cannot run {program}: {e}");
            ExitCode::FAILURE
        }
    }
}
