//! fork() of a process that uses the module: children driven step by step ([`Child`]), and a
//! stress test ([`stress`]): while the parent's threads sign and poll the slots, thousands of
//! forked children initialise the module, use it and finalise it; none may hang.
//!
//! The child calls the module's C ABI through the function list the parent loaded (the same
//! mapping, as in any forked application), and nothing else but system calls: no Rust lock the
//! parent's threads may have held at fork time.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::ptr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cpx_testkit::Failed;
use cryptoki_sys::*;

use crate::common::{module_path, pkcs11, slot_of};

/// A hang guard: a child step (or a whole stress child) longer than this has hung.
const CHILD_LIMIT: Duration = Duration::from_secs(30);

/// The module's function list, loaded once (the library stays loaded for the process's life).
fn functions() -> Result<&'static CK_FUNCTION_LIST, Failed> {
    static LIST: OnceLock<Result<usize, String>> = OnceLock::new();
    let p = LIST
        .get_or_init(|| {
            let path = module_path().map_err(|e| format!("{e:?}"))?;
            // SAFETY: loading our own module, whose initialisers are safe to run.
            let lib = unsafe { libloading::Library::new(path) }.map_err(|e| e.to_string())?;
            let mut list: *mut CK_FUNCTION_LIST = ptr::null_mut();
            {
                // SAFETY: the symbol has this type (PKCS#11 §5.2).
                let get: libloading::Symbol<unsafe extern "C" fn(*mut *mut CK_FUNCTION_LIST) -> CK_RV> =
                    unsafe { lib.get(b"C_GetFunctionList") }.map_err(|e| e.to_string())?;
                // SAFETY: a valid out pointer.
                let rv = unsafe { get(&mut list) };
                if rv != CKR_OK || list.is_null() {
                    return Err(format!("C_GetFunctionList: {rv:#x}"));
                }
            }
            std::mem::forget(lib);
            Ok(list as usize)
        })
        .clone()?;
    // SAFETY: the list is static data of the module, which stays loaded.
    Ok(unsafe { &*(p as *const CK_FUNCTION_LIST) })
}

/// What a child does, step by step. Every function here runs in the forked child only.
mod child {
    use super::*;

    pub(super) fn initialize(f: &CK_FUNCTION_LIST) -> CK_RV {
        match f.C_Initialize {
            // SAFETY: NULL arguments are allowed (PKCS#11 §5.4).
            Some(init) => unsafe { init(ptr::null_mut()) },
            None => CKR_GENERAL_ERROR,
        }
    }

    pub(super) fn finalize(f: &CK_FUNCTION_LIST) -> CK_RV {
        match f.C_Finalize {
            // SAFETY: NULL is the only valid argument.
            Some(fin) => unsafe { fin(ptr::null_mut()) },
            None => CKR_GENERAL_ERROR,
        }
    }

    /// The slots with a token (at most 16).
    pub(super) fn slots(f: &CK_FUNCTION_LIST) -> Result<Vec<CK_SLOT_ID>, CK_RV> {
        let Some(list) = f.C_GetSlotList else {
            return Err(CKR_GENERAL_ERROR);
        };
        let mut ids = [0 as CK_SLOT_ID; 16];
        let mut n: CK_ULONG = ids.len() as CK_ULONG;
        // SAFETY: a buffer of `n` slot IDs.
        let rv = unsafe { list(CK_TRUE, ids.as_mut_ptr(), &mut n) };
        if rv != CKR_OK {
            return Err(rv);
        }
        Ok(ids[..n as usize].to_vec())
    }

    /// The slot whose description is `reader`.
    pub(super) fn slot_of(f: &CK_FUNCTION_LIST, reader: &[u8]) -> Result<CK_SLOT_ID, CK_RV> {
        let Some(info) = f.C_GetSlotInfo else {
            return Err(CKR_GENERAL_ERROR);
        };
        for id in slots(f)? {
            // SAFETY: an all-zero CK_SLOT_INFO is a valid value to be overwritten.
            let mut i: CK_SLOT_INFO = unsafe { std::mem::zeroed() };
            // SAFETY: a valid out pointer.
            let rv = unsafe { info(id, &mut i) };
            if rv == CKR_OK && i.slotDescription.starts_with(reader) {
                return Ok(id);
            }
        }
        Err(CKR_SLOT_ID_INVALID)
    }

    pub(super) fn token_info(f: &CK_FUNCTION_LIST, slot: CK_SLOT_ID) -> CK_RV {
        let Some(info) = f.C_GetTokenInfo else {
            return CKR_GENERAL_ERROR;
        };
        // SAFETY: an all-zero CK_TOKEN_INFO is a valid value to be overwritten.
        let mut i: CK_TOKEN_INFO = unsafe { std::mem::zeroed() };
        // SAFETY: a valid out pointer.
        unsafe { info(slot, &mut i) }
    }

