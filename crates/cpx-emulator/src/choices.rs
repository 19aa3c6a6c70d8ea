//! Every behaviour the sources leave open ("not in sources"), in one place.
//!
//! Each constant says what was chosen and why (IAS-ECC / ISO 7816-4 practice). When a real trace
//! contradicts one of them, change it here; `CHOICES.md` at the crate root lists the same items
//! for readers who do not open the code.

/// A fresh VERIFY is **not** required before each PSO CDS with the signature key.
///
/// Reasons: the real PrKDF has no `userConsent` (GH#2267 dump), the Cryptolib implements no
/// CKA_ALWAYS_AUTHENTICATE (docs/card-spec.md §4.5), and the official sequence of docs/card-spec.md §8.6
/// signs after one login with no VERIFY in between. A card requiring it would still work with the official
/// module (it re-presents the cached PIN on 6982, docs/card-spec.md §3.3), so `card.toml` may set
/// `sig_key_fresh_verify = true` to exercise that path.
pub const SIG_KEY_FRESH_VERIFY: bool = false;

/// Security condition byte written in `8C`/`9C` for "user PIN" (IAS-ECC SCB `1n` = user
/// authentication in SE n; SE #2 holds the PIN CRT, as in the §9 model key SDOs).
pub const SCB_USER_PIN: u8 = 0x12;

/// TokenInfo lastUpdate when the image gives none (the value seen on a real card, docs/card-spec.md §9).
pub const DEFAULT_LAST_UPDATE: &str = "20100316110000Z";

/// DF 0002 (the contactless PKCS#15 application EF.DIR lists, real) holds its ODF and TokenInfo
/// only on an image with the technical key (`keys.tech`); without it the DF is empty (its ODF:
/// 6A82). An empty ODF would be a PKCS#15 application with nothing in it, which a real card (whose
/// technical key is always personalised) never shows, and OpenSC 0.23 binds such an empty
/// application, then serves the contact token from it (no objects, blank label).
pub const CL_APP_NEEDS_TECH_KEY: bool = true;

/// Contactless technical key reference (not public).
pub const KEY_TECH: u8 = 0x83;

/// File IDs not in the sources (docs/card-spec.md §1.4 point 6). DF 0001 files listed by the Cryptolib test
/// program are used where they exist: certificates A001/A002/A003, xDFs 7001–7006, 71xx.
pub mod fid {
    /// PKCS#15 application DF, contact (real, docs/card-spec.md §1.4).
    pub const APP_CONTACT: u16 = 0x0001;
    /// PKCS#15 application DF, contactless (inferred from `0002/{5031,5032}`).
    pub const APP_CL: u16 = 0x0002;
    /// ODF / TokenInfo (PKCS#15 defaults; selected by the module, docs/card-spec.md §1.4).
    pub const ODF: u16 = 0x5031;
    /// TokenInfo.
    pub const TOKEN_INFO: u16 = 0x5032;
    /// AODF (real, GH#2224).
    pub const AODF: u16 = 0x7001;
    /// PrKDF.
    pub const PRKDF: u16 = 0x7002;
    /// CDF (real, GH#2224).
    pub const CDF: u16 = 0x7005;
    /// DODF.
    pub const DODF: u16 = 0x7006;
    /// Contactless application xDFs, kept in DF 0001 (the test program lists 7102..7106 there).
    pub const PRKDF_CL: u16 = 0x7102;
    /// CDF of the contactless application.
    pub const CDF_CL: u16 = 0x7105;
    /// Signature certificate.
    pub const CERT_SIG: u16 = 0xA001;
    /// Authentication certificate.
    pub const CERT_AUT: u16 = 0xA002;
    /// Technical (contactless) certificate.
    pub const CERT_TECH: u16 = 0xA003;
}

/// Short file identifiers given to the MF EFs besides EF.SN.ICC (whose SFI 1C is real): ISO
/// 7816-4 defaults EF.DIR = 1E, EF.ATR = 1D.
pub const SFI_EF_DIR: u8 = 0x1E;
/// See [`SFI_EF_DIR`].
pub const SFI_EF_ATR: u8 = 0x1D;

/// Reply to GET DATA `…BF 90 0r 03 7F 48 80` (private key data): "an error such as 6A80 or 6B00"
/// per docs/card-spec.md §9; 6A80 chosen. Never 6A88, which breaks OpenSC.
pub const PRIVATE_KEY_DATA_SW: u16 = crate::apdu::sw::WRONG_DATA;

