//! pcscd killed under a logged-in session and started again; then a reader gone.
//!
//! pcsc-lite picks its pcscd once per process (`PCSCLITE_CSOCK_NAME`), and killing the suite's
//! own pcscd would break the other trials, so this trial starts a sandbox of its own and runs
//! the module in a child process (this binary again, `CPX_FAULTS_ROLE=pcscd-client`) on that
//! sandbox. Parent and child go step by step over the child's stdin/stdout, one line per step:
//! the parent kills, restarts and reconfigures pcscd and moves the card; the child checks what
//! the module says at each step, every call bounded.
//!
//! "Reader unplugged": a vpcd reader is declared in pcscd's configuration and Debian's pcscd
//! (libudev build) does not re-read it while running (SIGUSR1 is a no-op for serial readers,
//! checked), so a reader cannot vanish under a running pcscd here. The closest faithful case
//! is a reader missing when pcscd comes back (the reader was unplugged while pcscd was down):
//! the module must keep its slot, without token, and find the token again when it returns.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cpx_testkit::{Failed, Sandbox, SandboxConfig};
use cpx_vpcd::CardSlot;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::ObjectClass;
use cryptoki::session::UserType;
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;

use crate::common::*;
use crate::known::{check_code, judge};
use crate::rig::{CALL_BOUND, Key, PIN, bounded, rv_of, session_dropped, sign_checked};

const ROLE: &str = "CPX_FAULTS_ROLE";
const READER: &str = "CPX_FAULTS_READER";
const MODULE: &str = "CPX_FAULTS_MODULE";
/// Bound for one condition the child waits for (a pcscd restart and a card found again
/// included). Generous for a loaded machine: it costs nothing when things go well.
const STEP: Duration = Duration::from_secs(30);
/// Bound for the parent waiting for one whole step of the child, which may wait for a few
/// conditions in turn.
const PARENT_STEP: Duration = Duration::from_secs(120);

/// In the child process: run its role and return its exit code; `None` in the test process.
pub fn child_role() -> Option<ExitCode> {
    let role = std::env::var(ROLE).ok()?;
    let r = match role.as_str() {
        "pcscd-client" => client(),
        other => Err(format!("unknown role {other}").into()),
    };
    Some(match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pcscd client: {}", e.message().unwrap_or("failed"));
            ExitCode::FAILURE
        }
    })
}

/// The child's steps, as the parent drives them.
struct Driver {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
}

impl Driver {
    fn expect(&mut self, step: &str) -> Result<(), Failed> {
        match self.lines.recv_timeout(PARENT_STEP) {
            Ok(line) if line == step => Ok(()),
            Ok(line) => Err(format!("child said {line:?}, expected {step:?}").into()),
            Err(_) => {
                let _ = self.child.kill();
                Err(format!("child did not reach {step:?} within {PARENT_STEP:?} (see its stderr)").into())
            }
        }
    }

