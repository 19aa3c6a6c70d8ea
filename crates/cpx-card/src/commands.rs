//! One function per card command, building the exact bytes of docs/card-spec.md (openpgp-card style).
//! CPS3 commands use CLA 00 (CPS2ter volet A0); CPS4 commands CLA 01, logical channel 1 (docs/card-spec.md
//! §1.3). Case-4 commands carry Le 256; on T=0 the transport sends them without Le (docs/card-spec.md §8.1).

use cpx_apdu::{ApduError, Command, chain};

/// The IAS / ChipDoc AID (docs/card-spec.md §2.1).
pub const AID_CPS: [u8; 8] = [0x80, 0x25, 0x00, 0x00, 0x01, 0xFF, 0x01, 0x00];
/// PKCS#15 application, contact (docs/card-spec.md §2.1).
pub const AID_P15_CONTACT: [u8; 13] = [
    0xE8, 0x28, 0xBD, 0x08, 0x0F, 0x80, 0x25, 0x00, 0x00, 0x01, 0xFF, 0x00, 0x10,
];
/// PKCS#15 application, CPS3 contactless (docs/card-spec.md §2.1).
pub const AID_P15_CL: [u8; 13] = [
    0xE8, 0x28, 0xBD, 0x08, 0x0F, 0x80, 0x25, 0x00, 0x00, 0x01, 0xFF, 0x00, 0x20,
];
/// GlobalPlatform ISD, "IDS" (docs/card-spec.md §2.1).
pub const AID_ISD: [u8; 7] = [0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00];
/// CPS2ter applet (docs/card-spec.md §2.1).
pub const AID_CPS2TER: [u8; 8] = [0x80, 0x25, 0x00, 0x00, 0x01, 0xFF, 0x00, 0x02];

/// CLA of the CPS3 (basic channel).
pub const CLA_CPS3: u8 = 0x00;
/// CLA of the CPS4: logical channel 1 (docs/card-spec.md §1.3).
pub const CLA_CPS4: u8 = 0x01;
/// CLA of the CPS2ter volet (docs/card-spec.md §2.2).
pub const CLA_CPS2TER: u8 = 0xA0;

/// `00 A4 09 {04|0C} Lc <path with 3F00> [00]`: CPS3 select by path (docs/card-spec.md §2.2).
pub fn cps3_select_path(path: &[u8], fcp: bool) -> Result<Command, ApduError> {
    let cmd = Command::new(CLA_CPS3, 0xA4, 0x09, if fcp { 0x04 } else { 0x0C }).with_data(path)?;
    if fcp { cmd.with_le(256) } else { Ok(cmd) }
}

/// `00 A4 04 04 08 <CPS AID>` (case 3): the CPS3 re-select of docs/card-spec.md §2.3 (`do_select_cps_aid`).
pub fn cps3_select_cps_aid() -> Result<Command, ApduError> {
    Command::new(CLA_CPS3, 0xA4, 0x04, 0x04).with_data(AID_CPS)
}

/// `01 A4 08 00 Lc <path without 3F00> [00]`: CPS4 ISO select by path (docs/card-spec.md §2.2, §10.2). The
/// MF alone is `01 A4 00 00 02 3F00`.
pub fn cps4_select_path(path: &[u8], fci: bool) -> Result<Command, ApduError> {
    let rel = path.strip_prefix(&[0x3F, 0x00]).unwrap_or(path);
    let cmd = if rel.is_empty() {
        Command::new(CLA_CPS4, 0xA4, 0x00, 0x00).with_data([0x3F, 0x00])?
    } else {
        Command::new(CLA_CPS4, 0xA4, 0x08, 0x00).with_data(rel)?
    };
    if fci { cmd.with_le(256) } else { Ok(cmd) }
}