/// Security environment #2 content (AT CRT with CHV 01), the PIN's SE in our SCBs; SE #3 is the
/// docs/card-spec.md §9 value (CHV 02).
pub const SE2_CRT: [u8; 8] = [0xA4, 0x06, 0x83, 0x01, 0x01, 0x95, 0x01, 0x08];

/// GET RESPONSE with nothing pending: 6985 (conditions of use not satisfied).
pub const NOTHING_PENDING_SW: u16 = crate::apdu::sw::CONDITIONS_NOT_SATISFIED;

/// READ BINARY with Le beyond the end of the EF: T=0 answers `6Cxx` (exact length available, ISO
/// 7816-3 procedure), T=1 returns the bytes left with `6282`.
pub const READ_PAST_END_T0_USES_6C: bool = true;

/// PSO HASH accepts at most one 64-byte block after the intermediate state (the host keeps 1..64
/// bytes, docs/card-spec.md §4.2). Longer tails get 6A80.
pub const PSO_HASH_MAX_TAIL: usize = 64;

/// MSE SET rejects CRT tags other than 80 and 84 with 6A80 (tag 81 is "never sent to CPS3",
/// docs/card-spec.md §4.2: rejecting it catches a driver that sends it).
pub const MSE_STRICT_TAGS: bool = true;

/// Key used for an operation its SDO forbids (SCB FF, e.g. PSO CDS with CPS_PRIV_AUT), or an
/// MSE algorithm that does not fit the key: 6985 at PSO time, not 6982, so the official module
/// does not loop re-presenting the PIN (docs/card-spec.md §3.3).
pub const KEY_USE_FORBIDDEN_SW: u16 = crate::apdu::sw::CONDITIONS_NOT_SATISFIED;

/// File access "never": 6982, as for a missing PIN (IAS-ECC SCB FF gives security status not
/// satisfied on Oberthur cards).
pub const ACCESS_NEVER_SW: u16 = crate::apdu::sw::SECURITY_NOT_SATISFIED;

/// CPS4 (unpadded PINs, docs/card-spec.md §10): a wrong-length PIN presented to VERIFY counts as a wrong PIN
/// (63Cx), like any mismatch. (CPS3 padded objects: [`PIN_WRONG_LENGTH_SW`].)
pub const WRONG_LENGTH_PIN_COUNTS: bool = true;

/// CPS3 (padded PIN and PUK, [`crate::facts::AODF_CPS3`]): VERIFY whose data is not exactly the
/// stored length (8), CHANGE REFERENCE DATA P1 00 not 2 × 8 bytes, RESET RETRY COUNTER whose data
/// is not the sum of its blocks' stored lengths: **6700, counter unchanged**. IAS-ECC (ISO 7816-4
/// 6700 "wrong length"): the CHV SDO holds the reference data length and the card checks Lc
/// against it before comparing; nothing was compared, so no try is consumed. An unpadded
/// `00 20 00 01 04 31323334` (a driver ignoring needs-padding) therefore never burns a try.
pub const PIN_WRONG_LENGTH_SW: u16 = crate::apdu::sw::WRONG_LENGTH;

/// CPS3: a new PIN value (CHANGE REFERENCE DATA, RESET RETRY COUNTER; padding stripped) must be
/// 4 ASCII digits (AODF minLength = maxLength = 4, pinType asciiNumeric), followed only by the
/// pad byte FF; anything else 6A80 without consuming a try.
pub const NEW_PIN_DIGITS_ONLY: bool = true;

/// The CHV SDO policy `7F41 { 80 max, 81 min }` of a padded object reports `80` = the stored
/// length (8, the reference data the card receives) and `81` = minLength (4 PIN, 8 PUK): the
/// docs/card-spec.md §9 model values, unchanged. OpenSC 0.23 takes the smaller of this max and the AODF
/// maxLength (4) and pads with the AODF's storedLength.
pub const PIN_POLICY_MAX_IS_STORED_LEN: bool = true;

/// INTERNAL AUTHENTICATE input over 40 % of the modulus (INT §8.2.4): 6700.
pub const INT_AUTH_MAX_PERCENT: usize = 40;

/// GET CHALLENGE gives 8 bytes only (docs/card-spec.md §4.5 sends `84 00 00 08`); another Le gets `6C08` on
/// T=0 and `6700` on T=1. The bytes are deterministic (SHA-256 of PAN ‖ counter): an emulator
/// must be reproducible.
pub const CHALLENGE_LEN: usize = 8;

