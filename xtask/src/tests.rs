//! Guards for the committed test PKI in `test-vectors/`.
//!
//! - the generator reproduces the committed files byte for byte (full regeneration: about 10 s
//!   in a debug build, dependencies being built at opt-level 2);
//! - every certificate chains leaf → intermediate → root (signatures checked with `rsa`);
//! - the expired card is expired, the others are current;
//! - every certificate's public key matches its private key file;
//! - every `holder.toml` value is what the certificates actually encode;
//! - every `card.toml` (emulator image) carries the holder's identity and Luhn-valid ids.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey};
use rsa::signature::Verifier;
use rsa::{RsaPrivateKey, RsaPublicKey};
use sha2::Sha256;
use x509_cert::certificate::Certificate;
use x509_cert::der::asn1::{OctetString, PrintableStringRef};
use x509_cert::der::{Decode, DecodePem, Encode};
use x509_cert::ext::pkix::{KeyUsage, KeyUsages, SubjectKeyIdentifier};

use crate::cards::{CARDS, Card, CardType};
use crate::dn;
use crate::ext;
use crate::generate;
use crate::luhn;
use crate::pki::{Level, Population};
use crate::x509::Date;

fn vectors() -> PathBuf {
    crate::default_out_dir()
}

fn read(rel: impl AsRef<Path>) -> Vec<u8> {
    let path = vectors().join(rel);
    fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run `cargo run -p xtask -- gen-test-pki`)",
            path.display()
        )
    })
}

fn cert(rel: impl AsRef<Path>) -> Certificate {
    let der = read(rel);
    let cert = Certificate::from_der(&der).unwrap();
    assert_eq!(cert.to_der().unwrap(), der, "certificate is not canonical DER");
    cert
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Elementaire => "elementaire",
        Level::Standard => "standard",
        Level::Fort => "fort",
    }
}

fn root_file(level: Level) -> String {
    format!("pki/acr-{}.der", level_name(level))
}

fn intermediate_file(level: Level, population: Population) -> String {
    let p = match population {
        Population::Personnes => "personnes",
        Population::Organisations => "organisations",
    };
    format!("pki/aci-{}-{p}.der", level_name(level))
}

fn card_cert(card: &Card, role: crate::cards::Role) -> Certificate {
    cert(
        Path::new("cards")
            .join(card.stem)
            .join(format!("{}.der", role.stem())),
    )
}

fn public_key(cert: &Certificate) -> RsaPublicKey {
    RsaPublicKey::from_public_key_der(&cert.tbs_certificate.subject_public_key_info.to_der().unwrap())
        .unwrap()
}

/// Checks that `issuer` signed `subject`, and that names and key identifiers link up.
fn assert_signed_by(subject: &Certificate, issuer: &Certificate, what: &str) {
    let tbs = &subject.tbs_certificate;
    assert_eq!(tbs.issuer, issuer.tbs_certificate.subject, "{what}: issuer DN");
    let signature = Signature::try_from(subject.signature.raw_bytes()).unwrap();
    VerifyingKey::<Sha256>::new(public_key(issuer))
        .verify(&tbs.to_der().unwrap(), &signature)
        .unwrap_or_else(|e| panic!("{what}: bad signature: {e}"));
    let (_, ski) = issuer
        .tbs_certificate
        .get::<SubjectKeyIdentifier>()
        .unwrap()
        .unwrap();
    let (_, aki) = tbs
        .get::<x509_cert::ext::pkix::AuthorityKeyIdentifier>()
        .unwrap()
        .unwrap();
    assert_eq!(aki.key_identifier, Some(ski.0), "{what}: AKI != issuer SKI");
}

fn unix(date: Date) -> Duration {
    date.to_time().unwrap().to_unix_duration()
}

/// The raw value of the extension `oid`.
fn ext_value(cert: &Certificate, oid: const_oid::ObjectIdentifier) -> Vec<u8> {
    let exts = cert.tbs_certificate.extensions.as_ref().unwrap();
    let found: Vec<_> = exts.iter().filter(|e| e.extn_id == oid).collect();
    assert_eq!(found.len(), 1, "extension {oid}");
    found[0].extn_value.as_bytes().to_vec()
}

/// Lists the files under `dir`, relative to `base`.
fn list_files(base: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            list_files(base, &path, out);
        } else {
            out.push(path.strip_prefix(base).unwrap().to_path_buf());
        }
    }
}

#[test]
fn regeneration_matches_committed_files() {
    let tmp = tempfile::tempdir().unwrap();
    let files = generate::build(&Level::ALL, CARDS).unwrap();
    generate::write(tmp.path(), &files).unwrap();
    for (rel, _) in &files {
        let fresh = fs::read(tmp.path().join(rel)).unwrap();
        assert!(
            fresh == read(rel),
            "{} differs from the generator's output: regenerate",
            rel.display()
        );
    }
    // pki/ and cards/ belong to the generator alone (plus pki/README.md): no stale files.
    let mut committed = Vec::new();
    list_files(&vectors(), &vectors().join("pki"), &mut committed);
    list_files(&vectors(), &vectors().join("cards"), &mut committed);
    for rel in committed {
        let known = rel.file_name().is_some_and(|n| n == "README.md") || files.iter().any(|(f, _)| *f == rel);
        assert!(
            known,
            "stale file {} not produced by the generator",
            rel.display()
        );
    }
}

