//! GnuTLS: `gnutls-cli` logs in with the card's certificate and key given as `pkcs11:` URIs,
//! the module given directly (`--provider`) or registered with p11-kit by the module file we
//! ship. GnuTLS asks the token for CKM_RSA_PKCS_PSS before choosing a scheme, so it needs no
//! option for a CPS3 over TLS 1.2.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::path::Path;

use cpx_testkit::Failed;

use crate::server::{PKCS1_SHA256, PSS_SHA256, ServerPki, Tls, TlsServer};
use crate::support::{CPS3, Card, PIN, p11_kit_dirs, run_with_input, unshare_mount, utf8};

const GET: &[u8] = b"GET / HTTP/1.0\r\n\r\n";

/// How the module reaches GnuTLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registration {
    /// `gnutls-cli --provider=/path/libcpx_pkcs11.so`.
    Provider,
    /// packaging/p11-kit/cpx.module in p11-kit's module directory (what the Debian package
    /// installs); p11-kit-proxy then offers the card to every GnuTLS program.
    P11Kit,
}

/// `gnutls-cli` against the server; the PIN comes from GNUTLS_PIN (not the command line).
pub fn gnutls_login(so: &Path, card: Card, tls: Tls, how: Registration) -> Result<(), Failed> {
    let pki = ServerPki::new()?;
    let server = TlsServer::start(&pki, tls)?;
    let port = server.port.to_string();
    let cert = card.cert_uri();
    let key = card.key_uri();
    let provider = format!("--provider={}", utf8(so));
    let mut cli: Vec<&str> = vec!["gnutls-cli"];
    if how == Registration::Provider {
        cli.push(&provider);
    }
    cli.extend([
        "--x509cafile",
        utf8(&pki.ca),
        "--x509certfile",
        &cert,
        "--x509keyfile",
        &key,
        "-p",
        &port,
        "127.0.0.1",
    ]);
    let env = [("GNUTLS_PIN", PIN), ("CPX_PKCS11_LOG", "info")];
    let (ok, out) = match how {
        Registration::Provider => run_with_input(cli[0], &cli[1..], &env, Some(GET))?,
        Registration::P11Kit => {
            let (modules, etc) = p11_kit_dirs(so, pki.dir())?;
            let script = r#"set -e
mount --bind "$1" /usr/share/p11-kit/modules
if [ -d /etc/pkcs11 ]; then mount --bind "$2" /etc/pkcs11; fi
shift 2
echo '--- p11tool'
p11tool --list-token-urls
echo '--- gnutls-cli'
exec "$@"
"#;
            let mut args = unshare_mount()?;
            args.extend(["sh", "-c", script, "gnutls-p11-kit", utf8(&modules), utf8(&etc)]);
            args.extend(&cli);
            run_with_input("unshare", &args, &env, Some(GET))?
        }
    };
    assert!(ok, "gnutls-cli failed:\n{out}");
    if how == Registration::P11Kit {
        assert!(
            out.contains(&format!("token={}", card.token)),
            "p11tool does not see the card through p11-kit:\n{out}"
        );
    }
    // "- Description: (TLS1.2-X.509)-(ECDHE-SECP256R1)-(RSA-SHA256)-(AES-256-GCM)"
    let version = if tls == Tls::V13 { "TLS1.3" } else { "TLS1.2" };
    assert!(out.contains(&format!("- Description: ({version}-")), "{out}");
    assert!(
        out.contains("- Successfully sent 1 certificate(s) to server."),
        "{out}"
    );
    let pem = card.auth_pem()?;
    assert!(
        out.contains(pem.trim()),
        "the page shows another certificate:\n{out}"
    );
    let scheme = if card.stem == CPS3.stem {
        PKCS1_SHA256
    } else {
        PSS_SHA256
    };
    server.expect_login(&card, scheme)?;
    Ok(())
}
