//! The PIN structures of PC/SC part 10 (v2.02.09 §2.5; pcsc-lite `reader.h`) and how a reader
//! formats the digits typed on its keypad into the APDU template they carry.
//!
//! Everything here is pure: the structures come from the middleware (possibly hostile) and are
//! parsed strictly; the digits come from the [`keypad`](crate::keypad) script. The multi-byte
//! fields of the structures are little-endian (pcsc-lite's packed structs on the hosts it
//! runs on; libccid reads them so).
//!
//! Layout of `PIN_VERIFY_STRUCTURE` (19 bytes, then the APDU): `bTimerOut`, `bTimerOut2`,
//! `bmFormatString`, `bmPINBlockString`, `bmPINLengthFormat`, `wPINMaxExtraDigit` (2),
//! `bEntryValidationCondition`, `bNumberMessage`, `wLangId` (2), `bMsgIndex`, `bTeoPrologue` (3),
//! `ulDataLength` (4), `abData`.
//!
//! Layout of `PIN_MODIFY_STRUCTURE` (24 bytes, then the APDU): `bTimerOut`, `bTimerOut2`,
//! `bmFormatString`, `bmPINBlockString`, `bmPINLengthFormat`, `bInsertionOffsetOld`,
//! `bInsertionOffsetNew`, `wPINMaxExtraDigit` (2), `bConfirmPIN`, `bEntryValidationCondition`,
//! `bNumberMessage`, `wLangId` (2), `bMsgIndex1`, `bMsgIndex2`, `bMsgIndex3`, `bTeoPrologue` (3),
//! `ulDataLength` (4), `abData`.

use zeroize::Zeroizing;

use crate::keypad::KeyEntry;

/// Length of `PIN_VERIFY_STRUCTURE` before its APDU.
pub const VERIFY_HEADER_LEN: usize = 19;
/// Length of `PIN_MODIFY_STRUCTURE` before its APDU.
pub const MODIFY_HEADER_LEN: usize = 24;

/// The status words a PIN-pad reader answers itself, without the card (PC/SC part 10 §2.5;
/// libccid's `SW_*`): the card saw nothing, so no try is spent.
pub mod sw {
    /// The user typed nothing before the timeout.
    pub const TIMEOUT: [u8; 2] = [0x64, 0x00];
    /// The user pressed Cancel.
    pub const CANCELLED: [u8; 2] = [0x64, 0x01];
    /// The new PIN and its confirmation differ.
    pub const MISMATCH: [u8; 2] = [0x64, 0x02];
    /// The PIN typed is shorter or longer than the structure allows.
    pub const LENGTH_RANGE: [u8; 2] = [0x64, 0x03];
}

/// Why a structure from the middleware is refused (the driver then answers an error to
/// `SCardControl`, and the card sees nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StructureError {
    /// Shorter than its fixed header.
    TooShort {
        /// Bytes received.
        got: usize,
        /// Bytes the header needs.
        need: usize,
    },
    /// `ulDataLength` does not match the bytes that follow the header.
    DataLength {
        /// What `ulDataLength` says.
        announced: u32,
        /// What follows the header.
        actual: usize,
    },
    /// The APDU template is not a short command APDU `CLA INS P1 P2 Lc data` with Lc matching.
    ApduTemplate(&'static str),
    /// A formatting field is inconsistent or out of the template.
    Format(&'static str),
    /// Well formed, but something this emulated reader does not do.
    Unsupported(&'static str),
}

impl std::fmt::Display for StructureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooShort { got, need } => write!(f, "structure of {got} bytes, its header needs {need}"),
            Self::DataLength { announced, actual } => {
                write!(f, "ulDataLength says {announced} bytes, {actual} follow")
            }
            Self::ApduTemplate(why) => write!(f, "bad APDU template: {why}"),
            Self::Format(why) => write!(f, "bad PIN format: {why}"),
            Self::Unsupported(what) => write!(f, "not emulated: {what}"),
        }
    }
}

impl std::error::Error for StructureError {}

