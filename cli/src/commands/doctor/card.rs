//! The `certificates` and `pin` checks, on the card the `card` check opened. Reads only: the
//! PIN counters come from GET DATA (CPS3) or an empty VERIFY (CPS4), which spend no try.

use cpx_card::PinKind;
use cpx_profile::profile::CertificateReport;
use cpx_profile::{ChainStatus, ExpiryStatus, Profile, Role, Timestamp, TrustStore};

use super::{Check, Verdict};
use crate::session::Session;

/// Below this many days left, a certificate is a warning: a renewed card takes weeks to arrive.
const RENEW_WITHIN_DAYS: i64 = 30;

const RENEW: &str = "the card must be renewed: ask your card manager (ANS for CPS, the \
                     establishment for CPE/CPA) for a new card";

pub(super) fn certificates(session: &mut Session, store: &TrustStore) -> Check {
    let certs = match session.card.certificates() {
        Ok(c) => c,
        Err(e) => {
            return Check::fail(
                "certificates",
                format!("cannot read the certificates: {e}"),
                "take the card out and insert it again; if it persists, run with CPX_LOG=debug \
                 and report the output",
            );
        }
    };
    let mut builder = Profile::builder();
    for c in &certs {
        builder = builder.certificate_from(&c.label, &c.der);
    }
    judge(&builder.build(store, Timestamp::now()), store.is_empty())
}

/// The verdict on a card's certificates at the profile's instant. `no_anchors`: the trust store
/// was empty, so no chain could be complete.
pub(super) fn judge(profile: &Profile, no_anchors: bool) -> Check {
    if let Some(e) = profile.certificate_errors.first() {
        return Check::fail(
            "certificates",
            format!(
                "a certificate of the card does not parse ({}): {}",
                e.source.as_deref().unwrap_or("?"),
                e.error
            ),
            RENEW,
        );
    }
    let at = profile.evaluated_at;
    let card_certs: Vec<&CertificateReport> = profile
        .certificates
        .iter()
        .filter(|c| c.certificate.role.role != Role::CertificationAuthority)
        .collect();
    if card_certs.is_empty() {
        return Check::fail("certificates", "no certificate on the card", RENEW);
    }
    let judged: Vec<(Verdict, String, Option<String>)> =
        card_certs.iter().map(|c| one(c, at, no_anchors)).collect();
    let details = card_certs.iter().map(|c| detail(c)).collect::<Vec<String>>();
    let worst = judged.iter().map(|j| j.0).max().unwrap_or(Verdict::Ok);
    if worst > Verdict::Ok
        && let Some((verdict, finding, fix)) = judged.into_iter().find(|j| j.0 == worst)
    {
        return Check::new("certificates", verdict, finding, fix).details(details);
    }
    // All fine: say until when, and to which anchor.
    let days = profile.summary.days_left.unwrap_or_default();
    let until = profile.summary.earliest_not_after.map(day).unwrap_or_default();
    let anchor = card_certs
        .first()
        .and_then(|c| c.chain.path.last())
        .map(|l| {
            let test = if l.ca.as_ref().is_some_and(|ca| ca.test) {
                " (a TEST PKI)"
            } else {
                ""
            };
            format!(", chained to {}{test}", common_name(&l.subject))
        })
        .unwrap_or_default();
    let n = card_certs.len();
    Check::ok(
        "certificates",
        format!(
            "{n} certificate{} valid until {until} ({days} days left){anchor}",
            if n == 1 { "" } else { "s" }
        ),
    )
    .details(details)
}

