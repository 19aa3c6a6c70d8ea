//! N processes × M threads signing and listing on the same card(s) for a bounded time, through
//! the built module and the real pcscd (issue 9): every signature must verify against its
//! certificate, no call may fail, and no PIN try may be spent. A signature made while another
//! process's APDUs slipped into a multi-APDU operation (MSE/PSO, PSO HASH state, file
//! selection) would come out wrong and fail its verification: this is what shows that the
//! module's PC/SC transactions keep each operation atomic across processes.
//!
//! The test binary runs again as the worker processes (`CPX_CONCURRENCY_ROLE=worker`, see
//! `concurrency/worker.rs`). Logging in once per process and card shares the card's verified
//! state; a logout (or a process closing its last session) would log the card out for every
//! process (documented module behaviour), so workers keep their sessions until the parent has
//! every report, then exit together.
//!
//! Knobs: `CPX_CONCURRENCY_PROCESSES` (4), `CPX_CONCURRENCY_THREADS` (8),
//! `CPX_CONCURRENCY_SECONDS` (3, per scenario).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

mod common;

#[path = "concurrency/report.rs"]
mod report;
#[path = "concurrency/worker.rs"]
mod worker;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant};

use common::module_path;
use cpx_emulator::{EmulatedCard, SharedCard};
use cpx_testkit::{Failed, Recorder, Recording, Trial, apdu};
use report::Report;

const ROLE: &str = "CPX_CONCURRENCY_ROLE";

fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> ExitCode {
    if std::env::var_os(ROLE).is_some() {
        return worker::main();
    }
    cpx_testkit::run_tests(&common::sandbox(4), || {
        vec![
            Trial::test("one_card_processes_x_threads", || scenario(&["cps4-doctor"])),
            Trial::test("two_cards_two_readers_processes_x_threads", || {
                scenario(&["cps3-doctor", "cps4-doctor"])
            }),
        ]
    })
}

/// One inserted card and what the test watches on it.
struct Watched {
    stem: &'static str,
    card: SharedCard,
    wire: Recording,
    max_tries: (u8, u8),
}

