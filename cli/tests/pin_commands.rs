//! `cpx pin verify|change|unblock` and the PIN handling of `data`/`sign` against emulated cards
//! behind the real pcscd + vpcd: every message and exit code of the README, malformed codes
//! refused with no APDU, the hidden prompt through a pseudo-terminal, and no PIN in any output.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use common::*;
use cpx_testkit::{Failed, SandboxConfig, Trial};
use expectrl::{Eof, WaitStatus};

fn main() -> ExitCode {
    cpx_testkit::run_tests(&SandboxConfig::default(), || {
        vec![
            Trial::test("cps3_wrong_pin_tries_left_then_blocked", || {
                wrong_then_blocked("cps3-doctor")
            }),
            Trial::test("cps4_wrong_pin_tries_left_then_blocked", || {
                wrong_then_blocked("cps4-doctor")
            }),
            Trial::test("malformed_codes_refused_without_any_apdu", malformed),
            Trial::test("change_and_verify_through_stdin_and_file", || {
                change("cps3-doctor")
            }),
            Trial::test("cps4_change_and_unblock", || change("cps4-doctor")),
            Trial::test("blocked_pin_card_then_unblock_with_puk", blocked_pin_card),
            Trial::test("wrong_puk_tries_left", wrong_puk),
            Trial::test("puk_blocked_card_must_be_replaced", puk_blocked),
            Trial::test("missing_secret_line_is_a_usage_error", missing_line),
            Trial::test("prompt_verify_and_change_through_a_pty", prompt),
            Trial::test("no_pin_digits_in_any_output_of_a_full_run", no_leak),
            Trial::test("wait_draws_a_spinner_only_on_a_terminal", wait_spinner),
        ]
    })
}

const PIN_BLOCKED: &str = "PIN blocked: unblock with your PUK (cpx pin unblock)";
const PUK_BLOCKED: &str = "PUK blocked: the card must be replaced";

fn wrong_then_blocked(stem: &str) -> Result<(), Failed> {
    let card = insert(stem)?;
    let out = on(&card, &["pin", "verify", "--pin-stdin"], "0000\n");
    expect_code(&out, 6);
    assert_eq!(stderr(&out), "PIN: 3 tries left\ncpx: wrong PIN, 2 tries left\n");
    assert!(out.stdout.is_empty());
    assert_eq!(pin_tries(&card), Some(2));
    let out = on(&card, &["pin", "verify", "--pin-stdin"], "9999\n");
    expect_code(&out, 6);
    assert_eq!(stderr(&out), "PIN: 2 tries left\ncpx: wrong PIN, 1 try left\n");
    let out = on(&card, &["pin", "verify", "--pin-stdin"], "1111\n");
    expect_code(&out, 7);
    assert_eq!(stderr(&out), format!("PIN: 1 try left\ncpx: {PIN_BLOCKED}\n"));
    // blocked: refused before reading a secret or sending anything
    let before = card.pin_commands();
    let out = on(&card, &["pin", "verify", "--pin-stdin"], "1234\n");
    expect_code(&out, 7);
    assert_eq!(stderr(&out), format!("cpx: {PIN_BLOCKED}\n"));
    let out = on(
        &card,
        &[
            "sign",
            "--key",
            "sign",
            "/dev/null",
            "--pin-stdin",
            "-o",
            "/dev/null",
        ],
        "1234\n",
    );
    expect_code(&out, 7);
    let out = on(&card, &["data", "--pin-stdin"], "1234\n");
    expect_code(&out, 7);
    assert_eq!(card.pin_commands(), before);
    let v = json(&on(&card, &["status", "--json"], ""), "status");
    assert_eq!(v["pin"]["blocked"], true);
    Ok(())
}

