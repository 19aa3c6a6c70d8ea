//! A card whose text is hostile (issue 13 item 7), behind the real pcscd + vpcd: a TokenInfo
//! label holding `ESC [2J`, a NUL, the C1 CSI `U+009B` and invalid UTF-8, a data-object label
//! and a certificate given name holding escapes. `cpx status` / `certs` / `data`, in text and
//! JSON, and the PKCS#11 module's C_GetTokenInfo (through pkcs11-tool) show U+FFFD in their
//! place and never one control byte (docs/cli-json.md, docs/pkcs11-module.md "Text from the
//! card").
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::process::{Command, ExitCode, Output};

use common::*;
use cpx_testkit::{Failed, Recorder, SandboxConfig, Trial};
use cpx_vpcd::{CardSlot, VirtualCard};

/// What the emulator writes as the TokenInfo label, then swapped for [`HOSTILE_LABEL`] on the
/// wire (a `String` cannot hold invalid UTF-8). Same length, so the BER stays valid.
const MARKER: &[u8] = b"CPXHOSTILELABEL1";
/// `Dr ESC [2J NUL CSI(C2 9B) X FF FE -ok1`.
const HOSTILE_LABEL: &[u8] = b"Dr\x1b[2J\x00\xC2\x9BX\xFF\xFE-ok1";
/// What every consumer must show instead.
const SHOWN_LABEL: &str = "Dr\u{FFFD}[2J\u{FFFD}\u{FFFD}X\u{FFFD}\u{FFFD}-ok1";
/// The certificates' GivenName `ALICE` (UTF8String) becomes `A ESC c CSI`: ESC c resets a terminal.
const GIVEN_NAME: (&[u8], &[u8]) = (b"\x0c\x05ALICE", b"\x0c\x05A\x1bc\xC2\x9B");
const SHOWN_GIVEN_NAME: &str = "A\u{FFFD}c\u{FFFD}";
/// Appended to the first data object's label.
const DATA_LABEL_TAIL: &str = "\u{1b}]0;owned\u{7}\u{9b}";
const SHOWN_DATA_LABEL_TAIL: &str = "\u{FFFD}]0;owned\u{FFFD}\u{FFFD}";

fn main() -> ExitCode {
    cpx_testkit::run_tests(&SandboxConfig::default(), || {
        vec![
            Trial::test("status_text_and_json_show_replacements", status),
            Trial::test("certs_and_data_show_replacements", certs_and_data),
            Trial::test("pkcs11_token_label_has_no_control", pkcs11_label),
            Trial::test("report_output_and_file_have_no_control", report),
        ]
    })
}

/// Replaces [`MARKER`] by [`HOSTILE_LABEL`] in every answer.
struct Patched(Box<dyn VirtualCard>);

impl VirtualCard for Patched {
    fn atr(&self) -> Vec<u8> {
        self.0.atr()
    }
    fn power_on(&mut self) {
        self.0.power_on()
    }
    fn power_off(&mut self) {
        self.0.power_off()
    }
    fn reset(&mut self) {
        self.0.reset()
    }
    fn transmit(&mut self, command: &[u8]) -> Vec<u8> {
        let mut answer = self.0.transmit(command);
        replace_all(&mut answer, MARKER, HOSTILE_LABEL);
        answer
    }
}

fn replace_all(bytes: &mut [u8], from: &[u8], to: &[u8]) -> usize {
    assert_eq!(from.len(), to.len());
    let mut n = 0;
    let mut i = 0;
    while i + from.len() <= bytes.len() {
        if &bytes[i..i + from.len()] == from {
            bytes[i..i + from.len()].copy_from_slice(to);
            n += 1;
            i += from.len();
        } else {
            i += 1;
        }
    }
    n
}

/// The cps3-doctor card with hostile text, in a reader of our own.
fn insert_hostile() -> Result<(cpx_testkit::ReaderLease, CardSlot), Failed> {
    let mut image = cpx_emulator::builtin_image("cps3-doctor").ok_or("no cps3-doctor image")??;
    image.token_label = String::from_utf8(MARKER.to_vec())?;
    for key in [image.sign.as_mut(), image.auth.as_mut()].into_iter().flatten() {
        assert_eq!(replace_all(&mut key.cert, GIVEN_NAME.0, GIVEN_NAME.1), 1);
    }
    image.data[0].label.push_str(DATA_LABEL_TAIL);
    let card: Box<dyn VirtualCard> = cpx_emulator::card_from_image(&image);
    let (recorder, _wire) = Recorder::new(Box::new(Patched(card)));
    cpx_testkit::insert_card(Box::new(recorder))
}

