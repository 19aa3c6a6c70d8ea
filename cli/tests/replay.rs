//! Replay of `cpx report` files (issue 18, docs/card-report.md "How the maintainers use it"),
//! behind the real pcscd + vpcd: for every built-in image, a default (redacted) report is replayed
//! through `cpx_emulator::find_image` (what `cpx emulate --card report.toml` loads) into a second
//! emulated card, and `cpx status`, the PKCS#11 module's listing, login and signatures give the
//! same results on both. Redacted names and ids are placeholders of the same length, so the
//! comparisons keep every number and boolean and the length of every string; signatures made by
//! the replayed card are verified with the re-issued certificates it serves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;
#[path = "common/stack.rs"]
mod stack;

use std::process::ExitCode;

use common::*;
use cpx_testkit::{Failed, SandboxConfig, Trial, insert_card};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use stack::{Sign, Values};

fn main() -> ExitCode {
    cpx_testkit::run_tests(&SandboxConfig::default(), || {
        let mut trials: Vec<Trial> = cpx_emulator::builtin_stems()
            .map(|stem| {
                Trial::test(format!("replay_{stem}_like_the_original"), move || {
                    replay(stem, |report| report).map(drop)
                })
            })
            .collect();
        trials.push(Trial::test("replay_moved_certificate_file", moved_certificate));
        trials.push(Trial::test("replay_probes_absent_and_read_files", probes));
        trials.push(Trial::test(
            "replay_application_df_the_model_lacks",
            other_application_df,
        ));
        trials.push(Trial::test("replay_other_signature_key_reference_cps3", || {
            other_key_reference(
                "cps3-doctor",
                |r| r.replace("0303060040030204B002020081", "0303060040030204B002020085"),
                &[0x84, 0x01, 0x85],
            )
        }));
        trials.push(Trial::test("replay_other_signature_key_reference_cps4", || {
            other_key_reference(
                "cps4-doctor",
                |r| r.replace("0303060040030204B0020101", "0303060040030204B0020105"),
                &[0x91, 0x02, 0x28, 0x85],
            )
        }));
        trials.push(Trial::test("cpx_emulate_card_report_toml", || {
            cpx_emulate_report("cps4-doctor")
        }));
        trials
    })
}

/// Strings become their lengths (redacted placeholders keep them), the rest is kept.
fn shape(v: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::String(s) => Value::from(format!("<{} chars>", s.chars().count())),
        Value::Array(a) => Value::Array(a.iter().map(shape).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
        other => other.clone(),
    }
}

/// `cpx status --json` on `reader`, without what the redaction changes: the holder's values
/// (what the profile makes of the placeholders: a `0000…` id has another scheme, an `XXXX` title
/// no profession; the field names are kept) and the certificates' subjects.
fn status(reader: &str) -> serde_json::Value {
    let out = run(&["status", "--json", "--reader", reader], "");
    expect_code(&out, 0);
    let mut v = json(&out, "status");
    if let Some(holder) = v.get_mut("holder").and_then(|h| h.as_object_mut()) {
        for value in holder.values_mut() {
            *value = serde_json::Value::Null;
        }
    }
    for cert in v["certificates"].as_array_mut().into_iter().flatten() {
        cert["subject"] = serde_json::Value::Null;
    }
    v
}

/// The report with the signature certificate in EF A00F instead of A001 (its CDF path, its file
/// path and the FID in its FCP): a card whose file ids differ from the emulator's built-in layout.
fn move_signature_certificate(report: String) -> String {
    let moved = report
        .replace("3F000001A001", "3F000001A00F")
        .replace("\"3F00/0001/A001\"", "\"3F00/0001/A00F\"")
        .replace("8302A001", "8302A00F");
    assert_ne!(moved, report);
    moved
}

/// A CPS4 report whose PKCS#15 application is DF 3F00/0005, not the model's 0001 (EF.DIR's path,
/// the ODF's paths, every recorded file's path): the replayed card gets that DF, answers like the
/// original, and the stack, which finds the application in EF.DIR on a CPS4 (docs/card-spec.md
/// §10.3), works in 0005 and never selects a file of 0001. (A CPS3 contact card's application is
/// 3F00/0001 for the driver, a real-trace fact, docs/card-spec.md §1.4: not such a case.)
fn other_application_df() -> Result<(), Failed> {
    let wire = replay("cps4-doctor", |r| {
        let moved = r
            .replace("3F000001", "3F000005")
            .replace("3F00/0001", "3F00/0005");
        assert_ne!(moved, r);
        moved
    })?;
    // CPS4: SELECT by path from the MF without 3F00, P1 08 (docs/card-spec.md §2.2).
    let selects = |df: [u8; 2]| {
        wire.commands()
            .iter()
            .filter(|c| c.get(1) == Some(&0xA4) && c.get(2) == Some(&0x08) && c.len() > 7 && c[5..7] == df)
            .count()
    };
    let all: Vec<String> = wire
        .commands()
        .iter()
        .filter(|c| c.get(1) == Some(&0xA4))
        .map(hex::encode_upper)
        .collect();
    assert!(selects([0x00, 0x05]) > 0, "DF 0005 never selected: {all:?}");
    assert_eq!(
        selects([0x00, 0x01]),
        0,
        "the model's DF 0001 was selected: {all:?}"
    );
    Ok(())
}