    /// Open a read-write session on `slot` and log in.
    pub(super) fn login(f: &CK_FUNCTION_LIST, slot: CK_SLOT_ID) -> CK_RV {
        let (Some(open), Some(login)) = (f.C_OpenSession, f.C_Login) else {
            return CKR_GENERAL_ERROR;
        };
        let mut h: CK_SESSION_HANDLE = 0;
        // SAFETY: a valid out pointer; no callback.
        let rv = unsafe {
            open(
                slot,
                CKF_SERIAL_SESSION | CKF_RW_SESSION,
                ptr::null_mut(),
                None,
                &mut h,
            )
        };
        if rv != CKR_OK {
            return rv;
        }
        let pin = crate::PIN.as_bytes();
        // SAFETY: the PIN buffer and its length.
        unsafe { login(h, CKU_USER, pin.as_ptr() as *mut u8, pin.len() as CK_ULONG) }
    }

    pub(super) fn exit(code: i32) -> ! {
        // SAFETY: _exit ends the child at once (no atexit handlers, no Rust runtime shutdown:
        // the parent's threads do not exist here).
        unsafe { libc::_exit(code) }
    }
}

/// A forked child driven step by step over a socket: `login` (C_Initialize, open a session on
/// the reader's slot, C_Login), then `finalize` (C_Finalize).
pub struct Child {
    pid: libc::pid_t,
    socket: UnixStream,
}

impl Child {
    /// Fork a child that will work on the card in `reader`.
    pub fn spawn(reader: &str) -> Result<Child, Failed> {
        let f = functions()?;
        let reader = reader.as_bytes().to_vec();
        let (parent_end, mut child_end) = UnixStream::pair()?;
        // SAFETY: the child only makes system calls and calls the module (see the module docs).
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err("fork failed".into());
        }
        if pid == 0 {
            drop(parent_end);
            let mut slot = None;
            let mut byte = [0u8; 1];
            while child_end.read_exact(&mut byte).is_ok() {
                let rv = match byte[0] {
                    b'l' => {
                        let rv = child::initialize(f);
                        if rv != CKR_OK {
                            rv
                        } else {
                            match child::slot_of(f, &reader) {
                                Ok(s) => {
                                    slot = Some(s);
                                    child::login(f, s)
                                }
                                Err(rv) => rv,
                            }
                        }
                    }
                    b'f' => child::finalize(f),
                    _ => CKR_GENERAL_ERROR,
                };
                let _ = slot;
                if child_end.write_all(&rv.to_le_bytes()).is_err() {
                    break;
                }
            }
            child::exit(0);
        }
        drop(child_end);
        parent_end.set_read_timeout(Some(CHILD_LIMIT))?;
        Ok(Child {
            pid,
            socket: parent_end,
        })
    }

    /// Run one step in the child (`login` or `finalize`); its CK_RV must be CKR_OK.
    pub fn step(&self, what: &str) -> Result<(), Failed> {
        let cmd = match what {
            "login" => b'l',
            "finalize" => b'f',
            _ => return Err(format!("unknown step {what}").into()),
        };
        (&self.socket).write_all(&[cmd])?;
        let mut rv = [0u8; 8];
        (&self.socket)
            .read_exact(&mut rv)
            .map_err(|e| format!("forked child, {what}: no answer within {CHILD_LIMIT:?} ({e})"))?;
        let rv = u64::from_le_bytes(rv);
        if rv != CKR_OK {
            return Err(format!("forked child, {what}: CK_RV {rv:#x}").into());
        }
        Ok(())
    }

    /// End the child and reap it.
    pub fn finish(self) -> Result<(), Failed> {
        drop(self.socket);
        match reap(self.pid, CHILD_LIMIT) {
            Some(0) => Ok(()),
            Some(code) => Err(format!("forked child exited with {code}").into()),
            None => Err("forked child hung at exit".into()),
        }
    }
}

/// Wait for `pid` at most `limit`: its exit code, or `None` (then it is killed and reaped).
fn reap(pid: libc::pid_t, limit: Duration) -> Option<i32> {
    let deadline = Instant::now() + limit;
    loop {
        let mut status = 0;
        // SAFETY: our own child; a valid status pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            return Some(if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else {
                128 + libc::WTERMSIG(status)
            });
        }
        if r < 0 {
            return Some(-1);
        }
        if Instant::now() >= deadline {
            eprintln!("child {pid} hung: {}", backtrace(pid));
            // SAFETY: our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            return None;
        }
        std::thread::sleep(Duration::from_micros(300));
    }
}

/// Where a hung child is stuck, when gdb is there to say (for the failure report).
fn backtrace(pid: libc::pid_t) -> String {
    let out = std::process::Command::new("timeout")
        .args([
            "20",
            "gdb",
            "-p",
            &pid.to_string(),
            "-batch",
            "-ex",
            "thread apply all bt",
        ])
        .stdin(std::process::Stdio::null())
        .output();
    match out {
        Ok(o) => String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter(|l| l.starts_with('#') || l.starts_with("Thread"))
            .collect::<Vec<_>>()
            .join("\n"),
        Err(e) => format!("(no backtrace: {e})"),
    }
}

