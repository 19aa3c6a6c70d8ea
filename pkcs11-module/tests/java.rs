//! Java through SunPKCS11 (issue 19): hospital software is often Java and loads the module with
//! a SunPKCS11 configuration file. A small Java client (tests/java/CpxJavaClient.java), compiled
//! here with `javac` together with the documented key manager
//! (docs/examples/java/AuthKeyManager.java, so the example cannot rot), runs against the emulated
//! cards in the private pcscd: it lists the key store, signs with both keys and verifies each
//! signature with the certificate, and logs in over TLS to the `openssl s_server` of the clients
//! test, which traces what it received. What Java does on each card is documented in
//! docs/clients.md, section Java.
//!
//! No JDK is not a skip: the test fails and says which package to install.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;
#[path = "clients/server.rs"]
mod server;
#[path = "clients/support.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Mutex, OnceLock};

use common::{insert, module_path, wait_alone};
use cpx_testkit::{Failed, Trial};
use server::{PKCS1_SHA256, PSS_SHA256, ServerPki, Tls, TlsServer};
use support::{AUTH_CERT_LABEL, CPS3, CPS4, Card, PIN, run, run_with_input, temp_dir, utf8, wait_until};

/// The label (SunPKCS11 alias) of the signature certificate on both generations.
const SIGN_CERT_LABEL: &str = "Certificat de Signature CPS";

/// The cards carry the same token labels from one trial to the next: the trials take turns.
static TURN: Mutex<()> = Mutex::new(());

fn main() -> ExitCode {
    cpx_testkit::run_tests(&common::sandbox(1), || {
        vec![
            Trial::test("java_keystore_signatures_cps3", || {
                with_card(CPS3, SlotBy::Index, |j| keystore_signatures(j, CPS3))
            }),
            Trial::test("java_keystore_signatures_cps4", || {
                with_card(CPS4, SlotBy::Index, |j| keystore_signatures(j, CPS4))
            }),
            Trial::test("java_auth_key_manager_cps3_tls12", || {
                with_card(CPS3, SlotBy::Id, |j| auth_login(j, CPS3, Tls::V12))
            }),
            Trial::test("java_auth_key_manager_cps4_tls13", || {
                with_card(CPS4, SlotBy::Id, |j| auth_login(j, CPS4, Tls::V13))
            }),
            Trial::test("java_default_key_managers_pick_signature_cps4", || {
                with_card(CPS4, SlotBy::Id, default_key_managers)
            }),
            Trial::test("java_cps3_tls12_and_13_server_fails_uncapped", || {
                with_card(CPS3, SlotBy::Id, cps3_dual_uncapped)
            }),
            Trial::test("java_cps3_tls12_and_13_server_capped", || {
                with_card(CPS3, SlotBy::Id, cps3_dual_capped)
            }),
        ]
    })
}

/// The Java side of one trial: the compiled classes and the SunPKCS11 configuration of the card.
struct Java {
    classes: PathBuf,
    config: PathBuf,
    _dir: tempfile::TempDir,
}

impl Java {
    /// Runs `CpxJavaClient args…` with `props` (`-Dname=value`), the PIN on stdin; whether it
    /// exited with 0, and its output.
    fn client(&self, props: &[&str], args: &[&str]) -> Result<(bool, String), Failed> {
        // Short-lived JVM: the C1 compiler only and the serial collector start fastest.
        let mut argv = vec![
            "-XX:TieredStopAtLevel=1",
            "-XX:+UseSerialGC",
            "-cp",
            utf8(&self.classes),
        ];
        argv.extend_from_slice(props);
        argv.push("CpxJavaClient");
        argv.extend_from_slice(args);
        let pin = format!("{PIN}\n");
        run_with_input("java", &argv, &[], Some(pin.as_bytes()))
    }