    fn tell(&mut self, step: &str) -> Result<(), Failed> {
        writeln!(self.stdin, "{step}")?;
        Ok(self.stdin.flush()?)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Never leave the child behind: it is ours, stop it by its handle.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The parent side (a trial of the suite).
pub fn killed_and_restarted() -> Result<(), Failed> {
    let mut sandbox = Sandbox::start(&SandboxConfig {
        entries: 2,
        ..SandboxConfig::default()
    })?;
    let reader = sandbox.readers()[0].clone();
    let mut card = CardSlot::new(reader.vpcd_addr(), emulated("cps4-doctor"));
    card.insert()?;

    let mut child = Command::new(std::env::current_exe()?)
        .envs(sandbox.env())
        .env(ROLE, "pcscd-client")
        .env(READER, &reader.name)
        .env(MODULE, module_path()?)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let stdin = child.stdin.take().ok_or("no stdin")?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut d = Driver { child, stdin, lines };

    d.expect("ready")?;
    let t = Instant::now();
    sandbox.kill_pcscd()?;
    card.remove();
    d.tell("killed")?;
    d.expect("down-ok")?;
    sandbox.start_pcscd()?;
    card.insert()?;
    d.tell("restarted")?;
    d.expect("recovered")?;
    eprintln!(
        "pcscd killed → module working again: {:.1} s",
        t.elapsed().as_secs_f64()
    );

    // The reader's entry is left out of the next start: the reader is gone.
    sandbox.kill_pcscd()?;
    card.remove();
    sandbox.set_entry_plugged(0, false)?;
    sandbox.start_pcscd()?;
    d.tell("unplugged")?;
    d.expect("gone-ok")?;
    sandbox.kill_pcscd()?;
    sandbox.set_entry_plugged(0, true)?;
    sandbox.start_pcscd()?;
    card.insert()?;
    d.tell("replugged")?;
    d.expect("done")?;

    let deadline = Instant::now() + CALL_BOUND;
    loop {
        if let Some(status) = d.child.try_wait()? {
            return if status.success() {
                Ok(())
            } else {
                Err(format!("child exited with {status}").into())
            };
        }
        if Instant::now() > deadline {
            return Err("child did not exit".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One line to the parent.
fn say(step: &str) {
    println!("{step}");
}

fn hear(lines: &mut impl Iterator<Item = std::io::Result<String>>, step: &str) -> Result<(), Failed> {
    match lines.next() {
        Some(Ok(line)) if line == step => Ok(()),
        other => Err(format!("expected {step:?} from the parent, got {other:?}").into()),
    }
}

/// The slot of `reader` once its token presence is `present`, polling within `STEP`.
fn slot_when(p11: &Pkcs11, reader: &str, present: bool) -> Result<Slot, Failed> {
    let deadline = Instant::now() + STEP;
    loop {
        let found = p11.get_all_slots().map_err(|e| e.to_string()).and_then(|slots| {
            for s in slots {
                let info = p11.get_slot_info(s).map_err(|e| e.to_string())?;
                if info.slot_description().trim_end() == reader {
                    return Ok(Some((s, info.token_present())));
                }
            }
            Ok(None)
        });
        match found {
            Ok(Some((s, p))) if p == present => return Ok(s),
            last if Instant::now() > deadline => {
                return Err(format!("{reader}: token present = {present} not seen; last: {last:?}").into());
            }
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A blocking C_WaitForSlotEvent on a thread of its own, checked to be still blocked a moment
/// later (a wrong early answer has that moment to show).
fn blocked_waiter(p11: &Pkcs11, what: &str) -> Result<mpsc::Receiver<cryptoki::error::Result<Slot>>, Failed> {
    let waiter = {
        let p11 = p11.clone();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || tx.send(p11.wait_for_slot_event()));
        rx
    };
    std::thread::sleep(Duration::from_millis(300));
    if let Ok(early) = waiter.try_recv() {
        return Err(format!("C_WaitForSlotEvent {what} returned: {early:?}").into());
    }
    Ok(waiter)
}

/// Open a session, log in once, sign and check the signature.
fn works(p11: &Pkcs11, slot: Slot) -> Result<cryptoki::session::Session, Failed> {
    let s = p11.open_ro_session(slot)?;
    s.login(UserType::User, Some(&AuthPin::from(PIN)))?;
    let cert = find_one(&s, ObjectClass::CERTIFICATE, "Certificat d'Authentification CPS")?;
    let pk = cert_key(&bytes_attr(&s, cert, cryptoki::object::AttributeType::Value)?);
    sign_checked(&s, Key::Authentication, &pk, b"pcscd")?;
    Ok(s)
}

fn client() -> Result<(), Failed> {
    let reader = std::env::var(READER)?;
    let p11 = Pkcs11::new(std::env::var(MODULE)?)?;
    p11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))?;
    let mut parent = std::io::stdin().lock().lines();

    let slot = slot_when(&p11, &reader, true)?;
    let s = works(&p11, slot)?;
    // The insertion seen at start may or may not be queued as an event (events.rs): drain it.
    while p11.get_slot_event()?.is_some() {}
    let key = find_one(&s, ObjectClass::PRIVATE_KEY, Key::Authentication.label())?;
    let waiter = blocked_waiter(&p11, "with no event")?;
    say("ready");

    hear(&mut parent, "killed")?;
    // pcscd stopping is an event: the token is gone with it. A blocked C_WaitForSlotEvent wakes
    // with a slot (an error would end NSS's event thread for good), whether pcscd died while
    // the waiter was inside SCardGetStatusChange or on its way there.
    let woke = waiter
        .recv_timeout(STEP)
        .map_err(|_| "C_WaitForSlotEvent still blocked after pcscd died")?;
    let mut events_for = vec![woke.map_err(|e| format!("C_WaitForSlotEvent after pcscd died: {e}"))?];
    // Each reader is reported once (this sandbox has two), then nothing until pcscd is back.
    loop {
        let p = p11.clone();
        match bounded(
            "C_WaitForSlotEvent(DONT_BLOCK) with pcscd down",
            CALL_BOUND,
            move || p.get_slot_event(),
        )? {
            Ok(Some(s)) if events_for.len() < 8 => events_for.push(s),
            Ok(None) => break,
            other => return Err(format!("C_WaitForSlotEvent(DONT_BLOCK) with pcscd down: {other:?}").into()),
        }
    }
    if !events_for.contains(&slot) {
        return Err(
            format!("pcscd died: events for {events_for:?}, none for the token's slot {slot}").into(),
        );
    }
    // Every call answers at once. C_GetSlotList keeps every slot (IDs are stable; NSS must
    // never see the list shrink) and none holds a token.
    let p = p11.clone();
    let listed = bounded("C_GetSlotList with pcscd down", CALL_BOUND, move || {
        p.get_all_slots()
            .and_then(|all| Ok((all, p.get_slots_with_token()?)))
    })?;
    match &listed {
        Ok((all, with_token)) if all.contains(&slot) && with_token.is_empty() => {}
        other => return Err(format!("C_GetSlotList with pcscd down: {other:?}").into()),
    }
    let (s, signed) = bounded("C_Sign with pcscd down", CALL_BOUND, move || {
        let r = s.sign(&Mechanism::Sha256RsaPkcs, key, b"no pcscd");
        (s, r)
    })?;
    let rv = rv_of(signed, "C_Sign with pcscd down")?;
    let reported = check_code(rv, RvError::DeviceRemoved, "C_Sign with pcscd down")?;
    let p = p11.clone();
    let info = bounded("C_GetSlotInfo with pcscd down", CALL_BOUND, move || {
        p.get_slot_info(slot)
    })?;
    let present = info.as_ref().is_ok_and(|i| i.token_present());
    judge(
        "C_GetSlotInfo with pcscd down, expected no token",
        &info,
        info.is_ok() && !present,
    )?;
    let p = p11.clone();
    let opened = bounded("C_OpenSession with pcscd down", CALL_BOUND, move || {
        p.open_ro_session(slot).map(drop)
    })?;
    judge(
        "C_OpenSession with pcscd down, expected TokenNotPresent",
        &opened,
        matches!(opened, Err(Error::Pkcs11(RvError::TokenNotPresent, _))),
    )?;
    // A wait while pcscd is away blocks (no error) and wakes when it is back.
    let waiter = blocked_waiter(&p11, "with pcscd down")?;
    say("down-ok");

    hear(&mut parent, "restarted")?;
    let woke = waiter
        .recv_timeout(STEP)
        .map_err(|_| "C_WaitForSlotEvent still blocked after pcscd came back")?;
    let woke = woke.map_err(|e| format!("C_WaitForSlotEvent when pcscd came back: {e}"))?;
    if !p11.get_all_slots()?.contains(&woke) {
        return Err(format!("C_WaitForSlotEvent when pcscd came back: unknown slot {woke}").into());
    }
    let again = slot_when(&p11, &reader, true)?;
    if again != slot {
        return Err(format!("slot ID changed across the pcscd restart: {slot} → {again}").into());
    }
    // The login died with pcscd (the card was powered off): the old session is gone.
    session_dropped(&s, reported, "old session after the restart")?;
    drop(works(&p11, slot)?);
    say("recovered");

    hear(&mut parent, "unplugged")?;
    let gone = slot_when(&p11, &reader, false)?;
    if gone != slot {
        return Err(format!("the unplugged reader's slot changed: {slot} → {gone}").into());
    }
    let p = p11.clone();
    let opened = bounded("C_OpenSession on the gone reader", CALL_BOUND, move || {
        p.open_ro_session(slot).map(drop)
    })?;
    expect_rv(
        opened,
        RvError::TokenNotPresent,
        "C_OpenSession on the gone reader",
    )?;
    say("gone-ok");

    hear(&mut parent, "replugged")?;
    let back = slot_when(&p11, &reader, true)?;
    if back != slot {
        return Err(format!("the replugged reader got another slot: {slot} → {back}").into());
    }
    drop(works(&p11, slot)?);
    say("done");
    Ok(())
}
