//! `cpx` under a 1 GB address-space limit (`ulimit -v 1000000`, as on a small machine, a
//! container with RLIMIT_AS or `vm.overcommit_memory=2`) against cards whose FCP/FCI claims a
//! 4 GiB file (`80 04 FF FF FF FF`) or whose certificate's DER header claims 16 MiB: a precise
//! error and exit code 1, never a signal nor "memory allocation … failed" (issue 13, item 4).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::process::{Command, ExitCode, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use cpx_testkit::{Failed, FaultModeCard, Trial, insert_card};
use cpx_vpcd::VirtualCard;

/// The address-space limit of the runs, in KiB (`ulimit -v`): far below the 4 GiB a hostile
/// FCP asks for, well above what `cpx` needs.
const LIMIT_KIB: u32 = 1_000_000;

fn main() -> ExitCode {
    cpx_testkit::run_tests(&cpx_testkit::SandboxConfig::default(), || {
        let mut trials = vec![
            Trial::test("honest_cards_work_under_the_limit", honest_cards),
            Trial::test("cps3_certificate_der_header_of_16_mib", cps3_der_header),
            Trial::test("cps3_data_object_fcp_size_4_gib", || data_object("cps3-doctor")),
            Trial::test("cps4_data_object_fcp_size_4_gib", || data_object("cps4-doctor")),
        ];
        for (stem, fid, object, command) in CASES {
            trials.push(Trial::test(
                format!("{stem}_{object}_fcp_size_4_gib").replace([' ', '.'], "_"),
                move || fcp_size_refused(stem, fid, object, command),
            ));
        }
        trials
    })
}

/// (card, file id, the object the error names, the `cpx` command that reads it).
/// The PrKDF is read by signing commands only (they need the PIN): the PKCS#11 test
/// (pkcs11-module/tests/bounded_sizes.rs) and cpx-card's tests/hostile_sizes.rs cover it.
const CASES: [(&str, [u8; 2], &str, &[&str]); 14] = [
    ("cps3-doctor", [0x50, 0x32], "TokenInfo", &["status"]),
    ("cps3-doctor", [0x50, 0x31], "ODF", &["status"]),
    ("cps3-doctor", [0x70, 0x01], "AODF", &["status"]),
    ("cps3-doctor", [0x70, 0x05], "CDF", &["status"]),
    ("cps3-doctor", [0x70, 0x06], "DODF", &["data"]),
    ("cps4-doctor", [0x2F, 0x00], "EF.DIR", &["status"]),
    ("cps4-doctor", [0xD0, 0x03], "EF.SN.ICC", &["status"]),
    ("cps4-doctor", [0x50, 0x32], "TokenInfo", &["status"]),
    ("cps4-doctor", [0x50, 0x31], "ODF", &["status"]),
    ("cps4-doctor", [0x70, 0x01], "AODF", &["status"]),
    ("cps4-doctor", [0x70, 0x05], "CDF", &["status"]),
    ("cps4-doctor", [0x70, 0x06], "DODF", &["data"]),
    (
        "cps4-doctor",
        [0xA0, 0x01],
        "Certificat de Signature CPS",
        &["status"],
    ),
    (
        "cps4-doctor",
        [0xA0, 0x02],
        "Certificat d'Authentification CPS",
        &["status"],
    ),
];

/// `cpx args --reader reader` under `ulimit -v LIMIT_KIB`, killed (and failed) after 60 s.
fn limited_cpx(args: &[&str], reader: &str) -> Result<Output, Failed> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v {LIMIT_KIB} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_cpx"))
        .args(args)
        .args(["--reader", reader])
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
            return Err(format!("cpx {args:?} still running after 60 s, killed").into());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(child.wait_with_output()?)
}

/// Exit code 1 with `cpx: malformed card data in <object>: … claims <size> bytes …`.
fn expect_refused(out: &Output, object: &str, size: &str) {
    let err = stderr(out);
    assert!(
        !err.contains("memory allocation"),
        "{object}: the host ran out of memory:\n{err}"
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{object}: {:?} (a signal if None)\nstdout:\n{}\nstderr:\n{err}",
        out.status,
        stdout(out)
    );
    let want = format!("cpx: malformed card data in {object}: ");
    assert!(
        err.contains(&want) && err.contains(&format!("claims {size} bytes")),
        "{err}"
    );
}

fn insert(card: Box<dyn VirtualCard>) -> Result<(cpx_testkit::ReaderLease, cpx_vpcd::CardSlot), Failed> {
    insert_card(card)
}

fn fcp_size_refused(stem: &str, fid: [u8; 2], object: &str, command: &[&str]) -> Result<(), Failed> {
    let (card, modes) = FaultModeCard::new(emulated(stem));
    modes.override_size(&fid, &[0xFF; 4]);
    let (lease, _slot) = insert(Box::new(card))?;
    let out = limited_cpx(command, &lease.name)?;
    expect_refused(&out, object, "4294967295");
    Ok(())
}

fn honest_cards() -> Result<(), Failed> {
    for stem in ["cps3-doctor", "cps4-doctor"] {
        let (lease, _slot) = insert(emulated(stem))?;
        for command in [&["status"][..], &["data"]] {
            let out = limited_cpx(command, &lease.name)?;
            assert_eq!(out.status.code(), Some(0), "{stem} {command:?}: {}", stderr(&out));
        }
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
    let card: Box<dyn VirtualCard> = cpx_emulator::card_from_image(&image);
    let (lease, _slot) = insert(card)?;
    let out = limited_cpx(&["status"], &lease.name)?;
    expect_refused(&out, "Certificat de Signature CPS", "16777220");
    Ok(())
}

/// `cpx data` reports a data object it cannot read in that object's `error` and goes on with the
/// others (exit 0): the hostile size is that error, and the other objects are read.
fn data_object(stem: &str) -> Result<(), Failed> {
    let (card, modes) = FaultModeCard::new(emulated(stem));
    modes.override_size(&[0xD1, 0x02], &[0xFF; 4]);
    let (lease, _slot) = insert(Box::new(card))?;
    let out = limited_cpx(&["data", "--json"], &lease.name)?;
    let v = json(&out, "data");
    let objects = v["objects"].as_array().ok_or("no objects")?;
    let name = objects
        .iter()
        .find(|o| o["label"] == "CPS_NAME_PS")
        .ok_or("no CPS_NAME_PS")?;
    assert_eq!(name["read"], false, "{name}");
    let error = name["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("malformed card data in CPS_NAME_PS: ")
            && error.contains("claims 4294967295 bytes"),
        "{error}"
    );
    assert!(
        objects
            .iter()
            .any(|o| o["label"] == "CPS_ID_CARD" && o["read"] == true),
        "{v}"
    );
    Ok(())
}
