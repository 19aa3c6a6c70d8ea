//! `cpx` on a PIN-pad reader, through the real stack: a private pcscd loads the test PIN-pad
//! driver (`cpx-ifd-pinpad`, docs/pinpad-reader.md), an emulated CPS3 (T=0) or CPS4 (T=1) is
//! plugged into it, and the keypad is scripted (what "the user types"). Checked: `readers`,
//! `status` and `doctor` show the pad (text and JSON) and its off switches; `pin verify|change|
//! unblock`, `sign` and `data --login` take the PIN on the pad, the APDU the card receives being
//! the one a keyboard login sends; cancel, timeout, too short and a confirmation mismatch give
//! their own message and exit code and spend no try (read back from the card); `--no-pinpad`
//! and `CPX_PINPAD=off` fall back to the keyboard.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::path::PathBuf;
use std::process::{Command, ExitCode, Output, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};

use common::*;
use cpx_testkit::{Failed, PinpadReader, Recorder, Recording, SandboxConfig, Trial, insert_seen};
use cpx_vpcd::CardSlot;

/// The driver cargo built with this test (cpx-ifd-pinpad is a dev-dependency: its cdylib lands
/// beside the test binary in `target/<profile>/deps`).
fn driver() -> PathBuf {
    std::env::current_exe()
        .expect("test binary path")
        .with_file_name("libcpx_ifd_pinpad.so")
}

fn main() -> ExitCode {
    let config = SandboxConfig {
        entries: 1,
        pinpad: Some(driver()),
        ..SandboxConfig::default()
    };
    cpx_testkit::run_tests(&config, || {
        vec![
            Trial::test("readers_status_doctor_show_the_pad", shows_the_pad),
            Trial::test("an_empty_pad_reader_shows_its_pad", empty_pad_reader),
            Trial::test("off_switches_show_in_readers_status_doctor", off_switches_shown),
            Trial::test("cps3_verify_on_the_pad_same_apdu_as_the_keyboard", || {
                verify_on_the_pad("cps3-doctor")
            }),
            Trial::test("cps4_verify_on_the_pad_same_apdu_as_the_keyboard", || {
                verify_on_the_pad("cps4-doctor")
            }),
            Trial::test("cps3_cancel_timeout_too_short_spend_no_try", || {
                refused_by_the_reader("cps3-doctor")
            }),
            Trial::test("cps4_cancel_timeout_too_short_spend_no_try", || {
                refused_by_the_reader("cps4-doctor")
            }),
            Trial::test("report_login_on_the_pad", report_login),
            Trial::test("cps3_change_and_unblock_on_the_pad", || {
                change_and_unblock("cps3-doctor")
            }),
            Trial::test("cps4_change_and_unblock_on_the_pad", || {
                change_and_unblock("cps4-doctor")
            }),
            Trial::test("sign_and_data_login_on_the_pad", sign_and_data),
            Trial::test("no_pinpad_and_cpx_pinpad_off_use_the_keyboard", keyboard_fallback),
        ]
    })
}

/// The sandbox has one PIN-pad reader and one keypad script: the trials take turns.
static PAD: Mutex<()> = Mutex::new(());

/// A card in the PIN-pad reader, its wire, and the keypad.
struct OnPad {
    pad: PinpadReader,
    wire: Recording,
    _slot: CardSlot,
    _turn: MutexGuard<'static, ()>,
}

impl OnPad {
    fn insert(stem: &str) -> Result<OnPad, Failed> {
        let turn = PAD.lock().unwrap_or_else(PoisonError::into_inner);
        let pad = PinpadReader::from_env().ok_or("the sandbox has no PIN-pad reader")?;
        std::fs::write(&pad.keypad, "")?;
        let (recorder, wire) = Recorder::new(cpx_testkit::emulated(stem)?);
        let mut slot = CardSlot::new(pad.vpcd_addr(), Box::new(recorder));
        insert_seen(&mut slot, &pad.name)?;
        Ok(OnPad {
            pad,
            wire,
            _slot: slot,
            _turn: turn,
        })
    }

