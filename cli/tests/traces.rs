//! The public real-card traces (OpenSC issues #2223, #2224, #2267, #2275) as `cpx report` files
//! (test-vectors/reports/opensc-*.toml, docs/card-report.md "Public traces"), replayed behind the
//! real pcscd + vpcd as `cpx emulate --card` loads them: on each, `cpx status --json`, the PKCS#11
//! module's listing, login and a signature with every private key verified with its certificate.
//! Then the `[link]` facts a report may carry (chunk limits, the answer past the end of a file):
//! the replayed card honours each (its own answers, in-process) and the stack works within them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;
#[path = "common/stack.rs"]
mod stack;

use std::process::ExitCode;

use common::*;
use cpx_testkit::{Failed, SandboxConfig, Trial, insert_card};

/// The trace files, and what each must show (the serial `cpx status` gives).
const TRACES: [(&str, &str); 4] = [
    ("opensc-2223-cps3", "00002223"),
    ("opensc-2224-cps3", "00002224"),
    ("opensc-2267-cps3", "00002267"),
    // The real card's PAN, served from the trace's EF.SN.ICC (docs/card-spec.md §1.3).
    ("opensc-2275-cps3", "99213845"),
];

fn main() -> ExitCode {
    cpx_testkit::run_tests(&SandboxConfig::default(), || {
        let mut trials: Vec<Trial> = TRACES
            .iter()
            .map(|&(stem, serial)| {
                Trial::test(format!("trace_{stem}_replays_through_the_stack"), move || {
                    trace(stem, serial)
                })
            })
            .collect();
        trials.push(Trial::test(
            "link_read_binary_max_the_driver_reads_within_it",
            read_binary_max,
        ));
        trials.push(Trial::test(
            "link_read_binary_max_below_the_driver_chunk_is_a_precise_error",
            read_binary_max_too_small,
        ));
        trials.push(Trial::test(
            "link_get_response_max_the_driver_fetches_within_it",
            get_response_max,
        ));
        trials.push(Trial::test(
            "cpx_report_records_the_t0_steps_as_the_trace_shows_them",
            report_wire,
        ));
        trials.push(Trial::test(
            "security_environments_recorded_and_replayed",
            security_environments,
        ));
        for form in ["6Cxx", "6282", "6700", "6B00"] {
            trials.push(Trial::test(
                format!("link_read_past_end_{form}_is_served_and_tolerated"),
                move || read_past_end(form),
            ));
        }
        trials
    })
}

fn trace_path(stem: &str) -> String {
    format!(
        "{}/../test-vectors/reports/{stem}.toml",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// A trace file, `extra` TOML appended (a `[link]` table), replayed in a reader of our own (the
/// loader of `cpx emulate --card`); the card's wire.
fn replay(stem: &str, extra: &str) -> Result<(cpx_testkit::ReaderLease, cpx_vpcd::CardSlot, Wire), Failed> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join(format!("{stem}.toml"));
    std::fs::write(&file, std::fs::read_to_string(trace_path(stem))? + extra)?;
    let image = cpx_emulator::find_image(file.to_str().unwrap())
        .map_err(|e| format!("{stem}: the trace does not replay: {e}"))?;
    let (recorder, wire) = cpx_testkit::Recorder::new(cpx_emulator::card_from_image(&image));
    let (lease, slot) = insert_card(Box::new(recorder))?;
    Ok((lease, slot, wire))
}

/// The same, in-process: the replayed card's own answers.
fn in_process(stem: &str, extra: &str) -> Result<Box<dyn cpx_vpcd::VirtualCard>, Failed> {
    let text = std::fs::read_to_string(trace_path(stem))? + extra;
    let image = cpx_emulator::replay::image_from_report(&text)?;
    let mut card: Box<dyn cpx_vpcd::VirtualCard> = cpx_emulator::card_from_image(&image);
    card.power_on();
    Ok(card)
}

fn status(reader: &str) -> serde_json::Value {
    let out = run(&["status", "--json", "--reader", reader], "");
    expect_code(&out, 0);
    json(&out, "status")
}

/// `cpx report` on `reader`: the report file's text.
fn report(reader: &str) -> Result<String, Failed> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("report.toml");
    let out = run(&["report", "--reader", reader, "-o", file.to_str().unwrap()], "");
    expect_code(&out, 0);
    Ok(std::fs::read_to_string(&file)?)
}

