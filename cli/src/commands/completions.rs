//! `cpx completions <shell>`: a completion script generated from the clap definitions.

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use crate::error::CliError;

/// Arguments of `cpx completions`.
#[derive(Debug, Args)]
pub(crate) struct CompletionsArgs {
    /// The shell, e.g. `cpx completions bash > /usr/share/bash-completion/completions/cpx`.
    shell: Shell,
}

pub(crate) fn run(args: CompletionsArgs) -> Result<(), CliError> {
    let mut command = crate::Cli::command();
    clap_complete::generate(args.shell, &mut command, "cpx", &mut std::io::stdout());
    Ok(())
}
