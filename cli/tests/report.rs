//! `cpx report` against emulated cards behind the real pcscd + vpcd: on every built-in image it
//! writes a `cpx-report/1` file, spends no try (no PIN command on the wire, tries read back),
//! and leaves no personal value of the card in a default report; `--include-personal-data`
//! keeps them; `--login` masks the PIN; a hostile card gives a precise error.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::path::Path;
use std::process::ExitCode;

use common::*;
use cpx_testkit::{Failed, FaultModeCard, SandboxConfig, Trial, insert_card};

fn main() -> ExitCode {
    cpx_testkit::run_tests(&SandboxConfig::default(), || {
        let mut trials: Vec<Trial> = cpx_emulator::builtin_stems()
            .map(|stem| {
                Trial::test(format!("report_{stem}_redacted_and_no_try_spent"), move || {
                    redacted(stem)
                })
            })
            .collect();
        trials.push(Trial::test("report_include_personal_data_keeps_them", included));
        trials.push(Trial::test("report_text_says_what_and_where", text_output));
        trials.push(Trial::test("report_login_masks_the_pin", || login("cps3-doctor")));
        trials.push(Trial::test("report_login_masks_the_pin_cps4", || {
            login("cps4-doctor")
        }));
        trials.push(Trial::test(
            "report_hostile_cdf_is_recorded_not_fatal",
            hostile_cdf,
        ));
        trials.push(Trial::test(
            "report_hostile_token_info_precise_error",
            hostile_token_info,
        ));
        trials
    })
}

const SUMMARY: &[(&str, &str)] = &[
    ("reader", "string"),
    ("file", "string"),
    ("format", "string"),
    ("personal_data", "string"),
    ("logged_in", "boolean"),
    ("generation", "string"),
    ("exchanges", "integer"),
    ("files", "integer"),
    ("unread_files", "integer"),
    ("problems", "array"),
    ("redactions", "array"),
    ("send_to", "string"),
];

fn cards_dir(stem: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../test-vectors/cards")
        .join(stem)
}

/// The personal values of the test card `stem` (its holder.toml): names, national id,
/// organisation.
fn personal_texts(stem: &str) -> Vec<String> {
    let text = std::fs::read_to_string(cards_dir(stem).join("holder.toml")).unwrap();
    let holder: toml::Table = text.parse().unwrap();
    let mut out = Vec::new();
    if let Some(h) = holder.get("holder").and_then(|h| h.as_table()) {
        for key in [
            "given_name",
            "surname",
            "national_id",
            "identifier",
            "organisation",
        ] {
            if let Some(v) = h.get(key).and_then(|v| v.as_str()).filter(|v| v.len() >= 4) {
                out.push(v.to_owned());
            }
        }
    }
    out
}

/// The card's certificates (DER files beside the image, keys left out).
fn certificates(stem: &str) -> Vec<Vec<u8>> {
    std::fs::read_dir(cards_dir(stem))
        .unwrap()
        .filter_map(|e| {
            let p = e.ok()?.path();
            let name = p.file_name()?.to_str()?.to_owned();
            (name.ends_with(".der") && !name.contains(".key.")).then(|| std::fs::read(&p).ok())?
        })
        .collect()
}

/// The personal values of `stem` found in `report`: as text (any case), as upper-case hex;
/// the certificates whole or their signature (last 128 bytes, by 32).
fn leaks(stem: &str, report: &str) -> Vec<String> {
    let upper = report.to_uppercase();
    let mut found = Vec::new();
    for t in personal_texts(stem) {
        if upper.contains(&t.to_uppercase()) {
            found.push(format!("text {t}"));
        }
        if upper.contains(&hex::encode_upper(t.as_bytes())) {
            found.push(format!("hex of {t}"));
        }
    }
    for (i, der) in certificates(stem).iter().enumerate() {
        if upper.contains(&hex::encode_upper(der)) {
            found.push(format!("certificate {i} whole"));
        }
        for w in der[der.len() - 128..].chunks(32) {
            if upper.contains(&hex::encode_upper(w)) {
                found.push(format!("certificate {i} signature bytes"));
            }
        }
    }
    found
}

