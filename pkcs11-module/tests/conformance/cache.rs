//! Rows 128–130: a tampered cache must not stop C_Initialize or C_GetSlotList (docs/card-spec.md §6.1,
//! "defined but absent"; §5.6: "a corrupted file is ignored").
//!
//! The official program (option `/h`) fills the cache, changes two bytes of one cache file,
//! and checks C_Initialize and C_GetSlotList, once per file. Our module keeps its cache under
//! `$XDG_CACHE_HOME/cpx/pkcs11` (these rows damage everything under `$XDG_CACHE_HOME/cpx`); the
//! test binary runs with `XDG_CACHE_HOME` pointing at a private
//! directory of its own (see `conformance.rs`), so these rows never touch a user's cache. Each
//! way of damaging the cache is a round of the three rows; on top of the official checks, row
//! 130 asks that the token and a certificate read through the damaged cache are the ones the
//! card holds (a bad cache file must be ignored, not believed).

use std::path::{Path, PathBuf};

use cryptoki_sys::*;

use crate::raw::blank;
use crate::runner::{Ctx, Gen, Item, StepResult, ok, row, setup, text};

/// The environment variable the test binary sets to the private cache home it created; the
/// rows refuse to run unless `XDG_CACHE_HOME` is that directory.
pub const ENV_PRIVATE_CACHE: &str = "CPX_CONFORMANCE_CACHE_HOME";

/// The module's cache directory, only if it is the test's private one.
fn cache_dir() -> Result<PathBuf, String> {
    let home = std::env::var_os("XDG_CACHE_HOME").ok_or("XDG_CACHE_HOME is not set")?;
    if std::env::var_os(ENV_PRIVATE_CACHE).as_ref() != Some(&home) {
        return Err(format!(
            "XDG_CACHE_HOME is not the test's private directory ({ENV_PRIVATE_CACHE}): run through cargo test"
        ));
    }
    Ok(PathBuf::from(home).join("cpx"))
}

/// Cache file names of the official module (`<serial>_<path without 3F00>` and
/// `<serial>_s_<path>` for SELECT replies, docs/card-spec.md §5.6), as its test program damages them.
const OFFICIAL_NAMES: &[&str] = &[
    "_00015031",
    "_00015032",
    "_00017001",
    "_00017002",
    "_00017004",
    "_00017005",
    "_00017006",
    "_0001A001",
    "_0001A002",
    "_0001D121",
    "_00025031",
    "_2F00",
    "_s_00015031",
    "_s_00015032",
    "_s_2F00",
];

/// One way of damaging the cache.
struct Damage {
    what: &'static str,
    apply: fn(&Path, &str) -> Result<String, String>,
}

static DAMAGES: &[Damage] = &[
    Damage {
        what: "bytes 3-4 of every cache file set to 'AB' (the official modification)",
        apply: |dir, _| {
            rewrite_files(dir, |v| {
                if v.len() > 4 {
                    v[3] = b'A';
                    v[4] = b'B';
                }
            })
        },
    },
    Damage {
        what: "every cache file cut to one byte",
        apply: |dir, _| rewrite_files(dir, |v| v.truncate(1)),
    },
    Damage {
        what: "every cache file replaced by 4 KiB of noise",
        apply: |dir, _| rewrite_files(dir, |v| *v = noise(4096, v.len() as u32)),
    },
    Damage {
        what: "noise files named like the official module's cache files, and an empty one",
        apply: plant_official_names,
    },
    Damage {
        what: "the cache directory replaced by a regular file",
        apply: |dir, _| {
            wipe(dir)?;
            std::fs::write(dir, noise(512, 7)).map_err(|e| e.to_string())?;
            Ok("cpx is a file".into())
        },
    },
];

/// Deterministic noise (no need for randomness: the module must not trust any of it).
fn noise(n: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if !dir.is_dir() {
        return Ok(());
    }
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            files(&p, out)?;
        } else {
            out.push(p);
        }
    }
    Ok(())
}

fn rewrite_files(dir: &Path, f: impl Fn(&mut Vec<u8>)) -> Result<String, String> {
    let mut list = Vec::new();
    files(dir, &mut list).map_err(|e| e.to_string())?;
    for p in &list {
        let mut v = std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?;
        f(&mut v);
        std::fs::write(p, v).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    Ok(format!("{} cache files damaged", list.len()))
}

/// In `cpx/` and in every directory under it (the module's own is `cpx/pkcs11/`).
fn plant_official_names(dir: &Path, serial: &str) -> Result<String, String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let mut dirs = vec![dir.to_path_buf()];
    for e in std::fs::read_dir(dir).map_err(|e| e.to_string())? {
        let p = e.map_err(|e| e.to_string())?.path();
        if p.is_dir() {
            dirs.push(p);
        }
    }
    for d in &dirs {
        for (i, n) in OFFICIAL_NAMES.iter().enumerate() {
            std::fs::write(d.join(format!("{serial}{n}")), noise(300, i as u32))
                .map_err(|e| e.to_string())?;
        }
        std::fs::write(d.join(serial), []).map_err(|e| e.to_string())?;
    }
    Ok(format!(
        "{} files planted in {} directories",
        OFFICIAL_NAMES.len() + 1,
        dirs.len()
    ))
}

