//! Property tests (the fuzz target; no nightly here for cargo-fuzz): arbitrary and mutated card
//! data into every parser, and a hostile card answering anything to every operation. No panic,
//! whatever the bytes. `PROPTEST_CASES=n` sets the run length.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Arc, Mutex};

use cpx_card::pkcs15::{aodf, cdf, dir, dodf, odf, prkdf, tokeninfo};
use cpx_card::{Card, HashAlg, KeyRole, Mechanism, Pin, PinKind};
use cpx_emulator::Cps3Card;
use cpx_transport_virtual::VirtualChannel;
use cpx_vpcd::VirtualCard;
use proptest::prelude::*;

/// The real PKCS#15 files of the emulated CPS3 (ODF, TokenInfo, AODF, PrKDF, CDF, DODF).
fn real_files() -> Vec<Vec<u8>> {
    let image = cpx_emulator::builtin_image("cps3-doctor").unwrap().unwrap();
    let card = Cps3Card::new(&image);
    [0x5031, 0x5032, 0x7001, 0x7002, 0x7005, 0x7006, 0x2F00]
        .iter()
        .filter_map(|fid| {
            let path: Vec<u16> = if *fid == 0x2F00 {
                vec![0x3F00, 0x2F00]
            } else {
                vec![0x3F00, 0x0001, *fid]
            };
            card.file(&path).map(<[u8]>::to_vec)
        })
        .collect()
}

fn all_parsers(data: &[u8]) {
    let _ = odf::parse(data);
    let _ = tokeninfo::parse(data);
    let _ = aodf::parse(data);
    let _ = prkdf::parse(data);
    let _ = cdf::parse(data);
    let _ = dodf::parse(data);
    let _ = dir::app_path(data, &cpx_card::commands::AID_P15_CONTACT);
    let _ = cpx_card::parse_pin_data(data, 1);
    let _ = cpx_card::parse_ef_actua(data);
    let _ = cpx_card::serial_from_ef_sn_icc(data);
    let _ = cpx_card::strip_digest_info(data);
    let _ = cpx_card::pkcs1_type2_unpad(data);
    let _ = cpx_card::identify_atr(data);
}

/// Mutations of a real file: flip, insert, delete, truncate.
fn mutated() -> impl Strategy<Value = Vec<u8>> {
    let files = real_files();
    (
        0..files.len(),
        prop::collection::vec((0usize..4096, any::<u8>(), 0u8..4), 1..8),
    )
        .prop_map(move |(i, edits)| {
            let mut f = files[i].clone();
            for (at, byte, kind) in edits {
                if f.is_empty() {
                    break;
                }
                let at = at % f.len();
                match kind {
                    0 => f[at] = byte,
                    1 => f.insert(at, byte),
                    2 => {
                        f.remove(at);
                    }
                    _ => f.truncate(at),
                }
            }
            f
        })
}

/// A card with a real CPS3 or CPS4 ATR that answers from a script (then `90 00`).
struct Hostile {
    atr: Vec<u8>,
    replies: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl VirtualCard for Hostile {
    fn atr(&self) -> Vec<u8> {
        self.atr.clone()
    }
    fn transmit(&mut self, _apdu: &[u8]) -> Vec<u8> {
        let mut r = self.replies.lock().unwrap();
        if r.is_empty() {
            vec![0x90, 0x00]
        } else {
            r.remove(0)
        }
    }
}

/// The real emulated card, with some of its replies replaced or mutated: reaches every parser
/// behind a successful open.
struct Corrupting {
    inner: Box<dyn VirtualCard>,
    n: usize,
    edits: Vec<(usize, Vec<u8>, u8)>,
}

impl VirtualCard for Corrupting {
    fn atr(&self) -> Vec<u8> {
        self.inner.atr()
    }
    fn power_on(&mut self) {
        self.inner.power_on();
    }
    fn transmit(&mut self, apdu: &[u8]) -> Vec<u8> {
        let mut r = self.inner.transmit(apdu);
        let n = self.n;
        self.n += 1;
        for (at, bytes, kind) in &self.edits {
            if *at != n {
                continue;
            }
            match kind {
                0 => r = bytes.clone(),
                1 if r.len() > 2 => {
                    let i = bytes.first().map_or(0, |b| usize::from(*b)) % (r.len() - 2);
                    r[i] ^= bytes.get(1).copied().unwrap_or(0xFF) | 1;
                }
                2 if r.len() > 2 => {
                    let keep = bytes.first().map_or(0, |b| usize::from(*b)) % (r.len() - 2);
                    let sw = r.split_off(r.len() - 2);
                    r.truncate(keep);
                    r.extend(sw);
                }
                _ => {
                    let l = r.len();
                    r.splice(l.saturating_sub(2)..l.saturating_sub(2), bytes.iter().copied());
                }
            }
        }
        r
    }
}

fn reply() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300),
        // plausible: data + a common status word
        (
            prop::collection::vec(any::<u8>(), 0..64),
            prop::sample::select(vec![
                [0x90, 0x00],
                [0x61, 0x10],
                [0x6E, 0x00],
                [0x6A, 0x86],
                [0x63, 0xC1],
                [0x69, 0x82],
                [0x6C, 0x05],
                [0x9F, 0x05],
                [0x68, 0x81],
                [0x69, 0x85],
            ])
        )
            .prop_map(|(mut d, sw)| {
                d.extend_from_slice(&sw);
                d
            }),
        // a well-formed EF.SN.ICC so the session opens and later parsers are reached
        Just(vec![
            0x5A, 0x0A, 0x80, 0x25, 0x00, 0x00, 0x01, 0x99, 0x21, 0x38, 0x45, 0x0F, 0x90, 0x00
        ]),
        Just(vec![0x62, 0x04, 0x80, 0x02, 0x00, 0x40, 0x90, 0x00]),
    ]
}

