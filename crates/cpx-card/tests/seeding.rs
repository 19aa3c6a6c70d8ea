//! Opening a card with the PKCS#15 files of an earlier session (`Card::open_with`,
//! `Card::identify` + `Identified::open`), in-process against the emulated cards: what the
//! files spare (APDU counts), the same answers as without them, and every way they can be
//! wrong (another card, another interface, bytes that do not parse, a path the card refuses,
//! a missing key) ending in the card's own files, never in an error. Also a reset between
//! the two steps of opening, and mutated files never failing an open (property test).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use cpx_card::{Card, CardError, HashAlg, Interface, KeyRole, Mechanism, Pin, PinKind, Pkcs15Files};
use cpx_transport_virtual::VirtualChannel;
use proptest::prelude::*;

const STEMS: [&str; 3] = ["cps3-doctor", "cps4-doctor", "cps3-contactless"];

fn contact(stem: &str) -> bool {
    !stem.contains("contactless")
}

/// Everything the card layer tells of a card without the PIN (what a PKCS#11 module lists).
fn facts(card: &mut Card, contact: bool) -> String {
    let mut out = format!(
        "{} {} {} {}\n",
        card.serial(),
        card.token_label(),
        card.manufacturer(),
        card.model()
    );
    if contact {
        let statuses = card.pin_statuses(&[PinKind::User, PinKind::Puk]).unwrap();
        let policy = card.pin_policy(PinKind::User).unwrap();
        out += &format!("{statuses:?}\n{policy:?}\n");
    }
    out += &format!(
        "{:?}\n{:?}\n{:?}\n",
        card.private_keys().unwrap(),
        card.certificate_infos().unwrap(),
        card.data_objects().unwrap()
    );
    out
}

/// A first session: everything listed, the files it read, what it told, its opening APDUs.
fn learn(stem: &str) -> (Pkcs15Files, String, usize) {
    let mut s = Session::open(stem);
    let open = s.count();
    let f = facts(&mut s.card, contact(stem));
    (s.card.pkcs15_files().clone(), f, open)
}

/// APDUs whose command bytes contain `needle`.
fn sent(wire: &[(Vec<u8>, Vec<u8>)], needle: &[u8]) -> usize {
    wire.iter()
        .filter(|(c, _)| c.windows(needle.len()).any(|w| w == needle))
        .count()
}

/// `file` with the first `from` replaced by `to`.
fn patched(file: &Option<Vec<u8>>, from: &[u8], to: &[u8]) -> Option<Vec<u8>> {
    let mut f = file.clone().unwrap();
    let at = f
        .windows(from.len())
        .position(|w| w == from)
        .expect("bytes to patch");
    f[at..at + to.len()].copy_from_slice(to);
    Some(f)
}

fn message() -> Vec<u8> {
    (0..1024u32).map(|i| (i % 251) as u8).collect()
}

#[test]
fn an_open_with_the_files_reads_only_the_serial() {
    // (stem, APDUs of a seeded open, of both PIN counters, of the first signature)
    for (stem, open, pins, sign) in [
        ("cps3-doctor", 2, 5, 7),
        ("cps4-doctor", 3, 2, 3),
        ("cps3-contactless", 2, 0, 3),
    ] {
        let (files, cold, cold_open) = learn(stem);
        assert!(
            files.token_info.is_some()
                && files.odf.is_some()
                && files.prkdf.is_some()
                && files.cdf.is_some()
                && files.dodf.is_some(),
            "{stem}: {files:?}"
        );
        assert_eq!(files.aodf.is_some(), contact(stem), "{stem}: the AODF");
        assert_eq!(
            files.ef_dir.is_some(),
            stem != "cps3-doctor",
            "{stem}: EF.DIR only where the application path comes from it"
        );
        let mut s = Session::open_with(stem, &files);
        assert_eq!(s.count(), open, "{stem}: EF.SN.ICC (and the ChipDoc AID) only");
        assert!(open < cold_open, "{stem}: {open} vs {cold_open}");
        assert!(s.card.seeded(), "{stem}");
        let warm = facts(&mut s.card, contact(stem));
        assert_eq!(warm, cold, "{stem}: the same answers");
        assert_eq!(s.count(), pins, "{stem}: only the PIN counters were read");
        assert_eq!(s.card.pkcs15_files(), &files, "{stem}: nothing new read");
        // The first signature of the session: no PrKDF read for the key reference.
        let key = if contact(stem) {
            KeyRole::Signature
        } else {
            KeyRole::Authentication
        };
        let pk = public_key(&s.card.certificate(key).unwrap().der);
        if contact(stem) {
            s.card.verify_pin(&Pin::new("1234")).unwrap();
        }
        s.take();
        if contact(stem) {
            let sig = s
                .card
                .sign(key, Mechanism::Pkcs1(HashAlg::Sha256), &message())
                .unwrap();
            verify_pkcs1(&pk, HashAlg::Sha256, &message(), &sig);
        } else {
            let di = HashAlg::Sha256.digest_info(&HashAlg::Sha256.digest(b"cl"));
            let sig = s.card.sign(key, Mechanism::RsaPkcs, &di).unwrap();
            verify_raw_pkcs1(&pk, &di, &sig);
        }
        assert_eq!(s.count(), sign, "{stem}: the signature's own APDUs");
        assert!(s.card.seeded());
    }
}

