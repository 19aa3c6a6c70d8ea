//! Bytes the sources give (spec sections cited on each item). Nothing here is a choice: choices
//! live in [`crate::choices`].

use crate::image::CardKind;

/// CPS3 contact ATR (docs/card-spec.md §1.1 row 1). T=0 only.
pub const ATR_CPS3: [u8; 17] = [
    0x3B, 0xAC, 0x00, 0x40, 0x2A, 0x00, 0x12, 0x25, 0x00, 0x64, 0x80, 0x00, 0x03, 0x10, 0x00, 0x90, 0x00,
];
/// CPS3 contact ATR variant seen in pcsc-tools (docs/card-notes.md §2), matched only by masks.
pub const ATR_CPS3_VARIANT: [u8; 17] = [
    0x3B, 0xAC, 0x00, 0x40, 0x2A, 0x00, 0x12, 0x25, 0x00, 0x64, 0x80, 0x82, 0x02, 0x12, 0x00, 0x90, 0x00,
];
/// CPS3 contactless ATR (docs/card-spec.md §1.1 row 2).
pub const ATR_CPS3_CL: [u8; 20] = [
    0x3B, 0x8F, 0x80, 0x01, 0x00, 0x31, 0xB8, 0x64, 0x04, 0xB0, 0xEC, 0xC1, 0x73, 0x94, 0x01, 0x80, 0x82,
    0x90, 0x00, 0x0E,
];
/// CPS4 final ATR (docs/card-spec.md §1.1 row 4; T=0 and T=1, pcscd picks T=1, §10.1).
pub const ATR_CPS4: [u8; 17] = [
    0x3B, 0x9B, 0x18, 0x80, 0x01, 0x00, 0x12, 0x25, 0x00, 0x64, 0x80, 0x04, 0x01, 0x00, 0x00, 0x90, 0x44,
];
/// CPS4 "release candidate" ATR (docs/card-spec.md §1.1 row 3).
pub const ATR_CPS4_RC: [u8; 17] = [
    0x3B, 0x9B, 0x18, 0x80, 0x01, 0x00, 0x12, 0x25, 0x00, 0x64, 0x80, 0x00, 0x04, 0x01, 0x00, 0x90, 0x44,
];
/// CPS4 "RC, T=0 only" ATR (docs/card-spec.md §1.1 row 5).
pub const ATR_CPS4_T0: [u8; 17] = [
    0x3B, 0xDC, 0x18, 0xFF, 0x00, 0x00, 0x12, 0x25, 0x00, 0x64, 0x80, 0x00, 0x04, 0x01, 0x00, 0x90, 0x00,
];

/// The default ATR of a card kind.
pub fn default_atr(kind: CardKind) -> &'static [u8] {
    match kind {
        CardKind::Cps3 => &ATR_CPS3,
        CardKind::Cps3Contactless => &ATR_CPS3_CL,
        CardKind::Cps4 => &ATR_CPS4,
        CardKind::Cps5Test => &crate::choices::TEST_STUB.atr,
    }
}

/// ATR by name, for the `atr` field of `card.toml`.
pub fn named_atr(name: &str) -> Option<&'static [u8]> {
    Some(match name {
        "cps3" => &ATR_CPS3,
        "cps3-variant" => &ATR_CPS3_VARIANT,
        "cps3-contactless" => &ATR_CPS3_CL,
        "cps4" => &ATR_CPS4,
        "cps4-rc" => &ATR_CPS4_RC,
        "cps4-t0" => &ATR_CPS4_T0,
        _ => return None,
    })
}

