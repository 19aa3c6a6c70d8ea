//! The real IGC-Santé CA certificates and the real IGC-Santé TEST CPE certificate, from
//! `../shared/reference/` (outside the repository). Every test skips with a message when that
//! directory is absent.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::shared_reference;
use cpx_profile::ca::{Branch, Level, Pki};
use cpx_profile::{CardType, Certificate, ChainStatus, IdStatus, Profile, Role, Timestamp, TrustStore, ca};

macro_rules! reference_or_skip {
    () => {
        match shared_reference() {
            Some(p) => p,
            None => {
                eprintln!("SKIPPED: ../shared/reference is absent (real IGC-Santé certificates live outside the repository)");
                return;
            }
        }
    };
}

const ROOTS: [(&str, Level); 3] = [
    ("ACR_ELEMENTAIRE_20130625.cer", Level::Elementaire),
    ("ACR_STANDARD_20130625.cer", Level::Standard),
    ("ACR_FORT_20130625.cer", Level::Fort),
];

const INTERMEDIATES: [(&str, Level, Branch); 6] = [
    (
        "AC_ELEMENTAIRE_PERSONNES_20130625.cer",
        Level::Elementaire,
        Branch::Personnes,
    ),
    (
        "AC_ELEMENTAIRE_ORGANISATIONS_20130625.cer",
        Level::Elementaire,
        Branch::Organisations,
    ),
    (
        "AC_STANDARD_PERSONNES_20130625.cer",
        Level::Standard,
        Branch::Personnes,
    ),
    (
        "AC_STANDARD_ORGANISATIONS_20130625.cer",
        Level::Standard,
        Branch::Organisations,
    ),
    ("AC_FORT_PERSONNES_20130625.cer", Level::Fort, Branch::Personnes),
    (
        "AC_FORT_ORGANISATIONS_20130625.cer",
        Level::Fort,
        Branch::Organisations,
    ),
];

fn at() -> Timestamp {
    Timestamp::parse("2027-01-01T00:00:00Z").unwrap()
}

#[test]
fn real_ca_certificates_parse_and_classify() {
    let reference = reference_or_skip!();
    let dir = reference.join("igc-sante");
    for (file, level) in ROOTS {
        let c = Certificate::from_der(&std::fs::read(dir.join(file)).unwrap()).unwrap();
        assert_eq!(c.role.role, Role::CertificationAuthority, "{file}");
        assert!(c.is_self_issued(), "{file}");
        assert_eq!(c.public_key.rsa.as_ref().unwrap().modulus_bits, 4096, "{file}"); // docs/card-notes.md §8
        assert_eq!(c.public_key.rsa.as_ref().unwrap().exponent, Some(65537), "{file}");
        assert_eq!(
            c.signature_algorithm.name.as_deref(),
            Some("sha256WithRSAEncryption")
        );
        assert_eq!(c.validity.not_before.to_string(), "2013-06-25T00:00:00Z");
        assert_eq!(c.validity.not_after.to_string(), "2033-06-25T00:00:00Z");
        let info = ca::classify(&c.subject);
        assert_eq!(
            (info.pki, info.level, info.branch, info.root),
            (Pki::IgcSante, Some(level), None, Some(true))
        );
        assert_eq!(c.extensions.policies[0].name.as_deref(), Some("anyPolicy"));
        assert_eq!(
            c.extensions.policies[0].cps_uris,
            ["http://igc-sante.esante.gouv.fr/PC"]
        );
        let ku = c.extensions.key_usage.as_ref().unwrap();
        assert!(ku.critical && ku.has("keyCertSign") && ku.has("cRLSign"));
    }
    for (file, level, branch) in INTERMEDIATES {
        let c = Certificate::from_der(&std::fs::read(dir.join(file)).unwrap()).unwrap();
        let info = ca::classify(&c.subject);
        assert_eq!(
            (info.pki, info.level, info.branch, info.root),
            (Pki::IgcSante, Some(level), Some(branch), Some(false)),
            "{file}"
        );
        assert_eq!(
            c.extensions.basic_constraints.unwrap().path_len,
            Some(0),
            "{file}"
        );
        assert_eq!(c.subject.text.split(", ").next(), Some("C=FR"));
        assert!(!c.extensions.crl_distribution_points.is_empty(), "{file}");
    }
}

