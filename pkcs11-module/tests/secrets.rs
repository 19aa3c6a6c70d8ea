//! No PIN or PUK in the module's logs at any level, in its error messages, or in a process's
//! argv (issue 9). A child process (this binary again, `CPX_SECRETS_ROLE=session`) loads the
//! module with `CPX_PKCS11_LOG=trace` and goes through everything that handles a secret: a
//! malformed PIN, a wrong PIN, C_Login, C_Sign, C_SetPIN to a new PIN and back, a C_SetPIN with
//! a wrong old PIN, the PIN blocked on purpose, C_Login(CKU_SO) with the PUK, C_InitPIN. It gets
//! the secrets on stdin. The parent captures the child's stderr (the module logs there), then
//! searches it, and the child's argv and environment, for every secret in every form a careless
//! log line would use: ASCII, hex (plain, spaced, FF-padded, `{:02X?}`), decimal `{:?}` bytes.
//!
//! The card's PIN and PUK are changed (through the emulator's state) to values with a leading
//! zero: no date, count or spaced hex byte in a log can look like them by chance.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use common::module_path;
use cpx_emulator::{EmulatedCard, SharedCard};
use cpx_testkit::{Failed, Recorder, Trial, apdu};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::ObjectClass;
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;

const ROLE: &str = "CPX_SECRETS_ROLE";
const READER: &str = "CPX_SECRETS_READER";
const MODULE: &str = "CPX_SECRETS_MODULE";

/// The secrets, in the order the child reads them from stdin.
#[derive(Debug, Clone)]
struct Secrets {
    pin: String,
    new_pin: String,
    puk: String,
    wrong: String,
    malformed: String,
}

impl Secrets {
    fn for_card(stem: &str) -> Secrets {
        Secrets {
            pin: "0739".into(),
            // CPS3: exactly 4 digits; CPS4: 4 to 8 (docs/card-spec.md §3.1).
            new_pin: if stem.starts_with("cps4") {
                "086251"
            } else {
                "0862"
            }
            .into(),
            puk: "05820641".into(),
            wrong: "0514".into(),
            // Longer than any PIN policy allows: refused before reaching the card.
            malformed: "073918264".into(),
        }
    }

    fn all(&self) -> [&str; 5] {
        [&self.pin, &self.new_pin, &self.puk, &self.wrong, &self.malformed]
    }
}

fn main() -> ExitCode {
    if std::env::var_os(ROLE).is_some() {
        return match child() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                // stdout: stderr is the log being examined.
                println!("fail: {e}");
                ExitCode::FAILURE
            }
        };
    }
    cpx_testkit::run_tests(&common::sandbox(4), || {
        vec![
            Trial::test("cps3_no_secret_in_trace_logs_or_argv", || full_run("cps3-doctor")),
            Trial::test("cps4_no_secret_in_trace_logs_or_argv", || full_run("cps4-doctor")),
        ]
    })
}

/// Every form of `secret` a log line could show.
fn forms(secret: &str) -> Vec<String> {
    let b = secret.as_bytes();
    let hex: Vec<String> = b.iter().map(|x| format!("{x:02X}")).collect();
    let mut v = vec![
        hex.concat(),
        hex.concat().to_lowercase(),
        hex.join(" "),
        format!("{}{}", hex.concat(), "FF".repeat(8usize.saturating_sub(b.len()))),
        hex.join(", "),
        hex.iter()
            .map(|h| format!("0x{}", h.to_lowercase()))
            .collect::<Vec<_>>()
            .join(", "),
        b.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", "),
    ];
    v.dedup();
    v
}

/// Where `text` shows `secret`: as a token of its own (not inside a longer run of letters and
/// digits, such as a hex dump), or in any of its encoded [`forms`].
fn leaks(text: &str, secret: &str) -> Vec<String> {
    let mut found = Vec::new();
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    for (i, _) in text.match_indices(secret) {
        let before = text[..i].chars().next_back();
        let after = text[i + secret.len()..].chars().next();
        if !alnum(before) && !alnum(after) {
            found.push(context(text, i));
        }
    }
    for form in forms(secret) {
        if let Some(i) = text.find(&form) {
            found.push(context(text, i));
        }
    }
    found
}