/// How a PIN is encoded (`bmFormatString` bits 1-0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// 00: binary.
    Binary,
    /// 01: BCD, one digit per nibble.
    Bcd,
    /// 10: ASCII, one digit per byte (`'0'`..`'9'`).
    Ascii,
}

impl Encoding {
    fn digit_bits(self) -> usize {
        match self {
            Encoding::Ascii => 8,
            Encoding::Bcd | Encoding::Binary => 4,
        }
    }
}

/// The formatting fields common to both structures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinFormat {
    /// `bmFormatString` bit 7: positions in bytes (else bits).
    pub byte_units: bool,
    /// `bmFormatString` bits 6-3: where the PIN goes, after Lc, in system units.
    pub pin_position: u8,
    /// `bmFormatString` bit 2: right-justified in its block (else left).
    pub right_justify: bool,
    /// `bmFormatString` bits 1-0.
    pub encoding: Encoding,
    /// `bmPINBlockString` bits 7-4: size of the PIN length field, in bits (0: none).
    pub length_bits: u8,
    /// `bmPINBlockString` bits 3-0: PIN block size in bytes (0: the PIN is appended with its
    /// own length and Lc is set accordingly).
    pub block_size: u8,
    /// `bmPINLengthFormat` bit 4: the length position is in bytes (else bits).
    pub length_byte_units: bool,
    /// `bmPINLengthFormat` bits 3-0: where the PIN length goes, after Lc.
    pub length_position: u8,
    /// `wPINMaxExtraDigit` high byte: fewest digits.
    pub min_digits: u8,
    /// `wPINMaxExtraDigit` low byte: most digits.
    pub max_digits: u8,
}

impl PinFormat {
    fn parse(format: u8, block: u8, length: u8, extra: u16) -> Result<Self, StructureError> {
        let encoding = match format & 0x03 {
            0 => Encoding::Binary,
            1 => Encoding::Bcd,
            2 => Encoding::Ascii,
            _ => return Err(StructureError::Format("bmFormatString encoding 11 is RFU")),
        };
        if encoding == Encoding::Binary {
            // Which bits a binary digit occupies is not pinned down by what we have read of
            // part 10 and libccid: refuse rather than guess (docs/pinpad-reader.md).
            return Err(StructureError::Unsupported("binary PIN encoding"));
        }
        let [min_digits, max_digits] = extra.to_be_bytes();
        if max_digits == 0 || min_digits > max_digits {
            return Err(StructureError::Format("wPINMaxExtraDigit: min > max or max = 0"));
        }
        if length & 0xE0 != 0 {
            return Err(StructureError::Format("bmPINLengthFormat bits 7-5 are RFU"));
        }
        let fmt = PinFormat {
            byte_units: format & 0x80 != 0,
            pin_position: (format >> 3) & 0x0F,
            right_justify: format & 0x04 != 0,
            encoding,
            length_bits: block >> 4,
            block_size: block & 0x0F,
            length_byte_units: length & 0x10 != 0,
            length_position: length & 0x0F,
            min_digits,
            max_digits,
        };
        if fmt.block_size > 0
            && usize::from(fmt.max_digits) * encoding.digit_bits() > usize::from(fmt.block_size) * 8
        {
            return Err(StructureError::Format(
                "the longest PIN allowed does not fit the PIN block",
            ));
        }
        if fmt.length_bits > 0 && usize::from(fmt.max_digits) >= 1usize << fmt.length_bits {
            return Err(StructureError::Format(
                "the longest PIN's length does not fit the length field",
            ));
        }
        Ok(fmt)
    }

    /// Bit offset, in the whole APDU, of the PIN block that starts `extra_bytes` after the
    /// position `bmFormatString` gives.
    fn pin_offset(&self, extra_bytes: u8) -> usize {
        let unit = if self.byte_units { 8 } else { 1 };
        5 * 8 + usize::from(self.pin_position) * unit + usize::from(extra_bytes) * 8
    }