/// Valid UTF-8 with no control character but line breaks, or a failure quoting the bytes.
fn terminal_safe(what: &str, bytes: &[u8]) -> Result<String, Failed> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("{what}: not UTF-8 ({e}): {bytes:?}"))?;
    if let Some(c) = text.chars().find(|c| *c != '\n' && c.is_control()) {
        return Err(format!("{what}: control U+{:04X} in the output: {text:?}", u32::from(c)).into());
    }
    Ok(text.to_owned())
}

fn cpx_on(reader: &str, args: &[&str]) -> Output {
    let mut all = args.to_vec();
    all.extend(["--reader", reader]);
    run(&all, "")
}

fn status() -> Result<(), Failed> {
    let (lease, _slot) = insert_hostile()?;
    let out = cpx_on(&lease.name, &["status"]);
    expect_code(&out, 0);
    let text = terminal_safe("cpx status", &out.stdout)?;
    assert!(
        text.contains(&format!("Token label:   {SHOWN_LABEL}\n")),
        "{text}"
    );
    assert!(
        text.contains(&format!("Holder:        {SHOWN_GIVEN_NAME} ")),
        "{text}"
    );
    let out = cpx_on(&lease.name, &["status", "--json"]);
    terminal_safe("cpx status --json", &out.stdout)?;
    let v = json(&out, "status");
    assert_eq!(v["card"]["token_label"], SHOWN_LABEL, "{v}");
    assert_eq!(v["holder"]["given_name"], SHOWN_GIVEN_NAME, "{v}");
    Ok(())
}

fn certs_and_data() -> Result<(), Failed> {
    let (lease, _slot) = insert_hostile()?;
    for args in [
        &["certs", "list"][..],
        &["certs", "list", "--json"],
        &["data"],
        &["data", "--json"],
    ] {
        let out = cpx_on(&lease.name, args);
        expect_code(&out, 0);
        let text = terminal_safe(&format!("cpx {args:?}"), &out.stdout)?;
        terminal_safe(&format!("cpx {args:?} (stderr)"), &out.stderr)?;
        let wanted = if args[0] == "certs" {
            SHOWN_GIVEN_NAME
        } else {
            SHOWN_DATA_LABEL_TAIL
        };
        // JSON is checked on its decoded strings, text as printed.
        let seen = if args.contains(&"--json") {
            let v: serde_json::Value = serde_json::from_str(&text)?;
            v.to_string().contains(wanted) || format!("{v:#}").contains(wanted)
        } else {
            text.contains(wanted)
        };
        assert!(seen, "cpx {args:?} does not show {wanted:?}:\n{text}");
    }
    Ok(())
}

/// C_GetTokenInfo's label through the built module, as pkcs11-tool -L prints it.
fn pkcs11_label() -> Result<(), Failed> {
    let module = module_path()?;
    let (_lease, _slot) = insert_hostile()?;
    let out = Command::new("pkcs11-tool")
        .arg("--module")
        .arg(&module)
        .arg("-L")
        .output()
        .map_err(|e| format!("pkcs11-tool (package opensc): {e}"))?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("token label") && l.contains("Dr"))
        .ok_or_else(|| format!("no token label of our card in:\n{text}"))?;
    // pkcs11-tool prints the 32 bytes as they are (trailing blanks trimmed): any control the
    // module let through would be here, and a NUL would have cut the label before "-ok1".
    let bytes = line.as_bytes();
    assert!(
        !bytes.iter().any(|b| *b < 0x20 || *b == 0x7F),
        "control byte in {line:?}"
    );
    assert!(!line.contains('\u{9b}'), "C1 CSI in {line:?}");
    // pkcs11-tool prints the UTF-8 as is: the 32-byte field is exactly the replacement text.
    assert!(line.ends_with(&format!(": {SHOWN_LABEL}")), "{line:?}");
    Ok(())
}

/// `cpx report`: its text and JSON, and the file it writes (users `cat` it), carry no control
/// from the card; the file still parses.
fn report() -> Result<(), Failed> {
    let (lease, _slot) = insert_hostile()?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("r.toml");
    for json in [false, true] {
        let mut args = vec!["report", "-o", file.to_str().unwrap()];
        if json {
            args.push("--json");
        }
        let out = cpx_on(&lease.name, &args);
        expect_code(&out, 0);
        let text = terminal_safe(&format!("cpx {args:?}"), &out.stdout)?;
        terminal_safe(&format!("cpx {args:?} (stderr)"), &out.stderr)?;
        assert!(text.contains(SHOWN_DATA_LABEL_TAIL) || json, "{text}");
        let written = std::fs::read(&file)?;
        let written = terminal_safe("the report file", &written)?;
        assert!(!written.contains('\u{9b}'), "C1 CSI in the file");
        let t: toml::Table = written.parse()?;
        assert_eq!(t["card"]["token_label"].as_str(), Some(SHOWN_LABEL));
    }
    Ok(())
}
