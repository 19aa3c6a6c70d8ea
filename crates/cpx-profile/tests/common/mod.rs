//! Shared by the integration tests: paths, test-card inputs, JSON field-by-field comparison.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::path::{Path, PathBuf};

use cpx_profile::{Profile, Timestamp, TrustStore};

/// The fixed instant every expected output is computed at (test cards: 2026-01-01 → 2029-01-01).
pub const AT: &str = "2027-01-01T00:00:00Z";

/// The ten test cards (test-vectors/README.md).
pub const STEMS: [&str; 10] = [
    "cps3-doctor",
    "cps3-pharmacist",
    "cpe",
    "cpa",
    "cpf",
    "cps4-doctor",
    "cps3-expired",
    "cps3-pin-blocked",
    "cps3-puk-blocked",
    "cps3-contactless",
];

pub fn at() -> Timestamp {
    Timestamp::parse(AT).unwrap()
}

pub fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test-vectors")
}

/// `../shared/reference` as seen from the repository root, if present.
pub fn shared_reference() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/reference");
    p.is_dir().then_some(p)
}

pub fn test_store() -> TrustStore {
    let mut store = TrustStore::new();
    let report = store.load_dir(vectors().join("pki")).unwrap();
    assert_eq!(report.loaded.len(), 9, "{report:?}");
    store
}

/// The inputs of one test card: its certificate files (sorted) and the business data objects of
/// its emulator image `card.toml`, when that file exists.
pub struct CardInputs {
    pub certificates: Vec<(String, Vec<u8>)>,
    pub data: Vec<(String, Vec<u8>)>,
    pub has_card_toml: bool,
}

pub fn card_inputs(stem: &str) -> CardInputs {
    let dir = vectors().join("cards").join(stem);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".der") && !n.contains(".key."))
        .collect();
    names.sort();
    let certificates = names
        .into_iter()
        .map(|n| (n.clone(), std::fs::read(dir.join(&n)).unwrap()))
        .collect();
    let card_toml = dir.join("card.toml");
    let data = if card_toml.exists() {
        business_data(&std::fs::read_to_string(&card_toml).unwrap())
    } else {
        vec![]
    };
    CardInputs {
        certificates,
        data,
        has_card_toml: card_toml.exists(),
    }
}

pub fn profile_of(stem: &str, store: &TrustStore) -> Profile {
    let inputs = card_inputs(stem);
    let mut b = Profile::builder();
    for (name, der) in &inputs.certificates {
        b = b.certificate_from(name, der);
    }
    for (label, value) in &inputs.data {
        b = b.data_object(label, value);
    }
    b.build(store, at())
}

/// The `[[data]]` objects of a card image, encoded as the emulator stores them
/// (crates/cpx-emulator/src/lib.rs "Card image format"): `hex`, or `template` (default `EE`)
/// around `fields` `{tag, text}`, zero-padded to `size`. Re-implemented here on purpose:
/// cpx-profile must not depend on the emulator.
pub fn business_data(card_toml: &str) -> Vec<(String, Vec<u8>)> {
    let doc: toml::Table = toml::from_str(card_toml).unwrap();
    let Some(data) = doc.get("data").and_then(|d| d.as_array()) else {
        return vec![];
    };
    data.iter()
        .map(|d| {
            let label = d["label"].as_str().unwrap().to_owned();
            let mut value = match (d.get("hex"), d.get("fields")) {
                (Some(h), None) => unhex(h.as_str().unwrap()),
                (None, Some(fields)) => {
                    let template = unhex(d.get("template").and_then(|t| t.as_str()).unwrap_or("EE"));
                    let mut inner = Vec::new();
                    for f in fields.as_array().unwrap() {
                        inner.extend(tlv(
                            &unhex(f["tag"].as_str().unwrap()),
                            f["text"].as_str().unwrap().as_bytes(),
                        ));
                    }
                    tlv(&template, &inner)
                }
                (None, None) => Vec::new(),
                (Some(_), Some(_)) => panic!("{label}: both hex and fields"),
            };
            if let Some(size) = d.get("size").and_then(|s| s.as_integer()) {
                value.resize(usize::try_from(size).unwrap(), 0);
            }
            (label, value)
        })
        .collect()
}

pub fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace() && *c != ':').collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

pub fn tlv(tag: &[u8], value: &[u8]) -> Vec<u8> {
    let mut out = tag.to_vec();
    match value.len() {
        n @ 0..=0x7F => out.push(u8::try_from(n).unwrap()),
        n @ 0x80..=0xFF => out.extend([0x81, u8::try_from(n).unwrap()]),
        n => out.extend([
            0x82,
            u8::try_from(n >> 8).unwrap(),
            u8::try_from(n & 0xFF).unwrap(),
        ]),
    }
    out.extend_from_slice(value);
    out
}

/// Every difference between two JSON values, as `JSON pointer: expected … / actual …` lines.
pub fn json_diff(
    path: &str,
    expected: &serde_json::Value,
    actual: &serde_json::Value,
    out: &mut Vec<String>,
) {
    use serde_json::Value;
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, ev) in e {
                let p = format!("{path}/{k}");
                match a.get(k) {
                    Some(av) => json_diff(&p, ev, av, out),
                    None => out.push(format!("{p}: missing (expected {ev})")),
                }
            }
            for k in a.keys().filter(|k| !e.contains_key(*k)) {
                out.push(format!("{path}/{k}: unexpected field (actual {})", a[k]));
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                json_diff(&format!("{path}/{i}"), ev, av, out);
            }
            if e.len() != a.len() {
                out.push(format!(
                    "{path}: {} elements expected, {} found",
                    e.len(),
                    a.len()
                ));
            }
        }
        (e, a) if e != a => out.push(format!("{path}: expected {e}, actual {a}")),
        _ => {}
    }
}