/// One certificate: verdict, finding, fix.
fn one(c: &CertificateReport, at: Timestamp, no_anchors: bool) -> (Verdict, String, Option<String>) {
    let role = c.certificate.role.role.as_str();
    let v = &c.certificate.validity;
    match c.expiry.status {
        ExpiryStatus::Expired => {
            return (
                Verdict::Fail,
                format!(
                    "the {role} certificate expired on {} ({} days ago)",
                    day(v.not_after),
                    v.not_after.days_until(at)
                ),
                Some(RENEW.into()),
            );
        }
        ExpiryStatus::NotYetValid => {
            return (
                Verdict::Fail,
                format!(
                    "the {role} certificate is not valid before {} (in {} days)",
                    day(v.not_before),
                    // rounded up: 1.5 days ahead is "in 2 days"
                    (v.not_before.unix() - at.unix() + 86_399).div_euclid(86_400)
                ),
                Some(
                    "check the computer's date and time (timedatectl; enable NTP with sudo \
                     timedatectl set-ntp true)"
                        .into(),
                ),
            );
        }
        ExpiryStatus::Valid => {}
    }
    match c.chain.status {
        ChainStatus::Valid => {}
        ChainStatus::Invalid => {
            let problem = c
                .chain
                .problems
                .first()
                .map(ToString::to_string)
                .unwrap_or_else(|| "a check failed".into());
            return (
                Verdict::Fail,
                format!("the {role} certificate's chain is invalid: {problem}"),
                Some(format!(
                    "check the trust anchors ({} and --anchors): an expired or wrong CA \
                     certificate there breaks the chain; `cpx certs verify` shows the path",
                    cpx_profile::OFFICIAL_COFFRE
                )),
            );
        }
        ChainStatus::Incomplete if c.issuer_ca.test => {
            return (
                Verdict::Warn,
                format!(
                    "the {role} certificate comes from a TEST PKI ({}), not IGC-Santé: a test card",
                    c.issuer_ca.name.as_deref().unwrap_or("unknown CA")
                ),
                Some(
                    "production services refuse test cards; to check its chain, pass --anchors \
                     DIR with the test PKI's CA certificates (test-vectors/pki in cpx's sources)"
                        .into(),
                ),
            );
        }
        ChainStatus::Incomplete if no_anchors => {
            return (
                Verdict::Warn,
                format!(
                    "the {role} certificate's chain was not checked: no trust anchors ({} is \
                     absent and no --anchors)",
                    cpx_profile::OFFICIAL_COFFRE
                ),
                Some(format!(
                    "install the IGC-Santé CA certificates in {} (from the ANS), or pass \
                     --anchors DIR",
                    cpx_profile::OFFICIAL_COFFRE
                )),
            );
        }
        ChainStatus::Incomplete => {
            let problem = c
                .chain
                .problems
                .first()
                .map(ToString::to_string)
                .unwrap_or_else(|| "no path".into());
            return (
                Verdict::Fail,
                format!("the {role} certificate does not chain to a trust anchor: {problem}"),
                Some(format!(
                    "add the issuing IGC-Santé CA certificates to {} or to an --anchors DIR",
                    cpx_profile::OFFICIAL_COFFRE
                )),
            );
        }
    }
    if c.expiry.days_left < RENEW_WITHIN_DAYS {
        return (
            Verdict::Warn,
            format!(
                "the {role} certificate expires on {} (in {} days)",
                day(v.not_after),
                c.expiry.days_left
            ),
            Some(format!(
                "{RENEW}, now: the card stops working on {}",
                day(v.not_after)
            )),
        );
    }
    (Verdict::Ok, String::new(), None)
}

/// `authentication: valid until 2029-01-01 (768 days left), chain valid (3 certificates)`.
fn detail(c: &CertificateReport) -> String {
    let v = &c.certificate.validity;
    let validity = match c.expiry.status {
        ExpiryStatus::Valid => format!(
            "valid until {} ({} days left)",
            day(v.not_after),
            c.expiry.days_left
        ),
        ExpiryStatus::Expired => format!("expired on {}", day(v.not_after)),
        ExpiryStatus::NotYetValid => format!("not valid before {}", day(v.not_before)),
    };
    let chain = match c.chain.status {
        ChainStatus::Valid => "valid",
        ChainStatus::Invalid => "invalid",
        ChainStatus::Incomplete => "incomplete",
    };
    format!(
        "{}: {}, {validity}, chain {chain}",
        c.certificate.role.role.as_str(),
        c.certificate.subject.text
    )
}

/// `2029-01-01T00:00:00Z` → `2029-01-01`.
fn day(t: Timestamp) -> String {
    let s = t.to_string();
    s.get(..10).unwrap_or(&s).to_owned()
}

/// The CN of a DN text (`…, CN=TEST CPX AC RACINE IGC-SANTE FORT`), else the whole text.
fn common_name(dn: &str) -> &str {
    dn.rsplit(", ")
        .find_map(|part| part.strip_prefix("CN="))
        .unwrap_or(dn)
}