fn malformed() -> Result<(), Failed> {
    let card = insert("cps3-doctor")?;
    let cases: &[(&[&str], &str, &str)] = &[
        (
            &["pin", "verify"],
            "12\n",
            "2 digits where the card expects 4 to 16",
        ),
        (&["pin", "verify"], "12a4\n", "only digits are allowed"),
        (&["pin", "verify"], "\n", "it is empty"),
        // allowed by cpx's generic rule, refused by the card's own policy (AODF), still no APDU
        (
            &["pin", "verify"],
            "12345\n",
            "5 characters where the card expects 4",
        ),
        (&["pin", "change"], "1234\n12x4\n", "only digits are allowed"),
        (
            &["pin", "change"],
            "1234\n123456\n",
            "6 characters where the card expects 4",
        ),
        (
            &["pin", "unblock"],
            "1234\n1234\n",
            "4 characters where the card expects 8",
        ),
        (
            &["sign", "--key", "sign", "/dev/null", "-o", "/dev/null"],
            "12\n",
            "2 digits",
        ),
        (&["data", "--login"], "abcd\n", "only digits"),
    ];
    for (args, stdin, reason) in cases {
        let mut all = args.to_vec();
        all.push("--pin-stdin");
        let out = on(&card, &all, stdin);
        expect_code(&out, 11);
        let err = stderr(&out);
        let kind = if args[1] == "unblock" { "PUK" } else { "PIN" };
        assert!(
            err.contains(&format!(
                "cpx: {kind} refused before reaching the card (no try spent): "
            )) && err.contains(reason),
            "{args:?}: {err}"
        );
        assert_eq!(card.pin_commands(), 0, "{args:?}: a code reached the card");
    }
    let v = json(&on(&card, &["status", "--json"], ""), "status");
    assert_eq!(v["pin"]["tries_left"], 3);
    assert_eq!(v["puk"]["tries_left"], 10);
    Ok(())
}

fn change(stem: &str) -> Result<(), Failed> {
    let card = insert(stem)?;
    let out = on(&card, &["pin", "change", "--pin-stdin", "--json"], "1234\n4321\n");
    let v = json(&out, "pin");
    check(
        &v,
        &[
            ("reader", "string"),
            ("operation", "string"),
            ("ok", "boolean"),
            ("pin", "object|null"),
            ("puk", "object|null"),
        ],
    );
    assert_eq!(v["operation"], "change");
    assert_eq!(v["ok"], true);
    assert_eq!(stderr(&out), "PIN: 3 tries left\n");
    let out = on(&card, &["pin", "verify", "--pin-stdin"], "1234\n");
    expect_code(&out, 6);
    assert!(stderr(&out).ends_with("cpx: wrong PIN, 2 tries left\n"));
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("pin");
    std::fs::write(&file, "4321\r\n")?;
    let out = on(
        &card,
        &["pin", "verify", "--pin-file", file.to_str().unwrap()],
        "",
    );
    expect_code(&out, 0);
    assert!(
        stdout(&out).starts_with("PIN correct.\nPIN: "),
        "{}",
        stdout(&out)
    );
    // unblock with the PUK sets a new PIN even when not blocked
    std::fs::write(&file, format!("{PUK}\n2468\n"))?;
    let out = on(
        &card,
        &["pin", "unblock", "--pin-file", file.to_str().unwrap(), "--json"],
        "",
    );
    let v = json(&out, "pin");
    assert_eq!(v["operation"], "unblock");
    assert!(stderr(&out).starts_with("PUK: "), "{}", stderr(&out));
    expect_code(&on(&card, &["pin", "verify", "--pin-stdin"], "2468\n"), 0);
    Ok(())
}

fn blocked_pin_card() -> Result<(), Failed> {
    let card = insert("cps3-pin-blocked")?;
    let out = on(&card, &["pin", "verify", "--pin-stdin"], "1234\n");
    expect_code(&out, 7);
    assert_eq!(stderr(&out), format!("cpx: {PIN_BLOCKED}\n"));
    let out = on(&card, &["pin", "change", "--pin-stdin"], "1234\n5678\n");
    expect_code(&out, 7);
    assert_eq!(card.pin_commands(), 0);
    let out = on(
        &card,
        &["pin", "unblock", "--pin-stdin"],
        &format!("{PUK}\n5678\n"),
    );
    expect_code(&out, 0);
    assert!(
        stderr(&out).starts_with("PUK: 10 tries left\n"),
        "{}",
        stderr(&out)
    );
    assert!(
        stdout(&out).starts_with("PIN unblocked and replaced.\nPIN: 3 tries left\n"),
        "{}",
        stdout(&out)
    );
    expect_code(&on(&card, &["pin", "verify", "--pin-stdin"], "5678\n"), 0);
    Ok(())
}

fn wrong_puk() -> Result<(), Failed> {
    let card = insert("cps3-pin-blocked")?;
    let out = on(&card, &["pin", "unblock", "--pin-stdin"], "87654321\n5678\n");
    expect_code(&out, 6);
    assert_eq!(stderr(&out), "PUK: 10 tries left\ncpx: wrong PUK, 9 tries left\n");
    let v = json(&on(&card, &["status", "--json"], ""), "status");
    assert_eq!(v["puk"]["tries_left"], 9);
    assert_eq!(v["pin"]["blocked"], true);
    Ok(())
}

