//! Reader features (PC/SC v2 part 10): what a reader can do beyond carrying APDUs, such as
//! secure PIN entry on its own keypad, and the control code that asks it to.
//!
//! A reader lists its features in its answer to the control command `CM_IOCTL_GET_FEATURE_REQUEST`
//! (see docs/reader-features.md): a sequence of TLV entries, each a one-byte feature tag, a length
//! byte of 4 and the feature's control code as a big-endian 32-bit integer. The answer comes from
//! the reader's driver, which may be buggy or hostile: [`ReaderFeatures::parse`] checks every
//! entry and fails with a precise error rather than guess.

use std::collections::BTreeMap;

use crate::TransportError;

/// A control code for `SCardControl`: where a reader expects one of its features to be asked for.
///
/// ```
/// use cpx_transport::ControlCode;
/// // pcsc-lite's SCARD_CTL_CODE(3400), docs/reader-features.md.
/// assert_eq!(ControlCode::GET_FEATURE_REQUEST.0, 0x4200_0D48);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ControlCode(pub u32);

impl ControlCode {
    /// `CM_IOCTL_GET_FEATURE_REQUEST`: pcsc-lite's `SCARD_CTL_CODE(3400)`, that is
    /// `0x42000000 + 3400` (pcsc-lite reader.h; docs/reader-features.md).
    pub const GET_FEATURE_REQUEST: ControlCode = ControlCode(0x4200_0000 + 3400);
}

impl std::fmt::Display for ControlCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "0x{:08X}", self.0)
    }
}

/// A reader feature: the tag of an entry in the answer to `CM_IOCTL_GET_FEATURE_REQUEST`.
///
/// The known tags are associated constants (PC/SC part 10 v2.02.09 §2.3, pcsc-lite reader.h;
/// docs/reader-features.md); any other tag a reader announces is kept as it is.
///
/// ```
/// use cpx_transport::Feature;
/// assert_eq!(Feature::VERIFY_PIN_DIRECT, Feature(0x06));
/// assert_eq!(Feature::VERIFY_PIN_DIRECT.name(), Some("FEATURE_VERIFY_PIN_DIRECT"));
/// assert_eq!(Feature(0x7F).name(), None);
/// assert_eq!(Feature(0x7F).to_string(), "feature 0x7F");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Feature(pub u8);

impl Feature {
    /// `FEATURE_VERIFY_PIN_START` (0x01).
    pub const VERIFY_PIN_START: Feature = Feature(0x01);
    /// `FEATURE_VERIFY_PIN_FINISH` (0x02).
    pub const VERIFY_PIN_FINISH: Feature = Feature(0x02);
    /// `FEATURE_MODIFY_PIN_START` (0x03).
    pub const MODIFY_PIN_START: Feature = Feature(0x03);
    /// `FEATURE_MODIFY_PIN_FINISH` (0x04).
    pub const MODIFY_PIN_FINISH: Feature = Feature(0x04);
    /// `FEATURE_GET_KEY_PRESSED` (0x05).
    pub const GET_KEY_PRESSED: Feature = Feature(0x05);
    /// `FEATURE_VERIFY_PIN_DIRECT` (0x06): the reader collects the PIN on its keypad and sends the
    /// VERIFY it is given a template of (`PIN_VERIFY_STRUCTURE`).
    pub const VERIFY_PIN_DIRECT: Feature = Feature(0x06);
    /// `FEATURE_MODIFY_PIN_DIRECT` (0x07): the same for a change of PIN (`PIN_MODIFY_STRUCTURE`).
    pub const MODIFY_PIN_DIRECT: Feature = Feature(0x07);
    /// `FEATURE_MCT_READER_DIRECT` (0x08).
    pub const MCT_READER_DIRECT: Feature = Feature(0x08);
    /// `FEATURE_MCT_UNIVERSAL` (0x09).
    pub const MCT_UNIVERSAL: Feature = Feature(0x09);
    /// `FEATURE_IFD_PIN_PROPERTIES` (0x0A): the keypad's properties (display, timeout).
    pub const IFD_PIN_PROPERTIES: Feature = Feature(0x0A);
    /// `FEATURE_ABORT` (0x0B).
    pub const ABORT: Feature = Feature(0x0B);
    /// `FEATURE_SET_SPE_MESSAGE` (0x0C).
    pub const SET_SPE_MESSAGE: Feature = Feature(0x0C);
    /// `FEATURE_VERIFY_PIN_DIRECT_APP_ID` (0x0D).
    pub const VERIFY_PIN_DIRECT_APP_ID: Feature = Feature(0x0D);
    /// `FEATURE_MODIFY_PIN_DIRECT_APP_ID` (0x0E).
    pub const MODIFY_PIN_DIRECT_APP_ID: Feature = Feature(0x0E);
    /// `FEATURE_WRITE_DISPLAY` (0x0F).
    pub const WRITE_DISPLAY: Feature = Feature(0x0F);
    /// `FEATURE_GET_KEY` (0x10).
    pub const GET_KEY: Feature = Feature(0x10);
    /// `FEATURE_IFD_DISPLAY_PROPERTIES` (0x11).
    pub const IFD_DISPLAY_PROPERTIES: Feature = Feature(0x11);
    /// `FEATURE_GET_TLV_PROPERTIES` (0x12): the reader's properties as a TLV list (PIN lengths,
    /// display, firmware).
    pub const GET_TLV_PROPERTIES: Feature = Feature(0x12);
    /// `FEATURE_CCID_ESC_COMMAND` (0x13).
    pub const CCID_ESC_COMMAND: Feature = Feature(0x13);
    /// `FEATURE_EXECUTE_PACE` (0x20).
    pub const EXECUTE_PACE: Feature = Feature(0x20);

