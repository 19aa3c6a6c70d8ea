//! Shared helpers: the built module, emulated cards in the sandbox's readers, RSA checks.
#![allow(
    dead_code,
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

pub mod rv_lists;

use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use cpx_testkit::{Failed, ReaderLease, SandboxConfig, SandboxEnv};
use cpx_vpcd::CardSlot;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use cryptoki::slot::Slot;
use rsa::{BigUint, RsaPublicKey};
use x509_parser::prelude::*;

/// How long a test waits for PC/SC to show a card change (the testkit's generous deadline).
pub const SEEN: Duration = cpx_testkit::DEADLINE;

/// The sandbox of a test binary that loads the module: `entries` vpcd entries (two readers
/// each), and the module built by the parent process before the sandbox starts, so that no
/// test links it while other tests' timing windows are open.
pub fn sandbox(entries: usize) -> SandboxConfig {
    SandboxConfig {
        entries,
        prebuild_module: true,
        ..SandboxConfig::default()
    }
}

/// For tests that take turns because what they run sees every reader (a tool listing tokens, a
/// browser): wait until the previous test's cards are gone from PC/SC, not merely pulled out;
/// their tokens carry the same labels as this test's, and a tool could pick a dead one.
pub fn wait_alone() -> Result<(), Failed> {
    Ok(SandboxEnv::get()?.wait_until_empty(&[], SEEN)?)
}

/// `target/<profile>/libcpx_pkcs11.so`, next to the test binary's `deps/`.
///
/// `cargo test` builds the library as an rlib only, so when run by cargo (`CARGO` set) the
/// cdylib is brought up to date first with `cargo build -p cpx-pkcs11 --lib` (same profile and
/// target directory), unless the parent process already did ([`sandbox`]); run directly, the
/// test uses whatever .so is there.
pub fn module_path() -> Result<PathBuf, Failed> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT.get_or_init(locate_and_build).clone().map_err(Failed::from)
}

fn locate_and_build() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let profile_dir = exe
        .parent()
        .and_then(|d| d.parent())
        .ok_or("cannot locate the target directory")?;
    cpx_testkit::built_module(
        profile_dir,
        concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml").as_ref(),
    )
}

static CTX: OnceLock<Pkcs11> = OnceLock::new();
static INIT: Mutex<()> = Mutex::new(());

/// The module, loaded and initialised once per test process (its state is global).
pub fn pkcs11() -> Result<&'static Pkcs11, Failed> {
    let _guard = INIT.lock().unwrap();
    if let Some(p) = CTX.get() {
        return Ok(p);
    }
    let p = Pkcs11::new(module_path()?)?;
    p.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))?;
    Ok(CTX.get_or_init(|| p))
}

pub fn emulated(stem: &str) -> Box<dyn cpx_vpcd::VirtualCard> {
    cpx_testkit::emulated(stem).unwrap()
}

/// Lease a reader and insert an emulated card.
pub fn insert(stem: &str) -> Result<(ReaderLease, CardSlot), Failed> {
    cpx_testkit::insert_card(cpx_testkit::emulated(stem)?)
}

/// The PKCS#11 slot of a reader (by slotDescription).
pub fn slot_of(p11: &Pkcs11, reader: &str) -> Result<Slot, Failed> {
    for s in p11.get_all_slots()? {
        if p11.get_slot_info(s)?.slot_description().trim_end() == reader {
            return Ok(s);
        }
    }
    Err(format!("no slot for reader {reader:?}").into())
}

pub fn find(session: &Session, template: &[Attribute]) -> Result<Vec<ObjectHandle>, Failed> {
    Ok(session.find_objects(template)?)
}

pub fn find_one(session: &Session, class: ObjectClass, label: &str) -> Result<ObjectHandle, Failed> {
    let v = find(
        session,
        &[
            Attribute::Class(class),
            Attribute::Label(label.as_bytes().to_vec()),
        ],
    )?;
    match v.as_slice() {
        [h] => Ok(*h),
        _ => Err(format!("{} objects {label:?} of class {class}", v.len()).into()),
    }
}

pub fn bytes_attr(session: &Session, o: ObjectHandle, t: AttributeType) -> Result<Vec<u8>, Failed> {
    for a in session.get_attributes(o, &[t])? {
        match a {
            Attribute::Value(v)
            | Attribute::Id(v)
            | Attribute::Label(v)
            | Attribute::Subject(v)
            | Attribute::Issuer(v)
            | Attribute::SerialNumber(v)
            | Attribute::Modulus(v)
            | Attribute::PublicExponent(v)
            | Attribute::Application(v) => return Ok(v),
            _ => {}
        }
    }
    Err(format!("no {t} on {o}").into())
}

/// The RSA key of a DER certificate.
pub fn cert_key(der: &[u8]) -> RsaPublicKey {
    let (_, c) = X509Certificate::from_der(der).unwrap();
    match c.public_key().parsed().unwrap() {
        x509_parser::public_key::PublicKey::RSA(k) => RsaPublicKey::new(
            BigUint::from_bytes_be(k.modulus),
            BigUint::from_bytes_be(k.exponent),
        )
        .unwrap(),
        _ => panic!("not RSA"),
    }
}

/// The key of the certificate whose CKA_ID is `id`.
pub fn key_of(session: &Session, id: &[u8]) -> Result<RsaPublicKey, Failed> {
    let c = find(
        session,
        &[
            Attribute::Class(ObjectClass::CERTIFICATE),
            Attribute::Id(id.to_vec()),
        ],
    )?;
    let c = c.first().ok_or("no certificate for that id")?;
    Ok(cert_key(&bytes_attr(session, *c, AttributeType::Value)?))
}

pub fn is_rv(e: &cryptoki::error::Error, rv: cryptoki::error::RvError) -> bool {
    matches!(e, cryptoki::error::Error::Pkcs11(r, _) if *r == rv)
}

/// `Err` unless `r` failed with `rv`.
pub fn expect_rv<T: std::fmt::Debug>(
    r: cryptoki::error::Result<T>,
    rv: cryptoki::error::RvError,
    what: &str,
) -> Result<(), Failed> {
    match r {
        Err(e) if is_rv(&e, rv) => Ok(()),
        other => Err(format!("{what}: expected {rv:?}, got {other:?}").into()),
    }
}
