//! OpenSSL 3 clients with `pkcs11:` URIs: `s_client` and `curl` through the pkcs11 engine
//! (libengine-pkcs11-openssl), `pkeyutl` and `s_client` through pkcs11-provider.
//!
//! OpenSSL picks the client's CertificateVerify scheme from the server's list and the key's
//! type alone: an RSA key gets RSA-PSS first, even over TLS 1.2, whatever the token can do. A
//! CPS3 signs PKCS#1 v1.5 only (docs/card-spec.md §4.1, Tableau 2), so OpenSSL clients of a CPS3
//! restrict the schemes (`-client_sigalgs`, or `ClientSignatureAlgorithms` in the config), and
//! a TLS 1.3 server, which accepts RSA-PSS only, cannot be used with a CPS3 at all.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::path::{Path, PathBuf};

use cpx_testkit::Failed;

use crate::server::{PKCS1_SHA256, PSS_SHA256, ServerPki, Tls, TlsServer};
use crate::support::{AUTH_CERT_LABEL, CPS3, CPS4, Card, PIN, run, run_with_input, utf8};

/// What a CPS3 offers OpenSSL for its CertificateVerify: PKCS#1 v1.5 only.
pub const CPS3_SIGALGS: &str = "RSA+SHA256:RSA+SHA384:RSA+SHA512";

const GET: &[u8] = b"GET / HTTP/1.0\r\n\r\n";

/// The card's authentication certificate read through the module by `pkcs11-tool`, as PEM,
/// checked to be the one the card image carries.
pub fn export_auth_cert(so: &Path, card: &Card, dir: &Path) -> Result<PathBuf, Failed> {
    let der = dir.join(format!("{}-auth.der", card.generation()));
    read_cert(so, card, AUTH_CERT_LABEL, &der)?;
    assert_eq!(
        std::fs::read(&der)?,
        std::fs::read(card.auth_der())?,
        "{}",
        card.token
    );
    let pem = dir.join(format!("{}-auth.pem", card.generation()));
    run(
        "openssl",
        &["x509", "-inform", "der", "-in", utf8(&der), "-out", utf8(&pem)],
        &[],
    )?;
    Ok(pem)
}

/// The certificate labelled `label` on the card, read through the module by `pkcs11-tool` into
/// `der`.
pub fn read_cert(so: &Path, card: &Card, label: &str, der: &Path) -> Result<(), Failed> {
    run(
        "pkcs11-tool",
        &[
            "--module",
            utf8(so),
            "--token-label",
            card.token,
            "--read-object",
            "--type",
            "cert",
            "--label",
            label,
            "-o",
            utf8(der),
        ],
        &[],
    )
    .map(drop)
}

/// `openssl s_client` with the engine key; `extra` are more s_client options. Returns whether
/// it succeeded and its output (the page, s_client's report, the module's log at debug).
pub fn s_client_engine(
    so: &Path,
    card: &Card,
    pki: &ServerPki,
    server: &TlsServer,
    extra: &[&str],
) -> Result<(bool, String), Failed> {
    let cert = export_auth_cert(so, card, pki.dir())?;
    let key = format!("{};pin-value={PIN}", card.key_uri());
    let connect = format!("127.0.0.1:{}", server.port);
    let args = [
        &["s_client", "-connect", &connect, "-CAfile", utf8(&pki.ca)][..],
        &["-engine", "pkcs11", "-keyform", "engine", "-key", &key],
        &["-cert", utf8(&cert), "-ign_eof"],
        extra,
    ]
    .concat();
    run_with_input(
        "openssl",
        &args,
        &[("PKCS11_MODULE_PATH", utf8(so)), ("CPX_PKCS11_LOG", "debug")],
        Some(GET),
    )
}