/// `cpx status`, the listing, login and signatures on the replayed trace `stem`.
fn trace(stem: &str, serial: &str) -> Result<(), Failed> {
    let (lease, _slot, wire) = replay(stem, "")?;
    let s = status(&lease.name);
    assert_eq!(s["card"]["generation"], "CPS3", "{stem}: {s:#}");
    assert_eq!(s["card"]["interface"], "contact", "{stem}");
    assert_eq!(s["card"]["serial"], serial, "{stem}: {s:#}");
    assert_eq!(s["pin"]["tries_left"], 3, "{stem}: the trace's PIN counter");
    assert_eq!(s["pin"]["max_tries"], 3, "{stem}");
    assert_eq!(s["certificates"].as_array().map(Vec::len), Some(2), "{stem}");
    let lines = stack::signed(&lease.name)?;
    for label in ["CPS_PRIV_SIG", "CPS_PRIV_AUT"] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("{label}: signature of 256 bytes, verified true"))),
            "{stem}: {label} does not sign: {lines:#?}"
        );
    }
    // The trace's key references (GH#2267: 0x81 signature, 0x82 authentication) in the MSEs.
    for reference in [0x81, 0x82] {
        assert!(
            wire.commands().iter().any(|c| c.get(1) == Some(&0x22)
                && c.len() > 5
                && c[5..].windows(3).any(|w| w == [0x84, 0x01, reference])),
            "{stem}: no MSE naming key {reference:02X}"
        );
    }
    // A 256-byte signature on T=0 as GH#2275 shows it: `61 00`, `C0 E7` → `61 19`, `C0 19` →
    // `9000` (docs/card-spec.md §2.3).
    let ex = wire.exchanges();
    let sequence = ex.windows(3).any(|w| {
        w[0].1 == [0x61, 0x00]
            && w[1].0 == [0x00, 0xC0, 0x00, 0x00, 0xE7]
            && w[1].1.len() == 0xE7 + 2
            && w[1].1.ends_with(&[0x61, 0x19])
            && w[2].0 == [0x00, 0xC0, 0x00, 0x00, 0x19]
            && w[2].1.len() == 0x19 + 2
            && w[2].1.ends_with(&[0x90, 0x00])
    });
    assert!(
        sequence,
        "{stem}: no signature fetched as 61 00 / C0 E7 / 61 19 / C0 19"
    );
    if stem == "opensc-2223-cps3" {
        // EF.DIR's FCP as the trace shows it (access rules 7B 45 FF FF FF 45 00), not the model's.
        let fcp = "62258002006582010183022F008801F0A1128C077B45FFFFFF45009C077BFFFFFFFFFF008A0105";
        let mut card = in_process(stem, "")?;
        assert_eq!(
            card.transmit(&hex::decode("00A40904043F002F00").unwrap()),
            [0x61, 0x27]
        );
        let answer = card.transmit(&hex::decode("00C0000027").unwrap());
        assert_eq!(hex::encode_upper(&answer[..answer.len() - 2]), fcp);
    }
    Ok(())
}

/// The Le of a short command APDU (`00` = 256), when it has one.
fn le(c: &[u8]) -> Option<usize> {
    let n = match c.len() {
        5 => usize::from(c[4]),
        len if len > 5 && len == 6 + usize::from(c[4]) => usize::from(c[len - 1]),
        _ => return None,
    };
    Some(if n == 0 { 256 } else { n })
}

/// `[link] read_binary_max = 231` (the CPS3 driver's chunk, docs/card-spec.md §2.3): the card
/// refuses a longer READ BINARY (fails if the replay ignores the limit), and the whole stack
/// works on it, never asking more.
fn read_binary_max() -> Result<(), Failed> {
    let link = "\n[link]\nread_binary_max = 231\n";
    let mut card = in_process("opensc-2275-cps3", link)?;
    assert_eq!(
        card.transmit(&hex::decode("00A4090C043F002F00").unwrap()),
        [0x90, 0x00]
    );
    assert_eq!(card.transmit(&hex::decode("00B0000000").unwrap()), [0x67, 0x00]);
    assert_eq!(card.transmit(&hex::decode("00B00000E8").unwrap()), [0x67, 0x00]);
    let r = card.transmit(&hex::decode("00B0000065").unwrap());
    assert_eq!(r[r.len() - 2..], [0x90, 0x00]);

    let (lease, _slot, wire) = replay("opensc-2275-cps3", link)?;
    status(&lease.name);
    let lines = stack::signed(&lease.name)?;
    assert!(lines.iter().all(|l| l.ends_with("verified true")), "{lines:#?}");
    let reads: Vec<_> = wire
        .commands()
        .into_iter()
        .filter(|c| c.get(1) == Some(&0xB0))
        .collect();
    assert!(!reads.is_empty());
    for c in &reads {
        assert!(
            le(c).is_some_and(|n| n <= 231),
            "a READ BINARY past the card's chunk: {c:02X?}"
        );
    }
    // `cpx report` finds the limit (256 refused, 0xE7 answered) and a replay of its report has it.
    let text = report(&lease.name)?;
    assert!(
        text.contains("read_binary_max = 231"),
        "the limit is not recorded"
    );
    let image = cpx_emulator::replay::image_from_report(&text)?;
    assert_eq!(image.link.read_binary_max, Some(231));
    Ok(())
}

