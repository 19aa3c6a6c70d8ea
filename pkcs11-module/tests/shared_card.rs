//! Several programs on one card and several readers (issue 13), through the built module and the
//! real pcscd:
//! - a logged-in client keeps its login when other programs log in and out of the same card
//!   (`cpx pin verify`, `cpx sign`, `cpx data --login`, `pkcs11-tool --login`, a second PKCS#11
//!   process, a forked child): each program undoes only its own login;
//! - when another program does log the card out, the client's sessions turn public (so NSS asks
//!   for the PIN again) and one C_Login recovers, whether the client learns it from
//!   C_GetSessionInfo or from the card's `6982` to a signature;
//! - a card that stops answering costs only its own slot: calls on another reader all return,
//!   slot-level queries on the stuck slot answer from what is known, and a call waiting for the
//!   stuck slot gives up (bounded) instead of hanging;
//! - forked children of a busy process never hang (see `fork_stress`).
//!
//! Figures (latencies) are printed; verdicts are what returned and what the card saw, with
//! hang guards far above any scheduler delay.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub,
    unsafe_code
)]

mod common;

#[path = "shared_card/fork.rs"]
mod fork;
#[path = "shared_card/peer.rs"]
mod peer;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{expect_rv, find_one, module_path, pkcs11, slot_of};
use cpx_testkit::{Failed, FaultModeCard, Trial};
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::ObjectClass;
use cryptoki::session::{Session, SessionState, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;

/// The built-in images' PIN (test cards only).
const PIN: &str = "1234";
/// Longer than the module's LOGIN_CHECK_AFTER (1 s): C_GetSessionInfo then asks the card.
const AFTER_LOGIN_CHECK: Duration = Duration::from_millis(1200);

fn main() -> ExitCode {
    match std::env::var(peer::ROLE).as_deref() {
        Ok("peer") => return peer::main(),
        Ok(other) => {
            eprintln!("unknown role {other:?}");
            return ExitCode::FAILURE;
        }
        Err(_) => {}
    }
    if let Err(e) = cpx_binary() {
        eprintln!("shared_card: {e}");
        return ExitCode::FAILURE;
    }
    cpx_testkit::run_tests(&common::sandbox(3), || {
        vec![
            Trial::test("cps3_others_leave_our_login", || {
                alone(|| others_leave_our_login("cps3-doctor"))
            }),
            Trial::test("cps4_others_leave_our_login", || {
                alone(|| others_leave_our_login("cps4-doctor"))
            }),
            Trial::test("cps3_logged_out_by_another_then_one_login", || {
                alone(|| logged_out_by_another("cps3-doctor"))
            }),
            Trial::test("cps4_logged_out_by_another_then_one_login", || {
                alone(|| logged_out_by_another("cps4-doctor"))
            }),
            Trial::test("mute_card_costs_only_its_slot", || {
                alone(mute_card_costs_only_its_slot)
            }),
            Trial::test("fork_stress_no_child_hangs", || alone(fork::stress)),
        ]
    })
}

/// One trial at a time. The trials share this process, and each measures or stresses it as a
/// whole: the fork stress must fork a process whose PC/SC calls are all the module's (the test
/// harness's own PC/SC calls — waiting for cards, pulling them — are an application's, which no
/// module can keep out of pcsc-lite's global lock at fork time), and the isolation figures must
/// not include another trial's load.
fn alone(trial: impl FnOnce() -> Result<(), Failed>) -> Result<(), Failed> {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    trial()
}

/// `target/<profile>/cpx`, built before the sandbox starts when run by cargo (like the module).
fn cpx_binary() -> Result<PathBuf, String> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let exe = std::env::current_exe().map_err(|e| e.to_string())?;
            let profile_dir = exe
                .parent()
                .and_then(|d| d.parent())
                .ok_or("cannot locate the target directory")?;
            cpx_testkit::built_cpx(
                profile_dir,
                concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml").as_ref(),
            )
        })
        .clone()
}

/// A logged-in session of this process (the "browser") on the card in `reader`.
struct Client {
    slot: Slot,
    session: Session,
    key: cryptoki::object::ObjectHandle,
}

