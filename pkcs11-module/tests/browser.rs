//! Browsers log in with the emulated cards through the built module (issue 8): TLS client
//! authentication against an `openssl s_server` that requires a certificate from the test PKI.
//!
//! - Chromium, module in the user's NSS database, certificate picked by the
//!   `AutoSelectCertificateForUrls` policy: a CPS3 over TLS 1.2 (PKCS#1 v1.5), a CPS4 over
//!   TLS 1.3 (RSA-PSS), the same through p11-kit-proxy, and a CPS3 refused by a
//!   TLS-1.3-only server.
//! - Firefox ESR, module added by policies.json (`SecurityDevices`): the same two logins; and
//!   the module installed through the Mozilla native manifest by a WebExtension.
//! - Firefox's login figures (issue 15): two logins per card, the module's disk cache empty
//!   then filled, each in its own Firefox process; their exchanges go to
//!   target/ci-artifacts/browser-login-<card>-<cold|warm>.apdu for the benchmark's table.
//! - Firefox logged in with a CPS3 when another program logs the card out (VERIFY P1=FF through
//!   PC/SC, issue 13): its next TLS login, to a second server opened in the same window, asks
//!   for the PIN again before using the key — a second dialog, a second VERIFY answered 9000,
//!   no command refused by the card for want of a login — and the server gets the card's
//!   certificate.
//!
//! - The card in a PIN-pad reader (issue 17; the test driver cpx-ifd-pinpad, the PIN in its
//!   keypad script): Firefox logs in with no PIN typed and no password dialog (its "Protected
//!   Authentication" window kept as a screenshot); Chromium, which asks anyway, gets a text
//!   that is not the PIN, NSS drops it and the PIN comes from the pad. The card must have
//!   received exactly the keypad's VERIFY.
//!
//! The browsers run under Xvfb, and xdotool types the PIN into their dialog (a headless
//! browser hangs on it). Each login checks, in the server's own trace, that
//! it received the card's authentication certificate and the expected signature scheme, and
//! keeps a screenshot in target/ci-artifacts/. Everything started is killed at the end of each
//! trial, failed or not; system directories are replaced in private mount namespaces only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "clients/card_logout.rs"]
mod card_logout;
#[path = "clients/chromium.rs"]
mod chromium;
mod common;
#[path = "clients/display.rs"]
mod display;
#[path = "clients/firefox.rs"]
mod firefox;
#[path = "clients/pinpad.rs"]
mod pinpad;
#[path = "clients/server.rs"]
mod server;
#[path = "clients/support.rs"]
mod support;

use std::path::Path;
use std::process::ExitCode;
use std::sync::Mutex;

use chromium::Via;
use common::{insert, module_path, wait_alone};
use cpx_testkit::{Failed, SandboxConfig, Trial};
use cpx_vpcd::VirtualCard as _;
use server::Tls;
use support::{CPS3, CPS4, Card};

/// A browser sees every reader of the sandbox and would ask for the PIN of every card: one
/// trial, one card, at a time.
static TURN: Mutex<()> = Mutex::new(());

fn main() -> ExitCode {
    // Also the test PIN-pad reader (`cpx pinpad 00 00`), empty but for the PIN-pad trials.
    let config = SandboxConfig {
        pinpad: pinpad::driver_for_sandbox(),
        ..common::sandbox(4)
    };
    cpx_testkit::run_tests(&config, || {
        vec![
            Trial::test("chromium_cps3_tls12", || {
                with_card(CPS3, |so| chromium::login(so, CPS3, Tls::V12, Via::NssDb))
            }),
            Trial::test("chromium_cps4_tls13", || {
                with_card(CPS4, |so| chromium::login(so, CPS4, Tls::V13, Via::NssDb))
            }),
            Trial::test("chromium_p11_kit_proxy_cps4_tls13", || {
                with_card(CPS4, |so| chromium::login(so, CPS4, Tls::V13, Via::P11KitProxy))
            }),
            Trial::test("chromium_cps3_tls13_refused", || {
                with_card(CPS3, chromium::cps3_tls13_refused)
            }),
            Trial::test("firefox_policy_cps3_tls12", || {
                with_card(CPS3, |so| firefox::policy_login(so, CPS3, Tls::V12))
            }),
            Trial::test("firefox_policy_cps4_tls13", || {
                with_card(CPS4, |so| firefox::policy_login(so, CPS4, Tls::V13))
            }),
            Trial::test("firefox_relogin_after_card_logout_cps3_tls12", || {
                with_card_in_reader(CPS3, |so, reader| {
                    firefox::relogin_after_card_logout(so, CPS3, reader, Tls::V12)
                })
            }),
            Trial::test("firefox_login_figures_cps3_tls12", || {
                with_recorded_card(CPS3, |so, wire, atr| {
                    firefox::login_figures(so, CPS3, Tls::V12, wire, atr)
                })
            }),
            Trial::test("firefox_login_figures_cps4_tls13", || {
                with_recorded_card(CPS4, |so, wire, atr| {
                    firefox::login_figures(so, CPS4, Tls::V13, wire, atr)
                })
            }),
            Trial::test("firefox_native_manifest", || {
                with_card(CPS4, |so| firefox::native_manifest(so, CPS4))
            }),
            Trial::test("firefox_pinpad_cps3_tls12", || {
                with_pad(|so| firefox::pinpad_login(so, CPS3, Tls::V12))
            }),
            Trial::test("firefox_pinpad_cps4_tls13", || {
                with_pad(|so| firefox::pinpad_login(so, CPS4, Tls::V13))
            }),
            Trial::test("firefox_pinpad_off_asks_password_cps3", || {
                with_pad(|so| firefox::pinpad_off_asks_password(so, CPS3, Tls::V12))
            }),
            Trial::test("chromium_pinpad_cps4_tls13", || {
                with_pad(|so| chromium::pinpad_login(so, CPS4, Tls::V13))
            }),
        ]
    })
}

/// Runs `check` with `card` alone in the sandbox.
fn with_card(card: Card, check: impl FnOnce(&Path) -> Result<(), Failed>) -> Result<(), Failed> {
    with_card_in_reader(card, |so, _| check(so))
}

/// Runs `check`, which puts its card in the PIN-pad reader, with no other card in the sandbox.
fn with_pad(check: impl FnOnce(&Path) -> Result<(), Failed>) -> Result<(), Failed> {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    wait_alone()?;
    check(&module_path()?)
}

/// Runs `check` with `card` alone in the sandbox, given the module, the card's exchanges as
/// they are recorded, and its ATR.
fn with_recorded_card(
    card: Card,
    check: impl FnOnce(&Path, &cpx_testkit::Recording, &[u8]) -> Result<(), Failed>,
) -> Result<(), Failed> {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    wait_alone()?;
    let atr = cpx_testkit::emulated(card.stem)?.atr();
    let (_lease, _slot, wire) = cpx_testkit::insert_image(card.stem)?;
    check(&module_path()?, &wire, &atr)
}

/// Runs `check` with `card` alone in the sandbox, given the module and the card's reader.
fn with_card_in_reader(
    card: Card,
    check: impl FnOnce(&Path, &str) -> Result<(), Failed>,
) -> Result<(), Failed> {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    wait_alone()?;
    let (lease, _slot) = insert(card.stem)?;
    check(&module_path()?, &lease.name)
}
