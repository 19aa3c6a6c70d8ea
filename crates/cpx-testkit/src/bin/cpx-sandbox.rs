//! `cpx-sandbox [--entries N] [--test-card] [--card STEM]… [--debug] -- COMMAND [ARGS…]`
//!
//! Start a private pcscd with vpcd readers (no systemd, no other pcscd touched), optionally plug
//! the transport test card and emulated CPx cards (built-in images: cps3-doctor, cps4-doctor…)
//! into its readers, one per reader in order, run COMMAND with `PCSCLITE_CSOCK_NAME` pointing
//! at that pcscd, then stop everything this started. Exits with COMMAND's exit code.

use std::process::{Command, ExitCode};
use std::time::Duration;

use cpx_testkit::{Sandbox, SandboxConfig, TestCard};
use cpx_vpcd::CardSlot;

fn usage() -> ExitCode {
    eprintln!("usage: cpx-sandbox [--entries N] [--test-card] [--card STEM]… [--debug] -- COMMAND [ARGS…]");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut config = SandboxConfig {
        entries: 1,
        ..SandboxConfig::default()
    };
    let mut test_card = false;
    let mut images: Vec<String> = Vec::new();
    let mut args = std::env::args().skip(1);
    let mut command: Vec<String> = Vec::new();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--entries" => match args.next().and_then(|n| n.parse().ok()) {
                Some(n) => config.entries = n,
                None => return usage(),
            },
            "--test-card" => test_card = true,
            "--card" => match args.next() {
                Some(stem) => images.push(stem),
                None => return usage(),
            },
            "--debug" => config.debug = true,
            "--" => {
                command.extend(args.by_ref());
            }
            "-h" | "--help" => return usage(),
            _ => return usage(),
        }
    }
    let Some((program, rest)) = command.split_first() else {
        return usage();
    };

    let sandbox = match Sandbox::start(&config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cpx-sandbox: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut cards: Vec<(String, Box<dyn cpx_vpcd::VirtualCard>)> = Vec::new();
    if test_card {
        cards.push(("test card".into(), Box::new(TestCard::new())));
    }
    for stem in &images {
        match cpx_testkit::emulated(stem) {
            Ok(card) => cards.push((stem.clone(), card)),
            Err(e) => {
                eprintln!("cpx-sandbox: {stem}: {}", e.message().unwrap_or("unknown image"));
                return ExitCode::FAILURE;
            }
        }
    }
    if cards.len() > sandbox.readers().len() {
        eprintln!(
            "cpx-sandbox: {} cards for {} readers (use --entries)",
            cards.len(),
            sandbox.readers().len()
        );
        return ExitCode::FAILURE;
    }
    let mut slots = Vec::new();
    for ((what, card), reader) in cards.into_iter().zip(sandbox.readers()) {
        let mut slot = CardSlot::new(reader.vpcd_addr(), card);
        if let Err(e) = slot.insert() {
            eprintln!("cpx-sandbox: cannot insert the {what}: {e}");
            return ExitCode::FAILURE;
        }
        if !slot.wait_seen(Duration::from_secs(5)) {
            eprintln!("cpx-sandbox: pcscd did not poll the {what}");
            return ExitCode::FAILURE;
        }
        eprintln!("cpx-sandbox: {what} in {:?}", reader.name);
        slots.push(slot);
    }
    let status = Command::new(program).args(rest).envs(sandbox.env()).status();
    drop(slots);
    sandbox.stop();
    match status {
        Ok(s) => ExitCode::from(u8::try_from(s.code().unwrap_or(1)).unwrap_or(1)),
        Err(e) => {
            eprintln!("cpx-sandbox: cannot run {program}: {e}");
            ExitCode::FAILURE
        }
    }
}