    /// What the user will type, one entry per line (docs/pinpad-reader.md).
    fn keypad(&self, lines: &str) {
        std::fs::write(&self.pad.keypad, lines).unwrap();
    }

    /// The keypad lines not used yet.
    fn keypad_left(&self) -> String {
        std::fs::read_to_string(&self.pad.keypad).unwrap_or_default()
    }

    /// `cpx args --reader <pad>` with no stdin (nothing to read a PIN from but the pad) and
    /// `env` set.
    fn cpx(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = cpx();
        cmd.args(args)
            .args(["--reader", &self.pad.name])
            .stdin(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    /// `cpx args --reader <pad>` with `stdin` fed in.
    fn cpx_stdin(&self, args: &[&str], stdin: &str) -> Output {
        let mut all = args.to_vec();
        all.extend(["--reader", &self.pad.name]);
        run(&all, stdin)
    }

    /// The commands that carried a code (VERIFY / CHANGE REFERENCE DATA / RESET RETRY COUNTER
    /// with data): a try presented to the card.
    fn codes_sent(&self) -> Vec<Vec<u8>> {
        self.wire
            .commands()
            .into_iter()
            .filter(|a| a.len() > 5 && matches!(a[1], 0x20 | 0x24 | 0x2C))
            .collect()
    }

    /// Commands that spent a try or changed a code: a code the card refused, or any CHANGE
    /// REFERENCE DATA / RESET RETRY COUNTER with data. (A CPS4 change on the pad first VERIFYs
    /// the current PIN, which the card accepts: that spends nothing.)
    fn tries_spent_or_codes_changed(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.wire
            .exchanges()
            .into_iter()
            .filter(|(c, r)| {
                c.len() > 5
                    && match c[1] {
                        0x20 => r.as_slice() != [0x90, 0x00],
                        0x24 | 0x2C => true,
                        _ => false,
                    }
            })
            .collect()
    }

    fn status(&self) -> serde_json::Value {
        json(&self.cpx(&["status", "--json"], &[]), "status")
    }

    fn pin_tries(&self) -> Option<u64> {
        self.status()["pin"]["tries_left"].as_u64()
    }
}

const PAD_VERIFY: &str = "Type your PIN on the reader's keypad, then confirm on the reader.";

/// The **pin pad** object of docs/cli-json.md.
fn check_pad(v: &serde_json::Value) {
    check(
        v,
        &[
            ("available", "boolean"),
            ("verify", "boolean"),
            ("modify", "boolean"),
            ("display", "object|null"),
            ("min_digits", "integer|null"),
            ("max_digits", "integer|null"),
            ("firmware", "string|null"),
            ("used", "boolean"),
            ("turned_off", "string|null"),
        ],
    );
}

/// `cpx doctor --json`'s check `id` (the report is printed whatever the verdicts).
fn doctor_check(out: &Output, id: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: not JSON:\n{}\n{}", stdout(out), stderr(out)));
    assert_eq!(v["schema"], "cpx/doctor");
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no {id} check in {v}"))
        .clone()
}

fn shows_the_pad() -> Result<(), Failed> {
    let card = OnPad::insert("cps3-doctor")?;
    // A vpcd reader with a card (no part 10 features: no pad) and an empty one (not asked).
    let other = insert("cps4-doctor")?;
    let env = cpx_testkit::SandboxEnv::get()?;
    let empty = env
        .readers()
        .iter()
        .find(|r| r.name != other.reader())
        .map(|r| r.name.clone());

    let out = cpx().arg("readers").output()?;
    expect_code(&out, 0);
    let text = stdout(&out);
    assert!(
        text.contains(&format!(
            "{}: card present, CPS3 contact, ATR 3B AC 00 40 2A 00 12 25 00 64 80 00 03 10 00 90 00, \
             PIN pad (PIN 4 to 8 digits)\n",
            card.pad.name
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("{}: card present, CPS4", other.reader())),
        "{text}"
    );
    let line = text.lines().find(|l| l.starts_with(other.reader())).unwrap();
    assert!(!line.contains("PIN pad"), "{line}");

    let v = json(&cpx().args(["readers", "--json"]).output()?, "readers");
    let readers = v["readers"].as_array().unwrap();
    let find = |name: &str| readers.iter().find(|r| r["name"] == name).unwrap().clone();
    let ours = find(&card.pad.name);
    check_pad(&ours["pin_pad"]);
    let p = &ours["pin_pad"];
    assert_eq!(p["available"], true, "{p}");
    assert_eq!(
        (p["verify"].clone(), p["modify"].clone()),
        (true.into(), true.into())
    );
    assert!(p["display"].is_null(), "the test reader has no display: {p}");
    assert_eq!(
        (p["min_digits"].as_u64(), p["max_digits"].as_u64()),
        (Some(4), Some(8))
    );
    assert!(
        p["firmware"].as_str().unwrap().starts_with("cpx-ifd-pinpad "),
        "{p}"
    );
    assert_eq!(p["used"], true);
    assert!(p["turned_off"].is_null());
    let vpcd = find(other.reader());
    check_pad(&vpcd["pin_pad"]);
    assert_eq!(vpcd["pin_pad"]["available"], false, "{vpcd}");
    assert_eq!(vpcd["pin_pad"]["used"], false);
    if let Some(empty) = empty {
        // Asked directly (no card): vpcd answers no feature.
        let e = find(&empty);
        assert_eq!(e["state"], "empty", "{e}");
        check_pad(&e["pin_pad"]);
        assert_eq!(e["pin_pad"]["available"], false, "{e}");
    }

    // status: text and JSON
    let out = card.cpx(&["status"], &[]);
    expect_code(&out, 0);
    assert!(
        stdout(&out).contains("PIN pad:       yes (PIN 4 to 8 digits)\n"),
        "{}",
        stdout(&out)
    );
    let v = card.status();
    check_pad(&v["pin_pad"]);
    assert_eq!(v["pin_pad"]["used"], true);
    let v = json(&on(&other, &["status", "--json"], ""), "status");
    assert_eq!(v["pin_pad"]["available"], false);
    let text = stdout(&on(&other, &["status"], ""));
    assert!(!text.contains("PIN pad"), "{text}");

    // doctor: the pin-pad check, with the features found
    let out = card.cpx(&["doctor", "--json"], &[]);
    let c = doctor_check(&out, "pin-pad");
    assert_eq!(c["verdict"], "ok", "{c}");
    assert!(
        c["finding"]
            .as_str()
            .unwrap()
            .contains("has a PIN pad: cpx asks for the PIN on the reader's keypad"),
        "{c}"
    );
    let details = c["details"].to_string();
    for f in [
        "FEATURE_VERIFY_PIN_DIRECT (0x42330006)",
        "FEATURE_MODIFY_PIN_DIRECT (0x42330007)",
        "FEATURE_IFD_PIN_PROPERTIES (0x4233000A)",
        "FEATURE_GET_TLV_PROPERTIES (0x42330012)",
        "PIN length on the keypad: 4 to 8 digits",
        "display: none",
    ] {
        assert!(details.contains(f), "{f}: {details}");
    }
    let out = card.cpx(&["doctor"], &[]);
    assert!(stdout(&out).contains("ok    pin-pad "), "{}", stdout(&out));
    let c = doctor_check(&on(&other, &["doctor", "--json"], ""), "pin-pad");
    assert_eq!(c["verdict"], "skip", "{c}");
    assert!(c["finding"].as_str().unwrap().contains("has no PIN pad"), "{c}");
    // Asking the reader reached nothing of the card's codes.
    assert!(card.codes_sent().is_empty());
    Ok(())
}

/// No card in the PIN-pad reader: `cpx readers` asks it directly (SCARD_SHARE_DIRECT).
fn empty_pad_reader() -> Result<(), Failed> {
    let _turn = PAD.lock().unwrap_or_else(PoisonError::into_inner);
    let pad = PinpadReader::from_env().ok_or("the sandbox has no PIN-pad reader")?;
    cpx_testkit::wait_for_card(&pad.name, false, SEEN)?;
    let out = cpx().arg("readers").output()?;
    expect_code(&out, 0);
    assert!(
        stdout(&out).contains(&format!("{}: empty, PIN pad (PIN 4 to 8 digits)\n", pad.name)),
        "{}",
        stdout(&out)
    );
    let v = json(&cpx().args(["readers", "--json"]).output()?, "readers");
    let ours = v["readers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == pad.name.as_str())
        .unwrap()
        .clone();
    assert_eq!(ours["state"], "empty");
    check_pad(&ours["pin_pad"]);
    assert_eq!(ours["pin_pad"]["available"], true, "{ours}");
    assert_eq!(ours["pin_pad"]["max_digits"], 8);
    Ok(())
}

fn off_switches_shown() -> Result<(), Failed> {
    let card = OnPad::insert("cps3-doctor")?;
    for (var, value, why) in [
        ("CPX_PINPAD", "off", "CPX_PINPAD=off"),
        (
            "CPX_PINPAD_IGNORE",
            "Foo;cpx pinpad",
            "CPX_PINPAD_IGNORE (\"cpx pinpad\")",
        ),
    ] {
        let out = cpx().arg("readers").env(var, value).output()?;
        let text = stdout(&out);
        assert!(
            text.contains(&format!(
                "PIN pad (PIN 4 to 8 digits), turned off by {why}: the PIN is typed on the keyboard"
            )),
            "{text}"
        );
        let v = json(
            &cpx().args(["readers", "--json"]).env(var, value).output()?,
            "readers",
        );
        let p = v["readers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == card.pad.name.as_str())
            .unwrap()["pin_pad"]
            .clone();
        assert_eq!(
            (p["available"].clone(), p["used"].clone()),
            (true.into(), false.into())
        );
        assert_eq!(p["turned_off"], why);
        let v = json(&card.cpx(&["status", "--json"], &[(var, value)]), "status");
        assert_eq!(v["pin_pad"]["turned_off"], why);
        let c = doctor_check(&card.cpx(&["doctor", "--json"], &[(var, value)]), "pin-pad");
        assert_eq!(c["verdict"], "warn", "{c}");
        assert!(
            c["finding"]
                .as_str()
                .unwrap()
                .contains(&format!("turned off by {why}")),
            "{c}"
        );
        assert!(c["fix"].as_str().unwrap().contains("unset CPX_PINPAD"), "{c}");
    }
    // A CPX_PINPAD_IGNORE naming another reader leaves this pad in use.
    let v = json(
        &card.cpx(&["status", "--json"], &[("CPX_PINPAD_IGNORE", "SPR332")]),
        "status",
    );
    assert_eq!(v["pin_pad"]["used"], true);
    Ok(())
}

/// VERIFY through the pad: the prompt on stderr, the report on stdout, the card receives the
/// same APDU as when the same digits come from the keyboard.
fn verify_on_the_pad(stem: &str) -> Result<(), Failed> {
    let card = OnPad::insert(stem)?;
    card.keypad("1234\n");
    let out = card.cpx(&["pin", "verify"], &[]);
    expect_code(&out, 0);
    assert!(stdout(&out).starts_with("PIN correct.\n"), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(err.contains(PAD_VERIFY), "{err}");
    assert!(!err.contains("1234"));
    assert_eq!(card.keypad_left(), "", "the keypad entry was used");
    let on_pad = card.codes_sent();
    assert_eq!(on_pad.len(), 1, "{on_pad:02X?}");

    // The keyboard path with the same digits (--pin-stdin): byte-identical VERIFY.
    if stem == "cps4-doctor" {
        // A CPS4 keeps the PIN verified for the card session: start a new one.
        drop(card);
        let card = OnPad::insert(stem)?;
        expect_code(&card.cpx_stdin(&["pin", "verify", "--pin-stdin"], "1234\n"), 0);
        assert_eq!(card.codes_sent(), on_pad, "pad and keyboard VERIFY differ");
        return json_verify(card);
    }
    expect_code(&card.cpx_stdin(&["pin", "verify", "--pin-stdin"], "1234\n"), 0);
    let all = card.codes_sent();
    assert_eq!(all.len(), 2);
    assert_eq!(all[1], on_pad[0], "pad and keyboard VERIFY differ");
    json_verify(card)
}

/// `--json`: the document alone on stdout, the keypad instruction on stderr; a wrong PIN
/// typed on the pad is a wrong PIN (a try spent, exit 6).
fn json_verify(card: OnPad) -> Result<(), Failed> {
    card.keypad("1234\n");
    let out = card.cpx(&["pin", "verify", "--json"], &[]);
    let v = json(&out, "pin");
    check(
        &v,
        &[
            ("reader", "string"),
            ("operation", "string"),
            ("ok", "boolean"),
            ("pin", "object|null"),
        ],
    );
    assert_eq!(v["operation"], "verify");
    assert!(stderr(&out).contains(PAD_VERIFY));

    card.keypad("0000\n");
    let out = card.cpx(&["pin", "verify"], &[]);
    expect_code(&out, 6);
    assert!(
        stderr(&out).ends_with("cpx: wrong PIN, 2 tries left\n"),
        "{}",
        stderr(&out)
    );
    assert!(out.stdout.is_empty());
    card.keypad("1234\n");
    expect_code(&card.cpx(&["pin", "verify"], &[]), 0);
    if card.status()["card"]["generation"] == "CPS3" {
        assert_eq!(card.pin_tries(), Some(3), "a right PIN resets the counter");
    }
    Ok(())
}

/// What the reader answers itself: nothing reaches the card, no try is spent.
fn refused_by_the_reader(stem: &str) -> Result<(), Failed> {
    let card = OnPad::insert(stem)?;
    let before = card.status();
    assert!(before["pin"]["tries_left"].as_u64().is_some(), "{before}");
    let cases: &[(&[&str], &str, i32, &str)] = &[
        (
            &["pin", "verify"],
            "cancel\n",
            14,
            "cpx: cancelled on the reader's keypad: nothing was sent to the card (no try spent)\n",
        ),
        (
            &["pin", "verify"],
            "timeout\n",
            15,
            "cpx: nothing was typed on the reader's keypad in time: nothing was sent to the card \
             (no try spent)\n",
        ),
        (
            &["pin", "verify"],
            "12\n",
            11,
            "cpx: the code typed on the reader's keypad has too few or too many digits for the \
             card: the reader refused it, nothing was sent to the card (no try spent)\n",
        ),
        (
            &["pin", "verify", "--json"],
            "cancel\n",
            14,
            "cpx: cancelled on the reader's keypad",
        ),
        (
            &["pin", "change"],
            "1234\n5678\n5679\n",
            16,
            "cpx: the new PIN and its confirmation typed on the reader's keypad differ: nothing \
             was changed (no try spent)\n",
        ),
        (&["pin", "change"], "1234\ncancel\n", 14, "cpx: cancelled"),
        (
            &["sign", "--key", "sign", "/dev/null", "-o", "/dev/null"],
            "timeout\n",
            15,
            "cpx: nothing was typed",
        ),
        (&["data", "--login", "--json"], "cancel\n", 14, "cpx: cancelled"),
    ];
    for (args, typed, code, message) in cases {
        let sent_before = card.codes_sent().len();
        card.keypad(typed);
        let out = card.cpx(args, &[]);
        expect_code(&out, *code);
        let err = stderr(&out);
        assert!(err.contains(message), "{args:?} {typed:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}: {}", stdout(&out));
        let spent = card.tries_spent_or_codes_changed();
        assert!(spent.is_empty(), "{args:?} {typed:?}: {spent:02X?}");
        // Everything else must not reach the card at all (a CPS3 change is one MODIFY).
        if !(stem == "cps4-doctor" && args[1] == "change") {
            assert!(
                card.codes_sent().len() == sent_before,
                "{args:?} {typed:?}: a code reached the card"
            );
        }
        let v = card.status();
        // A CPS4 change VERIFYs the current PIN first: the PIN may be left verified (tries not
        // shown then), never with fewer tries.
        if !v["pin"]["tries_left"].is_null() {
            assert_eq!(v["pin"], before["pin"], "{args:?} {typed:?}");
        }
        assert_eq!(v["pin"]["blocked"], false);
        assert_eq!(v["puk"], before["puk"], "{args:?} {typed:?}");
    }
    Ok(())
}

fn change_and_unblock(stem: &str) -> Result<(), Failed> {
    let card = OnPad::insert(stem)?;
    card.keypad("1234\n5678\n5678\n");
    let out = card.cpx(&["pin", "change"], &[]);
    expect_code(&out, 0);
    assert!(stdout(&out).starts_with("PIN changed.\n"), "{}", stdout(&out));
    assert!(
        stderr(&out).contains(
            "On the reader's keypad: type your current PIN, then the new PIN, then the new PIN again."
        ),
        "{}",
        stderr(&out)
    );
    // The new PIN works from the keyboard; the old one no longer does.
    expect_code(&card.cpx_stdin(&["pin", "verify", "--pin-stdin"], "5678\n"), 0);
    card.keypad("5678\n1234\n1234\n");
    let v = json(&card.cpx(&["pin", "change", "--json"], &[]), "pin");
    assert_eq!(v["operation"], "change");

    // Block the PIN from the keyboard, then unblock it on the pad.
    for _ in 0..3 {
        card.cpx_stdin(&["pin", "verify", "--pin-stdin"], "0000\n");
    }
    assert_eq!(card.status()["pin"]["blocked"], true);
    card.keypad("12345678\n4321\n4321\n");
    let out = card.cpx(&["pin", "unblock", "--json"], &[]);
    let v = json(&out, "pin");
    assert_eq!(v["operation"], "unblock");
    assert_eq!(v["pin"]["blocked"], false, "{v}");
    assert!(
        stderr(&out)
            .contains("On the reader's keypad: type the PUK, then the new PIN, then the new PIN again."),
        "{}",
        stderr(&out)
    );
    expect_code(&card.cpx_stdin(&["pin", "verify", "--pin-stdin"], "4321\n"), 0);

    // The same in text, after blocking it again.
    for _ in 0..3 {
        card.cpx_stdin(&["pin", "verify", "--pin-stdin"], "0000\n");
    }
    card.keypad("12345678\n1234\n1234\n");
    let out = card.cpx(&["pin", "unblock"], &[]);
    expect_code(&out, 0);
    assert!(
        stdout(&out).starts_with("PIN unblocked and replaced.\n"),
        "{}",
        stdout(&out)
    );
    assert!(
        stderr(&out).starts_with("PUK: "),
        "tries left first: {}",
        stderr(&out)
    );
    assert_eq!(card.keypad_left(), "");
    expect_code(&card.cpx_stdin(&["pin", "verify", "--pin-stdin"], "1234\n"), 0);
    Ok(())
}

fn report_login() -> Result<(), Failed> {
    let card = OnPad::insert("cps3-doctor")?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("report.toml");
    card.keypad("1234\n");
    let out = card.cpx(
        &["report", "--login", "-o", file.to_str().unwrap(), "--json"],
        &[],
    );
    let v = json(&out, "report");
    assert_eq!(v["logged_in"], true, "{v}");
    assert!(stderr(&out).contains(PAD_VERIFY), "{}", stderr(&out));
    assert_eq!(card.keypad_left(), "");
    assert!(file.exists());
    Ok(())
}

fn sign_and_data() -> Result<(), Failed> {
    let card = OnPad::insert("cps3-doctor")?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("doc.txt");
    std::fs::write(&file, b"signed on a PIN-pad reader\n")?;
    let sig = dir.path().join("doc.sig");
    card.keypad("1234\n");
    let out = card.cpx(
        &[
            "sign",
            "--key",
            "sign",
            file.to_str().unwrap(),
            "-o",
            sig.to_str().unwrap(),
            "--json",
        ],
        &[],
    );
    let v = json(&out, "sign");
    assert_eq!(v["signature_length"], 256, "{v}");
    assert!(stderr(&out).contains(PAD_VERIFY));
    assert_eq!(std::fs::metadata(&sig)?.len(), 256);
    card.keypad("1234\n");
    let out = card.cpx(
        &[
            "sign",
            "--key",
            "auth",
            file.to_str().unwrap(),
            "-o",
            sig.to_str().unwrap(),
        ],
        &[],
    );
    expect_code(&out, 0);
    assert!(stdout(&out).starts_with("Signed "), "{}", stdout(&out));
    assert!(stderr(&out).contains(PAD_VERIFY));

    card.keypad("1234\n");
    let out = card.cpx(&["data", "--login"], &[]);
    expect_code(&out, 0);
    assert!(stderr(&out).contains(PAD_VERIFY));
    card.keypad("1234\n");
    let v = json(&card.cpx(&["data", "--login", "--json"], &[]), "data");
    assert_eq!(v["logged_in"], true);
    assert_eq!(card.keypad_left(), "");
    Ok(())
}

/// `--no-pinpad` and `CPX_PINPAD=off`: the keyboard path (a hidden prompt, here through a
/// pseudo-terminal), the keypad never read.
fn keyboard_fallback() -> Result<(), Failed> {
    let card = OnPad::insert("cps3-doctor")?;
    card.keypad("9999\n");
    for (extra, env) in [
        (&["--no-pinpad"][..], &[][..]),
        (&[][..], &[("CPX_PINPAD", "off")][..]),
        (&[][..], &[("CPX_PINPAD_IGNORE", "pinpad")][..]),
    ] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cpx"));
        cmd.args(["pin", "verify"])
            .args(extra)
            .args(["--reader", &card.pad.name]);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut p = expectrl::Session::spawn(cmd)?;
        p.set_expect_timeout(Some(SEEN));
        p.expect("PIN: 3 tries left")?;
        p.expect("PIN: ")?;
        let deadline = std::time::Instant::now() + SEEN;
        while p.get_process().get_echo()? {
            assert!(std::time::Instant::now() < deadline, "echo still on");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        p.send_line(PIN)?;
        let rest = p.expect(expectrl::Eof)?;
        let text = String::from_utf8_lossy(rest.as_bytes()).into_owned();
        assert!(text.contains("PIN correct."), "{extra:?} {env:?}: {text}");
        assert!(!text.contains("keypad"), "{text}");
        assert_eq!(
            card.keypad_left(),
            "9999\n",
            "{extra:?} {env:?}: the keypad was read"
        );
    }
    // Without a terminal, the keyboard path says how to give the PIN, and nothing is sent.
    let out = Command::new("setsid")
        .args([
            env!("CARGO_BIN_EXE_cpx"),
            "pin",
            "verify",
            "--no-pinpad",
            "--reader",
        ])
        .arg(&card.pad.name)
        .stdin(Stdio::null())
        .output()?;
    expect_code(&out, 2);
    assert!(
        stderr(&out).contains("use --pin-stdin or --pin-file"),
        "{}",
        stderr(&out)
    );
    assert_eq!(card.pin_tries(), Some(3));
    Ok(())
}
