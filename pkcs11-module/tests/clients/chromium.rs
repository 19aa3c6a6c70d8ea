//! Chromium (Debian package) logs in with the card: the module in the user's NSS database
//! (`~/.pki/nssdb`, modutil), directly or through p11-kit-proxy and our p11-kit module file,
//! the server's CA trusted there (certutil), the certificate chosen by the
//! `AutoSelectCertificateForUrls` policy, the PIN typed into Chromium's "Unlock Security
//! Device" dialog. Chromium asks NSS whether the token does CKM_RSA_PKCS_PSS before it offers
//! a scheme, so a CPS3 signs PKCS#1 v1.5 over TLS 1.2 and is refused by a TLS-1.3-only server
//! with ERR_SSL_CLIENT_AUTH_NO_COMMON_ALGORITHMS, before any signature is asked of the module.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cpx_testkit::Failed;

use crate::display::{Display, MODULE_LOG, artifact};
use crate::pinpad::PadCard;
use crate::server::{PKCS1_SHA256, PSS_SHA256, ServerPki, Tls, TlsServer};
use crate::support::{CPS3, Card, Proc, p11_kit_dirs, p11_kit_proxy, read_text, run, unshare_mount, utf8};

/// The title of the dialog in which Chromium asks for a token's PIN.
const PIN_DIALOG: &str = "^Unlock Security Device";

/// What the user types into Chromium's dialog for a token in a PIN-pad reader: anything but
/// nothing (an empty field is a cancel), never the PIN. Not a possible PIN either, so that a
/// module that let it through would have it refused before the card sees it.
pub const NOT_A_PIN: &str = "pad";

/// Chromium's net error for "the client certificate's key has no scheme the server accepts"
/// (net/base/net_error_list.h, ERR_SSL_CLIENT_AUTH_NO_COMMON_ALGORITHMS), as it logs it.
const NO_COMMON_ALGORITHMS: &str = "net_error -177";

/// How the module gets into Chromium's NSS database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// `modutil -add cpx -libfile /path/libcpx_pkcs11.so`.
    NssDb,
    /// `modutil -add p11-kit-proxy -libfile …/p11-kit-proxy.so`, and our module registered
    /// with p11-kit by the module file the Debian package installs.
    P11KitProxy,
}

/// A Chromium set up for one login: HOME with its NSS database, a policy directory, a profile,
/// and for [`Via::P11KitProxy`] the p11-kit directories to mount.
struct Setup {
    home: PathBuf,
    policy: PathBuf,
    profile: PathBuf,
    log: PathBuf,
    p11_kit: Option<(PathBuf, PathBuf)>,
}

fn setup(so: &Path, pki: &ServerPki, server: &TlsServer, card: &Card, via: Via) -> Result<Setup, Failed> {
    let root = pki.dir().join("chromium");
    let home = root.join("home");
    let nssdb = home.join(".pki/nssdb");
    std::fs::create_dir_all(&nssdb)?;
    let db = format!("sql:{}", utf8(&nssdb));
    run("certutil", &["-N", "-d", &db, "--empty-password"], &[])?;
    run(
        "certutil",
        &[
            "-A",
            "-d",
            &db,
            "-n",
            "cpx clients test TLS CA",
            "-t",
            "CT,C,C",
            "-i",
            utf8(&pki.ca),
        ],
        &[],
    )?;
    let (name, library, p11_kit) = match via {
        Via::NssDb => ("cpx", so.to_path_buf(), None),
        Via::P11KitProxy => ("p11-kit-proxy", p11_kit_proxy()?, Some(p11_kit_dirs(so, &root)?)),
    };
    // `-force`: no "press Enter" prompt (stdin is not a terminal).
    run(
        "modutil",
        &["-dbdir", &db, "-add", name, "-libfile", utf8(&library), "-force"],
        &[],
    )?;

    // /etc/chromium as Chromium will see it: the package's files and our managed policy.
    let policy = root.join("etc-chromium");
    let managed = policy.join("policies/managed");
    std::fs::create_dir_all(&managed)?;
    for entry in std::fs::read_dir("/etc/chromium")? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::copy(entry.path(), policy.join(entry.file_name()))?;
        }
    }
    // The filter is a JSON string inside the JSON list (Chromium's policy format).
    let cn = card.auth_cn()?;
    let rule = format!(
        r#"{{\"pattern\":\"{}\",\"filter\":{{\"SUBJECT\":{{\"CN\":\"{cn}\"}}}}}}"#,
        server.origin()
    );
    std::fs::write(
        managed.join("cpx-clients-test.json"),
        format!("{{ \"AutoSelectCertificateForUrls\": [\"{rule}\"] }}\n"),
    )?;
    Ok(Setup {
        home,
        policy,
        profile: root.join("profile"),
        log: root.join("chromium.log"),
        p11_kit,
    })
}

