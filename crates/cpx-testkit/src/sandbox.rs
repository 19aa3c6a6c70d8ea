//! A private pcscd with vpcd readers, isolated from any other pcscd on the machine.
//!
//! How (each point checked on Debian 12 with pcscd 1.9.9 and vsmartcard-vpcd 0.8):
//! - pcscd 1.9.9's server socket path is fixed (`/run/pcscd/pcscd.comm`), so pcscd runs in a private
//!   mount namespace (`unshare -m`) where a directory of ours is bind-mounted on `/run/pcscd`;
//!   clients reach it through `PCSCLITE_CSOCK_NAME`, which pcsc-lite reads once per process.
//! - In that namespace an empty directory also hides `/usr/lib/pcsc/drivers`, so the private pcscd
//!   never claims a real USB reader that the machine's own pcscd serves.
//! - Each reader.conf entry gets its own copy of `libifdvpcd.so`: vpcd 0.8 keeps its state in
//!   globals, and entries sharing one copy share one state.
//! - vpcd binds its ports on all interfaces; ports are chosen free and reserved with lock files so
//!   concurrent sandboxes never collide, and below the kernel's ephemeral port range, so that no
//!   outgoing connection takes one between our check and vpcd's bind (or while pcscd restarts).
//! - pcscd is started by a small supervisor shell that kills it (by PID) when our end of its stdin
//!   closes: when the sandbox is dropped, and also when this process dies without dropping it.
//! - The sandbox directory is 0700 and pcscd's log 0600: with `--debug --apdu` that log holds every
//!   APDU, VERIFY with the PIN included, and `CPX_KEEP_SANDBOX=1` keeps it after the run.

use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use crate::ports::{is_listening, reserve_ports};
use cpx_emulator::timing::Timing;

use crate::{ENV_PINPAD, ENV_READERS, ENV_SOCKET, ENV_TIMING, PinpadReader, SandboxError, VirtualReader};

/// The PIN-pad reader's reader.conf FRIENDLYNAME (PC/SC name `cpx pinpad 00 00`).
const PINPAD_NAME: &str = "cpx pinpad";

/// Where Debian's vsmartcard-vpcd installs the driver (`dpkg -L vsmartcard-vpcd`).
const VPCD_DRIVER_DIRS: &[&str] = &["/usr/lib/pcsc/drivers/serial", "/usr/lib64/pcsc/drivers/serial"];
const PCSCD_CANDIDATES: &[&str] = &["/usr/sbin/pcscd", "/sbin/pcscd", "/usr/bin/pcscd"];

/// What to start.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// vpcd reader.conf entries; each gives two readers (`<name> 00 00` and `<name> 00 01`).
    /// pcscd handles at most 16 readers, so at most 8 entries.
    pub entries: usize,
    /// Run pcscd with `--debug --apdu` (its log then shows every APDU).
    pub debug: bool,
    /// How long to wait for pcscd and its readers.
    pub startup_timeout: Duration,
    /// For [`run_tests`](crate::run_tests): build the PKCS#11 module (`cargo build -p
    /// cpx-pkcs11 --lib`, see [`built_module`](crate::built_module)) in the parent process,
    /// before the sandbox starts, and tell the test binary so: its tests then load that .so
    /// without running cargo themselves while other tests' timing windows are open.
    pub prebuild_module: bool,
    /// How the emulated cards the tests insert answer ([`emulated`](crate::emulated),
    /// [`insert_image`](crate::insert_image)): at once, or paced on a real reader's clock
    /// (`cpx_emulator::timing`, docs/reader-timing.md). Passed to the test process as
    /// [`ENV_TIMING`](crate::ENV_TIMING); [`SandboxEnv::timing`](crate::SandboxEnv::timing)
    /// reads it back.
    pub timing: Timing,
    /// Also start a PIN-pad reader (`cpx pinpad 00 00`): the built `cpx-ifd-pinpad` driver at
    /// this path, loaded by pcscd like vpcd (docs/pinpad-reader.md). `None`: no PIN-pad reader.
    pub pinpad: Option<PathBuf>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            entries: 4,
            debug: std::env::var_os("CPX_PCSCD_DEBUG").is_some(),
            startup_timeout: Duration::from_secs(20),
            prebuild_module: false,
            timing: Timing::Instant,
            pinpad: None,
        }
    }
}

