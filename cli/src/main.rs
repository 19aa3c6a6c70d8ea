//! `cpx`: the admin's tool for CPx cards, readers and workstations.

mod commands;
mod output;
mod secrets;
mod session;

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

fn main() -> ExitCode {
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
            eprintln!("cpx: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