/// A card whose READ BINARY limit is below the CPS3 driver's fixed chunk (0xE7, the official
/// module's max_recv_size, docs/card-spec.md §2.3): cpx does not probe for a smaller chunk, so
/// `cpx status` fails with the card's status word named (documented in docs/card-report.md).
fn read_binary_max_too_small() -> Result<(), Failed> {
    let (lease, _slot, _wire) = replay("opensc-2275-cps3", "\n[link]\nread_binary_max = 128\n")?;
    let out = run(&["status", "--reader", &lease.name], "");
    assert_ne!(out.status.code(), Some(0), "cpx status worked below its chunk");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("6700"), "not the card's 6700: {err}");
    Ok(())
}

/// `[link] get_response_max = 231`: the card refuses a longer GET RESPONSE (in-process), and a
/// 256-byte signature still comes back, in pieces of at most 0xE7 (`61 00` → `C0 E7` → `61 19` →
/// `C0 19`, the GH#2275 sequence).
fn get_response_max() -> Result<(), Failed> {
    let link = "\n[link]\nget_response_max = 231\n";
    let mut card = in_process("opensc-2275-cps3", link)?;
    assert_eq!(
        card.transmit(&hex::decode("00A40904043F00D003").unwrap()),
        [0x61, 0x27]
    );
    assert_eq!(card.transmit(&hex::decode("00C0000000").unwrap()), [0x67, 0x00]);
    let r = card.transmit(&hex::decode("00C0000027").unwrap());
    assert_eq!(
        r[r.len() - 2..],
        [0x90, 0x00],
        "the data stayed after the refusal"
    );

    let (lease, _slot, wire) = replay("opensc-2275-cps3", link)?;
    let lines = stack::signed(&lease.name)?;
    assert!(lines.iter().all(|l| l.ends_with("verified true")), "{lines:#?}");
    let gets: Vec<_> = wire
        .commands()
        .into_iter()
        .filter(|c| c.get(1) == Some(&0xC0))
        .collect();
    assert!(
        gets.iter().any(|c| le(c) == Some(0xE7)),
        "no 256-byte answer fetched"
    );
    for c in &gets {
        assert!(
            le(c).is_some_and(|n| n <= 231),
            "a GET RESPONSE past the card's chunk: {c:02X?}"
        );
    }
    Ok(())
}