/// The page s_server's `-www` sends shows the session's protocol and the client certificate.
pub fn check_page(page: &str, card: &Card, tls: Tls) -> Result<(), Failed> {
    assert!(
        page.contains(&format!("Protocol  : {}", tls.openssl_name())),
        "{page}"
    );
    let pem = card.auth_pem()?;
    let (_, after) = page
        .split_once("Client certificate")
        .ok_or_else(|| format!("the page shows no client certificate:\n{page}"))?;
    assert!(
        after.contains(pem.trim()),
        "the page shows another certificate:\n{page}"
    );
    Ok(())
}

/// Mutual TLS with the engine: a CPS3 over TLS 1.2 (PKCS#1 v1.5 schemes only) or a CPS4 over
/// TLS 1.3 (RSA-PSS); the server receives the card's certificate and a valid signature.
pub fn s_client_login(so: &Path, card: Card, tls: Tls) -> Result<(), Failed> {
    let pki = ServerPki::new()?;
    let server = TlsServer::start(&pki, tls)?;
    let (extra, scheme): (&[&str], _) = if card.stem == CPS3.stem {
        (&["-client_sigalgs", CPS3_SIGALGS], PKCS1_SHA256)
    } else {
        (&[], PSS_SHA256)
    };
    let (ok, out) = s_client_engine(so, &card, &pki, &server, extra)?;
    assert!(ok, "s_client failed:\n{out}");
    check_page(&out, &card, tls)?;
    server.expect_login(&card, scheme)?;
    Ok(())
}

/// A CPS3 against a TLS-1.3-only server: the engine asks the module for CKM_RSA_PKCS_PSS, the
/// module refuses it, and the handshake fails before the server has any signature.
/// Returns the module's log.
pub fn cps3_tls13_refused(so: &Path) -> Result<String, Failed> {
    let pki = ServerPki::new()?;
    let server = TlsServer::start(&pki, Tls::V13)?;
    let (ok, out) = s_client_engine(so, &CPS3, &pki, &server, &[])?;
    assert!(!ok, "a CPS3 cannot sign a TLS 1.3 CertificateVerify:\n{out}");
    assert!(
        out.lines()
            .any(|l| l.contains("C_SignInit") && l.contains("CKR_MECHANISM_INVALID")),
        "the module's log shows no refused C_SignInit:\n{out}"
    );
    let handshakes = server.handshakes();
    assert!(
        handshakes
            .iter()
            .all(|h| h.client_signature.is_none() && !h.answered),
        "{handshakes:?}"
    );
    Ok(out)
}

/// The module's log must say why: on one line at warning level or above (a log at `warn` is
/// what a user is asked for), the mechanism (CKM_RSA_PKCS_PSS) and that a CPS3 has not got it.
/// Case-insensitive, so that `Cps3` (the generation's Debug form) counts.
pub fn cps3_tls13_reason_logged(so: &Path) -> Result<(), Failed> {
    let out = cps3_tls13_refused(so)?;
    let reason = out.lines().find(|l| {
        let l = l.to_uppercase();
        (l.contains(" WARN ") || l.contains(" ERROR "))
            && l.contains("CKM_RSA_PKCS_PSS")
            && l.contains("CPS3")
    });
    assert!(
        reason.is_some(),
        "the module's log does not say that CKM_RSA_PKCS_PSS is not available on a CPS3 \
         (expected a WARN line naming both, from C_SignInit):\n{out}"
    );
    Ok(())
}

/// An OpenSSL configuration that loads the pkcs11 engine with our module (what a user puts in
/// OPENSSL_CONF or openssl.cnf); for a CPS3 it also limits the client's signature schemes for
/// every program (curl has no option for it).
pub fn engine_conf(so: &Path, dir: &Path, pkcs1_only: bool) -> Result<PathBuf, Failed> {
    let engines = openssl_dir("-e", "ENGINESDIR")?;
    let mut conf = format!(
        "openssl_conf = openssl_init\n\
         [openssl_init]\n\
         engines = engine_section\n\
         ssl_conf = ssl_section\n\
         [engine_section]\n\
         pkcs11 = pkcs11_section\n\
         [pkcs11_section]\n\
         engine_id = pkcs11\n\
         dynamic_path = {engines}/pkcs11.so\n\
         MODULE_PATH = {}\n\
         init = 0\n\
         [ssl_section]\n\
         system_default = system_default_section\n\
         [system_default_section]\n\
         CipherString = DEFAULT:@SECLEVEL=2\n",
        utf8(so)
    );
    if pkcs1_only {
        conf.push_str(&format!("ClientSignatureAlgorithms = {CPS3_SIGALGS}\n"));
    }
    let path = dir.join(if pkcs1_only {
        "engine-cps3.cnf"
    } else {
        "engine.cnf"
    });
    std::fs::write(&path, conf)?;
    Ok(path)
}

