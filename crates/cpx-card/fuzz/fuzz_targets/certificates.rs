//! cpx-profile on arbitrary bytes: the certificate parser, the business-data decoders and the
//! TLV decoder never panic (issue 9: certificates and TLV).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = cpx_profile::Certificate::from_der(data);
    let _ = cpx_profile::tlv::decode(data);
    for label in ["CPS_ID_CARD", "CPS_NAME_PS", "CPS_ACTIVITY_01_PS", "CPS_INFO_PS", "CPS_DATA"] {
        let _ = cpx_profile::business::decode(label, data);
    }
});