/// A running private pcscd. Dropping it stops pcscd and removes its directory (set
/// `CPX_KEEP_SANDBOX=1` to keep the directory and pcscd's log for a post-mortem).
///
/// Fault tests can also kill pcscd ([`kill_pcscd`](Self::kill_pcscd)), start it again on the
/// same socket and ports ([`start_pcscd`](Self::start_pcscd)), and leave a reader entry out of
/// the next start ([`set_entry_plugged`](Self::set_entry_plugged)).
#[derive(Debug)]
pub struct Sandbox {
    dir: Option<tempfile::TempDir>,
    root: PathBuf,
    socket: PathBuf,
    readers: Vec<VirtualReader>,
    /// Per reader.conf entry: its file name under `conf/`, its text, and whether it is plugged.
    entries: Vec<Entry>,
    pcscd: Option<Supervised>,
    pcscd_path: PathBuf,
    unshare: PathBuf,
    startup_timeout: Duration,
    timing: Timing,
    pinpad: Option<PinpadReader>,
    _port_locks: Vec<File>,
}

/// One vpcd reader.conf entry (two readers).
#[derive(Debug)]
struct Entry {
    file: PathBuf,
    conf: String,
    ports: Vec<u16>,
    plugged: bool,
}

/// pcscd and the supervisor shell that stops it when `stdin` closes.
#[derive(Debug)]
struct Supervised {
    supervisor: Child,
    stdin: Option<ChildStdin>,
    pid: u32,
}