/// `openssl version -e` / `-m`: where this OpenSSL looks for engines / providers.
fn openssl_dir(flag: &str, name: &str) -> Result<String, Failed> {
    let out = run("openssl", &["version", flag], &[])?;
    let dir = out
        .trim()
        .strip_prefix(&format!("{name}: "))
        .map(|d| d.trim_matches('"').to_string())
        .ok_or_else(|| format!("openssl version {flag}: {out}"))?;
    Ok(dir)
}

/// curl (Debian's, OpenSSL backend) with both the certificate and the key given as `pkcs11:`
/// URIs: curl then uses the pkcs11 engine by itself; the engine and our module come from
/// OPENSSL_CONF.
pub fn curl_login(so: &Path, card: Card, tls: Tls) -> Result<(), Failed> {
    let pki = ServerPki::new()?;
    let server = TlsServer::start(&pki, tls)?;
    let cps3 = card.stem == CPS3.stem;
    let conf = engine_conf(so, pki.dir(), cps3)?;
    let key = format!("{};pin-value={PIN}", card.key_uri());
    let url = format!("{}/", server.origin());
    let page = run(
        "curl",
        &[
            "--silent",
            "--show-error",
            "--max-time",
            "60",
            "--cacert",
            utf8(&pki.ca),
            "--cert",
            &card.cert_uri(),
            "--key",
            &key,
            &url,
        ],
        &[("OPENSSL_CONF", utf8(&conf))],
    )?;
    check_page(&page, &card, tls)?;
    server.expect_login(&card, if cps3 { PKCS1_SHA256 } else { PSS_SHA256 })?;
    Ok(())
}

/// The configuration that loads pkcs11-provider (bookworm-backports) with our module. No
/// `pkcs11-module-quirks = no-deinit`: unlike softhsm2, our module finalises cleanly.
pub fn provider_conf(so: &Path, dir: &Path) -> Result<PathBuf, Failed> {
    let modules = openssl_dir("-m", "MODULESDIR")?;
    let provider = Path::new(&modules).join("pkcs11.so");
    if !provider.exists() {
        return Err(format!(
            "{} is missing: install pkcs11-provider (scripts/system-packages.sh takes it from \
             bookworm-backports)",
            provider.display()
        )
        .into());
    }
    let conf = format!(
        "openssl_conf = openssl_init\n\
         [openssl_init]\n\
         providers = provider_section\n\
         [provider_section]\n\
         default = default_section\n\
         pkcs11 = pkcs11_section\n\
         [default_section]\n\
         activate = 1\n\
         [pkcs11_section]\n\
         module = {}\n\
         pkcs11-module-path = {}\n\
         activate = 1\n",
        provider.display(),
        utf8(so)
    );
    let path = dir.join("provider.cnf");
    std::fs::write(&path, conf)?;
    Ok(path)
}