#[test]
fn real_ca_chains_validate_intermediate_to_root() {
    let reference = reference_or_skip!();
    let dir = reference.join("igc-sante");
    let mut store = TrustStore::new();
    let report = store.load_dir(&dir).unwrap();
    assert_eq!(report.loaded.len(), 9, "{report:?}");
    for (file, level, _) in INTERMEDIATES {
        let c = Certificate::from_der(&std::fs::read(dir.join(file)).unwrap()).unwrap();
        let r = store.validate(&c, &[], at());
        assert_eq!(r.status, ChainStatus::Valid, "{file}: {:?}", r.problems);
        assert_eq!(r.path.len(), 2, "{file}");
        let root = r.path[1].ca.as_ref().unwrap();
        assert_eq!((root.level, root.root), (Some(level), Some(true)));
        // After 2033-06-24 the intermediate has expired.
        let late = store.validate(&c, &[], Timestamp::parse("2033-06-24T12:00:00Z").unwrap());
        assert_eq!(late.status, ChainStatus::Invalid, "{file}");
    }
    // Roots validate as their own anchors; an intermediate alone does not make a chain.
    for (file, _) in ROOTS {
        let c = Certificate::from_der(&std::fs::read(dir.join(file)).unwrap()).unwrap();
        assert_eq!(store.validate(&c, &[], at()).status, ChainStatus::Valid, "{file}");
    }
    let mut only_intermediates = TrustStore::new();
    for (file, _, _) in INTERMEDIATES {
        only_intermediates
            .add(&std::fs::read(dir.join(file)).unwrap(), file)
            .unwrap();
    }
    let c = Certificate::from_der(&std::fs::read(dir.join(INTERMEDIATES[0].0)).unwrap()).unwrap();
    assert_eq!(
        only_intermediates.validate(&c, &[], at()).status,
        ChainStatus::Incomplete
    );
}

#[test]
fn real_ca_signature_cross_check() {
    // A FORT intermediate does not verify under the STANDARD root, even with a forged match of
    // names impossible here: building picks the right root by name and key id.
    let reference = reference_or_skip!();
    let dir = reference.join("igc-sante");
    let mut store = TrustStore::new();
    store
        .add(
            &std::fs::read(dir.join("ACR_STANDARD_20130625.cer")).unwrap(),
            "standard",
        )
        .unwrap();
    let c =
        Certificate::from_der(&std::fs::read(dir.join("AC_FORT_PERSONNES_20130625.cer")).unwrap()).unwrap();
    let r = store.validate(&c, &[], at());
    assert_eq!(r.status, ChainStatus::Incomplete);
    assert!(
        r.problems[0].to_string().contains("AC RACINE IGC-SANTE FORT"),
        "{:?}",
        r.problems
    );
}

#[test]
fn real_test_cpe_certificate() {
    // docs/data-and-certs.md §2.1: the real IGC-Santé TEST CPE authentication certificate.
    let reference = reference_or_skip!();
    let der = std::fs::read(reference.join("igc-sante-test/cpe-2600301752-auth.der")).unwrap();
    let c = Certificate::from_der(&der).unwrap();
    assert_eq!(c.serial, "6bc2874b9334bed19414e8eb4fb317d4");
    assert_eq!(c.role.role, Role::Authentication);
    assert_eq!(
        c.subject.text,
        "C=FR, ST=Paris (75), O=HOPITAL DES 3 DAMES, OU=10B0057881, title=Personnel santé ou social, \
         GN=CHARLES + CN=30B0057881/CPET0002 + SN=ADMINISTRATIF-CH057880002"
    );
    assert_eq!(c.subject.rdns.len(), 6);
    assert_eq!(c.subject.rdns[5].attributes.len(), 3);
    assert_eq!(c.subject.rdns[0].attributes[0].string_type, "PrintableString");
    assert_eq!(c.subject.rdns[4].attributes[0].string_type, "UTF8String");
    assert_eq!(c.extensions.list.iter().filter(|e| e.critical).count(), 1);
    assert_eq!(c.extensions.freshest_crl.len(), 1);
    assert_eq!(c.extensions.ocsp, ["http://ocsp.esante.gouv.fr"]);
    assert_eq!(
        c.extensions.ca_issuers,
        ["http://igc-sante.esante.gouv.fr/AC%20TEST/ACI-ST-PP-TEST.cer"]
    );
    assert_eq!(
        c.extensions.health.token_id.as_deref(),
        Some("8025000001/2600301752")
    );

    let issuer = ca::classify(&c.issuer);
    assert_eq!(
        (issuer.pki, issuer.level, issuer.branch),
        (Pki::IgcSanteTest, Some(Level::Standard), Some(Branch::Personnes))
    );

    // Its issuer is not public here: the chain is incomplete, and the cert expired in 2020.
    let mut store = TrustStore::new();
    store.load_dir(reference.join("igc-sante")).unwrap();
    let p = Profile::builder().certificate(&der).build(&store, at());
    assert_eq!(p.card.card_type, Some(CardType::Cpe));
    assert_eq!(p.card.test, Some(true));
    assert_eq!(p.card.serial.as_deref(), Some("2600301752"));
    let id = p.holder.national_id.as_ref().unwrap();
    assert_eq!(
        (id.scheme.as_deref(), id.status),
        (Some("finess"), IdStatus::Valid)
    );
    assert_eq!(p.holder.profession, None); // "Personnel santé ou social" is no G15 label
    let org = p.organisation.as_ref().unwrap();
    assert_eq!(
        org.structure_id.as_ref().map(|s| s.number.as_str()),
        Some("0B0057881")
    );
    assert_eq!(p.certificates[0].chain.status, ChainStatus::Incomplete);
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
}