    /// The lines `CpxJavaClient` printed that start with `tag`, split at tabs (tag removed).
    fn facts(out: &str, tag: &str) -> Vec<Vec<String>> {
        out.lines()
            .filter_map(|l| l.strip_prefix(&format!("{tag}\t")))
            .map(|l| l.split('\t').map(str::to_string).collect())
            .collect()
    }
}

/// How the SunPKCS11 configuration names the card's slot (both forms are documented).
#[derive(Clone, Copy)]
enum SlotBy {
    /// `slotListIndex`: the position in the list of every slot, card or not.
    Index,
    /// `slot`: the PKCS#11 slot ID.
    Id,
}

/// Runs `check` with `card` inserted, alone in the sandbox, and a SunPKCS11 configuration naming
/// its slot.
fn with_card(card: Card, by: SlotBy, check: impl FnOnce(&Java) -> Result<(), Failed>) -> Result<(), Failed> {
    let classes = compiled()?;
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    wait_alone()?;
    let _card = insert(card.stem)?;
    let so = module_path()?;
    let dir = temp_dir("java")?;
    let config = dir.path().join("cpx-pkcs11.cfg");
    // The documented configuration (docs/clients.md). The sandbox has several readers; a
    // desktop's single reader is `slotListIndex = 0`.
    let (index, id) = slot_of(&so, &card)?;
    let slot = match by {
        SlotBy::Index => format!("slotListIndex = {index}"),
        SlotBy::Id => format!("slot = {id}"),
    };
    std::fs::write(&config, format!("name = cpx\nlibrary = {}\n{slot}\n", utf8(&so)))?;
    check(&Java {
        classes,
        config,
        _dir: dir,
    })
}

/// Where `pkcs11-tool -L` (another process, like Java) lists `card`'s token: its position in
/// the list of every slot (`slotListIndex`) and its slot ID (`slot`).
fn slot_of(so: &Path, card: &Card) -> Result<(u64, u64), Failed> {
    let list = run("pkcs11-tool", &["--module", utf8(so), "-L"], &[])?;
    let mut slot = None;
    for line in list.lines() {
        // "Slot 3 (0x3): Virtual PCD 00 01" (position, ID) then, indented,
        // "token label        : CPS3v3-…".
        if let Some(rest) = line.strip_prefix("Slot ") {
            let index = rest.split_whitespace().next().and_then(|n| n.parse().ok());
            let id = rest
                .split_once("(0x")
                .and_then(|(_, r)| r.split_once(')'))
                .and_then(|(hex, _)| u64::from_str_radix(hex, 16).ok());
            slot = index.zip(id);
        }
        let label = line.trim_start().strip_prefix("token label");
        if label.is_some_and(|l| l.trim_start_matches([' ', ':']).trim() == card.token) {
            return slot.ok_or_else(|| format!("no slot line before {}:\n{list}", card.token).into());
        }
    }
    Err(format!("pkcs11-tool does not list {}:\n{list}", card.token).into())
}

/// The Java client and the documented key manager compiled once per test process, next to the
/// test binary (`target/<profile>/java-classes`).
fn compiled() -> Result<PathBuf, Failed> {
    static CLASSES: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    CLASSES
        .get_or_init(|| compile().map_err(|e| e.message().unwrap_or("javac failed").to_string()))
        .clone()
        .map_err(Failed::from)
}

fn compile() -> Result<PathBuf, Failed> {
    let exe = std::env::current_exe()?;
    let profile = exe
        .parent()
        .and_then(Path::parent)
        .ok_or("cannot locate the target directory")?;
    let classes = profile.join("java-classes");
    let _ = std::fs::remove_dir_all(&classes);
    std::fs::create_dir_all(&classes)?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sources = [
        root.join("../docs/examples/java/AuthKeyManager.java"),
        root.join("tests/java/CpxJavaClient.java"),
    ];
    let mut args = vec!["-Xlint:all", "-Werror", "-d", utf8(&classes)];
    args.extend(sources.iter().map(|s| utf8(s)));
    run("javac", &args, &[]).map_err(|e| {
        format!(
            "{}\nThe Java tests need a JDK (java, javac 9 or later): Debian package \
             default-jdk-headless, installed by scripts/system-packages.sh (CPX_PACKAGES=test).",
            e.message().unwrap_or("javac failed")
        )
    })?;
    Ok(classes)
}