/// `[link] read_past_end = form`: a READ BINARY of 256 bytes of EF.ATR (57 bytes) gets that
/// answer (fails if the replay ignores it), and `cpx status` and `cpx report` work on the card.
fn read_past_end(form: &str) -> Result<(), Failed> {
    let link = format!("\n[link]\nread_past_end = \"{form}\"\n");
    let mut card = in_process("opensc-2223-cps3", &link)?;
    assert_eq!(
        card.transmit(&hex::decode("00A4090C043F002F01").unwrap()),
        [0x90, 0x00]
    );
    let r = card.transmit(&hex::decode("00B0000000").unwrap());
    let (data, sw) = r.split_at(r.len() - 2);
    match form {
        "6Cxx" => assert_eq!((data.len(), sw), (0, &[0x6C, 57][..])),
        "6282" => assert_eq!((data.len(), sw), (57, &[0x62, 0x82][..])),
        "6700" => assert_eq!((data.len(), sw), (0, &[0x67, 0x00][..])),
        _ => assert_eq!((data.len(), sw), (0, &[0x6B, 0x00][..])),
    }
    let (lease, _slot, _wire) = replay("opensc-2223-cps3", &link)?;
    status(&lease.name);
    // The report records the card's answer past the end (its EF.DIR probe) in its [link].
    let text = report(&lease.name)?;
    assert!(
        text.contains(&format!("read_past_end = \"{form}\"")),
        "{form} not recorded:\n{}",
        text.lines()
            .filter(|l| l.contains("read_"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    Ok(())
}

/// `cpx report` on the replayed #2275 card records the T=0 steps below its joined answers
/// (`[[wire]]`), and they are the trace's: `00 A4 09 04 04 3F00D003` → `61 27`, then
/// `00 C0 00 00 27` → the real FCP; the PIN counter query → `61 18`, `00 C0 00 00 18` → the
/// real DOCP. Only such steps are written (every entry announces data or follows one that does).
fn report_wire() -> Result<(), Failed> {
    let (lease, _slot, _wire) = replay("opensc-2275-cps3", "")?;
    let report: toml::Value = toml::from_str(&report(&lease.name)?)?;
    let wire: Vec<(String, String)> = report["wire"]
        .as_array()
        .ok_or("no [[wire]] in the report")?
        .iter()
        .map(|e| {
            (
                e["command"].as_str().unwrap_or_default().to_owned(),
                e["response"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let trace: toml::Value = toml::from_str(&std::fs::read_to_string(trace_path("opensc-2275-cps3"))?)?;
    let step = |i: usize| {
        let e = &trace["wire"][i];
        (
            e["command"].as_str().unwrap().to_owned(),
            e["response"].as_str().unwrap().to_owned(),
        )
    };
    // The trace's wire: 0/1 EF.SN.ICC's select and GET RESPONSE, 7/8 the PIN counter query.
    for pair in [[step(0), step(1)], [step(7), step(8)]] {
        assert!(
            wire.windows(2)
                .any(|w| w[0].1 == pair[0].1 && w[0].0.starts_with(&pair[0].0) && w[1] == pair[1]),
            "the report's wire lacks {pair:?}: {wire:#?}"
        );
    }
    let announces = |r: &str| {
        matches!(
            r.get(r.len().saturating_sub(4)..r.len().saturating_sub(2)),
            Some("61" | "6C" | "9F")
        )
    };
    for (i, (c, r)) in wire.iter().enumerate() {
        assert!(
            announces(r) || (i > 0 && announces(&wire[i - 1].1)),
            "a wire entry that is no T=0 step: {c} {r}"
        );
    }
    Ok(())
}

/// `cpx report` reads SE #1 to #5 (GET DATA from the MF, read-only) and records each answer; a
/// report's `[[security_environments]]` replays: an SE it says the card lacks answers `6A88`, one
/// it gives answers its recorded CRTs (fails if the replay keeps the model's SEs), and the stack
/// still logs in and signs.
fn security_environments() -> Result<(), Failed> {
    let (lease, _slot, _wire) = replay("opensc-2275-cps3", "")?;
    let report: toml::Value = toml::from_str(&report(&lease.name)?)?;
    let ses: Vec<(i64, String)> = report["security_environments"]
        .as_array()
        .ok_or("no [[security_environments]]")?
        .iter()
        .map(|e| {
            (
                e["number"].as_integer().unwrap_or(-1),
                e["sw"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    // The model's SEs #2 and #3 (docs/card-spec.md §9); #5 absent as on the real card (GH#2275).
    let want: Vec<(i64, String)> = [(1, "6A88"), (2, "9000"), (3, "9000"), (4, "6A88"), (5, "6A88")]
        .iter()
        .map(|(n, sw)| (*n, (*sw).to_owned()))
        .collect();
    assert_eq!(ses, want);

    let edited = "\n[[security_environments]]\nnumber = 1\nsw = \"9000\"\ndata = \"700EBFFB010A7B08A406830101950108\"\n\n[[security_environments]]\nnumber = 3\nsw = \"6A88\"\n";
    let mut card = in_process("opensc-2275-cps3", edited)?;
    assert_eq!(
        card.transmit(&hex::decode("00A4090C023F00").unwrap()),
        [0x90, 0x00]
    );
    let se = |n: u8| hex::decode(format!("00CB3FFF0A4D087006BFFB{n:02X}027B80")).unwrap();
    assert_eq!(card.transmit(&se(1)), [0x61, 0x10]);
    assert_eq!(
        hex::encode_upper(card.transmit(&hex::decode("00C0000010").unwrap())),
        "700EBFFB010A7B08A4068301019501089000"
    );
    assert_eq!(card.transmit(&se(3)), [0x6A, 0x88], "SE #3 kept from the model");
    assert_eq!(
        card.transmit(&se(2)).first(),
        Some(&0x61),
        "SE #2 (not in the report) is the model's"
    );
    let (lease, _slot, _wire) = replay("opensc-2275-cps3", edited)?;
    let lines = stack::signed(&lease.name)?;
    assert!(
        lines.len() == 2 && lines.iter().all(|l| l.ends_with("verified true")),
        "{lines:#?}"
    );
    Ok(())
}
