//! Firefox ESR (Debian `firefox-esr`) loads the module the two ways an administrator or a
//! package can arrange without touching a profile by hand, and logs in with it:
//! - an enterprise policy (`policies.json`, `SecurityDevices`), here in the distribution
//!   directory /usr/lib/firefox-esr/distribution;
//! - the Mozilla PKCS#11 native manifest (packaging/mozilla/cpx.json, installed as
//!   /usr/lib/mozilla/pkcs11-modules/cpx.json), which only lets a WebExtension listed in its
//!   `allowed_extensions` install the module (`browser.pkcs11.installModule`).
//!
//! Each runs in a private mount namespace where our directory is mounted over the system one.
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
use std::time::{Duration, Instant};

use cpx_testkit::Failed;

use crate::card_logout::log_out_card;
use crate::display::{Display, MODULE_LOG, PinDialogs, PinTrace, artifact};
use crate::pinpad::PadCard;
use crate::server::{PKCS1_SHA256, PSS_SHA256, ServerPki, Tls, TlsServer};
use crate::support::{CPS3, Card, Proc, STEP, read_text, run, temp_dir, unshare_mount, utf8, wait_until};

/// Debian's firefox-esr reads policies.json here (or in /etc/firefox/policies/, which wins).
const DISTRIBUTION: &str = "/usr/lib/firefox-esr/distribution";
/// Where Firefox looks for system-wide native manifests (the firefox-esr package owns it).
const MOZILLA_LIB: &str = "/usr/lib/mozilla";
/// The title of Firefox's dialog asking for a token's PIN.
const PIN_DIALOG: &str = "^Password Required";
/// The title of the window Firefox shows while a token with a protected authentication path
/// logs in (Firefox 153 ESR: chrome://pippki/content/protectedAuth.xhtml, "Please authenticate
/// to the security device…", a Cancel button only; it closes itself when C_Login returns).
const PROTECTED_AUTH_DIALOG: &str = "^Protected Authentication";
/// The test WebExtension's id.
const EXTENSION_ID: &str = "cpx-test@cpx.invalid";

/// A fresh profile trusting the server's CA if any, with `prefs` in user.js.
fn profile(dir: &Path, ca: Option<&Path>, prefs: &[(&str, &str)]) -> Result<PathBuf, Failed> {
    let profile = dir.join("profile");
    std::fs::create_dir_all(&profile)?;
    if let Some(ca) = ca {
        let db = format!("sql:{}", utf8(&profile));
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
                utf8(ca),
            ],
            &[],
        )?;
    }
    let mut user_js = String::new();
    for (name, value) in prefs {
        user_js.push_str(&format!("user_pref(\"{name}\", {value});\n"));
    }
    std::fs::write(profile.join("user.js"), user_js)?;
    Ok(profile)
}

/// Starts firefox-esr with `args`, `mounts` (our directory, the system one) applied in a
/// private mount namespace. /etc/firefox/policies, when it exists, would win over the
/// distribution directory: with a policy to test, it is covered too.
fn launch(mounts: &[(&Path, &str)], env: &[(&str, &str)], args: &[&str], log: &Path) -> Result<Proc, Failed> {
    let script = r#"set -e
while [ "$1" != "--" ]; do
  mount --bind "$1" "$2"
  if [ "$2" = /usr/lib/firefox-esr/distribution ] && [ -d /etc/firefox/policies ]; then
    mount --bind "$1" /etc/firefox/policies
  fi
  shift 2
done
shift
exec "$@"
"#;
    let mut cmd = Command::new("unshare");
    cmd.args(unshare_mount()?)
        .args(["sh", "-c", script, "firefox-mounts"]);
    for (ours, system) in mounts {
        cmd.arg(ours).arg(system);
    }
    cmd.args(["--", "firefox-esr", "-no-remote"])
        .args(args)
        .envs(env.iter().copied())
        .env("CPX_PKCS11_LOG", MODULE_LOG)
        .stdin(Stdio::null());
    let out = File::create(log)?;
    cmd.stdout(out.try_clone()?).stderr(out);
    Proc::spawn("firefox-esr", &mut cmd)
}

