//! Whole `pkcs11-tool` runs read only what they need (issue 15, "Read only what is asked"):
//! each run of the table in `benches/pkcs11_ops/minima.rs` is made by a real `pkcs11-tool`
//! process loading the built module, against an emulated CPS3 and CPS4 behind the sandbox's
//! pcscd, with the module's disk cache empty (cold), then again in a new process with the cache
//! the first one left (warm). The APDUs are counted at the card (a [`cpx_testkit::Recorder`]:
//! GET RESPONSE and chained parts included, as a real card sees them) and each run must send
//! at most its documented minimum + [`minima::SLACK`]. Every run must also do its job: the
//! listing shows the objects, the signature verifies, the decryption gives the plaintext back.
//!
//! The module as it was before issue 15 fails here: its first key lookup read the CDF and both
//! certificates (a cold CPS4 signature run: 45 APDUs for a minimum of 21).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;
#[path = "../benches/pkcs11_ops/minima.rs"]
mod minima;

use std::path::Path;
use std::process::{Command, ExitCode};

use common::*;
use cpx_testkit::{Failed, Recording, Trial};
use minima::{Card, Phase, RUNS, Run, RunKind};
use rsa::pkcs1v15::Pkcs1v15Sign;
use rsa::{Pkcs1v15Encrypt, Pss, RsaPublicKey};
use sha2::{Digest, Sha256};

fn main() -> ExitCode {
    cpx_testkit::run_tests(&common::sandbox(1), || {
        // One trial: `pkcs11-tool -L` lists every reader, so the cards take turns.
        vec![Trial::test("whole_runs_within_minimum_plus_slack", || {
            let mut report = Vec::new();
            let mut over = Vec::new();
            for card in [Card::Cps3, Card::Cps4] {
                runs_on(card, &mut report, &mut over)?;
            }
            eprintln!("\nAPDUs per whole run (count ≤ minimum + {}):", minima::SLACK);
            for line in &report {
                eprintln!("  {line}");
            }
            if over.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "runs over their minimum + {}:\n{}",
                    minima::SLACK,
                    over.join("\n")
                )
                .into())
            }
        })]
    })
}

/// CKA_ID of the keys of the emulated cards: the PKCS#15 application AID ‖ 01 or 02 (docs/card-spec.md §1.5).
const SIGNATURE_KEY_ID: &str = "E828BD080F8025000001FF001001";
const AUTHENTICATION_KEY_ID: &str = "E828BD080F8025000001FF001002";
const MESSAGE: &[u8] = &[0x5A; 1024];
const PLAINTEXT: &[u8] = b"a session key, 32 bytes long....";

/// Every run of `card`, cold then warm, each in a cache directory of its own.
fn runs_on(card: Card, report: &mut Vec<String>, over: &mut Vec<String>) -> Result<(), Failed> {
    wait_alone()?;
    let stem = match card {
        Card::Cps3 => "cps3-doctor",
        Card::Cps4 => "cps4-doctor",
    };
    let image = cpx_emulator::builtin_image(stem).ok_or("no image")??;
    let auth_cert = image.auth.as_ref().ok_or("no authentication key")?.cert.clone();
    let sign_cert = image.sign.as_ref().ok_or("no signature key")?.cert.clone();
    let (_lease, _slot, wire) = cpx_testkit::insert_image(stem)?;
    let files = tempfile::Builder::new().prefix("cpx-whole-runs-").tempdir()?;
    let auth_key = cert_key(&auth_cert);
    let inputs = Inputs::write(files.path(), &auth_key)?;
    for run in RUNS.iter().filter(|r| r.card == card) {
        let cache = tempfile::Builder::new().prefix("cpx-cache-").tempdir()?;
        for phase in [Phase::Cold, Phase::Warm] {
            wire.take();
            let out = tool(run, &inputs, cache.path())?;
            let commands = wire.commands();
            let key = match run.kind {
                RunKind::SignSha256Sig => cert_key(&sign_cert),
                _ => auth_key.clone(),
            };
            check_output(run, &out, &inputs, &key)?;
            let min = run.minimum(phase);
            let line = format!(
                "{:?} {:?} {phase:?}: {} APDUs (minimum {min})",
                run.card,
                run.kind,
                commands.len()
            );
            report.push(line.clone());
            if commands.len() > min + minima::SLACK {
                // With CPX_PKCS11_LOG set (e.g. `cpx_pkcs11::ffi=trace`), `out` shows the calls.
                over.push(format!(
                    "{line}\n  minimum {}\n{}\n{out}",
                    run.why(phase),
                    trace(&wire)
                ));
            }
        }
    }
    Ok(())
}

/// The files the runs read.
struct Inputs {
    message: String,
    digest_info: String,
    cryptogram: String,
    output: String,
}