#[test]
fn every_certificate_chains_to_its_root() {
    for level in Level::ALL {
        let root = cert(root_file(level));
        assert_signed_by(&root, &root, &root_file(level));
        for population in Population::ALL {
            let inter = cert(intermediate_file(level, population));
            assert_signed_by(&inter, &root, &intermediate_file(level, population));
        }
    }
    for card in CARDS {
        let level = card.card_type.level();
        let inter = cert(intermediate_file(level, Population::Personnes));
        for &role in card.roles {
            assert_signed_by(&card_cert(card, role), &inter, &format!("{} {role:?}", card.stem));
        }
    }
}

#[test]
fn validity_periods() {
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap();
    for card in CARDS {
        for &role in card.roles {
            let v = card_cert(card, role).tbs_certificate.validity;
            let (nb, na) = (v.not_before.to_unix_duration(), v.not_after.to_unix_duration());
            if card.stem == "cps3-expired" {
                assert!(
                    na < now && na <= unix(Date::ymd(2022, 1, 1)),
                    "{} must be expired",
                    card.stem
                );
            } else {
                // Fixed instant, not the clock: the cards stay "current" for tests until 2029.
                let mid = unix(Date::ymd(2027, 1, 1));
                assert!(nb < mid && mid < na, "{} must be valid in 2027", card.stem);
            }
            // Inside the CA periods, so the chain verifies at any time the leaf is valid.
            let inter = cert(intermediate_file(card.card_type.level(), Population::Personnes));
            let iv = inter.tbs_certificate.validity;
            assert!(iv.not_before.to_unix_duration() <= nb && na <= iv.not_after.to_unix_duration());
        }
    }
}

#[test]
fn public_keys_match_private_keys() {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for level in Level::ALL {
        let mut stems = vec![root_file(level)];
        stems.extend(Population::ALL.iter().map(|&p| intermediate_file(level, p)));
        pairs.extend(
            stems
                .into_iter()
                .map(|c| (c.clone(), c.replace(".der", ".TEST-ONLY.key.der"))),
        );
    }
    for card in CARDS {
        for &role in card.roles {
            let dir = format!("cards/{}", card.stem);
            pairs.push((
                format!("{dir}/{}.der", role.stem()),
                format!("{dir}/{}.TEST-ONLY.key.der", role.stem()),
            ));
        }
    }
    assert_eq!(pairs.len(), 9 + 19);
    for (cert_file, key_file) in pairs {
        let private = RsaPrivateKey::from_pkcs8_der(&read(&key_file)).unwrap();
        private.validate().unwrap();
        let from_key = private.to_public_key().to_public_key_der().unwrap();
        let in_cert = cert(&cert_file)
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .unwrap();
        assert_eq!(from_key.as_bytes(), in_cert, "{cert_file} vs {key_file}");
    }
}

#[test]
fn pem_twins_match_der() {
    for level in Level::ALL {
        let mut files = vec![root_file(level)];
        files.extend(Population::ALL.iter().map(|&p| intermediate_file(level, p)));
        for der_file in files {
            let pem = Certificate::from_pem(read(der_file.replace(".der", ".pem"))).unwrap();
            assert_eq!(pem, cert(&der_file), "{der_file}");
        }
    }
}

#[test]
fn every_ca_name_is_marked_test() {
    for level in Level::ALL {
        let mut files = vec![root_file(level)];
        files.extend(Population::ALL.iter().map(|&p| intermediate_file(level, p)));
        for f in files {
            let subject = cert(&f).tbs_certificate.subject;
            let cn = dn::find(&subject, dn::CN).unwrap();
            // Real production CAs are `AC …`, real TEST CAs `TEST AC …`: ours never collide.
            assert!(cn.starts_with("TEST CPX AC "), "{f}: {cn}");
            assert!(
                subject.to_string().contains("OU=IGC-SANTE TEST"),
                "{f}: {subject}"
            );
        }
    }
}

#[test]
fn national_identifiers_are_well_formed() {
    for card in CARDS {
        let id = card.holder.national_id;
        match card.card_type {
            // RPPS: prefix 8 + 11 digits, Luhn, test range 997 (docs/data-and-certs.md §2.7).
            CardType::Cps | CardType::Cpf => {
                assert_eq!(id.len(), 12, "{}", card.stem);
                assert!(
                    id.starts_with("8997") && luhn::is_valid(&id[1..]),
                    "{}: {id}",
                    card.stem
                );
            }
            CardType::Cpe => assert!(id.starts_with("30B") && id.contains('/'), "{id}"),
            CardType::Cpa => {
                let siret = &id[1..15];
                assert!(
                    id.starts_with('5') && luhn::is_valid(siret) && id[15..].starts_with('/'),
                    "{id}"
                );
            }
        }
        assert!(card.holder.surname.contains("TEST"), "{}", card.stem);
        assert_eq!(card.card_serial.len(), 10);
    }
}

