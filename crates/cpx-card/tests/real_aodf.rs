//! The driver against a CPS3 whose AODF is the real card's (GH#2224, brief of issue 4): the
//! emulated CPS3 with its AODF replaced on the wire. VERIFY must be padded to 8 with FF.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use cpx_card::{Card, CardError, Pin, PinKind};
use cpx_transport_virtual::VirtualChannel;
use cpx_vpcd::VirtualCard;

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut v = vec![tag, content.len() as u8];
    v.extend_from_slice(content);
    v
}

fn pin_entry(label: &str, auth_id: u8, flags: &[u8], lens: [u8; 3], reference: u8) -> Vec<u8> {
    let attrs = [
        flags,
        &[0x0A, 0x01, 0x01],
        &[0x02, 0x01, lens[0], 0x02, 0x01, lens[1], 0x02, 0x01, lens[2]],
        &[0x80, 0x01, reference],
        &[0x04, 0x01, 0xFF],
    ]
    .concat();
    tlv(
        0x30,
        &[
            tlv(
                0x30,
                &[tlv(0x0C, label.as_bytes()), vec![0x03, 0x01, 0x08]].concat(),
            ),
            tlv(0x30, &tlv(0x04, &[auth_id])),
            tlv(0xA1, &tlv(0x30, &attrs)),
        ]
        .concat(),
    )
}

fn real_aodf() -> Vec<u8> {
    [
        pin_entry(
            "Code porteur de la carte CPX",
            0x01,
            &[0x03, 0x03, 0x04, 0x0C, 0x10],
            [4, 8, 4],
            0x01,
        ),
        pin_entry(
            "Code de déblocage de la carte CPS",
            0x04,
            &[0x03, 0x02, 0x03, 0x08],
            [8, 8, 8],
            0x02,
        ),
    ]
    .concat()
}

/// Serves the real AODF for 3F00/0001/7001, answers VERIFY itself, forwards the rest.
struct RealAodf {
    inner: Box<dyn VirtualCard>,
    aodf_selected: bool,
    verifies: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl VirtualCard for RealAodf {
    fn atr(&self) -> Vec<u8> {
        self.inner.atr()
    }
    fn power_on(&mut self) {
        self.inner.power_on();
    }
    fn transmit(&mut self, apdu: &[u8]) -> Vec<u8> {
        let aodf = real_aodf();
        if apdu.starts_with(&[0x00, 0xA4, 0x09, 0x04, 0x06, 0x3F, 0x00, 0x00, 0x01, 0x70, 0x01]) {
            self.aodf_selected = true;
            let mut r = tlv(0x62, &[0x80, 0x02, 0x00, aodf.len() as u8]);
            r.extend_from_slice(&[0x90, 0x00]);
            return r;
        }
        if self.aodf_selected && apdu[1] == 0xB0 {
            let off = usize::from(u16::from_be_bytes([apdu[2], apdu[3]]));
            let mut r = aodf[off..(off + usize::from(apdu[4])).min(aodf.len())].to_vec();
            r.extend_from_slice(&[0x90, 0x00]);
            return r;
        }
        self.aodf_selected = false;
        if apdu[1] == 0x20 && apdu.len() > 5 {
            self.verifies.lock().unwrap().push(apdu.to_vec());
            return vec![0x90, 0x00];
        }
        self.inner.transmit(apdu)
    }
}

#[test]
fn verify_is_padded_as_the_real_aodf_says() {
    let verifies = Arc::new(Mutex::new(Vec::new()));
    let card = RealAodf {
        inner: emulated("cps3-doctor"),
        aodf_selected: false,
        verifies: Arc::clone(&verifies),
    };
    let (channel, _control) = VirtualChannel::new("real aodf", Box::new(card));
    let mut card = Card::open(Box::new(channel)).unwrap();
    // maxLength 4: a 5-digit PIN never reaches the card.
    assert!(matches!(
        card.verify_pin(&Pin::new("12345")),
        Err(CardError::PinFormat { .. })
    ));
    card.verify_pin(&Pin::new("1234")).unwrap();
    card.verify(PinKind::Puk, &Pin::new("12345678")).unwrap();
    let sent = verifies.lock().unwrap().clone();
    assert_eq!(hex(&sent[0]), "00 20 00 01 08 31 32 33 34 FF FF FF FF");
    // The PUK (found by reference 02 / as the PIN's protector) is not padded (8 = stored length).
    assert_eq!(hex(&sent[1]), "00 20 00 02 08 31 32 33 34 35 36 37 38");
}