/// Our copy of the distribution directory with a policies.json that adds the module.
fn policy_dir(so: &Path, dir: &Path) -> Result<PathBuf, Failed> {
    let dist = dir.join("distribution");
    std::fs::create_dir_all(&dist)?;
    run("cp", &["-a", &format!("{DISTRIBUTION}/."), utf8(&dist)], &[])?;
    let policies = format!(
        r#"{{ "policies": {{
  "SecurityDevices": {{ "Add": {{ "cpx": "{}" }} }},
  "DisableAppUpdate": true,
  "DisableTelemetry": true,
  "DontCheckDefaultBrowser": true,
  "OverrideFirstRunPage": ""
}} }}
"#,
        utf8(so)
    );
    std::fs::write(dist.join("policies.json"), policies)?;
    Ok(dist)
}

/// The profile's module list names our library (NSS writes pkcs11.txt when a module is added).
fn module_listed(profile: &Path, so: &Path) -> bool {
    read_text(&profile.join("pkcs11.txt")).contains(&format!("library={}", utf8(so)))
}

/// Firefox under Xvfb with the module from policies.json, a fresh profile that trusts the
/// server's CA and picks the client certificate by itself (`security.default_personal_cert`).
/// Dropped in field order: Firefox before its display.
struct PolicyFirefox {
    proc: Proc,
    display: Display,
    log: PathBuf,
    profile: PathBuf,
}

impl PolicyFirefox {
    /// Starts it on `url`, its files in `pki`'s directory, with `prefs` besides the usual ones.
    fn start(so: &Path, pki: &ServerPki, url: &str, prefs: &[(&str, &str)]) -> Result<Self, Failed> {
        Self::start_with_env(so, pki, url, prefs, &[])
    }

    /// [`PolicyFirefox::start`] with more environment for Firefox (and so for the module).
    fn start_with_env(
        so: &Path,
        pki: &ServerPki,
        url: &str,
        prefs: &[(&str, &str)],
        env: &[(&str, &str)],
    ) -> Result<Self, Failed> {
        let dir = pki.dir().join("firefox");
        let home = dir.join("home");
        std::fs::create_dir_all(&home)?;
        let mut all = vec![
            ("security.default_personal_cert", "\"Select Automatically\""),
            ("browser.shell.checkDefaultBrowser", "false"),
            ("datareporting.policy.dataSubmissionEnabled", "false"),
        ];
        all.extend_from_slice(prefs);
        let profile = profile(&dir, Some(&pki.ca), &all)?;
        let dist = policy_dir(so, &dir)?;
        let display = Display::start()?;
        let log = dir.join("firefox.log");
        let mut all_env = vec![("HOME", utf8(&home)), ("DISPLAY", display.name.as_str())];
        all_env.extend_from_slice(env);
        let proc = launch(
            &[(&dist, DISTRIBUTION)],
            &all_env,
            &["-profile", utf8(&profile), url],
            &log,
        )?;
        Ok(Self {
            proc,
            display,
            log,
            profile,
        })
    }

    /// Answers the PIN dialogs until `server` has answered a connection that carried `card`'s
    /// authentication certificate (see [`Display::answer_pin_dialogs`]).
    fn log_in(&mut self, server: &TlsServer, card: &Card) -> Result<PinDialogs, Failed> {
        self.log_in_unless(server, card, |_| false)
    }

    /// [`PolicyFirefox::log_in`], ending early (Ok) as soon as `give_up` holds of the browser's
    /// log: the caller's verdict then says what went wrong, without waiting for the time limit.
    fn log_in_unless(
        &mut self,
        server: &TlsServer,
        card: &Card,
        give_up: impl Fn(&str) -> bool,
    ) -> Result<PinDialogs, Failed> {
        let pem = card.auth_pem()?;
        let log = self.log.clone();
        self.display
            .answer_pin_dialogs(&mut self.proc, &self.log, PIN_DIALOG, 2, || {
                Ok(give_up(&read_text(&log))
                    || server.handshakes().iter().any(|h| {
                        h.answered && h.client_certs.first().is_some_and(|c| c.trim() == pem.trim())
                    }))
            })
    }

