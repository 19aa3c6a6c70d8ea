//! A server that offers TLS 1.2 **and** TLS 1.3, as most do: each client picks TLS 1.3 unless
//! capped, and a CPS3 cannot sign a TLS 1.3 CertificateVerify (RSA-PSS only, RFC 8446 §4.4.3;
//! the CPS3 signs PKCS#1 v1.5 only, docs/card-spec.md §4.1). These tests assert what
//! docs/clients.md's "TLS 1.2 cap" table says for `openssl s_client`, curl and `gnutls-cli`:
//! what a CPS3 user sees without the cap, that the cap makes the login work over TLS 1.2, that a
//! CPS4 needs no cap, and that the CPS3's OpenSSL setting breaks TLS 1.3 for a CPS4 (why it must
//! not be set machine-wide). Then curl with a configuration that loads only pkcs11-provider:
//! curl 7.88 uses the pkcs11 engine anyway, which without a module path loads p11-kit-proxy, so
//! the card is found only when the module is registered with p11-kit.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::path::Path;

use cpx_testkit::Failed;

use crate::openssl::{CPS3_SIGALGS, check_page, engine_conf, export_auth_cert, provider_conf};
use crate::server::{PKCS1_SHA256, PSS_SHA256, ServerPki, Tls, TlsServer};
use crate::support::{CPS3, CPS4, Card, PIN, p11_kit_dirs, run_with_input, unshare_mount, utf8};

const GET: &[u8] = b"GET / HTTP/1.0\r\n\r\n";

/// What OpenSSL prints when the server closes a TLS 1.3 handshake because the client sent no
/// certificate (alert 116): libssl found no TLS 1.3 scheme among the PKCS#1 v1.5 ones it was
/// told to use, so it sent an empty Certificate.
const OPENSSL_NO_CERT: &str = "tlsv13 alert certificate required";
/// The same alert as gnutls-cli prints it (GnuTLS saw the token has no RSA-PSS and sent none).
const GNUTLS_NO_CERT: &str = "Received alert [116]: Certificate is required";

/// The server saw no completed login: no handshake carried a CertificateVerify or was answered.
fn no_login(server: &TlsServer) {
    let handshakes = server.handshakes();
    assert!(!handshakes.is_empty(), "the client never reached the server");
    assert!(
        handshakes
            .iter()
            .all(|h| h.version == Some(Tls::V13) && h.client_signature.is_none() && !h.answered),
        "{handshakes:?}"
    );
}

/// `openssl s_client` (pkcs11 engine) with a CPS3 and the documented `-client_sigalgs`:
/// without `-tls1_2` the server picks TLS 1.3 and refuses the empty certificate; with it the
/// login works over TLS 1.2. Then pkcs11-provider with the same two options (the command
/// docs/clients.md gives for a CPS3).
pub fn s_client_cps3(so: &Path) -> Result<(), Failed> {
    let pki = ServerPki::new()?;
    let sigalgs = ["-client_sigalgs", CPS3_SIGALGS];
    let server = TlsServer::start_dual(&pki)?;
    let (ok, out) = crate::openssl::s_client_engine(so, &CPS3, &pki, &server, &sigalgs)?;
    assert!(
        !ok && out.contains(OPENSSL_NO_CERT),
        "s_client without -tls1_2:\n{out}"
    );
    no_login(&server);

    let server = TlsServer::start_dual(&pki)?;
    let capped = [&["-tls1_2"][..], &sigalgs].concat();
    let (ok, out) = crate::openssl::s_client_engine(so, &CPS3, &pki, &server, &capped)?;
    assert!(ok, "s_client -tls1_2:\n{out}");
    check_page(&out, &CPS3, Tls::V12)?;
    server.expect_login_over(&CPS3, PKCS1_SHA256, Tls::V12)?;

    let server = TlsServer::start_dual(&pki)?;
    let conf = provider_conf(so, pki.dir())?;
    let cert = export_auth_cert(so, &CPS3, pki.dir())?;
    let key = format!("{}?pin-value={PIN}", CPS3.key_uri());
    let connect = format!("127.0.0.1:{}", server.port);
    let args = [
        &["s_client", "-connect", &connect, "-CAfile", utf8(&pki.ca)][..],
        &["-cert", utf8(&cert), "-key", &key],
        &capped,
        &["-ign_eof"],
    ]
    .concat();
    let (ok, out) = run_with_input("openssl", &args, &[("OPENSSL_CONF", utf8(&conf))], Some(GET))?;
    assert!(ok, "s_client (provider) -tls1_2:\n{out}");
    check_page(&out, &CPS3, Tls::V12)?;
    server.expect_login_over(&CPS3, PKCS1_SHA256, Tls::V12)?;
    Ok(())
}

