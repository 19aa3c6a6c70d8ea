#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;

use sha2::{Digest, Sha256};

use cpx_card::KeyRole;

use super::*;

fn key(actua: Option<&[u8]>) -> Key {
    Key {
        generation: Generation::Cps3,
        interface: Interface::Contact,
        serial: "99000000".into(),
        label: "CPS3v3-9900000001".into(),
        manufacturer: "ASIP SANTE".into(),
        ef_actua: actua.map(<[u8]>::to_vec),
    }
}

fn entry(k: Key) -> Entry {
    let mut files = Pkcs15Files::new(k.generation, k.interface, k.serial.clone());
    files.token_info = Some(vec![0x30, 0x03, 0x02, 0x01, 0x00]);
    files.odf = Some(vec![0xA0, 0x06, 0x30, 0x04, 0x04, 0x02, 0x70, 0x02]);
    files.dodf = Some(Vec::new());
    Entry {
        key: k,
        pin_lengths: Some((4, 4)),
        files,
        objects: Some(Objects {
            certs: vec![Certificate {
                label: "Certificat de Signature CPS".into(),
                id: vec![0xE8, 0x01],
                authority: false,
                der: vec![0x30, 0x82, 0x01, 0x00, 0xAA],
            }],
            keys: vec![PrivateKeyInfo {
                label: "CPS_PRIV_SIG".into(),
                id: vec![0xE8, 0x01],
                role: KeyRole::Signature,
                modulus_bits: 2048,
                private: true,
            }],
            data: Some(vec![
                Data {
                    object: DataObject {
                        label: "CPS_NAME_PS".into(),
                        application: Some("CPS".into()),
                        private: false,
                        modifiable: false,
                    },
                    value: Some(b"EE 80 DUPONT".to_vec()),
                },
                Data::listed(DataObject {
                    label: "CPS_ACTIVITY_01_PS".into(),
                    application: None,
                    private: true,
                    modifiable: false,
                }),
            ]),
        }),
    }
}

fn store() -> (tempfile::TempDir, Store) {
    let t = tempfile::tempdir().unwrap();
    let s = Store::new(t.path().join("cpx").join("pkcs11"));
    (t, s)
}

/// Recompute the hash after editing the content, so that the parser itself is exercised.
fn rehash(bytes: &mut [u8]) {
    let h = Sha256::digest(&bytes[44..]);
    bytes[12..44].copy_from_slice(&h);
}

/// The bytes of `entry(key(Some(&[1, 2])))` in format version 2, derived by hand from the format
/// (codec.rs's module docs) before the listing became the card layer's types: a file users
/// already have on disk must keep loading, and a new one must be the same bytes.
const GOLDEN: &[&str] = &[
    "6370782d7031316300000002faf4aad7a8de298f83d1eef37b92132426ed9ee1e8188a0cdef54d13ced4017103000000",
    "00083939303030303030000000114350533376332d393930303030303030310000000a415349502053414e5445010000",
    "0002010201000000040000000401000000010000001b43657274696669636174206465205369676e6174757265204350",
    "5300000002e801000000000530820100aa000000010000000c4350535f505249565f53494700000002e8010000000800",
    "0101000000020000000b4350535f4e414d455f505301000000034350530000010000000c4545203830204455504f4e54",
    "000000124350535f41435449564954595f30315f50530001000000010000000530030201000100000008a00630040402",
    "70020000000100000000",
];

#[test]
fn the_file_format_is_unchanged() {
    let hex = GOLDEN.concat();
    let golden: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let e = entry(key(Some(&[1, 2])));
    assert_eq!(encode(&e), golden);
    assert_eq!(decode(&golden).unwrap(), e);
}

