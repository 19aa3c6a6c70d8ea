//! `cpx status`, `certs`, `data`, `sign`, `wait`, `completions`, `man` against emulated cards
//! behind the real pcscd + vpcd. Each test leases its own reader and names it with --reader
//! (auto-selection is tested alone in tests/status_auto.rs).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use common::*;
use cpx_testkit::{Failed, SandboxConfig, SandboxEnv, Trial, wait_for_card};
use cpx_vpcd::CardSlot;

fn main() -> ExitCode {
    cpx_testkit::run_tests(&SandboxConfig::default(), || {
        vec![
            Trial::test("status_cps3_text_and_json", || status("cps3-doctor", "CPS3")),
            Trial::test("status_cps4_text_and_json", || status("cps4-doctor", "CPS4")),
            Trial::test("status_contactless_has_no_pin", status_contactless),
            Trial::test("status_expired_card_shows_negative_days", status_expired),
            Trial::test("status_blocked_pin_and_puk", status_blocked),
            Trial::test("certs_list_text_and_json", certs_list),
            Trial::test("certs_export_pem_der_json", certs_export),
            Trial::test("certs_verify_anchors_and_exit_10", certs_verify),
            Trial::test("data_public_then_private_after_login", data),
            Trial::test("sign_cps3_pkcs1_verified_by_openssl", || {
                sign_pkcs1("cps3-doctor")
            }),
            Trial::test("sign_cps4_pkcs1_verified_by_openssl", || {
                sign_pkcs1("cps4-doctor")
            }),
            Trial::test("sign_cps4_pss_verified_by_openssl", sign_pss),
            Trial::test("sign_pss_on_cps3_is_refused_before_the_pin", pss_on_cps3),
            Trial::test("wait_reports_insertion_and_removal", wait_events),
            Trial::test("wait_times_out_with_exit_12", wait_timeout),
            Trial::test("completions_and_man_page", completions_and_man),
        ]
    })
}

const CERT: &[(&str, &str)] = &[
    ("role", "string"),
    ("label", "string|null"),
    ("subject", "string"),
    ("issuer", "string"),
    ("issuer_pki", "string"),
    ("issuer_level", "string|null"),
    ("serial", "string"),
    ("not_before", "string"),
    ("not_after", "string"),
    ("days_left", "integer"),
    ("expiry", "string"),
    ("sha256", "string"),
];

const CODE: &[(&str, &str)] = &[
    ("tries_left", "integer|null"),
    ("max_tries", "integer|null"),
    ("blocked", "boolean"),
    ("verified", "boolean|null"),
];

fn check_status(v: &serde_json::Value) {
    check(
        v,
        &[
            ("reader", "string"),
            ("reader_selected", "string"),
            ("card.generation", "string"),
            ("card.interface", "string"),
            ("card.model", "string"),
            ("card.serial", "string"),
            ("card.token_label", "string"),
            ("card.type", "string|null"),
            ("card.type_label", "string|null"),
            ("card.test", "boolean|null"),
            ("holder.national_id", "string|null"),
            ("holder.national_id_scheme", "string|null"),
            ("holder.national_id_status", "string|null"),
            ("holder.given_name", "string|null"),
            ("holder.surname", "string|null"),
            ("holder.title", "string|null"),
            ("holder.profession", "object|null"),
            ("holder.organisation", "string|null"),
            ("holder.pseudonym", "string|null"),
            ("holder.specialty", "object|null"),
            ("holder.upn", "string|null"),
            ("certificates", "array"),
            ("pin", "object|null"),
            ("puk", "object|null"),
            ("ef_actua", "object|null"),
            ("days_left", "integer|null"),
        ],
    );
    for c in v["certificates"].as_array().unwrap() {
        check(c, CERT);
    }
    for code in ["pin", "puk"] {
        if v[code].is_object() {
            check(&v[code], CODE);
        }
    }
    if v["ef_actua"].is_object() {
        check(&v["ef_actua"], &[("start", "string"), ("end", "string")]);
    }
    if v["holder"]["profession"].is_object() {
        check(
            &v["holder"]["profession"],
            &[("table", "string"), ("code", "string"), ("label", "string|null")],
        );
    }
}

