//! The worker processes of `streaming.rs`: each loads the built module with the `cryptoki` crate
//! (as a real client does), does one job on one reader and prints one line of `key=value` results
//! on stdout; anything unexpected goes to stderr with a failing exit code.
#![allow(unsafe_code)]

use std::io::BufRead;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, ObjectClass};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use cryptoki_sys::{CK_BYTE, CK_RV, CK_SESSION_HANDLE, CK_ULONG};
use rsa::{Pkcs1v15Sign, Pss};
use sha2::Digest;

use crate::common::{bytes_attr, find, find_one, key_of};

/// Environment: which job (`random-huge`, `random-mib`, `sign`).
pub const ROLE: &str = "CPX_STREAMING_ROLE";
/// Environment: the module's path.
pub const MODULE: &str = "CPX_STREAMING_MODULE";
/// Environment: the reader.
pub const READER: &str = "CPX_STREAMING_READER";
/// Environment (`sign`): the private key's label.
pub const KEY: &str = "CPX_STREAMING_KEY";
/// Environment (`sign`): the signatures, `mechanism:MiB` comma-separated, mechanism one of
/// `sha256`, `sha1`, `sha256-pss`, or `rsa-pkcs` (parts far past a modulus: CKR_DATA_LEN_RANGE
/// at the final call, as for one part that long).
pub const PLAN: &str = "CPX_STREAMING_PLAN";
/// The built-in images' PIN; sent to the worker on its stdin.
pub const PIN: &str = "1234";
/// The parts a large message is fed in.
pub const PART: usize = 1 << 20;
/// An odd last part, so that the message is not a whole number of 64-byte blocks.
pub const LAST_PART: usize = 1405;

pub fn main() -> ExitCode {
    let result = match std::env::var(ROLE).as_deref() {
        Ok("random-huge") => random_huge(),
        Ok("random-mib") => random_mib(),
        Ok("sign") => sign(),
        other => Err(format!("unknown role {other:?}")),
    };
    match result {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("worker {}: {e}", std::process::id());
            ExitCode::FAILURE
        }
    }
}

fn var(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|e| format!("{name}: {e}"))
}

fn err(what: &str) -> impl Fn(cryptoki::error::Error) -> String + '_ {
    move |e| format!("{what}: {e}")
}

/// The module, initialised, and a session on the token of our reader.
fn open() -> Result<(Pkcs11, Session), String> {
    let p11 = Pkcs11::new(var(MODULE)?).map_err(err("load"))?;
    p11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .map_err(err("C_Initialize"))?;
    let slot = slot_of(&p11, &var(READER)?)?;
    let session = p11.open_ro_session(slot).map_err(err("C_OpenSession"))?;
    Ok((p11, session))
}