/// IAS application AID, also the MF's DF name (docs/card-spec.md §2.1, EF.ATR §1.3).
pub const AID_IAS: [u8; 8] = [0x80, 0x25, 0x00, 0x00, 0x01, 0xFF, 0x01, 0x00];
/// PKCS#15 application, contact (docs/card-spec.md §2.1).
pub const AID_P15_CONTACT: [u8; 13] = [
    0xE8, 0x28, 0xBD, 0x08, 0x0F, 0x80, 0x25, 0x00, 0x00, 0x01, 0xFF, 0x00, 0x10,
];
/// PKCS#15 application, CPS3 contactless (docs/card-spec.md §2.1).
pub const AID_P15_CL: [u8; 13] = [
    0xE8, 0x28, 0xBD, 0x08, 0x0F, 0x80, 0x25, 0x00, 0x00, 0x01, 0xFF, 0x00, 0x20,
];
/// CPS2ter applet AID (docs/card-spec.md §2.1).
pub const AID_CPS2TER: [u8; 8] = [0x80, 0x25, 0x00, 0x00, 0x01, 0xFF, 0x00, 0x02];
/// GlobalPlatform issuer security domain ("IDS", docs/card-spec.md §2.1).
pub const AID_ISD: [u8; 7] = [0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00];

/// EF.ATR content of a real CPS3, stray leading 0x80 included (docs/card-spec.md §1.3, GH#2223).
pub const EF_ATR: [u8; 57] = [
    0x80, 0x43, 0x01, 0xB8, 0x46, 0x04, 0x04, 0xB0, 0xEC, 0xC1, 0x47, 0x03, 0x94, 0x01, 0x80, 0x4F, 0x08,
    0x80, 0x25, 0x00, 0x00, 0x01, 0xFF, 0x01, 0x00, 0xE0, 0x10, 0x02, 0x02, 0x01, 0x04, 0x02, 0x02, 0x01,
    0x04, 0x02, 0x02, 0x01, 0x00, 0x02, 0x02, 0x01, 0x00, 0x78, 0x08, 0x06, 0x06, 0x2B, 0x81, 0x22, 0xF8,
    0x78, 0x02, 0x82, 0x02, 0x90, 0x00,
];

/// FCP of EF.SN.ICC on a real CPS3 (docs/card-spec.md §1.3, GH#2275).
pub const FCP_EF_SN_ICC: [u8; 39] = [
    0x62, 0x25, 0x80, 0x02, 0x00, 0x0C, 0x82, 0x01, 0x01, 0x83, 0x02, 0xD0, 0x03, 0x88, 0x01, 0xE0, 0xA1,
    0x12, 0x8C, 0x07, 0x7B, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x9C, 0x07, 0x7B, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0x00, 0x8A, 0x01, 0x05,
];

/// Access rules of the user PIN SDO, as in the real reply (docs/card-spec.md §3.2, GH#2275).
pub const PIN_SDO_ACL: [u8; 8] = [0x8C, 0x06, 0xF3, 0x00, 0x00, 0x13, 0xFF, 0x00];
/// Access rules of the PUK SDO on a real card (docs/card-spec.md §9, PR#2217 iasecc-tool output).
pub const PUK_SDO_ACL: [u8; 8] = [0x8C, 0x06, 0xF3, 0xFF, 0x00, 0xFF, 0xFF, 0x00];