fn status(stem: &str, generation: &str) -> Result<(), Failed> {
    let card = insert(stem)?;
    let out = on(&card, &["status"], "");
    expect_code(&out, 0);
    let text = stdout(&out);
    assert!(
        text.contains(&format!("Reader:        {}\n", card.reader())),
        "{text}"
    );
    assert!(text.contains(&format!("Card:          {generation} (")), "{text}");
    assert!(text.contains("Profession:    Médecin (G15 10)"), "{text}");
    assert!(text.contains("National id:   8997000000"), "{text}");
    assert!(text.contains("PIN:           3 tries left"), "{text}");
    assert!(text.contains("authentication  C=FR"), "{text}");
    assert!(text.contains("(FORT), valid until 2029-01-01 ("), "{text}");
    assert!(text.contains("days left)"), "{text}");

    let v = json(&on(&card, &["status", "--json"], ""), "status");
    check_status(&v);
    assert_eq!(v["reader"], card.reader());
    assert_eq!(v["reader_selected"], "given");
    assert_eq!(v["card"]["generation"], generation);
    assert_eq!(v["card"]["interface"], "contact");
    assert_eq!(v["card"]["type"], "CPS");
    assert_eq!(v["card"]["test"], true);
    assert_eq!(v["holder"]["national_id_scheme"], "rpps");
    assert_eq!(v["holder"]["profession"]["label"], "Médecin");
    // One holder layout: the very object cpx-profile's JSON of this card holds
    // (test-vectors/expected), but for `specialty`, read from business data `cpx status` skips.
    let path = format!(
        "{}/../test-vectors/expected/{stem}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let profile: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut holder = profile["holder"].clone();
    holder["specialty"] = serde_json::Value::Null;
    assert_eq!(v["holder"], holder, "{path}");
    assert_eq!(v["pin"]["tries_left"], 3);
    assert_eq!(v["pin"]["blocked"], false);
    assert_eq!(v["puk"]["blocked"], false);
    let certs = v["certificates"].as_array().unwrap();
    let roles: Vec<&str> = certs.iter().map(|c| c["role"].as_str().unwrap()).collect();
    assert!(
        roles.contains(&"authentication") && roles.contains(&"signature"),
        "{roles:?}"
    );
    for c in certs {
        assert_eq!(c["issuer_level"], "fort");
        assert_eq!(c["expiry"], "valid");
        assert!(c["days_left"].as_i64().unwrap() > 0);
    }
    assert!(v["days_left"].as_i64().unwrap() > 0);
    Ok(())
}

fn status_contactless() -> Result<(), Failed> {
    let card = insert("cps3-contactless")?;
    let v = json(&on(&card, &["status", "--json"], ""), "status");
    check_status(&v);
    assert_eq!(v["card"]["interface"], "contactless");
    assert!(v["pin"].is_null() && v["puk"].is_null(), "{v}");
    assert_eq!(v["certificates"][0]["role"], "technical");
    let out = on(&card, &["status"], "");
    expect_code(&out, 0);
    assert!(stdout(&out).contains("PIN:           none on this interface"));
    Ok(())
}

fn status_expired() -> Result<(), Failed> {
    let card = insert("cps3-expired")?;
    let v = json(&on(&card, &["status", "--json"], ""), "status");
    check_status(&v);
    for c in v["certificates"].as_array().unwrap() {
        assert_eq!(c["expiry"], "expired");
        assert!(c["days_left"].as_i64().unwrap() < 0);
    }
    let text = stdout(&on(&card, &["status"], ""));
    assert!(text.contains("EXPIRED on 2022-01-01 ("), "{text}");
    Ok(())
}

fn status_blocked() -> Result<(), Failed> {
    let card = insert("cps3-pin-blocked")?;
    let v = json(&on(&card, &["status", "--json"], ""), "status");
    assert_eq!(v["pin"]["blocked"], true);
    assert_eq!(v["puk"]["blocked"], false);
    let text = stdout(&on(&card, &["status"], ""));
    assert!(
        text.contains("PIN:           blocked (unblock with your PUK: cpx pin unblock)"),
        "{text}"
    );
    let card = insert("cps3-puk-blocked")?;
    let v = json(&on(&card, &["status", "--json"], ""), "status");
    assert_eq!(v["puk"]["blocked"], true);
    let text = stdout(&on(&card, &["status"], ""));
    assert!(
        text.contains("PUK:           blocked (the card must be replaced)"),
        "{text}"
    );
    Ok(())
}

fn certs_list() -> Result<(), Failed> {
    let card = insert("cps3-doctor")?;
    let out = on(&card, &["certs", "list"], "");
    expect_code(&out, 0);
    let text = stdout(&out);
    assert!(text.contains("signature       C=FR, title=Médecin"), "{text}");
    assert!(
        text.contains("label \"Certificat d'Authentification CPS\""),
        "{text}"
    );
    let v = json(&on(&card, &["certs", "list", "--json"], ""), "certs-list");
    check(&v, &[("reader", "string"), ("certificates", "array")]);
    assert_eq!(v["certificates"].as_array().unwrap().len(), 2);
    for c in v["certificates"].as_array().unwrap() {
        check(c, CERT);
    }
    let v = json(
        &on(&card, &["certs", "list", "--role", "sign", "--json"], ""),
        "certs-list",
    );
    assert_eq!(v["certificates"].as_array().unwrap().len(), 1);
    assert_eq!(v["certificates"][0]["role"], "signature");
    // no technical certificate on a contact card
    let out = on(&card, &["certs", "list", "--role", "tech"], "");
    expect_code(&out, 1);
    assert!(stderr(&out).contains("no such object on the card: tech certificate"));
    Ok(())
}

fn openssl(args: &[&str]) -> std::process::Output {
    Command::new("openssl").args(args).output().unwrap()
}

fn certs_export() -> Result<(), Failed> {
    let card = insert("cps3-doctor")?;
    let dir = tempfile::tempdir()?;
    let p = |n: &str| dir.path().join(n).to_str().unwrap().to_owned();
    // PEM of everything on stdout
    let out = on(&card, &["certs", "export"], "");
    expect_code(&out, 0);
    assert_eq!(stdout(&out).matches("-----BEGIN CERTIFICATE-----").count(), 2);
    // one PEM, one DER: the same certificate for openssl
    expect_code(
        &on(
            &card,
            &["certs", "export", "--role", "auth", "-o", &p("auth.pem")],
            "",
        ),
        0,
    );
    expect_code(
        &on(
            &card,
            &["certs", "export", "--role", "auth", "--der", "-o", &p("auth.der")],
            "",
        ),
        0,
    );
    let der = std::fs::read(p("auth.der"))?;
    let expected = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../test-vectors/cards/cps3-doctor/auth.der"
    ))?;
    assert_eq!(der, expected);
    let conv = openssl(&["x509", "-in", &p("auth.pem"), "-outform", "DER"]);
    assert!(conv.status.success(), "{}", String::from_utf8_lossy(&conv.stderr));
    assert_eq!(conv.stdout, expected);
    // --der needs a role; --json needs -o
    expect_code(&on(&card, &["certs", "export", "--der"], ""), 2);
    expect_code(&on(&card, &["certs", "export", "--json"], ""), 2);
    let v = json(
        &on(
            &card,
            &["certs", "export", "--role", "sign", "-o", &p("s.pem"), "--json"],
            "",
        ),
        "certs-export",
    );
    check(
        &v,
        &[
            ("reader", "string"),
            ("format", "string"),
            ("file", "string"),
            ("certificates", "array"),
        ],
    );
    assert_eq!(v["format"], "pem");
    check(
        &v["certificates"][0],
        &[("role", "string"), ("subject", "string"), ("sha256", "string")],
    );
    assert_eq!(v["certificates"][0]["role"], "signature");
    Ok(())
}