    /// Cosmetic, for the screenshot only (the verdicts are the caller's): the page renders,
    /// scrolled to the client certificate's subject; then target/ci-artifacts/<name>.png.
    fn screenshot(&self, so: &Path, name: &str) -> Result<(), Failed> {
        std::thread::sleep(Duration::from_millis(500));
        self.display.find_in_page("firefox", "Subject: C=FR");
        self.display.screenshot(&artifact(so, name)?)
    }
}

/// The CertificateVerify scheme `card` signs with (CPS3: PKCS#1 v1.5 over TLS 1.2; CPS4: PSS).
fn scheme(card: &Card) -> &'static str {
    if card.stem == CPS3.stem {
        PKCS1_SHA256
    } else {
        PSS_SHA256
    }
}

/// Firefox, with the module from policies.json, logs in with `card` to a server limited to
/// `tls` (certificate chosen by `security.default_personal_cert`, PIN typed into Firefox's
/// dialog). Screenshot: target/ci-artifacts/browser-firefox-<card>-<tls>.png.
pub fn policy_login(so: &Path, card: Card, tls: Tls) -> Result<(), Failed> {
    let pki = ServerPki::new()?;
    let server = TlsServer::start(&pki, tls)?;
    let mut firefox = PolicyFirefox::start(so, &pki, &format!("{}/", server.origin()), &[])?;
    let login = firefox.log_in(&server, &card)?;
    login.assert_one_accepted_pin(&firefox.proc.name);
    server.expect_login(&card, scheme(&card))?;
    assert!(
        module_listed(&firefox.profile, so),
        "{}",
        read_text(&firefox.profile.join("pkcs11.txt"))
    );
    firefox.screenshot(
        so,
        &format!("browser-firefox-{}-{}", card.generation(), tls.short()),
    )
}

/// Which of the two logins of [`login_figures`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cache {
    /// The module's disk cache empty: the first login of a browser on this card.
    Cold,
    /// A new Firefox process after the cold login filled the cache.
    Warm,
}

impl Cache {
    fn name(self) -> &'static str {
        match self {
            Cache::Cold => "cold",
            Cache::Warm => "warm",
        }
    }
}

/// The file [`login_figures`] writes for `card` and `cache`, beside the screenshots:
/// target/ci-artifacts/browser-login-<card>-<cold|warm>.apdu. The benchmark
/// (pkcs11-module/benches/pkcs11_ops) reads it for its browser login table.
pub fn transcript_path(so: &Path, card: &Card, cache: Cache) -> Result<PathBuf, Failed> {
    Ok(artifact(so, "x")?.with_file_name(format!(
        "browser-login-{}-{}.apdu",
        card.generation(),
        cache.name()
    )))
}

/// The transcript format: `atr <hex>`, then one `<command hex> <response hex>` line per
/// exchange the card saw. The data of PIN commands (VERIFY, CHANGE REFERENCE DATA, RESET RETRY
/// COUNTER) is replaced by as many zero bytes: a transcript times the link, it never holds a PIN.
fn transcript(atr: &[u8], exchanges: &[cpx_testkit::Exchange]) -> String {
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02X}")).collect::<String>();
    let mut out = format!("atr {}\n", hex(atr));
    for (command, response) in exchanges {
        let mut command = command.clone();
        if matches!(command.get(1), Some(0x20 | 0x24 | 0x2C)) && command.len() > 5 {
            command[5..].fill(0);
        }
        out.push_str(&format!("{} {}\n", hex(&command), hex(response)));
    }
    out
}

