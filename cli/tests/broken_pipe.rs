//! `cpx … | head -1`: when the reader of cpx's output goes away, cpx stops quietly with the
//! status of a program killed by SIGPIPE, not with a panic message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Stdio};

#[test]
fn a_closed_stdout_is_not_a_panic() {
    // Completions need no card nor pcscd. The read end is closed before cpx has started
    // (exec and argument parsing take far longer than this drop), so its first write fails.
    let mut child = Command::new(env!("CARGO_BIN_EXE_cpx"))
        .args(["completions", "bash"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(141), "{stderr}");
}
