//! Faults a workstation inflicts on the middleware, through the built module, pcscd, vpcd and
//! the emulated CPS3 and CPS4 (issue 9): the card pulled out in the middle of a signature, a
//! PIN change and a certificate read; the card reset by another program between C_Login and
//! C_Sign; another card put in the same reader under an open session; pcscd killed and
//! restarted; a reader gone. Expected every time: a precise return code, no crash, no hang
//! (every call is bounded), recovery once the card is back, nothing sent to the wrong card, no
//! PIN presented behind the application's back, no PIN try spent.
//!
//! The disk cache is off (`CPX_PKCS11_CACHE=off`, set by re-running this binary) so that a
//! certificate read goes to the card. Bugs found in the module are marked in `faults/known.rs`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

mod common;

#[path = "faults/known.rs"]
mod known;
#[path = "faults/pcscd.rs"]
mod pcscd;
#[path = "faults/pulled.rs"]
mod pulled;
#[path = "faults/rig.rs"]
mod rig;
#[path = "faults/swapped.rs"]
mod swapped;

use std::process::ExitCode;

use cpx_testkit::{SandboxConfig, Trial};
use rig::Key;

const CACHE_ENV: &str = "CPX_PKCS11_CACHE";

fn main() -> ExitCode {
    if let Some(code) = pcscd::child_role() {
        return code;
    }
    // This process cannot change its own environment (no unsafe): run the suite again with
    // the disk cache off, so certificate reads reach the card.
    if std::env::var_os(CACHE_ENV).is_none_or(|v| v != "off") {
        return rerun_with_cache_off();
    }
    cpx_testkit::run_tests(&SandboxConfig::default(), || {
        let mut trials = Vec::new();
        for stem in ["cps3-doctor", "cps4-doctor"] {
            let g = &stem[..4];
            for (key, name) in [
                (Key::Signature, "signature"),
                (Key::Authentication, "authentication"),
            ] {
                trials.push(Trial::test(
                    format!("{g}_pulled_during_sign_{name}_key"),
                    move || pulled::during_sign(stem, key),
                ));
            }
            for (executes, when) in [(false, "before"), (true, "after")] {
                trials.push(Trial::test(
                    format!("{g}_pulled_during_set_pin_{when}_the_card_executes"),
                    move || pulled::during_set_pin(stem, executes),
                ));
            }
            trials.push(Trial::test(
                format!("{g}_pulled_during_certificate_read"),
                move || pulled::during_certificate_read(stem),
            ));
            trials.push(Trial::test(
                format!("{g}_reset_by_another_program_between_login_and_sign"),
                move || swapped::reset_between_login_and_sign(stem),
            ));
        }
        trials.push(Trial::test("cps3_other_card_in_the_same_reader", || {
            swapped::other_card("cps3-doctor", "cps3-pharmacist")
        }));
        trials.push(Trial::test("cps4_other_card_in_the_same_reader", || {
            swapped::other_card("cps4-doctor", "cps3-pharmacist")
        }));
        trials.push(Trial::test(
            "pcscd_killed_and_restarted_then_reader_gone",
            pcscd::killed_and_restarted,
        ));
        trials
    })
}

fn rerun_with_cache_off() -> ExitCode {
    let status = std::env::current_exe().and_then(|exe| {
        std::process::Command::new(exe)
            .args(std::env::args_os().skip(1))
            .env(CACHE_ENV, "off")
            .status()
    });
    match status {
        Ok(s) if s.success() => ExitCode::SUCCESS,
        Ok(s) => ExitCode::from(u8::try_from(s.code().unwrap_or(1)).unwrap_or(1)),
        Err(e) => {
            eprintln!("cannot re-run the test binary: {e}");
            ExitCode::FAILURE
        }
    }
}
