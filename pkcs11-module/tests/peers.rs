//! The programs workstations use load the built module against emulated CPS3 and CPS4 cards:
//! OpenSC's `pkcs11-tool` thread and fork tests, NSS (`modutil`, `certutil`), GnuTLS (`p11tool`,
//! directly and through p11-kit with our shipped module file) and OpenSSL's pkcs11 engine.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::path::Path;
use std::process::{Command, ExitCode};
use std::sync::Mutex;

use common::*;
use cpx_testkit::{Failed, Trial};

/// Every tool here lists every reader of the sandbox, and the two cards of one trial carry the
/// same token labels as those of another: the trials take turns.
static TOOLS: Mutex<()> = Mutex::new(());

const CPS3: &str = "CPS3v3-9900000001";
const CPS4: &str = "CPS4v1-9900000006";
const AUTH_CERT: &str = "Certificat d'Authentification CPS";
const SIGN_CERT: &str = "Certificat de Signature CPS";

fn main() -> ExitCode {
    cpx_testkit::run_tests(&common::sandbox(4), || {
        vec![
            Trial::test("pkcs11_tool_threads_and_fork", || with_cards(threads_and_fork)),
            Trial::test("nss_modutil_and_certutil", || with_cards(nss)),
            Trial::test("gnutls_p11tool", || with_cards(p11tool)),
            Trial::test("p11_kit_module_file", || with_cards(p11_kit)),
            Trial::test("openssl_engine_signs", || with_cards(openssl_engine)),
        ]
    })
}

/// Runs `check` with an emulated CPS3 and CPS4 inserted, alone in the sandbox.
fn with_cards(check: fn(&Path) -> Result<(), Failed>) -> Result<(), Failed> {
    let _turn = TOOLS.lock().unwrap_or_else(|e| e.into_inner());
    wait_alone()?;
    let _cps3 = insert("cps3-doctor")?;
    let _cps4 = insert("cps4-doctor")?;
    check(&module_path()?)
}