/// Run `cpx report` on `card` into a temporary file; the file's text and the JSON summary.
fn report(card: &Inserted, extra: &[&str], stdin: &str) -> Result<(String, serde_json::Value), Failed> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("report.toml");
    let mut args = vec!["report", "--json", "-o", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = on(card, &args, stdin);
    expect_code(&out, 0);
    let v = json(&out, "report");
    check(&v, SUMMARY);
    assert_eq!(v["format"], "cpx-report/1");
    assert_eq!(v["file"], file.to_str().unwrap());
    let text = std::fs::read_to_string(&file)?;
    Ok((text, v))
}

fn parse(text: &str) -> toml::Table {
    text.parse().unwrap_or_else(|e| panic!("not TOML: {e}\n{text}"))
}

fn redacted(stem: &str) -> Result<(), Failed> {
    let card = insert(stem)?;
    let before = pin_tries(&card);
    let commands_before = card.pin_commands();
    let (text, v) = report(&card, &[], "")?;
    assert_eq!(
        card.pin_commands(),
        commands_before,
        "{stem}: a PIN command with data was sent"
    );
    assert_eq!(pin_tries(&card), before, "{stem}: tries changed");
    assert_eq!(v["personal_data"], "redacted");
    assert_eq!(v["logged_in"], false);
    let t = parse(&text);
    assert_eq!(t["format"].as_str(), Some("cpx-report/1"));
    assert_eq!(t["reader"]["name"].as_str(), Some(card.reader()));
    assert!(!t["card"]["atr"].as_str().unwrap().is_empty());
    assert!(
        t["card"]["application"].as_str().unwrap().starts_with("3F00/"),
        "{stem}"
    );
    let exchanges = t["exchanges"].as_array().unwrap();
    assert!(!exchanges.is_empty());
    for e in exchanges {
        let cmd = hex::decode(e["command"].as_str().unwrap()).unwrap();
        assert!(
            !(matches!(cmd[1], 0x20 | 0x24 | 0x2C) && cmd.len() > 5),
            "{stem}: PIN command with data in the report: {e}"
        );
    }
    let files = t["files"].as_array().unwrap();
    // EF.DIR is in when the card layer reads it (where the application path comes from it).
    assert!(
        files.iter().any(|f| f["name"].as_str() == Some("TokenInfo")),
        "{stem}: no TokenInfo"
    );
    let leaked = leaks(stem, &text);
    assert!(
        leaked.is_empty(),
        "{stem}: personal values in the default report: {leaked:?}"
    );
    // A contact card with certificates: they are in, redacted, and so are the holder's names.
    if t["card"]["interface"].as_str() == Some("contact")
        && t["pins"].as_array().is_some_and(|p| !p.is_empty())
    {
        let certs: Vec<_> = files
            .iter()
            .filter(|f| f["kind"].as_str() == Some("certificate"))
            .collect();
        assert!(!certs.is_empty(), "{stem}: no certificate file");
        for c in certs {
            assert_eq!(c["redacted"].as_bool(), Some(true), "{stem}: {c}");
            assert!(
                c["fcp"].as_str().is_some_and(|f| !f.is_empty()),
                "{stem}: no FCP: {c}"
            );
        }
        assert!(!v["redactions"].as_array().unwrap().is_empty());
    }
    Ok(())
}

