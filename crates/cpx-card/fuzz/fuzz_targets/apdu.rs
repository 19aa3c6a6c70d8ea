//! cpx-apdu on arbitrary bytes: response and command decoding and the BER-TLV reader never
//! panic (issue 9: APDU responses and TLV).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = cpx_apdu::Response::from_bytes(data);
    let _ = cpx_apdu::Command::from_bytes(data);
    let _ = cpx_apdu::tlv::parse_all(data);
    let _ = cpx_apdu::tlv::validate(data);
    let _ = cpx_apdu::tlv::find_path(data, &[0x62, 0x80]);
});
