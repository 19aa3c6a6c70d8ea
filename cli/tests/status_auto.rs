//! `cpx status` without --reader: the first reader holding a CPx card, said so; exit 5 with no
//! card, exit 9 with only a non-CPx card. Alone in its binary (its own pcscd), since it looks at
//! every reader.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::process::ExitCode;

use common::*;
use cpx_testkit::{Failed, SandboxConfig, SandboxEnv, TestCard, Trial, insert_seen};
use cpx_vpcd::CardSlot;

fn main() -> ExitCode {
    let config = SandboxConfig {
        entries: 1,
        ..SandboxConfig::default()
    };
    cpx_testkit::run_tests(&config, || {
        vec![Trial::test(
            "status_picks_the_first_reader_with_a_cpx_card",
            auto_selection,
        )]
    })
}

fn auto_selection() -> Result<(), Failed> {
    let leases = SandboxEnv::get()?.try_lease_many(2, SEEN)?;

    let out = run(&["status"], "");
    expect_code(&out, 5);
    assert!(
        stderr(&out).contains("cpx: no card in any reader"),
        "{}",
        stderr(&out)
    );

    // a card that is not a CPx (an unknown ATR) in the first reader
    let mut other = CardSlot::new(
        leases[0].vpcd_addr(),
        Box::new(TestCard::new().with_atr(vec![0x3B, 0x02, 0x14, 0x50])),
    );
    insert_seen(&mut other, &leases[0].name)?;
    let out = run(&["status"], "");
    expect_code(&out, 9);
    assert!(stderr(&out).contains("cpx: not a CPx card: "), "{}", stderr(&out));
    let out = run(&["status", "--reader", &leases[0].name], "");
    expect_code(&out, 9);

    // a CPS4 in the second reader: that one, and cpx says which
    let mut cps4 = CardSlot::new(leases[1].vpcd_addr(), emulated("cps4-doctor"));
    insert_seen(&mut cps4, &leases[1].name)?;
    let out = run(&["status"], "");
    expect_code(&out, 0);
    assert!(
        stdout(&out).starts_with(&format!(
            "Reader:        {} (first reader with a CPx card)\n",
            leases[1].name
        )),
        "{}",
        stdout(&out)
    );
    let v = json(&run(&["status", "--json"], ""), "status");
    assert_eq!(v["reader"], leases[1].name.as_str());
    assert_eq!(v["reader_selected"], "auto");
    assert_eq!(v["card"]["generation"], "CPS4");
    Ok(())
}
