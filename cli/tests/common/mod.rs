//! Shared helpers of the real-stack CLI tests: emulated cards behind the sandbox's pcscd, a wire
//! recorder, `cpx` runs, and a small checker for the JSON schemas of docs/cli-json.md.
#![allow(
    dead_code,
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use cpx_testkit::{Failed, ReaderLease, insert_image};
use cpx_vpcd::{CardSlot, VirtualCard};

/// How long a test waits for PC/SC (or pcscd) to show a change: the testkit's generous deadline.
pub const SEEN: Duration = cpx_testkit::DEADLINE;
pub const PIN: &str = "1234";
pub const PUK: &str = "12345678";

/// Every APDU that reached the card, with its response.
pub type Wire = cpx_testkit::Recording;

pub fn emulated(stem: &str) -> Box<dyn VirtualCard> {
    cpx_testkit::emulated(stem).unwrap()
}

/// A reader of our own with the emulated `stem` in it, and the wire of that card.
pub struct Inserted {
    pub lease: ReaderLease,
    pub slot: CardSlot,
    pub wire: Wire,
}

impl Inserted {
    pub fn reader(&self) -> &str {
        &self.lease.name
    }

    /// VERIFY / CHANGE REFERENCE DATA / RESET RETRY COUNTER commands seen with data (a try
    /// spent or a code presented), ignoring the empty status VERIFYs of the CPS4.
    pub fn pin_commands(&self) -> usize {
        self.wire
            .commands()
            .iter()
            .filter(|a| a.len() > 5 && matches!(a[1], 0x20 | 0x24 | 0x2C))
            .count()
    }
}

pub fn insert(stem: &str) -> Result<Inserted, Failed> {
    let (lease, slot, wire) = insert_image(stem)?;
    Ok(Inserted { lease, slot, wire })
}

pub fn cpx() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cpx"))
}

/// Run `cpx args` with `stdin` fed in.
pub fn run(args: &[&str], stdin: &str) -> Output {
    let mut child = cpx()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

/// Run `cpx args` (no stdin), killed and failed if it has not exited within `limit`.
pub fn run_within(args: &[&str], limit: Duration) -> Result<Output, Failed> {
    use std::io::Read;
    let mut child = cpx()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let out = drain(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let err = drain(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let deadline = std::time::Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (stdout, stderr) = (out.join().unwrap(), err.join().unwrap());
    match status {
        Some(status) => Ok(Output {
            status,
            stdout,
            stderr,
        }),
        None => Err(format!(
            "cpx {args:?} still running after {limit:?}, killed; stderr:\n{}",
            String::from_utf8_lossy(&stderr)
        )
        .into()),
    }
}

/// `cpx args --reader R` on our reader.
pub fn on(card: &Inserted, args: &[&str], stdin: &str) -> Output {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--reader", card.reader()]);
    run(&all, stdin)
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Exit code `code`, else a failure showing both streams.
pub fn expect_code(o: &Output, code: i32) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        stdout(o),
        stderr(o)
    );
}

/// The JSON document on stdout, with its schema and version checked.
pub fn json(o: &Output, schema: &str) -> serde_json::Value {
    expect_code(o, 0);
    let v: serde_json::Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: not JSON:\n{}", stdout(o)));
    assert_eq!(v["schema"], format!("cpx/{schema}"), "{v}");
    assert_eq!(v["version"], 1, "{v}");
    v
}

/// JSON types of docs/cli-json.md: `string`, `integer`, `boolean`, `array`, `object`, and
/// `T|null` for nullable.
pub fn check(v: &serde_json::Value, fields: &[(&str, &str)]) {
    for (path, ty) in fields {
        let mut cur = v;
        for part in path.split('.') {
            cur = cur
                .get(part)
                .unwrap_or_else(|| panic!("missing required key {path} in {v}"));
        }
        let ok = ty.split('|').any(|t| match t {
            "string" => cur.is_string(),
            "integer" => cur.is_i64() || cur.is_u64(),
            "boolean" => cur.is_boolean(),
            "array" => cur.is_array(),
            "object" => cur.is_object(),
            "null" => cur.is_null(),
            other => panic!("unknown type {other}"),
        });
        assert!(ok, "{path}: expected {ty}, got {cur}");
    }
}

/// The card's PIN tries left, as `cpx status --json` reports them.
pub fn pin_tries(card: &Inserted) -> Option<u64> {
    let out = on(card, &["status", "--json"], "");
    json(&out, "status")["pin"]["tries_left"].as_u64()
}

/// `target/<profile>/libcpx_pkcs11.so`, next to `cpx` (where `cpx doctor` looks last).
///
/// `cargo test -p cpx-cli` does not build the module (not a dependency of the CLI), so when run
/// by cargo (`CARGO` set) it is brought up to date with `cargo build -p cpx-pkcs11 --lib`, as
/// pkcs11-module/tests/common does, unless the parent process already did (a sandbox with
/// `prebuild_module`); run directly, the test uses whatever .so is there.
pub fn module_path() -> Result<std::path::PathBuf, Failed> {
    static BUILT: std::sync::OnceLock<Result<std::path::PathBuf, String>> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let cpx = std::path::PathBuf::from(env!("CARGO_BIN_EXE_cpx"));
            let profile_dir = cpx.parent().ok_or("cannot locate the target directory")?;
            cpx_testkit::built_module(
                profile_dir,
                concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml").as_ref(),
            )
        })
        .clone()
        .map_err(Failed::from)
}