/// curl with `pkcs11:` URIs and an OpenSSL configuration given in OPENSSL_CONF; `extra` are more
/// curl options. Whether it succeeded, and its output.
fn curl(
    card: &Card,
    pki: &ServerPki,
    server: &TlsServer,
    conf: &Path,
    extra: &[&str],
) -> Result<(bool, String), Failed> {
    let key = format!("{};pin-value={PIN}", card.key_uri());
    let url = format!("{}/", server.origin());
    let cert = card.cert_uri();
    let args = [
        &["--silent", "--show-error", "--max-time", "60"][..],
        &["--cacert", utf8(&pki.ca), "--cert", &cert, "--key", &key],
        extra,
        &[&url],
    ]
    .concat();
    run_with_input("curl", &args, &[("OPENSSL_CONF", utf8(conf))], None)
}

/// curl with the CPS3 configuration (`ClientSignatureAlgorithms`): exit 56 and the alert
/// without `--tls-max 1.2` (a `MaxProtocol` line in the configuration does not cap curl, which
/// sets its own version range), a TLS 1.2 login with it.
pub fn curl_cps3(so: &Path) -> Result<(), Failed> {
    let pki = ServerPki::new()?;
    let conf = engine_conf(so, pki.dir(), true)?;
    let server = TlsServer::start_dual(&pki)?;
    let (ok, out) = curl(&CPS3, &pki, &server, &conf, &[])?;
    assert!(
        !ok && out.contains("curl: (56)") && out.contains(OPENSSL_NO_CERT),
        "curl without --tls-max:\n{out}"
    );
    no_login(&server);

    let server = TlsServer::start_dual(&pki)?;
    let (ok, out) = curl(&CPS3, &pki, &server, &conf, &["--tls-max", "1.2"])?;
    assert!(ok, "curl --tls-max 1.2:\n{out}");
    check_page(&out, &CPS3, Tls::V12)?;
    server.expect_login_over(&CPS3, PKCS1_SHA256, Tls::V12)?;
    Ok(())
}

/// `gnutls-cli` with a CPS3: alert 116 without a cap, a TLS 1.2 login with
/// `--priority NORMAL:-VERS-TLS1.3`.
pub fn gnutls_cps3(so: &Path) -> Result<(), Failed> {
    let pki = ServerPki::new()?;
    let server = TlsServer::start_dual(&pki)?;
    let (ok, out) = gnutls_cli(so, &CPS3, &pki, &server, &[])?;
    assert!(
        !ok && out.contains(GNUTLS_NO_CERT),
        "gnutls-cli without a cap:\n{out}"
    );
    assert!(out.contains("- Description: (TLS1.3-"), "{out}");
    no_login(&server);

    let server = TlsServer::start_dual(&pki)?;
    let (ok, out) = gnutls_cli(so, &CPS3, &pki, &server, &["--priority", "NORMAL:-VERS-TLS1.3"])?;
    assert!(ok, "gnutls-cli --priority NORMAL:-VERS-TLS1.3:\n{out}");
    assert!(out.contains("- Description: (TLS1.2-"), "{out}");
    server.expect_login_over(&CPS3, PKCS1_SHA256, Tls::V12)?;
    Ok(())
}

/// `gnutls-cli --provider` with the card's certificate and key URIs, PIN from GNUTLS_PIN.
fn gnutls_cli(
    so: &Path,
    card: &Card,
    pki: &ServerPki,
    server: &TlsServer,
    extra: &[&str],
) -> Result<(bool, String), Failed> {
    let provider = format!("--provider={}", utf8(so));
    let port = server.port.to_string();
    let (cert, key) = (card.cert_uri(), card.key_uri());
    let args = [
        &[&provider, "--x509cafile", utf8(&pki.ca)][..],
        &["--x509certfile", &cert, "--x509keyfile", &key],
        extra,
        &["-p", &port, "127.0.0.1"],
    ]
    .concat();
    run_with_input("gnutls-cli", &args, &[("GNUTLS_PIN", PIN)], Some(GET))
}