fn puk_blocked() -> Result<(), Failed> {
    let card = insert("cps3-puk-blocked")?;
    let out = on(
        &card,
        &["pin", "unblock", "--pin-stdin"],
        &format!("{PUK}\n5678\n"),
    );
    expect_code(&out, 8);
    assert_eq!(stderr(&out), format!("cpx: {PUK_BLOCKED}\n"));
    assert_eq!(card.pin_commands(), 0);
    Ok(())
}

fn missing_line() -> Result<(), Failed> {
    let card = insert("cps3-doctor")?;
    let out = on(&card, &["pin", "change", "--pin-stdin"], "1234\n");
    expect_code(&out, 2);
    assert!(
        stderr(&out).contains(
            "--pin-stdin: expected the current PIN, then the new PIN (one per line), got 1 line(s)"
        ),
        "{}",
        stderr(&out)
    );
    assert_eq!(card.pin_commands(), 0);
    // and never from argv
    let out = on(&card, &["pin", "verify", "--pin", "1234"], "");
    expect_code(&out, 2);
    Ok(())
}

/// A `cpx` run on a pseudo-terminal, with everything it printed.
struct Pty {
    p: expectrl::Session,
    transcript: Vec<u8>,
}

impl Pty {
    fn spawn(card: &Inserted, args: &[&str], env: &[(&str, &str)]) -> Pty {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cpx"));
        cmd.args(args).args(["--reader", card.reader()]);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut p = expectrl::Session::spawn(cmd).unwrap();
        p.set_expect_timeout(Some(SEEN));
        Pty {
            p,
            transcript: Vec::new(),
        }
    }

    fn expect(&mut self, needle: &str) {
        let c = self.p.expect(needle).unwrap_or_else(|e| {
            panic!(
                "{needle:?}: {e}; so far: {}",
                String::from_utf8_lossy(&self.transcript)
            )
        });
        self.transcript.extend_from_slice(c.as_bytes());
    }