/// Lower-case hex of a file (how the Java client prints certificates).
fn hex_of(path: &Path) -> Result<String, Failed> {
    Ok(std::fs::read(path)?.iter().map(|b| format!("{b:02x}")).collect())
}

/// The signature certificate the emulator carries.
fn sign_der(card: &Card) -> PathBuf {
    card.auth_der().with_file_name("sign.der")
}

/// The key store lists both certificates, each with its key; every signature the card can make
/// verifies with the certificate's key in software, and the others fail as documented.
fn keystore_signatures(java: &Java, card: Card) -> Result<(), Failed> {
    let (ok, out) = java.client(&[], &["keystore", utf8(&java.config)])?;
    assert!(ok, "CpxJavaClient keystore failed:\n{out}");
    let mut aliases = Java::facts(&out, "alias");
    aliases.sort();
    let expected = vec![
        vec![
            AUTH_CERT_LABEL.to_string(),
            "key".into(),
            hex_of(&card.auth_der())?,
        ],
        vec![
            SIGN_CERT_LABEL.to_string(),
            "key".into(),
            hex_of(&sign_der(&card))?,
        ],
    ];
    assert_eq!(aliases, expected, "{}: key store entries:\n{out}", card.token);

    // keytool, as an administrator would check the card (docs/clients.md), the PIN on stdin.
    let (ok, listing) = run_with_input(
        "keytool",
        &[
            "-J-XX:TieredStopAtLevel=1",
            "-list",
            "-keystore",
            "NONE",
            "-storetype",
            "PKCS11",
            "-addprovider",
            "SunPKCS11",
            "-providerArg",
            utf8(&java.config),
        ],
        &[],
        Some(format!("{PIN}\n").as_bytes()),
    )?;
    assert!(ok, "keytool -list failed:\n{listing}");
    for alias in [AUTH_CERT_LABEL, SIGN_CERT_LABEL] {
        assert!(
            listing.contains(&format!("{alias}, PrivateKeyEntry")),
            "keytool does not list {alias}:\n{listing}"
        );
    }
    assert!(listing.contains("contains 2 entries"), "{listing}");

    let signs = Java::facts(&out, "sign");
    let result = |alias: &str, alg: &str| -> String {
        signs
            .iter()
            .find(|f| f[0] == alias && f[1] == alg)
            .map(|f| f[2..].join("\t"))
            .unwrap_or_else(|| panic!("no result for {alias} {alg}:\n{out}"))
    };
    let pss_on_card = card.stem == CPS4.stem;
    for alias in [AUTH_CERT_LABEL, SIGN_CERT_LABEL] {
        for alg in ["SHA1withRSA", "SHA256withRSA", "NONEwithRSA"] {
            assert_eq!(
                result(alias, alg),
                "verified",
                "{} {alias} {alg}:\n{out}",
                card.token
            );
        }
        let pss = result(alias, "RSASSA-PSS");
        if pss_on_card {
            assert_eq!(pss, "verified", "{} {alias} RSASSA-PSS:\n{out}", card.token);
        } else {
            // The CPS3 slot lists no CKM_RSA_PKCS_PSS: SunPKCS11 offers no RSASSA-PSS for it.
            assert!(
                pss.starts_with("error\tjava.security.NoSuchAlgorithmException"),
                "{} {alias} RSASSA-PSS: {pss}\n{out}",
                card.token
            );
        }
    }
    for alg in ["SHA384withRSA", "SHA512withRSA"] {
        // SunPKCS11 digests in Java and signs the DigestInfo with CKM_RSA_PKCS (the module has
        // no CKM_SHA384/512_RSA_PKCS). The authentication key takes it.
        assert_eq!(
            result(AUTH_CERT_LABEL, alg),
            "verified",
            "{} {alg}:\n{out}",
            card.token
        );
        // The signature keys sign a SHA-1 or SHA-256 hash only (CKM_RSA_PKCS takes the bare
        // hash or its DigestInfo; docs/pkcs11-module.md, docs/card-spec.md §4.2): a SHA-384/512 DigestInfo is
        // CKR_DATA_LEN_RANGE.
        let sig = result(SIGN_CERT_LABEL, alg);
        assert!(
            sig.starts_with("error\t") && sig.contains("CKR_DATA_LEN_RANGE"),
            "{} signature key {alg}: {sig}\n{out}",
            card.token
        );
    }
    Ok(())
}