#[test]
fn round_trip_and_permissions() {
    let (_t, s) = store();
    let e = entry(key(Some(&[0xEC, 0x00])));
    assert_eq!(s.load(&e.key), Err(Miss::NoFile), "no directory yet");
    let path = s.save(&e).unwrap();
    assert_eq!(path.file_name().unwrap(), "cps3-contact-99000000.cache");
    assert_eq!(s.load(&e.key).unwrap(), e);
    assert_eq!(decode(&encode(&e)).unwrap(), e);
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(s.dir()), 0o700);
    assert_eq!(mode(&path), 0o600);
    // Rewritten in place, no temporary file left.
    s.save(&e).unwrap();
    let names: Vec<_> = fs::read_dir(s.dir())
        .unwrap()
        .map(|d| d.unwrap().file_name())
        .collect();
    assert_eq!(names, [OsString::from("cps3-contact-99000000.cache")]);
}

#[test]
fn corrupt_files_are_ignored() {
    let (_t, s) = store();
    let e = entry(key(None));
    let path = s.save(&e).unwrap();
    let good = fs::read(&path).unwrap();
    let mut hash = good.clone();
    let last = hash.len() - 1;
    hash[last] ^= 1;
    fs::write(&path, &hash).unwrap();
    assert_eq!(s.load(&e.key), Err(Miss::Hash));
    fs::write(&path, b"garbage").unwrap();
    assert_eq!(s.load(&e.key), Err(Miss::Format("not a cpx cache file")));
    let mut magic = good.clone();
    magic[0] = b'X';
    fs::write(&path, &magic).unwrap();
    assert!(matches!(s.load(&e.key), Err(Miss::Format(_))));
    // Content that passes the hash but does not parse: an unknown generation, a bool of 2,
    // trailing bytes.
    let mut bad = good.clone();
    bad[44] = 9;
    rehash(&mut bad);
    fs::write(&path, &bad).unwrap();
    assert_eq!(s.load(&e.key), Err(Miss::Format("content does not parse")));
    let mut trailing = good.clone();
    trailing.push(0);
    rehash(&mut trailing);
    fs::write(&path, &trailing).unwrap();
    assert_eq!(s.load(&e.key), Err(Miss::Format("trailing bytes")));
    // A rewrite makes it good again.
    s.save(&e).unwrap();
    assert_eq!(s.load(&e.key).unwrap(), e);
}

#[test]
fn every_truncation_and_mutation_is_rejected_without_panic() {
    let e = entry(key(Some(&[1, 2, 3])));
    let good = encode(&e);
    for n in 0..good.len() {
        assert!(decode(&good[..n]).is_err(), "truncated at {n}");
        let mut t = good[..n].to_vec();
        if t.len() >= 44 {
            rehash(&mut t);
            assert!(decode(&t).is_err(), "truncated at {n}, rehashed");
        }
    }
    // Any single byte changed in the content, hash recomputed: parsed or refused, never a
    // panic or a huge allocation (lengths are checked against what is left).
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    for _ in 0..5000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mut m = good.clone();
        let i = 44 + (seed as usize) % (good.len() - 44);
        m[i] = (seed >> 32) as u8;
        rehash(&mut m);
        let _ = decode(&m);
    }
}

#[test]
fn other_key_or_version_is_ignored() {
    let (_t, s) = store();
    let before = entry(key(Some(&[0xEC, 0x01])));
    let path = s.save(&before).unwrap();
    // EF_ACTUA changed (a card update), or appeared: the file is for another card state.
    assert_eq!(s.load(&key(Some(&[0xEC, 0x02]))), Err(Miss::OtherKey));
    assert_eq!(s.load(&key(None)), Err(Miss::OtherKey));
    let mut relabelled = key(Some(&[0xEC, 0x01]));
    relabelled.label = "CPS3v3-other".into();
    assert_eq!(s.load(&relabelled), Err(Miss::OtherKey));
    // Another card, another interface: another file.
    let mut other = key(Some(&[0xEC, 0x01]));
    other.serial = "99000001".into();
    assert_eq!(s.load(&other), Err(Miss::NoFile));
    let mut cl = key(Some(&[0xEC, 0x01]));
    cl.interface = Interface::Contactless;
    assert_eq!(s.load(&cl), Err(Miss::NoFile));
    // A file renamed to another card's name is refused by the key inside.
    fs::copy(&path, s.file(&other).unwrap()).unwrap();
    assert_eq!(s.load(&other), Err(Miss::OtherKey));
    // Another format version (1: before the PKCS#15 files were kept).
    let mut v1 = fs::read(&path).unwrap();
    v1[8..12].copy_from_slice(&1u32.to_be_bytes());
    fs::write(&path, &v1).unwrap();
    assert_eq!(s.load(&before.key), Err(Miss::Version(1)));
}