/// A CPS4 needs no cap: s_client, curl and gnutls-cli, with no version option, log in over
/// TLS 1.3 with RSA-PSS (each against its own server).
pub fn cps4_no_cap(so: &Path) -> Result<(), Failed> {
    let pki = ServerPki::new()?;
    let server = TlsServer::start_dual(&pki)?;
    let (ok, out) = crate::openssl::s_client_engine(so, &CPS4, &pki, &server, &[])?;
    assert!(ok, "s_client:\n{out}");
    check_page(&out, &CPS4, Tls::V13)?;
    server.expect_login_over(&CPS4, PSS_SHA256, Tls::V13)?;

    let server = TlsServer::start_dual(&pki)?;
    let conf = engine_conf(so, pki.dir(), false)?;
    let (ok, out) = curl(&CPS4, &pki, &server, &conf, &[])?;
    assert!(ok, "curl:\n{out}");
    check_page(&out, &CPS4, Tls::V13)?;
    server.expect_login_over(&CPS4, PSS_SHA256, Tls::V13)?;

    let server = TlsServer::start_dual(&pki)?;
    let (ok, out) = gnutls_cli(so, &CPS4, &pki, &server, &[])?;
    assert!(
        ok && out.contains("- Description: (TLS1.3-"),
        "gnutls-cli:\n{out}"
    );
    server.expect_login_over(&CPS4, PSS_SHA256, Tls::V13)?;
    Ok(())
}

/// The CPS3's `ClientSignatureAlgorithms` (PKCS#1 v1.5 only) in the configuration a CPS4 user's
/// curl reads: TLS 1.3 then fails as for a CPS3, although the CPS4 can sign it. Machine-wide
/// (in /etc/ssl/openssl.cnf) it would do the same to every RSA client key.
pub fn cps3_setting_breaks_cps4(so: &Path) -> Result<(), Failed> {
    let pki = ServerPki::new()?;
    let conf = engine_conf(so, pki.dir(), true)?;
    let server = TlsServer::start_dual(&pki)?;
    let (ok, out) = curl(&CPS4, &pki, &server, &conf, &[])?;
    assert!(
        !ok && out.contains(OPENSSL_NO_CERT),
        "curl, CPS4 with the CPS3 setting:\n{out}"
    );
    no_login(&server);
    Ok(())
}

/// curl with a configuration that loads pkcs11-provider only (no engine section): curl 7.88
/// still loads the pkcs11 engine for `pkcs11:` URIs, and the engine, given no module, loads
/// p11-kit-proxy. In a private mount namespace, p11-kit's module directory holds first nothing
/// (curl exits 58: the engine cannot load the certificate), then only our module file (the
/// login works).
pub fn curl_provider_needs_p11_kit(so: &Path) -> Result<(), Failed> {
    let pki = ServerPki::new()?;
    let conf = provider_conf(so, pki.dir())?;
    let (modules, etc) = p11_kit_dirs(so, pki.dir())?;
    let empty = pki.dir().join("p11-kit-empty");
    std::fs::create_dir_all(&empty)?;
    let key = format!("{};pin-value={PIN}", CPS4.key_uri());
    let cert = CPS4.cert_uri();
    let script = r#"set -e
mount --bind "$1" /usr/share/p11-kit/modules
if [ -d /etc/pkcs11 ]; then mount --bind "$2" /etc/pkcs11; fi
shift 2
exec "$@"
"#;
    for (dir, works) in [(&empty, false), (&modules, true)] {
        let server = TlsServer::start(&pki, Tls::V13)?;
        let url = format!("{}/", server.origin());
        let mut args = unshare_mount()?;
        args.extend(["sh", "-c", script, "curl-p11-kit", utf8(dir), utf8(&etc)]);
        args.extend(["curl", "--silent", "--show-error", "--max-time", "60"]);
        args.extend(["--cacert", utf8(&pki.ca), "--cert", &cert, "--key", &key, &url]);
        let (ok, out) = run_with_input("unshare", &args, &[("OPENSSL_CONF", utf8(&conf))], None)?;
        if works {
            assert!(
                ok,
                "curl, provider configuration, cpx registered with p11-kit:\n{out}"
            );
            check_page(&out, &CPS4, Tls::V13)?;
            server.expect_login(&CPS4, PSS_SHA256)?;
        } else {
            assert!(
                !ok && out.contains("curl: (58)") && out.contains("ssl engine cannot load client cert"),
                "curl, provider configuration, nothing registered with p11-kit:\n{out}"
            );
            assert!(!server.any_client_certificate(), "{}", server.log());
        }
    }
    Ok(())
}
