//! Every card image in `test-vectors/cards` loads, and what the card serves is the image's data.

// Test code: failing loudly is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use cpx_emulator::{CardImage, CardKind, Cps3Card, Cps4Card, Protocol, card_from_image, facts};
use cpx_vpcd::VirtualCard;
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test-vectors/cards")
}

const CPS3_STEMS: [&str; 9] = [
    "cps3-doctor",
    "cps3-pharmacist",
    "cpe",
    "cpa",
    "cpf",
    "cps3-expired",
    "cps3-pin-blocked",
    "cps3-puk-blocked",
    "cps3-contactless",
];

#[test]
fn all_cps3_images_load_and_serve_their_certificates() {
    for stem in CPS3_STEMS {
        let image =
            CardImage::load(dir().join(stem).join("card.toml")).unwrap_or_else(|e| panic!("{stem}: {e}"));
        let card = Cps3Card::new(&image);
        assert_eq!(card.atr(), image.atr, "{stem}");
        if image.kind == CardKind::Cps3 {
            assert_eq!(
                card.file(&[0x3F00, 0x0001, 0xA001]),
                image.sign.as_ref().map(|k| &k.cert[..]),
                "{stem}"
            );
            assert_eq!(
                card.file(&[0x3F00, 0x0001, 0xA002]),
                image.auth.as_ref().map(|k| &k.cert[..]),
                "{stem}"
            );
            assert_eq!(
                card.tries_left(0x02),
                image.puk.as_ref().map(|p| p.tries_left),
                "{stem}"
            );
        } else {
            assert_eq!(
                card.file(&[0x3F00, 0x0001, 0xA003]),
                image.tech.as_ref().map(|k| &k.cert[..]),
                "{stem}"
            );
            assert_eq!(card.tries_left(0x01), None);
        }
        assert_eq!(card.file(&[0x3F00, 0xD003]).map(|v| v.len()), Some(12), "{stem}");
    }
}

#[test]
fn ef_actua_present_only_where_the_image_says() {
    let with = CardImage::load(dir().join("cps3-pharmacist/card.toml")).unwrap();
    let card = Cps3Card::new(&with);
    let actua = card.file(&[0x3F00, 0xD010]).unwrap();
    assert_eq!(
        hex::encode_upper(actua),
        "EC12810720250101000000820720301231235959"
    );
    let without = CardImage::load(dir().join("cps3-doctor/card.toml")).unwrap();
    assert!(Cps3Card::new(&without).file(&[0x3F00, 0xD010]).is_none());
}

#[test]
fn malformed_images_are_refused_with_a_precise_error() {
    let mut no_files = |_: &str| -> Result<Vec<u8>, cpx_emulator::ImageError> { Ok(Vec::new()) };
    for (toml, field) in [
        ("kind = \"cps3\"\ntoken_serial = \"12\"", "token_serial"),
        (
            "kind = \"cps3\"\ntoken_serial = \"9900000001\"\npan = \"80\"",
            "pan",
        ),
        (
            "kind = \"cps3\"\ntoken_serial = \"9900000001\"\n[pin]\nvalue = \"12\"",
            "pin",
        ),
        (
            "kind = \"cps3\"\ntoken_serial = \"9900000001\"\n[pin]\nvalue = \"1234\"\ntries_left = 4",
            "pin",
        ),
    ] {
        let err = CardImage::from_toml(toml, &mut no_files).unwrap_err().to_string();
        assert!(err.contains(field), "{err}");
    }
    assert!(CardImage::from_toml("kind = \"cps9\"\ntoken_serial = \"1\"", &mut no_files).is_err());
    assert!(
        CardImage::from_toml(
            "kind = \"cps3\"\ntoken_serial = \"99000000\"\nbogus = 1",
            &mut no_files
        )
        .is_err()
    );
}

#[test]
fn default_pan_has_a_luhn_digit() {
    let image = CardImage::from_toml("kind = \"cps3\"\ntoken_serial = \"9900000001\"", &mut |_| {
        Ok(Vec::new())
    })
    .unwrap();
    // 8025000001 00000001 + Luhn 5 + F
    assert_eq!(
        hex::encode_upper(image.pan),
        "802500000100000001 5F".replace(' ', "")
    );
}

