//! What `cpx status` shows: the structs the command fills, as its JSON (docs/cli-json.md)
//! and its text.

use cpx_card::PinKind;
use cpx_profile::ca::{Level, Pki};
use cpx_profile::{CardType, ExpiryStatus, HolderSummary, Role, Timestamp};
use serde::Serialize;

use crate::output::outln;
use crate::pinpad::PadInfo;
use crate::session::CodeState;

#[derive(Serialize)]
pub(crate) struct Status {
    pub(crate) reader: String,
    /// `given` (--reader) or `auto` (first reader with a CPx card).
    pub(crate) reader_selected: &'static str,
    pub(crate) card: CardInfo,
    pub(crate) holder: HolderSummary,
    pub(crate) certificates: Vec<CertInfo>,
    pub(crate) pin: Option<CodeState>,
    pub(crate) puk: Option<CodeState>,
    pub(crate) ef_actua: Option<EfActua>,
    /// Days until the first certificate expires (negative once expired).
    pub(crate) days_left: Option<i64>,
    /// The reader's PIN pad; null when the reader could not be asked.
    pub(crate) pin_pad: Option<PadInfo>,
}

#[derive(Serialize)]
pub(crate) struct CardInfo {
    pub(crate) generation: &'static str,
    pub(crate) interface: &'static str,
    pub(crate) model: &'static str,
    pub(crate) serial: String,
    pub(crate) token_label: String,
    #[serde(rename = "type")]
    pub(crate) card_type: Option<CardType>,
    pub(crate) type_label: Option<String>,
    pub(crate) test: Option<bool>,
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
pub(crate) fn day(t: Timestamp) -> String {
    let s = t.to_string();
    s.get(..10).unwrap_or(&s).to_owned()
}

#[derive(Serialize)]
pub(crate) struct EfActua {
    /// `YYYY-MM-DDThh:mm:ss` (the card gives no time zone).
    pub(crate) start: String,
    pub(crate) end: String,
}

/// `YYYYMMDDhhmmss` → `YYYY-MM-DDThh:mm:ss`.
pub(crate) fn bcd_date(d: &str) -> String {
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

pub(crate) fn print_text(s: &Status) {
    let how = if s.reader_selected == "auto" {
        " (first reader with a CPx card)"
    } else {
        ""
    };
    outln!("Reader:        {}{how}", s.reader);
    if let Some(pad) = s.pin_pad.as_ref().filter(|p| p.available) {
        outln!("PIN pad:       yes{}", pad.summary());
    }
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