fn certs_verify() -> Result<(), Failed> {
    let pki = concat!(env!("CARGO_MANIFEST_DIR"), "/../test-vectors/pki");
    let card = insert("cps3-doctor")?;
    let out = on(&card, &["certs", "verify", "--anchors", pki], "");
    expect_code(&out, 0);
    let text = stdout(&out);
    assert!(text.contains("authentication: valid: C=FR"), "{text}");
    assert!(
        text.contains(
            "← C=FR, O=ASIP-SANTE, OU=0002 187512751, OU=IGC-SANTE TEST, CN=TEST CPX AC RACINE IGC-SANTE FORT"
        ),
        "{text}"
    );
    let v = json(
        &on(&card, &["certs", "verify", "--anchors", pki, "--json"], ""),
        "certs-verify",
    );
    check(
        &v,
        &[
            ("reader", "string"),
            ("at", "string"),
            ("anchors", "array"),
            ("valid", "boolean"),
            ("certificates", "array"),
        ],
    );
    check(&v["anchors"][0], &[("dir", "string"), ("loaded", "integer")]);
    assert!(v["anchors"][0]["loaded"].as_u64().unwrap() >= 6);
    assert_eq!(v["valid"], true);
    for c in v["certificates"].as_array().unwrap() {
        check(
            c,
            &[
                ("role", "string"),
                ("subject", "string"),
                ("status", "string"),
                ("expiry", "string"),
                ("days_left", "integer"),
                ("path", "array"),
                ("problems", "array"),
            ],
        );
        assert_eq!(c["status"], "valid");
        assert_eq!(c["path"].as_array().unwrap().len(), 3);
    }

    // The test PKI is never trusted unless named (and this machine has no official Coffre).
    if !std::path::Path::new(cpx_profile::OFFICIAL_COFFRE).exists() {
        let out = on(&card, &["certs", "verify"], "");
        expect_code(&out, 10);
        assert!(stdout(&out).contains("signature: INCOMPLETE"), "{}", stdout(&out));
        assert!(
            stderr(&out).contains("cpx: certificate invalid: "),
            "{}",
            stderr(&out)
        );
        assert!(stdout(&out).contains("no trust anchors"), "{}", stdout(&out));
        let out = on(&card, &["certs", "verify", "--json"], "");
        expect_code(&out, 10);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        assert_eq!(v["valid"], false);
        assert_eq!(v["certificates"][0]["status"], "incomplete");
    }

    let expired = insert("cps3-expired")?;
    let out = on(&expired, &["certs", "verify", "--anchors", pki, "--json"], "");
    expect_code(&out, 10);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(v["certificates"][0]["status"], "invalid");
    assert_eq!(v["certificates"][0]["expiry"], "expired");
    assert!(stderr(&out).contains("expired on 2022-01-01"), "{}", stderr(&out));
    Ok(())
}

