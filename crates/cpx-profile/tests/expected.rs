//! The profile of every test card, compared field by field with `test-vectors/expected/<stem>.json`.
//!
//! Regenerate (after a deliberate change to the profile, the test PKI or a card image):
//!
//! ```sh
//! CPX_BLESS=1 cargo test -p cpx-profile --test expected
//! git diff test-vectors/expected/   # review every change
//! ```
//!
//! Inputs per card: every `cards/<stem>/*.der` certificate (file-name order) and, when
//! `cards/<stem>/card.toml` exists, its `[[data]]` business data objects; trust store
//! `test-vectors/pki`; instant 2027-01-01T00:00:00Z.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{STEMS, json_diff, profile_of, test_store, vectors};

#[test]
fn expected_outputs_match_field_by_field() {
    let store = test_store();
    let bless = std::env::var_os("CPX_BLESS").is_some();
    let dir = vectors().join("expected");
    let mut failures = Vec::new();
    for stem in STEMS {
        let profile = profile_of(stem, &store);
        let actual: serde_json::Value = serde_json::from_str(&profile.to_json()).unwrap();
        let path = dir.join(format!("{stem}.json"));
        if bless {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, format!("{}\n", profile.to_json())).unwrap();
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}; generate it with CPX_BLESS=1", path.display()));
        let expected: serde_json::Value = serde_json::from_str(&text).unwrap();
        let mut diffs = Vec::new();
        json_diff("", &expected, &actual, &mut diffs);
        if !diffs.is_empty() {
            failures.push(format!("{stem}.json:\n  {}", diffs.join("\n  ")));
        }
    }
    assert!(
        failures.is_empty(),
        "profiles differ from test-vectors/expected (if a card image, the test PKI or the profile changed on \
         purpose, re-bless with CPX_BLESS=1 and review the diff):\n{}",
        failures.join("\n")
    );
}

#[test]
fn json_diff_reports_paths() {
    let e = serde_json::json!({"a": {"b": [1, 2]}, "c": null, "d": 1});
    let a = serde_json::json!({"a": {"b": [1, 3, 4]}, "c": "x", "e": 2});
    let mut out = Vec::new();
    json_diff("", &e, &a, &mut out);
    assert_eq!(
        out,
        [
            "/a/b/1: expected 2, actual 3",
            "/a/b: 2 elements expected, 3 found",
            "/c: expected null, actual \"x\"",
            "/d: missing (expected 1)",
            "/e: unexpected field (actual 2)",
        ]
    );
}
