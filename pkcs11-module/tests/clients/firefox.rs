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
use std::time::Duration;

use cpx_testkit::Failed;

use crate::display::{Display, MODULE_LOG, artifact};
use crate::server::{PKCS1_SHA256, PSS_SHA256, ServerPki, Tls, TlsServer};
use crate::support::{CPS3, Card, Proc, read_text, run, temp_dir, unshare_mount, utf8, wait_until};

/// Debian's firefox-esr reads policies.json here (or in /etc/firefox/policies/, which wins).
const DISTRIBUTION: &str = "/usr/lib/firefox-esr/distribution";
/// Where Firefox looks for system-wide native manifests (the firefox-esr package owns it).
const MOZILLA_LIB: &str = "/usr/lib/mozilla";
/// The title of Firefox's dialog asking for a token's PIN.
const PIN_DIALOG: &str = "^Password Required";
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

/// Firefox, with the module from policies.json, logs in with `card` to a server limited to
/// `tls` (certificate chosen by `security.default_personal_cert`, PIN typed into Firefox's
/// dialog). Screenshot: target/ci-artifacts/browser-firefox-<card>-<tls>.png.
pub fn policy_login(so: &Path, card: Card, tls: Tls) -> Result<(), Failed> {
    let pki = ServerPki::new()?;
    let server = TlsServer::start(&pki, tls)?;
    let dir = pki.dir().join("firefox");
    let home = dir.join("home");
    std::fs::create_dir_all(&home)?;
    let profile = profile(
        &dir,
        Some(&pki.ca),
        &[
            ("security.default_personal_cert", "\"Select Automatically\""),
            ("browser.shell.checkDefaultBrowser", "false"),
            ("datareporting.policy.dataSubmissionEnabled", "false"),
        ],
    )?;
    let dist = policy_dir(so, &dir)?;
    let display = Display::start()?;
    let log = dir.join("firefox.log");
    let url = format!("{}/", server.origin());
    let mut firefox = launch(
        &[(&dist, DISTRIBUTION)],
        &[("HOME", utf8(&home)), ("DISPLAY", &display.name)],
        &["-profile", utf8(&profile), &url],
        &log,
    )?;
    let pem = card.auth_pem()?;
    let login = display.answer_pin_dialogs(&mut firefox, &log, PIN_DIALOG, 2, || {
        Ok(server
            .handshakes()
            .iter()
            .any(|h| h.answered && h.client_certs.first().is_some_and(|c| c.trim() == pem.trim())))
    })?;
    login.assert_one_accepted_pin(&firefox.name);
    let scheme = if card.stem == CPS3.stem {
        PKCS1_SHA256
    } else {
        PSS_SHA256
    };
    server.expect_login(&card, scheme)?;
    assert!(
        module_listed(&profile, so),
        "{}",
        read_text(&profile.join("pkcs11.txt"))
    );
    // Cosmetic, for the screenshot only (the verdict is above): the page renders.
    std::thread::sleep(Duration::from_millis(500));
    display.find_in_page("firefox", "Subject: C=FR");
    let name = format!("browser-firefox-{}-{}", card.generation(), tls.short());
    display.screenshot(&artifact(so, &name)?)?;
    Ok(())
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
