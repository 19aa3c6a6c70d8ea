//! Shell-level checks: OpenSC's `pkcs11-tool` drives the built module against emulated cards.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::process::{Command, ExitCode};

use common::*;
use cpx_testkit::{Failed, Trial};

fn main() -> ExitCode {
    cpx_testkit::run_tests(&common::sandbox(4), || {
        // One trial, cards one after the other: `pkcs11-tool -L` lists every reader, and a card
        // another trial pulls out meanwhile would make its listing race.
        vec![Trial::test("pkcs11_tool_on_cps3_then_cps4", || {
            tool("cps3-doctor", "CPS3v3-")?;
            tool("cps4-doctor", "CPS4v1-")
        })]
    })
}

fn run(args: &[&str]) -> Result<String, Failed> {
    let so = module_path()?;
    let out = Command::new("pkcs11-tool")
        .arg("--module")
        .arg(&so)
        .args(args)
        .output()
        .map_err(|e| format!("pkcs11-tool: {e} (install opensc)"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("$ pkcs11-tool {}\n{text}", args.join(" "));
    if !out.status.success() {
        return Err(format!("pkcs11-tool {args:?} failed ({}):\n{text}", out.status).into());
    }
    Ok(text)
}

fn tool(stem: &str, label: &str) -> Result<(), Failed> {
    // The previous card gone from PC/SC: `-L` then lists this card's token only.
    wait_alone()?;
    let (lease, _card) = insert(stem)?;
    let list = run(&["-L"])?;
    assert!(list.contains(&lease.name), "{list}");
    assert!(list.contains(label), "{list}");
    let objects = run(&["--slot-description", &lease.name, "-O"])?;
    assert!(objects.contains("Certificat de Signature CPS"), "{objects}");
    let logged = run(&[
        "--slot-description",
        &lease.name,
        "-O",
        "--login",
        "--pin",
        "1234",
    ])?;
    assert!(
        logged.contains("CPS_PRIV_SIG") && logged.contains("CPS_PRIV_AUT"),
        "{logged}"
    );
    let test = run(&[
        "--slot-description",
        &lease.name,
        "--test",
        "--login",
        "--pin",
        "1234",
    ])?;
    assert!(test.contains("No errors"), "{test}");
    Ok(())
}