    fn length_offset(&self, extra_bytes: u8) -> usize {
        let unit = if self.length_byte_units { 8 } else { 1 };
        5 * 8 + usize::from(self.length_position) * unit + usize::from(extra_bytes) * 8
    }

    /// Whether `n` digits is a length this structure accepts.
    pub fn accepts_len(&self, n: usize) -> bool {
        (usize::from(self.min_digits)..=usize::from(self.max_digits)).contains(&n)
    }
}

/// A parsed `PIN_VERIFY_STRUCTURE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyStructure {
    /// `bTimerOut`, seconds (0: the reader's default).
    pub timeout: u8,
    /// The formatting fields.
    pub format: PinFormat,
    /// `bEntryValidationCondition`.
    pub validation: u8,
    /// `bNumberMessage`.
    pub number_message: u8,
    /// The APDU template (`abData`).
    pub apdu: Vec<u8>,
}

/// A parsed `PIN_MODIFY_STRUCTURE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModifyStructure {
    /// `bTimerOut`, seconds (0: the reader's default).
    pub timeout: u8,
    /// The formatting fields (for both PINs).
    pub format: PinFormat,
    /// `bInsertionOffsetOld`: where the current PIN goes, bytes after the format's position.
    pub offset_old: u8,
    /// `bInsertionOffsetNew`: where the new PIN goes, bytes after the format's position.
    pub offset_new: u8,
    /// `bConfirmPIN`: bit 0, the new PIN is typed twice; bit 1, the current PIN is typed first.
    pub confirm: u8,
    /// `bNumberMessage`.
    pub number_message: u8,
    /// The APDU template (`abData`).
    pub apdu: Vec<u8>,
}

impl ModifyStructure {
    /// Whether the user types the current PIN first.
    pub fn asks_current(&self) -> bool {
        self.confirm & 0x02 != 0
    }
    /// Whether the user types the new PIN twice.
    pub fn asks_confirmation(&self) -> bool {
        self.confirm & 0x01 != 0
    }
}