fn slot_of(p11: &Pkcs11, reader: &str) -> Result<Slot, String> {
    let deadline = Instant::now() + cpx_testkit::DEADLINE;
    loop {
        for s in p11.get_all_slots().map_err(err("C_GetSlotList"))? {
            let info = p11.get_slot_info(s).map_err(err("C_GetSlotInfo"))?;
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

type GenerateRandom = unsafe extern "C" fn(CK_SESSION_HANDLE, *mut CK_BYTE, CK_ULONG) -> CK_RV;

/// C_GenerateRandom on a 16-byte buffer with lengths no caller can have a buffer for (2^40, and
/// ULONG_MAX, where `len + 8` wrapped), then a real 16. The `cryptoki` crate takes the length
/// from a slice, so the module's own export is called, from the library `cryptoki` loaded
/// (same module state). Prints the three return codes.
fn random_huge() -> Result<String, String> {
    let (_p11, session) = open()?;
    // SAFETY: our own cdylib, already loaded by `open` (this only takes a reference).
    let lib = unsafe { libloading::Library::new(var(MODULE)?) }.map_err(|e| e.to_string())?;
    // SAFETY: the PKCS#11 signature of C_GenerateRandom (PKCS#11 2.40 §5.15).
    let generate = unsafe {
        *lib.get::<GenerateRandom>(b"C_GenerateRandom\0")
            .map_err(|e| e.to_string())?
    };
    let mut buf = [0u8; 16];
    let mut rv = Vec::new();
    for len in [1 << 40, CK_ULONG::MAX, 16] {
        // SAFETY: the first two lengths are lies the module must refuse before touching the
        // buffer (that is the test); the last is the buffer's true size.
        rv.push(unsafe { generate(session.handle(), buf.as_mut_ptr(), len) });
    }
    if buf == [0; 16] {
        return Err("16 random bytes all zero".into());
    }
    Ok(format!("huge={:#x} max={:#x} small={:#x}", rv[0], rv[1], rv[2]))
}

/// 1 MiB from C_GenerateRandom; prints its duration.
fn random_mib() -> Result<String, String> {
    let (_p11, session) = open()?;
    let mut buf = vec![0u8; 1 << 20];
    let started = Instant::now();
    session
        .generate_random_slice(&mut buf)
        .map_err(err("C_GenerateRandom"))?;
    let seconds = started.elapsed().as_secs_f64();
    // 131,072 chunks of 8 bytes: none may be left zero (a chunk the module skipped).
    if let Some(i) = buf.chunks(8).position(|c| c == [0; 8]) {
        return Err(format!("8-byte chunk {i} of the 1 MiB is zero"));
    }
    Ok(format!("seconds={seconds:.3}"))
}

/// The message of a job: `mib` parts of [`PART`] bytes (a fixed pattern, the part's number in
/// its first bytes, so no two parts are alike), then [`LAST_PART`] bytes. Never held whole.
fn parts(mib: usize, mut f: impl FnMut(&[u8]) -> Result<(), String>) -> Result<(), String> {
    let mut part: Vec<u8> = (0..PART as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    for i in 0..mib {
        part[..8].copy_from_slice(&(i as u64).to_be_bytes());
        f(&part)?;
    }
    f(&part[..LAST_PART])
}

/// The digest the worker computes itself, as the parts go.
enum Local {
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
}

/// Log in, then for each job of the plan: a multi-part signature checked against the
/// certificate (digest computed here as the parts go), the same message through
/// C_VerifyUpdate, and for the first job through C_DigestUpdate too. Prints the peak RSS.
fn sign() -> Result<String, String> {
    let pin = std::io::stdin()
        .lock()
        .lines()
        .next()
        .ok_or("no PIN on stdin")?
        .map_err(|e| e.to_string())?;
    let (_p11, s) = open()?;
    s.login(UserType::User, Some(&AuthPin::from(pin)))
        .map_err(err("C_Login"))?;
    let key = find_one(&s, ObjectClass::PRIVATE_KEY, &var(KEY)?).map_err(|e| format!("{e:?}"))?;
    let id = bytes_attr(&s, key, AttributeType::Id).map_err(|e| format!("{e:?}"))?;
    let pk = key_of(&s, &id).map_err(|e| format!("{e:?}"))?;
    let public = find(
        &s,
        &[Attribute::Class(ObjectClass::PUBLIC_KEY), Attribute::Id(id)],
    )
    .map_err(|e| format!("{e:?}"))?;
    let public = *public.first().ok_or("no public key")?;
    let mut report = Vec::new();
    for (n, job) in var(PLAN)?.split(',').enumerate() {
        let (name, mib) = job.split_once(':').ok_or("plan: mechanism:MiB")?;
        let mib: usize = mib.parse().map_err(|e| format!("plan: {e}"))?;
        if name == "rsa-pkcs" {
            too_long(&s, key, public, mib)?;
            report.push(format!("rsa-pkcs_{mib}mib=CKR_DATA_LEN_RANGE"));
            continue;
        }
        let started = Instant::now();
        let (mech, mut local) = match name {
            "sha256" => (Mechanism::Sha256RsaPkcs, Local::Sha256(sha2::Sha256::new())),
            "sha1" => (Mechanism::Sha1RsaPkcs, Local::Sha1(sha1::Sha1::new())),
            "sha256-pss" => (
                Mechanism::Sha256RsaPkcsPss(PkcsPssParams {
                    hash_alg: MechanismType::SHA256,
                    mgf: PkcsMgfType::MGF1_SHA256,
                    s_len: 32u64.into(),
                }),
                Local::Sha256(sha2::Sha256::new()),
            ),
            other => return Err(format!("plan: unknown mechanism {other}")),
        };
        s.sign_init(&mech, key).map_err(err("C_SignInit"))?;
        parts(mib, |p| {
            match &mut local {
                Local::Sha1(h) => h.update(p),
                Local::Sha256(h) => h.update(p),
            }
            s.sign_update(p).map_err(err("C_SignUpdate"))
        })?;
        let sig = s.sign_final().map_err(err("C_SignFinal"))?;
        let digest = match local {
            Local::Sha1(h) => h.finalize().to_vec(),
            Local::Sha256(h) => h.finalize().to_vec(),
        };
        let checked = match &mech {
            Mechanism::Sha1RsaPkcs => pk.verify(Pkcs1v15Sign::new::<sha1::Sha1>(), &digest, &sig),
            Mechanism::Sha256RsaPkcs => pk.verify(Pkcs1v15Sign::new::<sha2::Sha256>(), &digest, &sig),
            _ => pk.verify(Pss::new_with_salt::<sha2::Sha256>(32), &digest, &sig),
        };
        checked.map_err(|e| format!("{name} signature of {mib} MiB does not verify: {e}"))?;
        let signed = started.elapsed().as_secs_f64();
        // The module's own verification, streamed too.
        s.verify_init(&mech, public).map_err(err("C_VerifyInit"))?;
        parts(mib, |p| s.verify_update(p).map_err(err("C_VerifyUpdate")))?;
        s.verify_final(&sig).map_err(err("C_VerifyFinal"))?;
        if n == 0 {
            let digest_mech = if name == "sha1" {
                Mechanism::Sha1
            } else {
                Mechanism::Sha256
            };
            s.digest_init(&digest_mech).map_err(err("C_DigestInit"))?;
            parts(mib, |p| s.digest_update(p).map_err(err("C_DigestUpdate")))?;
            if s.digest_final().map_err(err("C_DigestFinal"))? != digest {
                return Err("C_DigestFinal differs from the message's digest".into());
            }
        }
        report.push(format!("{name}_{mib}mib_sign_s={signed:.2}"));
    }
    report.push(format!("vmhwm_kib={}", vm_hwm()?));
    Ok(report.join(" "))
}

/// CKM_RSA_PKCS takes at most a modulus of data: `mib` MiB of parts must end in
/// CKR_DATA_LEN_RANGE, for C_SignFinal and C_VerifyFinal alike.
fn too_long(
    s: &Session,
    key: cryptoki::object::ObjectHandle,
    public: cryptoki::object::ObjectHandle,
    mib: usize,
) -> Result<(), String> {
    let long = |r: cryptoki::error::Result<()>, what: &str| match r {
        Err(cryptoki::error::Error::Pkcs11(cryptoki::error::RvError::DataLenRange, _)) => Ok(()),
        other => Err(format!("{what} after {mib} MiB of CKM_RSA_PKCS parts: {other:?}")),
    };
    s.sign_init(&Mechanism::RsaPkcs, key).map_err(err("C_SignInit"))?;
    parts(mib, |p| s.sign_update(p).map_err(err("C_SignUpdate")))?;
    long(s.sign_final().map(drop), "C_SignFinal")?;
    s.verify_init(&Mechanism::RsaPkcs, public)
        .map_err(err("C_VerifyInit"))?;
    parts(mib, |p| s.verify_update(p).map_err(err("C_VerifyUpdate")))?;
    long(s.verify_final(&[0; 256]), "C_VerifyFinal")
}

/// The process's peak resident set (VmHWM of /proc/self/status), in KiB.
fn vm_hwm() -> Result<u64, String> {
    let status = std::fs::read_to_string("/proc/self/status").map_err(|e| e.to_string())?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| "no VmHWM in /proc/self/status".into())
}
