//! The worker: a child process that loads one PKCS#11 module and runs a script of steps, one
//! C_Initialize … C_Finalize, in lockstep with the parent so that the parent can read the card's
//! wire between steps. Protocol on stdout/stdin, one line each:
//! `ready <step>` → (parent: `go`) → the step, timed → `done <step> <nanos>` or
//! `fail <step> <reason>` → (parent: `go`); `end` after C_Finalize. Untimed preparation (finding
//! a key, encrypting the test cryptogram, verifying a signature) happens outside the timed part.

use std::io::{BufRead, Write};
use std::time::{Duration, Instant};

use cpx_card::KeyRole;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use rsa::{Pkcs1v15Encrypt, RsaPublicKey};

use crate::ops::{CardModel, SECRET, Signing};

/// Set in a worker: the card model (`CPS3`/`CPS4`).
pub const ENV_CARD: &str = "CPX_BENCH_WORKER";
/// The reader the card is in.
pub const ENV_READER: &str = "CPX_BENCH_READER";
/// The module to load.
pub const ENV_MODULE: &str = "CPX_BENCH_MODULE";
/// The steps, comma-separated.
pub const ENV_STEPS: &str = "CPX_BENCH_STEPS";

/// CKA_ID of the CPS3 keys: PKCS#15 AID ‖ 01 / 02 (docs/card-spec.md §1.5).
const CPS3_SIG_ID: [u8; 14] = [
    0xE8, 0x28, 0xBD, 0x08, 0x0F, 0x80, 0x25, 0x00, 0x00, 0x01, 0xFF, 0x00, 0x10, 0x01,
];

struct Worker {
    card: CardModel,
    reader: String,
    p11: Pkcs11,
    slot: Option<Slot>,
    session: Option<Session>,
    /// (CKA_ID, DER) of the certificates listed.
    certs: Vec<(Vec<u8>, Vec<u8>)>,
    /// The key of the current step and its certificate's public key.
    key: Option<(ObjectHandle, RsaPublicKey)>,
    cryptogram: Vec<u8>,
}

pub fn main(card: CardModel) -> Result<(), String> {
    let var = |n: &str| std::env::var(n).map_err(|e| format!("{n}: {e}"));
    let steps = var(ENV_STEPS)?;
    let mut w = Worker {
        card,
        reader: var(ENV_READER)?,
        p11: Pkcs11::new(var(ENV_MODULE)?).map_err(|e| e.to_string())?,
        slot: None,
        session: None,
        certs: Vec::new(),
        key: None,
        cryptogram: Vec::new(),
    };
    let stdin = std::io::stdin();
    let mut input = stdin.lock().lines();
    let mut wait = move || -> Result<(), String> {
        std::io::stdout().flush().map_err(|e| e.to_string())?;
        match input.next() {
            Some(Ok(l)) if l == "go" => Ok(()),
            other => Err(format!("parent said {other:?}")),
        }
    };
    let calls = match std::env::var(crate::calls::ENV_CALLS) {
        Ok(n) => n
            .parse()
            .map_err(|e| format!("{}: {e}", crate::calls::ENV_CALLS))?,
        Err(_) => crate::calls::CALLS,
    };
    for step in steps.split(',') {
        let prepared = w.prepare(step);
        println!("ready {step}");
        wait()?;
        if let Some(name) = step.strip_prefix("call:") {
            match w.call(name, calls) {
                Ok(t) => println!(
                    "done {step} {} {} {}",
                    t[0].as_nanos(),
                    t[1].as_nanos(),
                    t[2].as_nanos()
                ),
                Err(e) => println!("fail {step} {}", e.replace('\n', " ")),
            }
            wait()?;
            continue;
        }
        match prepared.and_then(|()| w.run(step)) {
            Ok(t) => println!("done {step} {}", t.as_nanos()),
            Err(e) => println!("fail {step} {}", e.replace('\n', " ")),
        }
        wait()?;
    }
    drop(w.session.take());
    let _ = w.p11.finalize();
    println!("end");
    Ok(())
}

fn timed<T>(f: impl FnOnce() -> cryptoki::error::Result<T>) -> Result<(T, Duration), String> {
    let t = Instant::now();
    let v = f().map_err(short)?;
    Ok((v, t.elapsed()))
}

/// A PKCS#11 error as `CKR name in C_X` (cryptoki's Display is a paragraph).
fn short(e: cryptoki::error::Error) -> String {
    match e {
        cryptoki::error::Error::Pkcs11(rv, function) => format!("{rv:?} in C_{function:?}"),
        other => other.to_string(),
    }
}

impl Worker {
    fn session(&self) -> Result<&Session, String> {
        self.session.as_ref().ok_or_else(|| "no session".into())
    }

    /// A row of the per-call table (see [`crate::calls::run`]).
    fn call(&self, name: &str, calls: usize) -> Result<[Duration; 3], String> {
        crate::calls::run(
            &self.p11,
            self.slot.ok_or("no slot")?,
            self.session()?,
            name,
            calls,
        )
    }

    /// Untimed: find the key of a signature or of the decryption, make the cryptogram.
    fn prepare(&mut self, step: &str) -> Result<(), String> {
        self.key = None;
        let role = match (step, Signing::from_id(step)) {
            (_, Some(sig)) => sig.role(),
            ("decrypt", None) => KeyRole::Authentication,
            _ => return Ok(()),
        };
        let key = self.find_key(role)?;
        if step == "decrypt" {
            self.cryptogram = key
                .1
                .encrypt(&mut rand_core::OsRng, Pkcs1v15Encrypt, SECRET)
                .map_err(|e| e.to_string())?;
        }
        self.key = Some(key);
        Ok(())
    }

