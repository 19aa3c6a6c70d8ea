//! Issue 18's variant matrix, behind the real pcscd + vpcd (docs/variants.md): each variant of
//! the emulator's knobs (`cpx_emulator::variants`) is inserted into a reader of the sandbox and the
//! whole stack runs on it: `cpx status --json`, the PKCS#11 module's listing, login, and every
//! signature of every private key verified with its certificate; on the bases and the variants of
//! the PIN/PUK knobs, the PIN blocked by wrong tries and unblocked with the PUK. The result must be the base
//! image's (the knobs change how the card lays out and delivers the same data, not the data),
//! except what a knob changes on purpose (tries, EF_ACTUA, no business data without a DODF). A variant cpx cannot support is in
//! [`UNSUPPORTED`] with its reason, and the test checks it fails with exactly that error.
//!
//! Which variants: `CPX_VARIANTS` unset = the CI sample ([`SAMPLE`] of them, spread over the
//! matrix); `CPX_VARIANTS=all` = the whole matrix (`cpx_emulator::variants::matrix`, the knob
//! values of [`UNSUPPORTED`] alone only);
//! `CPX_VARIANTS=name[,name…]` = those variants (e.g. a failing one, re-run alone).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;
#[path = "common/stack.rs"]
mod stack;

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::{Mutex, OnceLock};

use common::*;
use cpx_emulator::variants::{self, Variant};
use cpx_testkit::{Failed, SandboxConfig, Trial, insert_card};

/// About how many variants the CI sample runs (bases included; 77 with the current matrix):
/// 77 s on 2 cores loaded by two release builds (docs/variants.md), inside the 3-minute budget.
const SAMPLE: usize = 80;

/// Variants cpx cannot support: a knob value, the error the stack must fail with (a substring of
/// what failed: `cpx status`'s stderr or the module's call and return value), and why
/// (docs/variants.md "Unsupported").
const UNSUPPORTED: &[(&str, &str, &str, &str)] = &[(
    "fresh-verify",
    "yes",
    // The first signature with the signature key works, the next one needs the PIN again.
    "CPS_PRIV_SIG: SHA256-RSA-PKCS: Function::Sign: UserNotLoggedIn",
    "cpx keeps no PIN after C_Login to present it again on 6982 as the official module does \
     (docs/card-spec.md §3.3); the real PrKDF has no userConsent (GH#2267), so a card asking a \
     VERIFY per signature without saying so is not known; the application logs in again",
)];

fn main() -> ExitCode {
    let selected = selection();
    cpx_testkit::run_tests(
        &SandboxConfig {
            prebuild_module: true,
            ..SandboxConfig::default()
        },
        move || {
            let mut trials: Vec<Trial> = selected
                .into_iter()
                .map(|v| {
                    let name = v.name();
                    Trial::test(format!("variant {name}"), move || check(&v))
                })
                .collect();
            trials.push(Trial::test("cpx_emulate_card_variant", cpx_emulate_variant));
            trials
        },
    )
}

/// The variants `CPX_VARIANTS` asks for (see the file's doc).
fn selection() -> Vec<Variant> {
    // Knob values documented unsupported are tried alone: in a combination they would hide
    // what the other knobs do.
    let alone: Vec<(&str, &str)> = UNSUPPORTED.iter().map(|(k, v, _, _)| (*k, *v)).collect();
    let all = variants::matrix(&alone);
    match std::env::var("CPX_VARIANTS").ok().as_deref() {
        Some("all") => all,
        Some(list) if !list.is_empty() => list
            .split(',')
            .map(|n| Variant::parse(n.trim()).unwrap_or_else(|e| panic!("CPX_VARIANTS: {n}: {e}")))
            .collect(),
        _ => sample(&all, SAMPLE),
    }
}