/// Two Firefox TLS logins with `card` (its exchanges recorded in `wire`), for the browser
/// session figures of docs/benchmarks.md (issue 15): the first with the module's disk cache
/// empty, the second in a new Firefox process (new profile, new server) with the cache the first
/// filled. Each login's exchanges, from Firefox's start until the server has the card's
/// certificate, are written by [`transcript_path`]. The warm login must send fewer APDUs than
/// the cold one (the cache works for a browser); the figures themselves are the benchmark's.
pub fn login_figures(
    so: &Path,
    card: Card,
    tls: Tls,
    wire: &cpx_testkit::Recording,
    atr: &[u8],
) -> Result<(), Failed> {
    let cache = temp_dir("browser-cache")?;
    let cache_dir = cache.path().join("cache");
    let mut counts = Vec::new();
    for phase in [Cache::Cold, Cache::Warm] {
        let pki = ServerPki::new()?;
        let server = TlsServer::start(&pki, tls)?;
        wire.take();
        let mut firefox = PolicyFirefox::start_with_env(
            so,
            &pki,
            &format!("{}/", server.origin()),
            &[],
            &[("CPX_PKCS11_CACHE", utf8(&cache_dir))],
        )?;
        let login = firefox.log_in(&server, &card)?;
        let exchanges = wire.take();
        login.assert_one_accepted_pin(&firefox.proc.name);
        server.expect_login(&card, scheme(&card))?;
        drop(firefox);
        let path = transcript_path(so, &card, phase)?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&path, transcript(atr, &exchanges))?;
        eprintln!(
            "{} {} login: {} APDUs, written to {}",
            card.generation(),
            phase.name(),
            exchanges.len(),
            path.display()
        );
        counts.push(exchanges.len());
    }
    assert!(
        counts[1] < counts[0],
        "the warm login sent {} APDUs, the cold one {}: the disk cache did not serve Firefox",
        counts[1],
        counts[0]
    );
    Ok(())
}

/// After another program's logout, how long until neither NSS nor the module can still answer
/// "logged in" from what it knew before: the module asks the card in C_GetSessionInfo when the
/// login was last confirmed more than 1 s ago (docs/pkcs11-module.md, "Several programs on one
/// card"), and NSS keeps C_GetSessionInfo's answer for 1 s (`PK11_IsLoggedIn`,
/// `login_delay_time`): 2 s at most, and a margin. A lower bound only: a slow machine waits longer.
const AFTER_LOGIN_CHECKS: Duration = Duration::from_millis(2500);

/// The module's APDU trace lines in which the card refused a command for want of a verified PIN
/// (`6982`, security status not satisfied): a private-key operation tried without a login.
fn refused_for_no_login(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains(" cpx::apdu] ") && l.trim_end().ends_with(" < 69 82"))
        .map(str::to_string)
        .collect()
}

/// Firefox logs in with `card` (in `reader`) to one server; another program logs the card out
/// (VERIFY P1=FF through PC/SC); Firefox then opens a second server (a new origin, a new server
/// process: a new handshake that needs the card's key, no session to resume). Firefox must ask
/// for the PIN again before it uses the key — one more dialog, one more VERIFY answered 9000,
/// no command refused by the card for want of a login — and the second server must receive the
/// card's certificate and signature. A module that went on calling the card logged in would
/// have NSS sign without a login: no dialog, the card answers 6982, no certificate login.
/// Screenshot of the second page: target/ci-artifacts/browser-firefox-relogin-<card>-<tls>.png
/// (and, if the second login fails, of the screen then: …-relogin-<card>-<tls>-failed.png).
pub fn relogin_after_card_logout(so: &Path, card: Card, reader: &str, tls: Tls) -> Result<(), Failed> {
    let pki = ServerPki::new()?;
    let first = TlsServer::start(&pki, tls)?;
    let second = TlsServer::start(&pki, tls)?;
    // Firefox must be idle when the card is logged out, so that the second server's handshake
    // is its first use of the key after the logout: no favicon fetched over a connection of
    // its own after the page (s_server's -www closes each one), no speculative connections.
    // And the address bar must take the typed URL as typed: no autofill from the first one.
    let quiet = [
        ("browser.chrome.site_icons", "false"),
        ("network.http.speculative-parallel-limit", "0"),
        ("browser.urlbar.autoFill", "false"),
    ];
    let mut firefox = PolicyFirefox::start(so, &pki, &format!("{}/", first.origin()), &quiet)?;
    let login = firefox.log_in(&first, &card)?;
    login.assert_one_accepted_pin(&firefox.proc.name);
    first.expect_login(&card, scheme(&card))?;

    let logout = log_out_card(reader, &card)?;
    eprintln!("another program's logout, the card's answers: {logout:?}");
    assert_eq!(
        logout.before, "9000",
        "Firefox's login is not on the card: {logout:?}"
    );
    assert_eq!(logout.logout, "9000", "the card refused the logout: {logout:?}");
    assert!(
        logout.after.starts_with("63C"),
        "the card still has the PIN verified after the logout: {logout:?}"
    );
    std::thread::sleep(AFTER_LOGIN_CHECKS);

    let name = format!("browser-firefox-relogin-{}-{}", card.generation(), tls.short());
    let relogin = firefox
        .display
        .open_url("firefox", &format!("{}/", second.origin()))
        .and_then(|()| firefox.log_in_unless(&second, &card, |log| !refused_for_no_login(log).is_empty()));
    let relogin = match relogin {
        Ok(relogin) => relogin,
        Err(e) => {
            let _ = firefox
                .display
                .screenshot(&artifact(so, &format!("{name}-failed"))?);
            return Err(format!(
                "{}\nthe second server saw {} ClientHello(s); its log:\n{}",
                e.message().unwrap_or("?"),
                second.handshakes().len(),
                second.log()
            )
            .into());
        }
    };
    eprintln!(
        "{}: PIN trace after the logout {:?}",
        firefox.proc.name, relogin.trace
    );
    let refused = refused_for_no_login(&read_text(&firefox.log));
    assert!(
        refused.is_empty(),
        "Firefox used the key without a login after the logout (the module still called the \
         card logged in): {refused:#?}"
    );
    assert_eq!(
        relogin.prompts, 1,
        "after the card was logged out, Firefox must ask for the PIN once"
    );
    assert_eq!(
        relogin.trace.verifies,
        ["9000", "9000"],
        "the second login must send the PIN to the card again: {:?}",
        relogin.trace
    );
    second.expect_login(&card, scheme(&card))?;
    firefox.screenshot(so, &name)
}