impl Inputs {
    fn write(dir: &Path, auth: &RsaPublicKey) -> Result<Inputs, Failed> {
        let path = |n: &str| dir.join(n).to_str().expect("UTF-8 temporary path").to_owned();
        let inputs = Inputs {
            message: path("message"),
            digest_info: path("digest-info"),
            cryptogram: path("cryptogram"),
            output: path("output"),
        };
        std::fs::write(&inputs.message, MESSAGE)?;
        // DigestInfo of SHA-256 (RFC 8017 §9.2 note 1) ‖ the hash.
        let mut di = vec![
            0x30, 0x31, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
            0x00, 0x04, 0x20,
        ];
        di.extend_from_slice(&Sha256::digest(MESSAGE));
        std::fs::write(&inputs.digest_info, di)?;
        let cryptogram = auth.encrypt(&mut rand_core::OsRng, Pkcs1v15Encrypt, PLAINTEXT)?;
        std::fs::write(&inputs.cryptogram, cryptogram)?;
        Ok(inputs)
    }
}

/// Run `pkcs11-tool` for `run` with the disk cache in `cache`; its output.
fn tool(run: &Run, inputs: &Inputs, cache: &Path) -> Result<String, Failed> {
    let so = module_path()?;
    let login = ["--login", "--pin", "1234"];
    let mut args: Vec<&str> = Vec::new();
    match run.kind {
        RunKind::ListSlots => args.push("-L"),
        RunKind::ListObjects => args.push("-O"),
        RunKind::LoginList => {
            args.extend(login);
            args.push("-O");
        }
        RunKind::SignSha256Sig | RunKind::SignRsaPkcsAuth | RunKind::SignPssAuth => {
            let (mechanism, id, input) = match run.kind {
                RunKind::SignSha256Sig => ("SHA256-RSA-PKCS", SIGNATURE_KEY_ID, &inputs.message),
                RunKind::SignRsaPkcsAuth => ("RSA-PKCS", AUTHENTICATION_KEY_ID, &inputs.digest_info),
                _ => ("SHA256-RSA-PKCS-PSS", AUTHENTICATION_KEY_ID, &inputs.message),
            };
            args.extend(login);
            // pkcs11-tool picks the key by CKA_ID (it ignores --label for a key operation).
            args.extend(["--sign", "-m", mechanism, "--id", id, "-i", input]);
            args.extend(["-o", &inputs.output]);
        }
        RunKind::DecryptAuth => {
            args.extend(login);
            args.extend(["--decrypt", "-m", "RSA-PKCS", "--id", AUTHENTICATION_KEY_ID]);
            args.extend(["-i", &inputs.cryptogram, "-o", &inputs.output]);
        }
    }
    let mut command = Command::new("pkcs11-tool");
    command.env(cpx_pkcs11::cache::ENV, cache);
    command.arg("--module").arg(&so);
    let out = command
        .args(&args)
        .output()
        .map_err(|e| format!("pkcs11-tool: {e} (install opensc)"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        return Err(format!("pkcs11-tool {args:?} failed ({}):\n{text}", out.status).into());
    }
    Ok(text)
}

/// The run did its job.
fn check_output(run: &Run, out: &str, inputs: &Inputs, key: &RsaPublicKey) -> Result<(), Failed> {
    let output = || std::fs::read(&inputs.output);
    let ok = match run.kind {
        RunKind::ListSlots => out.contains(match run.card {
            Card::Cps3 => "CPS3v3-",
            Card::Cps4 => "CPS4v1-",
        }),
        RunKind::ListObjects => out.contains("Certificat de Signature CPS"),
        RunKind::LoginList => out.contains("CPS_PRIV_SIG") && out.contains("CPS_PRIV_AUT"),
        RunKind::SignSha256Sig => {
            let hash = Sha256::digest(MESSAGE);
            key.verify(Pkcs1v15Sign::new::<Sha256>(), &hash, &output()?)
                .is_ok()
        }
        RunKind::SignRsaPkcsAuth => {
            let di = std::fs::read(&inputs.digest_info)?;
            key.verify(Pkcs1v15Sign::new_unprefixed(), &di, &output()?)
                .is_ok()
        }
        RunKind::SignPssAuth => {
            let hash = Sha256::digest(MESSAGE);
            key.verify(Pss::new::<Sha256>(), &hash, &output()?).is_ok()
        }
        RunKind::DecryptAuth => output()? == PLAINTEXT,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("{:?} {:?}: wrong result:\n{out}", run.card, run.kind).into())
    }
}

/// The commands of the run, one per line, in hex (the PIN of a VERIFY masked).
fn trace(wire: &Recording) -> String {
    wire.exchanges()
        .iter()
        .map(|(c, r)| {
            let c = if c.get(1) == Some(&0x20) && c.len() > 5 {
                format!("{} <PIN>", hex(&c[..5]))
            } else {
                hex(c)
            };
            let sw = hex(&r[r.len().saturating_sub(2)..]);
            format!("    {c} -> {} bytes {sw}", r.len().saturating_sub(2))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}