/// Run the workers against `stems` (one card per reader) and check their reports.
fn scenario(stems: &[&'static str]) -> Result<(), Failed> {
    // On 2 cores the two scenarios would only slow each other down: one at a time.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let processes = knob("CPX_CONCURRENCY_PROCESSES", 4);
    let threads = knob("CPX_CONCURRENCY_THREADS", 8);
    let seconds = knob("CPX_CONCURRENCY_SECONDS", 3);

    let mut watched = Vec::new();
    let mut held = Vec::new();
    for stem in stems {
        let image = cpx_emulator::builtin_image(stem).ok_or("no image")??;
        let card = SharedCard::new(cpx_emulator::card_from_image(&image));
        let (recorder, wire) = Recorder::new(Box::new(card.clone()));
        let (lease, slot) = cpx_testkit::insert_card(Box::new(recorder))?;
        let max = |p: &Option<cpx_emulator::image::PinImage>| p.as_ref().map_or(0, |p| p.max_tries);
        watched.push(Watched {
            stem,
            card,
            wire,
            max_tries: (max(&image.pin), max(&image.puk)),
        });
        held.push((lease, slot));
    }
    let readers: Vec<String> = held.iter().map(|(l, _)| l.name.clone()).collect();

    // The workers share a disk cache of their own, as the processes of one user do.
    let cache = tempfile::tempdir()?;
    let started = Instant::now();
    let mut children = Vec::new();
    for _ in 0..processes {
        children.push(spawn_worker(&readers, threads, seconds, cache.path())?);
    }
    let bound = Duration::from_secs(seconds + 60);
    let mut reports = Vec::new();
    let mut failures = Vec::new();
    // Start together once every worker is logged in.
    for w in &mut children {
        match w.report.recv_timeout(bound) {
            Ok(Ok(Line::Ready)) => {}
            other => failures.push(format!("worker {} not ready: {other:?}", w.child.id())),
        }
    }
    let ready = started.elapsed();
    for w in &mut children {
        let _ = writeln!(w.stdin, "go");
    }
    for w in &mut children {
        match w.report.recv_timeout(bound) {
            Ok(Ok(Line::Report(r))) => reports.push(r),
            Ok(Ok(Line::Ready)) => failures.push("worker said ready twice".into()),
            Ok(Err(e)) => failures.push(e),
            Err(_) => failures.push(format!("worker {} sent no report within {bound:?}", w.child.id())),
        }
    }
    // Every report is in: the workers may now close their sessions and exit.
    for w in &mut children {
        let _ = writeln!(w.stdin, "exit");
    }
    for w in &mut children {
        match wait_exit(&mut w.child, Duration::from_secs(20)) {
            Ok(()) => {}
            Err(e) => failures.push(e),
        }
        let stderr = w
            .stderr
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default();
        if !stderr.trim().is_empty() {
            failures.push(format!("worker {} stderr:\n{stderr}", w.child.id()));
        }
    }
    let wall = started.elapsed();

    let total = Report::sum(&reports);
    eprintln!(
        "{} card(s), {processes} processes × {threads} threads, all logged in after {:.1} s, \
         {:.1} s in all: {} signatures ({:.0}/s), {} listings, {} unexpected errors, \
         {} CKR_USER_NOT_LOGGED_IN",
        stems.len(),
        ready.as_secs_f64(),
        wall.as_secs_f64(),
        total.signatures,
        total.signatures as f64 / seconds as f64,
        total.listings,
        total.unexpected,
        total.not_logged_in,
    );
    let per: Vec<u64> = reports.iter().map(|r| r.signatures).collect();
    eprintln!("  signatures per process: {per:?}");
    for r in &reports {
        if r.signatures == 0 || r.listings == 0 {
            failures.push(format!("a worker made no progress: {r:?}"));
        }
        if r.verified != r.signatures {
            failures.push(format!(
                "{} signatures did not verify: {r:?}",
                r.signatures - r.verified
            ));
        }
        if r.unexpected != 0 || r.not_logged_in != 0 {
            failures.push(format!("errors in a worker: {r:?}"));
        }
    }
    if reports.len() as u64 != processes {
        failures.push(format!("{} reports for {processes} workers", reports.len()));
    }
    for w in &watched {
        let state = w.card.state();
        let left = |r: u8| {
            state
                .pins
                .iter()
                .find(|p| p.reference == r)
                .map_or(0, |p| p.tries_left)
        };
        if (left(1), left(2)) != w.max_tries {
            failures.push(format!(
                "{}: tries left {:?}, expected {:?}",
                w.stem,
                (left(1), left(2)),
                w.max_tries
            ));
        }
        // One C_Login per process and card, each one PIN presentation; nothing else.
        let verifies = w
            .wire
            .commands()
            .iter()
            .filter(|c| apdu::is_verify_with_data(c))
            .count() as u64;
        if verifies != processes {
            failures.push(format!(
                "{}: {verifies} PIN presentations for {processes} logins",
                w.stem
            ));
        }
    }
    drop(held);
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n").into())
    }
}

/// A line of a worker's stdout.
#[derive(Debug)]
enum Line {
    /// Logged in, waiting for "go".
    Ready,
    /// Done: its counts.
    Report(Report),
}

/// A running worker: its stdout lines, its stdin, its stderr (collected).
struct Worker {
    child: Child,
    stdin: std::process::ChildStdin,
    report: mpsc::Receiver<Result<Line, String>>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

fn spawn_worker(
    readers: &[String],
    threads: u64,
    seconds: u64,
    cache: &std::path::Path,
) -> Result<Worker, Failed> {
    let mut child = Command::new(std::env::current_exe()?)
        .env(ROLE, "worker")
        .env("CPX_PKCS11_CACHE", cache)
        .env(worker::MODULE, module_path()?)
        .env(worker::READERS, readers.join(";"))
        .env(worker::THREADS, threads.to_string())
        .env(worker::SECONDS, seconds.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    // The PIN goes through stdin: never in argv or the environment.
    writeln!(stdin, "{}", worker::PIN)?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut err = child.stderr.take().ok_or("no stderr")?;
    let (tx, report) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let parsed = match line {
                Ok(l) if l == "ready" => Ok(Line::Ready),
                Ok(l) => Report::parse(l.trim()).map(Line::Report),
                Err(e) => Err(e.to_string()),
            };
            if tx.send(parsed).is_err() {
                return;
            }
        }
        let _ = tx.send(Err("worker closed its stdout".into()));
    });
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    Ok(Worker {
        child,
        stdin,
        report,
        stderr: Some(stderr),
    })
}

/// Wait for a worker to exit 0 within `bound`; kill it (it is our child) if it hangs.
fn wait_exit(child: &mut Child, bound: Duration) -> Result<(), String> {
    let deadline = Instant::now() + bound;
    loop {
        match child.try_wait() {
            Ok(Some(s)) if s.success() => return Ok(()),
            Ok(Some(s)) => return Err(format!("worker {} exited with {s}", child.id())),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("worker {} did not exit within {bound:?}", child.id()));
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}
