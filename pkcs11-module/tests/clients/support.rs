//! What the client tests share: the two emulated cards and their facts, running programs with a
//! bounded wait, and processes that are killed (with all their children) when dropped.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cpx_testkit::Failed;
use x509_parser::prelude::*;

/// The PIN of every emulated card (crates/cpx-emulator images, test-vectors/cards/*/card.toml).
pub const PIN: &str = "1234";

/// How long any one client, browser step or server may take before the test fails.
pub const STEP: Duration = Duration::from_secs(60);

/// One emulated card and what a TLS server must see of it.
#[derive(Debug, Clone, Copy)]
pub struct Card {
    /// The built-in emulator image.
    pub stem: &'static str,
    /// Its PKCS#11 token label (TokenInfo serial, docs/card-spec.md §5.1).
    pub token: &'static str,
}

/// The CPS3 (IAS-ECC): PKCS#1 v1.5 signatures only (docs/card-spec.md §4.1, Tableau 2).
pub const CPS3: Card = Card {
    stem: "cps3-doctor",
    token: "CPS3v3-9900000001",
};

/// The CPS4 (ChipDoc): PKCS#1 v1.5 and RSA-PSS (docs/card-spec.md §4.1, Tableau 2).
pub const CPS4: Card = Card {
    stem: "cps4-doctor",
    token: "CPS4v1-9900000006",
};

/// The label of the authentication certificate on both generations (the card's CDF).
pub const AUTH_CERT_LABEL: &str = "Certificat d'Authentification CPS";

/// The label of the signature (non-repudiation) certificate on both generations.
pub const SIGN_CERT_LABEL: &str = "Certificat de Signature CPS";

impl Card {
    /// The generation, for file names and messages: `cps3` or `cps4`.
    pub fn generation(&self) -> &'static str {
        self.stem.split('-').next().unwrap_or(self.stem)
    }

    /// The authentication certificate the emulator carries (the image is compiled from this
    /// file), independent of the module: what the server must receive.
    pub fn auth_der(&self) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../test-vectors/cards")
            .join(self.stem)
            .join("auth.der")
    }

    /// The signature certificate the emulator carries (what an S/MIME signature must name).
    pub fn sign_der(&self) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../test-vectors/cards")
            .join(self.stem)
            .join("sign.der")
    }

    /// The authentication certificate in PEM, as OpenSSL prints it (the server's trace prints
    /// it so).
    pub fn auth_pem(&self) -> Result<String, Failed> {
        let der = self.auth_der();
        run("openssl", &["x509", "-inform", "der", "-in", utf8(&der)], &[])
    }

    /// The subject CN of the authentication certificate (the RPPS number).
    pub fn auth_cn(&self) -> Result<String, Failed> {
        let der = std::fs::read(self.auth_der())?;
        let (_, cert) = X509Certificate::from_der(&der).map_err(|e| e.to_string())?;
        let cn = cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .ok_or("no CN in the authentication certificate")?;
        Ok(cn.to_string())
    }

    /// RFC 7512 URI of the authentication key (what the OpenSSL engine, the provider and
    /// GnuTLS take), without PIN.
    pub fn key_uri(&self) -> String {
        format!("pkcs11:token={};object=CPS_PRIV_AUT;type=private", self.token)
    }

    /// RFC 7512 URI of the authentication certificate (the label percent-encoded).
    pub fn cert_uri(&self) -> String {
        format!(
            "pkcs11:token={};object=Certificat%20d%27Authentification%20CPS;type=cert",
            self.token
        )
    }
}

/// Runs a program; its output (stdout and stderr) when it exits with 0, an error with the
/// output otherwise. Outputs are not printed: the checks put what matters in their messages.
pub fn run(program: &str, args: &[&str], env: &[(&str, &str)]) -> Result<String, Failed> {
    let (ok, text) = run_status(program, args, env)?;
    if !ok {
        return Err(format!("{program} {args:?} failed:\n{text}").into());
    }
    Ok(text)
}

/// Runs a program to its end (bounded by [`STEP`]); whether it exited with 0, and its output.
pub fn run_status(program: &str, args: &[&str], env: &[(&str, &str)]) -> Result<(bool, String), Failed> {
    run_with_input(program, args, env, None)
}

/// [`run_status`], with `input` written to the program's stdin, which stays open until the
/// program exits (a TLS client that sees end-of-file on stdin may close before the answer).
pub fn run_with_input(
    program: &str,
    args: &[&str],
    env: &[(&str, &str)],
    input: Option<&[u8]>,
) -> Result<(bool, String), Failed> {
    let dir = temp_dir("run")?;
    let out_path = dir.path().join("out");
    let out = File::create(&out_path)?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(out.try_clone()?)
        .stderr(out);
    let mut proc = Proc::spawn(program, &mut cmd)?;
    let mut stdin = proc.child.stdin.take();
    if let (Some(data), Some(pipe)) = (input, stdin.as_mut()) {
        pipe.write_all(data)?;
        pipe.flush()?;
    }
    if input.is_none() {
        drop(stdin.take());
    }
    let status = proc.wait(STEP)?;
    drop(stdin);
    let mut text = String::new();
    File::open(&out_path)?.read_to_string(&mut text)?;
    Ok((status, text))
}

