//! Real TLS clients log in with the emulated cards through the built module (issue 8): OpenSSL
//! (`s_client` and curl through the pkcs11 engine, `pkeyutl` and `s_client` through
//! pkcs11-provider) and GnuTLS (`gnutls-cli`, the module given directly and through p11-kit),
//! against an `openssl s_server` that requires a client certificate from the test PKI. A CPS3
//! logs in over TLS 1.2 (PKCS#1 v1.5), a CPS4 over TLS 1.3 (RSA-PSS); each test reads, in the
//! server's own trace, the certificate it received and the client's signature scheme. Against a
//! server offering TLS 1.2 and 1.3, each client's TLS 1.2 cap for a CPS3 (versions.rs). S/MIME
//! signatures by NSS's cmsutil and OpenSSL's `cms`, verified by both (smime.rs). The browsers are
//! in browser.rs; the commands are documented in docs/clients.md.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;
#[path = "clients/gnutls.rs"]
mod gnutls;
#[path = "clients/openssl.rs"]
mod openssl;
#[path = "clients/server.rs"]
mod server;
#[path = "clients/smime.rs"]
mod smime;
#[path = "clients/support.rs"]
mod support;
#[path = "clients/versions.rs"]
mod versions;

use std::path::Path;
use std::process::ExitCode;
use std::sync::Mutex;

use common::{insert, module_path, wait_alone};
use cpx_testkit::{Failed, Trial};
use gnutls::Registration;
use server::Tls;
use support::{CPS3, CPS4};

/// Every client lists every reader of the sandbox, and the cards of one trial carry the same
/// token labels as those of another: the trials take turns.
static TURN: Mutex<()> = Mutex::new(());

fn main() -> ExitCode {
    cpx_testkit::run_tests(&common::sandbox(4), || {
        vec![
            Trial::test("openssl_engine_cps3_tls12", || {
                with_cards(|so| openssl::s_client_login(so, CPS3, Tls::V12))
            }),
            Trial::test("openssl_engine_cps4_tls13", || {
                with_cards(|so| openssl::s_client_login(so, CPS4, Tls::V13))
            }),
            Trial::test("openssl_engine_cps3_tls13_refused", || {
                with_cards(|so| openssl::cps3_tls13_refused(so).map(drop))
            }),
            Trial::test("openssl_engine_cps3_tls13_reason_logged", || {
                with_cards(openssl::cps3_tls13_reason_logged)
            }),
            Trial::test("curl_engine_cps3_tls12", || {
                with_cards(|so| openssl::curl_login(so, CPS3, Tls::V12))
            }),
            Trial::test("curl_engine_cps4_tls13", || {
                with_cards(|so| openssl::curl_login(so, CPS4, Tls::V13))
            }),
            Trial::test("openssl_provider_signs", || with_cards(openssl::provider_signs)),
            Trial::test("openssl_provider_cps3_tls12", || {
                with_cards(|so| openssl::provider_login(so, CPS3, Tls::V12))
            }),
            Trial::test("openssl_provider_cps4_tls13", || {
                with_cards(|so| openssl::provider_login(so, CPS4, Tls::V13))
            }),
            Trial::test("gnutls_cli_provider_cps3_tls12", || {
                with_cards(|so| gnutls::gnutls_login(so, CPS3, Tls::V12, Registration::Provider))
            }),
            Trial::test("gnutls_cli_p11_kit_cps4_tls13", || {
                with_cards(|so| gnutls::gnutls_login(so, CPS4, Tls::V13, Registration::P11Kit))
            }),
            Trial::test("p11_kit_opensc_shows_cps3_twice", || {
                with_cards(gnutls::opensc_duplicate)
            }),
            Trial::test("tls12_13_server_s_client_cps3_needs_cap", || {
                with_cards(versions::s_client_cps3)
            }),
            Trial::test("tls12_13_server_curl_cps3_needs_cap", || {
                with_cards(versions::curl_cps3)
            }),
            Trial::test("tls12_13_server_gnutls_cli_cps3_needs_cap", || {
                with_cards(versions::gnutls_cps3)
            }),
            Trial::test("tls12_13_server_cps4_no_cap", || {
                with_cards(versions::cps4_no_cap)
            }),
            Trial::test("tls12_13_server_cps3_setting_breaks_cps4", || {
                with_cards(versions::cps3_setting_breaks_cps4)
            }),
            Trial::test("curl_provider_config_needs_p11_kit", || {
                with_cards(versions::curl_provider_needs_p11_kit)
            }),
            Trial::test("smime_nss_cmsutil_cps3", || {
                with_cards(|so| smime::nss_signs(so, CPS3))
            }),
            Trial::test("smime_nss_cmsutil_cps4", || {
                with_cards(|so| smime::nss_signs(so, CPS4))
            }),
            Trial::test("smime_openssl_cms_verified_by_nss", || {
                with_cards(smime::openssl_signs)
            }),
        ]
    })
}

/// Runs `check` with an emulated CPS3 and CPS4 inserted, alone in the sandbox.
fn with_cards(check: impl FnOnce(&Path) -> Result<(), Failed>) -> Result<(), Failed> {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    wait_alone()?;
    let _cps3 = insert(CPS3.stem)?;
    let _cps4 = insert(CPS4.stem)?;
    check(&module_path()?)
}