/// How many children the stress test forks (`CPX_FORK_STRESS_FORKS`, default 2000).
fn forks() -> u64 {
    std::env::var("CPX_FORK_STRESS_FORKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

/// The forked stress child: initialise, list the slots, (every 50th child) use the card —
/// C_GetTokenInfo, a session and a login — then finalise. Exit code 0 when every call answered
/// CKR_OK, else 1..=4 naming the step.
fn stress_child(f: &CK_FUNCTION_LIST, reader: &[u8], with_card: bool) -> ! {
    if child::initialize(f) != CKR_OK {
        child::exit(1);
    }
    let slot = match child::slot_of(f, reader) {
        Ok(s) => s,
        Err(_) => child::exit(2),
    };
    if with_card && (child::token_info(f, slot) != CKR_OK || child::login(f, slot) != CKR_OK) {
        child::exit(3);
    }
    if child::finalize(f) != CKR_OK {
        child::exit(4);
    }
    child::exit(0);
}

/// ≥ 2,000 forks of a process whose threads sign and poll the slots, under CPU load: no child
/// may hang (each bounded by [`CHILD_LIMIT`], which fails the test) or fail.
pub fn stress() -> Result<(), Failed> {
    let (lease, _slot) = crate::common::insert("cps4-doctor")?;
    let reader = lease.name.clone();
    let p11 = pkcs11()?;
    let slot = slot_of(p11, &reader)?;
    // Logged in: the slot's login is shared by the signing threads' sessions.
    let _client = crate::Client::open(&reader)?;
    let f = functions()?;
    let stop = AtomicBool::new(false);
    let signatures = AtomicU64::new(0);
    let polls = AtomicU64::new(0);
    let forks = forks();
    let (mut hung, mut failed, mut codes) = (0u64, 0u64, Vec::new());
    let started = Instant::now();
    std::thread::scope(|scope| -> Result<(), Failed> {
        for _ in 0..2 {
            scope.spawn(|| {
                // Sessions are not shared between threads: each has its own (the login is the
                // slot's, made by `client`).
                let Ok(session) = p11.open_ro_session(slot) else {
                    return;
                };
                let Ok(key) = crate::common::find_one(
                    &session,
                    cryptoki::object::ObjectClass::PRIVATE_KEY,
                    "CPS_PRIV_AUT",
                ) else {
                    return;
                };
                while !stop.load(Ordering::Relaxed) {
                    if crate::sign_with(&session, key).is_err() {
                        break;
                    }
                    signatures.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        scope.spawn(|| {
            let session = p11.open_ro_session(slot);
            while !stop.load(Ordering::Relaxed) {
                let _ = p11.get_slots_with_token();
                let _ = p11.get_token_info(slot);
                if let Ok(s) = &session {
                    let _ = s.get_session_info();
                }
                polls.fetch_add(1, Ordering::Relaxed);
            }
        });
        // A thread in the module all the time (C_GetInfo is the cheapest call): a fork lands
        // inside some call of the module's at almost every try.
        scope.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                let _ = p11.get_library_info();
            }
        });
        // CPU load: one more runnable thread than the machine's two cores can serve with the
        // others, so that forks land at every point of the other threads' calls.
        scope.spawn(|| {
            let mut x = 0u64;
            while !stop.load(Ordering::Relaxed) {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                std::hint::black_box(x);
            }
        });
        let reader_bytes = reader.as_bytes().to_vec();
        for i in 0..forks {
            // SAFETY: the child only calls the module and makes system calls (see the docs).
            let pid = unsafe { libc::fork() };
            if pid < 0 {
                stop.store(true, Ordering::Relaxed);
                return Err("fork failed".into());
            }
            if pid == 0 {
                stress_child(f, &reader_bytes, i % 50 == 0);
            }
            match reap(pid, CHILD_LIMIT) {
                None => hung += 1,
                Some(0) => {}
                Some(code) => {
                    failed += 1;
                    codes.push(code);
                }
            }
        }
        stop.store(true, Ordering::Relaxed);
        Ok(())
    })?;
    eprintln!(
        "fork stress: {forks} children in {:?}: {hung} hung, {failed} failed {codes:?}; parent: {} signatures, {} slot polls meanwhile",
        started.elapsed(),
        signatures.load(Ordering::Relaxed),
        polls.load(Ordering::Relaxed)
    );
    if hung > 0 || failed > 0 {
        return Err(format!("{hung} children hung, {failed} failed (exit codes {codes:?})").into());
    }
    if signatures.load(Ordering::Relaxed) == 0 {
        return Err("the parent's threads never signed: nothing was stressed".into());
    }
    Ok(())
}
