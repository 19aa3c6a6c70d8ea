//! APDU round-trip cost through the real pcscd + vpcd (`cargo bench -p cpx-transport`).
//! Reports the time of 100 APDUs and the GET RESPONSE chain of a 600-byte answer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::ExitCode;
use std::time::{Duration, Instant};

use cpx_apdu::Command;
use cpx_testkit::{SandboxConfig, SandboxEnv, TestCard, Trial, wait_for_card};
use cpx_transport::{CardChannel, ExchangePolicy, Pcsc};
use cpx_vpcd::CardSlot;

fn main() -> ExitCode {
    let config = SandboxConfig {
        entries: 1,
        ..SandboxConfig::default()
    };
    cpx_testkit::run_tests(&config, || {
        vec![
            Trial::bench("100_short_apdus", |test_mode| {
                measure(test_mode, |ch| {
                    let verify = Command::new(0x80, 0x20, 0, 0);
                    for _ in 0..100 {
                        assert!(ch.transmit(&verify).unwrap().is_success());
                    }
                    100
                })
            }),
            Trial::bench("600_byte_answer_in_get_response_chunks", |test_mode| {
                measure(test_mode, |ch| {
                    let long = Command::new(0x80, 0x10, 0, 0).with_le(256).unwrap();
                    assert_eq!(ch.transmit(&long).unwrap().data().len(), 600);
                    4
                })
            }),
        ]
    })
}

fn measure(
    test_mode: bool,
    op: impl Fn(&mut dyn CardChannel) -> usize,
) -> Result<Option<cpx_testkit::Measurement>, cpx_testkit::Failed> {
    let lease = SandboxEnv::get()?.lease();
    let mut slot = CardSlot::new(lease.vpcd_addr(), Box::new(TestCard::new()));
    slot.insert()?;
    // A bound on waiting for pcscd to see the card: generous for a loaded machine, free otherwise.
    wait_for_card(&lease.name, true, Duration::from_secs(30))?;
    let mut channel = Pcsc::establish()?.connect(&lease.name)?;
    channel.set_policy(ExchangePolicy::GENERIC);
    let rounds = if test_mode { 1 } else { 20 };
    let mut samples = Vec::new();
    let mut apdus = 0;
    for _ in 0..rounds {
        let t = Instant::now();
        apdus = op(&mut channel);
        samples.push(t.elapsed().as_nanos() as u64);
    }
    let avg = samples.iter().sum::<u64>() / samples.len() as u64;
    let var = samples
        .iter()
        .map(|s| (*s as i128 - avg as i128).pow(2) as u64)
        .sum::<u64>()
        / samples.len() as u64;
    eprintln!(
        "{}: {apdus} APDUs in {:.2} ms ({:.3} ms per APDU) over pcscd + vpcd",
        lease.name,
        avg as f64 / 1e6,
        avg as f64 / 1e6 / apdus as f64
    );
    Ok((!test_mode).then_some(cpx_testkit::Measurement { avg, variance: var }))
}