    const NAMES: [(Feature, &'static str); 20] = [
        (Self::VERIFY_PIN_START, "FEATURE_VERIFY_PIN_START"),
        (Self::VERIFY_PIN_FINISH, "FEATURE_VERIFY_PIN_FINISH"),
        (Self::MODIFY_PIN_START, "FEATURE_MODIFY_PIN_START"),
        (Self::MODIFY_PIN_FINISH, "FEATURE_MODIFY_PIN_FINISH"),
        (Self::GET_KEY_PRESSED, "FEATURE_GET_KEY_PRESSED"),
        (Self::VERIFY_PIN_DIRECT, "FEATURE_VERIFY_PIN_DIRECT"),
        (Self::MODIFY_PIN_DIRECT, "FEATURE_MODIFY_PIN_DIRECT"),
        (Self::MCT_READER_DIRECT, "FEATURE_MCT_READER_DIRECT"),
        (Self::MCT_UNIVERSAL, "FEATURE_MCT_UNIVERSAL"),
        (Self::IFD_PIN_PROPERTIES, "FEATURE_IFD_PIN_PROPERTIES"),
        (Self::ABORT, "FEATURE_ABORT"),
        (Self::SET_SPE_MESSAGE, "FEATURE_SET_SPE_MESSAGE"),
        (Self::VERIFY_PIN_DIRECT_APP_ID, "FEATURE_VERIFY_PIN_DIRECT_APP_ID"),
        (Self::MODIFY_PIN_DIRECT_APP_ID, "FEATURE_MODIFY_PIN_DIRECT_APP_ID"),
        (Self::WRITE_DISPLAY, "FEATURE_WRITE_DISPLAY"),
        (Self::GET_KEY, "FEATURE_GET_KEY"),
        (Self::IFD_DISPLAY_PROPERTIES, "FEATURE_IFD_DISPLAY_PROPERTIES"),
        (Self::GET_TLV_PROPERTIES, "FEATURE_GET_TLV_PROPERTIES"),
        (Self::CCID_ESC_COMMAND, "FEATURE_CCID_ESC_COMMAND"),
        (Self::EXECUTE_PACE, "FEATURE_EXECUTE_PACE"),
    ];

    /// The feature's name in PC/SC part 10, if it is one the standard defines.
    pub fn name(self) -> Option<&'static str> {
        Self::NAMES
            .iter()
            .find(|(feature, _)| *feature == self)
            .map(|(_, name)| *name)
    }
}

impl std::fmt::Display for Feature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "feature 0x{:02X}", self.0),
        }
    }
}

/// The length every entry of a feature list announces: a 32-bit control code.
const CODE_LEN: u8 = 4;