fn u16_le(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn data_after(input: &[u8], header: usize) -> Result<Vec<u8>, StructureError> {
    if input.len() < header {
        return Err(StructureError::TooShort {
            got: input.len(),
            need: header,
        });
    }
    let at = header - 4;
    let announced = u32::from_le_bytes([input[at], input[at + 1], input[at + 2], input[at + 3]]);
    let actual = input.len() - header;
    if usize::try_from(announced).ok() != Some(actual) {
        return Err(StructureError::DataLength { announced, actual });
    }
    let apdu = input[header..].to_vec();
    match apdu.as_slice() {
        [_, _, _, _, lc, data @ ..] if usize::from(*lc) == data.len() => Ok(apdu),
        [_, _, _, _, _, ..] => Err(StructureError::ApduTemplate(
            "Lc does not match the data that follows",
        )),
        _ => Err(StructureError::ApduTemplate("shorter than CLA INS P1 P2 Lc")),
    }
}

/// Parse a `PIN_VERIFY_STRUCTURE` (the input of `FEATURE_VERIFY_PIN_DIRECT`).
///
/// ```
/// use cpx_ifd_pinpad::pin::parse_verify;
/// // CPS3 (docs/card-spec.md §3): 8-byte block, ASCII, left-justified, 4 to 8 digits.
/// let mut s = vec![30, 0, 0x82, 0x08, 0x00, 0x08, 0x04, 0x02, 0x01, 0x0C, 0x04, 0, 0, 0, 0, 13, 0, 0, 0];
/// s.extend([0x00, 0x20, 0x00, 0x01, 0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]);
/// let v = parse_verify(&s)?;
/// assert_eq!((v.format.min_digits, v.format.max_digits), (4, 8));
/// assert!(parse_verify(&s[..18]).is_err());
/// # Ok::<(), cpx_ifd_pinpad::pin::StructureError>(())
/// ```
pub fn parse_verify(input: &[u8]) -> Result<VerifyStructure, StructureError> {
    let apdu = data_after(input, VERIFY_HEADER_LEN)?;
    let format = PinFormat::parse(input[2], input[3], input[4], u16_le(input, 5))?;
    let s = VerifyStructure {
        timeout: input[0],
        format,
        validation: input[7],
        number_message: input[8],
        apdu,
    };
    check_layout(&s.format, &s.apdu, &[0])?;
    Ok(s)
}

/// Parse a `PIN_MODIFY_STRUCTURE` (the input of `FEATURE_MODIFY_PIN_DIRECT`).
pub fn parse_modify(input: &[u8]) -> Result<ModifyStructure, StructureError> {
    let apdu = data_after(input, MODIFY_HEADER_LEN)?;
    let format = PinFormat::parse(input[2], input[3], input[4], u16_le(input, 7))?;
    let s = ModifyStructure {
        timeout: input[0],
        format,
        offset_old: input[5],
        offset_new: input[6],
        confirm: input[9],
        number_message: input[11],
        apdu,
    };
    if s.confirm & 0xFC != 0 {
        return Err(StructureError::Format("bConfirmPIN bits 7-2 are RFU"));
    }
    if s.format.block_size == 0 && s.asks_current() {
        // Two appended PINs cannot be told apart in the command: a variable-length block is
        // only for a structure that inserts the new PIN alone (ChipDoc's `24 01`, the new PIN
        // typed and confirmed, docs/card-spec.md §10.7).
        return Err(StructureError::Unsupported(
            "a PIN change with the current PIN and a variable-length PIN block",
        ));
    }
    let mut offsets = vec![s.offset_new];
    if s.asks_current() {
        offsets.push(s.offset_old);
        let (a, b) = (usize::from(s.offset_old), usize::from(s.offset_new));
        if a.abs_diff(b) < usize::from(s.format.block_size) {
            return Err(StructureError::Format("the current and new PIN blocks overlap"));
        }
    }
    check_layout(&s.format, &s.apdu, &offsets)?;
    Ok(s)
}

/// Check that every PIN block (at each of `offsets`) and length field lies inside the template.
fn check_layout(fmt: &PinFormat, apdu: &[u8], offsets: &[u8]) -> Result<(), StructureError> {
    let apdu_bits = apdu.len() * 8;
    for &extra in offsets {
        let start = fmt.pin_offset(extra);
        if fmt.block_size == 0 {
            if start != apdu_bits {
                return Err(StructureError::Format(
                    "with a PIN block size of 0 the PIN is appended: its position must be the template's end",
                ));
            }
            if fmt.encoding != Encoding::Ascii {
                return Err(StructureError::Unsupported(
                    "a variable-length PIN block that is not ASCII",
                ));
            }
            if 5 + usize::from(apdu[4]) + usize::from(fmt.max_digits) > 5 + 255 {
                return Err(StructureError::Format("the longest PIN would overflow Lc"));
            }
        } else if start + usize::from(fmt.block_size) * 8 > apdu_bits {
            return Err(StructureError::Format(
                "the PIN block lies outside the APDU template",
            ));
        }
        if fmt.length_bits > 0 && fmt.length_offset(extra) + usize::from(fmt.length_bits) > apdu_bits {
            return Err(StructureError::Format(
                "the PIN length field lies outside the APDU template",
            ));
        }
    }
    Ok(())
}

/// Write `width` bits of `value` (most significant first) at bit `offset` of `buf`.
fn write_bits(buf: &mut [u8], offset: usize, width: usize, value: u32) {
    for i in 0..width {
        let bit = (value >> (width - 1 - i)) & 1;
        let at = offset + i;
        if let Some(byte) = buf.get_mut(at / 8) {
            let mask = 0x80u8 >> (at % 8);
            if bit == 1 {
                *byte |= mask;
            } else {
                *byte &= !mask;
            }
        }
    }
}

/// Put `digits` (values 0-9) into `apdu` as `fmt` says, the block `extra` bytes after the
/// format's position. The template's other bits (the padding) stay as the middleware sent them.
fn insert_pin(apdu: &mut Zeroizing<Vec<u8>>, fmt: &PinFormat, extra: u8, digits: &[u8]) {
    let digit_bits = fmt.encoding.digit_bits();
    let pin_bits = digits.len() * digit_bits;
    let start = fmt.pin_offset(extra);
    if fmt.block_size == 0 {
        // Appended (ASCII only, checked at parse): Lc grows by the PIN's length.
        apdu.extend(digits.iter().map(|d| b'0' + d));
        apdu[4] = apdu[4].wrapping_add(digits.len() as u8);
    } else {
        let block_bits = usize::from(fmt.block_size) * 8;
        let first = if fmt.right_justify {
            start + block_bits - pin_bits
        } else {
            start
        };
        for (i, d) in digits.iter().enumerate() {
            let value = match fmt.encoding {
                Encoding::Ascii => u32::from(b'0' + d),
                Encoding::Bcd | Encoding::Binary => u32::from(*d),
            };
            write_bits(apdu, first + i * digit_bits, digit_bits, value);
        }
    }
    if fmt.length_bits > 0 {
        write_bits(
            apdu,
            fmt.length_offset(extra),
            usize::from(fmt.length_bits),
            digits.len() as u32,
        );
    }
}

/// What the reader does after the user's entries: send this APDU to the card, or answer this
/// status word itself.
#[derive(Debug, PartialEq, Eq)]
pub enum PadOutcome {
    /// The formatted command, holding the PIN: zeroized when dropped.
    Send(Zeroizing<Vec<u8>>),
    /// The reader's own answer (timeout, cancel, length, mismatch); the card saw nothing.
    Answer([u8; 2]),
}

fn digits_or_answer<'a>(entry: &'a KeyEntry, fmt: &PinFormat) -> Result<&'a [u8], [u8; 2]> {
    match entry {
        KeyEntry::Timeout => Err(sw::TIMEOUT),
        KeyEntry::Cancel => Err(sw::CANCELLED),
        KeyEntry::Digits(d) if !fmt.accepts_len(d.len()) => Err(sw::LENGTH_RANGE),
        KeyEntry::Digits(d) => Ok(d),
    }
}