/// A program started in its own process group; dropping it kills the whole group (a browser's
/// helpers, a shell's children) and reaps it.
#[derive(Debug)]
pub struct Proc {
    /// What it is, for messages.
    pub name: String,
    /// The process (the group leader).
    pub child: Child,
    done: bool,
}

impl Proc {
    /// Spawns `cmd` as the leader of a new process group.
    pub fn spawn(name: &str, cmd: &mut Command) -> Result<Self, Failed> {
        let child = cmd
            .process_group(0)
            .spawn()
            .map_err(|e| format!("{name}: {e} (see scripts/system-packages.sh)"))?;
        Ok(Self {
            name: name.to_string(),
            child,
            done: false,
        })
    }

    /// Waits for the process to exit, at most `limit`; whether it exited with 0.
    pub fn wait(&mut self, limit: Duration) -> Result<bool, Failed> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait()? {
                self.done = true;
                return Ok(status.success());
            }
            if Instant::now() > deadline {
                return Err(format!("{} still running after {limit:?}", self.name).into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // The group, not only the leader: the leader may be a shell or a launcher whose
        // children would otherwise outlive the test. TERM first, so that Xvfb removes its
        // lock file and socket; KILL for whatever is left a second later.
        let group = format!("-{}", self.child.id());
        let kill = |signal: &str| {
            let _ = Command::new("kill")
                .args([signal, "--", &group])
                .stderr(Stdio::null())
                .status();
        };
        kill("-TERM");
        let deadline = Instant::now() + Duration::from_secs(1);
        while !self.done && Instant::now() < deadline {
            self.done = matches!(self.child.try_wait(), Ok(Some(_)));
            std::thread::sleep(Duration::from_millis(20));
        }
        kill("-KILL");
        if !self.done {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Polls `ready` every 100 ms until it holds; an error naming `what` after `limit`.
pub fn wait_until(
    what: &str,
    limit: Duration,
    mut ready: impl FnMut() -> Result<bool, Failed>,
) -> Result<(), Failed> {
    let deadline = Instant::now() + limit;
    loop {
        if ready()? {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("timed out after {limit:?} waiting for {what}").into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A file's text, empty while it does not exist yet.
pub fn read_text(path: &Path) -> String {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// A fresh temporary directory, removed when dropped.
pub fn temp_dir(what: &str) -> Result<tempfile::TempDir, Failed> {
    Ok(tempfile::Builder::new()
        .prefix(&format!("cpx-clients-{what}-"))
        .tempdir()?)
}

/// A path as `&str` (temporary and repository paths are UTF-8 here).
pub fn utf8(p: &Path) -> &str {
    p.to_str().expect("paths are UTF-8")
}

/// `unshare` arguments for a private mount namespace: as root `-m`; otherwise also `-r` (a user
/// namespace where we are root, so that `mount --bind` is allowed).
pub fn unshare_mount() -> Result<Vec<&'static str>, Failed> {
    let uid = run("id", &["-u"], &[])?;
    let mut args = if uid.trim() == "0" {
        vec!["-m"]
    } else {
        vec!["-r", "-m"]
    };
    args.extend(["--propagation", "private"]);
    Ok(args)
}

/// A p11-kit module directory holding only the module file we ship
/// (packaging/p11-kit/cpx.module, naming the built library instead of the installed one), and
/// an empty directory. p11-kit ignores per-user configuration for root, so the tests mount the
/// first over /usr/share/p11-kit/modules and the second over /etc/pkcs11 (where a local
/// configuration could disable modules) in a private mount namespace, as peers.rs does.
pub fn p11_kit_dirs(so: &Path, dir: &Path) -> Result<(PathBuf, PathBuf), Failed> {
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../packaging/p11-kit/cpx.module"
    ))?;
    let line = "module: libcpx_pkcs11.so";
    assert!(shipped.lines().any(|l| l == line), "{shipped}");
    let modules = dir.join("p11-kit-modules");
    std::fs::create_dir_all(&modules)?;
    std::fs::write(
        modules.join("cpx.module"),
        shipped.replace(line, &format!("module: {}", utf8(so))),
    )?;
    let etc = dir.join("p11-kit-etc");
    std::fs::create_dir_all(&etc)?;
    Ok((modules, etc))
}

/// p11-kit-proxy.so, in its multiarch directory.
pub fn p11_kit_proxy() -> Result<PathBuf, Failed> {
    for entry in std::fs::read_dir("/usr/lib")? {
        let candidate = entry?.path().join("p11-kit-proxy.so");
        if candidate.exists() {
            return Ok(candidate);
        }
    }
    Err("p11-kit-proxy.so not found (package p11-kit-modules)".into())
}
