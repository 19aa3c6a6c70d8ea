//! `cpx data`: the business data objects (CPS_*, CPS2TER_*), decoded where cpx-profile knows the
//! layout, as a BER-TLV tree otherwise. Private objects are read only after the PIN (`--login`,
//! or a secret from `--pin-stdin` / `--pin-file`).

use clap::Args;
use cpx_profile::business::{self};

use crate::error::CliError;
use crate::output::{self, Format};
use crate::secrets::{SecretArgs, Secrets};
use crate::session::{ReaderArg, Session};
use crate::view::data::{Data, Object, print_text};

/// JSON schema version of `cpx data --json` (docs/cli-json.md).
const VERSION: u32 = 1;

/// Arguments of `cpx data`.
#[derive(Debug, Args)]
pub(crate) struct DataArgs {
    #[command(flatten)]
    reader: ReaderArg,
    /// Present the PIN (hidden prompt) to read the private objects too.
    #[arg(long)]
    login: bool,
    /// Secrets for the login (implies --login): the PIN, one line.
    #[command(flatten)]
    secrets: SecretArgs,
    /// Only the object with this label (e.g. CPS_NAME_PS).
    #[arg(long, value_name = "LABEL")]
    label: Option<String>,
}

pub(crate) fn run(args: DataArgs, format: Format) -> Result<(), CliError> {
    let login = args.login || args.secrets.given();
    let mut secrets = Secrets::new(&args.secrets, "the PIN")?;
    let mut session = Session::open(&args.reader)?;
    let objects = session.card.data_objects()?;
    if let Some(label) = &args.label
        && !objects.iter().any(|o| &o.label == label)
    {
        return Err(cpx_card::CardError::ObjectNotFound(label.clone()).into());
    }
    if login {
        session.login(&mut secrets)?;
    }
    let mut out = Vec::new();
    for o in objects {
        if args.label.as_ref().is_some_and(|l| l != &o.label) {
            continue;
        }
        let (read, error, content) = if o.private && !login {
            (false, Some("private: needs the PIN (--login)".to_owned()), None)
        } else {
            match session.card.read_data_object(&o.label) {
                Ok(value) => (true, None, Some(business::decode(&o.label, &value))),
                Err(e @ cpx_card::CardError::Transport(_)) => return Err(e.into()),
                Err(e) => (false, Some(e.to_string()), None),
            }
        };
        out.push(Object {
            label: o.label,
            application: o.application,
            private: o.private,
            modifiable: o.modifiable,
            read,
            error,
            content,
        });
    }
    let data = Data {
        reader: session.reader(),
        logged_in: login,
        objects: out,
    };
    match format {
        Format::Json => output::print_json("data", VERSION, &data),
        Format::Text => {
            print_text(&data);
            Ok(())
        }
    }
}