/// The VERIFY a reader sends after the user's `entry`, or its own answer.
///
/// ```
/// use cpx_ifd_pinpad::keypad::KeyEntry;
/// use cpx_ifd_pinpad::pin::{parse_verify, verify_apdu, PadOutcome};
/// let mut s = vec![30, 0, 0x82, 0x08, 0x00, 0x08, 0x04, 0x02, 0x01, 0x0C, 0x04, 0, 0, 0, 0, 13, 0, 0, 0];
/// s.extend([0x00, 0x20, 0x00, 0x01, 0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]);
/// let v = parse_verify(&s)?;
/// let PadOutcome::Send(apdu) = verify_apdu(&v, &KeyEntry::digits("1234").unwrap()) else { panic!() };
/// assert_eq!(apdu.as_slice(), b"\x00\x20\x00\x01\x08\x31\x32\x33\x34\xFF\xFF\xFF\xFF");
/// assert_eq!(verify_apdu(&v, &KeyEntry::Cancel), PadOutcome::Answer([0x64, 0x01]));
/// # Ok::<(), cpx_ifd_pinpad::pin::StructureError>(())
/// ```
pub fn verify_apdu(s: &VerifyStructure, entry: &KeyEntry) -> PadOutcome {
    match digits_or_answer(entry, &s.format) {
        Err(answer) => PadOutcome::Answer(answer),
        Ok(digits) => {
            let mut apdu = Zeroizing::new(s.apdu.clone());
            insert_pin(&mut apdu, &s.format, 0, digits);
            PadOutcome::Send(apdu)
        }
    }
}

