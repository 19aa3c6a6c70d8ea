//! The built module in a client process limited to 1 GB of address space (`ulimit -v 1000000`)
//! against cards whose FCP/FCI claims a 4 GiB file (`80 04 FF FF FF FF`, on each file kind) or
//! whose CPS3 certificate's DER header claims 16 MiB (issue 13, item 4): the call that reads
//! that file gets CKR_DEVICE_ERROR (or CKR_TOKEN_NOT_RECOGNIZED while the card is opened), the
//! process goes on; it is never killed by an abort ("memory allocation of … failed").
//!
//! The test binary runs again as the client (`CPX_BOUNDED_ROLE=client`, under `sh -c 'ulimit
//! -v …; exec …'`): it loads the module with the disk cache off (so the card is read), and
//! prints one line per call: `<call> <what> <CKR name or OK>`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::process::{Command, ExitCode, Output, Stdio};
use std::time::{Duration, Instant};

use cpx_testkit::{Failed, FaultModeCard, Trial, insert_card};
use cpx_vpcd::VirtualCard;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::Error;
use cryptoki::object::{Attribute, AttributeType, ObjectClass};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;

const ROLE: &str = "CPX_BOUNDED_ROLE";
const READER: &str = "CPX_BOUNDED_READER";
const MODULE: &str = "CPX_BOUNDED_MODULE";
/// The client's address-space limit in KiB: far below the 4 GiB a hostile FCP asks for.
const LIMIT_KIB: u32 = 1_000_000;

fn main() -> ExitCode {
    if std::env::var_os(ROLE).is_some() {
        return client();
    }
    cpx_testkit::run_tests(&common::sandbox(4), || {
        let mut trials = vec![
            Trial::test("honest_cards_work_under_the_limit", honest_cards),
            Trial::test("cps3_certificate_der_header_of_16_mib", cps3_der_header),
        ];
        for (stem, fid, file, expect) in CASES {
            let name = format!("{stem}_{file}_fcp_size_4_gib").replace(['.', ' '], "_");
            trials.push(Trial::test(name, move || fcp_size_refused(stem, fid, expect)));
        }
        trials
    })
}

/// What the client must show for a hostile file.
#[derive(Clone, Copy)]
enum Expect {
    /// This line: the call that reads the file and its error.
    Line(&'static str),
    /// A listing without data objects: the module lists the token without them when the DODF
    /// cannot be read (objects.rs `card_data`).
    NoDataObjects,
}
use Expect::{Line, NoDataObjects};

/// (card, file id, file, what the client shows).
const CASES: [(&str, [u8; 2], &str, Expect); 17] = [
    (
        "cps3-doctor",
        [0x50, 0x32],
        "TokenInfo",
        Line("GetTokenInfo token TOKEN_NOT_RECOGNIZED"),
    ),
    (
        "cps3-doctor",
        [0x50, 0x31],
        "ODF",
        Line("FindObjects all DEVICE_ERROR"),
    ),
    (
        "cps3-doctor",
        [0x70, 0x01],
        "AODF",
        Line("Login user DEVICE_ERROR"),
    ),
    (
        "cps3-doctor",
        [0x70, 0x02],
        "PrKDF",
        Line("FindObjects all DEVICE_ERROR"),
    ),
    (
        "cps3-doctor",
        [0x70, 0x05],
        "CDF",
        Line("FindObjects all DEVICE_ERROR"),
    ),
    ("cps3-doctor", [0x70, 0x06], "DODF", NoDataObjects),
    (
        "cps3-doctor",
        [0xD1, 0x02],
        "data object",
        Line("GetAttributeValue CPS_NAME_PS DEVICE_ERROR"),
    ),
    (
        "cps4-doctor",
        [0x2F, 0x00],
        "EF.DIR",
        Line("GetTokenInfo token TOKEN_NOT_RECOGNIZED"),
    ),
    (
        "cps4-doctor",
        [0xD0, 0x03],
        "EF.SN.ICC",
        Line("GetTokenInfo token TOKEN_NOT_RECOGNIZED"),
    ),
    (
        "cps4-doctor",
        [0x50, 0x32],
        "TokenInfo",
        Line("GetTokenInfo token TOKEN_NOT_RECOGNIZED"),
    ),
    (
        "cps4-doctor",
        [0x50, 0x31],
        "ODF",
        Line("FindObjects all DEVICE_ERROR"),
    ),
    (
        "cps4-doctor",
        [0x70, 0x01],
        "AODF",
        Line("Login user DEVICE_ERROR"),
    ),
    (
        "cps4-doctor",
        [0x70, 0x02],
        "PrKDF",
        Line("FindObjects all DEVICE_ERROR"),
    ),
    (
        "cps4-doctor",
        [0x70, 0x05],
        "CDF",
        Line("FindObjects all DEVICE_ERROR"),
    ),
    ("cps4-doctor", [0x70, 0x06], "DODF", NoDataObjects),
    (
        "cps4-doctor",
        [0xD1, 0x02],
        "data object",
        Line("GetAttributeValue CPS_NAME_PS DEVICE_ERROR"),
    ),
    (
        "cps4-doctor",
        [0xA0, 0x01],
        "certificate FCI",
        Line("GetAttributeValue Certificat de Signature CPS DEVICE_ERROR"),
    ),
];

/// The client under the address-space limit, against `reader`; killed (and failed) after 60 s.
fn run_client(reader: &str) -> Result<Output, Failed> {
    let exe = std::env::current_exe()?;
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v {LIMIT_KIB} && exec \"$0\""))
        .arg(exe)
        .env(ROLE, "client")
        .env(READER, reader)
        .env(MODULE, common::module_path()?)
        .env("CPX_PKCS11_CACHE", "off")
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait()?.is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err("the PKCS#11 client still running after 60 s, killed".into());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(child.wait_with_output()?)
}