fn toml_str<'t>(table: &'t toml::Table, section: &str, key: &str) -> Option<&'t str> {
    table.get(section)?.get(key)?.as_str()
}

#[test]
fn holder_toml_matches_certificates() {
    for card in CARDS {
        let text = String::from_utf8(read(format!("cards/{}/holder.toml", card.stem))).unwrap();
        let t: toml::Table = text.parse().unwrap();
        for &role in card.roles {
            let c = card_cert(card, role);
            let subject = &c.tbs_certificate.subject;
            let get = |key| toml_str(&t, "holder", key).map(str::to_owned);
            assert_eq!(get("national_id"), dn::find(subject, dn::CN), "{}", card.stem);
            assert_eq!(get("given_name"), dn::find(subject, dn::GN));
            assert_eq!(get("surname"), dn::find(subject, dn::SN));
            assert_eq!(get("title"), dn::find(subject, dn::TITLE));
            let org = |key| toml_str(&t, "organisation", key).map(str::to_owned);
            assert_eq!(org("name"), dn::find(subject, dn::O));
            assert_eq!(org("state"), dn::find(subject, dn::ST));
            assert_eq!(org("struct_id"), dn::find(subject, dn::OU));

            // ANS extensions (docs/data-and-certs.md §2.2).
            let type_code = u8::from_der(&ext_value(&c, ext::ANS_CARD_TYPE)).unwrap();
            assert_eq!(t["card"]["type_code"].as_integer(), Some(i64::from(type_code)));
            let token = ext_value(&c, ext::ANS_TOKEN_ID);
            let token = PrintableStringRef::from_der(&token).unwrap().to_string();
            assert_eq!(toml_str(&t, "card", "token_id"), Some(token.as_str()));
            assert_eq!(token.split('/').nth(1), toml_str(&t, "card", "serial"));
            let category = OctetString::from_der(&ext_value(&c, ext::ANS_PRODUCT_CATEGORY)).unwrap();
            assert_eq!(category.as_bytes(), [0x80]);

            // Per-certificate facts.
            let section = &t["certificates"][role.stem()];
            let serial: String = c
                .tbs_certificate
                .serial_number
                .as_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(section["serial"].as_str(), Some(serial.as_str()));
            assert_eq!(serial.len(), 32, "16-byte serial");
            let issuer_cn = dn::find(&c.tbs_certificate.issuer, dn::CN);
            assert_eq!(section["issuer_cn"].as_str().map(str::to_owned), issuer_cn);
            let not_after = section["not_after"].as_datetime().unwrap().to_string();
            let real = c.tbs_certificate.validity.not_after.to_date_time();
            assert_eq!(not_after, format!("{real}"), "{}", card.stem);
            let (critical, ku) = c.tbs_certificate.get::<KeyUsage>().unwrap().unwrap();
            assert!(critical);
            let names: Vec<_> = section["key_usage"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|v| v.as_str())
                .collect();
            assert_eq!(
                names.contains(&"nonRepudiation"),
                ku.0.contains(KeyUsages::NonRepudiation)
            );
            assert_eq!(
                names.contains(&"keyEncipherment"),
                ku.0.contains(KeyUsages::KeyEncipherment)
            );
            assert!(ku.0.contains(KeyUsages::DigitalSignature));
            let has_san = c
                .tbs_certificate
                .get::<x509_cert::ext::pkix::SubjectAltName>()
                .unwrap()
                .is_some();
            assert_eq!(section.get("upn").is_some(), has_san, "{} {role:?}", card.stem);
        }
    }
}

/// Cross-check with OpenSSL's own path validation (`-x509_strict`), when `openssl` is installed.
#[test]
fn openssl_verifies_every_chain() {
    if Command::new("openssl").arg("version").output().is_err() {
        eprintln!("openssl not found: skipping the OpenSSL cross-check");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    for card in CARDS {
        let level = card.card_type.level();
        for &role in card.roles {
            let leaf = tmp.path().join(format!("{}-{}.pem", card.stem, role.stem()));
            let pem = x509_cert::der::EncodePem::to_pem(&card_cert(card, role), Default::default()).unwrap();
            fs::write(&leaf, pem).unwrap();
            let mut cmd = Command::new("openssl");
            cmd.arg("verify").arg("-x509_strict");
            if card.stem == "cps3-expired" {
                cmd.args(["-attime", &unix(Date::ymd(2020, 6, 1)).as_secs().to_string()]);
            }
            cmd.arg("-CAfile")
                .arg(vectors().join(root_file(level).replace(".der", ".pem")));
            cmd.arg("-untrusted")
                .arg(vectors().join(intermediate_file(level, Population::Personnes).replace(".der", ".pem")));
            let out = cmd.arg(&leaf).output().unwrap();
            assert!(
                out.status.success(),
                "{}: {}",
                leaf.display(),
                String::from_utf8_lossy(&out.stdout)
            );
        }
    }
}
