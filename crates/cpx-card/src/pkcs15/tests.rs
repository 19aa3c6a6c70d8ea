//! PKCS#15 parsing of the real CPS3 encodings (brief of issue 4, GH#2224).

use super::*;
use crate::pin::{Pin, PinKind, PinType};

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    if content.len() < 0x80 {
        v.push(content.len() as u8);
    } else {
        v.push(0x81);
        v.push(content.len() as u8);
    }
    v.extend_from_slice(content);
    v
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// The real AODF shape: flags `03 01 08`, PIN initialized + needs-padding + bit 11, min 4,
/// stored 8, max 4, ref 01, padChar FF; PUK authId 04, ref 02, 8/8/8, not flagged unblocking.
fn real_aodf() -> Vec<u8> {
    let pin = tlv(
        0x30,
        &cat(&[
            &tlv(
                0x30,
                &cat(&[
                    &tlv(0x0C, "Code porteur de la carte CPX".as_bytes()),
                    &[0x03, 0x01, 0x08],
                    &tlv(0x04, &[0x04]),
                ]),
            ),
            &tlv(0x30, &tlv(0x04, &[0x01])),
            &tlv(
                0xA1,
                &tlv(
                    0x30,
                    &cat(&[
                        &[0x03, 0x03, 0x04, 0x0C, 0x10],
                        &[0x0A, 0x01, 0x01],
                        &[0x02, 0x01, 0x04, 0x02, 0x01, 0x08, 0x02, 0x01, 0x04],
                        &[0x80, 0x01, 0x01],
                        &[0x04, 0x01, 0xFF],
                    ]),
                ),
            ),
        ]),
    );
    let puk = tlv(
        0x30,
        &cat(&[
            &tlv(
                0x30,
                &cat(&[
                    &tlv(0x0C, "Code de déblocage de la carte CPS".as_bytes()),
                    &[0x03, 0x01, 0x08],
                ]),
            ),
            &tlv(0x30, &tlv(0x04, &[0x04])),
            &tlv(
                0xA1,
                &tlv(
                    0x30,
                    &cat(&[
                        &[0x03, 0x02, 0x03, 0x08],
                        &[0x0A, 0x01, 0x01],
                        &[0x02, 0x01, 0x08, 0x02, 0x01, 0x08, 0x02, 0x01, 0x08],
                        &[0x80, 0x01, 0x02],
                        &[0x04, 0x01, 0xFF],
                    ]),
                ),
            ),
        ]),
    );
    cat(&[&pin, &puk])
}

#[test]
fn real_cps3_aodf_gives_the_padded_verify() {
    let objects = aodf::parse(&real_aodf()).unwrap();
    assert_eq!(objects.len(), 2);
    let pin = &objects[0];
    assert_eq!(pin.common.label, "Code porteur de la carte CPX");
    assert_eq!(pin.flags, (1 << 4) | (1 << 5) | (1 << 11));
    let p = &pin.policy;
    assert_eq!(
        (p.min_len, p.stored_len, p.max_len, p.reference, p.pad_char),
        (4, 8, 4, 1, 0xFF)
    );
    assert!(p.needs_padding);
    assert_eq!(p.pin_type, PinType::AsciiNumeric);
    let value = p.format(PinKind::User, &Pin::new("1234")).unwrap();
    let verify = crate::commands::verify(0x00, p.reference, &value).unwrap();
    assert_eq!(
        &verify.to_bytes()[..],
        &[
            0x00, 0x20, 0x00, 0x01, 0x08, 0x31, 0x32, 0x33, 0x34, 0xFF, 0xFF, 0xFF, 0xFF
        ]
    );
    assert!(
        p.format(PinKind::User, &Pin::new("12345")).is_err(),
        "maxLength 4 wins"
    );
    let puk = &objects[1];
    assert_eq!(puk.common.label, "Code de déblocage de la carte CPS");
    assert_eq!(puk.auth_id, [0x04]);
    assert_eq!(
        (
            puk.policy.min_len,
            puk.policy.stored_len,
            puk.policy.max_len,
            puk.policy.reference
        ),
        (8, 8, 8, 2)
    );
    assert!(!puk.policy.needs_padding);
}

#[test]
fn cdf_entry_with_the_real_flags() {
    let entry = tlv(
        0x30,
        &cat(&[
            &tlv(
                0x30,
                &cat(&[
                    &tlv(0x0C, b"Certificat de Signature CPS"),
                    &[0x03, 0x02, 0x08, 0x00],
                ]),
            ),
            &tlv(0x30, &tlv(0x04, &[0xE8, 0x28, 0x01])),
            &tlv(
                0xA1,
                &tlv(
                    0x30,
                    &tlv(0x30, &tlv(0x04, &[0x3F, 0x00, 0x00, 0x01, 0xA0, 0x01])),
                ),
            ),
        ]),
    );
    let certs = cdf::parse(&entry).unwrap();
    assert_eq!(certs[0].common.label, "Certificat de Signature CPS");
    assert!(!certs[0].common.private);
    assert_eq!(certs[0].path.fids(), [0x3F00, 0x0001, 0xA001]);
}

#[test]
fn malformed_objects_are_named() {
    let mut bad = real_aodf();
    bad.truncate(40);
    match aodf::parse(&bad) {
        Err(CardError::MalformedCardData { object, .. }) => assert!(object.starts_with("AODF"), "{object}"),
        other => panic!("{other:?}"),
    }
    // A PIN entry without pinType.
    let entry = tlv(
        0x30,
        &cat(&[
            &tlv(0x30, &tlv(0x0C, b"x")),
            &tlv(0x30, &tlv(0x04, &[0x01])),
            &tlv(
                0xA1,
                &tlv(0x30, &[0x03, 0x01, 0x00, 0x02, 0x01, 0x04, 0x02, 0x01, 0x04]),
            ),
        ]),
    );
    match aodf::parse(&entry) {
        Err(CardError::MalformedCardData { object, reason }) => {
            assert_eq!(object, "AODF entry 0");
            assert!(reason.contains("pinType"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        odf::parse(&[0xA0, 0x02, 0x30]),
        Err(CardError::MalformedCardData { .. })
    ));
    assert!(matches!(
        tokeninfo::parse(&[0x30, 0x00]),
        Err(CardError::MalformedCardData { .. })
    ));
}

/// A hostile card's text (issue 13 item 7): ESC [2J, NUL, a C1 CSI and invalid UTF-8 in the
/// TokenInfo label and manufacturerID and in an object label never come out raw.
#[test]
fn card_text_comes_out_without_controls() {
    let hostile: &[u8] = b"CPS3\x1b[2J\x00\xC2\x9B2J\xFF";
    let shown = "CPS3\u{FFFD}[2J\u{FFFD}\u{FFFD}2J\u{FFFD}";
    let ti = tlv(
        0x30,
        &cat(&[
            &tlv(0x02, &[0]),
            &tlv(0x04, &[0x99, 0x00]),
            &tlv(0x0C, hostile),
            &tlv(0x80, hostile),
        ]),
    );
    let ti = tokeninfo::parse(&ti).unwrap();
    assert_eq!(ti.label.as_deref(), Some(shown));
    assert_eq!(ti.manufacturer.as_deref(), Some(shown));
    let entry = tlv(
        0x30,
        &cat(&[
            &tlv(0x30, &tlv(0x0C, hostile)),
            &tlv(0x30, &tlv(0x04, &[0x01])),
            &tlv(0xA1, &tlv(0x30, &tlv(0x04, &[0x3F, 0x00]))),
        ]),
    );
    assert_eq!(cdf::parse(&entry).unwrap()[0].common.label, shown);
}