/// The client's lines, once it exited normally (not by a signal, no allocation failure).
fn lines(out: &Output) -> Result<Vec<String>, Failed> {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if stderr.contains("memory allocation") || out.status.code() != Some(0) {
        return Err(format!(
            "client ended {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
            out.status
        )
        .into());
    }
    Ok(stdout.lines().map(str::to_owned).collect())
}

fn fcp_size_refused(stem: &str, fid: [u8; 2], expect: Expect) -> Result<(), Failed> {
    let (card, modes) = FaultModeCard::new(common::emulated(stem));
    modes.override_size(&fid, &[0xFF; 4]);
    check(Box::new(card), expect)
}

fn check(card: Box<dyn VirtualCard>, expect: Expect) -> Result<(), Failed> {
    let (lease, _slot) = insert_card(card)?;
    let lines = lines(&run_client(&lease.name)?)?;
    let shown = match expect {
        Line(line) => lines.iter().any(|l| l == line),
        NoDataObjects => {
            lines.iter().any(|l| l == "FindObjects all OK")
                && !lines
                    .iter()
                    .any(|l| l.starts_with("GetAttributeValue CPS_NAME_PS"))
        }
    };
    if !shown {
        let printed = lines.join("\n");
        return Err(format!("expected {:?}, the client printed:\n{printed}", describe(expect)).into());
    }
    // Whatever else failed, it failed as a device error, never as the library's own failure.
    for l in &lines {
        assert!(
            l.ends_with(" OK") || l.ends_with("DEVICE_ERROR") || l.ends_with("TOKEN_NOT_RECOGNIZED"),
            "{l}"
        );
    }
    Ok(())
}

fn describe(expect: Expect) -> &'static str {
    match expect {
        Line(l) => l,
        NoDataObjects => "a listing without data objects",
    }
}

fn honest_cards() -> Result<(), Failed> {
    for stem in ["cps3-doctor", "cps4-doctor"] {
        let (lease, _slot) = insert_card(common::emulated(stem))?;
        let lines = lines(&run_client(&lease.name)?)?;
        assert!(lines.len() > 5, "{lines:?}");
        assert!(lines.iter().all(|l| l.ends_with(" OK")), "{stem}: {lines:#?}");
    }
    Ok(())
}