impl Client {
    fn open(reader: &str) -> Result<Client, Failed> {
        let p11 = pkcs11()?;
        let slot = slot_of(p11, reader)?;
        let session = p11.open_rw_session(slot)?;
        session.login(UserType::User, Some(&AuthPin::new(PIN.into())))?;
        let key = find_one(&session, ObjectClass::PRIVATE_KEY, "CPS_PRIV_AUT")?;
        Ok(Client { slot, session, key })
    }

    fn state(&self) -> Result<SessionState, Failed> {
        Ok(self.session.get_session_info()?.session_state())
    }

    fn sign(&self) -> cryptoki::error::Result<Vec<u8>> {
        sign_with(&self.session, self.key)
    }

    /// Logged in, as C_GetSessionInfo says after the card was asked, and able to sign.
    fn still_logged_in(&self, after: &str) -> Result<(), Failed> {
        std::thread::sleep(AFTER_LOGIN_CHECK);
        let state = self.state()?;
        if state != SessionState::RwUser {
            return Err(format!("after {after}: C_GetSessionInfo says {state:?}: our login was lost").into());
        }
        self.sign()
            .map_err(|e| format!("after {after}: C_Sign failed: {e}"))?;
        Ok(())
    }
}

/// CKM_RSA_PKCS over a SHA-256 DigestInfo with `key`.
fn sign_with(session: &Session, key: cryptoki::object::ObjectHandle) -> cryptoki::error::Result<Vec<u8>> {
    let mut digest_info = vec![
        0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00,
        0x04, 0x20,
    ];
    digest_info.extend_from_slice(&[0x5A; 32]);
    session.sign(&Mechanism::RsaPkcs, key, &digest_info)
}

