//! The disk cache of public objects (issue 6) through the real stack: each listing runs in a
//! fresh process (its own C_Initialize, its own `CPX_PKCS11_CACHE`), loading the built module
//! with `cryptoki`, against an emulated card behind pcscd + vpcd whose wire is recorded here.
//!
//! Cold then warm listings (a warm process reads EF.SN.ICC and, on a CPS3 contact card,
//! looks for EF_ACTUA, and nothing else: the PKCS#15 files come from the entry too), warm PIN
//! counters and signature (no file read), a garbage or truncated file ignored and rewritten,
//! PKCS#15 files in a valid file that do not parse or are not the card's own ignored and
//! replaced, EF_ACTUA written by a card update invalidating the entry, another card in the
//! same reader, CPS_DATA and private values never cached, the cache off or without a usable
//! directory.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use common::*;
use cpx_emulator::{CardImage, builtin_image, card_from_image};
use cpx_pkcs11::cache;
use cpx_testkit::{Exchange, Failed, ReaderLease, Recorder, Recording, SharedCard, Trial};
use cpx_vpcd::CardSlot;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectClass};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use sha2::{Digest, Sha256};

/// Set in a child process: what it does (see [`child`]).
const STEP: &str = "CPX_CACHE_TEST_STEP";
const READER: &str = "CPX_CACHE_TEST_READER";
const MODULE: &str = "CPX_CACHE_TEST_MODULE";

fn main() -> ExitCode {
    if let Ok(step) = std::env::var(STEP) {
        return match child(&step) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("child {step}: {e:?}");
                ExitCode::FAILURE
            }
        };
    }
    cpx_testkit::run_tests(&common::sandbox(2), || {
        vec![
            Trial::test("cps3_cold_then_warm", || cold_then_warm("cps3-doctor")),
            Trial::test("cps4_cold_then_warm", || cold_then_warm("cps4-doctor")),
            Trial::test("cps3_warm_pin_counters_and_signature", || {
                warm_signature("cps3-doctor")
            }),
            Trial::test("cps4_warm_pin_counters_and_signature", || {
                warm_signature("cps4-doctor")
            }),
            Trial::test("inconsistent_pkcs15_files_are_not_used", inconsistent_files),
            Trial::test("garbage_and_truncated_files_are_rewritten", corrupt),
            Trial::test("ef_actua_change_invalidates", ef_actua_change),
            Trial::test("another_card_in_the_reader", another_card),
            Trial::test("public_values_cached_cps_data_and_private_never", values),
            Trial::test("cache_off_or_unusable", off_or_unusable),
        ]
    })
}

// ---- the child: one process = one C_Initialize … C_Finalize ----

fn child(step: &str) -> Result<(), Failed> {
    let reader = std::env::var(READER)?;
    let p11 = Pkcs11::new(std::env::var(MODULE)?)?;
    p11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))?;
    let slot = slot_of(&p11, &reader)?;
    let s = p11.open_ro_session(slot)?;
    let mut out = Vec::new();
    match step {
        // What NSS or pkcs11-tool -O do: every object, every certificate's value, key moduli.
        "list" => {
            for h in find(&s, &[])? {
                let attrs = s.get_attributes(h, &[AttributeType::Class, AttributeType::Label])?;
                let (mut class, mut label) = (String::new(), String::new());
                for a in attrs {
                    match a {
                        Attribute::Class(c) => class = c.to_string(),
                        Attribute::Label(l) => label = String::from_utf8(l)?,
                        _ => {}
                    }
                }
                let value = match class.as_str() {
                    "CKO_CERTIFICATE" => hash(&bytes_attr(&s, h, AttributeType::Value)?),
                    "CKO_PUBLIC_KEY" => hash(&bytes_attr(&s, h, AttributeType::Modulus)?),
                    _ => String::new(),
                };
                out.push(format!("{class} {label} {value}"));
            }
        }
        // C_GetTokenInfo (PIN counters), login, one signature (what a signing tool does).
        "sign" => {
            let info = p11.get_token_info(slot)?;
            out.push(format!("token {}", info.label()));
            s.login(UserType::User, Some(&AuthPin::from("1234")))?;
            let key = find_one(&s, ObjectClass::PRIVATE_KEY, "CPS_PRIV_SIG")?;
            let sig = s.sign(&Mechanism::Sha256RsaPkcs, key, b"cpx disk cache")?;
            out.push(format!("signature {}", hex(&sig)));
        }
        // Data values: public ones, and a private one after login.
        "values" => {
            s.login(UserType::User, Some(&AuthPin::from("1234")))?;
            for label in ["CPS_NAME_PS", "CPS_DATA", "CPS_ACTIVITY_01_PS"] {
                let o = find_one(&s, ObjectClass::DATA, label)?;
                out.push(format!(
                    "{label} {}",
                    hex(&bytes_attr(&s, o, AttributeType::Value)?)
                ));
            }
        }
        other => return Err(format!("unknown step {other}").into()),
    }
    out.sort();
    println!("{}", out.join("\n"));
    drop(s);
    p11.finalize()?;
    Ok(())
}

