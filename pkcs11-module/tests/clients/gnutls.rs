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
use crate::support::{
    CPS3, Card, PIN, p11_kit_dirs, p11_kit_proxy, run_with_input, temp_dir, unshare_mount, utf8,
};

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

/// The token OpenSC 0.23 shows for a CPS3 (its own IAS-ECC/CPS driver, PKCS#15 emulation).
pub const OPENSC_CPS3_TOKEN: &str = "token=Code%20porteur%20de%20la%20carte%20CPS";

/// Debian's opensc-pkcs11 registers with p11-kit too: with its module file (the package's own,
/// copied) beside ours, every p11-kit user sees the CPS3 twice, once per module (p11tool, and
/// `pkcs11-tool` on p11-kit-proxy, which browsers and the engine load). With
/// `disable-in: p11-kit-proxy` in OpenSC's file (what docs/clients.md has an administrator put in
/// /etc/pkcs11/modules/opensc-pkcs11.module), p11-kit-proxy shows ours only; p11tool still both.
pub fn opensc_duplicate(so: &Path) -> Result<(), Failed> {
    let dir = temp_dir("p11-kit-opensc")?;
    let (modules, etc) = p11_kit_dirs(so, dir.path())?;
    let shipped = std::fs::read_to_string("/usr/share/p11-kit/modules/opensc-pkcs11.module")
        .map_err(|e| format!("opensc-pkcs11's p11-kit module file: {e} (package opensc-pkcs11)"))?;
    let opensc = modules.join("opensc-pkcs11.module");
    let proxy = p11_kit_proxy()?;
    // OpenSC gives each reader 4 slots and stops at 16 (max_virtual_slots): of the sandbox's 8
    // readers it would cover the first 4 it lists, and miss a card leased in another.
    let opensc_conf = dir.path().join("opensc.conf");
    std::fs::write(
        &opensc_conf,
        "app opensc-pkcs11 {\n  pkcs11 {\n    max_virtual_slots = 64;\n  }\n}\n",
    )?;
    let script = r#"set -e
mount --bind "$1" /usr/share/p11-kit/modules
if [ -d /etc/pkcs11 ]; then mount --bind "$2" /etc/pkcs11; fi
echo '--- p11tool'
p11tool --list-token-urls
echo '--- p11-kit-proxy'
pkcs11-tool --module "$3" -L
"#;
    for disabled in [false, true] {
        let mut text = shipped.clone();
        if disabled {
            text.push_str("\ndisable-in: p11-kit-proxy\n");
        }
        std::fs::write(&opensc, text)?;
        let mut args = unshare_mount()?;
        args.extend([
            "sh",
            "-c",
            script,
            "p11-kit-opensc",
            utf8(&modules),
            utf8(&etc),
            utf8(&proxy),
        ]);
        let env = [("OPENSC_CONF", utf8(&opensc_conf))];
        let (ok, out) = run_with_input("unshare", &args, &env, None)?;
        assert!(ok, "{out}");
        let (tool, via_proxy) = out
            .split_once("--- p11-kit-proxy")
            .ok_or_else(|| format!("no p11-kit-proxy listing:\n{out}"))?;
        let ours = format!("token={}", CPS3.token);
        assert!(
            tool.contains(&ours) && tool.contains(OPENSC_CPS3_TOKEN),
            "p11tool:\n{out}"
        );
        assert!(
            via_proxy.contains(&format!("token label        : {}", CPS3.token)),
            "{out}"
        );
        let opensc_seen = via_proxy.contains("token label        : Code porteur de la carte CPS");
        assert_eq!(opensc_seen, !disabled, "disable-in: {disabled}:\n{out}");
    }
    Ok(())
}
