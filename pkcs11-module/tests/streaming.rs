//! Caller lengths and streamed operations through the built module and the real pcscd (issue 13
//! item 5), each in a worker process loading the .so with the `cryptoki` crate:
//!
//! - C_GenerateRandom with 2^40 and ULONG_MAX under `ulimit -v 1000000`: CKR_ARGUMENTS_BAD at
//!   once, nothing sent to the card, no abort.
//! - 1 MiB of C_GenerateRandom works, and the card is released between its batches: another
//!   program's command reaches the card while the call runs, between two batches of
//!   [`cpx_card::CHALLENGES_PER_TRANSACTION`] GET CHALLENGE, never inside one.
//! - 512 MiB multi-part signatures (CPS3 signature key, whose card ends the hash, and CPS4 PSS;
//!   SHA-1 on 64 MiB), verified against the certificate, the same message through
//!   C_VerifyUpdate and C_DigestUpdate, and 512 MiB of CKM_RSA_PKCS parts (CKR_DATA_LEN_RANGE at
//!   the final calls): the worker's peak RSS stays under 64 MiB.
//!
//! The figures (time of 1 MiB, longest batch, the other program's wait, signing times, peak RSS)
//! are printed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

mod common;

#[path = "streaming/worker.rs"]
mod worker;

use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use common::module_path;
use cpx_testkit::{Failed, Trial};
use cpx_transport::CardChannel;
use cpx_vpcd::VirtualCard;

/// The peak RSS a 512 MiB multi-part signature may reach (issue 13).
const RSS_BOUND_KIB: u64 = 64 * 1024;

fn main() -> ExitCode {
    if std::env::var_os(worker::ROLE).is_some() {
        return worker::main();
    }
    cpx_testkit::run_tests(&common::sandbox(2), || {
        vec![
            Trial::test("random_huge_lengths_are_refused_under_ulimit", random_huge),
            Trial::test("random_mib_releases_the_card_between_batches", random_mib),
            Trial::test("multi_part_512_mib_cps3_signature_key", || {
                sign_job("cps3-doctor", "CPS_PRIV_SIG", "sha256:512,sha1:64")
            }),
            Trial::test("multi_part_512_mib_cps4_pss", || {
                sign_job("cps4-doctor", "CPS_PRIV_SIG", "sha256-pss:512,rsa-pkcs:512")
            }),
        ]
    })
}

/// Every command that reaches the card, with the time it arrived.
type Log = Arc<Mutex<Vec<(Instant, Vec<u8>)>>>;

/// An emulated card that logs its commands with their arrival time.
struct Stamped {
    inner: Box<dyn VirtualCard>,
    log: Log,
}

impl VirtualCard for Stamped {
    fn atr(&self) -> Vec<u8> {
        self.inner.atr()
    }
    fn power_on(&mut self) {
        self.inner.power_on()
    }
    fn power_off(&mut self) {
        self.inner.power_off()
    }
    fn reset(&mut self) {
        self.inner.reset()
    }
    fn transmit(&mut self, command: &[u8]) -> Vec<u8> {
        let at = Instant::now();
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((at, command.to_vec()));
        self.inner.transmit(command)
    }
}

fn is_get_challenge(c: &[u8]) -> bool {
    c.len() >= 2 && c[1] == 0x84
}

fn challenges(log: &Log) -> usize {
    let log = log.lock().unwrap_or_else(PoisonError::into_inner);
    log.iter().filter(|(_, c)| is_get_challenge(c)).count()
}

/// Start a worker of `role` on `reader`; `pin`: write the PIN on its stdin; `ulimit_kib`: run
/// it under `ulimit -v`.
fn spawn(
    role: &str,
    reader: &str,
    env: &[(&str, &str)],
    pin: bool,
    ulimit_kib: Option<u64>,
) -> Result<Child, Failed> {
    let exe = std::env::current_exe()?;
    let mut cmd = match ulimit_kib {
        Some(kib) => {
            let mut c = Command::new("sh");
            c.arg("-c")
                .arg(format!("ulimit -v {kib} && exec \"$0\""))
                .arg(&exe);
            c
        }
        None => Command::new(&exe),
    };
    cmd.env(worker::ROLE, role)
        .env(worker::MODULE, module_path()?)
        .env(worker::READER, reader)
        .env("CPX_PKCS11_CACHE", "off")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn()?;
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    if pin {
        // The PIN goes through stdin: never in argv or the environment.
        writeln!(stdin, "{}", worker::PIN)?;
    }
    drop(stdin);
    Ok(child)
}

/// Wait for the worker within `bound` (killed after: a hang fails the test) and return its
/// stdout line; a failure, a signal (an abort) or a timeout is the test's failure.
fn finish(mut child: Child, bound: Duration) -> Result<String, Failed> {
    let deadline = Instant::now() + bound;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("the worker did not return within {bound:?}").into());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut o) = child.stdout.take() {
        o.read_to_string(&mut out)?;
    }
    if let Some(mut e) = child.stderr.take() {
        e.read_to_string(&mut err)?;
    }
    if let Some(signal) = status.signal() {
        return Err(format!("the worker was killed by signal {signal} (6 = abort)\n{err}").into());
    }
    if !status.success() {
        return Err(format!("the worker failed ({status}):\n{err}").into());
    }
    Ok(out.trim().to_owned())
}

fn insert_stamped(stem: &str) -> Result<(cpx_testkit::ReaderLease, cpx_vpcd::CardSlot, Log), Failed> {
    let log: Log = Arc::default();
    let card = Stamped {
        inner: common::emulated(stem),
        log: Arc::clone(&log),
    };
    let (lease, slot) = cpx_testkit::insert_card(Box::new(card))?;
    Ok((lease, slot, log))
}

