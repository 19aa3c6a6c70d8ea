//! `cpx man`: the man page generated from the clap definitions (clap_mangen), so it never drifts
//! from `--help`.

use std::path::PathBuf;

use clap::{Args, CommandFactory};

use crate::error::CliError;

/// Arguments of `cpx man`.
#[derive(Debug, Args)]
pub(crate) struct ManArgs {
    /// Write cpx.1 and one cpx-COMMAND.1 per subcommand into DIR instead of printing cpx.1.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

fn render(command: clap::Command) -> Result<Vec<u8>, CliError> {
    let mut out = Vec::new();
    clap_mangen::Man::new(command)
        .render(&mut out)
        .map_err(|e| CliError::Output(e.to_string()))?;
    Ok(out)
}

pub(crate) fn run(args: ManArgs) -> Result<(), CliError> {
    let command = crate::Cli::command();
    let Some(dir) = args.dir else {
        use std::io::Write;
        return std::io::stdout()
            .write_all(&render(command)?)
            .map_err(|e| CliError::Output(e.to_string()));
    };
    std::fs::create_dir_all(&dir).map_err(|e| CliError::Io(format!("{}: {e}", dir.display())))?;
    let write = |name: String, page: Vec<u8>| {
        let path = dir.join(name);
        std::fs::write(&path, page).map_err(|e| CliError::Io(format!("{}: {e}", path.display())))
    };
    let mut command = command;
    command.build();
    write("cpx.1".into(), render(command.clone())?)?;
    for sub in command.get_subcommands() {
        let name = format!("cpx-{}", sub.get_name());
        let page = render(sub.clone().name(name.clone()))?;
        write(format!("{name}.1"), page)?;
    }
    Ok(())
}
