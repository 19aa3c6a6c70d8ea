//! Property tests: the certificate parser, the whole profile builder and the TLV decoder never
//! panic, whatever the bytes (mutated real DER, random bytes), and TLV trees round-trip.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{card_inputs, tlv, vectors};
use cpx_profile::{Certificate, Profile, TrustStore, business, tlv as ptlv};
use proptest::prelude::*;

fn real_ders() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = ["cps3-doctor", "cpe", "cps3-contactless"]
        .iter()
        .flat_map(|s| card_inputs(s).certificates.into_iter().map(|(_, d)| d))
        .collect();
    v.push(std::fs::read(vectors().join("pki/acr-fort.der")).unwrap());
    v
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, xor: u8 },
    Set { at: usize, byte: u8 },
    Truncate { at: usize },
    Insert { at: usize, bytes: Vec<u8> },
    Delete { at: usize, len: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(at, xor)| Mutation::Flip { at, xor }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Set { at, byte }),
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
        (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        (any::<usize>(), 1..16usize).prop_map(|(at, len)| Mutation::Delete { at, len }),
    ]
}

fn apply(der: &mut Vec<u8>, m: &Mutation) {
    if der.is_empty() {
        return;
    }
    let n = der.len();
    match m {
        Mutation::Flip { at, xor } => der[at % n] ^= xor,
        Mutation::Set { at, byte } => der[at % n] = *byte,
        Mutation::Truncate { at } => der.truncate(at % n),
        Mutation::Insert { at, bytes } => {
            let at = at % n;
            der.splice(at..at, bytes.iter().copied());
        }
        Mutation::Delete { at, len } => {
            let at = at % n;
            der.drain(at..(at + len).min(n));
        }
    }
}

fn store() -> &'static TrustStore {
    static STORE: std::sync::OnceLock<TrustStore> = std::sync::OnceLock::new();
    STORE.get_or_init(common::test_store)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Mutated real certificates: parse or fail with an error, never panic; when one still parses,
    /// building a profile and its JSON from it does not panic either.
    #[test]
    fn mutated_certificates_never_panic(which in 0usize..7, mutations in proptest::collection::vec(mutation(), 1..4)) {
        let ders = real_ders();
        let mut der = ders[which % ders.len()].clone();
        for m in &mutations {
            apply(&mut der, m);
        }
        let parsed = Certificate::from_der(&der);
        if let Err(e) = &parsed {
            prop_assert!(!e.to_string().is_empty());
        }
        let p = Profile::builder().certificate(&der).build(store(), common::at());
        prop_assert_eq!(p.certificates.len() + p.certificate_errors.len(), 1);
        prop_assert!(!p.to_json().is_empty());
    }

    /// Random bytes behind a plausible certificate header.
    #[test]
    fn random_certificate_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut der = vec![0x30, 0x82, u8::try_from(body.len() >> 8).unwrap(), u8::try_from(body.len() & 0xFF).unwrap()];
        der.extend(&body);
        let _ = Certificate::from_der(&der);
        let _ = Certificate::from_der(&body);
    }

    /// The TLV decoder on arbitrary bytes: an error or a tree whose offsets stay in bounds.
    #[test]
    fn tlv_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        match ptlv::decode(&bytes) {
            Ok(doc) => {
                for node in doc.iter() {
                    prop_assert!(node.offset < bytes.len());
                    prop_assert!(node.offset + node.length <= bytes.len());
                }
                let _ = doc.to_text();
            }
            Err(e) => prop_assert!(e.offset <= bytes.len()),
        }
        // Business data decoding on the same bytes, under every kind of label.
        for label in ["CPS_ACTIVITY_01_PS", "CPS_INFO_PS", "CPS_NAME_PS", "X"] {
            let obj = business::decode(label, &bytes);
            prop_assert_eq!(obj.length, bytes.len());
            prop_assert_eq!(obj.tlv.is_some(), obj.tlv_error.is_none());
        }
    }

    /// Mutated real business data (the doctor's card image).
    #[test]
    fn mutated_business_data_never_panics(which in 0usize..8, mutations in proptest::collection::vec(mutation(), 1..4)) {
        let data = card_inputs("cps3-doctor").data;
        let (label, value) = &data[which % data.len()];
        let mut value = value.clone();
        for m in &mutations {
            apply(&mut value, m);
        }
        let _ = business::decode(label, &value);
    }

    /// Encoded trees decode to the same tags, lengths and values.
    #[test]
    fn tlv_round_trip(fields in proptest::collection::vec((0x80u8..=0x9E, proptest::collection::vec(any::<u8>(), 0..300)), 0..6)) {
        let mut inner = Vec::new();
        for (tag, value) in &fields {
            inner.extend(tlv(&[*tag], value));
        }
        let bytes = tlv(&[0xEE], &inner);
        let doc = ptlv::decode(&bytes).unwrap();
        prop_assert_eq!(doc.nodes.len(), 1);
        let ee = &doc.nodes[0];
        prop_assert_eq!(ee.length, inner.len());
        prop_assert_eq!(ee.children.len(), fields.len());
        for (node, (tag, value)) in ee.children.iter().zip(&fields) {
            prop_assert_eq!(&node.tag, &format!("{tag:02X}"));
            prop_assert_eq!(node.length, value.len());
            let hex: String = value.iter().map(|b| format!("{b:02X}")).collect();
            prop_assert_eq!(node.value.as_deref(), Some(hex.as_str()));
        }
    }
}