fn random_huge() -> Result<(), Failed> {
    let (lease, _slot, log) = insert_stamped("cps3-doctor")?;
    let started = Instant::now();
    let child = spawn("random-huge", &lease.name, &[], false, Some(1_000_000))?;
    let line = finish(child, Duration::from_secs(60))?;
    eprintln!(
        "C_GenerateRandom under ulimit -v 1000000: {line} ({:.2} s with the worker's start)",
        started.elapsed().as_secs_f64()
    );
    let bad = format!("{:#x}", cryptoki_sys::CKR_ARGUMENTS_BAD);
    let want = format!("huge={bad} max={bad} small=0x0");
    if line != want {
        return Err(format!("expected {want:?}, got {line:?}").into());
    }
    // Only the 16 bytes reached the card: two GET CHALLENGE.
    let n = challenges(&log);
    if n != 2 {
        return Err(format!("{n} GET CHALLENGE for one 16-byte request").into());
    }
    Ok(())
}

fn random_mib() -> Result<(), Failed> {
    let (lease, _slot, log) = insert_stamped("cps3-doctor")?;
    let worker = spawn("random-mib", &lease.name, &[], false, None)?;
    // Once the worker's GET CHALLENGE flow, another program sends one command.
    let deadline = Instant::now() + Duration::from_secs(60);
    while challenges(&log) < 2000 {
        if Instant::now() > deadline {
            return Err("the worker's C_GenerateRandom did not start".into());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let select_mf = cpx_card::commands::cps3_select_path(&[0x3F, 0x00], false)?;
    let pcsc = cpx_transport::Pcsc::establish()?;
    let asked = Instant::now();
    let mut other = pcsc.connect(&lease.name)?;
    other.transmit(&select_mf)?;
    let waited = asked.elapsed();
    drop(other);
    let sent_while_running = challenges(&log);
    // A hang guard only: 43 s on the quiet 2-core machine, 99 s under other builds' load.
    let line = finish(worker, Duration::from_secs(300))?;

    let log = log.lock().unwrap_or_else(PoisonError::into_inner).clone();
    let first = log
        .iter()
        .position(|(_, c)| is_get_challenge(c))
        .ok_or("no GET CHALLENGE")?;
    let ours: Vec<u8> = select_mf.to_bytes().to_vec();
    let at = log[first..]
        .iter()
        .position(|(_, c)| *c == ours)
        .ok_or("the other program's command never reached the card")?
        + first;
    let before = log[..at].iter().filter(|(_, c)| is_get_challenge(c)).count();
    let total = challenges_in(&log);
    let per = cpx_card::CHALLENGES_PER_TRANSACTION;
    // Batches: the worker's GET CHALLENGE in groups of `per` (one transaction each).
    let stamps: Vec<Instant> = log
        .iter()
        .filter(|(_, c)| is_get_challenge(c))
        .map(|(t, _)| *t)
        .collect();
    let mut batches: Vec<Duration> = stamps.chunks(per).map(|b| b[b.len() - 1] - b[0]).collect();
    batches.sort();
    let longest = batches.last().copied().unwrap_or_default();
    let median = batches.get(batches.len() / 2).copied().unwrap_or_default();
    let span = stamps[stamps.len() - 1] - stamps[0];
    eprintln!(
        "1 MiB of C_GenerateRandom: worker {line}; {total} GET CHALLENGE in {:.1} s on the card, \
         {per} per transaction, batch (first to last GET CHALLENGE) median {:.2} ms, longest \
         {:.2} ms; another program's SELECT waited {:.0} ms and reached the card after {before} \
         GET CHALLENGE",
        span.as_secs_f64(),
        median.as_secs_f64() * 1000.0,
        longest.as_secs_f64() * 1000.0,
        waited.as_secs_f64() * 1000.0,
    );
    if total != (1 << 20) / 8 {
        return Err(format!("{total} GET CHALLENGE for 1 MiB, expected 131072").into());
    }
    if sent_while_running >= total || before == 0 || before >= total {
        return Err(format!(
            "the other program got the card only after the 1 MiB call ({before} of {total} GET CHALLENGE before it)"
        )
        .into());
    }
    if before % per != 0 {
        return Err(format!(
            "the other program's command came inside a batch (after {before} GET CHALLENGE)"
        )
        .into());
    }
    Ok(())
}

fn challenges_in(log: &[(Instant, Vec<u8>)]) -> usize {
    log.iter().filter(|(_, c)| is_get_challenge(c)).count()
}

fn sign_job(stem: &str, key: &str, plan: &str) -> Result<(), Failed> {
    let (lease, _slot, _log) = insert_stamped(stem)?;
    let started = Instant::now();
    let child = spawn(
        "sign",
        &lease.name,
        &[(worker::KEY, key), (worker::PLAN, plan)],
        true,
        None,
    )?;
    let line = finish(child, Duration::from_secs(300))?;
    eprintln!(
        "{stem} {key} {plan}: {line} ({:.1} s in all)",
        started.elapsed().as_secs_f64()
    );
    let hwm: u64 = line
        .split_whitespace()
        .find_map(|f| f.strip_prefix("vmhwm_kib="))
        .and_then(|v| v.parse().ok())
        .ok_or("no vmhwm_kib in the worker's report")?;
    if hwm >= RSS_BOUND_KIB {
        return Err(format!("peak RSS {hwm} KiB, over {RSS_BOUND_KIB} KiB").into());
    }
    Ok(())
}
