//! `cpx emulate` as editors run it: several cards on several readers of a real pcscd, inserted,
//! removed and reset through the control socket, stopped cleanly by SIGTERM or `quit`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use cpx_emulator::control;
use cpx_testkit::{Failed, SandboxConfig, SandboxEnv, Trial, card_present, wait_for_card};

const SEEN: Duration = Duration::from_secs(5);
const CPS3_ATR: &str = "3BAC00402A001225006480000310009000";
const CPS3_CL_ATR: &str = "3B8F8001";

fn main() -> ExitCode {
    let config = SandboxConfig {
        entries: 2,
        ..SandboxConfig::default()
    };
    cpx_testkit::run_tests(&config, || {
        vec![
            Trial::test(
                "two_cards_on_two_readers_then_control_and_quit",
                two_cards_control_and_quit,
            ),
            Trial::test("sigterm_removes_the_cards_and_exits_0", sigterm_removes_the_cards),
            Trial::test("unknown_image_is_a_clear_error", unknown_image_is_a_clear_error),
        ]
    })
}

fn cpx() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cpx"))
}

fn wait_exit(child: &mut Child, timeout: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "cpx emulate did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn reader_atr(json: &serde_json::Value, reader: &str) -> Option<String> {
    let r = json["readers"].as_array()?.iter().find(|r| r["name"] == reader)?;
    r["atr"].as_str().map(str::to_owned)
}

fn two_cards_control_and_quit() -> Result<(), Failed> {
    let leases = SandboxEnv::get()?.lease_many(2);
    let dir = tempfile::tempdir()?;
    let sock = dir.path().join("control");
    let mut child = cpx()
        .args(["emulate", "--control", sock.to_str().unwrap()])
        .args(["--card", &format!("cps3-doctor@{}", leases[0].vpcd_addr())])
        .args(["--card", &format!("cps3-contactless@{}", leases[1].vpcd_addr())])
        .stdout(Stdio::null())
        .spawn()?;
    for l in &leases {
        wait_for_card(&l.name, true, SEEN)?;
    }
    let out = cpx().args(["readers", "--json"]).output()?;
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(reader_atr(&json, &leases[0].name).as_deref(), Some(CPS3_ATR));
    assert!(
        reader_atr(&json, &leases[1].name)
            .unwrap()
            .starts_with(CPS3_CL_ATR)
    );

    // the control socket may take a moment to appear after the cards
    let deadline = Instant::now() + SEEN;
    while !sock.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = control(&sock, "status")?;
    assert!(status.starts_with("ok\n0 cps3-doctor "), "{status}");
    assert!(
        status.contains("1 cps3-contactless ") && status.ends_with("inserted"),
        "{status}"
    );

    assert_eq!(control(&sock, "remove 1")?, "ok");
    wait_for_card(&leases[1].name, false, SEEN)?;
    assert!(card_present(&leases[0].name)?, "card 0 must stay in");
    assert_eq!(control(&sock, "insert 1")?, "ok");
    wait_for_card(&leases[1].name, true, SEEN)?;
    assert_eq!(control(&sock, "reset 0")?, "ok");
    wait_for_card(&leases[0].name, true, SEEN)?;
    assert!(control(&sock, "remove 7")?.starts_with("error no card 7"));
    assert!(control(&sock, "dance")?.starts_with("error unknown command"));
    let out = cpx()
        .args([
            "emulate",
            "--control",
            sock.to_str().unwrap(),
            "--send",
            "remove 0",
        ])
        .output()?;
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout)?, "ok\n");
    wait_for_card(&leases[0].name, false, SEEN)?;
    let out = cpx()
        .args([
            "emulate",
            "--control",
            sock.to_str().unwrap(),
            "--send",
            "insert 9",
        ])
        .output()?;
    assert_eq!(out.status.code(), Some(1), "an error reply fails the client");
    assert_eq!(control(&sock, "insert 0")?, "ok");
    wait_for_card(&leases[0].name, true, SEEN)?;

    assert_eq!(control(&sock, "quit")?, "ok");
    assert!(wait_exit(&mut child, SEEN).success());
    for l in &leases {
        wait_for_card(&l.name, false, SEEN)?;
    }
    assert!(!sock.exists(), "control socket left behind");
    Ok(())
}

fn sigterm_removes_the_cards() -> Result<(), Failed> {
    let lease = SandboxEnv::get()?.lease();
    let mut child = cpx()
        .args(["emulate", "--card", "cps3-doctor", "--vpcd", &lease.vpcd_addr()])
        .stdout(Stdio::piped())
        .spawn()?;
    wait_for_card(&lease.name, true, SEEN)?;
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    assert!(wait_exit(&mut child, SEEN).success());
    wait_for_card(&lease.name, false, SEEN)?;
    let mut out = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut out)?;
    assert!(
        out.contains(&format!(
            "card 0: cps3-doctor at vpcd {}, inserted",
            lease.vpcd_addr()
        )),
        "{out}"
    );
    Ok(())
}

fn unknown_image_is_a_clear_error() -> Result<(), Failed> {
    let out = cpx().args(["emulate", "--card", "cps9-wizard"]).output()?;
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr)?;
    assert!(
        err.contains("cps9-wizard") && err.contains("built-in: cps3-doctor"),
        "{err}"
    );
    Ok(())
}