fn hash(v: &[u8]) -> String {
    hex(&Sha256::digest(v))
}

fn hex(v: &[u8]) -> String {
    v.iter().map(|b| format!("{b:02x}")).collect()
}

// ---- the parent ----

/// A reader with a recorded, swappable emulated card.
struct Rig {
    lease: ReaderLease,
    _slot: CardSlot,
    wire: Recording,
    card: SharedCard,
}

impl Rig {
    fn new(image: &CardImage) -> Result<Rig, Failed> {
        let (rec, wire, card) = Recorder::swappable(card_from_image(image));
        let (lease, slot) = cpx_testkit::insert_card(Box::new(rec))?;
        Ok(Rig {
            lease,
            _slot: slot,
            wire,
            card,
        })
    }

    /// Put another card (or the same card after an update) in the reader, between processes.
    fn swap(&self, image: &CardImage) {
        let mut c = self.card.lock().unwrap_or_else(|e| e.into_inner());
        *c = card_from_image(image);
    }

    /// Run one child step with `CPX_PKCS11_CACHE` = `cache` (`None`: unset, and HOME and
    /// XDG_CACHE_HOME unset too); its output and the APDUs it sent.
    fn run(&self, step: &str, cache: Option<&str>) -> Result<(String, Vec<Exchange>), Failed> {
        self.wire.take();
        let mut cmd = Command::new(std::env::current_exe()?);
        cmd.env(STEP, step)
            .env(READER, &self.lease.name)
            .env(MODULE, module_path()?)
            .env("CPX_PKCS11_LOG", "cpx_pkcs11=debug")
            .env_remove("XDG_CACHE_HOME")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        match cache {
            Some(c) => cmd.env(cache::ENV, c).env("HOME", "/nonexistent-cpx-test-home"),
            None => cmd.env_remove(cache::ENV).env_remove("HOME"),
        };
        let mut child = cmd.spawn()?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                child.kill()?;
                return Err(format!("{step}: child still running after 60 s").into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output()?;
        let stdout = String::from_utf8(out.stdout)?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            return Err(format!("{step} failed ({}):\n{stdout}\n{stderr}", out.status).into());
        }
        Ok((stdout, self.wire.take()))
    }
}

fn image(stem: &str) -> Result<CardImage, Failed> {
    Ok(builtin_image(stem).ok_or("no such image")??)
}