/// Output of one TLS run of the Java client.
struct Login {
    ok: bool,
    out: String,
}

impl Login {
    fn fact(&self, tag: &str) -> Option<String> {
        Java::facts(&self.out, tag).first().map(|f| f.join("\t"))
    }
}

/// The Java client's TLS login to `server` with key manager `km` (`auth`, `SunX509`, `PKIX`),
/// `cap` (`none`, `sslparams`) and JVM properties `props`.
fn java_tls(
    java: &Java,
    pki: &ServerPki,
    server: &TlsServer,
    km: &str,
    cap: &str,
    props: &[&str],
) -> Result<Login, Failed> {
    let port = server.port.to_string();
    let args = [
        "tls",
        utf8(&java.config),
        "127.0.0.1",
        &port,
        utf8(&pki.ca),
        km,
        cap,
    ];
    let (ok, out) = java.client(props, &args)?;
    Ok(Login { ok, out })
}

/// A login that worked: the protocol, the certificate Java sent and the page s_server answered
/// (which shows the session's protocol and the client certificate it received), then the server's
/// own trace: the card's authentication certificate, verified, and the expected scheme.
fn expect_auth_login(
    login: &Login,
    server: &TlsServer,
    card: &Card,
    tls: Tls,
    scheme: &str,
) -> Result<(), Failed> {
    let out = &login.out;
    assert!(
        login.ok,
        "Java's TLS login failed:\n{out}\nserver log:\n{}",
        server.log()
    );
    assert_eq!(
        login.fact("protocol").as_deref(),
        Some(tls.openssl_name()),
        "{out}"
    );
    assert_eq!(login.fact("sent"), Some(hex_of(&card.auth_der())?), "{out}");
    assert!(
        out.contains(&format!("Protocol  : {}", tls.openssl_name())),
        "{out}"
    );
    let pem = card.auth_pem()?;
    let (_, after) = out
        .split_once("Client certificate")
        .ok_or_else(|| format!("the page shows no client certificate:\n{out}"))?;
    assert!(
        after.contains(pem.trim()),
        "the page shows another certificate:\n{out}"
    );
    server.expect_login(card, scheme)?;
    Ok(())
}

/// The documented key manager logs in with the authentication key: a CPS3 over TLS 1.2
/// (PKCS#1 v1.5), a CPS4 over TLS 1.3 (RSA-PSS).
fn auth_login(java: &Java, card: Card, tls: Tls) -> Result<(), Failed> {
    let pki = ServerPki::new()?;
    let server = TlsServer::start(&pki, tls)?;
    let login = java_tls(java, &pki, &server, "auth", "none", &[])?;
    let scheme = if tls == Tls::V12 { PKCS1_SHA256 } else { PSS_SHA256 };
    expect_auth_login(&login, &server, &card, tls, scheme)
}