fn included() -> Result<(), Failed> {
    let stem = "cps3-doctor";
    let card = insert(stem)?;
    let (text, v) = report(&card, &["--include-personal-data"], "")?;
    assert_eq!(v["personal_data"], "included");
    assert!(v["redactions"].as_array().unwrap().is_empty());
    let leaked = leaks(stem, &text);
    for cert in 0..certificates(stem).len() {
        assert!(
            leaked.contains(&format!("certificate {cert} whole")),
            "{leaked:?}"
        );
    }
    assert!(leaked.iter().any(|l| l.starts_with("hex of ")), "{leaked:?}");
    // And the default report of the same card differs only by the redacted bytes: same lengths.
    let (default, _) = report(&card, &[], "")?;
    let (a, b) = (parse(&text), parse(&default));
    let sizes = |t: &toml::Table| -> Vec<(String, i64)> {
        t["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["name"].as_str().unwrap().to_owned(),
                    f["size"].as_integer().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(sizes(&a), sizes(&b), "redaction keeps every length");
    Ok(())
}

fn login(stem: &str) -> Result<(), Failed> {
    let card = insert(stem)?;
    let before = pin_tries(&card);
    let (text, v) = report(&card, &["--login", "--pin-stdin"], &format!("{PIN}\n"))?;
    assert_eq!(v["logged_in"], true);
    assert_eq!(
        pin_tries(&card),
        before,
        "a right PIN leaves the tries as they were"
    );
    let t = parse(&text);
    let verifies: Vec<_> = t["exchanges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["masked"].as_bool() == Some(true))
        .collect();
    assert_eq!(verifies.len(), 1, "one VERIFY with data, masked");
    let cmd = hex::decode(verifies[0]["command"].as_str().unwrap()).unwrap();
    assert_eq!(cmd[1], 0x20);
    let lc = usize::from(cmd[4]);
    assert!(cmd[5..5 + lc].iter().all(|&b| b == 0x2A), "{cmd:02X?}");
    let pin_hex = hex::encode_upper(PIN.as_bytes());
    for e in t["exchanges"].as_array().unwrap() {
        assert!(!e["command"].as_str().unwrap().contains(&pin_hex), "PIN in {e}");
    }
    assert!(
        !text.contains(&format!("{pin_hex}FFFFFFFF")),
        "padded PIN block in the report"
    );
    // The private objects were read, and redacted too.
    let leaked = leaks(stem, &text);
    assert!(leaked.is_empty(), "{leaked:?}");
    let files = t["files"].as_array().unwrap();
    assert!(
        files
            .iter()
            .any(|f| f["name"].as_str() == Some("CPS_NAME_PS") && f["content"].is_str())
    );
    Ok(())
}

/// A CDF claiming a 4 GiB file: the report is written, says what could not be read and why.
fn hostile_cdf() -> Result<(), Failed> {
    let (card, modes) = FaultModeCard::new(emulated("cps3-doctor"));
    modes.override_size(&[0x70, 0x05], &[0xFF; 4]);
    let (lease, _slot) = insert_card(Box::new(card))?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("r.toml");
    let out = run(
        &[
            "report",
            "--json",
            "-o",
            file.to_str().unwrap(),
            "--reader",
            &lease.name,
        ],
        "",
    );
    expect_code(&out, 0);
    let v = json(&out, "report");
    let problems = v["problems"].as_array().unwrap();
    assert!(
        problems.iter().any(|p| {
            let p = p.as_str().unwrap();
            p.starts_with("malformed card data in CDF: ") && p.contains("claims 4294967295 bytes")
        }),
        "{v}"
    );
    assert!(!std::fs::read_to_string(&file)?.is_empty());
    Ok(())
}

/// A TokenInfo claiming a 4 GiB file: the card cannot be opened; a precise error, exit 1,
/// no file.
fn hostile_token_info() -> Result<(), Failed> {
    let (card, modes) = FaultModeCard::new(emulated("cps3-doctor"));
    modes.override_size(&[0x50, 0x32], &[0xFF; 4]);
    let (lease, _slot) = insert_card(Box::new(card))?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("r.toml");
    let out = run(
        &["report", "-o", file.to_str().unwrap(), "--reader", &lease.name],
        "",
    );
    expect_code(&out, 1);
    let err = stderr(&out);
    assert!(
        err.starts_with("cpx: malformed card data in TokenInfo: ") && err.contains("claims 4294967295 bytes"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(!file.exists());
    Ok(())
}

/// The text tells what the file holds, what was redacted and where to send it.
fn text_output() -> Result<(), Failed> {
    let card = insert("cps3-doctor")?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("r.toml");
    let out = on(&card, &["report", "-o", file.to_str().unwrap()], "");
    expect_code(&out, 0);
    let text = stdout(&out);
    for want in [
        "Card report written to ",
        "cpx-report/1",
        "No PIN was presented and no try was spent.",
        "Personal data redacted (lengths and structure kept):",
        "certificate \"Certificat de Signature CPS\": ",
        "data object CPS_NAME_PS: ",
        concat!(
            "Send it to the cpx maintainers: ",
            env!("CARGO_PKG_REPOSITORY"),
            "/issues"
        ),
    ] {
        assert!(text.contains(want), "{want:?} missing:\n{text}");
    }
    assert!(file.exists());
    Ok(())
}
