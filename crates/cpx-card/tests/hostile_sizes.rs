//! A card claiming a file far larger than READ BINARY can address (`80 04 FF FF FF FF` in an
//! FCP/FCI, a DER header of 16 MiB) gets a precise `MalformedCardData`, with nothing read or
//! allocated for it: the size is checked against the 15-bit READ BINARY offset first (io.rs).
//! In process, through the emulator and `FaultModeCard`; the real-stack runs under an address
//! space limit are in pkcs11-module/tests/bounded_sizes.rs and cli/tests/hostile_sizes.rs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use cpx_card::{Card, CardError, PinKind};
use cpx_testkit::{FaultModeCard, Recorder, Recording};
use cpx_transport_virtual::VirtualChannel;
use cpx_vpcd::VirtualCard;

type Op = fn(&mut Card) -> Result<(), CardError>;

/// Open `card` and run `op` on it; what failed.
fn run(card: Box<dyn VirtualCard>, op: Op) -> (Result<(), CardError>, Recording) {
    let (rec, wire) = Recorder::new(card);
    let (channel, _control) = VirtualChannel::new("virtual hostile", Box::new(rec));
    let r = Card::open(Box::new(channel)).and_then(|mut c| op(&mut c));
    (r, wire)
}

/// With the size of file `fid` overridden to 4 GiB − 1, `op` fails on that file, precisely, and
/// no READ BINARY follows the SELECT that announced it.
fn refused(stem: &str, fid: [u8; 2], object: &str, op: Op) {
    let (card, modes) = FaultModeCard::new(cpx_testkit::emulated(stem).unwrap());
    modes.override_size(&fid, &[0xFF; 4]);
    let (r, wire) = run(Box::new(card), op);
    match r {
        Err(CardError::MalformedCardData { object: o, reason }) => {
            assert_eq!(o, object, "{stem} {fid:02X?}: {reason}");
            assert!(reason.contains("4294967295"), "{stem} {object}: {reason}");
        }
        other => panic!("{stem} {object}: expected MalformedCardData, got {other:?}"),
    }
    let commands = wire.commands();
    let last_select = commands
        .iter()
        .rposition(|c| c[1] == 0xA4 && c.len() > 5 && c[5..].windows(2).any(|w| w == fid))
        .unwrap_or_else(|| panic!("{stem} {object}: never selected"));
    let reads_after = commands[last_select..].iter().filter(|c| c[1] == 0xB0).count();
    assert_eq!(
        reads_after, 0,
        "{stem} {object}: READ BINARY sent for a hostile size"
    );
}

fn nothing(_: &mut Card) -> Result<(), CardError> {
    Ok(())
}
fn certificates(c: &mut Card) -> Result<(), CardError> {
    c.certificates().map(drop)
}
fn pin_policy(c: &mut Card) -> Result<(), CardError> {
    c.pin_policy(PinKind::User).map(drop)
}
fn private_keys(c: &mut Card) -> Result<(), CardError> {
    c.private_keys().map(drop)
}
fn certificate_infos(c: &mut Card) -> Result<(), CardError> {
    c.certificate_infos().map(drop)
}
fn data_objects(c: &mut Card) -> Result<(), CardError> {
    c.data_objects().map(drop)
}
fn read_name(c: &mut Card) -> Result<(), CardError> {
    c.read_data_object("CPS_NAME_PS").map(drop)
}
fn size_of_name(c: &mut Card) -> Result<(), CardError> {
    c.data_object_size("CPS_NAME_PS").map(drop)
}

#[test]
fn every_file_kind_with_a_4_gib_fcp_size_is_refused_before_reading() {
    // The CPS3 contact application path is known without EF.DIR (seed.rs); the CPS4 reads it.
    refused("cps4-doctor", [0x2F, 0x00], "EF.DIR", nothing);
    for stem in ["cps3-doctor", "cps4-doctor"] {
        refused(stem, [0x50, 0x32], "TokenInfo", nothing);
        refused(stem, [0x50, 0x31], "ODF", certificate_infos);
        refused(stem, [0x70, 0x01], "AODF", pin_policy);
        refused(stem, [0x70, 0x02], "PrKDF", private_keys);
        refused(stem, [0x70, 0x05], "CDF", certificate_infos);
        refused(stem, [0x70, 0x06], "DODF", data_objects);
        refused(stem, [0xD1, 0x02], "CPS_NAME_PS", read_name);
        // A size query (CKA_VALUE_LEN) never reports what cannot be read.
        refused(stem, [0xD1, 0x02], "CPS_NAME_PS", size_of_name);
    }
    // The CPS4 reads its certificates by FCI size; the CPS3 by DER header (below).
    refused(
        "cps4-doctor",
        [0xA0, 0x01],
        "Certificat de Signature CPS",
        certificates,
    );
    refused("cps4-doctor", [0xD0, 0x03], "EF.SN.ICC", nothing);
}

/// The CPS3 reads EF.SN.ICC without its FCP (docs/card-spec.md §1.3): a hostile FCP size there is never seen.
#[test]
fn cps3_serial_number_is_read_without_its_fcp() {
    let (card, modes) = FaultModeCard::new(cpx_testkit::emulated("cps3-doctor").unwrap());
    modes.override_size(&[0xD0, 0x03], &[0xFF; 4]);
    let (r, _) = run(Box::new(card), nothing);
    r.unwrap();
}

#[test]
fn a_certificate_whose_der_header_claims_16_mib_is_refused() {
    let mut image = cpx_emulator::builtin_image("cps3-doctor").unwrap().unwrap();
    let sign = image.sign.as_mut().unwrap();
    assert_eq!(sign.cert[..2], [0x30, 0x82]);
    // 30 83 FFFFFF: a 16 MiB SEQUENCE, in place of 30 82 xxxx.
    let mut cert = vec![0x30, 0x83, 0xFF, 0xFF, 0xFF];
    cert.extend_from_slice(&sign.cert[4..]);
    sign.cert = cert;
    let (r, wire) = run(cpx_emulator::card_from_image(&image), certificates);
    match r {
        Err(CardError::MalformedCardData { object, reason }) => {
            assert_eq!(object, "Certificat de Signature CPS", "the CDF label");
            assert!(reason.contains("DER header claims 16777220 bytes"), "{reason}");
        }
        other => panic!("expected MalformedCardData, got {other:?}"),
    }
    // One chunk for the header, no more.
    let reads = wire.commands().iter().filter(|c| c[1] == 0xB0).count();
    assert!(reads <= 16, "{reads} READ BINARY");
}
