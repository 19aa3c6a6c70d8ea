//! The fake workstation and the `cpx doctor` runner of tests/doctor.rs (included there with
//! `#[path]`, not by the other test binaries).
#![allow(
    dead_code,
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::Value;

use crate::common::*;

/// Every check, in report order.
pub const IDS: [&str; 13] = [
    "pcscd",
    "readers",
    "card",
    "certificates",
    "pin",
    "pin-pad",
    "module",
    "p11-kit",
    "p11-kit-others",
    "nss-chromium",
    "firefox",
    "browser-packaging",
    "nfc-kernel-driver",
];

pub const PKI: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../test-vectors/pki");
pub const NO_PCSCD: (&str, &str) = ("PCSCLITE_CSOCK_NAME", "/nonexistent/cpx-doctor/pcscd.comm");
pub const FIREFOX: &str = ".mozilla/firefox";
pub const PROFILE: &str = "abcd.default-release";

/// A fake workstation: `home/` for HOME, `root/` for CPX_DOCTOR_ROOT (with a `/proc/modules`
/// free of NFC drivers).
pub struct Workstation {
    pub dir: tempfile::TempDir,
}

impl Workstation {
    pub fn new() -> Workstation {
        let ws = Workstation {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir_all(ws.home()).unwrap();
        ws.at_root(
            "proc/modules",
            "usbhid 65536 0 - Live 0x0000000000000000\next4 1015808 1 - Live 0x0000000000000000\n",
        );
        ws
    }

    /// Registered everywhere a host application looks: p11-kit's system directory, Chromium's
    /// NSS database and one Firefox profile.
    pub fn registered(lib: &Path) -> Workstation {
        let ws = Workstation::new();
        ws.at_root(
            "etc/pkcs11/modules/cpx.module",
            &format!("module: {}\n", lib.display()),
        );
        ws.at_home(".pki/nssdb/pkcs11.txt", &pkcs11_txt(Some(lib)));
        ws.firefox_profile(FIREFOX, Some(lib));
        ws
    }

    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    pub fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    pub fn at_home(&self, rel: &str, text: &str) {
        Self::write(&self.home().join(rel), text);
    }

    pub fn at_root(&self, rel: &str, text: &str) {
        Self::write(&self.root().join(rel), text);
    }

    /// A profiles.ini with one profile under `base` (relative to HOME), its pkcs11.txt naming
    /// `lib` or not. Returns the profile directory.
    pub fn firefox_profile(&self, base: &str, lib: Option<&Path>) -> PathBuf {
        self.at_home(
            &format!("{base}/profiles.ini"),
            &format!(
                "[General]\nStartWithLastProfile=1\n\n[Profile0]\nName=default-release\n\
                 IsRelative=1\nPath={PROFILE}\nDefault=1\n\n[Install4F96D1932A9F858E]\n\
                 Default={PROFILE}\n"
            ),
        );
        self.at_home(&format!("{base}/{PROFILE}/pkcs11.txt"), &pkcs11_txt(lib));
        self.home().join(base).join(PROFILE)
    }
}

/// An NSS `pkcs11.txt` as certutil/modutil write it: the internal module, and ours if given.
pub fn pkcs11_txt(lib: Option<&Path>) -> String {
    let mut text = String::from(
        "library=\nname=NSS Internal PKCS #11 Module\nparameters=configdir='sql:/x' \
         certPrefix='' keyPrefix='' secmod='secmod.db'\nNSS=Flags=internal,critical \
         trustOrder=75 cipherOrder=100\n\n",
    );
    if let Some(lib) = lib {
        text.push_str(&format!("library={}\nname=CPx\n", lib.display()));
    }
    text
}

/// `cpx doctor args`, once in text and once with --json: the same exit code, the JSON schema
/// checked, and every check's verdict line, details and fix found in the text.
pub struct Doctor {
    pub code: i32,
    pub text: String,
    pub json: Value,
    pub stderr: String,
}

pub fn doctor(ws: &Workstation, args: &[&str], env: &[(&str, &str)]) -> Doctor {
    let run = |json: bool| {
        let mut cmd = cpx();
        cmd.arg("doctor")
            .args(args)
            .args(json.then_some("--json"))
            .env("HOME", ws.home())
            .env("CPX_DOCTOR_ROOT", ws.root())
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("XDG_DATA_HOME")
            .env_remove("P11_KIT_NO_USER_CONFIG")
            .envs(env.iter().copied())
            .stdin(Stdio::null());
        cmd.output().unwrap()
    };
    let text_out = run(false);
    let json_out = run(true);
    let code = text_out.status.code().unwrap();
    assert_eq!(
        json_out.status.code(),
        Some(code),
        "{}\n{}\nstderr of the JSON run:\n{}",
        stdout(&text_out),
        stdout(&json_out),
        stderr(&json_out)
    );
    let json: Value = serde_json::from_slice(&json_out.stdout)
        .unwrap_or_else(|e| panic!("{e}: not JSON:\n{}", stdout(&json_out)));
    let d = Doctor {
        code,
        text: stdout(&text_out),
        json,
        stderr: stderr(&json_out),
    };
    d.check_schema();
    d.check_text();
    d
}

impl Doctor {
    /// docs/cli-json.md, `cpx/doctor` v1; the exit code and stderr (of the JSON run) follow
    /// the verdicts.
    pub fn check_schema(&self) {
        let v = &self.json;
        assert_eq!(v["schema"], "cpx/doctor", "{v}");
        assert_eq!(v["version"], 1, "{v}");
        check(
            v,
            &[
                ("ok", "boolean"),
                ("counts.ok", "integer"),
                ("counts.warn", "integer"),
                ("counts.fail", "integer"),
                ("counts.skip", "integer"),
                ("reader", "string|null"),
                ("token_label", "string|null"),
                ("module", "string|null"),
                ("checks", "array"),
            ],
        );
        let checks = v["checks"].as_array().unwrap();
        let ids: Vec<&str> = checks.iter().map(|c| c["id"].as_str().unwrap()).collect();
        assert_eq!(ids, IDS, "{v}");
        let mut failed = Vec::new();
        for c in checks {
            check(
                c,
                &[
                    ("id", "string"),
                    ("verdict", "string"),
                    ("finding", "string"),
                    ("fix", "string|null"),
                    ("details", "array"),
                ],
            );
            let verdict = c["verdict"].as_str().unwrap();
            assert!(["ok", "warn", "fail", "skip"].contains(&verdict), "{c}");
            // a problem always comes with its fix, and only a problem has one
            assert_eq!(
                c["fix"].is_string(),
                verdict == "warn" || verdict == "fail",
                "{c}"
            );
            assert!(!c["finding"].as_str().unwrap().is_empty(), "{c}");
            if verdict == "fail" {
                failed.push(c["id"].as_str().unwrap());
            }
        }
        for verdict in ["ok", "warn", "fail", "skip"] {
            let n = checks.iter().filter(|c| c["verdict"] == verdict).count();
            assert_eq!(v["counts"][verdict], n, "{v}");
        }
        assert_eq!(v["ok"], failed.is_empty());
        if failed.is_empty() {
            assert_eq!(self.code, 0, "{}", self.stderr);
        } else {
            assert_eq!(self.code, 13, "{}", self.stderr);
            assert!(
                self.stderr
                    .contains(&format!("cpx: doctor: failed: {}", failed.join(", "))),
                "{}",
                self.stderr
            );
        }
    }