/// pkcs11-provider: both keys of both cards sign a SHA-256 digest with PKCS#1 v1.5, and the
/// CPS4's authentication key also with PSS; each signature is checked with the certificate's
/// public key by OpenSSL's default provider alone.
pub fn provider_signs(so: &Path) -> Result<(), Failed> {
    let pki = ServerPki::new()?;
    let dir = pki.dir();
    let conf = provider_conf(so, dir)?;
    let data = dir.join("data.txt");
    std::fs::write(&data, "Feuille de soins du 22 novembre 2026\n")?;
    let digest = dir.join("data.sha256");
    run(
        "openssl",
        &["dgst", "-sha256", "-binary", "-out", utf8(&digest), utf8(&data)],
        &[],
    )?;
    let pss: &[&str] = &[
        "-pkeyopt",
        "rsa_padding_mode:pss",
        "-pkeyopt",
        "rsa_pss_saltlen:digest",
    ];
    let cases: [(Card, &str, &str, &[&str]); 5] = [
        (CPS3, "CPS_PRIV_AUT", "Certificat d'Authentification CPS", &[]),
        (CPS3, "CPS_PRIV_SIG", "Certificat de Signature CPS", &[]),
        (CPS4, "CPS_PRIV_AUT", "Certificat d'Authentification CPS", &[]),
        (CPS4, "CPS_PRIV_SIG", "Certificat de Signature CPS", &[]),
        (CPS4, "CPS_PRIV_AUT", "Certificat d'Authentification CPS", pss),
    ];
    for (i, (card, key, label, opts)) in cases.into_iter().enumerate() {
        let sig = dir.join(format!("{i}.sig"));
        let uri = format!(
            "pkcs11:token={};object={key};type=private?pin-value={PIN}",
            card.token
        );
        let sign = [
            &["pkeyutl", "-sign", "-inkey", &uri, "-pkeyopt", "digest:sha256"][..],
            opts,
            &["-in", utf8(&digest), "-out", utf8(&sig)],
        ]
        .concat();
        run("openssl", &sign, &[("OPENSSL_CONF", utf8(&conf))])?;
        let der = dir.join(format!("{i}.der"));
        read_cert(so, &card, label, &der)?;
        let public = dir.join(format!("{i}.pub.pem"));
        run(
            "openssl",
            &[
                "x509",
                "-inform",
                "der",
                "-in",
                utf8(&der),
                "-pubkey",
                "-noout",
                "-out",
                utf8(&public),
            ],
            &[],
        )?;
        let verify = [
            &[
                "pkeyutl",
                "-verify",
                "-pubin",
                "-inkey",
                utf8(&public),
                "-pkeyopt",
                "digest:sha256",
            ][..],
            opts,
            &["-in", utf8(&digest), "-sigfile", utf8(&sig)],
        ]
        .concat();
        let verified = run("openssl", &verify, &[])?;
        assert!(
            verified.contains("Signature Verified Successfully"),
            "{} {key} {opts:?}: {verified}",
            card.token
        );
    }
    Ok(())
}

/// Mutual TLS through pkcs11-provider: the key is a `pkcs11:` URI given to `-key` directly.
/// The provider knows the token's mechanisms, but libssl still picks the scheme: a CPS3 needs
/// `-client_sigalgs` as with the engine.
pub fn provider_login(so: &Path, card: Card, tls: Tls) -> Result<(), Failed> {
    let pki = ServerPki::new()?;
    let server = TlsServer::start(&pki, tls)?;
    let conf = provider_conf(so, pki.dir())?;
    let cert = export_auth_cert(so, &card, pki.dir())?;
    let key = format!("{}?pin-value={PIN}", card.key_uri());
    let connect = format!("127.0.0.1:{}", server.port);
    let cps3 = card.stem == CPS3.stem;
    let extra: &[&str] = if cps3 {
        &["-client_sigalgs", CPS3_SIGALGS]
    } else {
        &[]
    };
    let args = [
        &["s_client", "-connect", &connect, "-CAfile", utf8(&pki.ca)][..],
        &["-key", &key, "-cert", utf8(&cert), "-ign_eof"],
        extra,
    ]
    .concat();
    let (ok, out) = run_with_input("openssl", &args, &[("OPENSSL_CONF", utf8(&conf))], Some(GET))?;
    assert!(ok, "s_client (provider) failed:\n{out}");
    check_page(&out, &card, tls)?;
    server.expect_login(&card, if cps3 { PKCS1_SHA256 } else { PSS_SHA256 })?;
    Ok(())
}