/// SELECT by the CPS2ter applet AID with CLA 00 on a CPS3: 6A82 (the CPS2ter volet answers to
/// CLA A0 without selection, docs/card-spec.md §2.2).
pub const CPS2TER_AID_ON_CPS3_SW: u16 = crate::apdu::sw::FILE_NOT_FOUND;

/// Selecting the GlobalPlatform ISD (`A0 00 00 01 51 00 00`) deselects the IAS application: any
/// further non-SELECT command with CLA 00 gets 6E00 until the IAS AID is selected again. This is
/// the situation the Cryptolib's "re-select on 6E00" quirk handles (docs/card-notes.md §7).
pub const ISD_DESELECTS_IAS: bool = true;

/// CPS2ter FCI returned under tag 85: size(2) ‖ FID(2) ‖ type(1), nothing more (docs/card-spec.md §2.2 gives
/// these 5 bytes; the rest of the real FCI is unknown).
pub const CPS2TER_FCI_LEN: usize = 5;

/// CPS2ter SELECT always answers `9Fxx` (GSM 11.11 heritage), intermediate path elements too.
pub const CPS2TER_SELECT_ALWAYS_9F: bool = true;

/// CPS2ter `CPS_SIT_FACT` content when the image gives none (layout not public, docs/data-and-certs.md §1.4).
pub const DEFAULT_SIT_FACT: [u8; 8] = [0x00, 0x01, 0x30, 0x31, 0x00, 0x00, 0x00, 0x00];

/// CPS4 AODF (generated, not public): the PUK object carries both `unblockingPin` and `soPin`
/// flags, so that a middleware can find it either as the user PIN's unblocking object or as the
/// SO PIN (docs/card-spec.md §3.2 C_Login(CKU_SO)). (The real CPS3 PUK has soPin without unblockingPin.)
pub const PUK_IS_SO_PIN: bool = true;

/// CPS4 AODF and CDF entries (not public) take what the real CPS3 ones show (GH#2224): PIN/PUK
/// labels, the non-DER common flags `03 01 08` ([`crate::facts::AODF_COMMON_FLAGS`]) and, for
/// certificates, the whole real common part ([`crate::facts::CDF_COMMON_AFTER_LABEL`]). The CPS4
/// PINs stay unpadded (docs/card-spec.md §10), so its AODF is still generated.
pub const CPS4_P15_AS_CPS3: bool = true;

/// Certificates share the private key IDs (AID ‖ 01 / 02). The Dehempe project (docs/data-and-certs.md §2.5)
/// hints at `…10` / `…20` IDs on a real card; not confirmed, and mismatching IDs would break key/certificate
/// pairing.
pub const CERT_IDS_MATCH_KEYS: bool = true;

/// On the contactless interface the PIN does not exist (docs/card-spec.md §7): PIN commands get 6A88.
pub const CL_PIN_SW: u16 = crate::apdu::sw::DATA_NOT_FOUND;

/// A command with CLA 01–03 (logical channels) on a CPS3: 6881.
pub const CPS3_CHANNEL_SW: u16 = crate::apdu::sw::CHANNEL_NOT_SUPPORTED;

/// Size of the writable CPS_DATA EF (padding with zeros, docs/card-spec.md §5.4).
pub const CPS_DATA_SIZE: usize = 128;

// ---------------------------------------------------------------------------------------------
// CPS4 (ChipDoc). The §10 model card's choices (docs/card-spec.md §10 preamble) are kept where it made one.

/// Signature key reference in the CPS4 PrKDF: 01, sent as `81` in MSE `91` (the §10 model's
/// choice, docs/card-spec.md §10 preamble and §10.9; not public).
pub const CPS4_KEY_SIG: u8 = 0x01;

/// Applet selected on the basic channel at power-on: the CPS2ter applet. CPS2ter-era terminals
/// never select an applet, so a CPS4 serving them must default to it on channel 0; and the
/// module's recovery sequence re-selects exactly it on channel 0 (docs/card-spec.md §1.3, §10.15). Its
/// consequence: CLA 00 commands other than SELECT by AID reach the CPS2ter applet, which answers
/// [`CPS4_OTHER_APPLET_SW`]; ChipDoc lives on channel 1 (or wherever it is selected).
pub const CPS4_DEFAULT_APPLET_AID: [u8; 8] = crate::facts::AID_CPS2TER;

