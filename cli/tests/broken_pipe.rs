//! `cpx … | head -1`: when the reader of cpx's output goes away, cpx stops quietly with the
//! status of a program killed by SIGPIPE, not with a panic message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Stdio};

#[test]
fn a_closed_stdout_is_not_a_panic() {
    // Completions need no card nor pcscd. The pipe's read end is closed before cpx is even
    // spawned, so its first write fails whatever the scheduler does. (Closing it after spawn
    // raced with cpx: on a loaded machine cpx could write its whole script into the pipe first.)
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_cpx"))
        .args(["completions", "bash"])
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(141), "{stderr}");
}