pub(super) fn pin(session: &mut Session) -> Check {
    let codes = match session.codes() {
        Ok(c) => c,
        Err(e) => {
            return Check::fail(
                "pin",
                format!("cannot read the PIN counters: {e}"),
                "take the card out and insert it again; if it persists, run with CPX_LOG=debug \
                 and report the output",
            );
        }
    };
    let Some(pin) = codes.pin else {
        return Check::skip("pin", "this interface has no PIN (contactless)");
    };
    let pin_text = format!("PIN {}", pin.text(PinKind::User));
    let puk_text = codes
        .puk
        .map(|p| format!("PUK {}", p.text(PinKind::Puk)))
        .unwrap_or_else(|| "PUK status unknown".into());
    let details = vec![pin_text.clone(), puk_text.clone()];
    let puk_blocked = codes.puk.is_some_and(|p| p.blocked);
    let check = match (pin.blocked, puk_blocked) {
        (true, true) => Check::fail(
            "pin",
            "PIN and PUK blocked",
            "the card must be replaced: ask your card manager (ANS for CPS, the establishment \
             for CPE/CPA) for a new card",
        ),
        (true, false) => Check::fail("pin", "PIN blocked", "unblock with your PUK: cpx pin unblock"),
        (false, true) => Check::warn(
            "pin",
            format!("PUK blocked: the PIN can no longer be unblocked ({pin_text})"),
            "the card must be replaced before the PIN gets blocked: ask your card manager for a \
             new card",
        ),
        (false, false) => match (pin.tries_left, pin.max_tries) {
            (Some(left), Some(max)) if left < max => Check::warn(
                "pin",
                format!("wrong PIN entered before: {pin_text} of {max}"),
                "make sure of the PIN before the next try (the card blocks at 0; then: cpx pin \
                 unblock with the PUK)",
            ),
            // the finding says it all
            _ => return Check::ok("pin", format!("{pin_text}, {puk_text}")),
        },
    };
    check.details(details)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn profile(stem: &str, at: &str, anchors: bool) -> (Profile, bool) {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../test-vectors");
        let mut store = TrustStore::new();
        if anchors {
            store.load_dir(format!("{root}/pki")).unwrap();
        }
        let auth = std::fs::read(format!("{root}/cards/{stem}/auth.der")).unwrap();
        let sign = std::fs::read(format!("{root}/cards/{stem}/sign.der")).unwrap();
        let p = Profile::builder()
            .certificate_from("auth", &auth)
            .certificate_from("sign", &sign)
            .build(&store, Timestamp::parse(at).unwrap());
        (p, store.is_empty())
    }

    #[test]
    fn valid_and_chained_to_the_test_pki() {
        let (p, empty) = profile("cps3-doctor", "2027-01-01T00:00:00Z", true);
        let c = judge(&p, empty);
        assert_eq!(c.verdict, Verdict::Ok, "{c:?}");
        assert_eq!(
            c.finding,
            "2 certificates valid until 2029-01-01 (731 days left), chained to TEST CPX AC \
             RACINE IGC-SANTE FORT (a TEST PKI)"
        );
        assert_eq!(c.details.len(), 2);
    }

    #[test]
    fn expiring_within_30_days_is_a_warning() {
        let (p, empty) = profile("cps3-doctor", "2028-12-15T00:00:00Z", true);
        let c = judge(&p, empty);
        assert_eq!(c.verdict, Verdict::Warn, "{c:?}");
        assert!(
            c.finding.ends_with("expires on 2029-01-01 (in 17 days)"),
            "{}",
            c.finding
        );
        assert!(c.fix.unwrap().contains("the card must be renewed"));
    }

    #[test]
    fn not_yet_valid_points_at_the_clock() {
        let (p, empty) = profile("cps3-doctor", "2025-12-30T12:00:00Z", true);
        let c = judge(&p, empty);
        assert_eq!(c.verdict, Verdict::Fail, "{c:?}");
        assert!(
            c.finding.ends_with("is not valid before 2026-01-01 (in 2 days)"),
            "{}",
            c.finding
        );
        assert!(c.fix.unwrap().contains("timedatectl"));
    }

    #[test]
    fn expired_gives_the_days() {
        let (p, empty) = profile("cps3-expired", "2022-01-11T00:00:00Z", true);
        let c = judge(&p, empty);
        assert_eq!(c.verdict, Verdict::Fail, "{c:?}");
        assert!(
            c.finding
                .ends_with("certificate expired on 2022-01-01 (10 days ago)"),
            "{}",
            c.finding
        );
    }

    #[test]
    fn test_pki_without_anchors_is_a_warning() {
        let (p, empty) = profile("cps3-doctor", "2027-01-01T00:00:00Z", false);
        assert!(empty);
        let c = judge(&p, empty);
        assert_eq!(c.verdict, Verdict::Warn, "{c:?}");
        assert!(c.finding.contains("comes from a TEST PKI"), "{}", c.finding);
        assert!(c.fix.unwrap().contains("--anchors"));
    }

    #[test]
    fn common_names() {
        assert_eq!(common_name("C=FR, O=X, CN=AC ROOT"), "AC ROOT");
        assert_eq!(common_name("C=FR"), "C=FR");
    }
}
