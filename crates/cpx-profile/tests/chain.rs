//! Chain validation against the test PKI: anchors, supplied intermediates, and each failed check
//! (signature, validity, basicConstraints, keyUsage of CAs, missing issuer).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{at, test_store, vectors};
use cpx_profile::chain::ChainProblem;
use cpx_profile::{Certificate, ChainStatus, OFFICIAL_COFFRE, Timestamp, TrustStore};

fn cert(rel: &str) -> Certificate {
    Certificate::from_der(&read(rel)).unwrap()
}

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(vectors().join(rel)).unwrap()
}

/// Replace the first occurrence of `old` (same length as `new`).
fn patch(der: &[u8], old: &[u8], new: &[u8]) -> Vec<u8> {
    let mut out = der.to_vec();
    let at = out.windows(old.len()).position(|w| w == old).unwrap();
    out[at..at + old.len()].copy_from_slice(new);
    out
}

#[test]
fn every_card_certificate_chains_to_its_root() {
    let store = test_store();
    let cpe = store.validate(&cert("cards/cpe/auth.der"), &[], at());
    assert_eq!(cpe.status, ChainStatus::Valid);
    assert_eq!(cpe.path[1].origin, "aci-standard-personnes.der");
    assert_eq!(cpe.path[2].origin, "acr-standard.der");
    assert_eq!(cpe.path[0].ca, None);
    let tech = store.validate(&cert("cards/cps3-contactless/tech.der"), &[], at());
    assert_eq!(tech.status, ChainStatus::Valid);
    assert_eq!(tech.path[2].origin, "acr-fort.der");
}

#[test]
fn supplied_intermediates_are_used_but_not_trusted() {
    let mut store = TrustStore::new();
    assert_eq!(store.add(&read("pki/acr-fort.pem"), "acr-fort.pem").unwrap(), 1); // PEM accepted
    let leaf = cert("cards/cps3-doctor/sign.der");
    assert_eq!(store.validate(&leaf, &[], at()).status, ChainStatus::Incomplete);
    let inter = cert("pki/aci-fort-personnes.der");
    let r = store.validate(&leaf, std::slice::from_ref(&inter), at());
    assert_eq!(r.status, ChainStatus::Valid, "{:?}", r.problems);
    assert_eq!(r.path[1].origin, "supplied");
    // A supplied self-signed root is not an anchor.
    let other = TrustStore::new();
    let r = other.validate(&leaf, &[inter, cert("pki/acr-fort.der")], at());
    assert_eq!(r.status, ChainStatus::Incomplete);
}

#[test]
fn wrong_root_means_incomplete() {
    let mut store = TrustStore::new();
    store
        .add(&read("pki/acr-standard.der"), "acr-standard.der")
        .unwrap();
    store.add(&read("pki/aci-standard-personnes.der"), "aci").unwrap();
    let r = store.validate(&cert("cards/cps3-doctor/auth.der"), &[], at());
    assert_eq!(r.status, ChainStatus::Incomplete);
    match &r.problems[..] {
        [ChainProblem::IssuerNotFound { index: 0, issuer }] => assert!(issuer.ends_with("FORT PERSONNES")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_leaf_signature() {
    let mut der = read("cards/cps3-doctor/auth.der");
    let last = der.len() - 1;
    der[last] ^= 0x01;
    let r = test_store().validate(&Certificate::from_der(&der).unwrap(), &[], at());
    assert_eq!(r.status, ChainStatus::Invalid);
    assert_eq!(r.problems, [ChainProblem::BadSignature { index: 0 }]);
}

#[test]
fn ca_without_ca_flag_or_key_cert_sign() {
    let leaf = cert("cards/cps3-doctor/auth.der");
    let root = read("pki/acr-fort.der");
    let inter = read("pki/aci-fort-personnes.der");
    // basicConstraints cA TRUE → FALSE in the intermediate (its own signature breaks too).
    let not_ca = patch(
        &inter,
        &[0x30, 0x06, 0x01, 0x01, 0xFF, 0x02, 0x01, 0x00],
        &[0x30, 0x06, 0x01, 0x01, 0x00, 0x02, 0x01, 0x00],
    );
    let mut store = TrustStore::new();
    store.add(&root, "root").unwrap();
    store.add(&not_ca, "not-ca").unwrap();
    let r = store.validate(&leaf, &[], at());
    assert_eq!(r.status, ChainStatus::Invalid);
    assert_eq!(
        r.problems,
        [
            ChainProblem::BadSignature { index: 1 },
            ChainProblem::NotCa { index: 1 }
        ]
    );
    // keyUsage keyCertSign + cRLSign (03 02 01 06) → cRLSign only (03 02 01 02).
    let ku = [0x04, 0x04, 0x03, 0x02, 0x01, 0x06];
    let no_cert_sign = patch(&inter, &ku, &[0x04, 0x04, 0x03, 0x02, 0x01, 0x02]);
    let mut store = TrustStore::new();
    store.add(&root, "root").unwrap();
    store.add(&no_cert_sign, "no-cert-sign").unwrap();
    let r = store.validate(&leaf, &[], at());
    assert!(
        r.problems.contains(&ChainProblem::NoKeyCertSign { index: 1 }),
        "{:?}",
        r.problems
    );
    assert!(
        r.problems.iter().all(|p| p.to_string().contains("#1")),
        "{:?}",
        r.problems
    );
}

#[test]
fn validity_at_the_given_instant() {
    let store = test_store();
    let leaf = cert("cards/cps3-doctor/auth.der");
    let before = store.validate(&leaf, &[], Timestamp::parse("2025-12-31T23:59:59Z").unwrap());
    assert_eq!(
        before.problems,
        [ChainProblem::NotYetValid {
            index: 0,
            not_before: leaf.validity.not_before
        }]
    );
    let after = store.validate(&leaf, &[], Timestamp::parse("2038-06-01T00:00:00Z").unwrap());
    let indices: Vec<String> = after.problems.iter().map(ToString::to_string).collect();
    assert_eq!(indices.len(), 3, "{indices:?}"); // leaf, intermediate and root all expired
    assert_eq!(
        store.validate(&leaf, &[], leaf.validity.not_after).status,
        ChainStatus::Valid
    );
}

#[test]
fn official_coffre_is_optional() {
    let mut store = TrustStore::new();
    let loaded = store.load_official_coffre();
    assert_eq!(loaded.is_some(), std::path::Path::new(OFFICIAL_COFFRE).is_dir());
}