#[test]
fn files_of_another_card_or_interface_are_not_used() {
    let (doctor, _, _) = learn("cps3-doctor");
    let (_, pharmacist, cold_open) = learn("cps3-pharmacist");
    let mut other_interface = doctor.clone();
    other_interface.interface = Interface::Contactless;
    let mut other_generation = doctor.clone();
    other_generation.generation = cpx_card::Generation::Cps4;
    for files in [doctor, other_interface, other_generation] {
        let mut s = Session::open_with("cps3-pharmacist", &files);
        assert_eq!(s.count(), cold_open, "read as without files");
        assert!(!s.card.seeded());
        assert_eq!(facts(&mut s.card, true), pharmacist);
        assert_eq!(s.card.pkcs15_files().serial, s.card.serial());
        assert_ne!(s.card.pkcs15_files().token_info, files.token_info);
    }
    // The same files on the doctor's own card are used.
    let (doctor, _, _) = learn("cps3-doctor");
    assert!(Session::open_with("cps3-doctor", &doctor).card.seeded());
}

#[test]
fn files_that_do_not_parse_are_all_dropped() {
    // A truncated SEQUENCE: every parser refuses it.
    let garbage = Some(vec![0x30, 0x84, 0xFF]);
    for stem in STEMS {
        let (files, cold, cold_open) = learn(stem);
        for field in 0..7 {
            let mut bad = files.clone();
            let slot = match field {
                0 => &mut bad.ef_dir,
                1 => &mut bad.token_info,
                2 => &mut bad.odf,
                3 => &mut bad.aodf,
                4 => &mut bad.prkdf,
                5 => &mut bad.cdf,
                _ => &mut bad.dodf,
            };
            if slot.is_none() || (field == 0 && stem == "cps3-doctor") {
                // Not a file of this card (EF.DIR is not used on a CPS3 contact card).
                continue;
            }
            *slot = garbage.clone();
            let mut s = Session::open_with(stem, &bad);
            assert!(!s.card.seeded(), "{stem} file {field}");
            assert_eq!(s.count(), cold_open, "{stem} file {field}: read from the card");
            assert_eq!(facts(&mut s.card, contact(stem)), cold, "{stem} file {field}");
            assert_eq!(s.card.pkcs15_files(), &files, "{stem} file {field}");
        }
    }
}

