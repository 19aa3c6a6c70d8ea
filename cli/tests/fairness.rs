//! Sharing the card (issue 13, "Starvation"): while a process signs in a tight loop through the
//! built PKCS#11 module, `cpx status` (and `pkcs11-tool -O` on the module) in another process get
//! their turns, through the real pcscd + vpcd and an emulated CPS3.
//!
//! The verdict is structural, read on the card's wire: from the moment `cpx status` is started
//! to its last APDU, the signer completes at most [`MAX_SIGNATURES_RUN`] signatures in a row,
//! counting before its first APDU (start-up, then the connection: pcscd holds `SCardConnect`
//! while another transaction is open) and between two of its APDUs. With turn-taking that is the
//! signature in progress when it asks, the bound leaving a second of start-up for a loaded
//! machine. Without it (`CPX_PCSC_TURNS=off`, see crates/cpx-transport/src/turns.rs), pcsc-lite
//! lets the signer keep the card for seconds, dozens of signatures. Durations (each run minus the
//! median of the same command alone) and the lone signer's throughput with and without
//! turn-taking are printed, for docs/benchmarks-sharing.md, never asserted.
//!
//! The test binary runs again as the signer process (`CPX_FAIRNESS_ROLE=signer`, below).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;
use cpx_testkit::{Failed, SandboxConfig, Trial};

const ROLE: &str = "CPX_FAIRNESS_ROLE";
const MODULE: &str = "CPX_FAIRNESS_MODULE";
const READER: &str = "CPX_FAIRNESS_READER";
/// How long the signer signs; 0: until "stop" on its stdin.
const SECONDS: &str = "CPX_FAIRNESS_SECONDS";
/// The turn-taking switch of cpx-transport (a diagnostic).
const TURNS: &str = "CPX_PCSC_TURNS";

/// `cpx status` runs while the signer signs.
const STATUS_RUNS: usize = 10;
/// `pkcs11-tool -O` runs while the signer signs (if pkcs11-tool is installed).
const TOOL_RUNS: usize = 3;
/// The structural bound: signatures the signer may complete in a row while `cpx status` runs.
/// With turn-taking: the one in progress when it asks for the card (for its connection, then
/// after any pause of its own longer than the 10 ms the signer waits, turns.rs `IDLE`), plus what
/// fits in a slow start-up of the process on a loaded machine (5 × [`SIGN_TIME`] = 1 s).
const MAX_SIGNATURES_RUN: usize = 6;
/// OpenSC's PKCS#11 module (Debian's path), a program that does not take turns.
const OPENSC: &str = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so";
/// A hang guard per command, not a verdict.
const HANG: Duration = Duration::from_secs(120);

fn main() -> ExitCode {
    if std::env::var(ROLE).as_deref() == Ok("signer") {
        return signer::main();
    }
    let config = SandboxConfig {
        prebuild_module: true,
        ..SandboxConfig::default()
    };
    cpx_testkit::run_tests(&config, || {
        vec![Trial::test(
            "tight_signer_leaves_turns_to_cpx_status",
            tight_signer_leaves_turns,
        )]
    })
}

/// The signature command of the signer's C_Sign with the authentication key: INTERNAL
/// AUTHENTICATE (docs/card-spec.md §4.2; docs/benchmarks.md: SELECT, MSE SET AT, INTERNAL AUTHENTICATE, GET
/// RESPONSE ×2, in one transaction).
fn is_signature(c: &[u8]) -> bool {
    c.get(1) == Some(&0x88)
}

/// Which commands of `wire` the signer sent: its MSE SET and INTERNAL AUTHENTICATE, the SELECT
/// just before its MSE SET and the GET RESPONSEs after its commands (a transaction is never
/// interleaved). `cpx status` sends none of MSE SET and INTERNAL AUTHENTICATE.
fn signers_commands(wire: &[Vec<u8>]) -> Vec<bool> {
    let ins = |i: usize| wire.get(i).and_then(|c| c.get(1)).copied();
    let mut signers = Vec::with_capacity(wire.len());
    for i in 0..wire.len() {
        let mine = match ins(i) {
            Some(0x22 | 0x88) => true,
            Some(0xA4) => ins(i + 1) == Some(0x22),
            Some(0xC0) => signers.last().copied().unwrap_or(false),
            _ => false,
        };
        signers.push(mine);
    }
    signers
}

/// How long the card computes a signature. The emulator takes about 2 ms (docs/benchmarks.md); a
/// card's RSA-2048 private-key operation takes far longer (an assumption of this test, not a card
/// fact), so that a signer's transactions follow each other with gaps much shorter than
/// themselves: the case where pcsc-lite lets one process keep the card.
const SIGN_TIME: Duration = Duration::from_millis(200);

