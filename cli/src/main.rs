//! `cpx`: the admin's tool for CPx cards, readers and workstations.

mod commands;
mod error;
mod output;
mod pinpad;
mod record;
mod redact;
mod secrets;
mod session;
mod view;

use std::process::ExitCode;

use clap::Parser;

/// Diagnose CPx health-professional cards (CPS3, CPS4), their readers and the workstation.
#[derive(Debug, Parser)]
#[command(name = "cpx", version, about)]
struct Cli {
    /// Print JSON (versioned, see docs/cli-json.md) instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: commands::Command,
}

/// Exit status when whoever reads our output stops reading (`cpx readers | head -1`): what a
/// Unix tool killed by SIGPIPE reports (128 + 13).
const EXIT_BROKEN_PIPE: i32 = 141;

/// Rust ignores SIGPIPE, so a write to a closed pipe fails, and `println!` panics on it. That is
/// not a crash of ours: stop quietly, as other command-line tools do, instead of printing a panic.
fn quiet_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        // `println!` says "failed printing to stdout: Broken pipe"; other writers (clap's
        // completion generator) panic with the io::Error's debug form, `kind: BrokenPipe`.
        if message.contains("Broken pipe") || message.contains("BrokenPipe") {
            std::process::exit(EXIT_BROKEN_PIPE);
        }
        default(info);
    }));
}

fn main() -> ExitCode {
    quiet_on_broken_pipe();
    // CPX_LOG=debug (or cpx::apdu=trace for APDUs, PINs masked) on stderr.
    let _ = env_logger::Builder::from_env(env_logger::Env::new().filter("CPX_LOG")).try_init();
    let cli = Cli::parse();
    let format = if cli.json {
        output::Format::Json
    } else {
        output::Format::Text
    };
    match commands::run(cli.command, format) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The message may quote a reader name or the card: no control reaches the terminal.
            output::errln!("cpx: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