#[test]
fn a_path_the_card_refuses_drops_the_files() {
    // CPS4: EF.DIR names an application DF the card does not have (3F00/0009). The first
    // operation that selects it is refused; the files are read from the card and it succeeds.
    let (files, cold, _) = learn("cps4-doctor");
    let mut stale = files.clone();
    stale.ef_dir = patched(
        &files.ef_dir,
        &[0x51, 0x04, 0x3F, 0x00, 0x00, 0x01],
        &[0x51, 0x04, 0x3F, 0x00, 0x00, 0x09],
    );
    let mut s = Session::open_with("cps4-doctor", &stale);
    assert!(s.card.seeded());
    let pk = public_key(&s.card.certificate(KeyRole::Signature).unwrap().der);
    s.card.verify_pin(&Pin::new("1234")).unwrap();
    s.take();
    let sig = s
        .card
        .sign(KeyRole::Signature, Mechanism::Pkcs1(HashAlg::Sha256), b"stale")
        .unwrap();
    verify_pkcs1(&pk, HashAlg::Sha256, b"stale", &sig);
    let wire = s.take();
    assert_eq!(sent(&wire, &[0x02, 0x00, 0x09]), 1, "{wire:02X?}");
    assert!(!s.card.seeded());
    assert_eq!(s.card.pkcs15_files().ef_dir, files.ef_dir, "the card's EF.DIR");
    assert!(s.card.pin_verified(), "the PIN state is kept");
    assert_eq!(facts(&mut s.card, true).lines().next(), cold.lines().next());

    // CPS3: the CDF and the DODF point at files the card does not have.
    let (files, _, _) = learn("cps3-doctor");
    let mut cold = Session::open("cps3-doctor");
    let cert = cold.card.certificate(KeyRole::Signature).unwrap();
    let name = cold.card.read_data_object("CPS_NAME_PS").unwrap();
    let mut stale = files.clone();
    stale.cdf = patched(
        &files.cdf,
        &[0x3F, 0x00, 0x00, 0x01, 0xA0, 0x01],
        &[0x3F, 0x00, 0x00, 0x01, 0xA0, 0x09],
    );
    let mut s = Session::open_with("cps3-doctor", &stale);
    assert_eq!(s.card.certificate(KeyRole::Signature).unwrap(), cert);
    assert!(!s.card.seeded());
    // An entry listed from the stale CDF, read after: the card's own CDF gives the path.
    let mut s = Session::open_with("cps3-doctor", &stale);
    let info = s.card.certificate_infos().unwrap().remove(0);
    assert_eq!(info.path.path.last(), Some(&0x09));
    assert_eq!(s.card.read_certificate(&info).unwrap().der, cert.der);
    let mut stale = files.clone();
    stale.dodf = patched(
        &files.dodf,
        &[0x3F, 0x00, 0x00, 0x01, 0xD1, 0x02],
        &[0x3F, 0x00, 0x00, 0x01, 0xD1, 0x0F],
    );
    let mut s = Session::open_with("cps3-doctor", &stale);
    assert_eq!(s.card.read_data_object("CPS_NAME_PS").unwrap(), name);
    assert!(!s.card.seeded());
}

#[test]
fn a_missing_key_drops_the_files_but_a_pin_command_is_never_sent_twice() {
    // A PrKDF without keys parses: the signature finds no key, the card's PrKDF has it.
    let (files, _, _) = learn("cps3-doctor");
    let mut empty = files.clone();
    empty.prkdf = Some(Vec::new());
    let mut s = Session::open_with("cps3-doctor", &empty);
    s.card.verify_pin(&Pin::new("1234")).unwrap();
    s.card
        .sign(KeyRole::Signature, Mechanism::Pkcs1(HashAlg::Sha256), b"x")
        .unwrap();
    assert!(!s.card.seeded());
    assert_eq!(s.card.pkcs15_files().prkdf, files.prkdf);

    // A VERIFY the card refuses is reported as it is, never sent again: the seeds stay.
    let mut s = Session::open_with("cps3-doctor", &files);
    s.take();
    let r = s.card.verify_pin(&Pin::new("9999"));
    assert!(matches!(r, Err(CardError::WrongPin { .. })), "{r:?}");
    let wire = s.take();
    let verifies = wire
        .iter()
        .filter(|(c, _)| c.starts_with(&[0x00, 0x20, 0x00]) && c.len() > 4)
        .count();
    // Before it, one VERIFY without data (is the PIN already verified?), which spends no try.
    assert_eq!(verifies, 1, "one VERIFY carrying the PIN: {wire:02X?}");
    assert_eq!(sent(&wire, &[0x00, 0x20, 0x00]), 2, "{wire:02X?}");
    assert!(s.card.seeded());
}