fn data() -> Result<(), Failed> {
    let card = insert("cps3-doctor")?;
    let v = json(&on(&card, &["data", "--json"], ""), "data");
    check(
        &v,
        &[
            ("reader", "string"),
            ("logged_in", "boolean"),
            ("objects", "array"),
        ],
    );
    assert_eq!(v["logged_in"], false);
    let objects = v["objects"].as_array().unwrap();
    for o in objects {
        check(
            o,
            &[
                ("label", "string"),
                ("application", "string|null"),
                ("private", "boolean"),
                ("modifiable", "boolean"),
                ("read", "boolean"),
                ("error", "string|null"),
                ("content", "object|null"),
            ],
        );
        assert_eq!(o["read"], !o["private"].as_bool().unwrap(), "{o}");
        if o["read"] == true {
            check(
                &o["content"],
                &[
                    ("label", "string"),
                    ("kind", "string"),
                    ("length", "integer"),
                    ("value", "string"),
                    ("tlv", "object|null"),
                    ("decoded", "object|null"),
                ],
            );
        }
    }
    let name = objects.iter().find(|o| o["label"] == "CPS_NAME_PS").unwrap();
    assert!(name["content"]["value"].as_str().unwrap().starts_with("EE"));
    assert_eq!(card.pin_commands(), 0, "no PIN without --login");
    let text = stdout(&on(&card, &["data"], ""));
    assert!(
        text.contains("CPS_NAME_PS (public, 27 bytes)\n  EE (25)\n    80 (16) \"MEDECIN-TEST0001\""),
        "{text}"
    );
    assert!(
        text.contains("CPS_ACTIVITY_01_PS (private): private: needs the PIN (--login)"),
        "{text}"
    );

    let out = on(&card, &["data", "--json", "--pin-stdin"], "1234\n");
    let v = json(&out, "data");
    assert!(stderr(&out).contains("PIN: 3 tries left"), "{}", stderr(&out));
    assert_eq!(v["logged_in"], true);
    let act = v["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["label"] == "CPS_ACTIVITY_01_PS")
        .unwrap();
    assert_eq!(act["read"], true);
    assert_eq!(act["content"]["decoded"]["type"], "activity");
    assert_eq!(
        act["content"]["decoded"]["raison_sociale"],
        "CABINET DR MEDECIN-TEST0001"
    );
    let out = on(
        &card,
        &["data", "--label", "CPS_ACTIVITY_02_PS", "--pin-stdin"],
        "1234\n",
    );
    expect_code(&out, 0);
    assert!(
        stdout(&out).contains("  raison sociale: HOPITAL TEST"),
        "{}",
        stdout(&out)
    );
    Ok(())
}

fn pubkey(card: &Inserted, role: &str, dir: &std::path::Path) -> String {
    let cert = dir.join(format!("{role}.pem"));
    let out = on(
        card,
        &["certs", "export", "--role", role, "-o", cert.to_str().unwrap()],
        "",
    );
    expect_code(&out, 0);
    let o = openssl(&["x509", "-in", cert.to_str().unwrap(), "-pubkey", "-noout"]);
    assert!(o.status.success());
    let pubkey = dir.join(format!("{role}.pub.pem"));
    std::fs::write(&pubkey, o.stdout).unwrap();
    pubkey.to_str().unwrap().to_owned()
}

fn sign_pkcs1(stem: &str) -> Result<(), Failed> {
    let card = insert(stem)?;
    let dir = tempfile::tempdir()?;
    let doc = dir.path().join("ordonnance.txt");
    std::fs::write(&doc, "Paracétamol 1 g, 3 fois par jour\n".repeat(40))?;
    let doc = doc.to_str().unwrap();
    for (key, hash) in [("sign", "sha256"), ("auth", "sha256"), ("sign", "sha1")] {
        let pubkey = pubkey(&card, key, dir.path());
        let sig = dir.path().join(format!("{key}-{hash}.sig"));
        let sig = sig.to_str().unwrap();
        let out = on(
            &card,
            &[
                "sign",
                "--key",
                key,
                "--hash",
                hash,
                doc,
                "-o",
                sig,
                "--pin-stdin",
                "--json",
            ],
            "1234\n",
        );
        let v = json(&out, "sign");
        check(
            &v,
            &[
                ("reader", "string"),
                ("key", "string"),
                ("padding", "string"),
                ("hash", "string"),
                ("salt_length", "integer|null"),
                ("input", "string"),
                ("signature_file", "string"),
                ("signature_length", "integer"),
            ],
        );
        assert_eq!(v["padding"], "pkcs1v15");
        assert_eq!(v["signature_length"], 256);
        assert!(stderr(&out).contains("PIN: 3 tries left"));
        let o = openssl(&[
            "dgst",
            &format!("-{hash}"),
            "-verify",
            &pubkey,
            "-signature",
            sig,
            doc,
        ]);
        assert!(
            o.status.success(),
            "{key}/{hash}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&o.stdout), "Verified OK\n");
        // and pkeyutl on the digest, as the brief's admin would
        let digest = openssl(&["dgst", &format!("-{hash}"), "-binary", doc]).stdout;
        let dgst = dir.path().join("digest.bin");
        std::fs::write(&dgst, digest)?;
        let o = openssl(&[
            "pkeyutl",
            "-verify",
            "-pubin",
            "-inkey",
            &pubkey,
            "-in",
            dgst.to_str().unwrap(),
            "-sigfile",
            sig,
            "-pkeyopt",
            &format!("digest:{hash}"),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    // text output and the default FILE.sig
    let out = on(&card, &["sign", "--key", "sign", doc, "--pin-stdin"], "1234\n");
    expect_code(&out, 0);
    assert!(
        stdout(&out).contains("RSA PKCS#1 v1.5, SHA256"),
        "{}",
        stdout(&out)
    );
    assert!(std::path::Path::new(&format!("{doc}.sig")).exists());
    // a tampered file does not verify
    let pubkey = pubkey(&card, "sign", dir.path());
    std::fs::write(doc, "Paracétamol 3 g")?;
    let o = openssl(&[
        "dgst",
        "-sha256",
        "-verify",
        &pubkey,
        "-signature",
        &format!("{doc}.sig"),
        doc,
    ]);
    assert!(!o.status.success());
    Ok(())
}

fn sign_pss() -> Result<(), Failed> {
    let card = insert("cps4-doctor")?;
    let dir = tempfile::tempdir()?;
    let doc = dir.path().join("doc.bin");
    std::fs::write(&doc, (0..3000u32).map(|i| i as u8).collect::<Vec<_>>())?;
    let doc = doc.to_str().unwrap();
    for (key, hash, salt) in [
        ("auth", "sha256", "32"),
        ("sign", "sha256", "32"),
        ("auth", "sha1", "20"),
    ] {
        let pubkey = pubkey(&card, key, dir.path());
        let sig = dir.path().join("pss.sig");
        let sig = sig.to_str().unwrap();
        let v = json(
            &on(
                &card,
                &[
                    "sign",
                    "--key",
                    key,
                    "--hash",
                    hash,
                    "--pss",
                    doc,
                    "-o",
                    sig,
                    "--pin-stdin",
                    "--json",
                ],
                "1234\n",
            ),
            "sign",
        );
        assert_eq!(v["padding"], "pss");
        assert_eq!(v["salt_length"].to_string(), salt);
        let o = openssl(&[
            "dgst",
            &format!("-{hash}"),
            "-verify",
            &pubkey,
            "-sigopt",
            "rsa_padding_mode:pss",
            "-sigopt",
            &format!("rsa_pss_saltlen:{salt}"),
            "-signature",
            sig,
            doc,
        ]);
        assert!(
            o.status.success(),
            "{key}/{hash}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    Ok(())
}

fn pss_on_cps3() -> Result<(), Failed> {
    let card = insert("cps3-doctor")?;
    let dir = tempfile::tempdir()?;
    let doc = dir.path().join("doc");
    std::fs::write(&doc, "x")?;
    let out = on(
        &card,
        &[
            "sign",
            "--key",
            "auth",
            "--pss",
            doc.to_str().unwrap(),
            "--pin-stdin",
        ],
        "1234\n",
    );
    expect_code(&out, 1);
    assert!(
        stderr(&out).contains("only a CPS4 signs with PSS"),
        "{}",
        stderr(&out)
    );
    assert_eq!(card.pin_commands(), 0);
    Ok(())
}

fn wait_events() -> Result<(), Failed> {
    let lease = SandboxEnv::get()?.try_lease(SEEN)?;
    let mut slot = CardSlot::new(lease.vpcd_addr(), emulated("cps4-doctor"));
    for json_mode in [true, false] {
        let mut args = vec!["wait", "--timeout", "20", "--reader", &lease.name];
        if json_mode {
            args.push("--json");
        }
        let mut child = cpx()
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        // cpx says it waits once its monitor is set up: no spinner without a terminal
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        err.read_line(&mut line)?;
        assert_eq!(line, "waiting for a card to be inserted or removed\n");
        slot.insert()?;
        let out = child.wait_with_output()?;
        expect_code(&out, 0);
        if json_mode {
            let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
            assert_eq!(v["schema"], "cpx/wait");
            assert_eq!(v["version"], 1);
            check(
                &v,
                &[("event", "string"), ("reader", "string"), ("atr", "string|null")],
            );
            assert_eq!(v["event"], "inserted");
            assert_eq!(v["reader"], lease.name.as_str());
            assert!(v["atr"].as_str().unwrap().starts_with("3B"), "{v}");
        } else {
            let text = stdout(&out);
            assert!(
                text.starts_with(&format!("card inserted in {}, ATR 3B ", lease.name)),
                "{text}"
            );
        }
        wait_for_card(&lease.name, true, SEEN)?;

        let mut child = cpx()
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        err.read_line(&mut line)?;
        slot.remove();
        let out = child.wait_with_output()?;
        expect_code(&out, 0);
        if json_mode {
            let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
            assert_eq!(v["event"], "removed");
            assert!(v["atr"].is_null());
        } else {
            assert_eq!(stdout(&out), format!("card removed from {}\n", lease.name));
        }
        wait_for_card(&lease.name, false, SEEN)?;
    }
    Ok(())
}

fn wait_timeout() -> Result<(), Failed> {
    let lease = SandboxEnv::get()?.try_lease(SEEN)?;
    let start = std::time::Instant::now();
    let out = run_within(&["wait", "--timeout", "0.5", "--reader", &lease.name], SEEN)?;
    expect_code(&out, 12);
    // It waited its 0.5 s. No upper bound but the kill deadline: the time to start a debug
    // binary and PC/SC on a loaded machine says nothing about `cpx wait`.
    assert!(
        start.elapsed() >= Duration::from_millis(500),
        "{:?}",
        start.elapsed()
    );
    assert!(
        stderr(&out).contains("cpx: no card inserted or removed within 0.5 s"),
        "{}",
        stderr(&out)
    );
    let out = run(&["wait", "--timeout", "1", "--reader", "no such reader"], "");
    expect_code(&out, 4);
    Ok(())
}

fn completions_and_man() -> Result<(), Failed> {
    for shell in ["bash", "zsh", "fish"] {
        let out = run(&["completions", shell], "");
        expect_code(&out, 0);
        let text = stdout(&out);
        for word in ["status", "certs", "pin-stdin", "unblock"] {
            assert!(text.contains(word), "{shell}: {word}");
        }
    }
    expect_code(&run(&["completions", "tcsh"], ""), 2);
    let out = run(&["man"], "");
    expect_code(&out, 0);
    let page = stdout(&out);
    assert!(page.contains(".TH cpx 1"), "{page}");
    assert!(page.contains("status"));
    let dir = tempfile::tempdir()?;
    expect_code(&run(&["man", "--dir", dir.path().to_str().unwrap()], ""), 0);
    for page in ["cpx.1", "cpx-status.1", "cpx-pin.1", "cpx-sign.1", "cpx-wait.1"] {
        assert!(dir.path().join(page).exists(), "{page}");
    }
    let sign = std::fs::read_to_string(dir.path().join("cpx-sign.1"))?;
    assert!(sign.contains("pss"), "{sign}");
    Ok(())
}