/// `n` variants of `all`: the bases, then every k-th of the rest (single knobs and combinations
/// alike), so the sample is the same on every run and spread over every knob.
fn sample(all: &[Variant], n: usize) -> Vec<Variant> {
    let bases: Vec<Variant> = all.iter().filter(|v| v.knobs.is_empty()).cloned().collect();
    let rest: Vec<&Variant> = all.iter().filter(|v| !v.knobs.is_empty()).collect();
    let want = n.saturating_sub(bases.len()).max(1);
    let step = rest.len().div_ceil(want).max(1);
    bases
        .into_iter()
        .chain(rest.into_iter().step_by(step).cloned())
        .collect()
}

/// What the stack shows of a card: `cpx status --json` and the module's view.
#[derive(Debug, Clone)]
struct Seen {
    status: serde_json::Value,
    module: Vec<String>,
}

/// Insert `variant`'s card, run the stack on it.
fn see(variant: &Variant) -> Result<Result<Seen, String>, Failed> {
    let card = variant.card().map_err(|e| format!("{}: {e}", variant.name()))?;
    let (lease, _slot) = insert_card(cpx_emulator::into_virtual(card))?;
    let out = run(&["status", "--json", "--reader", &lease.name], "");
    if out.status.code() != Some(0) {
        return Ok(Err(format!(
            "cpx status exit {:?}: {}",
            out.status.code(),
            stderr(&out).trim()
        )));
    }
    let status = json(&out, "status");
    let failed = |what: &str, e: Failed| format!("{what}: {}", e.message().unwrap_or("failed"));
    let module = match stack::module_view(&lease.name) {
        Ok(m) => m,
        Err(e) => return Ok(Err(failed("module", e))),
    };
    // The codes' knobs (and the bases): block the PIN with wrong tries, unblock it with the PUK.
    if variant.knobs.is_empty()
        || CODE_KNOBS
            .iter()
            .any(|k| variant.knobs.iter().any(|(n, _)| n == k))
    {
        let tries = variant
            .value("pin-tries")
            .and_then(|v| v.parse().ok())
            .unwrap_or(3);
        if let Err(e) = stack::block_and_unblock(&lease.name, tries) {
            return Ok(Err(failed("block and unblock", e)));
        }
    }
    Ok(Ok(Seen { status, module }))
}

/// The knobs of the PIN and PUK objects: their variants also block and unblock the PIN.
const CODE_KNOBS: &[&str] = &["pin-tries", "puk-tries", "puk-flags", "usage-len"];

/// The base image's results, computed once per base.
fn base(name: &'static str) -> Result<Seen, Failed> {
    static BASES: OnceLock<Mutex<HashMap<&'static str, Seen>>> = OnceLock::new();
    let bases = BASES.get_or_init(Mutex::default);
    if let Some(seen) = bases.lock().unwrap().get(name) {
        return Ok(seen.clone());
    }
    let seen = see(&Variant::base(name))?.map_err(|e| format!("base {name}: {e}"))?;
    bases.lock().unwrap().insert(name, seen.clone());
    Ok(seen)
}

/// The status without what the knobs change on purpose, or what differs per reader.
fn comparable(status: &serde_json::Value) -> serde_json::Value {
    let mut s = status.clone();
    for key in ["reader", "pin", "puk", "ef_actua"] {
        s[key] = serde_json::Value::Null;
    }
    s
}

