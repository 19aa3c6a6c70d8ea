//! Every card image in `test-vectors/cards` loads, and what the card serves is the image's data.

// Test code: failing loudly is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use cpx_emulator::{CardImage, CardKind, Cps3Card};
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