#[test]
fn loading_before_tokeninfo_is_known() {
    let (_t, s) = store();
    let e = entry(key(Some(&[0xEC, 0x01])));
    s.save(&e).unwrap();
    // At open, before TokenInfo: the label and manufacturer are not known yet.
    let mut early = key(Some(&[0xEC, 0x01]));
    early.label.clear();
    early.manufacturer.clear();
    assert!(early.same_card_state(&e.key));
    assert_eq!(s.load(&early), Err(Miss::OtherKey));
    assert_eq!(s.load_card(&early).unwrap(), e, "the entry, with its own key");
    // Another EF_ACTUA (or none) is another card state, whatever the rest.
    let mut updated = early.clone();
    updated.ef_actua = Some(vec![0xEC, 0x02]);
    assert_eq!(s.load_card(&updated), Err(Miss::OtherKey));
    updated.ef_actua = None;
    assert_eq!(s.load_card(&updated), Err(Miss::OtherKey));
    // The files are kept as they were, byte for byte.
    assert_eq!(decode(&encode(&e)).unwrap().files, e.files);
    assert_eq!(Entry::new(e.key.clone()).files.serial, "99000000");
    assert!(Entry::new(e.key.clone()).files.is_empty());
}

#[test]
fn size_limit_and_untrusted_files() {
    let (_t, s) = store();
    let e = entry(key(None));
    let path = s.save(&e).unwrap();
    fs::write(&path, vec![0u8; MAX_FILE_SIZE as usize + 1]).unwrap();
    assert_eq!(s.load(&e.key), Err(Miss::TooLarge(MAX_FILE_SIZE + 1)));
    // Too large to write either.
    let mut huge = e.clone();
    if let Some(o) = &mut huge.objects {
        o.certs[0].der = vec![0; MAX_FILE_SIZE as usize];
    }
    assert!(s.save(&huge).is_err());
    // A symlink is not followed, even to a valid file.
    let elsewhere = s.dir().join("elsewhere");
    fs::write(&elsewhere, encode(&e)).unwrap();
    fs::remove_file(&path).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &path).unwrap();
    assert!(matches!(s.load(&e.key), Err(Miss::Unsafe(_))));
    fs::remove_file(&path).unwrap();
    // A file others may write is not trusted.
    s.save(&e).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o622)).unwrap();
    assert!(matches!(s.load(&e.key), Err(Miss::Unsafe(_))));
    // A serial that is not a plain file name.
    let mut odd = e.key.clone();
    odd.serial = "../x".into();
    assert_eq!(s.file(&odd), None);
    assert!(matches!(s.load(&odd), Err(Miss::Unsafe(_))));
}

#[test]
fn unwritable_directory_is_an_error_not_a_panic() {
    let (t, _) = store();
    let e = entry(key(None));
    // A regular file where the directory should be.
    let blocker = t.path().join("file");
    fs::write(&blocker, b"x").unwrap();
    let s = Store::new(blocker.join("pkcs11"));
    assert!(s.save(&e).is_err());
    assert!(matches!(s.load(&e.key), Err(Miss::Io(_))));
    // A directory others may write (created by someone else): neither read nor written.
    let shared = Store::new(t.path().join("shared"));
    fs::create_dir(shared.dir()).unwrap();
    fs::set_permissions(shared.dir(), fs::Permissions::from_mode(0o777)).unwrap();
    assert_eq!(
        shared.save(&e).map_err(|e| e.kind()).err(),
        Some(io::ErrorKind::PermissionDenied)
    );
    assert!(matches!(shared.load(&e.key), Err(Miss::Unsafe(_))));
}

