//! `cpx emulate` as editors run it: several cards on several readers of a real pcscd, inserted,
//! removed and reset through the control socket, stopped cleanly by SIGTERM or `quit`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use cpx_emulator::control;
use cpx_testkit::{Failed, SandboxConfig, SandboxEnv, Trial, card_present, wait_for_card};

const SEEN: Duration = cpx_testkit::DEADLINE;
const CPS3_ATR: &str = "3BAC00402A001225006480000310009000";
const CPS3_CL_ATR: &str = "3B8F8001";

fn main() -> ExitCode {
    let config = SandboxConfig {
        entries: 2,
        ..SandboxConfig::default()
    };
    cpx_testkit::run_tests(&config, || {
        vec![
            Trial::test(
                "two_cards_on_two_readers_then_control_and_quit",
                two_cards_control_and_quit,
            ),
            Trial::test("sigterm_removes_the_cards_and_exits_0", sigterm_removes_the_cards),
            Trial::test("unknown_image_is_a_clear_error", unknown_image_is_a_clear_error),
            Trial::test(
                "state_dir_keeps_a_blocked_pin_blocked_across_runs",
                state_dir_keeps_pin_blocked,
            ),
            Trial::test(
                "timing_real_answers_no_sooner_than_the_reader_model",
                timing_real_is_at_least_as_slow_as_modelled,
            ),
        ]
    })
}

fn cpx() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cpx"))
}

fn wait_exit(child: &mut Child, timeout: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "cpx emulate did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn reader_atr(json: &serde_json::Value, reader: &str) -> Option<String> {
    let r = json["readers"].as_array()?.iter().find(|r| r["name"] == reader)?;
    r["atr"].as_str().map(str::to_owned)
}

fn two_cards_control_and_quit() -> Result<(), Failed> {
    let leases = SandboxEnv::get()?.try_lease_many(2, SEEN)?;
    let dir = tempfile::tempdir()?;
    let sock = dir.path().join("control");
    let mut child = cpx()
        .args(["emulate", "--control", sock.to_str().unwrap()])
        .args(["--card", &format!("cps3-doctor@{}", leases[0].vpcd_addr())])
        .args(["--card", &format!("cps3-contactless@{}", leases[1].vpcd_addr())])
        .stdout(Stdio::null())
        .spawn()?;
    for l in &leases {
        wait_for_card(&l.name, true, SEEN)?;
    }
    let out = cpx().args(["readers", "--json"]).output()?;
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(reader_atr(&json, &leases[0].name).as_deref(), Some(CPS3_ATR));
    assert!(
        reader_atr(&json, &leases[1].name)
            .unwrap()
            .starts_with(CPS3_CL_ATR)
    );

    // the control socket may take a moment to appear after the cards
    let deadline = Instant::now() + SEEN;
    while !sock.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = control(&sock, "status")?;
    assert!(status.starts_with("ok\n0 cps3-doctor "), "{status}");
    assert!(
        status.contains("1 cps3-contactless ") && status.ends_with("inserted"),
        "{status}"
    );

    assert_eq!(control(&sock, "remove 1")?, "ok");
    wait_for_card(&leases[1].name, false, SEEN)?;
    assert!(card_present(&leases[0].name)?, "card 0 must stay in");
    assert_eq!(control(&sock, "insert 1")?, "ok");
    wait_for_card(&leases[1].name, true, SEEN)?;
    assert_eq!(control(&sock, "reset 0")?, "ok");
    wait_for_card(&leases[0].name, true, SEEN)?;
    assert!(control(&sock, "remove 7")?.starts_with("error no card 7"));
    assert!(control(&sock, "dance")?.starts_with("error unknown command"));
    let out = cpx()
        .args([
            "emulate",
            "--control",
            sock.to_str().unwrap(),
            "--send",
            "remove 0",
        ])
        .output()?;
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout)?, "ok\n");
    wait_for_card(&leases[0].name, false, SEEN)?;
    let out = cpx()
        .args([
            "emulate",
            "--control",
            sock.to_str().unwrap(),
            "--send",
            "insert 9",
        ])
        .output()?;
    assert_eq!(out.status.code(), Some(1), "an error reply fails the client");
    assert_eq!(control(&sock, "insert 0")?, "ok");
    wait_for_card(&leases[0].name, true, SEEN)?;

    assert_eq!(control(&sock, "quit")?, "ok");
    assert!(wait_exit(&mut child, SEEN).success());
    for l in &leases {
        wait_for_card(&l.name, false, SEEN)?;
    }
    assert!(!sock.exists(), "control socket left behind");
    Ok(())
}