/// The shipped manifest, for the built library, admitting the test extension besides those it
/// lists. As shipped (`"allowed_extensions": []`) no extension may install the module.
fn manifest(so: &Path) -> Result<String, Failed> {
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../packaging/mozilla/cpx.json"
    ))?;
    assert!(shipped.contains(r#""type": "pkcs11""#), "{shipped}");
    let dir = so.parent().ok_or("module without directory")?;
    let text = shipped.replace("@PKCS11_DIR@", utf8(dir));
    let key = r#""allowed_extensions": ["#;
    let at = text
        .find(key)
        .ok_or_else(|| format!("no allowed_extensions:\n{shipped}"))?
        + key.len();
    let listed = !text[at..].trim_start().starts_with(']');
    let ours = format!("\"{EXTENSION_ID}\"{}", if listed { ", " } else { "" });
    Ok(format!("{}{ours}{}", &text[..at], &text[at..]))
}

/// The test extension: installs the module by its manifest name and prints the slots Firefox
/// then sees, through the module.
fn extension(dir: &Path, profile: &Path) -> Result<(), Failed> {
    let src = dir.join("extension");
    std::fs::create_dir_all(&src)?;
    std::fs::write(
        src.join("manifest.json"),
        format!(
            r#"{{ "manifest_version": 2, "name": "cpx pkcs11 test", "version": "1.0",
  "browser_specific_settings": {{ "gecko": {{ "id": "{EXTENSION_ID}" }} }},
  "permissions": ["pkcs11"], "background": {{ "scripts": ["background.js"] }} }}
"#
        ),
    )?;
    std::fs::write(
        src.join("background.js"),
        r#"(async () => {
  if (!(await browser.pkcs11.isModuleInstalled("cpx"))) {
    await browser.pkcs11.installModule("cpx", 0);
  }
  const slots = await browser.pkcs11.getModuleSlots("cpx");
  console.log("cpx-test: slots " + JSON.stringify(slots));
})().catch((e) => console.log("cpx-test: error " + e));
"#,
    )?;
    let extensions = profile.join("extensions");
    std::fs::create_dir_all(&extensions)?;
    let xpi = extensions.join(format!("{EXTENSION_ID}.xpi"));
    run(
        "sh",
        &[
            "-c",
            r#"cd "$1" && zip -q -X "$2" manifest.json background.js"#,
            "zip",
            utf8(&src),
            utf8(&xpi),
        ],
        &[],
    )?;
    Ok(())
}