/// `<cla> A4 04 0C Lc <aid>`: select an applet, no FCI (docs/card-spec.md §1.3).
pub fn select_aid(cla: u8, aid: &[u8]) -> Result<Command, ApduError> {
    Command::new(cla, 0xA4, 0x04, 0x0C).with_data(aid)
}

/// `<cla> B0 <offset> <Le>`: READ BINARY (docs/card-spec.md §2.3, offset 15 bits).
pub fn read_binary(cla: u8, offset: u16, le: u16) -> Result<Command, ApduError> {
    let [p1, p2] = (offset & 0x7FFF).to_be_bytes();
    Command::new(cla, 0xB0, p1, p2).with_le(le)
}

/// `00 CB 3F FF 0A 4D 08 70 06 BF 81 <ref> 02 A0 80 00`: CPS3 PIN counters (docs/card-spec.md §3.2).
pub fn cps3_get_pin_data(reference: u8) -> Result<Command, ApduError> {
    Command::new(CLA_CPS3, 0xCB, 0x3F, 0xFF)
        .with_data([0x4D, 0x08, 0x70, 0x06, 0xBF, 0x81, reference, 0x02, 0xA0, 0x80])?
        .with_le(256)
}

/// `00 CB 3F FF 0A 4D 08 70 06 BF FB <n> 02 7B 80 00`: CPS3 security environment #n (docs/card-spec.md §9).
pub fn cps3_get_se_data(number: u8) -> Result<Command, ApduError> {
    Command::new(CLA_CPS3, 0xCB, 0x3F, 0xFF)
        .with_data([0x4D, 0x08, 0x70, 0x06, 0xBF, 0xFB, number, 0x02, 0x7B, 0x80])?
        .with_le(256)
}

/// `<cla> 20 00 <ref> Lc <PIN>`: VERIFY (docs/card-spec.md §3.2).
pub fn verify(cla: u8, reference: u8, pin: &[u8]) -> Result<Command, ApduError> {
    Command::new(cla, 0x20, 0x00, reference).with_data(pin)
}

/// `01 20 00 <ref>` (case 1): CPS4 tries-left query (docs/card-spec.md §3.2, §10.6).
pub fn verify_status(cla: u8, reference: u8) -> Command {
    Command::new(cla, 0x20, 0x00, reference)
}

/// `<cla> 24 <p1> <ref> Lc <data>`: CHANGE REFERENCE DATA; CPS3 P1 00 old ‖ new (docs/card-spec.md §3.2),
/// CPS4 P1 01 new only (docs/card-spec.md §10.7).
pub fn change_reference_data(cla: u8, p1: u8, reference: u8, data: &[u8]) -> Result<Command, ApduError> {
    Command::new(cla, 0x24, p1, reference).with_data(data)
}

/// `<cla> 20 FF <ref>` (case 1): VERIFY with P1 `FF` and no data, which resets the verified
/// state of the reference data (ISO/IEC 7816-4:2013 §11.5.6; the IAS-ECC and ChipDoc VERIFY of
/// docs/card-spec.md §3.2 with the ISO "logout" form). Used by [`crate::Card::logout`].
pub fn verify_reset(cla: u8, reference: u8) -> Command {
    Command::new(cla, 0x20, 0xFF, reference)
}

/// `<cla> 84 00 00 08`: GET CHALLENGE, 8 random bytes from the card (docs/card-spec.md §4.5).
pub fn get_challenge(cla: u8) -> Result<Command, ApduError> {
    Command::new(cla, 0x84, 0x00, 0x00).with_le(8)
}

/// `<cla> D6 <offset> Lc <data>`: UPDATE BINARY of the current EF (docs/card-spec.md §2.3: at most 255 bytes
/// per command, offset 15 bits; §5.4 CPS_DATA).
pub fn update_binary(cla: u8, offset: u16, data: &[u8]) -> Result<Command, ApduError> {
    let [p1, p2] = (offset & 0x7FFF).to_be_bytes();
    Command::new(cla, 0xD6, p1, p2).with_data(data)
}

