//! `cpx data`: the business data objects (CPS_*, CPS2TER_*), decoded where cpx-profile knows the
//! layout, as a BER-TLV tree otherwise. Private objects are read only after the PIN (`--login`,
//! or a secret from `--pin-stdin` / `--pin-file`).

use clap::Args;
use cpx_profile::business::{self, BusinessObject, Decoded};
use serde::Serialize;

use crate::error::CliError;
use crate::output::{self, Format, outln};
use crate::secrets::{SecretArgs, Secrets};
use crate::session::{ReaderArg, Session};

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

#[derive(Serialize)]
struct Data {
    reader: String,
    logged_in: bool,
    objects: Vec<Object>,
}

#[derive(Serialize)]
struct Object {
    label: String,
    application: Option<String>,
    private: bool,
    modifiable: bool,
    /// The value was read (false: private without login, or an error).
    read: bool,
    /// Why it was not read.
    error: Option<String>,
    /// cpx-profile's decoding (its `BusinessObject` layout); null when not read.
    content: Option<BusinessObject>,
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

fn print_text(d: &Data) {
    for o in &d.objects {
        let access = if o.private { "private" } else { "public" };
        let Some(c) = &o.content else {
            outln!(
                "{} ({access}): {}",
                o.label,
                o.error.as_deref().unwrap_or("not read")
            );
            continue;
        };
        outln!("{} ({access}, {} bytes)", o.label, c.length);
        match &c.decoded {
            Some(Decoded::Activity(a)) => {
                outln!("  situation {}", a.number);
                if let Some(r) = &a.raison_sociale {
                    outln!("  raison sociale: {r}");
                }
                if let Some(s) = &a.structure_id {
                    outln!("  structure: {}", s.value);
                }
                if let Some(s) = &a.sector {
                    outln!("  sector: {} {}", s.code, s.label.as_deref().unwrap_or(""));
                }
            }
            Some(Decoded::InfoPs(i)) => match &i.specialty {
                Some(s) => outln!("  specialty: {} {}", s.code, s.label.as_deref().unwrap_or("")),
                None => outln!("  specialty: unknown"),
            },
            None => {}
        }
        match &c.tlv {
            Some(tlv) => {
                for line in tlv.to_text().lines() {
                    outln!("  {line}");
                }
            }
            None => outln!("  {}", c.value),
        }
    }
}