impl Sandbox {
    /// Start pcscd with `config.entries` vpcd entries and wait until its readers listen.
    pub fn start(config: &SandboxConfig) -> Result<Self, SandboxError> {
        if config.entries == 0 || config.entries > 8 {
            return Err(SandboxError::Config(format!(
                "{} vpcd entries (1..=8)",
                config.entries
            )));
        }
        let pcscd = find_file(PCSCD_CANDIDATES.iter().map(PathBuf::from))
            .ok_or(SandboxError::Missing("pcscd (Debian package pcscd)"))?;
        let driver =
            find_vpcd_driver().ok_or(SandboxError::Missing("libifdvpcd.so (package vsmartcard-vpcd)"))?;
        let unshare = find_file(["/usr/bin/unshare", "/bin/unshare"].map(PathBuf::from))
            .ok_or(SandboxError::Missing("unshare (package util-linux)"))?;

        let dir = tempfile::Builder::new().prefix("cpx-sandbox-").tempdir()?;
        let root = dir.path().to_path_buf();
        // Owner only, before anything is written in it: the debug log holds PINs (see the module doc).
        fs::set_permissions(&root, fs::Permissions::from_mode(0o700))?;
        for sub in ["run/pcscd", "conf", "drivers", "empty"] {
            fs::create_dir_all(root.join(sub))?;
        }
        // Created here 0600; the supervisor's `>>` then appends to it and keeps its mode.
        File::options()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(root.join("pcscd.log"))?;
        let pinpad_ports = if config.pinpad.is_some() { 1 } else { 0 };
        let (base_port, port_locks) = reserve_ports(2 * config.entries + pinpad_ports)?;
        let mut readers = Vec::new();
        let mut entries = Vec::new();
        for i in 0..config.entries {
            let port = base_port + 2 * i as u16;
            let name = format!("cpx virtual {}", i + 1);
            // One driver copy per entry: distinct inode, distinct dlopen, distinct vpcd globals.
            let lib = root.join("drivers").join(format!("libifdvpcd-{}.so", i + 1));
            fs::copy(&driver, &lib)?;
            let conf = format!(
                "FRIENDLYNAME \"{name}\"\nDEVICENAME   /dev/null:{port}\nLIBPATH      {}\nCHANNELID    {port}\n",
                lib.display()
            );
            let file = root.join("conf").join(format!("vpcd-{}", i + 1));
            fs::write(&file, &conf)?;
            entries.push(Entry {
                file,
                conf,
                ports: vec![port, port + 1],
                plugged: true,
            });
            for slot in 0..2u16 {
                readers.push(VirtualReader {
                    name: format!("{name} 00 {slot:02}"),
                    port: port + slot,
                });
            }
        }

        let pinpad = match &config.pinpad {
            None => None,
            Some(driver) => {
                let port = base_port + 2 * config.entries as u16;
                let lib = root.join("drivers").join("libcpx_ifd_pinpad.so");
                fs::copy(driver, &lib)?;
                let keypad = root.join("pinpad-keypad");
                let conf = format!(
                    "FRIENDLYNAME \"{PINPAD_NAME}\"\nDEVICENAME   {}:{port}\nLIBPATH      {}\nCHANNELID    {port}\n",
                    keypad.display(),
                    lib.display()
                );
                let file = root.join("conf").join("pinpad");
                fs::write(&file, &conf)?;
                entries.push(Entry {
                    file,
                    conf,
                    ports: vec![port],
                    plugged: true,
                });
                Some(PinpadReader {
                    name: format!("{PINPAD_NAME} 00 00"),
                    port,
                    keypad,
                })
            }
        };

        // Runs inside the private mount namespace: $1 = sandbox root, $2 = pcscd.
        let launch = format!(
            "set -e\n\
             if [ -d /usr/lib/pcsc/drivers ]; then mount --bind \"$1/empty\" /usr/lib/pcsc/drivers; fi\n\
             if [ -d /run/pcscd ] || mkdir -p /run/pcscd 2>/dev/null; then\n\
             \x20 mount --bind \"$1/run/pcscd\" /run/pcscd\n\
             else\n\
             \x20 mount --bind \"$1/run\" /run\n\
             fi\n\
             exec \"$2\" --foreground --config \"$1/conf\" {}\n",
            if config.debug { "--debug --apdu" } else { "" }
        );
        fs::write(root.join("launch.sh"), launch)?;

        let mut sandbox = Sandbox {
            socket: root.join("run/pcscd/pcscd.comm"),
            dir: Some(dir),
            root,
            readers,
            entries,
            pcscd: None,
            pcscd_path: pcscd,
            unshare,
            startup_timeout: config.startup_timeout,
            timing: config.timing,
            pinpad,
            _port_locks: port_locks,
        };
        sandbox.start_pcscd()?;
        if std::env::var_os("CPX_KEEP_SANDBOX").is_some()
            && let Some(dir) = sandbox.dir.take()
        {
            let _ = dir.keep();
        }
        Ok(sandbox)
    }