/// What a reader can do beyond APDUs, and the control code of each feature.
///
/// Obtained from a channel with [`CardChannel::reader_features`](crate::CardChannel::reader_features)
/// (asked once per connection, then cached); a reader without part 10 support (vpcd, most
/// contactless readers) has none, which is no error.
///
/// ```
/// use cpx_transport::{ControlCode, Feature, ReaderFeatures};
///
/// // A PIN-pad reader's answer to CM_IOCTL_GET_FEATURE_REQUEST (libccid's codes).
/// let answer = [
///     0x06, 0x04, 0x42, 0x33, 0x00, 0x06, // VERIFY_PIN_DIRECT
///     0x07, 0x04, 0x42, 0x33, 0x00, 0x07, // MODIFY_PIN_DIRECT
///     0x12, 0x04, 0x42, 0x33, 0x00, 0x12, // GET_TLV_PROPERTIES
/// ];
/// let features = ReaderFeatures::parse(&answer)?;
/// assert_eq!(features.get(Feature::VERIFY_PIN_DIRECT), Some(ControlCode(0x4233_0006)));
/// assert!(features.has_pin_pad());
/// assert_eq!(features.get(Feature::IFD_PIN_PROPERTIES), None);
///
/// assert!(ReaderFeatures::parse(&[])?.is_empty());
/// assert!(ReaderFeatures::parse(&[0x06, 0x02, 0x42, 0x33]).is_err());
/// # Ok::<(), cpx_transport::TransportError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReaderFeatures {
    codes: BTreeMap<Feature, ControlCode>,
}

impl ReaderFeatures {
    /// A reader with no part 10 feature.
    pub fn none() -> Self {
        Self::default()
    }

    /// Parse a reader's answer to `CM_IOCTL_GET_FEATURE_REQUEST`.
    ///
    /// Every entry must be complete with a length of 4; a feature announced twice must carry the
    /// same code both times. Any other answer is [`TransportError::MalformedReaderAnswer`], naming
    /// the offset of the faulty entry: a reader that describes itself wrongly is not trusted with
    /// any of what it describes.
    pub fn parse(answer: &[u8]) -> Result<Self, TransportError> {
        let malformed =
            |offset: usize, problem: &'static str| TransportError::MalformedReaderAnswer { offset, problem };
        let mut codes = BTreeMap::new();
        let mut offset = 0;
        while offset < answer.len() {
            let entry = &answer[offset..];
            let (tag, len) = match entry {
                [tag, len, ..] => (Feature(*tag), *len),
                _ => return Err(malformed(offset, "an entry is cut short after its tag")),
            };
            if len != CODE_LEN {
                return Err(malformed(offset, "an entry's length is not 4"));
            }
            let Some(&[a, b, c, d]) = entry.get(2..6) else {
                return Err(malformed(offset, "an entry's control code is cut short"));
            };
            let code = ControlCode(u32::from_be_bytes([a, b, c, d]));
            if let Some(previous) = codes.insert(tag, code)
                && previous != code
            {
                return Err(malformed(
                    offset,
                    "a feature is announced twice with different codes",
                ));
            }
            offset += 6;
        }
        Ok(Self { codes })
    }

    /// The control code of `feature`, if the reader has it.
    pub fn get(&self, feature: Feature) -> Option<ControlCode> {
        self.codes.get(&feature).copied()
    }

    /// Whether the reader has `feature`.
    pub fn has(&self, feature: Feature) -> bool {
        self.codes.contains_key(&feature)
    }

    /// Whether the reader announced no feature at all.
    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }

    /// Whether the reader can collect a PIN on its keypad and send the VERIFY itself
    /// ([`Feature::VERIFY_PIN_DIRECT`]).
    pub fn has_pin_pad(&self) -> bool {
        self.has(Feature::VERIFY_PIN_DIRECT)
    }

    /// Every feature the reader announced, in tag order, with its control code.
    pub fn iter(&self) -> impl Iterator<Item = (Feature, ControlCode)> + '_ {
        self.codes.iter().map(|(f, c)| (*f, *c))
    }
}