/// The AODF `3F00/0001/7001` of a real CPS3, verbatim (GH#2224, `opensc-explorer` hex dump of a
/// real card; 189 bytes). Two PIN objects:
/// - "Code porteur de la carte CPS": common flags the non-DER BIT STRING `03 01 08`, common
///   authId 02, rules {execute always, update always, attribute with authId 04}; its own
///   authId 01; pinFlags `03 03 04 0C 10` = initialized + needs-padding + exchangeRefData (bit 11);
///   asciiNumeric; **minLength 4, storedLength 8, maxLength 4**; pinReference 01; **padChar FF**.
/// - "Code de déblocage de la carte CPS" (UTF-8): flags `03 01 08`, no common authId, rules
///   {execute always, update always}; authId **04**; pinFlags `03 03 04 1D 10` = unblock-disabled +
///   initialized + needs-padding + soPin + exchangeRefData; min/stored/max 8; pinReference 02.
///
/// So the CPS3 PIN is 4 digits stored as 8 bytes padded with FF, the PUK 8 digits: a driver
/// following the AODF sends `00 20 00 01 08 31 32 33 34 FF FF FF FF` (the §8.5 model card had no
/// needs-padding flag).
pub const AODF_CPS3: [u8; 189] = [
    0x30, 0x61, 0x30, 0x3F, 0x0C, 0x1C, 0x43, 0x6F, 0x64, 0x65, 0x20, 0x70, 0x6F, 0x72, 0x74, 0x65, 0x75,
    0x72, 0x20, 0x64, 0x65, 0x20, 0x6C, 0x61, 0x20, 0x63, 0x61, 0x72, 0x74, 0x65, 0x20, 0x43, 0x50, 0x53,
    0x03, 0x01, 0x08, 0x04, 0x01, 0x02, 0x30, 0x19, 0x30, 0x06, 0x03, 0x02, 0x05, 0x20, 0x05, 0x00, 0x30,
    0x06, 0x03, 0x02, 0x06, 0x40, 0x05, 0x00, 0x30, 0x07, 0x03, 0x02, 0x03, 0x08, 0x04, 0x01, 0x04, 0x30,
    0x03, 0x04, 0x01, 0x01, 0xA1, 0x19, 0x30, 0x17, 0x03, 0x03, 0x04, 0x0C, 0x10, 0x0A, 0x01, 0x01, 0x02,
    0x01, 0x04, 0x02, 0x01, 0x08, 0x02, 0x01, 0x04, 0x80, 0x01, 0x01, 0x04, 0x01, 0xFF, 0x30, 0x58, 0x30,
    0x39, 0x0C, 0x22, 0x43, 0x6F, 0x64, 0x65, 0x20, 0x64, 0x65, 0x20, 0x64, 0xC3, 0xA9, 0x62, 0x6C, 0x6F,
    0x63, 0x61, 0x67, 0x65, 0x20, 0x64, 0x65, 0x20, 0x6C, 0x61, 0x20, 0x63, 0x61, 0x72, 0x74, 0x65, 0x20,
    0x43, 0x50, 0x53, 0x03, 0x01, 0x08, 0x30, 0x10, 0x30, 0x06, 0x03, 0x02, 0x05, 0x20, 0x05, 0x00, 0x30,
    0x06, 0x03, 0x02, 0x06, 0x40, 0x05, 0x00, 0x30, 0x03, 0x04, 0x01, 0x04, 0xA1, 0x16, 0x30, 0x14, 0x03,
    0x03, 0x04, 0x1D, 0x10, 0x0A, 0x01, 0x01, 0x02, 0x01, 0x08, 0x02, 0x01, 0x08, 0x02, 0x01, 0x08, 0x80,
    0x01, 0x02,
];

/// The CPS3 PIN policy the real AODF fixes ([`AODF_CPS3`]): length bounds of the value (digits),
/// the stored length it is padded to, and the pad byte.
pub mod cps3_pin {
    /// User PIN (CHV 01): exactly 4 digits (minLength = maxLength = 4).
    pub const PIN_LEN: u8 = 4;
    /// PUK (CHV 02): exactly 8 digits.
    pub const PUK_LEN: u8 = 8;
    /// storedLength of both objects: what VERIFY / CHANGE / RESET RETRY COUNTER carry per value.
    pub const STORED_LEN: u8 = 8;
    /// padChar (needs-padding is set on both objects).
    pub const PAD_CHAR: u8 = 0xFF;
}

/// PIN label in the AODF, as on the real card (GH#2224 hex dump: "…carte CPS"; the issue's
/// `asn1` listing, quoted by docs/card-notes.md §4, shows "CPX", an edit of the reporter's).
pub const PIN_LABEL: &str = "Code porteur de la carte CPS";
/// PUK label in the AODF, as on the real card (GH#2224 hex dump, UTF-8 `C3 A9`).
pub const PUK_LABEL: &str = "Code de d\u{e9}blocage de la carte CPS";

/// CommonObjectAttributes `flags` of the real AODF entries: a one-byte BIT STRING whose
/// unused-bits byte is 08 (non-DER, GH#2224). Parsers that mask the count with 7 (OpenSC 0.22+
/// non-strict) read "no flags"; strict DER parsers refuse it.
pub const AODF_COMMON_FLAGS: [u8; 3] = [0x03, 0x01, 0x08];