fn sigterm_removes_the_cards() -> Result<(), Failed> {
    let lease = SandboxEnv::get()?.try_lease(SEEN)?;
    let mut child = cpx()
        .args(["emulate", "--card", "cps3-doctor", "--vpcd", &lease.vpcd_addr()])
        .stdout(Stdio::piped())
        .spawn()?;
    // "inserted" is said once PC/SC shows the card: a script may count cards at once.
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut out = String::new();
    stdout.read_line(&mut out)?;
    assert_eq!(
        out,
        format!("card 0: cps3-doctor at vpcd {}, inserted\n", lease.vpcd_addr())
    );
    assert!(card_present(&lease.name)?, "said inserted before PC/SC shows it");
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    assert!(wait_exit(&mut child, SEEN).success());
    wait_for_card(&lease.name, false, SEEN)?;
    Ok(())
}

fn unknown_image_is_a_clear_error() -> Result<(), Failed> {
    let out = cpx().args(["emulate", "--card", "cps9-wizard"]).output()?;
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr)?;
    assert!(
        err.contains("cps9-wizard") && err.contains("built-in: cps3-doctor"),
        "{err}"
    );
    Ok(())
}

/// A running `cpx emulate`, terminated (SIGTERM, then waited for) however the test ends.
struct Running(Child);