const ATRS: [&[u8]; 3] = [
    &[
        0x3B, 0xAC, 0x00, 0x40, 0x2A, 0x00, 0x12, 0x25, 0x00, 0x64, 0x80, 0x00, 0x03, 0x10, 0x00, 0x90, 0x00,
    ],
    &[
        0x3B, 0x9B, 0x18, 0x80, 0x01, 0x00, 0x12, 0x25, 0x00, 0x64, 0x80, 0x04, 0x01, 0x00, 0x00, 0x90, 0x44,
    ],
    &[
        0x3B, 0x8F, 0x80, 0x01, 0x00, 0x31, 0xB8, 0x64, 0x04, 0xB0, 0xEC, 0xC1, 0x73, 0x94, 0x01, 0x80, 0x82,
        0x90, 0x00, 0x0E,
    ],
];

fn drive(card: &mut Card) {
    let _ = card.pin_status(PinKind::User);
    let _ = card.verify_pin(&Pin::new("1234"));
    let _ = card.certificates();
    let _ = card.sign(KeyRole::Signature, Mechanism::Pkcs1(HashAlg::Sha256), &[7; 100]);
    let _ = card.sign(KeyRole::Authentication, Mechanism::RsaPkcs, &[7; 35]);
    let _ = card.sign(KeyRole::Signature, Mechanism::Pss(HashAlg::Sha1), &[7; 10]);
    let _ = card.decrypt(KeyRole::Authentication, &[7; 256]);
    let _ = card.data_objects();
    let _ = card.read_data_object("CPS_SIT_FACT");
    let _ = card.ef_actua();
    let _ = card.change_pin(&Pin::new("1234"), &Pin::new("5678"));
    let _ = card.unblock_pin(&Pin::new("12345678"), &Pin::new("1234"));
}

proptest! {
    #[test]
    fn parsers_never_panic_on_random_bytes(data in prop::collection::vec(any::<u8>(), 0..512)) {
        all_parsers(&data);
    }

    #[test]
    fn parsers_never_panic_on_mutated_real_files(data in mutated()) {
        all_parsers(&data);
    }

    #[test]
    fn a_corrupted_real_card_never_panics_the_driver(
        stem in prop::sample::select(vec!["cps3-doctor", "cps4-doctor", "cps3-contactless"]),
        edits in prop::collection::vec((0usize..90, prop::collection::vec(any::<u8>(), 0..40), 0u8..4), 1..4),
    ) {
        let card = Corrupting { inner: common::emulated(stem), n: 0, edits };
        let (channel, _control) = VirtualChannel::new("corrupting", Box::new(card));
        if let Ok(mut c) = Card::open(Box::new(channel)) {
            drive(&mut c);
        }
    }

    #[test]
    fn a_hostile_card_never_panics_the_driver(atr in 0usize..3, replies in prop::collection::vec(reply(), 0..40)) {
        let card = Hostile { atr: ATRS[atr].to_vec(), replies: Arc::new(Mutex::new(replies)) };
        let (channel, _control) = VirtualChannel::new("hostile", Box::new(card));
        if let Ok(mut c) = Card::open(Box::new(channel)) {
            drive(&mut c);
        }
    }
}

#[test]
fn real_files_parse() {
    let f = real_files();
    assert_eq!(f.len(), 7);
    odf::parse(&f[0]).unwrap();
    assert_eq!(
        tokeninfo::parse(&f[1]).unwrap().label.as_deref(),
        Some("CPS3v3-9900000001")
    );
    assert_eq!(aodf::parse(&f[2]).unwrap().len(), 2);
    assert_eq!(prkdf::parse(&f[3]).unwrap().len(), 2);
    assert_eq!(cdf::parse(&f[4]).unwrap().len(), 2);
    assert!(!dodf::parse(&f[5]).unwrap().is_empty());
}