    /// Answer a prompt once the terminal's echo is off: rpassword prints the prompt, then
    /// turns echo off (TCSANOW); an answer typed before that would be echoed.
    fn answer(&mut self, prompt: &str, secret: &str) {
        self.expect(prompt);
        let deadline = Instant::now() + SEEN;
        while self.p.get_process().get_echo().unwrap() {
            assert!(
                Instant::now() < deadline,
                "echo still on {SEEN:?} after {prompt:?}; so far: {}",
                String::from_utf8_lossy(&self.transcript)
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        self.p.send_line(secret).unwrap();
    }

    fn finish(mut self) -> (i32, String) {
        if let Ok(c) = self.p.expect(Eof) {
            self.transcript.extend_from_slice(c.as_bytes());
        }
        let code = match self.p.get_process().wait().unwrap() {
            WaitStatus::Exited(_, code) => code,
            other => panic!("{other:?}"),
        };
        (code, String::from_utf8_lossy(&self.transcript).into_owned())
    }
}

fn prompt() -> Result<(), Failed> {
    let card = insert("cps3-doctor")?;
    let mut t = Pty::spawn(&card, &["pin", "verify"], &[]);
    t.expect("PIN: 3 tries left");
    t.answer("PIN: ", PIN);
    t.expect("PIN correct.");
    let (code, text) = t.finish();
    assert_eq!(code, 0, "{text}");
    assert!(!text.contains(PIN), "the PIN was echoed: {text}");

    // the new PIN is typed twice; a mismatch changes nothing
    let mut t = Pty::spawn(&card, &["pin", "change"], &[]);
    t.answer("Current PIN: ", PIN);
    t.answer("New PIN: ", "5678");
    t.answer("Confirm new PIN: ", "5679");
    let (code, text) = t.finish();
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("cpx: the two new PINs differ: nothing was changed"),
        "{text}"
    );

    let mut t = Pty::spawn(&card, &["pin", "change"], &[]);
    t.answer("Current PIN: ", PIN);
    t.answer("New PIN: ", "5678");
    t.answer("Confirm new PIN: ", "5678");
    t.expect("PIN changed.");
    let (code, text) = t.finish();
    assert_eq!(code, 0, "{text}");
    assert!(!text.contains("5678"), "{text}");
    expect_code(&on(&card, &["pin", "verify", "--pin-stdin"], "5678\n"), 0);

    // wrong PIN at the prompt
    let mut t = Pty::spawn(&card, &["pin", "verify"], &[]);
    t.answer("PIN: ", "0000");
    t.expect("cpx: wrong PIN, 2 tries left");
    let (code, _) = t.finish();
    assert_eq!(code, 6);

    // no terminal (setsid: no controlling tty) and no --pin-stdin: a usage error, nothing sent
    let card = insert("cps3-doctor")?;
    let out = Command::new("setsid")
        .args([
            env!("CARGO_BIN_EXE_cpx"),
            "pin",
            "verify",
            "--reader",
            card.reader(),
        ])
        .stdin(std::process::Stdio::null())
        .output()?;
    expect_code(&out, 2);
    assert!(
        stderr(&out).contains("use --pin-stdin or --pin-file"),
        "{}",
        stderr(&out)
    );
    assert_eq!(card.pin_commands(), 0);
    Ok(())
}

/// Every way a secret could leak: stdout, stderr, CPX_LOG=trace (every APDU), a terminal.
fn no_leak() -> Result<(), Failed> {
    let card = insert("cps3-doctor")?;
    let dir = tempfile::tempdir()?;
    let doc = dir.path().join("doc");
    std::fs::write(&doc, "leak test")?;
    let doc = doc.to_str().unwrap();
    let sig = dir.path().join("doc.sig");
    let sig = sig.to_str().unwrap();
    let runs: Vec<(Vec<&str>, String)> = vec![
        (vec!["pin", "verify", "--pin-stdin"], "0000\n".into()),
        (vec!["pin", "verify", "--pin-stdin"], format!("{PIN}\n")),
        (vec!["pin", "verify", "--pin-stdin", "--json"], format!("{PIN}\n")),
        (vec!["data", "--login", "--pin-stdin"], format!("{PIN}\n")),
        (vec!["data", "--json", "--pin-stdin"], format!("{PIN}\n")),
        (
            vec!["sign", "--key", "sign", doc, "-o", sig, "--pin-stdin"],
            format!("{PIN}\n"),
        ),
        (
            vec!["sign", "--key", "auth", doc, "-o", sig, "--pin-stdin", "--json"],
            format!("{PIN}\n"),
        ),
        (vec!["pin", "change", "--pin-stdin"], format!("{PIN}\n5678\n")),
        (vec!["pin", "verify", "--pin-stdin"], "5678\n".into()),
        (vec!["pin", "unblock", "--pin-stdin"], format!("{PUK}\n{PIN}\n")),
        (vec!["pin", "verify", "--pin-stdin"], "12a4\n".into()),
        (vec!["status"], String::new()),
        (vec!["certs", "list"], String::new()),
    ];
    let mut all = Vec::new();
    for (args, stdin) in &runs {
        let mut args = args.clone();
        args.extend(["--reader", card.reader()]);
        let mut child = cpx()
            .args(&args)
            .env("CPX_LOG", "trace")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()?;
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), stdin.as_bytes())?;
        let out = child.wait_with_output()?;
        all.extend_from_slice(&out.stdout);
        all.extend_from_slice(&out.stderr);
    }
    let text = String::from_utf8_lossy(&all).into_owned();
    // the trace really covers the PIN commands (masked)
    assert!(text.contains("cpx::apdu"), "no APDU trace");
    assert!(text.contains(" > 00 20 00 01"), "no VERIFY in the trace");
    // prompt runs on a terminal, traced too
    let mut t = Pty::spawn(&card, &["pin", "verify"], &[("CPX_LOG", "trace")]);
    t.answer("PIN: ", PIN);
    t.expect("PIN correct.");
    let (code, pty_text) = t.finish();
    assert_eq!(code, 0, "{pty_text}");
    let text = text + &pty_text;
    for secret in [PIN, "5678", PUK] {
        let hex: String = secret.bytes().map(|b| format!("{b:02X}")).collect();
        let spaced: Vec<String> = secret.bytes().map(|b| format!("{b:02X}")).collect();
        let spaced = spaced.join(" ");
        for needle in [secret.to_owned(), hex.clone(), hex.to_lowercase(), spaced] {
            assert!(
                !text.contains(&needle),
                "{needle:?} found in the output:\n{}",
                text.lines()
                    .filter(|l| l.contains(&needle))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
    }
    Ok(())
}

/// `cpx wait` on a terminal: the spinner (`| waiting…`, redrawn with `\r`), then the timeout.
fn wait_spinner() -> Result<(), Failed> {
    let lease = cpx_testkit::SandboxEnv::get()?.try_lease(SEEN)?;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cpx"));
    cmd.args(["wait", "--timeout", "1", "--reader", &lease.name]);
    let mut p = expectrl::Session::spawn(cmd)?;
    p.set_expect_timeout(Some(SEEN));
    p.expect("| waiting for a card to be inserted or removed")?;
    let rest = p.expect(Eof)?;
    let text = String::from_utf8_lossy(rest.as_bytes()).into_owned();
    assert!(
        text.contains("cpx: no card inserted or removed within 1 s"),
        "{text}"
    );
    assert!(matches!(p.get_process().wait()?, WaitStatus::Exited(_, 12)));
    Ok(())
}