#[test]
fn the_cps4_image_loads_with_its_objects() {
    let image = CardImage::load(dir().join("cps4-doctor/card.toml")).unwrap();
    assert_eq!(image.kind, CardKind::Cps4);
    assert_eq!(image.atr, facts::ATR_CPS4);
    assert_eq!(image.token_label, "CPS4v1-9900000006");
    let card = Cps4Card::new(&image);
    assert_eq!(card.protocol(), Protocol::T1);
    assert_eq!(
        card.file(&[0x3F00, 0x0001, 0xA001]),
        image.sign.as_ref().map(|k| &k.cert[..])
    );
    assert_eq!(
        card.file(&[0x3F00, 0x0001, 0xA002]),
        image.auth.as_ref().map(|k| &k.cert[..])
    );
    assert_eq!(card.file(&[0x3F00, 0xD003]).map(|v| v.len()), Some(12));
    assert_eq!(
        (card.tries_left(0x01), card.tries_left(0x02)),
        (Some(3), Some(10))
    );
    let labels: Vec<&str> = image.data.iter().map(|d| d.label.as_str()).collect();
    for want in [
        "CPS_DATA",
        "CPS_NAME_PS",
        "CPS_ACTIVITY_01_PS",
        "CPS2TER_ATR",
        "CPS2TER_ID",
        "CPS2TER_ICC",
        "CPS2TER_NAME",
        "CPS2TER_LANG",
        "CPS2TER_PSINFO",
        "CPS2TER_DIRAMO",
    ] {
        assert!(labels.contains(&want), "{want} missing");
    }
    let cps_data = image.data.iter().find(|d| d.label == "CPS_DATA").unwrap();
    assert!(cps_data.writable && !cps_data.modifiable);
    // card_from_image picks the model from the kind
    assert_eq!(card_from_image(&image).kind(), CardKind::Cps4);
    let cps3 = CardImage::load(dir().join("cps3-doctor/card.toml")).unwrap();
    assert_eq!(card_from_image(&cps3).kind(), CardKind::Cps3);
    // the other two ATRs: T=1 (RC) and T=0 only
    for (atr, protocol) in [
        (&facts::ATR_CPS4_RC[..], Protocol::T1),
        (&facts::ATR_CPS4_T0[..], Protocol::T0),
    ] {
        let mut i = image.clone();
        i.atr = atr.to_vec();
        let c = Cps4Card::new(&i);
        assert_eq!((c.atr(), c.protocol()), (atr.to_vec(), protocol));
    }
}

/// The test-only stub generation's card (`cps5-test`): the ChipDoc model behind its own ATR and
/// applet AID, with 6–8 digit PINs.
#[test]
fn the_test_stub_card_has_its_own_atr_aid_and_pin_length() {
    let toml = |pin: &str| {
        format!(
            "kind = \"cps5-test\"\ntoken_serial = \"9900000055\"\n[pin]\nvalue = \"{pin}\"\n\
             [puk]\nvalue = \"12345678\"\n"
        )
    };
    let no_files =
        &mut |name: &str| -> Result<Vec<u8>, cpx_emulator::ImageError> { panic!("no file {name}") };
    // A 4-digit PIN, the CPS4's shortest, is not a stub PIN.
    assert!(CardImage::from_toml(&toml("1234"), no_files).is_err());
    let image = CardImage::from_toml(&toml("123456"), no_files).unwrap();
    assert_eq!(image.kind, CardKind::Cps5Test);
    assert_eq!(image.token_label, "CPS5TEST-9900000055");
    assert_ne!(image.atr, facts::ATR_CPS4);
    let mut card = card_from_image(&image);
    assert_eq!(card.kind(), CardKind::Cps5Test);
    assert_eq!(card.atr(), cpx_emulator::choices::TEST_STUB.atr);
    let select = |aid: &[u8]| [&[0x01, 0xA4, 0x04, 0x0C, aid.len() as u8][..], aid].concat();
    // The ChipDoc AID names no applet of this card; the stub's does.
    assert_ne!(card.transmit(&select(&facts::cps4::AID_CHIPDOC)), [0x90, 0x00]);
    assert_eq!(
        card.transmit(&select(&cpx_emulator::choices::TEST_STUB.aid)),
        [0x90, 0x00]
    );
    // VERIFY with the 6-digit PIN on channel 1.
    assert_eq!(
        card.transmit(&[&[0x01, 0x20, 0x00, 0x01, 0x06][..], b"123456"].concat()),
        [0x90, 0x00]
    );
}
