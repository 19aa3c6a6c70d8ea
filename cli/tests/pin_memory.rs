//! No PIN left in the memory of `cpx pin verify` when it exits (issue 13 item 8): std's `Stdin`
//! kept "PIN\n" in its 8 KiB buffer until exit, where a core dump found it.
//!
//! `cpx pin verify --pin-stdin` (and `--pin-file`) runs under gdb against an emulated card
//! behind the real pcscd; at `exit_group`, after every destructor, gdb writes a core file, which
//! must not hold the PIN: neither the line read (`PIN\n`) nor the VERIFY data (CPS3: padded with
//! FF to 8 bytes, docs/card-spec.md §3.1 / docs/card-spec.md §8 point 5; CPS4: the PIN as is). The PINs are
//! set to unusual values in the images (8 digits on the CPS4) so that a chance match in ~10 MB
//! of core is implausible.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::path::Path;
use std::process::{Command, ExitCode, Stdio};

use cpx_testkit::{Failed, Recorder, SandboxConfig, Trial};

fn main() -> ExitCode {
    cpx_testkit::run_tests(&SandboxConfig::default(), || {
        vec![
            Trial::test("cps3_pin_stdin_leaves_no_pin_in_a_core_dump", || {
                no_pin_left("cps3-doctor", "7391", Source::Stdin)
            }),
            Trial::test("cps4_pin_stdin_leaves_no_pin_in_a_core_dump", || {
                no_pin_left("cps4-doctor", "73915824", Source::Stdin)
            }),
            Trial::test("cps3_pin_file_leaves_no_pin_in_a_core_dump", || {
                no_pin_left("cps3-doctor", "7391", Source::File)
            }),
        ]
    })
}

#[derive(Clone, Copy, Debug)]
enum Source {
    Stdin,
    File,
}

/// What must not be in the core: the line as read, and the VERIFY data as the card gets it.
fn patterns(stem: &str, pin: &str) -> Vec<Vec<u8>> {
    let mut line = pin.as_bytes().to_vec();
    line.push(b'\n');
    let mut verify_data = pin.as_bytes().to_vec();
    if stem.starts_with("cps3") {
        // AODF of the CPS3: stored length 8, padChar FF (docs/card-spec.md §3.1, docs/card-spec.md §8.5).
        verify_data.resize(8, 0xFF);
    }
    vec![line, verify_data]
}

fn no_pin_left(stem: &str, pin: &str, source: Source) -> Result<(), Failed> {
    let mut image = cpx_emulator::builtin_image(stem).ok_or("no such image")??;
    image.pin.as_mut().ok_or("image without a PIN")?.value = pin.as_bytes().to_vec();
    let (recorder, wire) = Recorder::new(cpx_emulator::card_from_image(&image));
    let (lease, _slot) = cpx_testkit::insert_card(Box::new(recorder))?;

    let dir = tempfile::tempdir()?;
    let pin_file = dir.path().join("pin");
    std::fs::write(&pin_file, format!("{pin}\n"))?;
    let core = dir.path().join("core");
    let input = match source {
        Source::Stdin => format!("--pin-stdin < {}", pin_file.display()),
        Source::File => format!("--pin-file {} < /dev/null", pin_file.display()),
    };
    let run = format!("run pin verify {input} --reader \"{}\"", lease.name);
    let gdb = gdb_core(&run, &core)?;

    // The run went through: one VERIFY carrying the PIN, accepted.
    let verifies: Vec<_> = wire
        .exchanges()
        .into_iter()
        .filter(|(c, _)| c.get(1) == Some(&0x20) && c.len() > 5)
        .collect();
    assert_eq!(verifies.len(), 1, "VERIFY commands: {verifies:?}\ngdb:\n{gdb}");
    assert!(verifies[0].1.ends_with(&[0x90, 0x00]), "{verifies:?}");

    let bytes = std::fs::read(&core)?;
    // A real image of the process after its work: its last words are in stdout's buffer.
    assert!(
        find(&bytes, b"PIN correct.").is_some(),
        "core of {} bytes without cpx's output",
        bytes.len()
    );
    for p in patterns(stem, pin) {
        if let Some(at) = find(&bytes, &p) {
            return Err(format!(
                "{stem} {source:?}: the PIN ({p:02X?}) is in the core dump at offset {at:#x} of {}",
                bytes.len()
            )
            .into());
        }
    }
    eprintln!("{stem} {source:?}: core of {} bytes, no PIN", bytes.len());
    Ok(())
}

/// Run `cpx` under gdb with the `run` command line given; write its core at `exit_group`.
fn gdb_core(run: &str, core: &Path) -> Result<String, Failed> {
    // -readnever: no DWARF reading (a catchpoint on a syscall needs no symbols), 3 s instead
    // of 30 s on a loaded machine; debuginfod off: no network.
    let out = Command::new("gdb")
        .args([
            "-batch",
            "-nx",
            "-readnever",
            "-iex",
            "set debuginfod enabled off",
            "-ex",
            "set pagination off",
            "-ex",
            "set confirm off",
        ])
        .args(["-ex", "catch syscall exit_group", "-ex", run])
        .arg("-ex")
        .arg(format!("generate-core-file {}", core.display()))
        .args(["-ex", "kill", "--args", env!("CARGO_BIN_EXE_cpx")])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("gdb (package gdb, scripts/system-packages.sh): {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !text.contains("exit_group") || !core.is_file() {
        return Err(format!("gdb did not stop cpx at exit_group and write a core:\n{text}").into());
    }
    Ok(text)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
