//! One worker process: load the module, log in once per card, say "ready" and wait for "go",
//! then M threads each with its own session list objects and sign with both keys until the
//! deadline, checking every signature against the certificate. Its stdout: "ready", then one
//! JSON report; every unexpected event goes to stderr.

use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::UserType;
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use rsa::{Pkcs1v15Sign, RsaPublicKey};
use sha2::Digest;

use crate::common::{bytes_attr, find_one, key_of};
use crate::report::Report;

/// Environment: the module's path.
pub const MODULE: &str = "CPX_CONCURRENCY_MODULE";
/// Environment: the readers, `;`-separated.
pub const READERS: &str = "CPX_CONCURRENCY_READERS";
/// Environment: threads per process.
pub const THREADS: &str = "CPX_CONCURRENCY_THREADS";
/// Environment: how long to work, in seconds.
pub const SECONDS: &str = "CPX_CONCURRENCY_SECONDS";
/// The built-in images' PIN; sent to the worker on its stdin.
pub const PIN: &str = "1234";

/// At most this many unexpected events are described on stderr (all are counted).
const DESCRIBED: u64 = 5;

pub fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("worker {}: {e}", std::process::id());
            ExitCode::FAILURE
        }
    }
}

/// A card as this process uses it.
struct Card {
    slot: Slot,
    keys: [(ObjectHandle, RsaPublicKey); 2],
    /// Objects a logged-in listing gives.
    objects: usize,
}

#[derive(Default)]
struct Counts {
    signatures: AtomicU64,
    verified: AtomicU64,
    listings: AtomicU64,
    unexpected: AtomicU64,
    not_logged_in: AtomicU64,
}

impl Counts {
    fn unexpected(&self, what: std::fmt::Arguments<'_>) {
        if self.unexpected.fetch_add(1, Ordering::Relaxed) < DESCRIBED {
            eprintln!("worker {}: {what}", std::process::id());
        }
    }

    fn error(&self, what: &str, e: &Error) {
        if matches!(e, Error::Pkcs11(RvError::UserNotLoggedIn, _)) {
            self.not_logged_in.fetch_add(1, Ordering::Relaxed);
            eprintln!("worker {}: {what}: logged out under us", std::process::id());
        } else {
            self.unexpected(format_args!("{what}: {e}"));
        }
    }
}

fn var(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|e| format!("{name}: {e}"))
}