fn cps3_der_header() -> Result<(), Failed> {
    let mut image = cpx_emulator::builtin_image("cps3-doctor").ok_or("no image")??;
    let sign = image.sign.as_mut().ok_or("no signature key")?;
    // 30 83 FFFFFF: a 16 MiB SEQUENCE, in place of 30 82 xxxx.
    let mut cert = vec![0x30, 0x83, 0xFF, 0xFF, 0xFF];
    cert.extend_from_slice(&sign.cert[4..]);
    sign.cert = cert;
    let (card, wire) = cpx_testkit::Recorder::new(cpx_emulator::card_from_image(&image));
    check(
        Box::new(card),
        Line("GetAttributeValue Certificat de Signature CPS DEVICE_ERROR"),
    )?;
    // The certificate's first chunk gave the header; nothing more was read of it after its
    // last selection (the old code read on until the card refused: 6B00).
    let commands = wire.commands();
    let selected = commands
        .iter()
        .rposition(|c| c[1] == 0xA4 && c.ends_with(&[0xA0, 0x01]))
        .ok_or("the certificate was never selected")?;
    let reads = commands[selected + 1..]
        .iter()
        .take_while(|c| c[1] != 0xA4)
        .filter(|c| c[1] == 0xB0)
        .count();
    assert_eq!(reads, 1, "READ BINARY after the hostile header");
    Ok(())
}

// ---- the client process ----

/// `OK`, or the CKR name without its prefix (`DEVICE_ERROR`).
fn outcome<T>(r: &Result<T, Error>) -> String {
    match r {
        Ok(_) => "OK".into(),
        Err(Error::Pkcs11(rv, _)) => {
            let name = format!("{:?}", cryptoki::error::Rv::Error(*rv));
            ckr_name(&name)
        }
        Err(e) => format!("OTHER({e})"),
    }
}

/// `Error(DeviceError)` → `DEVICE_ERROR`.
fn ckr_name(debug: &str) -> String {
    let inner = debug.trim_start_matches("Error(").trim_end_matches(')');
    let mut out = String::new();
    for (i, c) in inner.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

fn client() -> ExitCode {
    match client_calls() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("client: {e:?}");
            ExitCode::FAILURE
        }
    }
}

/// C_GetTokenInfo, C_FindObjects (all objects), C_GetAttributeValue(CKA_VALUE) of every
/// certificate and public data object, then C_Login (the AODF gives the PIN format); one line
/// each. Stops at the first failure of the first two (nothing to list then).
fn client_calls() -> Result<(), Failed> {
    let reader = std::env::var(READER)?;
    let p11 = Pkcs11::new(std::env::var(MODULE)?)?;
    p11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))?;
    let slot = common::slot_of(&p11, &reader)?;
    let info = p11.get_token_info(slot);
    println!("GetTokenInfo token {}", outcome(&info));
    if info.is_err() {
        return Ok(());
    }
    let session = p11.open_ro_session(slot)?;
    let all = session.find_objects(&[]);
    println!("FindObjects all {}", outcome(&all));
    let Ok(all) = all else { return Ok(()) };
    for o in all {
        let attrs = session.get_attributes(o, &[AttributeType::Class, AttributeType::Label])?;
        let (mut class, mut label) = (None, String::new());
        for a in attrs {
            match a {
                Attribute::Class(c) => class = Some(c),
                Attribute::Label(l) => label = String::from_utf8_lossy(&l).into_owned(),
                _ => {}
            }
        }
        if matches!(class, Some(ObjectClass::CERTIFICATE | ObjectClass::DATA)) {
            let value = session.get_attributes(o, &[AttributeType::Value]);
            println!("GetAttributeValue {label} {}", outcome(&value));
        }
    }
    // The built-in images' PIN (test-vectors/cards).
    let login = session.login(UserType::User, Some(&AuthPin::new("1234".into())));
    println!("Login user {}", outcome(&login));
    Ok(())
}