/// Firefox, headless, loads the module through the native manifest: the extension installs
/// "cpx" and sees the card's token in the module's slots.
pub fn native_manifest(so: &Path, card: Card) -> Result<(), Failed> {
    let tmp = temp_dir("firefox-manifest")?;
    let dir = tmp.path();
    let home = dir.join("home");
    std::fs::create_dir_all(&home)?;
    let mozilla = dir.join("usr-lib-mozilla");
    std::fs::create_dir_all(mozilla.join("pkcs11-modules"))?;
    std::fs::write(mozilla.join("pkcs11-modules/cpx.json"), manifest(so)?)?;
    // Unsigned extensions: Firefox ESR honours xpinstall.signatures.required = false; one in
    // the profile's extensions directory is enabled without asking when no scope is excluded.
    let profile = profile(
        dir,
        None,
        &[
            ("xpinstall.signatures.required", "false"),
            ("extensions.autoDisableScopes", "0"),
            ("extensions.enabledScopes", "15"),
            // The extension's console.log reaches stdout (the background page is "content").
            ("devtools.console.stdout.content", "true"),
        ],
    )?;
    extension(dir, &profile)?;
    let log = dir.join("firefox.log");
    let _firefox = launch(
        &[(&mozilla, MOZILLA_LIB)],
        &[("HOME", utf8(&home))],
        &["-headless", "-profile", utf8(&profile), "about:blank"],
        &log,
    )?;
    wait_until("the test extension's report", Duration::from_secs(60), || {
        Ok(read_text(&log).contains("cpx-test: "))
    })
    .map_err(|e| format!("{}:\n{}", e.message().unwrap_or("?"), read_text(&log)))?;
    let text = read_text(&log);
    let report = text
        .lines()
        .find(|l| l.contains("cpx-test: "))
        .ok_or("no report")?;
    assert!(report.contains("cpx-test: slots"), "{report}");
    assert!(
        report.contains(card.token),
        "the card's token is not in the slots: {report}"
    );
    assert!(
        text.contains("cpx PKCS#11 module"),
        "the module did not log:\n{text}"
    );
    assert!(
        module_listed(&profile, so),
        "{}",
        read_text(&profile.join("pkcs11.txt"))
    );
    Ok(())
}