/// Why the example exists: Java's own key managers, SunX509 (the default) and PKIX, both send
/// the SIGNATURE certificate, and the server receives it.
fn default_key_managers(java: &Java) -> Result<(), Failed> {
    let card = CPS4;
    let sign_pem = run(
        "openssl",
        &["x509", "-inform", "der", "-in", utf8(&sign_der(&card))],
        &[],
    )?;
    for km in ["SunX509", "PKIX"] {
        let pki = ServerPki::new()?;
        let server = TlsServer::start(&pki, Tls::V13)?;
        let login = java_tls(java, &pki, &server, km, "none", &[])?;
        let out = &login.out;
        assert!(login.ok, "{km}:\n{out}\nserver log:\n{}", server.log());
        assert_eq!(
            login.fact("sent"),
            Some(hex_of(&sign_der(&card))?),
            "{km} sent:\n{out}"
        );
        wait_until(
            "the server to trace the client certificate",
            support::STEP,
            || {
                Ok(server.handshakes().iter().any(|h| {
                    h.client_certs
                        .first()
                        .is_some_and(|c| c.trim() == sign_pem.trim())
                        && h.answered
                }))
            },
        )
        .map_err(|e| {
            format!(
                "{km}: {}\nserver log:\n{}",
                e.message().unwrap_or("?"),
                server.log()
            )
        })?;
    }
    Ok(())
}

/// A CPS3 against a server offering TLS 1.2 and 1.3, Java not capped: Java negotiates 1.3, where
/// an RSA client key must sign RSA-PSS, which the CPS3 cannot (SunPKCS11 offers no RSASSA-PSS
/// for its slot). Java sends the certificate, finds no scheme for its CertificateVerify, and ends
/// the handshake with an internal_error alert; the server never answers.
fn cps3_dual_uncapped(java: &Java) -> Result<(), Failed> {
    let pki = ServerPki::new()?;
    let server = TlsServer::start_tls12_and_13(&pki, Tls::V13)?;
    let login = java_tls(java, &pki, &server, "auth", "none", &[])?;
    let out = &login.out;
    assert!(!login.ok, "a CPS3 cannot log in over TLS 1.3:\n{out}");
    assert_eq!(login.fact("offered").as_deref(), Some("TLSv1.3,TLSv1.2"), "{out}");
    // What the user sees (docs/clients.md, section Java).
    let error = login.fact("tls-error").unwrap_or_default();
    assert!(
        error.starts_with(
            "javax.net.ssl.SSLException: No supported CertificateVerify signature algorithm for RSA"
        ),
        "what the user sees: {error}\n{out}"
    );
    let pem = CPS3.auth_pem()?;
    wait_until("the server to see the client's alert", support::STEP, || {
        Ok(server.log().contains("alert internal error"))
    })
    .map_err(|e| format!("{}\nserver log:\n{}", e.message().unwrap_or("?"), server.log()))?;
    let handshakes = server.handshakes();
    let [h] = handshakes.as_slice() else {
        panic!("one handshake expected: {handshakes:?}\n{}", server.log());
    };
    assert_eq!(h.version, Some(Tls::V13), "{h:?}");
    assert!(
        h.client_certs.first().is_some_and(|c| c.trim() == pem.trim()),
        "the key manager's certificate: {h:?}"
    );
    assert_eq!(h.client_signature, None, "no CertificateVerify: {h:?}");
    assert!(!h.answered, "{h:?}");
    Ok(())
}

/// The same server, Java capped at TLS 1.2 either way the docs give: the system property
/// `jdk.tls.client.protocols=TLSv1.2`, or `SSLParameters.setProtocols` in the program. The CPS3
/// then logs in with PKCS#1 v1.5.
fn cps3_dual_capped(java: &Java) -> Result<(), Failed> {
    for (cap, props) in [
        ("none", &["-Djdk.tls.client.protocols=TLSv1.2"][..]),
        ("sslparams", &[][..]),
    ] {
        let pki = ServerPki::new()?;
        let server = TlsServer::start_tls12_and_13(&pki, Tls::V12)?;
        let login = java_tls(java, &pki, &server, "auth", cap, props)?;
        assert_eq!(
            login.fact("offered").as_deref(),
            Some("TLSv1.2"),
            "{cap} {props:?}:\n{}",
            login.out
        );
        expect_auth_login(&login, &server, &CPS3, Tls::V12, PKCS1_SHA256)?;
    }
    Ok(())
}