    /// Start pcscd (again) on the sandbox's socket, with the plugged entries, and wait until
    /// their readers listen. The first start is part of [`start`](Self::start); after
    /// [`kill_pcscd`](Self::kill_pcscd) this is a pcscd restart as a service manager would do
    /// it: same socket, same readers and ports, so clients and cards can come back.
    ///
    /// ```no_run
    /// # use cpx_testkit::{Sandbox, SandboxConfig};
    /// let mut sandbox = Sandbox::start(&SandboxConfig::default())?;
    /// sandbox.kill_pcscd()?;   // PC/SC clients now get SCARD_E_NO_SERVICE
    /// sandbox.start_pcscd()?;  // and find the same readers again
    /// # Ok::<(), cpx_testkit::SandboxError>(())
    /// ```
    pub fn start_pcscd(&mut self) -> Result<(), SandboxError> {
        if self.pcscd.is_some() {
            return Err(SandboxError::Config("pcscd is already running".into()));
        }
        // A killed pcscd leaves its socket and PID file behind; the readiness check below
        // waits for the new socket, so the stale one must go first.
        for stale in ["pcscd.comm", "pcscd.pid"] {
            let _ = fs::remove_file(self.root.join("run/pcscd").join(stale));
        }
        // Without root, a user namespace lets us mount (where the kernel allows it).
        let user_ns = if rustix::process::geteuid().is_root() {
            ""
        } else {
            "-r"
        };
        // $1 = unshare, $2 = sandbox root, $3 = pcscd. `unshare` and `sh` exec, so $! is pcscd.
        // pcscd stays the supervisor's child until the supervisor waits for it, so its PID
        // cannot be reused by another process while the supervisor may still signal it.
        let supervisor_script = format!(
            "\"$1\" {user_ns} -m --propagation private sh \"$2/launch.sh\" \"$2\" \"$3\" \
               </dev/null >>\"$2/pcscd.log\" 2>&1 &\n\
             p=$!\n\
             echo \"$p\"\n\
             read -r _ || true\n\
             kill -TERM \"$p\" 2>/dev/null || true\n\
             i=0; while kill -0 \"$p\" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done\n\
             kill -KILL \"$p\" 2>/dev/null || true\n\
             wait \"$p\" 2>/dev/null || true\n"
        );
        let mut supervisor = Command::new("sh")
            .arg("-c")
            .arg(supervisor_script)
            .arg("cpx-sandbox")
            .arg(&self.unshare)
            .arg(&self.root)
            .arg(&self.pcscd_path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdin = supervisor.stdin.take();
        let pid_line = supervisor
            .stdout
            .take()
            .and_then(|out| BufReader::new(out).lines().next())
            .transpose()?
            .unwrap_or_default();
        let pid = pid_line.trim().parse().map_err(|_| {
            SandboxError::Startup(format!("supervisor did not report pcscd's PID ({pid_line:?})"))
        });
        // Even without a PID, the supervisor must be stopped through its stdin.
        self.pcscd = Some(Supervised {
            supervisor,
            stdin,
            pid: *pid.as_ref().unwrap_or(&0),
        });
        pid?;
        let log_path = self.log_path();
        self.wait_ready(self.startup_timeout, &log_path)
    }

    /// Kill pcscd with SIGKILL, as a crash would (no cleanup, clients get no goodbye), and wait
    /// until it is gone. Inserted virtual cards lose their vpcd connection (their
    /// [`CardSlot`](cpx_vpcd::CardSlot)s must be inserted again after
    /// [`start_pcscd`](Self::start_pcscd)). No-op when pcscd is not running.
    pub fn kill_pcscd(&mut self) -> Result<(), SandboxError> {
        let Some(mut running) = self.pcscd.take() else {
            return Ok(());
        };
        // pcscd is the supervisor's unreaped child: the PID is still pcscd's (or its zombie's).
        let killed = match i32::try_from(running.pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        {
            Some(pid) => rustix::process::kill_process(pid, rustix::process::Signal::KILL)
                .map_err(|e| SandboxError::Io(e.into())),
            None => Err(SandboxError::Config(format!("bad pcscd PID {}", running.pid))),
        };
        // The supervisor then finds pcscd dead (or stops it itself), reaps it and exits.
        drop(running.stdin.take());
        running.supervisor.wait()?;
        killed
    }

    /// Put reader.conf entry `entry` (0-based; readers `cpx virtual <entry+1> 00 00` and
    /// `… 00 01`) in or out of pcscd's configuration. pcscd reads its configuration only when
    /// it starts (Debian's libudev build ignores SIGUSR1 for serial readers), so this takes
    /// effect at the next [`start_pcscd`](Self::start_pcscd): a reader left out is, for PC/SC
    /// clients, a reader that was unplugged while pcscd was down.
    ///
    /// ```no_run
    /// # use cpx_testkit::{Sandbox, SandboxConfig};
    /// let mut sandbox = Sandbox::start(&SandboxConfig { entries: 2, ..SandboxConfig::default() })?;
    /// sandbox.kill_pcscd()?;
    /// sandbox.set_entry_plugged(0, false)?;
    /// sandbox.start_pcscd()?; // only "cpx virtual 2 00 00" and "… 00 01" now
    /// # Ok::<(), cpx_testkit::SandboxError>(())
    /// ```
    pub fn set_entry_plugged(&mut self, entry: usize, plugged: bool) -> Result<(), SandboxError> {
        let e = self
            .entries
            .get_mut(entry)
            .ok_or_else(|| SandboxError::Config(format!("no reader entry {entry}")))?;
        if plugged {
            fs::write(&e.file, &e.conf)?;
        } else if e.file.exists() {
            fs::remove_file(&e.file)?;
        }
        e.plugged = plugged;
        Ok(())
    }

    fn wait_ready(&mut self, timeout: Duration, log_path: &Path) -> Result<(), SandboxError> {
        let deadline = Instant::now() + timeout;
        let ports: Vec<u16> = self
            .entries
            .iter()
            .filter(|e| e.plugged)
            .flat_map(|e| e.ports.iter().copied())
            .collect();
        loop {
            let exited = match self.pcscd.as_mut() {
                Some(p) => p.supervisor.try_wait().ok().flatten(),
                None => return Err(SandboxError::Startup("pcscd is not running".into())),
            };
            if let Some(status) = exited {
                return Err(SandboxError::Startup(format!(
                    "pcscd exited ({status}); its log:\n{}",
                    fs::read_to_string(log_path).unwrap_or_default()
                )));
            }
            if self.socket.exists() && ports.iter().all(|p| is_listening(*p)) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(SandboxError::Startup(format!(
                    "pcscd readers not ready after {timeout:?}; its log:\n{}",
                    fs::read_to_string(log_path).unwrap_or_default()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The pcscd socket: give it to clients as `PCSCLITE_CSOCK_NAME`.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The virtual readers, with the vpcd port a card connects to.
    pub fn readers(&self) -> &[VirtualReader] {
        &self.readers
    }

    /// The PIN-pad reader, if [`SandboxConfig::pinpad`] asked for one.
    pub fn pinpad(&self) -> Option<&PinpadReader> {
        self.pinpad.as_ref()
    }

    /// pcscd's PID (the only process this sandbox started besides its supervisor shell), or 0
    /// while it is not running (after [`kill_pcscd`](Self::kill_pcscd)).
    pub fn pcscd_pid(&self) -> u32 {
        self.pcscd.as_ref().map_or(0, |p| p.pid)
    }

    /// pcscd's log file.
    pub fn log_path(&self) -> PathBuf {
        self.root.join("pcscd.log")
    }

    /// The environment a child process needs to use this sandbox: `PCSCLITE_CSOCK_NAME`, the
    /// reader list for [`SandboxEnv`](crate::SandboxEnv), and `CPX_PKCS11_CACHE=off`.
    ///
    /// The PKCS#11 module's disk cache is off in the sandbox: tests must not write into the
    /// user's cache directory, and one test's cache would change what another (same card image,
    /// same serial) sends to the card. The tests of the cache turn it on for their own children;
    /// a `CPX_PKCS11_CACHE` already set by the caller is kept.
    pub fn env(&self) -> Vec<(String, String)> {
        let readers: Vec<String> = self
            .readers
            .iter()
            .map(|r| format!("{}={}", r.name, r.port))
            .collect();
        vec![
            (ENV_SOCKET.to_owned(), self.socket.display().to_string()),
            (ENV_READERS.to_owned(), readers.join(";")),
            (
                "CPX_PKCS11_CACHE".to_owned(),
                std::env::var("CPX_PKCS11_CACHE").unwrap_or_else(|_| "off".to_owned()),
            ),
            (ENV_TIMING.to_owned(), self.timing.to_string()),
        ]
        .into_iter()
        .chain(self.pinpad.as_ref().map(|p| (ENV_PINPAD.to_owned(), p.to_env())))
        .collect()
    }

    /// Stop pcscd and wait for it.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        // EOF on the supervisor's stdin: it kills pcscd by PID and waits for it.
        if let Some(mut running) = self.pcscd.take() {
            drop(running.stdin.take());
            let _ = running.supervisor.wait();
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn find_file(candidates: impl IntoIterator<Item = PathBuf>) -> Option<PathBuf> {
    candidates.into_iter().find(|p| p.is_file())
}

fn find_vpcd_driver() -> Option<PathBuf> {
    VPCD_DRIVER_DIRS.iter().find_map(|dir| {
        let mut found: Vec<PathBuf> = fs::read_dir(dir)
            .ok()?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("libifdvpcd.so"))
            })
            .collect();
        found.sort();
        found.pop()
    })
}