/// `00 2C 02 <ref> Lc <new>`: CPS3 RESET RETRY COUNTER after the PUK was verified (docs/card-spec.md §3.2,
/// §9).
pub fn cps3_reset_retry_counter(reference: u8, new_pin: &[u8]) -> Result<Command, ApduError> {
    Command::new(CLA_CPS3, 0x2C, 0x02, reference).with_data(new_pin)
}

/// `01 2C 03 <ref|80>` (case 1): CPS4 unblock after the PUK was verified (docs/card-spec.md §10.8).
pub fn cps4_reset_retry_counter(reference: u8) -> Command {
    Command::new(CLA_CPS4, 0x2C, 0x03, reference | 0x80)
}

/// `00 22 41 AA 03 80 01 <alg>`: CPS3 MSE SET HT (docs/card-spec.md §4.2; 10 SHA-1, 40 SHA-256).
pub fn cps3_mse_hash(alg: u8) -> Result<Command, ApduError> {
    Command::new(CLA_CPS3, 0x22, 0x41, 0xAA).with_data([0x80, 0x01, alg])
}

/// `00 22 41 <crt> 06 80 01 <alg> 84 01 <key>`: CPS3 MSE SET DST (B6), AT (A4) or CT (B8), in the
/// official module's tag order (docs/card-spec.md §4.2, §4.3, §8.6, §8.7; tag 81 never sent).
pub fn cps3_mse(crt: u8, alg: u8, key: u8) -> Result<Command, ApduError> {
    Command::new(CLA_CPS3, 0x22, 0x41, crt).with_data([0x80, 0x01, alg, 0x84, 0x01, key])
}

/// `00 2A 90 A0 Lc 90 L1 <state ‖ bit count> 80 L2 <tail>`: CPS3 PSO HASH with the last bytes
/// finished on the card; `90 00` when nothing was hashed on the host (docs/card-spec.md §4.2).
pub fn cps3_pso_hash(state: Option<(&[u8], u64)>, tail: &[u8]) -> Result<Command, ApduError> {
    let mut data = vec![0x90];
    match state {
        Some((h, bits)) => {
            data.push((h.len() + 8) as u8);
            data.extend_from_slice(h);
            data.extend_from_slice(&bits.to_be_bytes());
        }
        None => data.push(0x00),
    }
    data.push(0x80);
    data.push(tail.len() as u8);
    data.extend_from_slice(tail);
    Command::new(CLA_CPS3, 0x2A, 0x90, 0xA0).with_data(data)
}

/// `<cla> 2A 9E 9A [Lc <hash>] 00`: PSO COMPUTE DIGITAL SIGNATURE, data-less after PSO HASH
/// (docs/card-spec.md §4.2) or carrying the hash (docs/card-spec.md §4.2, §4.4).
pub fn pso_cds(cla: u8, hash: Option<&[u8]>) -> Result<Command, ApduError> {
    let cmd = Command::new(cla, 0x2A, 0x9E, 0x9A);
    match hash {
        Some(h) => cmd.with_data(h)?.with_le(256),
        None => cmd.with_le(256),
    }
}

/// `00 88 00 00 Lc <data> 00`: CPS3 INTERNAL AUTHENTICATE, the card pads (docs/card-spec.md §4.3, §8.7).
pub fn cps3_internal_authenticate(data: &[u8]) -> Result<Command, ApduError> {
    Command::new(CLA_CPS3, 0x88, 0x00, 0x00)
        .with_data(data)?
        .with_le(256)
}

/// `<cla|10> 2A 80 86 FF …` / `<cla> 2A 80 86 Lc … 00`: PSO DECIPHER in 255-byte chained parts
/// (docs/card-spec.md §2.3, §4.3, §10.11). Le is 256, never the caller's buffer size (docs/card-spec.md
/// §10.11).
pub fn pso_decipher(cla: u8, data: &[u8]) -> Result<Vec<Command>, ApduError> {
    chain(cla, 0x2A, 0x80, 0x86, data, Some(256), 255)
}