/// What a reader says of its keypad and display in answer to [`Feature::GET_TLV_PROPERTIES`]
/// (PC/SC part 10 v2.02.09 §2.6.14; tags `PCSCv2_PART10_PROPERTY_*` of pcsc-lite reader.h;
/// docs/reader-features.md). Each field is `None` when the reader did not give it.
///
/// The answer is a TLV list with one-byte tags and lengths whose multi-byte values are
/// **little-endian** (unlike the feature list's codes).
///
/// ```
/// use cpx_transport::ReaderProperties;
///
/// // A class-3 reader: a 2×16 display, PIN 4 to 8 digits, vendor 0x08E6.
/// let answer = [
///     0x01, 0x02, 0x10, 0x02, // wLcdLayout: 0x0210
///     0x06, 0x01, 0x04, // bMinPINSize
///     0x07, 0x01, 0x08, // bMaxPINSize
///     0x0B, 0x02, 0xE6, 0x08, // wIdVendor
/// ];
/// let p = ReaderProperties::parse(&answer)?;
/// assert_eq!((p.min_pin_size, p.max_pin_size), (Some(4), Some(8)));
/// assert_eq!(p.lcd_layout, Some(0x0210));
/// assert_eq!(p.vendor_id, Some(0x08E6));
/// assert_eq!(p.firmware_id, None);
/// assert!(ReaderProperties::parse(&[0x06, 0x02, 0x04, 0x00]).is_err(), "bMinPINSize is one byte");
/// # Ok::<(), cpx_transport::TransportError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReaderProperties {
    /// `wLcdLayout` (1): `0` without a display, else lines in the high byte, characters per
    /// line in the low byte.
    pub lcd_layout: Option<u16>,
    /// `bEntryValidationCondition` (2): how the user ends the entry (bit 0 maximum length
    /// reached, bit 1 validation key, bit 2 timeout).
    pub entry_validation_condition: Option<u8>,
    /// `bTimeOut2` (3): seconds after the first key before the entry times out.
    pub timeout2: Option<u8>,
    /// `wLcdMaxCharacters` (4).
    pub lcd_max_characters: Option<u16>,
    /// `wLcdMaxLines` (5).
    pub lcd_max_lines: Option<u16>,
    /// `bMinPINSize` (6): the fewest digits the keypad accepts.
    pub min_pin_size: Option<u8>,
    /// `bMaxPINSize` (7): the most digits the keypad accepts.
    pub max_pin_size: Option<u8>,
    /// `sFirmwareID` (8), as the reader gives it (not necessarily text).
    pub firmware_id: Option<Vec<u8>>,
    /// `bPPDUSupport` (9): whether the reader takes commands through PPDU.
    pub ppdu_support: Option<u8>,
    /// `dwMaxAPDUDataSize` (10).
    pub max_apdu_data_size: Option<u32>,
    /// `wIdVendor` (11): the USB vendor id.
    pub vendor_id: Option<u16>,
    /// `wIdProduct` (12): the USB product id.
    pub product_id: Option<u16>,
}

impl ReaderProperties {
    /// Parse a reader's answer to [`Feature::GET_TLV_PROPERTIES`].
    ///
    /// Every entry must be complete; a known property must have its standard width (1, 2 or 4
    /// bytes, `sFirmwareID` any) and appear once. Unknown tags are skipped. Anything else is
    /// [`TransportError::MalformedReaderAnswer`] with the offset of the faulty entry.
    pub fn parse(answer: &[u8]) -> Result<Self, TransportError> {
        let malformed =
            |offset: usize, problem: &'static str| TransportError::MalformedReaderAnswer { offset, problem };
        let mut p = ReaderProperties::default();
        let mut offset = 0;
        while offset < answer.len() {
            let (tag, len) = match &answer[offset..] {
                [tag, len, ..] => (*tag, usize::from(*len)),
                _ => return Err(malformed(offset, "a property is cut short after its tag")),
            };
            let Some(value) = answer.get(offset + 2..offset + 2 + len) else {
                return Err(malformed(offset, "a property's value is cut short"));
            };
            let fresh = match tag {
                1 => set(&mut p.lcd_layout, le16(value)),
                2 => set(&mut p.entry_validation_condition, byte(value)),
                3 => set(&mut p.timeout2, byte(value)),
                4 => set(&mut p.lcd_max_characters, le16(value)),
                5 => set(&mut p.lcd_max_lines, le16(value)),
                6 => set(&mut p.min_pin_size, byte(value)),
                7 => set(&mut p.max_pin_size, byte(value)),
                8 => set(&mut p.firmware_id, Some(value.to_vec())),
                9 => set(&mut p.ppdu_support, byte(value)),
                10 => set(&mut p.max_apdu_data_size, le32(value)),
                11 => set(&mut p.vendor_id, le16(value)),
                12 => set(&mut p.product_id, le16(value)),
                _ => Ok(()),
            };
            match fresh {
                Ok(()) => {}
                Err(PropertyProblem::Width) => {
                    return Err(malformed(offset, "a property does not have its standard width"));
                }
                Err(PropertyProblem::Twice) => return Err(malformed(offset, "a property is given twice")),
            }
            offset += 2 + len;
        }
        Ok(p)
    }
}

/// Why a property entry was refused.
enum PropertyProblem {
    Width,
    Twice,
}