#[test]
fn concurrent_writers_leave_a_valid_file() {
    let (_t, s) = store();
    let base = entry(key(Some(&[0xEC])));
    let written: Vec<Entry> = (0..8u32)
        .map(|i| {
            let mut e = base.clone();
            e.pin_lengths = Some((4, 4 + i));
            e
        })
        .collect();
    std::thread::scope(|scope| {
        for e in &written {
            let s = s.clone();
            scope.spawn(move || {
                for _ in 0..25 {
                    s.save(e).unwrap();
                }
            });
        }
        let s = s.clone();
        let written = &written;
        scope.spawn(move || {
            for _ in 0..200 {
                match s.load(&written[0].key) {
                    Ok(e) => assert!(written.contains(&e)),
                    Err(Miss::NoFile) => {}
                    Err(m) => panic!("a reader saw a partial file: {m}"),
                }
            }
        });
    });
    assert!(written.contains(&s.load(&base.key).unwrap()));
    assert_eq!(fs::read_dir(s.dir()).unwrap().count(), 1, "temporary files left");
}

#[test]
fn private_values_cps_data_and_merging() {
    let mut e = entry(key(None));
    if let Some(d) = e.objects.as_mut().and_then(|o| o.data.as_mut()) {
        d[1].value = Some(b"private".to_vec());
        d.push(Data {
            object: DataObject {
                label: "CPS_DATA".into(),
                application: Some("CPS".into()),
                private: false,
                modifiable: false,
            },
            value: Some(b"rewritable".to_vec()),
        });
    }
    let back = decode(&encode(&e)).unwrap();
    let data = back.objects.as_ref().and_then(|o| o.data.clone()).unwrap();
    assert_eq!(data[0].value.as_deref(), Some(&b"EE 80 DUPONT"[..]));
    assert_eq!(data[1].value, None, "a private value is never written");
    assert_eq!(data[2].value, None, "CPS_DATA's value is never written");
    // Merging takes what this entry lacks, for the same key only; never the PKCS#15 files
    // (this process's card layer decides which it trusts).
    let mut partial = Entry::new(e.key.clone());
    partial.fill_from(back.clone());
    assert_eq!(
        (&partial.objects, partial.pin_lengths),
        (&back.objects, back.pin_lengths)
    );
    assert!(partial.files.is_empty());
    let mut other = Entry::new(key(Some(&[1])));
    other.fill_from(back);
    assert_eq!(other.objects, None);
}

#[test]
fn location_rules() {
    let os = |s: &str| Some(OsString::from(s));
    let dir = |s: Option<Store>| s.map(|s| s.dir().to_path_buf());
    assert_eq!(
        dir(Store::resolve(None, None, os("/home/a"))),
        Some("/home/a/.cache/cpx/pkcs11".into())
    );
    assert_eq!(
        dir(Store::resolve(None, os("/x"), os("/home/a"))),
        Some("/x/cpx/pkcs11".into())
    );
    // A relative XDG_CACHE_HOME is ignored (XDG Base Directory), a relative override refused.
    assert_eq!(
        dir(Store::resolve(None, os("rel"), os("/home/a"))),
        Some("/home/a/.cache/cpx/pkcs11".into())
    );
    assert_eq!(
        dir(Store::resolve(os("/c"), os("/x"), os("/home/a"))),
        Some("/c".into())
    );
    assert_eq!(dir(Store::resolve(os("off"), os("/x"), os("/home/a"))), None);
    assert_eq!(dir(Store::resolve(os("rel"), os("/x"), os("/home/a"))), None);
    assert_eq!(
        dir(Store::resolve(os(""), None, os("/home/a"))),
        Some("/home/a/.cache/cpx/pkcs11".into())
    );
    assert_eq!(dir(Store::resolve(None, None, None)), None);
    assert_eq!(dir(Store::resolve(None, os(""), os(""))), None);
}
