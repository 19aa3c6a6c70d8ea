//! Every PKCS#15 and response parser of cpx-card on arbitrary bytes: no panic.
#![no_main]

use cpx_card::pkcs15::{aodf, cdf, dir, dodf, odf, prkdf, tokeninfo};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
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
});
