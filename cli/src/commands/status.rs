//! `cpx status`: what a support desk asks first — which card, whose, until when, how many tries.

use clap::Args;
use cpx_profile::{Profile, Role, Timestamp, TrustStore};

use crate::error::CliError;
use crate::output::{self, Format};
use crate::pinpad;
use crate::session::{ReaderArg, Session, generation_name, interface_name};
use crate::view::status::{CardInfo, CertInfo, EfActua, Status, bcd_date, print_text};

/// JSON schema version of `cpx status --json` (docs/cli-json.md).
const VERSION: u32 = 1;

/// Arguments of `cpx status`.
#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    reader: ReaderArg,
}

/// The card's certificates as (label, DER), in card order.
pub(crate) fn card_certificates(session: &mut Session) -> Result<Vec<(String, Vec<u8>)>, CliError> {
    Ok(session
        .card
        .certificates()?
        .into_iter()
        .map(|c| (c.label, c.der))
        .collect())
}

pub(crate) fn run(args: StatusArgs, format: Format) -> Result<(), CliError> {
    let mut session = Session::open(&args.reader)?;
    let certs = card_certificates(&mut session)?;
    let codes = session.codes()?;
    let actua = session.card.ef_actua()?;
    let mut builder = Profile::builder();
    for (label, der) in &certs {
        builder = builder.certificate_from(label, der);
    }
    let profile = builder.build(&TrustStore::new(), Timestamp::now());
    // Through a connection of its own: the card layer keeps its channel to itself.
    let pad = cpx_transport::Pcsc::establish()
        .ok()
        .and_then(|pcsc| pinpad::probe(&pcsc, session.card.reader(), true));
    let card = &session.card;
    let status = Status {
        reader: session.reader(),
        reader_selected: if session.auto { "auto" } else { "given" },
        card: CardInfo {
            generation: generation_name(card.generation()),
            interface: interface_name(card.interface()),
            model: card.model(),
            serial: card.serial().to_owned(),
            token_label: card.token_label().to_owned(),
            card_type: profile.card.card_type,
            type_label: profile.card.type_label.clone(),
            test: profile.card.test,
        },
        holder: profile.holder_summary(),
        certificates: profile
            .certificates
            .iter()
            .filter(|c| c.certificate.role.role != Role::CertificationAuthority)
            .map(CertInfo::from_report)
            .collect(),
        pin: codes.pin,
        puk: codes.puk,
        ef_actua: actua.map(|a| EfActua {
            start: bcd_date(&a.start),
            end: bcd_date(&a.end),
        }),
        days_left: profile.summary.days_left,
        pin_pad: pad,
    };
    match format {
        Format::Json => output::print_json("status", VERSION, &status),
        Format::Text => {
            print_text(&status);
            Ok(())
        }
    }
}