    /// The text run says what the JSON run says: each verdict line and fix.
    pub fn check_text(&self) {
        for c in self.json["checks"].as_array().unwrap() {
            let verdict = match c["verdict"].as_str().unwrap() {
                "ok" => "ok",
                "warn" => "WARN",
                "fail" => "FAIL",
                _ => "skip",
            };
            let head = format!(
                "{verdict:<5} {:<18} {}\n",
                c["id"].as_str().unwrap(),
                c["finding"].as_str().unwrap()
            );
            assert!(self.text.contains(&head), "{head:?} not in:\n{}", self.text);
            if let Some(fix) = c["fix"].as_str() {
                let line = format!("\n{:<24}fix: {fix}\n", "");
                assert!(self.text.contains(&line), "{line:?} not in:\n{}", self.text);
            }
        }
        let counts = &self.json["counts"];
        let warnings = counts["warn"].as_u64().unwrap();
        let summary = format!(
            "{} ok, {warnings} warning{}, {} failed, {} skipped\n",
            counts["ok"],
            if warnings == 1 { "" } else { "s" },
            counts["fail"],
            counts["skip"]
        );
        assert!(self.text.ends_with(&summary), "{summary:?}:\n{}", self.text);
    }

    pub fn get(&self, id: &str) -> &Value {
        self.json["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .unwrap()
    }

    /// Check `id` has `verdict`, its finding contains `finding`, and its fix contains `fix`
    /// (or there is none).
    pub fn expect(&self, id: &str, verdict: &str, finding: &str, fix: Option<&str>) -> &Self {
        let c = self.get(id);
        assert_eq!(
            c["verdict"], verdict,
            "{id}: {c}\n{}\nstderr of the JSON run:\n{}",
            self.text, self.stderr
        );
        let f = c["finding"].as_str().unwrap();
        assert!(f.contains(finding), "{id}: {finding:?} not in {f:?}");
        match fix {
            Some(want) => {
                let got = c["fix"].as_str().unwrap_or_default();
                assert!(got.contains(want), "{id}: fix {want:?} not in {got:?}");
            }
            None => assert!(c["fix"].is_null(), "{id}: {c}"),
        }
        self
    }

    pub fn details(&self, id: &str) -> Vec<String> {
        self.get(id)["details"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_str().unwrap().to_owned())
            .collect()
    }

    pub fn fix(&self, id: &str) -> String {
        self.get(id)["fix"].as_str().unwrap().to_owned()
    }
}

/// The workstation checks of a fully registered workstation.
pub fn workstation_ok(d: &Doctor, ws: &Workstation) {
    d.expect(
        "p11-kit",
        "ok",
        &format!(
            "registered in {}",
            ws.root().join("etc/pkcs11/modules/cpx.module").display()
        ),
        None,
    )
    .expect(
        "nss-chromium",
        "ok",
        &format!("{} loads ", ws.home().join(".pki/nssdb").display()),
        None,
    )
    .expect("firefox", "ok", "1 Firefox profile loads libcpx_pkcs11.so", None)
    .expect("browser-packaging", "ok", "no snap or Flatpak browser", None)
    .expect("nfc-kernel-driver", "ok", "no kernel NFC driver loaded", None);
}

/// The command in a fix written "…then: CMD (package …)" / "…then for each: CMD (package …)".
pub fn command_in(fix: &str) -> String {
    let start = fix.find(": ").unwrap() + 2;
    let end = fix.find(" (package libnss3-tools)").unwrap();
    fix[start..end].to_owned()
}

/// Run a fix command as a support desk would paste it.
pub fn sh(command: &str, ws: &Workstation) {
    let out = std::process::Command::new("sh")
        .args(["-c", command])
        .env("HOME", ws.home())
        .env(NO_PCSCD.0, NO_PCSCD.1)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{command}: {}{}",
        stdout(&out),
        stderr(&out)
    );
}

/// Debian's triplet of this build, as the doctor uses it.
pub fn multiarch() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "aarch64-linux-gnu",
        "x86_64" => "x86_64-linux-gnu",
        other => panic!("add {other} to the test"),
    }
}

/// Whether this test runs as root (p11-kit then ignores the user's directory).
pub fn root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").unwrap().uid() == 0
}