#[test]
fn identify_then_open_survives_a_reset_and_sees_another_card() {
    for stem in ["cps3-doctor", "cps4-doctor"] {
        let (files, cold, _) = learn(stem);
        let (rec, wire) = cpx_testkit::Recorder::new(emulated(stem));
        let (channel, control) = VirtualChannel::new("reset", Box::new(rec));
        let mut id = Card::identify(Box::new(channel)).unwrap();
        let actua = id.ef_actua().unwrap();
        assert_eq!(actua, None, "{stem}: no EF_ACTUA on the emulated card");
        // CPS3 contact: one SELECT (6A82); CPS4: nothing sent (docs/card-spec.md §5.7).
        let serial_and_actua = wire.take().len();
        assert_eq!(serial_and_actua, 3, "{stem}");
        control.reset();
        let mut card = id.open(None).unwrap();
        assert_eq!(facts(&mut card, true), cold, "{stem}: recovered after the reset");
        // Another card put in between the two steps is never taken for the first one: seen by
        // the open when it reads the card, else by the first operation (as for any reset).
        for seeded in [false, true] {
            let (rec, _wire, slot2) = cpx_testkit::Recorder::swappable(emulated(stem));
            let (channel, control) = VirtualChannel::new("swap", Box::new(rec));
            let id = Card::identify(Box::new(channel)).unwrap();
            // The same model with another card number (PAN, docs/card-spec.md §1.3).
            let mut other = cpx_emulator::builtin_image(stem).unwrap().unwrap();
            other.pan[8] ^= 0x11;
            *slot2.lock().unwrap() = cpx_emulator::card_from_image(&other);
            control.reset();
            let r = match id.open(seeded.then_some(&files)) {
                Ok(mut card) => {
                    assert!(seeded, "{stem}: the open read the card");
                    card.private_keys().map(drop)
                }
                Err(e) => Err(e),
            };
            assert!(
                matches!(r, Err(CardError::DifferentCard { .. })),
                "{stem} seeded {seeded}: {r:?}"
            );
        }
    }
}

/// Mutations of a file: flip, insert, delete, truncate (as tests/properties.rs).
fn mutate(mut f: Vec<u8>, edits: &[(usize, u8, u8)]) -> Vec<u8> {
    for (at, byte, kind) in edits {
        if f.is_empty() {
            f.push(*byte);
            continue;
        }
        let i = at % f.len();
        match kind {
            0 => f[i] ^= byte | 1,
            1 => f.insert(i, *byte),
            2 => {
                f.remove(i);
            }
            _ => f.truncate(i),
        }
    }
    f
}

proptest! {
    /// Whatever the files hold, opening never fails because of them, and the driver never
    /// panics with them.
    #[test]
    fn mutated_files_never_fail_an_open(
        stem in prop::sample::select(STEMS.to_vec()),
        field in 0usize..7,
        edits in prop::collection::vec((0usize..512, any::<u8>(), 0u8..4), 1..6),
    ) {
        let (files, _, _) = learn(stem);
        let mut bad = files.clone();
        let slot = match field {
            0 => &mut bad.ef_dir,
            1 => &mut bad.token_info,
            2 => &mut bad.odf,
            3 => &mut bad.aodf,
            4 => &mut bad.prkdf,
            5 => &mut bad.cdf,
            _ => &mut bad.dodf,
        };
        *slot = Some(mutate(slot.clone().unwrap_or_default(), &edits));
        let (channel, _control) = VirtualChannel::new("mutated", emulated(stem));
        let card = Card::open_with(Box::new(channel), &bad);
        prop_assert!(card.is_ok(), "{:?}", card.err());
        let mut card = card.unwrap();
        let _ = card.pin_statuses(&[PinKind::User, PinKind::Puk]);
        let _ = card.private_keys();
        let _ = card.certificates();
        let _ = card.data_objects();
        let _ = card.read_data_object("CPS_NAME_PS");
        let _ = card.sign(KeyRole::Authentication, Mechanism::RsaPkcs, &HashAlg::Sha256.digest_info(&[0; 32]));
    }
}