    fn find_key(&mut self, role: KeyRole) -> Result<(ObjectHandle, RsaPublicKey), String> {
        let label = match role {
            KeyRole::Signature => "CPS_PRIV_SIG",
            KeyRole::Authentication => "CPS_PRIV_AUT",
        };
        let s = self.session()?;
        let by = |t: Vec<Attribute>| s.find_objects(&t).map_err(|e| e.to_string());
        let mut found = by(vec![
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Label(label.as_bytes().to_vec()),
        ])?;
        if found.is_empty() && self.card == CardModel::Cps3 {
            let mut id = CPS3_SIG_ID.to_vec();
            id[13] = if role == KeyRole::Signature { 1 } else { 2 };
            found = by(vec![
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::Id(id),
            ])?;
        }
        let key = *found.first().ok_or_else(|| format!("no {label}"))?;
        let mut id = Vec::new();
        for a in s
            .get_attributes(key, &[AttributeType::Id])
            .map_err(|e| e.to_string())?
        {
            if let Attribute::Id(v) = a {
                id = v;
            }
        }
        let der = match self.certs.iter().find(|(i, _)| *i == id) {
            Some((_, d)) => d.clone(),
            None => {
                let c = by(vec![
                    Attribute::Class(ObjectClass::CERTIFICATE),
                    Attribute::Id(id),
                ])?;
                let c = *c.first().ok_or("no certificate for the key")?;
                value(s, c)?
            }
        };
        Ok((key, public_key(&der)?))
    }

    /// The timed part of a step.
    fn run(&mut self, step: &str) -> Result<Duration, String> {
        match step {
            "init" => {
                let t = Instant::now();
                self.p11
                    .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
                    .map_err(|e| e.to_string())?;
                let mut slot = None;
                for s in self.p11.get_slots_with_token().map_err(|e| e.to_string())? {
                    let info = self.p11.get_slot_info(s).map_err(|e| e.to_string())?;
                    if info.slot_description().trim_end() == self.reader {
                        slot = Some(s);
                        break;
                    }
                }
                let took = t.elapsed();
                self.slot = Some(slot.ok_or("no slot with a token for the reader")?);
                Ok(took)
            }
            "open" => {
                let slot = self.slot.ok_or("no slot")?;
                let (s, t) = timed(|| self.p11.open_ro_session(slot))?;
                self.session = Some(s);
                Ok(t)
            }
            "pin_status" | "pin_status_again" => {
                let slot = self.slot.ok_or("no slot")?;
                let (info, t) = timed(|| self.p11.get_token_info(slot))?;
                if info.user_pin_locked() {
                    return Err("the PIN is blocked".into());
                }
                Ok(t)
            }
            "list" => {
                let s = self.session()?;
                let t = Instant::now();
                let mut certs = Vec::new();
                for c in s
                    .find_objects(&[Attribute::Class(ObjectClass::CERTIFICATE)])
                    .map_err(|e| e.to_string())?
                {
                    let (mut id, mut der) = (Vec::new(), Vec::new());
                    for a in s
                        .get_attributes(c, &[AttributeType::Id, AttributeType::Value])
                        .map_err(|e| e.to_string())?
                    {
                        match a {
                            Attribute::Id(v) => id = v,
                            Attribute::Value(v) => der = v,
                            _ => {}
                        }
                    }
                    certs.push((id, der));
                }
                let took = t.elapsed();
                if certs.len() < 2 || certs.iter().any(|(_, d)| public_key(d).is_err()) {
                    return Err(format!("{} certificates, not all X.509 RSA", certs.len()));
                }
                self.certs = certs;
                Ok(took)
            }
            "login" => {
                let s = self.session()?;
                let pin = AuthPin::from("1234");
                Ok(timed(|| s.login(UserType::User, Some(&pin)))?.1)
            }
            "decrypt" => {
                let (key, _) = self.key.clone().ok_or("no key")?;
                let s = self.session()?;
                let (plain, t) = timed(|| s.decrypt(&Mechanism::RsaPkcs, key, &self.cryptogram))?;
                if plain != SECRET {
                    return Err("wrong plaintext".into());
                }
                Ok(t)
            }
            other => {
                let sig = Signing::from_id(other).ok_or_else(|| format!("unknown step {other}"))?;
                let (key, public) = self.key.clone().ok_or("no key")?;
                let (mech, data) = sig.p11();
                let s = self.session()?;
                let (signature, t) = timed(|| s.sign(&mech, key, &data))?;
                sig.verify(&public, &signature)?;
                Ok(t)
            }
        }
    }
}

fn value(s: &Session, o: ObjectHandle) -> Result<Vec<u8>, String> {
    for a in s
        .get_attributes(o, &[AttributeType::Value])
        .map_err(|e| e.to_string())?
    {
        if let Attribute::Value(v) = a {
            return Ok(v);
        }
    }
    Err("no CKA_VALUE".into())
}

/// The RSA key of a DER certificate.
pub fn public_key(der: &[u8]) -> Result<RsaPublicKey, String> {
    use x509_parser::prelude::*;
    let (_, c) = X509Certificate::from_der(der).map_err(|e| e.to_string())?;
    match c.public_key().parsed() {
        Ok(x509_parser::public_key::PublicKey::RSA(k)) => RsaPublicKey::new(
            rsa::BigUint::from_bytes_be(k.modulus),
            rsa::BigUint::from_bytes_be(k.exponent),
        )
        .map_err(|e| e.to_string()),
        _ => Err("not an RSA certificate".into()),
    }
}