/// Starts Chromium on `url` in a private mount namespace where our policy directory is
/// mounted over /etc/chromium (and our p11-kit directories over p11-kit's): the machine's
/// policies and modules stay untouched.
fn launch(display: &Display, setup: &Setup, url: &str) -> Result<Proc, Failed> {
    let script = r#"set -e
mount --bind "$1" /etc/chromium
if [ -n "$2" ]; then
  mount --bind "$2" /usr/share/p11-kit/modules
  if [ -d /etc/pkcs11 ]; then mount --bind "$3" /etc/pkcs11; fi
fi
shift 3
exec "$@"
"#;
    let (modules, etc) = match &setup.p11_kit {
        Some((m, e)) => (utf8(m), utf8(e)),
        None => ("", ""),
    };
    let profile = format!("--user-data-dir={}", utf8(&setup.profile));
    let mut cmd = Command::new("unshare");
    cmd.args(unshare_mount()?)
        .args([
            "sh",
            "-c",
            script,
            "chromium-mounts",
            utf8(&setup.policy),
            modules,
            etc,
        ])
        .arg("chromium")
        .args([
            "--no-sandbox", // root in CI: Chromium's sandbox refuses to run as root
            "--disable-gpu",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-default-apps",
            "--password-store=basic",
            "--lang=en-US", // the PIN dialog is found by its English title
            "--window-position=0,0",
            "--window-size=1280,800",
            &profile,
            url,
        ])
        .env("HOME", &setup.home)
        .env("DISPLAY", &display.name)
        .env("LANGUAGE", "en")
        .env("CPX_PKCS11_LOG", MODULE_LOG)
        .stdin(Stdio::null());
    let out = File::create(&setup.log)?;
    cmd.stdout(out.try_clone()?).stderr(out);
    Proc::spawn("chromium", &mut cmd)
}

/// Chromium logs in with `card` to a server limited to `tls`; the server receives the card's
/// authentication certificate and the expected signature scheme. Screenshot of the page,
/// scrolled to the client certificate's subject:
/// target/ci-artifacts/browser-chromium[-p11-kit]-<card>-<tls>.png.
pub fn login(so: &Path, card: Card, tls: Tls, via: Via) -> Result<(), Failed> {
    let pki = ServerPki::new()?;
    let server = TlsServer::start(&pki, tls)?;
    let setup = setup(so, &pki, &server, &card, via)?;
    let display = Display::start()?;
    let mut chromium = launch(&display, &setup, &format!("{}/", server.origin()))?;
    let pem = card.auth_pem()?;
    let login = display.answer_pin_dialogs(&mut chromium, &setup.log, PIN_DIALOG, 2, || {
        Ok(server
            .handshakes()
            .iter()
            .any(|h| h.answered && h.client_certs.first().is_some_and(|c| c.trim() == pem.trim())))
    })?;
    login.assert_one_accepted_pin(&chromium.name);
    let scheme = if card.stem == CPS3.stem {
        PKCS1_SHA256
    } else {
        PSS_SHA256
    };
    server.expect_login(&card, scheme)?;
    // The module was Chromium's, through the NSS database.
    let log = read_text(&setup.log);
    assert!(log.contains("cpx PKCS#11 module"), "{log}");
    // Cosmetic, for the screenshot only (the verdict is above): the page renders.
    std::thread::sleep(std::time::Duration::from_millis(500));
    display.find_in_page("chromium", "Subject: C=FR");
    let via = if via == Via::P11KitProxy { "-p11-kit" } else { "" };
    let name = format!("browser-chromium{via}-{}-{}", card.generation(), tls.short());
    display.screenshot(&artifact(so, &name)?)?;
    Ok(())
}