/// Runs a program; its output (stdout then stderr) when it exits with 0, an error otherwise.
fn run(program: &str, args: &[&str], env: &[(&str, &str)]) -> Result<String, Failed> {
    let out = Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .map_err(|e| format!("{program}: {e} (see scripts/system-packages.sh)"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("$ {program} {}\n{text}", args.join(" "));
    if !out.status.success() {
        return Err(format!("{program} {args:?} failed ({}):\n{text}", out.status).into());
    }
    Ok(text)
}

fn temp_dir() -> Result<tempfile::TempDir, Failed> {
    Ok(tempfile::Builder::new().prefix("cpx-peers-").tempdir()?)
}

fn utf8(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

/// OpenSC's own multi-thread and fork checks (`tests/test-pkcs11-tool-test-threads.sh` upstream):
/// threads initialise concurrently (IN, and IL = CKF_OS_LOCKING_OK) and read the token info of
/// both slots; a forked child calls C_Initialize on the parent's loaded module.
fn threads_and_fork(so: &Path) -> Result<(), Failed> {
    let so = utf8(so);
    let plain = run(
        "pkcs11-tool",
        &["--module", so, "--test-threads", "IN", "-L"],
        &[],
    )?;
    let threaded = run(
        "pkcs11-tool",
        &[
            "--module",
            so,
            "--test-threads",
            "ILGISLT0",
            "--test-threads",
            "ILGISLT1",
            "--test-threads",
            "INGISLT0",
            "--test-threads",
            "ILGISLT1",
            "-L",
        ],
        &[],
    )?;
    // pkcs11-tool exits 0 even when a thread failed; its last lines give each thread's result.
    // A thread whose last call is C_Initialize may lose the race with the main thread's own
    // C_Initialize: CKR_CRYPTOKI_ALREADY_INITIALIZED is then the right answer.
    let results = |out: &str| -> Vec<String> {
        out.lines()
            .filter_map(|l| l.strip_prefix("test_threads thread:"))
            .filter_map(|l| l.split_once(", rv:").map(|(_, rv)| rv.trim().to_string()))
            .collect()
    };
    let first = results(&plain);
    assert!(
        first.len() == 1 && ["CKR_OK", "CKR_CRYPTOKI_ALREADY_INITIALIZED"].contains(&first[0].as_str()),
        "{plain}"
    );
    assert_eq!(results(&threaded), ["CKR_OK"; 4], "{threaded}");
    assert!(
        threaded.contains("all threads have ended with CKR_OK"),
        "{threaded}"
    );
    for out in [&plain, &threaded] {
        assert!(out.contains(CPS3) && out.contains(CPS4), "{out}");
    }

    // The child's C_Initialize must succeed (pkcs11-tool exits non-zero otherwise), and the
    // parent then signs: the child's fresh state must not disturb the parent's sessions.
    let forked = run(
        "pkcs11-tool",
        &[
            "--module",
            so,
            "--test-fork",
            "--token-label",
            CPS4,
            "--test",
            "--login",
            "--pin",
            "1234",
        ],
        &[],
    )?;
    assert!(
        forked.contains("Calling C_Initialize in forked child process"),
        "{forked}"
    );
    assert!(forked.contains("No errors"), "{forked}");
    Ok(())
}

/// NSS, as Chromium and Firefox use it: the module added to a database, the certificates listed
/// with the token's label as nickname prefix, the private keys found after login.
fn nss(so: &Path) -> Result<(), Failed> {
    let dir = temp_dir()?;
    let db = format!("sql:{}", utf8(dir.path()));
    let pin_file = dir.path().join("pin");
    std::fs::write(&pin_file, "1234\n")?;
    run("certutil", &["-N", "-d", &db, "--empty-password"], &[])?;
    // `-force` skips modutil's "press Enter" prompt (its stdin is not a terminal).
    run(
        "modutil",
        &["-dbdir", &db, "-add", "cpx", "-libfile", utf8(so), "-force"],
        &[],
    )?;
    let modules = run("modutil", &["-dbdir", &db, "-list"], &[])?;
    assert!(modules.contains("library-manufacturer=cpx"), "{modules}");
    assert!(
        modules.contains(&format!("token: {CPS3}")) && modules.contains(&format!("token: {CPS4}")),
        "{modules}"
    );

    // Without login NSS sees certificates but no keys, so no user trust ("u,u,u").
    let anonymous = run("certutil", &["-L", "-d", &db, "-h", "all"], &[])?;
    for token in [CPS3, CPS4] {
        for cert in [AUTH_CERT, SIGN_CERT] {
            assert!(anonymous.contains(&format!("{token}:{cert}")), "{anonymous}");
        }
    }
    let logged = run(
        "certutil",
        &["-L", "-d", &db, "-h", "all", "-f", utf8(&pin_file)],
        &[],
    )?;
    assert_eq!(
        logged
            .lines()
            .filter(|l| l.starts_with("CPS") && l.ends_with("u,u,u"))
            .count(),
        4,
        "each card certificate has its key once logged in:\n{logged}"
    );
    let keys = run(
        "certutil",
        &["-K", "-d", &db, "-h", CPS4, "-f", utf8(&pin_file)],
        &[],
    )?;
    assert!(
        keys.contains("CPS_PRIV_SIG") && keys.contains("CPS_PRIV_AUT"),
        "{keys}"
    );
    Ok(())
}

/// GnuTLS's p11tool with the module given directly: certificates without login, a signature
/// checked against the token's public key object (found by CKA_ID).
fn p11tool(so: &Path) -> Result<(), Failed> {
    let provider = format!("--provider={}", utf8(so));
    for token in [CPS3, CPS4] {
        let certs = run(
            "p11tool",
            &[&provider, "--list-all-certs", &format!("pkcs11:token={token}")],
            &[],
        )?;
        assert!(certs.contains(AUTH_CERT) && certs.contains(SIGN_CERT), "{certs}");
        test_sign(&[&provider], token)?;
    }
    Ok(())
}

/// `p11tool --test-sign` on the authentication key, addressed by its CKA_ID so that p11tool also
/// finds the matching public key and verifies the signature with it.
fn test_sign(provider: &[&str], token: &str) -> Result<(), Failed> {
    let all = run(
        "p11tool",
        &[
            provider,
            &["--login", "--list-privkeys", &format!("pkcs11:token={token}")],
        ]
        .concat(),
        &[("GNUTLS_PIN", "1234")],
    )?;
    let url = all
        .lines()
        .filter_map(|l| l.trim().strip_prefix("URL: "))
        .find(|u| u.contains("object=CPS_PRIV_AUT"))
        .ok_or_else(|| format!("no CPS_PRIV_AUT:\n{all}"))?;
    let id = url
        .split(';')
        .find(|p| p.starts_with("id="))
        .ok_or_else(|| format!("no id in {url}"))?;
    let by_id = format!("pkcs11:token={token};{id};type=private");
    let signed = run(
        "p11tool",
        &[provider, &["--login", "--test-sign", &by_id]].concat(),
        &[("GNUTLS_PIN", "1234")],
    )?;
    assert!(signed.contains("Signing using RSA-SHA256... ok"), "{signed}");
    assert!(
        signed.contains("Verifying against public key in the token... ok"),
        "{signed}"
    );
    Ok(())
}

/// The module file we ship (packaging/p11-kit/cpx.module) registers the module with p11-kit:
/// `p11-kit list-modules` shows the tokens and p11tool, with no --provider, uses the card.
///
/// p11-kit ignores per-user configuration for root, and the system directories are not ours to
/// write: the commands run in a private mount namespace where a directory holding only our
/// module file is mounted over p11-kit's system module directory.
fn p11_kit(so: &Path) -> Result<(), Failed> {
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../packaging/p11-kit/cpx.module"
    ))?;
    assert!(
        shipped.lines().any(|l| l == "module: libcpx_pkcs11.so"),
        "{shipped}"
    );
    let dir = temp_dir()?;
    let modules = dir.path().join("modules");
    std::fs::create_dir(&modules)?;
    // The installed file names the library by its file name in p11-kit's module directory;
    // here the library is the built one.
    let module_file = shipped.replace("module: libcpx_pkcs11.so", &format!("module: {}", utf8(so)));
    std::fs::write(modules.join("cpx.module"), module_file)?;

    let script = r#"set -e
mount --bind "$1" /usr/share/p11-kit/modules
mkdir -p "$2/etc"; mount --bind "$2/etc" /etc/pkcs11 2>/dev/null || true
p11-kit list-modules
echo '--- tokens'
p11tool --list-tokens
echo '--- sign'
GNUTLS_PIN=1234 p11tool --login --list-privkeys "pkcs11:token=$3"
"#;
    let unshare = if is_root() { vec!["-m"] } else { vec!["-r", "-m"] };
    let out = run(
        "unshare",
        &[
            &unshare[..],
            &[
                "--propagation",
                "private",
                "sh",
                "-c",
                script,
                "p11-kit-test",
                utf8(&modules),
                utf8(dir.path()),
                CPS3,
            ],
        ]
        .concat(),
        &[],
    )?;
    let (listing, rest) = out.split_once("--- tokens").ok_or("no token section")?;
    assert!(
        listing.starts_with("cpx: "),
        "only our module is registered:\n{listing}"
    );
    assert!(listing.contains("library-manufacturer: cpx"), "{listing}");
    for token in [CPS3, CPS4] {
        assert!(listing.contains(&format!("token: {token}")), "{listing}");
        assert!(rest.contains(&format!("Label: {token}")), "{rest}");
    }
    let (_, keys) = rest.split_once("--- sign").ok_or("no sign section")?;
    assert!(
        keys.contains("object=CPS_PRIV_AUT") && keys.contains("object=CPS_PRIV_SIG"),
        "{keys}"
    );
    Ok(())
}

fn is_root() -> bool {
    run("id", &["-u"], &[]).is_ok_and(|u| u.trim() == "0")
}

/// OpenSSL 3 through the pkcs11 engine (libengine-pkcs11-openssl) with `pkcs11:` URIs: both
/// keys of both cards sign a SHA-256 digest, and `openssl dgst -verify` checks each signature with
/// the public key of the certificate read from the card.
fn openssl_engine(so: &Path) -> Result<(), Failed> {
    let dir = temp_dir()?;
    let data = dir.path().join("data.txt");
    std::fs::write(&data, "Ordonnance du 22 novembre 2026\n")?;
    let digest = dir.path().join("data.sha256");
    run(
        "openssl",
        &["dgst", "-sha256", "-binary", "-out", utf8(&digest), utf8(&data)],
        &[],
    )?;
    let env = [("PKCS11_MODULE_PATH", utf8(so))];
    for token in [CPS3, CPS4] {
        for (key, cert) in [("CPS_PRIV_AUT", AUTH_CERT), ("CPS_PRIV_SIG", SIGN_CERT)] {
            let sig = dir.path().join(format!("{token}-{key}.sig"));
            run(
                "openssl",
                &[
                    "pkeyutl",
                    "-engine",
                    "pkcs11",
                    "-keyform",
                    "engine",
                    "-sign",
                    "-inkey",
                    &format!("pkcs11:token={token};object={key};type=private;pin-value=1234"),
                    "-pkeyopt",
                    "digest:sha256",
                    "-in",
                    utf8(&digest),
                    "-out",
                    utf8(&sig),
                ],
                &env,
            )?;
            let der = dir.path().join(format!("{token}-{key}.der"));
            run(
                "pkcs11-tool",
                &[
                    "--module",
                    utf8(so),
                    "--token-label",
                    token,
                    "--read-object",
                    "--type",
                    "cert",
                    "--label",
                    cert,
                    "-o",
                    utf8(&der),
                ],
                &[],
            )?;
            let public = dir.path().join(format!("{token}-{key}.pub.pem"));
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
            let verified = run(
                "openssl",
                &[
                    "dgst",
                    "-sha256",
                    "-verify",
                    utf8(&public),
                    "-signature",
                    utf8(&sig),
                    utf8(&data),
                ],
                &[],
            )?;
            assert!(verified.contains("Verified OK"), "{token} {key}: {verified}");
        }
    }
    Ok(())
}
