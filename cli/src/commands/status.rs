//! `cpx status`: what a support desk asks first — which card, whose, until when, how many tries.

use clap::Args;
use cpx_card::PinKind;
use cpx_profile::ca::{Level, Pki};
use cpx_profile::{CardType, ExpiryStatus, HolderSummary, Profile, Role, Timestamp, TrustStore};
use serde::Serialize;

use crate::error::CliError;
use crate::output::{self, Format, outln};
use crate::session::{CodeState, ReaderArg, Session, generation_name, interface_name};

/// JSON schema version of `cpx status --json` (docs/cli-json.md).
const VERSION: u32 = 1;

/// Arguments of `cpx status`.
#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    reader: ReaderArg,
}

#[derive(Serialize)]
struct Status {
    reader: String,
    /// `given` (--reader) or `auto` (first reader with a CPx card).
    reader_selected: &'static str,
    card: CardInfo,
    holder: HolderSummary,
    certificates: Vec<CertInfo>,
    pin: Option<CodeState>,
    puk: Option<CodeState>,
    ef_actua: Option<EfActua>,
    /// Days until the first certificate expires (negative once expired).
    days_left: Option<i64>,
}

#[derive(Serialize)]
struct CardInfo {
    generation: &'static str,
    interface: &'static str,
    model: &'static str,
    serial: String,
    token_label: String,
    #[serde(rename = "type")]
    card_type: Option<CardType>,
    type_label: Option<String>,
    test: Option<bool>,
}

#[derive(Serialize)]
pub(crate) struct CertInfo {
    pub(crate) role: Role,
    pub(crate) label: Option<String>,
    pub(crate) subject: String,
    pub(crate) issuer: String,
    pub(crate) issuer_pki: Pki,
    pub(crate) issuer_level: Option<Level>,
    pub(crate) serial: String,
    pub(crate) not_before: Timestamp,
    pub(crate) not_after: Timestamp,
    pub(crate) days_left: i64,
    pub(crate) expiry: ExpiryStatus,
    pub(crate) sha256: String,
}

impl CertInfo {
    pub(crate) fn from_report(c: &cpx_profile::profile::CertificateReport) -> CertInfo {
        CertInfo {
            role: c.certificate.role.role,
            label: c.source.clone(),
            subject: c.certificate.subject.text.clone(),
            issuer: c.certificate.issuer.text.clone(),
            issuer_pki: c.issuer_ca.pki,
            issuer_level: c.issuer_ca.level,
            serial: c.certificate.serial.clone(),
            not_before: c.certificate.validity.not_before,
            not_after: c.certificate.validity.not_after,
            days_left: c.expiry.days_left,
            expiry: c.expiry.status,
            sha256: c.certificate.sha256.clone(),
        }
    }

    /// One line: role, subject, issuer level, validity.
    pub(crate) fn text(&self) -> String {
        let level = match self.issuer_level {
            Some(Level::Fort) => "FORT",
            Some(Level::Standard) => "STANDARD",
            Some(Level::Elementaire) => "ÉLÉMENTAIRE",
            None => "level unknown",
        };
        let validity = match self.expiry {
            ExpiryStatus::Valid => format!(
                "valid until {} ({} days left)",
                day(self.not_after),
                self.days_left
            ),
            ExpiryStatus::Expired => format!(
                "EXPIRED on {} ({} days ago)",
                day(self.not_after),
                -self.days_left
            ),
            ExpiryStatus::NotYetValid => format!("NOT YET VALID (from {})", day(self.not_before)),
        };
        format!(
            "{:<15} {}\n{:<15} issuer {} ({level}), {validity}",
            self.role.as_str(),
            self.subject,
            "",
            self.issuer
        )
    }
}

/// `2029-01-01T00:00:00Z` → `2029-01-01`.
fn day(t: Timestamp) -> String {
    let s = t.to_string();
    s.get(..10).unwrap_or(&s).to_owned()
}

#[derive(Serialize)]
struct EfActua {
    /// `YYYY-MM-DDThh:mm:ss` (the card gives no time zone).
    start: String,
    end: String,
}

/// `YYYYMMDDhhmmss` → `YYYY-MM-DDThh:mm:ss`.
fn bcd_date(d: &str) -> String {
    match (
        d.get(0..4),
        d.get(4..6),
        d.get(6..8),
        d.get(8..10),
        d.get(10..12),
        d.get(12..14),
    ) {
        (Some(y), Some(mo), Some(da), Some(h), Some(mi), Some(s)) => format!("{y}-{mo}-{da}T{h}:{mi}:{s}"),
        _ => d.to_owned(),
    }
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
    };
    match format {
        Format::Json => output::print_json("status", VERSION, &status),
        Format::Text => {
            print_text(&status);
            Ok(())
        }
    }
}

fn print_text(s: &Status) {
    let how = if s.reader_selected == "auto" {
        " (first reader with a CPx card)"
    } else {
        ""
    };
    outln!("Reader:        {}{how}", s.reader);
    outln!(
        "Card:          {} ({}), {}, serial {}",
        s.card.generation,
        s.card.model,
        s.card.interface,
        s.card.serial
    );
    outln!("Token label:   {}", s.card.token_label);
    if let Some(t) = &s.card.type_label {
        let test = if s.card.test == Some(true) {
            ", TEST card"
        } else {
            ""
        };
        outln!("Card type:     {t}{test}");
    }
    let name = [s.holder.given_name.as_deref(), s.holder.surname.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    if !name.is_empty() {
        outln!("Holder:        {name}");
    }
    if let Some(id) = &s.holder.national_id {
        let scheme = s.holder.national_id_scheme.as_deref().unwrap_or("unknown scheme");
        outln!("National id:   {id} ({scheme})");
    }
    if let Some(p) = &s.holder.profession {
        outln!(
            "Profession:    {} ({} {})",
            p.label.as_deref().unwrap_or("?"),
            p.table,
            p.code
        );
    } else if let Some(t) = &s.holder.title {
        outln!("Title:         {t}");
    }
    if let Some(o) = &s.holder.organisation {
        outln!("Organisation:  {o}");
    }
    outln!("Certificates:");
    for c in &s.certificates {
        for line in c.text().lines() {
            outln!("  {line}");
        }
    }
    match &s.pin {
        Some(p) => outln!("PIN:           {}", p.text(PinKind::User)),
        None => outln!("PIN:           none on this interface"),
    }
    if let Some(p) = &s.puk {
        outln!("PUK:           {}", p.text(PinKind::Puk));
    }
    match &s.ef_actua {
        Some(a) => outln!("EF_ACTUA:      {} to {}", a.start, a.end),
        None => outln!("EF_ACTUA:      none"),
    }
}