/// The slot of `reader` once the module shows its token (the card was inserted just before).
fn slot_of(p11: &Pkcs11, reader: &str) -> Result<Slot, String> {
    let deadline = Instant::now() + cpx_testkit::DEADLINE;
    loop {
        for s in p11.get_all_slots().map_err(|e| e.to_string())? {
            let info = p11.get_slot_info(s).map_err(|e| e.to_string())?;
            if info.slot_description().trim_end() == reader && info.token_present() {
                return Ok(s);
            }
        }
        if Instant::now() > deadline {
            return Err(format!("no token in {reader}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn run() -> Result<(), String> {
    let mut parent = std::io::stdin().lock().lines();
    let pin = AuthPin::from(
        parent
            .next()
            .ok_or("no PIN on stdin")?
            .map_err(|e| e.to_string())?,
    );
    let threads: usize = var(THREADS)?.parse().map_err(|e| format!("{THREADS}: {e}"))?;
    let seconds: u64 = var(SECONDS)?.parse().map_err(|e| format!("{SECONDS}: {e}"))?;
    let p11 = Pkcs11::new(var(MODULE)?).map_err(|e| e.to_string())?;
    p11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .map_err(|e| e.to_string())?;

    // One session per card logs in (one C_Login per process and card) and stays open.
    let mut cards = Vec::new();
    let mut login_sessions = Vec::new();
    for reader in var(READERS)?.split(';') {
        let slot = slot_of(&p11, reader)?;
        let s = p11.open_ro_session(slot).map_err(|e| e.to_string())?;
        s.login(UserType::User, Some(&pin))
            .map_err(|e| format!("C_Login on {reader}: {e}"))?;
        let key = |label: &str| -> Result<(ObjectHandle, RsaPublicKey), String> {
            let h = find_one(&s, ObjectClass::PRIVATE_KEY, label).map_err(|e| format!("{e:?}"))?;
            let id = bytes_attr(&s, h, AttributeType::Id).map_err(|e| format!("{e:?}"))?;
            Ok((h, key_of(&s, &id).map_err(|e| format!("{e:?}"))?))
        };
        let keys = [key("CPS_PRIV_SIG")?, key("CPS_PRIV_AUT")?];
        let objects = s.find_objects(&[]).map_err(|e| e.to_string())?.len();
        cards.push(Card { slot, keys, objects });
        login_sessions.push(s);
    }

    // Logged in: wait until every worker is, so that all of them work at the same time.
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready").map_err(|e| e.to_string())?;
    out.flush().map_err(|e| e.to_string())?;
    drop(out);
    match parent.next() {
        Some(Ok(line)) if line == "go" => {}
        other => return Err(format!("expected go, got {other:?}")),
    }
    let counts = Counts::default();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    std::thread::scope(|scope| {
        for t in 0..threads {
            let (p11, cards, counts) = (&p11, &cards, &counts);
            scope.spawn(move || work(p11, &cards[t % cards.len()], t, deadline, counts));
        }
    });

    let report = Report {
        signatures: counts.signatures.load(Ordering::Relaxed),
        verified: counts.verified.load(Ordering::Relaxed),
        listings: counts.listings.load(Ordering::Relaxed),
        unexpected: counts.unexpected.load(Ordering::Relaxed),
        not_logged_in: counts.not_logged_in.load(Ordering::Relaxed),
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", report.to_json()).map_err(|e| e.to_string())?;
    out.flush().map_err(|e| e.to_string())?;
    // Keep the login until the parent has every report (see the suite's docs).
    let _ = parent.next();
    drop(login_sessions);
    Ok(())
}

/// One thread's loop: list, then sign with each key and verify, until the deadline.
fn work(p11: &Pkcs11, card: &Card, t: usize, deadline: Instant, counts: &Counts) {
    let s = match p11.open_ro_session(card.slot) {
        Ok(s) => s,
        Err(e) => return counts.error("C_OpenSession", &e),
    };
    // At least one round each: pcsc-lite lets a process waiting for the card retry only every
    // 100 ms (PCSCLITE_LOCK_POLL_RATE) while the holder's threads take it back at once, so a
    // process may wait long for its turn; it must get one all the same.
    let mut i = 0u64;
    while i == 0 || Instant::now() < deadline {
        match s.find_objects(&[]) {
            Ok(found) if found.len() == card.objects => {
                counts.listings.fetch_add(1, Ordering::Relaxed);
            }
            Ok(found) => counts.unexpected(format_args!(
                "listing gave {} objects, expected {}",
                found.len(),
                card.objects
            )),
            Err(e) => counts.error("C_FindObjects", &e),
        }
        for (key, pk) in &card.keys {
            let data = format!("process {} thread {t} round {i} key {key}", std::process::id());
            match s.sign(&Mechanism::Sha256RsaPkcs, *key, data.as_bytes()) {
                Ok(sig) => {
                    counts.signatures.fetch_add(1, Ordering::Relaxed);
                    let digest = sha2::Sha256::digest(data.as_bytes());
                    match pk.verify(Pkcs1v15Sign::new::<sha2::Sha256>(), &digest, &sig) {
                        Ok(()) => {
                            counts.verified.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => counts.unexpected(format_args!("signature {data:?} does not verify: {e}")),
                    }
                }
                Err(e) => counts.error("C_Sign", &e),
            }
        }
        i += 1;
    }
}