/// `01 22 81 B6 04 91 02 <alg> <key|80>`: CPS4 MSE SET DST (docs/card-spec.md §4.4, §10.9, §10.10).
pub fn cps4_mse_dst(alg: u8, key: u8) -> Result<Command, ApduError> {
    Command::new(CLA_CPS4, 0x22, 0x81, 0xB6).with_data([0x91, 0x02, alg, key | 0x80])
}

/// `01 22 41 B8 03 83 01 <key>`: CPS4 MSE SET CT for raw RSA (docs/card-spec.md §4.4, §10.11).
pub fn cps4_mse_ct(key: u8) -> Result<Command, ApduError> {
    Command::new(CLA_CPS4, 0x22, 0x41, 0xB8).with_data([0x83, 0x01, key])
}

/// `A0 A4 00 00 02 <fid> [00]`: CPS2ter select, one element at a time (docs/card-spec.md §2.2).
pub fn cps2ter_select(fid: [u8; 2], last: bool) -> Result<Command, ApduError> {
    let cmd = Command::new(CLA_CPS2TER, 0xA4, 0x00, 0x00).with_data(fid)?;
    if last { cmd.with_le(256) } else { Ok(cmd) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(c: &Command) -> String {
        hex::encode_upper(c.to_bytes())
    }

    #[test]
    fn bytes_of_the_spec() {
        assert_eq!(
            hex(&cps3_select_path(&[0x3F, 0, 0xD0, 0x03], true).unwrap()),
            "00A40904043F00D00300"
        );
        assert_eq!(
            hex(&cps3_select_path(&[0x3F, 0, 0, 1], false).unwrap()),
            "00A4090C043F000001"
        );
        assert_eq!(
            hex(&cps3_get_pin_data(1).unwrap()),
            "00CB3FFF0A4D087006BF810102A08000"
        );
        assert_eq!(hex(&cps3_mse_hash(0x40).unwrap()), "002241AA03800140");
        assert_eq!(
            hex(&cps3_mse(0xB6, 0x42, 0x81).unwrap()),
            "002241B606800142840181"
        );
        assert_eq!(
            hex(&cps3_mse(0xA4, 0x02, 0x82).unwrap()),
            "002241A406800102840182"
        );
        assert_eq!(
            hex(&cps3_mse(0xB8, 0x1A, 0x82).unwrap()),
            "002241B80680011A840182"
        );
        assert_eq!(hex(&pso_cds(0, None).unwrap()), "002A9E9A00");
        assert_eq!(
            hex(&cps4_select_path(&[0x3F, 0, 0xD0, 0x03], true).unwrap()),
            "01A4080002D00300"
        );
        assert_eq!(hex(&cps4_mse_dst(0x2C, 0x20).unwrap()), "012281B60491022CA0");
        assert_eq!(hex(&cps4_mse_ct(0x20).unwrap()), "012241B803830120");
        assert_eq!(hex(&cps4_reset_retry_counter(1)), "012C0381");
        assert_eq!(hex(&verify_status(1, 2)), "01200002");
        assert_eq!(hex(&verify_reset(0, 1)), "0020FF01");
        assert_eq!(hex(&get_challenge(1).unwrap()), "0184000008");
        assert_eq!(
            hex(&update_binary(0, 0x0123, &[0xAA, 0xBB]).unwrap()),
            "00D60123".to_owned() + "02AABB"
        );
        // docs/card-spec.md §4.2 real example: empty prefix.
        let c = cps3_pso_hash(None, &[0xAB; 20]).unwrap();
        assert!(hex(&c).starts_with("002A90A01890008014AB"));
        let parts = pso_decipher(CLA_CPS4, &[7; 256]).unwrap();
        assert_eq!(hex(&parts[1]), "012A80860107".to_owned() + "00");
    }
}