fn utf8(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

/// Bytes the card sent in READ BINARY / GET RESPONSE answers.
fn read_bytes(wire: &[Exchange]) -> usize {
    wire.iter()
        .filter(|(c, _)| c[1] == 0xB0 || c[1] == 0xC0)
        .map(|(_, r)| r.len() - 2)
        .sum()
}

/// The only file of a cache directory.
fn only_file(dir: &Path) -> Result<PathBuf, Failed> {
    let files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    match files.as_slice() {
        [f] => Ok(f.clone()),
        other => Err(format!("{} files in the cache: {other:?}", other.len()).into()),
    }
}

fn entry(file: &Path) -> Result<cache::Entry, Failed> {
    cache::decode(&std::fs::read(file)?).map_err(|m| format!("{}: {m}", file.display()).into())
}

fn cert_bytes(listing: &str) -> usize {
    listing
        .lines()
        .filter(|l| l.starts_with("CKO_CERTIFICATE"))
        .count()
}

fn cold_then_warm(stem: &str) -> Result<(), Failed> {
    let rig = Rig::new(&image(stem)?)?;
    let dir = tempfile::tempdir()?;
    let c = dir.path().join("c");
    let (cold, cold_wire) = rig.run("list", Some(utf8(&c)))?;
    assert!(cert_bytes(&cold) >= 2, "{stem}: {cold}");
    let file = only_file(&c)?;
    let e = entry(&file)?;
    let objects = e.objects.as_ref().ok_or("no objects in the entry")?;
    let ders: usize = objects.certs.iter().map(|c| c.der.len()).sum();
    assert!(
        read_bytes(&cold_wire) > ders,
        "{stem}: the cold listing read the certificates"
    );
    assert_eq!(
        objects.data.is_some(),
        stem.starts_with("cps3"),
        "{stem}: data objects are cached where EF_ACTUA tells updates apart"
    );
    let files = &e.files;
    // TokenInfo only for C_GetTokenInfo, which a listing does not call (issue 15): neither read
    // nor kept, and the entry's key has no label yet.
    assert!(
        files.token_info.is_none() && e.key.label.is_empty(),
        "{stem}: TokenInfo read by a listing: {files:?}"
    );
    assert!(
        files.odf.is_some() && files.prkdf.is_some() && files.cdf.is_some() && files.dodf.is_some(),
        "{stem}: the PKCS#15 files of the listing are kept: {files:?}"
    );
    assert_eq!(files.ef_dir.is_some(), stem.starts_with("cps4"), "{stem}: EF.DIR");
    let (warm, warm_wire) = rig.run("list", Some(utf8(&c)))?;
    assert_eq!(warm, cold, "{stem}: the same objects, values and moduli");
    // The physical minimum: the serial (EF.SN.ICC: SELECT + READ BINARY) tells the card, and
    // EF_ACTUA (CPS3 contact, absent here: one SELECT answered 6A82, docs/card-spec.md §5.7) its state; on
    // a CPS4 the ChipDoc AID first (docs/card-spec.md §1.3). Nothing else: objects, TokenInfo and the DODF
    // come from the entry.
    let ops: Vec<(u8, u8)> = warm_wire.iter().map(|(c, _)| (c[1], c[2])).collect();
    let want: &[(u8, u8)] = if stem.starts_with("cps3") {
        &[(0xA4, 0x09), (0xB0, 0x00), (0xA4, 0x09)]
    } else {
        &[(0xA4, 0x04), (0xA4, 0x08), (0xB0, 0x00)]
    };
    assert_eq!(ops, want, "{stem}: {warm_wire:02X?}");
    eprintln!(
        "{stem}: cold {} APDUs / {} bytes read, warm {} APDUs / {} bytes read",
        cold_wire.len(),
        read_bytes(&cold_wire),
        warm_wire.len(),
        read_bytes(&warm_wire)
    );

    // The file is not rewritten by a warm listing.
    assert_eq!(entry(&file)?, e);

    // A later process asks C_GetTokenInfo: TokenInfo is read then, and the same entry (the
    // same file, its certificates kept) gets it and the label.
    let (signed, _) = rig.run("sign", Some(utf8(&c)))?;
    let label = signed
        .lines()
        .find_map(|l| l.strip_prefix("token "))
        .unwrap_or_default()
        .trim();
    let after = entry(&only_file(&c)?)?;
    assert!(
        after.files.token_info.is_some() && after.key.label == label && !label.is_empty(),
        "{stem}: TokenInfo kept after C_GetTokenInfo: {:?} / {signed}",
        after.key
    );
    assert_eq!(after.objects, e.objects, "{stem}: the listing kept");
    Ok(())
}

/// READ BINARY commands sent (EF.SN.ICC's is one).
fn reads(wire: &[Exchange]) -> usize {
    wire.iter().filter(|(c, _)| c[1] == 0xB0).count()
}

/// A signing process, cold then warm: the same token label and signature; the warm one reads
/// no file but EF.SN.ICC (PIN references from the AODF, key reference from the PrKDF, both
/// kept in the entry) and sends the operations' own APDUs only.
fn warm_signature(stem: &str) -> Result<(), Failed> {
    let rig = Rig::new(&image(stem)?)?;
    let dir = tempfile::tempdir()?;
    let c = dir.path().join("c");
    let (cold, cold_wire) = rig.run("sign", Some(utf8(&c)))?;
    assert!(cold.contains("token CPS"), "{stem}: {cold}");
    let files = entry(&only_file(&c)?)?.files;
    assert!(files.aodf.is_some() && files.prkdf.is_some(), "{stem}: {files:?}");
    let (warm, warm_wire) = rig.run("sign", Some(utf8(&c)))?;
    assert_eq!(warm, cold, "{stem}: the same label and signature");
    assert_eq!(
        reads(&warm_wire),
        1,
        "{stem}: only EF.SN.ICC read: {warm_wire:02X?}"
    );
    // Open (3) + PIN and PUK counters (CPS3: SELECT MF, 2 × GET DATA + GET RESPONSE; CPS4: 2
    // bare VERIFY, docs/card-spec.md §3.2) + VERIFY + the signature (CPS3: SELECT app, MSE HT, PSO HASH,
    // MSE DST, PSO CDS, 2 GET RESPONSE; CPS4: SELECT app, MSE, PSO CDS, docs/card-spec.md §8.6, §10.9) +
    // the logout at C_Finalize (VERIFY P1=FF). The login is VERIFY without data (is the PIN
    // already verified by another program?) + VERIFY.
    let want = if stem.starts_with("cps3") {
        3 + 5 + 2 + 7 + 1
    } else {
        3 + 2 + 2 + 3 + 1
    };
    eprintln!(
        "{stem} sign: cold {} APDUs, warm {}",
        cold_wire.len(),
        warm_wire.len()
    );
    assert_eq!(warm_wire.len(), want, "{stem}: {warm_wire:02X?}");
    Ok(())
}

/// PKCS#15 files in a file whose hash is valid but that are not the card's: they are not used
/// (the card's own are read, the same answers) and the file gets the card's own.
fn inconsistent_files() -> Result<(), Failed> {
    let doctor = image("cps3-doctor")?;
    let rig = Rig::new(&doctor)?;
    let dir = tempfile::tempdir()?;
    let c = dir.path().join("c");
    let (cold, _) = rig.run("sign", Some(utf8(&c)))?;
    let file = only_file(&c)?;
    let good = entry(&file)?;
    // Another card's TokenInfo (the pharmacist's) under the doctor's key.
    rig.swap(&image("cps3-pharmacist")?);
    let other = dir.path().join("other");
    rig.run("sign", Some(utf8(&other)))?;
    let pharmacist = entry(&only_file(&other)?)?;
    rig.swap(&doctor);
    let mut garbage = good.clone();
    garbage.files.prkdf = Some(vec![0x30, 0x84, 0xFF]);
    let mut foreign = good.clone();
    foreign.files.token_info = pharmacist.files.token_info.clone();
    for (what, bad) in [("unparseable PrKDF", garbage), ("foreign TokenInfo", foreign)] {
        std::fs::write(&file, cache::encode(&bad))?;
        let (out, wire) = rig.run("sign", Some(utf8(&c)))?;
        assert_eq!(out, cold, "{what}: the same label and signature");
        assert!(reads(&wire) > 1, "{what}: files read from the card: {wire:02X?}");
        let now = entry(&file)?;
        assert_eq!(now.key, good.key, "{what}");
        assert_eq!(now.files.token_info, good.files.token_info, "{what}");
        assert_eq!(now.files.prkdf, good.files.prkdf, "{what}: the card's own PrKDF");
        let (again, wire) = rig.run("sign", Some(utf8(&c)))?;
        assert_eq!(again, cold, "{what}");
        assert_eq!(reads(&wire), 1, "{what}: warm again: {wire:02X?}");
    }
    Ok(())
}

fn corrupt() -> Result<(), Failed> {
    let rig = Rig::new(&image("cps3-doctor")?)?;
    let dir = tempfile::tempdir()?;
    let c = dir.path().join("c");
    let (cold, cold_wire) = rig.run("list", Some(utf8(&c)))?;
    let file = only_file(&c)?;
    let good = entry(&file)?;
    let valid = std::fs::read(&file)?;
    let half = valid[..valid.len() / 2].to_vec();
    for (what, bytes) in [
        ("garbage", b"not a cache file at all".to_vec()),
        ("truncated", half),
    ] {
        std::fs::write(&file, &bytes)?;
        let (out, wire) = rig.run("list", Some(utf8(&c)))?;
        assert_eq!(out, cold, "{what}: the same objects");
        assert_eq!(
            read_bytes(&wire),
            read_bytes(&cold_wire),
            "{what}: read from the card again"
        );
        assert_eq!(entry(&only_file(&c)?)?, good, "{what}: rewritten");
    }
    let (_, warm) = rig.run("list", Some(utf8(&c)))?;
    assert!(warm.len() * 2 < cold_wire.len(), "warm again");
    Ok(())
}

/// A card update writes EF_ACTUA (docs/card-spec.md §5.7): the same card (serial), new content.
fn ef_actua_change() -> Result<(), Failed> {
    let mut img = image("cps3-doctor")?;
    img.ef_actua = None;
    let rig = Rig::new(&img)?;
    let dir = tempfile::tempdir()?;
    let c = dir.path().join("c");
    let (cold, cold_wire) = rig.run("list", Some(utf8(&c)))?;
    assert_eq!(entry(&only_file(&c)?)?.key.ef_actua, None);
    let (_, warm) = rig.run("list", Some(utf8(&c)))?;
    assert!(warm.len() * 2 < cold_wire.len());
    // EF_ACTUA is looked for once per process, with one SELECT (6A82).
    let actua = |w: &[Exchange]| {
        w.iter()
            .filter(|(c, _)| c[1] == 0xA4 && c.windows(2).any(|p| p == [0xD0, 0x10]))
            .count()
    };
    assert_eq!(actua(&warm), 1, "{warm:02X?}");
    for (start, end) in [
        ("20240101000000", "20300101000000"),
        ("20250601120000", "20300101000000"),
    ] {
        let bcd = |s: &str| -> Vec<u8> {
            (0..7)
                .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
                .collect()
        };
        let mut body = vec![0x81, 0x07];
        body.extend(bcd(start));
        body.extend([0x82, 0x07]);
        body.extend(bcd(end));
        let mut raw = vec![0xEC, body.len() as u8];
        raw.extend(body);
        img.ef_actua = Some(raw.clone());
        rig.swap(&img);
        let (out, wire) = rig.run("list", Some(utf8(&c)))?;
        assert_eq!(out, cold);
        assert!(
            read_bytes(&wire) > read_bytes(&cold_wire),
            "EF_ACTUA {start}: everything read again, and EF_ACTUA itself"
        );
        assert_eq!(entry(&only_file(&c)?)?.key.ef_actua, Some(raw));
        let (_, warm) = rig.run("list", Some(utf8(&c)))?;
        assert!(warm.len() * 2 < cold_wire.len(), "EF_ACTUA {start}: warm again");
    }
    Ok(())
}

fn another_card() -> Result<(), Failed> {
    let rig = Rig::new(&image("cps3-doctor")?)?;
    let dir = tempfile::tempdir()?;
    let c = dir.path().join("c");
    let (doctor, _) = rig.run("list", Some(utf8(&c)))?;
    rig.swap(&image("cps3-pharmacist")?);
    let (pharmacist, wire) = rig.run("list", Some(utf8(&c)))?;
    assert_ne!(pharmacist, doctor, "the other card's own certificates");
    assert!(read_bytes(&wire) > 2000, "read from that card");
    assert_eq!(std::fs::read_dir(&c)?.count(), 2, "one file per card");
    rig.swap(&image("cps3-doctor")?);
    let (again, wire) = rig.run("list", Some(utf8(&c)))?;
    assert_eq!(again, doctor);
    assert!(read_bytes(&wire) < 1000, "the first card's file is still warm");
    Ok(())
}

fn values() -> Result<(), Failed> {
    let rig = Rig::new(&image("cps3-doctor")?)?;
    let dir = tempfile::tempdir()?;
    let c = dir.path().join("c");
    let (first, _) = rig.run("values", Some(utf8(&c)))?;
    let (second, wire) = rig.run("values", Some(utf8(&c)))?;
    assert_eq!(first, second);
    let e = entry(&only_file(&c)?)?;
    let data = e.objects.and_then(|o| o.data).ok_or("no data in the entry")?;
    let value = |l: &str| {
        data.iter()
            .find(|d| d.object.label == l)
            .and_then(|d| d.value.clone())
    };
    assert!(value("CPS_NAME_PS").is_some(), "a public value is cached");
    assert_eq!(value("CPS_DATA"), None, "CPS_DATA is never cached");
    assert_eq!(
        value("CPS_ACTIVITY_01_PS"),
        None,
        "a private value is never cached"
    );
    // Not even as bytes somewhere in the file.
    let raw = std::fs::read(only_file(&c)?)?;
    for line in second.lines().filter(|l| !l.starts_with("CPS_NAME_PS")) {
        let (label, v) = line.split_once(' ').ok_or("bad line")?;
        let v: Vec<u8> = (0..v.len() / 2)
            .map(|i| u8::from_str_radix(&v[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        assert!(
            !raw.windows(v.len()).any(|w| w == v),
            "{label}'s value is in the file"
        );
    }
    // The second run selected CPS_DATA's and the activity's files, not CPS_NAME_PS's.
    let img = image("cps3-doctor")?;
    let selected = |label: &str| {
        let fid = img
            .data
            .iter()
            .find(|d| d.label == label)
            .map(|d| d.fid.to_be_bytes());
        wire.iter()
            .any(|(c, _)| c[1] == 0xA4 && fid.is_some_and(|f| c.windows(2).any(|w| w == f)))
    };
    assert!(
        !selected("CPS_NAME_PS"),
        "CPS_NAME_PS read from the card when warm"
    );
    assert!(
        selected("CPS_DATA") && selected("CPS_ACTIVITY_01_PS"),
        "{wire:02X?}"
    );
    Ok(())
}

fn off_or_unusable() -> Result<(), Failed> {
    let rig = Rig::new(&image("cps4-doctor")?)?;
    let dir = tempfile::tempdir()?;
    // off, no HOME / XDG_CACHE_HOME, a directory that cannot be created: the module works as
    // without cache, the same APDUs each time (lazy), nothing written.
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"x")?;
    let unusable = blocker.join("cache");
    let mut seen = Vec::new();
    for setting in [Some("off"), None, Some(utf8(&unusable))] {
        let (a, wa) = rig.run("list", setting)?;
        let (b, wb) = rig.run("list", setting)?;
        assert_eq!(a, b);
        assert_eq!(wa.len(), wb.len(), "{setting:?}: no cache, the same APDUs");
        seen.push((a, wa.len()));
    }
    assert!(seen.windows(2).all(|w| w[0] == w[1]), "{seen:?}");
    assert_eq!(
        std::fs::read_dir(dir.path())?.count(),
        1,
        "nothing but the blocker"
    );
    Ok(())
}