/// Selecting the ChipDoc AID while the applet is active on another channel: 6985 (Java Card
/// runtime rule for a non-multiselectable applet). This is the "69 85 sur la CPS4" of fix 1722
/// (docs/card-spec.md §1.3); the §10.15 sequence (ISD on channel 1, CPS2ter on channel 0, ChipDoc on 1)
/// clears it. Re-selecting ChipDoc on its own channel keeps the verified PIN and the SE (only the current
/// file goes back to the MF); deselecting it (another applet on its channel, reset) clears them.
pub const CPS4_CHIPDOC_BUSY_SW: u16 = crate::apdu::sw::CONDITIONS_NOT_SATISFIED;

/// Any command but SELECT by AID sent to the ISD or the CPS2ter applet of a CPS4 (neither is
/// modelled), or a proprietary class sent to ChipDoc: 6E00, which triggers the module's generic
/// "re-select the AID and retry" (docs/card-spec.md §2.3). A command on a closed channel gets 6881 (Java
/// Card), which the module's PIN counter query also recovers from (docs/card-spec.md §3.2). MANAGE CHANNEL is
/// not modelled (6D00 from ChipDoc; the module never sends it, docs/card-spec.md §1.3).
pub const CPS4_OTHER_APPLET_SW: u16 = crate::apdu::sw::CLA_NOT_SUPPORTED;

/// The authentication key (0x20) signs with PSS through PSO CDS (docs/card-spec.md §10.10) and does raw RSA
/// through PSO DECIPHER (docs/card-spec.md §10.11), but refuses PKCS#1 v1.5 PSO CDS (algorithms 0A / 28): the
/// sources only show PKCS#1 v1.5 for this key through the host-padded raw path, and the module
/// never sends it (docs/card-spec.md §10.12). Refused with [`KEY_USE_FORBIDDEN_SW`] at PSO time.
pub const CPS4_AUTH_KEY_PKCS1_CDS: bool = false;

/// `01 24 01 01 Lc <new>` after `01 2C 03 81` (unblock, docs/card-spec.md §10.8) must succeed although the
/// user PIN is not verified: a verified PUK authorises setting the user PIN. Without it the module's
/// unblock could never work.
pub const CPS4_PUK_AUTHORISES_PIN_CHANGE: bool = true;

/// The CPS4 DODF does not flag CPS_DATA modifiable (docs/card-spec.md §6.1: the "900 block" of the CPS4
/// report is 4 rows shorter, i.e. no CPS_DATA with CKA_MODIFIABLE = TRUE was found), yet its EF takes
/// UPDATE BINARY after the PIN like on CPS3 (the image says `modifiable = false, writable = true`).
pub const CPS4_CPS_DATA_MODIFIABLE: bool = false;

/// EF.SN.ICC on CPS4 is `5A 0A` + 10-byte PAN, exactly as on CPS3: the module selects it, needs
/// size 12 and parses it with the common parser, which checks bytes 2..6 = `80 25 00 00 01`
/// (docs/card-spec.md §1.3). The unused CPS4 parser's "2 RFU bytes" cannot be in front (the file would be 14
/// bytes), so the PAN starts right after the tag and length.
pub const CPS4_EF_SN_ICC_AS_CPS3: bool = true;

/// CPS4 file IDs besides those of [`fid`] (shared with CPS3, as the §10 model did): business data
/// `D1xx` as on CPS3 (CPS_SIT_FACT D110), CPS2TER_* objects `D2xx` (ATR D201, ID D202, ICC D203,
/// NAME D204, LANG D205, PSINFO D206, DIRAMO D207, ACTIVITY_nn_PS D21F+nn). Given by the image.
pub const CPS4_CPS2TER_FID_BASE: u16 = 0xD200;

/// The test-only stub generation (`kind = "cps5-test"`, not a real card): the ChipDoc model with
/// another ATR and applet AID, and PINs of 6 to 8 digits. It mirrors cpx-card's
/// `generation/stub.rs` (feature `stub-generation`) on the wire only, as a real card would.
#[derive(Debug)]
pub struct TestStub {
    /// The CPS4 final ATR with historical byte 12 set to 05 (TCK adjusted).
    pub atr: [u8; 17],
    /// The applet AID, in place of the ChipDoc AID.
    pub aid: [u8; 8],
    /// The shortest PIN (the longest is 8, as on a CPS4).
    pub pin_min: u8,
}

/// See [`TestStub`].
pub const TEST_STUB: TestStub = TestStub {
    atr: [
        0x3B, 0x9B, 0x18, 0x80, 0x01, 0x00, 0x12, 0x25, 0x00, 0x64, 0x80, 0x00, 0x05, 0x01, 0x00, 0x90, 0x45,
    ],
    aid: [0x80, 0x25, 0x00, 0x00, 0x01, 0xFF, 0x05, 0x00],
    pin_min: 6,
};
