//! The sandbox's files: with `CPX_PCSCD_DEBUG=1` pcscd's log holds every APDU, VERIFY with the
//! PIN included, so the log is 0600 in a 0700 directory (issue 13 item 9).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::os::unix::fs::PermissionsExt;

use cpx_testkit::{Sandbox, SandboxConfig};

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn debug_log_is_private_to_its_owner() {
    if std::env::var_os(cpx_testkit::ENV_SKIP).is_some() {
        return;
    }
    let config = SandboxConfig {
        entries: 1,
        debug: true,
        ..SandboxConfig::default()
    };
    let sandbox = Sandbox::start(&config).unwrap();
    let log = sandbox.log_path();
    let root = log.parent().unwrap();
    // pcscd has written to it (its readers are up), in debug mode.
    assert!(std::fs::metadata(&log).unwrap().len() > 0, "pcscd wrote nothing");
    assert_eq!(mode(root), 0o700, "{}", root.display());
    assert_eq!(mode(&log), 0o600, "{}", log.display());
}