/// A card that takes [`SIGN_TIME`] to sign.
struct SlowSigner(Box<dyn cpx_vpcd::VirtualCard>);

impl cpx_vpcd::VirtualCard for SlowSigner {
    fn atr(&self) -> Vec<u8> {
        self.0.atr()
    }
    fn power_on(&mut self) {
        self.0.power_on();
    }
    fn power_off(&mut self) {
        self.0.power_off();
    }
    fn reset(&mut self) {
        self.0.reset();
    }
    fn transmit(&mut self, command: &[u8]) -> Vec<u8> {
        if is_signature(command) {
            std::thread::sleep(SIGN_TIME);
        }
        self.0.transmit(command)
    }
}

fn tight_signer_leaves_turns() -> Result<(), Failed> {
    let (recorder, wire) = cpx_testkit::Recorder::new(Box::new(SlowSigner(emulated("cps3-doctor"))));
    let (lease, slot) = cpx_testkit::insert_card(Box::new(recorder))?;
    let card = Inserted { lease, slot, wire };
    let reader = card.reader().to_owned();
    let module = module_path()?;
    let tool = std::path::Path::new("/usr/bin/pkcs11-tool").is_file();
    let tool_args = ["-O", "--module", module.to_str().ok_or("module path")?];
    // OpenSC's module, which does not take turns (a figure only): its file cache off, in a
    // private HOME.
    let opensc = tool && std::path::Path::new(OPENSC).is_file();
    let opensc_dir = tempfile::tempdir()?;
    let opensc_conf = opensc_dir.path().join("opensc.conf");
    std::fs::write(
        &opensc_conf,
        "app default {\n  framework pkcs15 {\n    use_file_caching = no;\n  }\n}\n",
    )?;
    let opensc_env = [
        ("OPENSC_CONF".to_owned(), opensc_conf.display().to_string()),
        ("HOME".to_owned(), opensc_dir.path().display().to_string()),
    ];
    let opensc_args = ["-O", "--module", OPENSC];

    // Alone: the reference durations.
    let status_alone = median((0..5).map(|_| timed_status(&reader)).collect::<Result<_, _>>()?);
    let tool_alone = if tool {
        median(
            (0..3)
                .map(|_| timed_tool(&tool_args, &[]))
                .collect::<Result<_, _>>()?,
        )
    } else {
        Duration::ZERO
    };
    let opensc_alone = if opensc {
        median(
            (0..3)
                .map(|_| timed_tool(&opensc_args, &opensc_env))
                .collect::<Result<_, _>>()?,
        )
    } else {
        Duration::ZERO
    };

    // A lone signer, with and without turn-taking: what the pause for other programs costs.
    // Alternated, twice each, so that a burst of load on the machine weighs on both.
    let lone_seconds = 3;
    let (mut lone_on, mut lone_off) = (0, 0);
    for _ in 0..2 {
        lone_on += run_lone_signer(&module, &reader, lone_seconds, true)?;
        lone_off += run_lone_signer(&module, &reader, lone_seconds, false)?;
    }

    // The signer in a tight loop; `cpx status`, then pkcs11-tool, run one after the other.
    let policy = std::env::var(TURNS).map_or(true, |v| v != "off");
    let mut signer = Signer::spawn(&module, &reader, 0, policy)?;
    signer.expect_line("ready")?;
    let mut status_waits = Vec::new();
    let mut windows = Vec::new();
    for _ in 0..STATUS_RUNS {
        // Start when the signer is signing, not waiting for the card itself (then pcsc-lite
        // would favour `cpx status`, which would prove nothing).
        let from = card.wire.len();
        signed_after(&card.wire, from)?;
        let from = card.wire.len();
        let took = timed_status(&reader)?;
        windows.push((from, card.wire.len()));
        status_waits.push(took.saturating_sub(status_alone));
    }
    let mut tool_waits = Vec::new();
    if tool {
        for _ in 0..TOOL_RUNS {
            signed_after(&card.wire, card.wire.len())?;
            tool_waits.push(timed_tool(&tool_args, &[])?.saturating_sub(tool_alone));
        }
    }
    let mut opensc_waits = Vec::new();
    if opensc {
        for _ in 0..TOOL_RUNS {
            signed_after(&card.wire, card.wire.len())?;
            opensc_waits.push(timed_tool(&opensc_args, &opensc_env)?.saturating_sub(opensc_alone));
        }
    }
    let signatures = signer.stop()?;

    // The wire: for each `cpx status` run, the signer's signatures between two of its APDUs.
    let commands = card.wire.commands();
    let signers = signers_commands(&commands);
    let mut longest = 0;
    let mut runs = Vec::new();
    let mut before_first = Vec::new();
    for &(from, to) in &windows {
        let mut in_a_row = 0;
        let mut run_max = 0;
        let mut before = None;
        for i in from..to {
            if !signers[i] {
                before.get_or_insert(in_a_row);
                in_a_row = 0;
            } else if is_signature(&commands[i]) {
                in_a_row += 1;
                run_max = run_max.max(in_a_row);
            }
        }
        runs.push(run_max);
        before_first.push(before.unwrap_or(in_a_row));
        longest = longest.max(run_max);
    }

    eprintln!("turn-taking {}", if policy { "on" } else { "OFF" });
    eprintln!(
        "cpx status alone: median {} ms; while a process signs: wait p50 {} / p95 {} / max {} ms \
         ({STATUS_RUNS} runs)",
        status_alone.as_millis(),
        percentile(&status_waits, 50).as_millis(),
        percentile(&status_waits, 95).as_millis(),
        percentile(&status_waits, 100).as_millis(),
    );
    if tool {
        eprintln!(
            "pkcs11-tool -O alone: median {} ms; while a process signs: wait p50 {} / p95 {} / max {} ms \
             ({TOOL_RUNS} runs)",
            tool_alone.as_millis(),
            percentile(&tool_waits, 50).as_millis(),
            percentile(&tool_waits, 95).as_millis(),
            percentile(&tool_waits, 100).as_millis(),
        );
    }
    if opensc {
        eprintln!(
            "pkcs11-tool -O with OpenSC (no turn-taking) alone: median {} ms; while a process \
             signs: wait p50 {} / max {} ms ({TOOL_RUNS} runs)",
            opensc_alone.as_millis(),
            percentile(&opensc_waits, 50).as_millis(),
            percentile(&opensc_waits, 100).as_millis(),
        );
    }
    eprintln!(
        "lone signer: {:.1} signatures/s with turn-taking, {:.1}/s without; the tight signer made \
         {signatures} signatures during the runs",
        lone_on as f64 / (2 * lone_seconds) as f64,
        lone_off as f64 / (2 * lone_seconds) as f64,
    );
    eprintln!("signatures in a row while cpx status ran, longest per run: {runs:?}");
    eprintln!("  of which before its first APDU (start-up and connection): {before_first:?}");
    if std::env::var_os("CPX_FAIRNESS_DUMP").is_some() {
        let (from, to) = windows[0];
        let ins: Vec<String> = commands[from..to]
            .iter()
            .map(|c| format!("{:02X}", c[1]))
            .collect();
        eprintln!("first window INS: {}", ins.join(" "));
    }
    eprintln!(
        "cpx status waits, ms: {:?}",
        status_waits.iter().map(Duration::as_millis).collect::<Vec<_>>()
    );

    if signatures == 0 {
        return Err("the signer made no signature while cpx status ran".into());
    }
    if longest > MAX_SIGNATURES_RUN {
        return Err(format!(
            "the signer completed {longest} signatures in a row while cpx status waited (at most \
             {MAX_SIGNATURES_RUN} expected): it kept the card"
        )
        .into());
    }
    Ok(())
}