/// A private pcscd with no reader at all (the sandbox always has vpcd readers), in its own mount
/// namespace like the sandbox's (`cpx_testkit::sandbox`), with the reader drivers hidden. Give
/// `socket` to a child as `PCSCLITE_CSOCK_NAME`. Stopped by PID on drop.
pub struct ReaderlessPcscd {
    pub socket: std::path::PathBuf,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl ReaderlessPcscd {
    pub fn start() -> Result<ReaderlessPcscd, Failed> {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::Builder::new().prefix("cpx-noreader-").tempdir()?;
        for sub in ["run", "conf", "empty"] {
            std::fs::create_dir(dir.path().join(sub))?;
        }
        let pcscd = ["/usr/sbin/pcscd", "/sbin/pcscd", "/usr/bin/pcscd"]
            .into_iter()
            .find(|p| std::path::Path::new(p).is_file())
            .ok_or("pcscd is not installed")?;
        // `unshare` and `sh` exec, so the child is pcscd itself.
        let script = "set -e\n\
             if [ -d /usr/lib/pcsc/drivers ]; then mount --bind \"$1/empty\" /usr/lib/pcsc/drivers; fi\n\
             mkdir -p /run/pcscd\n\
             mount --bind \"$1/run\" /run/pcscd\n\
             exec \"$2\" --foreground --config \"$1/conf\"\n";
        let mut cmd = Command::new("unshare");
        // /proc/self belongs to our effective uid: without root, a user namespace lets us mount.
        if std::fs::metadata("/proc/self")?.uid() != 0 {
            cmd.arg("-r");
        }
        let child = cmd
            .args(["-m", "--propagation", "private", "sh", "-c", script, "sh"])
            .arg(dir.path())
            .arg(pcscd)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let socket = dir.path().join("run/pcscd.comm");
        let mut me = ReaderlessPcscd {
            socket,
            child,
            _dir: dir,
        };
        let deadline = std::time::Instant::now() + SEEN;
        while !me.socket.exists() {
            if let Some(status) = me.child.try_wait()? {
                return Err(format!("readerless pcscd exited: {status}").into());
            }
            if std::time::Instant::now() > deadline {
                return Err(format!("readerless pcscd did not come up within {SEEN:?}").into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(me)
    }
}

impl Drop for ReaderlessPcscd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `cpx emulate` we started, killed (by its PID) if the test ends before it does.
pub struct Running(pub std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}