fn context(text: &str, i: usize) -> String {
    let start = text[..i].rfind('\n').map_or(0, |n| n + 1);
    let end = text[i..].find('\n').map_or(text.len(), |n| i + n);
    text[start..end].to_owned()
}

fn full_run(stem: &str) -> Result<(), Failed> {
    let secrets = Secrets::for_card(stem);
    let image = cpx_emulator::builtin_image(stem).ok_or("no image")??;
    let mut card = SharedCard::new(cpx_emulator::card_from_image(&image));
    let mut state = card.state();
    for p in &mut state.pins {
        let value = if p.reference == 0x01 {
            &secrets.pin
        } else {
            &secrets.puk
        };
        p.value = forms(value)[0].clone();
    }
    card.restore(&state)?;
    let (recorder, wire) = Recorder::new(Box::new(card.clone()));
    let (lease, _slot) = cpx_testkit::insert_card(Box::new(recorder))?;

    let mut child = Command::new(std::env::current_exe()?)
        .env(ROLE, "session")
        .env(READER, &lease.name)
        .env(MODULE, module_path()?)
        .env("CPX_PKCS11_LOG", "trace")
        .env("CPX_PKCS11_CACHE", "off")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let pid = child.id();
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    for s in secrets.all() {
        writeln!(stdin, "{s}")?;
    }
    stdin.flush()?;
    let mut err = child.stderr.take().ok_or("no stderr")?;
    let log = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let mut out = BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();

    // The child holds every secret now: its command line and environment must not.
    let ready = out.next().transpose()?;
    if ready.as_deref() != Some("ready") {
        let _ = child.kill();
        let _ = child.wait();
        return Err(format!("child: {ready:?}").into());
    }
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))?;
    let environ = std::fs::read(format!("/proc/{pid}/environ"))?;
    writeln!(stdin, "go")?;
    stdin.flush()?;
    let said: Vec<String> = out.map_while(Result::ok).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err("child did not finish".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let log = log.join().map_err(|_| "log reader")?;
    if !status.success() || said.last().map(String::as_str) != Some("done") {
        return Err(format!("child {status}: {said:?}\nlog tail:\n{}", tail(&log)).into());
    }

    let mut failures = Vec::new();
    for (what, text) in [
        ("module log", log.clone()),
        ("argv", String::from_utf8_lossy(&cmdline).replace('\0', " ")),
        (
            "environment",
            String::from_utf8_lossy(&environ).replace('\0', "\n"),
        ),
    ] {
        for s in secrets.all() {
            for line in leaks(&text, s) {
                failures.push(format!("{what} shows a secret: {line}"));
            }
        }
    }
    // The test saw something: a trace-level log, with the PIN commands in it (masked), and
    // the PIN, new PIN and PUK really went through the module to the card.
    let lines = log.lines().count();
    let masked = log
        .lines()
        .filter(|l| l.contains("cpx::apdu") && l.contains("**"))
        .count();
    if lines < 100 || masked < 8 {
        failures.push(format!(
            "the log is not a full trace: {lines} lines, {masked} masked PIN commands"
        ));
    }
    let sent = wire.commands();
    for s in [&secrets.pin, &secrets.new_pin, &secrets.puk] {
        let reached = sent
            .iter()
            .filter(|c| c.len() > 5 && matches!(c[1], 0x20 | 0x24 | 0x2C))
            .any(|c| c[5..].windows(s.len()).any(|w| w == s.as_bytes()));
        if !reached {
            failures.push(format!("no PIN command carried a secret of length {}", s.len()));
        }
    }
    let verifies = sent.iter().filter(|c| apdu::is_verify_with_data(c)).count();
    eprintln!("{stem}: {lines} log lines, {masked} masked PIN commands, {verifies} PIN presentations");
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n").into())
    }
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// The child: every PIN-handling call, checked; "done" on stdout at the end.
fn child() -> Result<(), String> {
    let mut parent = std::io::stdin().lock().lines();
    let mut next = || -> Result<AuthPin, String> {
        let line = parent.next().ok_or("stdin closed")?.map_err(|e| e.to_string())?;
        Ok(AuthPin::from(line))
    };
    let (pin, new_pin, puk, wrong, malformed) = (next()?, next()?, next()?, next()?, next()?);
    let p11 = Pkcs11::new(std::env::var(MODULE).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    p11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .map_err(|e| e.to_string())?;
    let reader = std::env::var(READER).map_err(|e| e.to_string())?;
    let slot = p11
        .get_slots_with_token()
        .map_err(|e| e.to_string())?
        .into_iter()
        .find(|s| {
            p11.get_slot_info(*s)
                .is_ok_and(|i| i.slot_description().trim_end() == reader)
        })
        .ok_or("no token in the reader")?;
    println!("ready");
    match parent.next() {
        Some(Ok(l)) if l == "go" => {}
        other => return Err(format!("expected go, got {other:?}")),
    }

    let s = p11.open_rw_session(slot).map_err(|e| e.to_string())?;
    let user = |p: &AuthPin| s.login(UserType::User, Some(p));
    expect(user(&malformed), Some(RvError::PinIncorrect), "malformed PIN")?;
    expect(user(&wrong), Some(RvError::PinIncorrect), "wrong PIN")?;
    expect(user(&pin), None, "C_Login")?;
    sign(&s)?;
    expect(s.logout(), None, "C_Logout")?;
    expect(s.set_pin(&pin, &new_pin), None, "C_SetPIN to the new PIN")?;
    expect(user(&new_pin), None, "C_Login with the new PIN")?;
    expect(s.logout(), None, "C_Logout")?;
    expect(s.set_pin(&new_pin, &pin), None, "C_SetPIN back")?;
    expect(
        s.set_pin(&wrong, &new_pin),
        Some(RvError::PinIncorrect),
        "C_SetPIN with a wrong old PIN",
    )?;
    // Block the PIN: the tries left after the two wrong ones above.
    let mut locked = false;
    for _ in 0..3 {
        match user(&wrong) {
            Err(Error::Pkcs11(RvError::PinLocked, _)) => {
                locked = true;
                break;
            }
            Err(Error::Pkcs11(RvError::PinIncorrect, _)) => {}
            other => return Err(format!("blocking the PIN: {other:?}")),
        }
    }
    let info = p11.get_token_info(slot).map_err(|e| e.to_string())?;
    if !(locked || info.user_pin_locked()) {
        return Err("the PIN is not blocked".into());
    }
    expect(
        s.login(UserType::So, Some(&puk)),
        None,
        "C_Login(CKU_SO) with the PUK",
    )?;
    expect(s.init_pin(&pin), None, "C_InitPIN")?;
    expect(s.logout(), None, "C_Logout (SO)")?;
    expect(user(&pin), None, "C_Login after the unblock")?;
    sign(&s)?;
    println!("done");
    Ok(())
}

fn expect<T: std::fmt::Debug>(
    r: cryptoki::error::Result<T>,
    rv: Option<RvError>,
    what: &str,
) -> Result<(), String> {
    match (&r, rv) {
        (Ok(_), None) => Ok(()),
        (Err(Error::Pkcs11(got, _)), Some(want)) if *got == want => Ok(()),
        _ => Err(format!("{what}: expected {rv:?}, got {r:?}")),
    }
}

fn sign(s: &Session) -> Result<(), String> {
    let key = s
        .find_objects(&[
            cryptoki::object::Attribute::Class(ObjectClass::PRIVATE_KEY),
            cryptoki::object::Attribute::Label(b"CPS_PRIV_SIG".to_vec()),
        ])
        .map_err(|e| e.to_string())?;
    let key = key.first().ok_or("no signature key")?;
    s.sign(&Mechanism::Sha256RsaPkcs, *key, b"secrets")
        .map(drop)
        .map_err(|e| format!("C_Sign: {e}"))
}