fn wipe(dir: &Path) -> Result<(), String> {
    let r = if dir.is_dir() {
        std::fs::remove_dir_all(dir)
    } else if dir.exists() {
        std::fs::remove_file(dir)
    } else {
        Ok(())
    };
    r.map_err(|e| format!("{}: {e}", dir.display()))
}

fn cert_label(kind: Gen) -> &'static str {
    if kind == Gen::Cl {
        "Certificat Technique CPS"
    } else {
        "Certificat d'Authentification CPS"
    }
}

/// C_GetSlotList(TRUE) count, then the token label and a certificate as the module gives them.
fn read_token(c: &mut Ctx, kind: Gen) -> Result<(CK_RV, String, Vec<u8>), String> {
    let mut n = 0;
    let rv = c.p11.get_slot_list(true, None, Some(&mut n));
    if rv != CKR_OK {
        return Ok((rv, String::new(), Vec::new()));
    }
    if n == 0 {
        return Err("no slot with a token".into());
    }
    let mut info: CK_TOKEN_INFO = blank();
    ok(c.p11.get_token_info(c.slot()?, Some(&mut info)), "C_GetTokenInfo")?;
    ok(c.open("cache", false)?, "C_OpenSession")?;
    let cert = c.by_label("cache", CKO_CERTIFICATE, cert_label(kind))?;
    let der = c.attr("cache", cert, CKA_VALUE)?;
    c.close_all()?;
    Ok((
        rv,
        format!("{} / {}", text(&info.label), text(&info.serialNumber)),
        der,
    ))
}

/// Row 128: empty cache, C_Initialize, C_GetSlotList (the module fills its cache), finalise.
fn valid_round(c: &mut Ctx, kind: Gen) -> StepResult {
    c.finalize()?;
    wipe(&cache_dir()?)?;
    c.init()?;
    let (rv, token, der) = read_token(c, kind)?;
    c.blobs.insert("cache.token", token.into_bytes());
    c.blobs.insert("cache.cert", der);
    c.finalize()?;
    Ok(rv)
}

/// Row 130: C_GetSlotList with the damaged cache; the token and certificate must be the card's.
fn damaged_round(c: &mut Ctx, kind: Gen) -> StepResult {
    c.detail = c
        .blobs
        .get("cache.damage")
        .map(|d| String::from_utf8_lossy(d).into_owned());
    let (rv, token, der) = read_token(c, kind)?;
    if rv == CKR_OK {
        if token.as_bytes() != c.blob("cache.token")? {
            return Err(format!("token {token:?} through the damaged cache"));
        }
        if der != c.blob("cache.cert")? {
            return Err("another certificate value through the damaged cache".into());
        }
    }
    c.finalize()?;
    Ok(rv)
}

/// The rows: one round of 128–130 per way of damaging the cache.
pub fn rows(kind: Gen) -> Vec<Item> {
    let mut v = Vec::new();
    for d in DAMAGES {
        v.push(row(128, "C_GetSlotList with a valid cache", CKR_OK, move |c| {
            valid_round(c, kind)
        }));
        v.push(setup(d.what, move |c| {
            let token = String::from_utf8_lossy(&c.blob("cache.token")?).into_owned();
            // The serial is the second half of "label / serial".
            let serial = token.rsplit(" / ").next().unwrap_or_default().to_owned();
            let done = (d.apply)(&cache_dir()?, &serial)?;
            c.blobs
                .insert("cache.damage", format!("{}: {done}", d.what).into_bytes());
            Ok(CKR_OK)
        }));
        v.push(row(129, "C_Initialize with a damaged cache", CKR_OK, |c| {
            c.detail = c
                .blobs
                .get("cache.damage")
                .map(|d| String::from_utf8_lossy(d).into_owned());
            Ok(c.p11.initialize(None))
        }));
        v.push(row(130, "C_GetSlotList with a damaged cache", CKR_OK, move |c| {
            damaged_round(c, kind)
        }));
    }
    v.push(setup("empty the cache for the rest of the plan", |c| {
        c.finalize()?;
        wipe(&cache_dir()?)?;
        Ok(CKR_OK)
    }));
    v
}