/// Wait until the signer has made a signature after the `from`th exchange.
fn signed_after(wire: &Wire, from: usize) -> Result<(), Failed> {
    let deadline = Instant::now() + HANG;
    while !wire.commands()[from..].iter().any(|c| is_signature(c)) {
        if Instant::now() > deadline {
            return Err("the signer stopped signing".into());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

/// `cpx status --reader R`, successful, and how long it took.
fn timed_status(reader: &str) -> Result<Duration, Failed> {
    let start = Instant::now();
    let out = run_within(&["status", "--reader", reader], HANG)?;
    let took = start.elapsed();
    if !out.status.success() {
        return Err(format!("cpx status failed: {}\n{}", out.status, stderr(&out)).into());
    }
    if std::env::var_os("CPX_FAIRNESS_DUMP").is_some() && took > Duration::from_millis(500) {
        eprintln!("cpx status took {took:?}:\n{}", stderr(&out));
    }
    Ok(took)
}

/// `pkcs11-tool args`, successful, and how long it took.
fn timed_tool(args: &[&str], env: &[(String, String)]) -> Result<Duration, Failed> {
    let start = Instant::now();
    let out = Command::new("pkcs11-tool")
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .output()?;
    let took = start.elapsed();
    if !out.status.success() {
        return Err(format!(
            "pkcs11-tool failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(took)
}

/// Signatures a lone signer makes in `seconds`.
fn run_lone_signer(module: &std::path::Path, reader: &str, seconds: u64, turns: bool) -> Result<u64, Failed> {
    let mut signer = Signer::spawn(module, reader, seconds, turns)?;
    signer.expect_line("ready")?;
    signer.finish()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// The `p`th percentile (nearest rank) of `v`.
fn percentile(v: &[Duration], p: usize) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    if v.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p * v.len()).div_ceil(100).clamp(1, v.len());
    v[rank - 1]
}

/// The signer process, seen from the test.
struct Signer {
    child: Child,
    stdin: std::process::ChildStdin,
    lines: mpsc::Receiver<String>,
}

impl Signer {
    fn spawn(module: &std::path::Path, reader: &str, seconds: u64, turns: bool) -> Result<Signer, Failed> {
        let mut cmd = Command::new(std::env::current_exe()?);
        cmd.env(ROLE, "signer")
            .env(MODULE, module)
            .env(READER, reader)
            .env(SECONDS, seconds.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        if !turns {
            cmd.env(TURNS, "off");
        }
        let mut child = cmd.spawn()?;
        let mut stdin = child.stdin.take().ok_or("no stdin")?;
        // The PIN goes through stdin: never in argv or the environment.
        writeln!(stdin, "{PIN}")?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Ok(Signer { child, stdin, lines })
    }

    fn expect_line(&mut self, expected: &str) -> Result<(), Failed> {
        match self.lines.recv_timeout(HANG) {
            Ok(line) if line == expected => Ok(()),
            other => {
                let _ = self.child.kill();
                let _ = self.child.wait();
                Err(format!("signer: expected {expected:?}, got {other:?}").into())
            }
        }
    }

    /// Tell it to stop; its signature count.
    fn stop(mut self) -> Result<u64, Failed> {
        writeln!(self.stdin, "stop")?;
        self.finish()
    }

    fn finish(mut self) -> Result<u64, Failed> {
        let line = self.lines.recv_timeout(HANG);
        let status = self.child.wait()?;
        match line {
            Ok(l) if status.success() => Ok(l
                .strip_prefix("signatures ")
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| format!("signer said {l:?}"))?),
            other => Err(format!("signer: {status}, {other:?}").into()),
        }
    }
}

/// The signer process: log in, sign with CPS_PRIV_AUT in a tight loop, print the count.
mod signer {
    use std::io::Write;
    use std::process::ExitCode;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
    use cryptoki::mechanism::Mechanism;
    use cryptoki::object::{Attribute, ObjectClass};
    use cryptoki::session::UserType;
    use cryptoki::types::AuthPin;

    pub fn main() -> ExitCode {
        match run() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("signer {}: {e}", std::process::id());
                ExitCode::FAILURE
            }
        }
    }

    fn var(name: &str) -> Result<String, String> {
        std::env::var(name).map_err(|e| format!("{name}: {e}"))
    }

    fn run() -> Result<(), String> {
        let err = |e: cryptoki::error::Error| e.to_string();
        let mut pin = String::new();
        std::io::stdin().read_line(&mut pin).map_err(|e| e.to_string())?;
        let pin = AuthPin::from(pin.trim_end().to_owned());
        let seconds: u64 = var(super::SECONDS)?.parse().map_err(|e| format!("{e}"))?;
        let reader = var(super::READER)?;
        let p11 = Pkcs11::new(var(super::MODULE)?).map_err(err)?;
        p11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
            .map_err(err)?;
        let deadline = Instant::now() + cpx_testkit::DEADLINE;
        let slot = loop {
            let mut found = None;
            for s in p11.get_slots_with_token().map_err(err)? {
                if p11.get_slot_info(s).map_err(err)?.slot_description().trim_end() == reader {
                    found = Some(s);
                }
            }
            match found {
                Some(s) => break s,
                None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
                None => return Err(format!("no token in {reader}")),
            }
        };
        let session = p11.open_ro_session(slot).map_err(err)?;
        session.login(UserType::User, Some(&pin)).map_err(err)?;
        let key = *session
            .find_objects(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::Label(b"CPS_PRIV_AUT".to_vec()),
            ])
            .map_err(err)?
            .first()
            .ok_or("no CPS_PRIV_AUT")?;
        let sign = |i: u64| session.sign(&Mechanism::Sha256RsaPkcs, key, format!("round {i}").as_bytes());
        sign(0).map_err(err)?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "ready").map_err(|e| e.to_string())?;
        out.flush().map_err(|e| e.to_string())?;
        drop(out);

        let stop = AtomicBool::new(false);
        let end = (seconds > 0).then(|| Instant::now() + Duration::from_secs(seconds));
        let count = std::thread::scope(|scope| {
            if end.is_none() {
                scope.spawn(|| {
                    // "stop", or the parent gone.
                    let _ = std::io::stdin().lines().next();
                    stop.store(true, Ordering::Relaxed);
                });
            }
            let mut count = 0u64;
            while !stop.load(Ordering::Relaxed) && end.is_none_or(|e| Instant::now() < e) {
                sign(count + 1).map_err(err)?;
                count += 1;
            }
            Ok::<u64, String>(count)
        })?;
        println!("signatures {count}");
        Ok(())
    }
}