/// Run a program to the end with `stdin` as its input; its failure is the test's.
fn run(what: &str, cmd: &mut Command, stdin: &str) -> Result<(), Failed> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{what}: {e}"))?;
    if let Some(mut i) = child.stdin.take() {
        i.write_all(stdin.as_bytes())?;
    }
    let out = wait_output(child, Duration::from_secs(60)).map_err(|e| format!("{what}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{what}: {}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(())
}

/// The child's output once it exits; killed (and an error) after `limit`.
fn wait_output(mut child: std::process::Child, limit: Duration) -> Result<std::process::Output, String> {
    let deadline = Instant::now() + limit;
    loop {
        if child.try_wait().map_err(|e| e.to_string())?.is_some() {
            return child.wait_with_output().map_err(|e| e.to_string());
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let out = child.wait_with_output().map_err(|e| e.to_string())?;
            return Err(format!(
                "still running after {limit:?}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Every program a workstation runs beside the browser logs in and out of the same card; the
/// browser's login survives each (none of them logs out a login it did not make).
fn others_leave_our_login(stem: &str) -> Result<(), Failed> {
    let (lease, _slot) = common::insert(stem)?;
    let reader = lease.name.clone();
    let client = Client::open(&reader)?;
    client.sign()?;
    let cpx = cpx_binary()?;
    let dir = tempfile::tempdir()?;
    let doc = dir.path().join("doc.txt");
    std::fs::write(&doc, b"ordonnance")?;

    run(
        "cpx pin verify",
        Command::new(&cpx).args(["pin", "verify", "--pin-stdin", "--reader", &reader]),
        "1234\n",
    )?;
    client.still_logged_in("cpx pin verify")?;

    run(
        "cpx sign",
        Command::new(&cpx)
            .args(["sign", "--key", "auth", "--pin-stdin", "--reader", &reader])
            .arg(&doc)
            .arg("-o")
            .arg(dir.path().join("doc.sig")),
        "1234\n",
    )?;
    client.still_logged_in("cpx sign")?;

    run(
        "cpx data --login",
        Command::new(&cpx).args(["data", "--login", "--pin-stdin", "--reader", &reader]),
        "1234\n",
    )?;
    client.still_logged_in("cpx data --login")?;

    run(
        "pkcs11-tool --login -O",
        Command::new("pkcs11-tool")
            .arg("--module")
            .arg(module_path()?)
            .args(["--slot-description", &reader, "--login", "--pin", PIN, "-O"]),
        "",
    )?;
    client.still_logged_in("pkcs11-tool --login -O")?;

    let mut other = peer::Peer::start(&reader)?;
    other.ask("login")?;
    other.ask("sign")?;
    other.ask("logout")?;
    other.ask("finalize")?;
    other.finish()?;
    client.still_logged_in("a second PKCS#11 process logging in and out")?;

    let child = fork::Child::spawn(&reader)?;
    child.step("login")?;
    child.step("finalize")?;
    child.finish()?;
    client.still_logged_in("a forked child logging in and calling C_Finalize")?;
    Ok(())
}

/// Another program whose own VERIFY logged the card in logs it out: our sessions turn public
/// and one C_Login recovers — learnt from C_GetSessionInfo (which asks the card), or from the
/// card's `6982` to a signature (then C_GetSessionInfo is public at once).
fn logged_out_by_another(stem: &str) -> Result<(), Failed> {
    let (lease, _slot) = common::insert(stem)?;
    let reader = lease.name.clone();

    // 1. A second PKCS#11 process logs in first, we log in (the card is already verified), it
    //    logs out: the card is logged out. C_GetSessionInfo tells, and one C_Login recovers.
    let mut other = peer::Peer::start(&reader)?;
    other.ask("login")?;
    let client = Client::open(&reader)?;
    client.sign()?;
    other.ask("logout")?;
    std::thread::sleep(AFTER_LOGIN_CHECK);
    let state = client.state()?;
    if state != SessionState::RwPublic {
        return Err(format!("after the other program's C_Logout: {state:?}, not public").into());
    }
    expect_rv(client.sign(), RvError::UserNotLoggedIn, "C_Sign while public")?;
    client
        .session
        .login(UserType::User, Some(&AuthPin::new(PIN.into())))?;
    assert_eq!(client.state()?, SessionState::RwUser);
    client.sign()?;
    other.ask("finalize")?;
    other.finish()?;

    // 2. A forked child logs in first, we log in, the child calls C_Finalize: the card is
    //    logged out. Our next signature meets the card's 6982 at once (no wait): it fails with
    //    CKR_USER_NOT_LOGGED_IN, the session is public from then on, one C_Login recovers.
    client.session.logout()?;
    let child = fork::Child::spawn(&reader)?;
    child.step("login")?;
    client
        .session
        .login(UserType::User, Some(&AuthPin::new(PIN.into())))?;
    client.sign()?;
    child.step("finalize")?;
    child.finish()?;
    expect_rv(
        client.sign(),
        RvError::UserNotLoggedIn,
        "C_Sign after the child's C_Finalize",
    )?;
    let state = client.state()?;
    if state != SessionState::RwPublic {
        return Err(format!("after the card's 6982: {state:?}, not public").into());
    }
    client
        .session
        .login(UserType::User, Some(&AuthPin::new(PIN.into())))?;
    client.sign()?;
    let _ = client.slot;
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn report(what: &str, mut v: Vec<Duration>) -> Duration {
    v.sort();
    let max = v.last().copied().unwrap_or_default();
    eprintln!(
        "{what}: {} calls, p50 {:?}, p99 {:?}, max {:?}",
        v.len(),
        percentile(&v, 0.5),
        percentile(&v, 0.99),
        max
    );
    max
}

/// One card stops answering in the middle of a command: the calls on a good card in another
/// reader all return, the stuck slot's own slot-level queries answer, and a call that needs the
/// stuck card gives up after the module's bound instead of waiting for ever.
fn mute_card_costs_only_its_slot() -> Result<(), Failed> {
    // Generous hang guard per call: the old module blocked every reader behind the mute card
    // until its command returned (here: never, until the test releases it).
    const HANG: Duration = Duration::from_secs(5);
    let (card, modes) = FaultModeCard::new(cpx_testkit::emulated("cps3-doctor")?);
    let (mute_lease, _mute_slot) = cpx_testkit::insert_card(Box::new(card))?;
    let (good_lease, _good_slot) = common::insert("cps4-doctor")?;
    let p11 = pkcs11()?;
    let mute = slot_of(p11, &mute_lease.name)?;
    let good = Client::open(&good_lease.name)?;

    // The mute card's token is known (C_GetTokenInfo read it), then it stops answering in the
    // middle of a C_GenerateRandom made by another thread.
    let mute_label = p11.get_token_info(mute)?.label().to_owned();
    let mute_session = p11.open_ro_session(mute)?;
    modes.mute();
    let stuck = std::thread::spawn(move || mute_session.generate_random_vec(16).map(drop));
    modes
        .wait_held(Duration::from_secs(10))
        .ok_or("the mute card got no command")?;

    // Another call that needs the stuck card waits for it, then gives up (the module's
    // STUCK_AFTER, 10 s without progress), concurrently with the calls below.
    let waiter = std::thread::spawn(move || {
        let t = Instant::now();
        let r = pkcs11().map(|p| p.open_ro_session(mute).map(drop));
        (
            t.elapsed(),
            r.map(|r| r.map_err(|e| common::is_rv(&e, RvError::DeviceError))),
        )
    });

    let mut slot_list = Vec::new();
    let mut token_info = Vec::new();
    let mut sign = Vec::new();
    let mut stuck_slot_queries = Vec::new();
    for i in 0..1000 {
        let t = Instant::now();
        let slots = p11.get_slots_with_token()?;
        slot_list.push(t.elapsed());
        if !slots.contains(&good.slot) || !slots.contains(&mute) {
            return Err(format!("call {i}: C_GetSlotList(TRUE) = {slots:?}").into());
        }
        let t = Instant::now();
        p11.get_token_info(good.slot)?;
        token_info.push(t.elapsed());
        let t = Instant::now();
        good.sign()?;
        sign.push(t.elapsed());
        if i % 50 == 0 {
            // The stuck slot's own slot-level queries answer from what is known.
            let t = Instant::now();
            let info = p11.get_token_info(mute)?;
            p11.get_slot_info(mute)?;
            stuck_slot_queries.push(t.elapsed());
            assert_eq!(info.label(), mute_label);
        }
    }
    // C_GetSlotList while another thread signs in a loop on the good card (and the mute card's
    // command still hangs): it never waits for either card.
    let stop = std::sync::atomic::AtomicBool::new(false);
    let mut busy_slot_list = Vec::new();
    let signed = std::thread::scope(|scope| -> Result<u64, Failed> {
        let signer = scope.spawn(|| -> Result<u64, Failed> {
            let session = p11.open_ro_session(good.slot)?;
            let key = find_one(&session, ObjectClass::PRIVATE_KEY, "CPS_PRIV_AUT")?;
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                sign_with(&session, key)?;
                n += 1;
            }
            Ok(n)
        });
        for _ in 0..1000 {
            let t = Instant::now();
            p11.get_slots_with_token()?;
            busy_slot_list.push(t.elapsed());
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        signer.join().map_err(|_| "signer panicked")?
    })?;
    eprintln!("{signed} signatures on the good card during the C_GetSlotList calls below");
    let worst = [
        report(
            "C_GetSlotList while another thread signs (one reader stuck)",
            busy_slot_list,
        ),
        report("C_GetSlotList (one reader stuck)", slot_list),
        report("C_GetTokenInfo, good card (one reader stuck)", token_info),
        report("C_Sign, good card (one reader stuck)", sign),
        report(
            "C_GetTokenInfo + C_GetSlotInfo of the stuck slot",
            stuck_slot_queries,
        ),
    ];
    if let Some(w) = worst.iter().find(|w| **w > HANG) {
        return Err(format!("a call took {w:?} with one reader stuck").into());
    }

    let (waited, r) = waiter.join().map_err(|_| "waiter panicked")?;
    eprintln!("C_OpenSession on the stuck slot gave up after {waited:?}: {r:?}");
    match r {
        Ok(Err(true)) => {}
        other => {
            return Err(format!(
                "C_OpenSession on the stuck slot: {other:?} (want Err(true): CKR_DEVICE_ERROR)"
            )
            .into());
        }
    }

    // The card leaves the reader: the stuck call returns.
    modes.pull_seen(&mute_lease.name)?;
    let r = stuck.join().map_err(|_| "stuck thread panicked")?;
    eprintln!("the stuck C_GenerateRandom returned: {r:?}");
    if r.is_ok() {
        return Err("the pulled card's command succeeded".into());
    }
    Ok(())
}