fn check(variant: &Variant) -> Result<(), Failed> {
    let name = variant.name();
    let unsupported = UNSUPPORTED
        .iter()
        .find(|(knob, value, _, _)| variant.value(knob) == Some(*value));
    let seen = see(variant)?;
    if let Some((knob, value, error, reason)) = unsupported {
        let e = match seen {
            Ok(_) => {
                return Err(
                    format!("{name}: documented unsupported ({knob}={value}: {reason}) but passed").into(),
                );
            }
            Err(e) => e,
        };
        assert!(
            e.contains(error),
            "{name}: expected {error:?} ({reason}), got {e}"
        );
        return Ok(());
    }
    let seen = seen.map_err(|e| format!("{name}: {e}"))?;
    let base = base(variant.base)?;

    assert_eq!(
        comparable(&seen.status),
        comparable(&base.status),
        "{name}: cpx status differs from the base's"
    );
    let tries = |knob: &str| variant.value(knob).and_then(|v| v.parse::<u64>().ok());
    // The tries the knobs set; what the card does not say (CPS4: no maximum) is null.
    for (code, knob) in [("pin", "pin-tries"), ("puk", "puk-tries")] {
        let state = &seen.status[code];
        assert_eq!(state["blocked"], false, "{name}: {code} {state}");
        for field in ["tries_left", "max_tries"] {
            if !state[field].is_null() {
                assert_eq!(state[field].as_u64(), tries(knob), "{name}: {code} {field}");
            }
        }
    }
    let actua = variant.value("ef-actua") == Some("valid") && seen.status["card"]["generation"] == "CPS3";
    assert_eq!(
        !seen.status["ef_actua"].is_null(),
        actua,
        "{name}: EF_ACTUA {}",
        seen.status["ef_actua"]
    );

    // Without a DODF no business data object is listed, but for the CPS_SIT_FACT the module adds
    // after login on a CPS3 whatever the DODF lists (docs/card-spec.md §8.8; a CPS4 gets nothing
    // synthesised, §10.14).
    let expected: Vec<String> = if variant.value("absent") == Some("dodf") {
        let synthesised = |l: &str| variant.base.starts_with("cps3") && l.contains("\"CPS_SIT_FACT\"");
        base.module
            .iter()
            .filter(|l| !l.contains("CKO_DATA") || synthesised(l))
            .cloned()
            .collect()
    } else {
        base.module.clone()
    };
    assert_eq!(
        seen.module, expected,
        "{name}: the module's listing, login and signatures"
    );
    let signed: Vec<&String> = seen
        .module
        .iter()
        .filter(|l| l.contains("signature of"))
        .collect();
    assert!(signed.len() >= 2, "{name}: signatures {:#?}", seen.module);
    for line in signed {
        assert!(line.ends_with("verified true"), "{name}: {line}");
    }
    Ok(())
}

/// `cpx emulate --card NAME` with a variant name: the command a maintainer re-runs a failing
/// variant with. The card it inserts is the variant's (its T=0-only ATR) and answers `cpx status`
/// like the base; SIGTERM removes it.
fn cpx_emulate_variant() -> Result<(), Failed> {
    use std::io::BufRead;
    let name = "cps4-doctor+atr=cps4-t0+fids=other+rb-chunk=64";
    let lease = cpx_testkit::SandboxEnv::get()?.try_lease(SEEN)?;
    let mut child = Running(
        cpx()
            .args(["emulate", "--card", name, "--vpcd", &lease.vpcd_addr()])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()?,
    );
    let mut line = String::new();
    std::io::BufReader::new(child.0.stdout.take().unwrap()).read_line(&mut line)?;
    let out = run(&["status", "--json", "--reader", &lease.name], "");
    let shown = run(&["readers", "--json"], "");
    std::process::Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()?;
    let ended = child.0.wait()?;
    assert!(line.ends_with(", inserted\n"), "cpx emulate said {line:?}");
    let status = json(&out, "status");
    assert_eq!(
        comparable(&status),
        comparable(&base("cps4-doctor")?.status),
        "{name}: cpx status"
    );
    let atr = cpx_emulator::facts::named_atr("cps4-t0").unwrap();
    let atr_hex: String = atr.iter().map(|b| format!("{b:02X}")).collect();
    let readers = json(&shown, "readers");
    let ours = readers["readers"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["name"] == lease.name.as_str()))
        .ok_or("our reader is not in `cpx readers`")?;
    assert_eq!(ours["atr"], atr_hex.as_str(), "the variant's T=0-only ATR");
    assert!(ended.success(), "cpx emulate ended with {ended}");
    Ok(())
}