fn set<T>(slot: &mut Option<T>, value: Option<T>) -> Result<(), PropertyProblem> {
    let value = value.ok_or(PropertyProblem::Width)?;
    if slot.is_some() {
        return Err(PropertyProblem::Twice);
    }
    *slot = Some(value);
    Ok(())
}

fn byte(v: &[u8]) -> Option<u8> {
    match v {
        [b] => Some(*b),
        _ => None,
    }
}

fn le16(v: &[u8]) -> Option<u16> {
    match v {
        [a, b] => Some(u16::from_le_bytes([*a, *b])),
        _ => None,
    }
}

fn le32(v: &[u8]) -> Option<u32> {
    match v {
        [a, b, c, d] => Some(u32::from_le_bytes([*a, *b, *c, *d])),
        _ => None,
    }
}

/// The features a reader's answer to `CM_IOCTL_GET_FEATURE_REQUEST` gives, for
/// [`CardChannel::reader_features`](crate::CardChannel::reader_features): a reader that cannot
/// answer, or answers garbage, has none; only what the caller must act on anyway (the card reset
/// or gone, pcscd lost, a cancel) is an error.
pub(crate) fn from_answer(
    reader: &str,
    answer: Result<Vec<u8>, TransportError>,
) -> Result<ReaderFeatures, TransportError> {
    match answer {
        Ok(answer) => Ok(ReaderFeatures::parse(&answer).unwrap_or_else(|e| {
            log::debug!("{reader}: feature list ignored: {e}");
            ReaderFeatures::none()
        })),
        Err(e) if must_surface(&e) => Err(e),
        Err(e) => {
            log::debug!("{reader}: no reader features ({e})");
            Ok(ReaderFeatures::none())
        }
    }
}

