//! What each PC/SC way of asking "is the card still there, unchanged?" costs through the real
//! pcscd + vpcd (`cargo bench -p cpx-transport --bench presence_forms`, which also writes
//! docs/pcsc-presence.md). Issue 15: the module polls presence before slot and session calls,
//! so the form of that poll is most of a warm call's time.
//!
//! The forms, each with a card present and connected (as the PKCS#11 module holds it):
//! - `SCardGetStatusChange`, timeout 0, every reader's state given as the one last seen (the
//!   form cpx used before issue 15): pcsc-lite registers a wait, polls, and cancels it.
//! - the same call with each reader's state given as `SCARD_STATE_UNAWARE`, the change found by
//!   comparing status and event counter ourselves: what [`cpx_transport::Monitor::wait`] does
//!   with a zero timeout, timed through that function.
//! - `SCardStatus` on the open card handle: one reader only, and blind to a reader list change.
//!
//! Under `cargo test` (one short round) it checks that each form sees the card present and no
//! change, so the figures come from polls that work.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use cpx_testkit::{Failed, SandboxConfig, SandboxEnv, TestCard, Trial, wait_for_card};
use cpx_transport::Pcsc;
use cpx_vpcd::CardSlot;
use pcsc::{Protocols, ReaderState, Scope, ShareMode, State};

/// Calls per form in the benchmark proper.
const CALLS: usize = 1000;

fn main() -> ExitCode {
    let config = SandboxConfig {
        entries: 1,
        ..SandboxConfig::default()
    };
    cpx_testkit::run_tests(&config, || {
        vec![Trial::bench("presence_poll_forms", |test_mode| {
            measure(test_mode).map(|m| (!test_mode).then_some(m))
        })]
    })
}

/// Median and 90th percentile, µs.
fn stats(mut took: Vec<Duration>) -> (f64, f64) {
    took.sort_unstable();
    let at = |q: usize| took[(took.len() * q / 100).min(took.len() - 1)].as_secs_f64() * 1e6;
    (at(50), at(90))
}

fn measure(test_mode: bool) -> Result<cpx_testkit::Measurement, Failed> {
    let lease = SandboxEnv::get()?.lease();
    let mut slot = CardSlot::new(lease.vpcd_addr(), Box::new(TestCard::new()));
    slot.insert()?;
    wait_for_card(&lease.name, true, Duration::from_secs(30))?;
    let calls = if test_mode { 3 } else { CALLS };

    let ctx = pcsc::Context::establish(Scope::User)?;
    let card = ctx.connect(
        &std::ffi::CString::new(lease.name.clone())?,
        ShareMode::Shared,
        Protocols::ANY,
    )?;

    // Known state: learn every reader's state once, then ask with it.
    let readers = ctx.list_readers_owned()?;
    let mut states: Vec<ReaderState> =
        std::iter::once(ReaderState::new(pcsc::PNP_NOTIFICATION(), State::UNAWARE))
            .chain(
                readers
                    .iter()
                    .map(|r| ReaderState::new(r.clone(), State::UNAWARE)),
            )
            .collect();
    ctx.get_status_change(Duration::ZERO, &mut states)?;
    for s in &mut states {
        s.sync_current_state();
    }
    let mut known = Vec::with_capacity(calls);
    for _ in 0..calls {
        let t = Instant::now();
        let r = ctx.get_status_change(Duration::ZERO, &mut states);
        known.push(t.elapsed());
        // Nothing changed: pcsc-lite answers a timeout.
        if r != Err(pcsc::Error::Timeout) {
            return Err(format!("known-state poll: {r:?} with nothing changed").into());
        }
    }

    // Unaware, through the monitor the module uses.
    let mut monitor = Pcsc::establish()?.monitor()?;
    let mut unaware = Vec::with_capacity(calls);
    for _ in 0..calls {
        let t = Instant::now();
        let r = monitor.wait(Some(Duration::ZERO));
        unaware.push(t.elapsed());
        if !matches!(r, Err(cpx_transport::TransportError::Timeout)) {
            return Err(format!("unaware poll: {r:?} with nothing changed").into());
        }
    }
    if !monitor
        .readers()
        .any(|(name, st)| name == lease.name && st.has_card())
    {
        return Err("the monitor does not see the card".into());
    }

    // SCardStatus on the open handle.
    let mut status = Vec::with_capacity(calls);
    for _ in 0..calls {
        let t = Instant::now();
        let s = card.status2_owned()?;
        status.push(t.elapsed());
        if !s.status().contains(pcsc::Status::PRESENT) {
            return Err(format!("SCardStatus: {:?}", s.status()).into());
        }
    }

    // The benchmark's own figure: the form the module uses.
    let (p50, p90) = stats(unaware.clone());
    let avg = (p50 * 1e3) as u64;
    // libtest prints this as the ± spread: the distance from median to p90.
    let variance = ((p90 - p50) * 1e3) as u64;
    let status_cheaper = stats(status.clone()).0 < stats(unaware.clone()).0;
    let rows = [
        (
            "`SCardGetStatusChange`, timeout 0, states known (cpx before issue 15)",
            stats(known),
        ),
        (
            "`SCardGetStatusChange`, timeout 0, `SCARD_STATE_UNAWARE` + event counter (`Monitor::wait`, cpx now)",
            stats(unaware),
        ),
        (
            "`SCardStatus` on the open card handle (one reader; no reader list change)",
            stats(status),
        ),
    ];
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# What a presence poll costs, per PC/SC form\n\nGenerated by `cargo bench -p cpx-transport --bench presence_forms` \
         (crates/cpx-transport/benches/presence_forms.rs); do not edit by hand. One reader of a private pcscd \
         ({}), a card present and connected, {calls} calls of each form back to back, nothing changing.\n",
        pcscd_version()
    );
    let _ = writeln!(md, "| Form | median µs | p90 µs |\n|---|---:|---:|");
    for (form, (p50, p90)) in &rows {
        let _ = writeln!(md, "| {form} | {p50:.0} | {p90:.0} |");
        eprintln!("{form}: median {p50:.0} µs, p90 {p90:.0} µs");
    }
    let _ = writeln!(
        md,
        "\nWhy cpx polls with the second form: pcsc-lite answers the first, when nothing changed, by registering \
         a wait with pcscd, polling and cancelling it; the second returns at once, and comparing each reader's \
         status and event counter (the high 16 bits of the event state) still shows a removal followed by an \
         insertion between two polls. `SCardStatus` is {} and sees one card handle only: no reader \
         plugged in or out, and no card in a reader the module has not connected to, so the slot list cannot rest \
         on it. The module polls at most once per slot-level call (C_GetSlotList, C_GetSlotInfo, C_GetTokenInfo, \
         C_OpenSession), and at most every 100 ms for session calls, whose card exchanges see a removal or reset \
         themselves.",
        if status_cheaper {
            "a little cheaper here"
        } else {
            "no cheaper here"
        }
    );
    if !test_mode {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/pcsc-presence.md");
        std::fs::write(path, md)?;
    }
    Ok(cpx_testkit::Measurement { avg, variance })
}

/// pcscd's version, as the Debian package gives it (the figures depend on it).
fn pcscd_version() -> String {
    std::process::Command::new("dpkg-query")
        .args(["-W", "-f=${Version}", "pcscd"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map_or_else(
            || "pcscd".into(),
            |o| format!("pcscd {}", String::from_utf8_lossy(&o.stdout)),
        )
}
