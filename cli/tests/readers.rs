//! `cpx readers` against the real pcscd + vpcd, and without any pcscd.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, ExitCode};

use cpx_testkit::{DEADLINE, Failed, SandboxConfig, SandboxEnv, TestCard, Trial, insert_seen};
use cpx_vpcd::CardSlot;

fn main() -> ExitCode {
    let config = SandboxConfig {
        entries: 1,
        ..SandboxConfig::default()
    };
    cpx_testkit::run_tests(&config, || {
        vec![
            Trial::test(
                "text_and_json_show_the_card_and_the_empty_reader",
                shows_card_and_empty_reader,
            ),
            Trial::test("no_pcscd_is_exit_code_3_with_a_fix", no_pcscd),
        ]
    })
}

fn cpx(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_cpx"))
        .args(args)
        .output()
        .unwrap()
}

fn shows_card_and_empty_reader() -> Result<(), Failed> {
    let env = SandboxEnv::get()?;
    let leases = env.try_lease_many(2, DEADLINE)?;
    let mut slot = CardSlot::new(leases[0].vpcd_addr(), Box::new(TestCard::new()));
    insert_seen(&mut slot, &leases[0].name)?;

    let out = cpx(&["readers"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout)?;
    assert!(
        text.contains(&format!(
            "{}: card present, CPS3 contact, ATR 3B AC 00 40 2A 00 12 25 00 64 80 00 03 10 00 90 00",
            leases[0].name
        )),
        "{text}"
    );
    assert!(text.contains(&format!("{}: empty", leases[1].name)), "{text}");

    let out = cpx(&["readers", "--json"]);
    assert!(out.status.success());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(json["schema"], "cpx/readers");
    assert_eq!(json["version"], 1);
    let readers = json["readers"].as_array().unwrap();
    let ours = readers
        .iter()
        .find(|r| r["name"] == leases[0].name.as_str())
        .unwrap();
    assert_eq!(ours["state"], "card_present");
    assert_eq!(ours["atr"], "3BAC00402A001225006480000310009000");
    assert_eq!(ours["card"]["recognised"], true);
    assert_eq!(ours["card"]["generation"], "CPS3");
    assert_eq!(ours["card"]["interface"], "contact");
    let empty = readers
        .iter()
        .find(|r| r["name"] == leases[1].name.as_str())
        .unwrap();
    assert_eq!(empty["state"], "empty");
    assert!(empty["atr"].is_null());
    assert!(empty["card"].is_null());

    // A card that is not a CPx card: recognised false, said in words in the text output.
    slot.remove();
    let mut other = CardSlot::new(
        leases[1].vpcd_addr(),
        Box::new(TestCard::new().with_atr(UNKNOWN_ATR.to_vec())),
    );
    insert_seen(&mut other, &leases[1].name)?;
    let text = String::from_utf8(cpx(&["readers"]).stdout)?;
    assert!(
        text.contains(&format!(
            "{}: card present, not a CPx card, ATR 3B 02 14 50",
            leases[1].name
        )),
        "{text}"
    );
    let json: serde_json::Value = serde_json::from_slice(&cpx(&["readers", "--json"]).stdout)?;
    let unknown = json["readers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == leases[1].name.as_str())
        .unwrap();
    assert_eq!(unknown["card"]["recognised"], false, "{unknown}");
    assert!(unknown["card"]["generation"].is_null());
    Ok(())
}

/// A short ATR no CPx card has (T=0, two historical bytes).
const UNKNOWN_ATR: &[u8] = &[0x3B, 0x02, 0x14, 0x50];

fn no_pcscd() -> Result<(), Failed> {
    let out = Command::new(env!("CARGO_BIN_EXE_cpx"))
        .arg("readers")
        .env("PCSCLITE_CSOCK_NAME", "/nonexistent/cpx/pcscd.comm")
        .output()?;
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8(out.stderr)?;
    assert!(
        err.contains("PC/SC service is not running (start pcscd)"),
        "{err}"
    );
    Ok(())
}