/// The CHANGE REFERENCE DATA a reader sends after the user's entries, or its own answer.
///
/// `entries` yields the user's entries in the order the reader asks for them: the current PIN
/// (if [`ModifyStructure::asks_current`]), the new PIN, its confirmation (if
/// [`ModifyStructure::asks_confirmation`]). The first timeout or cancel ends the entry, as on
/// a real pad.
pub fn modify_apdu<E>(
    s: &ModifyStructure,
    mut entries: impl FnMut() -> Result<KeyEntry, E>,
) -> Result<PadOutcome, E> {
    let fmt = &s.format;
    let mut apdu = Zeroizing::new(s.apdu.clone());
    if s.asks_current() {
        let old = entries()?;
        match digits_or_answer(&old, fmt) {
            Err(answer) => return Ok(PadOutcome::Answer(answer)),
            Ok(digits) => insert_pin(&mut apdu, fmt, s.offset_old, digits),
        }
    }
    let new = entries()?;
    let digits = match digits_or_answer(&new, fmt) {
        Err(answer) => return Ok(PadOutcome::Answer(answer)),
        Ok(digits) => digits,
    };
    if s.asks_confirmation() {
        let again = entries()?;
        match &again {
            KeyEntry::Timeout => return Ok(PadOutcome::Answer(sw::TIMEOUT)),
            KeyEntry::Cancel => return Ok(PadOutcome::Answer(sw::CANCELLED)),
            KeyEntry::Digits(d) if d.as_slice() != digits => return Ok(PadOutcome::Answer(sw::MISMATCH)),
            KeyEntry::Digits(_) => {}
        }
    }
    insert_pin(&mut apdu, fmt, s.offset_new, digits);
    Ok(PadOutcome::Send(apdu))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn verify_struct(format: u8, block: u8, length: u8, min: u8, max: u8, apdu: &[u8]) -> Vec<u8> {
        let mut s = vec![
            30, 0, format, block, length, max, min, 0x02, 0x01, 0x0C, 0x04, 0, 0, 0, 0,
        ];
        s.extend((apdu.len() as u32).to_le_bytes());
        s.extend(apdu);
        s
    }

    fn sent(outcome: PadOutcome) -> Vec<u8> {
        match outcome {
            PadOutcome::Send(apdu) => apdu.to_vec(),
            PadOutcome::Answer(sw) => panic!("reader answered {sw:02X?}"),
        }
    }

    const CPS3_TEMPLATE: [u8; 13] = [
        0x00, 0x20, 0x00, 0x01, 0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    ];

    #[test]
    fn cps3_block_ascii_padded_ff() {
        // docs/card-spec.md §3: 8-byte block, ASCII digits, FF padding.
        let v = parse_verify(&verify_struct(0x82, 0x08, 0x00, 4, 8, &CPS3_TEMPLATE)).unwrap();
        let apdu = sent(verify_apdu(&v, &KeyEntry::digits("1234").unwrap()));
        assert_eq!(
            apdu,
            [
                0x00, 0x20, 0x00, 0x01, 0x08, b'1', b'2', b'3', b'4', 0xFF, 0xFF, 0xFF, 0xFF
            ]
        );
        let apdu = sent(verify_apdu(&v, &KeyEntry::digits("12345678").unwrap()));
        assert_eq!(&apdu[5..], b"12345678");
    }

    #[test]
    fn right_justified_ascii() {
        let v = parse_verify(&verify_struct(0x86, 0x08, 0x00, 4, 8, &CPS3_TEMPLATE)).unwrap();
        let apdu = sent(verify_apdu(&v, &KeyEntry::digits("1234").unwrap()));
        assert_eq!(&apdu[5..], [0xFF, 0xFF, 0xFF, 0xFF, b'1', b'2', b'3', b'4']);
    }

    #[test]
    fn iso9564_format2_bcd_with_length_nibble() {
        // ISO 9564 format 2: 2L PP PP .. FF, length in the second nibble, PIN from byte 1.
        let template = [
            0x00, 0x20, 0x00, 0x81, 0x08, 0x20, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        ];
        // Byte units, position 1, left, BCD; length field 4 bits, block 7 bytes; length at bit 4.
        let v = parse_verify(&verify_struct(0x89, 0x47, 0x04, 4, 12, &template)).unwrap();
        let apdu = sent(verify_apdu(&v, &KeyEntry::digits("12345").unwrap()));
        assert_eq!(&apdu[5..], [0x25, 0x12, 0x34, 0x5F, 0xFF, 0xFF, 0xFF, 0xFF]);
    }

    #[test]
    fn variable_ascii_appended_sets_lc() {
        // CPS4-like: ASCII, unpadded (block size 0), the PIN appended after the header.
        let v = parse_verify(&verify_struct(
            0x82,
            0x00,
            0x00,
            4,
            8,
            &[0x01, 0x20, 0x00, 0x01, 0x00],
        ))
        .unwrap();
        let apdu = sent(verify_apdu(&v, &KeyEntry::digits("123456").unwrap()));
        assert_eq!(
            apdu,
            [0x01, 0x20, 0x00, 0x01, 0x06, b'1', b'2', b'3', b'4', b'5', b'6']
        );
    }

    #[test]
    fn reader_answers_without_the_card() {
        let v = parse_verify(&verify_struct(0x82, 0x08, 0x00, 4, 8, &CPS3_TEMPLATE)).unwrap();
        assert_eq!(
            verify_apdu(&v, &KeyEntry::Timeout),
            PadOutcome::Answer(sw::TIMEOUT)
        );
        assert_eq!(
            verify_apdu(&v, &KeyEntry::Cancel),
            PadOutcome::Answer(sw::CANCELLED)
        );
        for short_or_long in ["123", "123456789", ""] {
            let entry = KeyEntry::digits(short_or_long).unwrap();
            assert_eq!(
                verify_apdu(&v, &entry),
                PadOutcome::Answer(sw::LENGTH_RANGE),
                "{short_or_long:?}"
            );
        }
    }

    #[test]
    fn hostile_structures_are_refused() {
        let good = verify_struct(0x82, 0x08, 0x00, 4, 8, &CPS3_TEMPLATE);
        for cut in 0..good.len() {
            assert!(parse_verify(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut long = good.clone();
        long.push(0);
        assert!(matches!(
            parse_verify(&long),
            Err(StructureError::DataLength { .. })
        ));
        let mut huge = good.clone();
        huge[15..19].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            parse_verify(&huge),
            Err(StructureError::DataLength { .. })
        ));
        // Block past the end of the template (position 15 bytes).
        assert!(parse_verify(&verify_struct(0xFA, 0x08, 0x00, 4, 8, &CPS3_TEMPLATE)).is_err());
        // Max digits larger than the block.
        assert!(parse_verify(&verify_struct(0x82, 0x04, 0x00, 4, 8, &CPS3_TEMPLATE)).is_err());
        // min > max, max 0, RFU encoding, binary.
        assert!(parse_verify(&verify_struct(0x82, 0x08, 0x00, 9, 8, &CPS3_TEMPLATE)).is_err());
        assert!(parse_verify(&verify_struct(0x82, 0x08, 0x00, 0, 0, &CPS3_TEMPLATE)).is_err());
        assert!(parse_verify(&verify_struct(0x83, 0x08, 0x00, 4, 8, &CPS3_TEMPLATE)).is_err());
        assert!(matches!(
            parse_verify(&verify_struct(0x80, 0x08, 0x00, 4, 8, &CPS3_TEMPLATE)),
            Err(StructureError::Unsupported(_))
        ));
        // Length field outside the template, or too narrow for the longest PIN.
        assert!(parse_verify(&verify_struct(0x82, 0x48, 0x1F, 4, 8, &CPS3_TEMPLATE)).is_err());
        assert!(parse_verify(&verify_struct(0x82, 0x38, 0x10, 4, 8, &CPS3_TEMPLATE)).is_err());
        // Lc not matching the template.
        let mut bad_lc = CPS3_TEMPLATE;
        bad_lc[4] = 0x09;
        assert!(matches!(
            parse_verify(&verify_struct(0x82, 0x08, 0x00, 4, 8, &bad_lc)),
            Err(StructureError::ApduTemplate(_))
        ));
    }

    #[test]
    fn every_short_input_is_an_error_never_a_panic() {
        // Exhaustive over small structures: parsing never panics.
        for len in 0..40usize {
            for fill in [0x00u8, 0x55, 0xAA, 0xFF] {
                let input = vec![fill; len];
                let _ = parse_verify(&input);
                let _ = parse_modify(&input);
            }
        }
    }

    fn modify_struct(confirm: u8, apdu: &[u8]) -> Vec<u8> {
        // ASCII, byte units, position 0, left; block 8; old at +0, new at +8; 4..8 digits.
        let mut s = vec![
            30, 0, 0x82, 0x08, 0x00, 0x00, 0x08, 0x08, 0x04, confirm, 0x02, 0x03, 0x0C, 0x04, 0, 1, 2, 0, 0,
            0,
        ];
        s.extend((apdu.len() as u32).to_le_bytes());
        s.extend(apdu);
        s
    }

    #[test]
    fn modify_cps3_old_and_new() {
        let mut template = vec![0x00, 0x24, 0x00, 0x01, 0x10];
        template.extend([0xFF; 16]);
        let m = parse_modify(&modify_struct(0x03, &template)).unwrap();
        let mut script = vec![
            KeyEntry::digits("1234").unwrap(),
            KeyEntry::digits("56789").unwrap(),
            KeyEntry::digits("56789").unwrap(),
        ]
        .into_iter();
        let out = modify_apdu(&m, || Ok::<_, ()>(script.next().unwrap())).unwrap();
        let apdu = sent(out);
        assert_eq!(&apdu[5..13], b"1234\xFF\xFF\xFF\xFF");
        assert_eq!(&apdu[13..], b"56789\xFF\xFF\xFF");

        let mut mismatch = vec![
            KeyEntry::digits("1234").unwrap(),
            KeyEntry::digits("5678").unwrap(),
            KeyEntry::digits("5679").unwrap(),
        ]
        .into_iter();
        let out = modify_apdu(&m, || Ok::<_, ()>(mismatch.next().unwrap())).unwrap();
        assert_eq!(out, PadOutcome::Answer(sw::MISMATCH));

        let mut cancel = vec![KeyEntry::digits("1234").unwrap(), KeyEntry::Cancel].into_iter();
        let out = modify_apdu(&m, || Ok::<_, ()>(cancel.next().unwrap())).unwrap();
        assert_eq!(out, PadOutcome::Answer(sw::CANCELLED));
    }

    #[test]
    fn modify_new_pin_alone_appended() {
        // A ChipDoc's `01 24 01 01` (docs/card-spec.md §10.7): block size 0, new PIN confirmed.
        let mut s = modify_struct(0x01, &[0x01, 0x24, 0x01, 0x01, 0x00]);
        s[3] = 0x00;
        s[6] = 0x00;
        let m = parse_modify(&s).unwrap();
        let mut script = vec![
            KeyEntry::digits("56789").unwrap(),
            KeyEntry::digits("56789").unwrap(),
        ]
        .into_iter();
        let out = modify_apdu(&m, || Ok::<_, ()>(script.next().unwrap())).unwrap();
        assert_eq!(sent(out), b"\x01\x24\x01\x01\x0556789");
        // With the current PIN as well, two appended PINs cannot be told apart: refused.
        let mut both = s.clone();
        both[9] = 0x03;
        assert!(matches!(parse_modify(&both), Err(StructureError::Unsupported(_))));
    }

    #[test]
    fn modify_hostile() {
        let mut template = vec![0x00, 0x24, 0x00, 0x01, 0x10];
        template.extend([0xFF; 16]);
        let mut overlap = modify_struct(0x03, &template);
        overlap[6] = 0x04;
        assert!(parse_modify(&overlap).is_err());
        let mut rfu = modify_struct(0x07, &template);
        assert!(parse_modify(&rfu).is_err());
        rfu[9] = 0x03;
        rfu[6] = 0x0F; // new block past the end
        assert!(parse_modify(&rfu).is_err());
    }
}