impl Running {
    fn terminate(mut self) {
        Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status()
            .unwrap();
        let status = wait_exit(&mut self.0, SEEN);
        assert!(status.success(), "cpx emulate ended with {status} after SIGTERM");
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Empty VERIFY: the PIN status (docs/card-spec.md §8 PIN status by empty VERIFY: 63Cx, or 6983 when
/// blocked).
fn pin_status(reader: &str) -> cpx_apdu::StatusWord {
    use cpx_transport::CardChannel;
    let mut ch = cpx_transport::Pcsc::establish().unwrap().connect(reader).unwrap();
    ch.transmit(&cpx_apdu::Command::new(0x00, 0x20, 0x00, 0x01))
        .unwrap()
        .sw()
}

fn state_dir_keeps_pin_blocked() -> Result<(), Failed> {
    use cpx_transport::CardChannel;
    let lease = SandboxEnv::get()?.try_lease(SEEN)?;
    let dir = tempfile::tempdir()?;
    let run = |state: bool| {
        let mut cmd = cpx();
        cmd.args(["emulate", "--card", "cps3-doctor", "--vpcd", &lease.vpcd_addr()]);
        if state {
            cmd.args(["--state-dir", dir.path().to_str().unwrap()]);
        }
        let child = Running(cmd.stdout(Stdio::null()).spawn().unwrap());
        wait_for_card(&lease.name, true, SEEN).unwrap();
        child
    };
    let stop = |child: Running| {
        child.terminate();
        wait_for_card(&lease.name, false, SEEN).unwrap();
    };

    let child = run(true);
    assert_eq!(pin_status(&lease.name), cpx_apdu::StatusWord(0x63, 0xC3));
    let mut ch = cpx_transport::Pcsc::establish()?.connect(&lease.name)?;
    // A wrong PIN whatever the padding rule: 9999 padded with FF to 8 bytes.
    let wrong = cpx_apdu::Command::new(0x00, 0x20, 0x00, 0x01)
        .with_data(vec![0x39, 0x39, 0x39, 0x39, 0xFF, 0xFF, 0xFF, 0xFF])?;
    for _ in 0..3 {
        ch.transmit(&wrong)?;
    }
    drop(ch);
    assert_eq!(
        pin_status(&lease.name),
        cpx_apdu::StatusWord(0x69, 0x83),
        "blocked"
    );
    stop(child);
    let saved = std::fs::read_to_string(dir.path().join("card0-cps3-doctor.state.toml"))?;
    assert!(saved.contains("tries_left = 0"), "{saved}");

    let child = run(true);
    assert_eq!(
        pin_status(&lease.name),
        cpx_apdu::StatusWord(0x69, 0x83),
        "still blocked after a restart"
    );
    stop(child);

    let child = run(false);
    assert_eq!(
        pin_status(&lease.name),
        cpx_apdu::StatusWord(0x63, 0xC3),
        "the image itself is untouched"
    );
    stop(child);
    Ok(())
}

/// `cpx emulate --timing real`, seen from a PC/SC client: every exchange takes at least the time
/// `cpx_emulator::timing::ReaderClock` models for it (docs/reader-timing.md), on the CPS3 (T=0,
/// 93 µs per etu) and the CPS4 (T=1, 7.75 µs per etu). Raw exchanges only, so each one the
/// client times is one exchange the card sees (no GET RESPONSE added by a transport). A lower
/// bound: the machine may add more, never less.
fn timing_real_is_at_least_as_slow_as_modelled() -> Result<(), Failed> {
    use cpx_emulator::timing::ReaderClock;

    let leases = SandboxEnv::get()?.try_lease_many(2, SEEN)?;
    let child = Running(
        cpx()
            .args(["emulate", "--timing", "real"])
            .args(["--card", &format!("cps3-doctor@{}", leases[0].vpcd_addr())])
            .args(["--card", &format!("cps4-doctor@{}", leases[1].vpcd_addr())])
            .stdout(Stdio::null())
            .spawn()?,
    );
    for l in &leases {
        wait_for_card(&l.name, true, SEEN)?;
    }
    let ctx = pcsc::Context::establish(pcsc::Scope::User)?;
    // SELECT MF, SELECT EF.DIR (no answer data), READ BINARY of it (Le = 00: the card answers its
    // length in 6Cxx on T=0 and the read is sent again), empty VERIFY (PIN status, no try spent).
    let script: [&[u8]; 5] = [
        &[0x00, 0xA4, 0x00, 0x0C, 0x02, 0x3F, 0x00],
        &[0x00, 0xA4, 0x02, 0x0C, 0x02, 0x2F, 0x00],
        &[0x00, 0xB0, 0x00, 0x00, 0x00],
        &[0x00, 0x20, 0x00, 0x01],
        &[0x00, 0x20, 0x00, 0x01],
    ];
    for (lease, atr) in leases
        .iter()
        .zip([&cpx_emulator::facts::ATR_CPS3[..], &cpx_emulator::facts::ATR_CPS4])
    {
        let clock = ReaderClock::for_atr(atr)?;
        let name = std::ffi::CString::new(lease.name.as_str())?;
        let card = ctx.connect(&name, pcsc::ShareMode::Shared, pcsc::Protocols::ANY)?;
        let mut buf = vec![0u8; pcsc::MAX_BUFFER_SIZE];
        let mut total = (Duration::ZERO, Duration::ZERO);
        let mut exchanges = 0;
        let mut send = |command: &[u8]| -> Result<Vec<u8>, Failed> {
            let started = Instant::now();
            let response = card.transmit(command, &mut buf)?.to_vec();
            let took = started.elapsed();
            let modelled = clock.exchange(command, &response);
            assert!(
                took >= modelled,
                "{}: {command:02X?} answered {response:02X?} in {took:?}, modelled {modelled:?}",
                lease.name
            );
            total.0 += took;
            total.1 += modelled;
            exchanges += 1;
            Ok(response)
        };
        for command in script {
            let response = send(command)?;
            if let [.., 0x6C, le] = response[..] {
                let mut again = command.to_vec();
                again[4] = le;
                let response = send(&again)?;
                assert!(response.ends_with(&[0x90, 0x00]), "{response:02X?}");
            }
        }
        // The READ BINARY alone is hundreds of etu: far above what an instant card takes.
        assert!(
            exchanges >= 5 && total.1 >= Duration::from_millis(10),
            "{total:?}"
        );
        eprintln!(
            "{}: {exchanges} exchanges in {:?}, modelled {:?}",
            lease.name, total.0, total.1
        );
    }
    child.terminate();
    for l in &leases {
        wait_for_card(&l.name, false, SEEN)?;
    }
    Ok(())
}