/// Firefox, with the module from policies.json, logs in with `card` in the sandbox's PIN-pad
/// reader to a server limited to `tls`, the PIN typed on the pad (the keypad script), nothing
/// typed into Firefox. The module gives the token CKF_PROTECTED_AUTHENTICATION_PATH, so NSS
/// calls C_Login with no PIN and Firefox asks for none: a "Password Required" dialog fails the
/// trial at once (screenshot …-password-dialog.png). The card holds its VERIFY (the user still
/// typing on the pad) until Firefox's "Protected Authentication" window shows, kept as
/// target/ci-artifacts/browser-pinpad-firefox-<card>-<tls>-dialog.png, or for
/// [`crate::pinpad::HOLD_AT_MOST`] if none shows. Verdicts: the server received the card's
/// certificate and the expected signature scheme; the keypad's entry was used and the card
/// received exactly that one VERIFY, with the keypad's digits, answered 9000. The page:
/// target/ci-artifacts/browser-pinpad-firefox-<card>-<tls>.png.
pub fn pinpad_login(so: &Path, card: Card, tls: Tls) -> Result<(), Failed> {
    let pad = PadCard::insert_held(&card)?;
    let pki = ServerPki::new()?;
    let server = TlsServer::start(&pki, tls)?;
    let mut firefox = PolicyFirefox::start(so, &pki, &format!("{}/", server.origin()), &[])?;
    let name = format!("browser-pinpad-firefox-{}-{}", card.generation(), tls.short());
    let pem = card.auth_pem()?;
    let deadline = Instant::now() + STEP;
    let mut dialog_seen = false;
    loop {
        if server
            .handshakes()
            .iter()
            .any(|h| h.answered && h.client_certs.first().is_some_and(|c| c.trim() == pem.trim()))
        {
            break;
        }
        let log = read_text(&firefox.log);
        if !firefox.proc.running() {
            return Err(format!("firefox-esr exited:\n{log}").into());
        }
        if !firefox.display.windows(PIN_DIALOG)?.is_empty() {
            let _ = firefox.display.screenshot_window(
                PIN_DIALOG,
                &artifact(so, &format!("{name}-password-dialog"))?,
                Duration::from_secs(10),
            );
            return Err(format!(
                "Firefox asks for a password for the token in the PIN-pad reader: NSS does not \
                 see CKF_PROTECTED_AUTHENTICATION_PATH on it; module log:\n{log}"
            )
            .into());
        }
        let failed = PinTrace::parse(&log).failed;
        if !failed.is_empty() {
            return Err(format!("the module's C_Login failed: {failed:#?}\n{log}").into());
        }
        if !dialog_seen && !firefox.display.windows(PROTECTED_AUTH_DIALOG)?.is_empty() {
            dialog_seen = true;
            firefox.display.screenshot_window(
                PROTECTED_AUTH_DIALOG,
                &artifact(so, &format!("{name}-dialog"))?,
                Duration::from_secs(10),
            )?;
            pad.gate.open();
        }
        if Instant::now() > deadline {
            return Err(format!(
                "Firefox did not log in within {STEP:?} (protected authentication window seen: \
                 {dialog_seen}; VERIFY at the card: {:?}); its log:\n{log}",
                pad.verifies()
            )
            .into());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    pad.gate.open();
    eprintln!(
        "firefox-esr: the \"Protected Authentication\" window {} while the card waited for the pad",
        if dialog_seen { "showed" } else { "did not show" }
    );
    pad.assert_pad_login("firefox-esr");
    server.expect_login(&card, scheme(&card))?;
    assert!(
        firefox.display.windows(PIN_DIALOG)?.is_empty(),
        "Firefox asks for a password after the login"
    );
    firefox.screenshot(so, &name)
}

/// The control of [`pinpad_login`]: the same card in the same PIN-pad reader, the module told
/// not to use the pad (`CPX_PINPAD=off` in Firefox's environment, docs/pkcs11-module.md): the
/// token has no protected authentication path, and Firefox must ask for the PIN in its
/// "Password Required" dialog — the dialog [`pinpad_login`] fails on. Nothing is typed into it;
/// the keypad's entry stays unused and the card receives no VERIFY. The dialog:
/// target/ci-artifacts/browser-pinpad-off-firefox-<card>-password-dialog.png.
pub fn pinpad_off_asks_password(so: &Path, card: Card, tls: Tls) -> Result<(), Failed> {
    let pad = PadCard::insert(&card)?;
    let pki = ServerPki::new()?;
    let server = TlsServer::start(&pki, tls)?;
    let mut firefox = PolicyFirefox::start_with_env(
        so,
        &pki,
        &format!("{}/", server.origin()),
        &[],
        &[("CPX_PINPAD", "off")],
    )?;
    wait_until("Firefox's password dialog", STEP, || {
        if !firefox.proc.running() {
            return Err(format!("firefox-esr exited:\n{}", read_text(&firefox.log)).into());
        }
        Ok(!firefox.display.windows(PIN_DIALOG)?.is_empty())
    })
    .map_err(|e| {
        format!(
            "{}; with the pad turned off Firefox must ask for the PIN; its log:\n{}",
            e.message().unwrap_or("?"),
            read_text(&firefox.log)
        )
    })?;
    firefox.display.screenshot_window(
        PIN_DIALOG,
        &artifact(
            so,
            &format!("browser-pinpad-off-firefox-{}-password-dialog", card.generation()),
        )?,
        Duration::from_secs(10),
    )?;
    assert_eq!(pad.keypad_left(), 1, "the pad was used although turned off");
    assert!(
        pad.verifies().is_empty(),
        "the card received a VERIFY with nothing typed: {:?}",
        pad.verifies()
    );
    assert!(
        !server.any_client_certificate(),
        "a login without the PIN:\n{}",
        server.log()
    );
    Ok(())
}
