//! The `cpx-sandbox` runner: COMMAND starts only once PC/SC shows every card (scripts count
//! them at once), and its exit code comes back.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::process::Command;

fn sandbox() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cpx-sandbox"))
}

/// `opensc-tool -l`, run as COMMAND the instant cpx-sandbox starts it, already sees both cards.
#[test]
fn command_sees_every_card_at_once() {
    if std::env::var_os(cpx_testkit::ENV_SKIP).is_some() {
        return;
    }
    for _ in 0..3 {
        let out = sandbox()
            .args(["--card", "cps3-doctor", "--card", "cps4-doctor", "--test-card"])
            .args(["--entries", "2", "--", "opensc-tool", "-l"])
            .output()
            .expect("opensc-tool (package opensc)");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let with_card = text
            .lines()
            .filter(|l| l.split_whitespace().nth(1) == Some("Yes"))
            .count();
        assert_eq!(with_card, 3, "{text}");
        assert!(text.contains("cpx virtual 2 00 00"), "{text}");
    }
}

#[test]
fn exit_code_and_usage() {
    if std::env::var_os(cpx_testkit::ENV_SKIP).is_some() {
        return;
    }
    let out = sandbox().args(["--", "sh", "-c", "exit 7"]).output().unwrap();
    assert_eq!(out.status.code(), Some(7));
    let out = sandbox().args(["--card"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage: cpx-sandbox"));
    let out = sandbox()
        .args(["--card", "cps9-wizard", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cps9-wizard"));
}
