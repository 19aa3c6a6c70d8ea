//! A card whose every reply comes from the fuzzer input (first byte: which ATR; then records of
//! `len ‖ bytes`), driven through every operation of the card layer: no panic.
#![no_main]

use cpx_card::{Card, HashAlg, KeyRole, Mechanism, Pin, PinKind};
use cpx_transport_virtual::VirtualChannel;
use libfuzzer_sys::fuzz_target;

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

struct Scripted {
    atr: Vec<u8>,
    data: Vec<u8>,
    at: usize,
}

impl cpx_vpcd::VirtualCard for Scripted {
    fn atr(&self) -> Vec<u8> {
        self.atr.clone()
    }
    fn transmit(&mut self, _apdu: &[u8]) -> Vec<u8> {
        let Some(&len) = self.data.get(self.at) else {
            return vec![0x90, 0x00];
        };
        let start = self.at + 1;
        let end = (start + usize::from(len)).min(self.data.len());
        self.at = end;
        self.data[start..end].to_vec()
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let card = Scripted {
        atr: ATRS[usize::from(which) % 3].to_vec(),
        data: rest.to_vec(),
        at: 0,
    };
    let (channel, _control) = VirtualChannel::new("fuzz", Box::new(card));
    let Ok(mut c) = Card::open(Box::new(channel)) else {
        return;
    };
    let _ = c.pin_status(PinKind::User);
    let _ = c.verify_pin(&Pin::new("1234"));
    let _ = c.certificates();
    let _ = c.sign(KeyRole::Signature, Mechanism::Pkcs1(HashAlg::Sha256), &[7; 100]);
    let _ = c.sign(KeyRole::Authentication, Mechanism::RsaPkcs, &[7; 35]);
    let _ = c.sign(KeyRole::Signature, Mechanism::Pss(HashAlg::Sha1), &[7; 10]);
    let _ = c.decrypt(KeyRole::Authentication, &[7; 256]);
    let _ = c.data_objects();
    let _ = c.read_data_object("CPS_SIT_FACT");
    let _ = c.ef_actua();
    let _ = c.change_pin(&Pin::new("1234"), &Pin::new("5678"));
    let _ = c.unblock_pin(&Pin::new("12345678"), &Pin::new("1234"));
});