/// `cpx emulate --card report.toml`: the command maintainers run. The card it inserts answers
/// `cpx status` like the original; SIGTERM removes it.
fn cpx_emulate_report(stem: &str) -> Result<(), Failed> {
    use std::io::BufRead;
    let original = insert(stem)?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("report.toml");
    expect_code(&on(&original, &["report", "-o", file.to_str().unwrap()], ""), 0);
    let lease = cpx_testkit::SandboxEnv::get()?.try_lease(SEEN)?;
    let mut child = Running(
        cpx()
            .args([
                "emulate",
                "--card",
                file.to_str().unwrap(),
                "--vpcd",
                &lease.vpcd_addr(),
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()?,
    );
    let mut line = String::new();
    std::io::BufReader::new(child.0.stdout.take().unwrap()).read_line(&mut line)?;
    assert!(line.ends_with(", inserted\n"), "cpx emulate said {line:?}");
    let (a, b) = (status(original.reader()), status(&lease.name));
    assert_eq!(
        shape(&a),
        shape(&b),
        "{stem}: cpx status\noriginal {a:#}\nreplayed {b:#}"
    );
    std::process::Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()?;
    let status = child.0.wait()?;
    assert!(status.success(), "cpx emulate ended with {status}");
    Ok(())
}

/// A report whose PrKDF gives the signature key reference 05 (CPS3 85) instead of the model's
/// (the PrKDF entry with the nonRepudiation usage, `edit`) replays like the original, and the
/// stack set the key with that reference (`mse`: the MSE SET DST data naming it): the card took
/// the recorded reference.
fn other_key_reference(stem: &str, edit: fn(String) -> String, mse: &[u8]) -> Result<(), Failed> {
    let wire = replay(stem, edit)?;
    let set = wire
        .commands()
        .iter()
        .any(|c| c.get(1) == Some(&0x22) && c.len() > 5 && c[5..].windows(mse.len()).any(|w| w == mse));
    assert!(set, "{stem}: no MSE with the recorded reference");
    Ok(())
}

/// The probes replay: EF.ATR, which the report read, is served with the recorded bytes (changed
/// in the report, changed on the card); once the report says the card answered 6A82 for it, the
/// replayed card has no EF.ATR. In-process: the replayed card's own answers.
fn probes() -> Result<(), Failed> {
    let original = insert("cps3-doctor")?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("report.toml");
    expect_code(&on(&original, &["report", "-o", file.to_str().unwrap()], ""), 0);
    let report = std::fs::read_to_string(&file)?;
    let select_ef_atr = [0x00, 0xA4, 0x09, 0x0C, 0x04, 0x3F, 0x00, 0x2F, 0x01];
    // T=0: a READ BINARY with Le 00 is answered 6Cxx, "send again with Le xx".
    let read = |card: &mut Box<dyn cpx_vpcd::VirtualCard>| {
        let answer = card.transmit(&[0x00, 0xB0, 0x00, 0x00, 0x00]);
        match answer[..] {
            [0x6C, le] => card.transmit(&[0x00, 0xB0, 0x00, 0x00, le]),
            _ => answer,
        }
    };
    let replayed = |text: &str| -> Result<Box<dyn cpx_vpcd::VirtualCard>, Failed> {
        std::fs::write(&file, text)?;
        let mut card = cpx_emulator::card_from_image(&cpx_emulator::find_image(file.to_str().unwrap())?);
        card.power_on();
        Ok(card)
    };
    let mut card = replayed(&report)?;
    assert_eq!(card.transmit(&select_ef_atr), [0x90, 0x00]);
    let answer = read(&mut card);
    assert_eq!(answer[answer.len() - 2..], [0x90, 0x00]);
    let ef_atr = answer[..answer.len() - 2].to_vec();
    let mut changed = ef_atr.clone();
    *changed.last_mut().unwrap() ^= 0x01;
    let edited = report.replace(&hex::encode_upper(&ef_atr), &hex::encode_upper(&changed));
    assert_ne!(edited, report, "EF.ATR's bytes are not in the report");
    let mut card = replayed(&edited)?;
    assert_eq!(card.transmit(&select_ef_atr), [0x90, 0x00]);
    let answer = read(&mut card);
    assert_eq!(
        answer[..answer.len() - 2],
        changed,
        "EF.ATR is not the recorded one"
    );

    let absent = report.replace(
        "path = \"3F00/2F01\"\nselect_sw = \"9000\"",
        "path = \"3F00/2F01\"\nselect_sw = \"6A82\"",
    );
    assert_ne!(absent, report);
    let mut card = replayed(&absent)?;
    assert_eq!(card.transmit(&select_ef_atr), [0x6A, 0x82]);
    Ok(())
}

/// The moved certificate replays like the original, and the stack found it where the replayed CDF
/// says: the extended image model served it, not the built-in layout's file.
fn moved_certificate() -> Result<(), Failed> {
    let wire = replay("cps3-doctor", move_signature_certificate)?;
    let selects = |fid: [u8; 2]| {
        wire.commands()
            .iter()
            .filter(|c| c.get(1) == Some(&0xA4) && c.len() > 5 && c[5..].ends_with(&fid))
            .count()
    };
    assert!(
        selects([0xA0, 0x0F]) > 0,
        "the moved certificate was never selected"
    );
    assert_eq!(
        selects([0xA0, 0x01]),
        0,
        "the built-in layout's file was selected"
    );
    Ok(())
}

/// Report `stem`, change the report with `edit`, replay it, compare (see the file's doc); the
/// replayed card's wire.
fn replay(stem: &str, edit: fn(String) -> String) -> Result<cpx_testkit::Recording, Failed> {
    let original = insert(stem)?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("report.toml");
    let out = on(&original, &["report", "-o", file.to_str().unwrap()], "");
    expect_code(&out, 0);
    std::fs::write(&file, edit(std::fs::read_to_string(&file)?))?;
    let image = cpx_emulator::find_image(file.to_str().unwrap())
        .map_err(|e| format!("{stem}: the report does not replay: {e}"))?;
    let (recorder, wire) = cpx_testkit::Recorder::new(cpx_emulator::card_from_image(&image));
    let (lease, _slot) = insert_card(Box::new(recorder))?;

    let (a, b) = (status(original.reader()), status(&lease.name));
    assert_eq!(
        shape(&a),
        shape(&b),
        "{stem}: cpx status\noriginal {a:#}\nreplayed {b:#}"
    );
    for key in ["generation", "pin", "puk"] {
        assert_eq!(a.get(key), b.get(key), "{stem}: status {key}");
    }

    // A PIN that is not blocked (a CPS4 does not say its tries: null); no PIN at all on the
    // contactless interface, whose technical key signs without login.
    let pin = if a["pin"].is_null() {
        Pin::None
    } else if a["pin"]["blocked"].as_bool() == Some(false) && a["pin"]["tries_left"].as_u64() != Some(0) {
        Pin::Usable
    } else {
        Pin::Blocked
    };
    let a = module(original.reader(), pin)?;
    let b = module(&lease.name, pin)?;
    assert_eq!(a, b, "{stem}: the module's listing, login and signatures");
    assert!(a.len() > 1, "{stem}: nothing listed");
    for line in a.iter().filter(|l| l.contains("signature of")) {
        assert!(line.ends_with("verified true"), "{stem}: {line}");
    }
    assert_eq!(
        a.iter().filter(|l| l.contains("signature of")).count(),
        match pin {
            Pin::Usable => a
                .iter()
                .filter(|l| l.starts_with("logged in: CKO_PRIVATE_KEY"))
                .count(),
            Pin::None => a
                .iter()
                .filter(|l| l.starts_with("public: CKO_PRIVATE_KEY"))
                .count(),
            Pin::Blocked => 0,
        },
        "{stem}: a signature with every private key"
    );
    Ok(wire)
}

/// The card's PIN as `cpx status` shows it.
#[derive(Clone, Copy, Debug)]
enum Pin {
    /// Login and sign.
    Usable,
    /// Blocked: no login, no signature.
    Blocked,
    /// No PIN (contactless): sign without login.
    None,
}

/// What the module shows of the token in `reader`: every object (class, label, private, key size,
/// value length when public), before and after login, and for every private key whether a
/// CKM_RSA_PKCS signature of a SHA-256 DigestInfo verifies with the certificate of its id.
fn module(reader: &str, pin: Pin) -> Result<Vec<String>, Failed> {
    stack::with_module(|p11| {
        let slot = stack::slot_of(p11, reader)?;
        let token = p11.get_token_info(slot)?;
        let mut out = vec![format!("token label of {} chars", token.label().trim_end().len())];
        let s = p11.open_ro_session(slot)?;
        out.extend(stack::listing(&s, "public", Values::PublicLengths)?);
        match pin {
            Pin::Usable => {
                s.login(UserType::User, Some(&AuthPin::from(PIN.to_owned())))?;
                out.extend(stack::listing(&s, "logged in", Values::PublicLengths)?);
                out.extend(stack::signatures(&s, Sign::RsaPkcs)?);
                s.logout()?;
            }
            Pin::None => out.extend(stack::signatures(&s, Sign::RsaPkcs)?),
            Pin::Blocked => {}
        }
        Ok(out)
    })
}