/// The common part of a real CDF entry after its label (GH#2224, CDF `7005`): flags `03 02 08 00`
/// (non-DER: 8 unused bits), then accessControlRules {read always; update with authId 01}.
pub const CDF_COMMON_AFTER_LABEL: [u8; 23] = [
    0x03, 0x02, 0x08, 0x00, 0x30, 0x11, 0x30, 0x06, 0x03, 0x02, 0x07, 0x80, 0x05, 0x00, 0x30, 0x07, 0x03,
    0x02, 0x06, 0x40, 0x04, 0x01, 0x01,
];
/// Private key labels (docs/card-spec.md §5.3).
pub const LABEL_PRIV_SIG: &str = "CPS_PRIV_SIG";
/// Authentication key label (docs/card-spec.md §5.3).
pub const LABEL_PRIV_AUT: &str = "CPS_PRIV_AUT";
/// Contactless technical key label (docs/card-spec.md §5.3).
pub const LABEL_PRIV_TECH: &str = "CPS_PRIV_TECH_AUT";
/// Certificate labels (docs/card-spec.md §5.3).
pub const LABEL_CERT_SIG: &str = "Certificat de Signature CPS";
/// Authentication certificate label (docs/card-spec.md §5.3).
pub const LABEL_CERT_AUT: &str = "Certificat d'Authentification CPS";
/// Contactless technical certificate label (docs/card-spec.md §5.3).
pub const LABEL_CERT_TECH: &str = "Certificat Technique CPS";
/// TokenInfo manufacturerID (docs/card-spec.md §9, GH#2267).
pub const MANUFACTURER: &str = "ASIP SANTE";

/// Signature key reference (docs/card-spec.md §1.5).
pub const KEY_SIG: u8 = 0x81;
/// Authentication key reference (docs/card-spec.md §1.5).
pub const KEY_AUT: u8 = 0x82;

/// MSE algorithm references (docs/card-spec.md §4.2, §4.3, §9).
pub mod alg {
    /// HT SHA-1.
    pub const HASH_SHA1: u8 = 0x10;
    /// HT SHA-256.
    pub const HASH_SHA256: u8 = 0x40;
    /// DST SHA-1 + PKCS#1 v1.5.
    pub const SIG_SHA1: u8 = 0x12;
    /// DST SHA-256 + PKCS#1 v1.5.
    pub const SIG_SHA256: u8 = 0x42;
    /// AT PKCS#1 v1.5 client/server authentication.
    pub const AUTH_PKCS1: u8 = 0x02;
    /// CT PKCS#1 v1.5 decipher.
    pub const DECIPHER_PKCS1: u8 = 0x1A;
}

/// CPS4 (ChipDoc) facts (docs/card-spec.md §1.3, §1.5, §4.4, §10).
pub mod cps4 {
    /// ChipDoc applet AID, selected on logical channel 1 (docs/card-spec.md §1.3; the same bytes as the IAS
    /// AID).
    pub const AID_CHIPDOC: [u8; 8] = super::AID_IAS;
    /// Authentication key reference, fixed by the module (`CPS4_AUTH_PRIV_KEY_ID`, docs/card-spec.md §1.5).
    pub const KEY_AUT: u8 = 0x20;
    /// MSE `91` algorithm: SHA-1 + PKCS#1 v1.5 (docs/card-spec.md §4.4).
    pub const ALG_SHA1_PKCS1: u8 = 0x0A;
    /// MSE `91` algorithm: SHA-256 + PKCS#1 v1.5.
    pub const ALG_SHA256_PKCS1: u8 = 0x28;
    /// MSE `91` algorithm: SHA-1 + PSS.
    pub const ALG_SHA1_PSS: u8 = 0x15;
    /// MSE `91` algorithm: SHA-256 + PSS.
    pub const ALG_SHA256_PSS: u8 = 0x2C;
    /// Token label prefix (docs/card-spec.md §1.4, `CPS4v1-3100603746`).
    pub const LABEL_PREFIX: &str = "CPS4v1-";
}