/// A CPS3 against a TLS-1.3-only server: Chromium, seeing no CKM_RSA_PKCS_PSS on the token,
/// sends no certificate and reports ERR_SSL_CLIENT_AUTH_NO_COMMON_ALGORITHMS. The error
/// page is kept: target/ci-artifacts/browser-chromium-cps3-tls13-refused.png.
pub fn cps3_tls13_refused(so: &Path) -> Result<(), Failed> {
    let pki = ServerPki::new()?;
    let server = TlsServer::start(&pki, Tls::V13)?;
    let setup = setup(so, &pki, &server, &CPS3, Via::NssDb)?;
    let display = Display::start()?;
    let mut chromium = launch(&display, &setup, &format!("{}/", server.origin()))?;
    display.answer_pin_dialogs(&mut chromium, &setup.log, PIN_DIALOG, 2, || {
        Ok(read_text(&setup.log).contains(NO_COMMON_ALGORITHMS))
    })?;
    assert!(
        !server.any_client_certificate(),
        "Chromium sent the CPS3's certificate:\n{}",
        server.log()
    );
    // Cosmetic, for the screenshot only (the verdict is above): the error page renders.
    std::thread::sleep(std::time::Duration::from_millis(1000));
    display.screenshot(&artifact(so, "browser-chromium-cps3-tls13-refused")?)?;
    Ok(())
}

/// Chromium logs in with `card` in the sandbox's PIN-pad reader to a server limited to `tls`.
/// Chromium does not look at CKF_PROTECTED_AUTHENTICATION_PATH: its NSS password callback
/// always shows the "Unlock Security Device" dialog with a password field (docs/clients.md,
/// *PIN-pad readers*), and an empty field is a cancel. The user types something else than the
/// PIN ([`NOT_A_PIN`]) and presses Enter; NSS, seeing the flag, drops that text and calls
/// C_Login with no PIN, and the PIN comes from the pad. Verdicts: one dialog; the keypad's entry
/// used and the card received exactly one VERIFY, with the keypad's digits (not the typed
/// text), answered 9000; the server received the card's certificate and the expected scheme.
/// Without the flag the typed text would reach the module as the PIN and be refused. The dialog
/// and the page: target/ci-artifacts/browser-pinpad-chromium-<card>-<tls>{-dialog,}.png.
pub fn pinpad_login(so: &Path, card: Card, tls: Tls) -> Result<(), Failed> {
    let pad = PadCard::insert(&card)?;
    let pki = ServerPki::new()?;
    let server = TlsServer::start(&pki, tls)?;
    let setup = setup(so, &pki, &server, &card, Via::NssDb)?;
    let display = Display::start()?;
    let mut chromium = launch(&display, &setup, &format!("{}/", server.origin()))?;
    let name = format!("browser-pinpad-chromium-{}-{}", card.generation(), tls.short());
    // What the user sees: the dialog asks for a password although the PIN goes on the pad.
    // Kept as …-dialog.png (it waits for an answer: no hurry).
    crate::support::wait_until("Chromium's dialog", crate::support::STEP, || {
        if !chromium.running() {
            return Err(format!("chromium exited:\n{}", read_text(&setup.log)).into());
        }
        Ok(!display.windows(PIN_DIALOG)?.is_empty())
    })?;
    display.screenshot_window(
        PIN_DIALOG,
        &artifact(so, &format!("{name}-dialog"))?,
        std::time::Duration::from_secs(10),
    )?;
    let pem = card.auth_pem()?;
    let login = display.answer_dialogs(&mut chromium, &setup.log, PIN_DIALOG, 1, NOT_A_PIN, || {
        Ok(server
            .handshakes()
            .iter()
            .any(|h| h.answered && h.client_certs.first().is_some_and(|c| c.trim() == pem.trim())))
    })?;
    eprintln!(
        "chromium: {} dialog(s), module trace {:?}",
        login.prompts, login.trace
    );
    assert_eq!(login.prompts, 1, "one card, one dialog");
    pad.assert_pad_login(&chromium.name);
    let scheme = if card.stem == CPS3.stem {
        PKCS1_SHA256
    } else {
        PSS_SHA256
    };
    server.expect_login(&card, scheme)?;
    std::thread::sleep(std::time::Duration::from_millis(500));
    display.find_in_page("chromium", "Subject: C=FR");
    display.screenshot(&artifact(so, &name)?)?;
    Ok(())
}