fn must_surface(e: &TransportError) -> bool {
    matches!(e, TransportError::CardReset(_) | TransportError::Cancelled)
        || e.is_card_gone()
        || e.is_service_lost()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use proptest::prelude::*;

    fn entry(tag: u8, code: u32) -> Vec<u8> {
        let mut e = vec![tag, 4];
        e.extend_from_slice(&code.to_be_bytes());
        e
    }

    #[test]
    fn the_get_feature_request_code_is_pcsc_lites() {
        assert_eq!(pcsc::ctl_code(3400), ControlCode::GET_FEATURE_REQUEST.0.into());
    }

    #[test]
    fn a_pin_pad_readers_list_is_read_in_big_endian() {
        let answer = [
            entry(0x06, 0x4233_0006),
            entry(0x0A, 0x4233_000A),
            entry(0x12, 0x4233_0012),
        ]
        .concat();
        let f = ReaderFeatures::parse(&answer).unwrap();
        assert_eq!(f.get(Feature::VERIFY_PIN_DIRECT), Some(ControlCode(0x4233_0006)));
        assert_eq!(f.get(Feature::IFD_PIN_PROPERTIES), Some(ControlCode(0x4233_000A)));
        assert_eq!(f.get(Feature::GET_TLV_PROPERTIES), Some(ControlCode(0x4233_0012)));
        assert!(!f.has(Feature::MODIFY_PIN_DIRECT));
        assert!(f.has_pin_pad());
        assert_eq!(f.iter().count(), 3);
    }

    #[test]
    fn unknown_tags_are_kept() {
        let f = ReaderFeatures::parse(&entry(0xC0, 1)).unwrap();
        assert_eq!(f.get(Feature(0xC0)), Some(ControlCode(1)));
        assert!(!f.has_pin_pad());
    }

    #[test]
    fn malformed_lists_are_precise_errors() {
        let cases: [(&[u8], usize, &str); 5] = [
            (&[0x06], 0, "cut short after its tag"),
            (&[0x06, 0x02, 0x42, 0x33], 0, "length is not 4"),
            (&[0x06, 0x04, 0x42, 0x33, 0x00], 0, "control code is cut short"),
            (
                &[0x06, 0x04, 0, 0, 0, 1, 0x07, 0x05, 0, 0, 0, 0, 0],
                6,
                "length is not 4",
            ),
            (&[0x06, 0x04, 0, 0, 0, 1, 0x06, 0x04, 0, 0, 0, 2], 6, "twice"),
        ];
        for (answer, at, problem) in cases {
            match ReaderFeatures::parse(answer) {
                Err(TransportError::MalformedReaderAnswer { offset, problem: p }) => {
                    assert_eq!(offset, at, "{answer:02X?}");
                    assert!(p.contains(problem), "{answer:02X?}: {p}");
                }
                other => panic!("{answer:02X?}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_feature_repeated_with_the_same_code_is_accepted() {
        let answer = [entry(0x06, 7), entry(0x06, 7)].concat();
        assert_eq!(ReaderFeatures::parse(&answer).unwrap().iter().count(), 1);
    }

    #[test]
    fn readers_that_cannot_answer_have_no_features() {
        let unsupported = Err(TransportError::ControlUnsupported("r".into()));
        assert_eq!(from_answer("r", unsupported).unwrap(), ReaderFeatures::none());
        let other = Err(TransportError::Pcsc {
            call: "SCardControl",
            source: pcsc::Error::NotTransacted,
        });
        assert_eq!(from_answer("r", other).unwrap(), ReaderFeatures::none());
        assert_eq!(
            from_answer("r", Ok(vec![0x06, 0x01])).unwrap(),
            ReaderFeatures::none()
        );
        assert!(from_answer("r", Ok(entry(0x06, 1))).unwrap().has_pin_pad());
    }

    #[test]
    fn a_reset_or_a_removal_is_not_hidden() {
        for e in [
            TransportError::CardReset("r".into()),
            TransportError::CardRemoved("r".into()),
            TransportError::ReaderUnavailable("r".into()),
            TransportError::NoService,
        ] {
            assert!(from_answer("r", Err(e)).is_err());
        }
    }

    #[test]
    fn properties_are_little_endian_and_strict() {
        let answer = [
            0x0A, 0x04, 0x00, 0x01, 0x00, 0x00, // dwMaxAPDUDataSize 256
            0x0C, 0x02, 0x34, 0x12, // wIdProduct
            0x08, 0x03, b'1', b'.', b'0', // sFirmwareID
            0x02, 0x01, 0x02, // bEntryValidationCondition
            0x7E, 0x00, // unknown, empty: skipped
        ];
        let p = ReaderProperties::parse(&answer).unwrap();
        assert_eq!(p.max_apdu_data_size, Some(256));
        assert_eq!(p.product_id, Some(0x1234));
        assert_eq!(p.firmware_id.as_deref(), Some(&b"1.0"[..]));
        assert_eq!(p.entry_validation_condition, Some(2));
        assert_eq!(ReaderProperties::parse(&[]).unwrap(), ReaderProperties::default());

        let cases: [(&[u8], usize, &str); 4] = [
            (&[0x06], 0, "cut short after its tag"),
            (&[0x06, 0x01], 0, "value is cut short"),
            (&[0x06, 0x01, 0x04, 0x0B, 0x01, 0x08], 3, "standard width"),
            (&[0x06, 0x01, 0x04, 0x06, 0x01, 0x04], 3, "twice"),
        ];
        for (answer, at, problem) in cases {
            match ReaderProperties::parse(answer) {
                Err(TransportError::MalformedReaderAnswer { offset, problem: p }) => {
                    assert_eq!(offset, at, "{answer:02X?}");
                    assert!(p.contains(problem), "{answer:02X?}: {p}");
                }
                other => panic!("{answer:02X?}: {other:?}"),
            }
        }
    }

    proptest! {
        #[test]
        fn any_property_answer_parses_or_fails_without_panic(answer in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = ReaderProperties::parse(&answer);
        }

        #[test]
        fn any_answer_parses_or_fails_without_panic(answer in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = ReaderFeatures::parse(&answer);
        }

        #[test]
        fn well_formed_lists_round_trip(entries in proptest::collection::btree_map(any::<u8>(), any::<u32>(), 0..20)) {
            let answer: Vec<u8> = entries.iter().flat_map(|(t, c)| entry(*t, *c)).collect();
            let f = ReaderFeatures::parse(&answer).unwrap();
            let back: BTreeMap<u8, u32> = f.iter().map(|(t, c)| (t.0, c.0)).collect();
            prop_assert_eq!(back, entries);
        }

        #[test]
        fn a_list_cut_anywhere_inside_an_entry_is_rejected(
            entries in proptest::collection::btree_map(any::<u8>(), any::<u32>(), 1..10),
            cut in 1usize..6,
        ) {
            let answer: Vec<u8> = entries.iter().flat_map(|(t, c)| entry(*t, *c)).collect();
            let short = &answer[..answer.len() - cut];
            prop_assert!(ReaderFeatures::parse(short).is_err());
        }
    }
}
