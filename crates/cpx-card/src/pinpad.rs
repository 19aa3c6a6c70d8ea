//! Secure PIN entry on the reader's keypad (PC/SC v2 part 10, docs/reader-features.md): what a
//! reader's pad can do ([`PinPad`]), the switch that turns pad use off ([`PinPadSetting`]), and
//! the `PIN_VERIFY_STRUCTURE` / `PIN_MODIFY_STRUCTURE` that tell the reader how to put the
//! digits into the card's command.
//!
//! The structures are built from the code's [`PinPolicy`] (the card's AODF, docs/card-spec.md
//! §3.1), the same policy [`PinPolicy::format`] applies to a code typed on the host, so the
//! command the card receives from the pad is byte for byte the one a keyboard login sends:
//!
//! - a policy with `needs-padding` gives a **fixed block** of the stored length, the template
//!   filled with the pad character (a real CPS3: 8 bytes, `FF`, docs/card-spec.md §8.5);
//! - an unpadded policy gives a **variable-length** block (`bmPINBlockString` block size 0): the
//!   reader appends the digits and sets Lc from their number (the CPS4's `01 20 00 <ref> Lc
//!   <PIN>`, docs/card-spec.md §3.2); where two codes share one command (a change that carries
//!   old ‖ new) an unpadded fixed-length policy gives a block of exactly that length;
//! - digits are ASCII (PinType asciiNumeric, the CPx PINs); another encoding is
//!   [`CardError::PinPadUnsupported`].
//!
//! The lengths the reader accepts (`wPINMaxExtraDigit`) are the policy's minimum and maximum,
//! narrowed to the reader's own `bMinPINSize`/`bMaxPINSize`: the check a host string gets before
//! any APDU is done by the reader, which answers `6403` for a wrong length. Which commands go
//! through the pad (VERIFY, CHANGE REFERENCE DATA, RESET RETRY COUNTER) and in which order is the
//! generation's driver's choice (crates/cpx-card/src/generation/).

use cpx_apdu::StatusWord;
use cpx_transport::{ControlCode, Feature, ReaderProperties, TransportError};

use crate::error::CardError;
use crate::io::Io;
use crate::pin::{PinKind, PinPolicy, PinType};

/// What the reader's PIN pad can do, from its part 10 features and properties
/// ([`crate::Card::pin_pad`]).
///
/// ```no_run
/// # fn f(card: &mut cpx_card::Card) -> Result<(), cpx_card::CardError> {
/// use cpx_card::{PinEntry, PinKind};
/// if let Some(pad) = card.pin_pad()? {
///     println!("type your PIN on the reader ({} to {} digits)", pad.min_digits, pad.max_digits);
///     card.verify_entry(PinKind::User, &PinEntry::PinPad)?;
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PinPad {
    /// The reader collects a PIN and sends the command itself (`FEATURE_VERIFY_PIN_DIRECT`):
    /// always true for a reader [`crate::Card::pin_pad`] returns.
    pub verify: bool,
    /// The reader can collect a current PIN, a new PIN and its confirmation
    /// (`FEATURE_MODIFY_PIN_DIRECT`): needed to change or set a PIN on the pad.
    pub modify: bool,
    /// The fewest digits the keypad takes (`bMinPINSize`); 0 when the reader does not say.
    pub min_digits: u8,
    /// The most digits the keypad takes (`bMaxPINSize`); 255 when the reader does not say.
    pub max_digits: u8,
    /// The reader's display as (lines, characters per line) (`wLcdLayout`), `None` without one
    /// (or when the reader does not say).
    pub display: Option<(u8, u8)>,
}

impl PinPad {
    /// A pad description with `FEATURE_VERIFY_PIN_DIRECT` (`verify` true), for code that shows
    /// or tests a pad without a reader ([`crate::Card::pin_pad`] gives the real one).
    ///
    /// ```
    /// let pad = cpx_card::PinPad::new(true, 4, 8, Some((2, 16)));
    /// assert!(pad.verify && pad.modify);
    /// assert_eq!(pad.display, Some((2, 16)));
    /// ```
    pub fn new(modify: bool, min_digits: u8, max_digits: u8, display: Option<(u8, u8)>) -> PinPad {
        PinPad {
            verify: true,
            modify,
            min_digits,
            max_digits,
            display,
        }
    }
}

/// Whether cpx may use the PIN pad of a reader: turned off for every reader, or for the readers
/// whose name contains one of a list of substrings (a reader whose pad is broken, or whose
/// users prefer the keyboard). Read from the environment by [`PinPadSetting::from_env`], the
/// one place cpx reads it (the PKCS#11 module and the CLI alike):
///
/// - `CPX_PINPAD=off` (also `0`, `no`, `false`, any case): no pad is used;
/// - `CPX_PINPAD_IGNORE=<substring>[;<substring>…]`: no pad is used on a reader whose name
///   contains one of them (compared without regard to case; empty parts are skipped).
///
/// A reader whose pad is not used behaves as a reader without a pad: [`crate::Card::pin_pad`]
/// answers `None`, the PIN is typed on the host.
///
/// ```
/// use cpx_card::PinPadSetting;
/// let s = PinPadSetting::parse(None, Some("Cherry ST-2xxx;gemalto"));
/// assert!(s.allows("REINER SCT cyberJack RFID komfort 00 00"));
/// assert!(!s.allows("Gemalto IDBridge CT700 00 00"));
/// assert!(!PinPadSetting::parse(Some("off"), None).allows("any reader"));
/// assert!(PinPadSetting::parse(Some("on"), None).allows("any reader"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PinPadSetting {
    off: bool,
    ignore: Vec<String>,
}

impl PinPadSetting {
    /// The variable that turns pad use off for every reader.
    pub const ENV_PINPAD: &'static str = "CPX_PINPAD";
    /// The variable listing readers whose pad is not used.
    pub const ENV_IGNORE: &'static str = "CPX_PINPAD_IGNORE";

    /// Pads used on every reader that has one (the default).
    pub fn on() -> Self {
        Self::default()
    }

    /// No pad used.
    pub fn off() -> Self {
        PinPadSetting {
            off: true,
            ignore: Vec::new(),
        }
    }

    /// The setting from `CPX_PINPAD` and `CPX_PINPAD_IGNORE` ([`PinPadSetting::parse`]).
    pub fn from_env() -> Self {
        let get = |name| std::env::var(name).ok();
        Self::parse(get(Self::ENV_PINPAD).as_deref(), get(Self::ENV_IGNORE).as_deref())
    }

    /// The setting from the values of `CPX_PINPAD` and `CPX_PINPAD_IGNORE`. `CPX_PINPAD`
    /// `off`/`0`/`no`/`false` turns pads off; `on`/`1`/`yes`/`true`, empty or absent leaves them
    /// on; any other value is logged and leaves them on.
    pub fn parse(pinpad: Option<&str>, ignore: Option<&str>) -> Self {
        let off = match pinpad.map(|v| v.trim().to_ascii_lowercase()) {
            Some(v) if matches!(v.as_str(), "off" | "0" | "no" | "false") => true,
            Some(v) if matches!(v.as_str(), "" | "on" | "1" | "yes" | "true") => false,
            Some(_) => {
                log::warn!(target: "cpx::card", "{}: unknown value (expected off or on): PIN pads stay in use", Self::ENV_PINPAD);
                false
            }
            None => false,
        };
        let ignore = ignore
            .unwrap_or_default()
            .split(';')
            .map(|s| s.trim().to_lowercase())
            .filter(|s| !s.is_empty())
            .collect();
        PinPadSetting { off, ignore }
    }

    /// Whether the pad of `reader` may be used.
    pub fn allows(&self, reader: &str) -> bool {
        if self.off {
            return false;
        }
        let name = reader.to_lowercase();
        !self.ignore.iter().any(|part| name.contains(part.as_str()))
    }
}

/// A pad found on the reader: what it can do and its control codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PadReader {
    pub(crate) pad: PinPad,
    pub(crate) verify: ControlCode,
    pub(crate) modify: Option<ControlCode>,
}

/// The reader's pad, asked inside the card's transaction (features cached by the transport):
/// `None` when it has no `FEATURE_VERIFY_PIN_DIRECT`, or describes its keypad wrongly (a reader
/// that describes itself wrongly is not trusted with a PIN, docs/reader-features.md).
pub(crate) fn discover(io: &mut Io<'_>) -> Result<Option<PadReader>, CardError> {
    let features = io.reader_features()?;
    let Some(verify) = features.get(Feature::VERIFY_PIN_DIRECT) else {
        return Ok(None);
    };
    let mut pad = PinPad {
        verify: true,
        modify: features.has(Feature::MODIFY_PIN_DIRECT),
        min_digits: 0,
        max_digits: 255,
        display: None,
    };
    let mut layout = None;
    if let Some(code) = features.get(Feature::GET_TLV_PROPERTIES) {
        match io.control(code, &[]).map(|a| ReaderProperties::parse(&a)) {
            Ok(Ok(p)) => {
                pad.min_digits = p.min_pin_size.unwrap_or(0);
                pad.max_digits = p.max_pin_size.unwrap_or(255);
                layout = p.lcd_layout;
            }
            Ok(Err(e)) => {
                log::debug!(target: "cpx::card", "{}: PIN pad not used: {e}", io.reader());
                return Ok(None);
            }
            Err(e) => return ignore_answer(io, e),
        }
    }
    if layout.is_none()
        && let Some(code) = features.get(Feature::IFD_PIN_PROPERTIES)
    {
        // PIN_PROPERTIES_STRUCTURE: wLcdLayout (little-endian), bEntryValidationCondition,
        // bTimeOut2 (PC/SC part 10 §2.6.8).
        match io.control(code, &[]) {
            Ok(a) if a.len() >= 2 => layout = Some(u16::from_le_bytes([a[0], a[1]])),
            Ok(_) => {}
            Err(e) => return ignore_answer(io, e),
        }
    }
    if pad.min_digits > pad.max_digits || pad.max_digits == 0 {
        log::debug!(target: "cpx::card", "{}: PIN pad not used: its PIN sizes are inconsistent", io.reader());
        return Ok(None);
    }
    pad.display = layout.filter(|l| *l != 0).map(|l| {
        let [lines, chars] = l.to_be_bytes();
        (lines, chars)
    });
    Ok(Some(PadReader {
        pad,
        verify,
        modify: features.get(Feature::MODIFY_PIN_DIRECT),
    }))
}

/// A property request the reader fails: an error the caller must act on (card gone, reset,
/// pcscd lost) is returned; any other failure means the pad is not used (a reader that cannot
/// describe its keypad is not trusted with a PIN).
fn ignore_answer(io: &Io<'_>, e: TransportError) -> Result<Option<PadReader>, CardError> {
    if e.is_card_gone() || e.is_service_lost() || matches!(e, TransportError::CardReset(_)) {
        return Err(e.into());
    }
    log::debug!(target: "cpx::card", "{}: PIN pad not used, its properties cannot be read: {e}", io.reader());
    Ok(None)
}

/// How one code's digits go into the command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Block {
    /// A block of `len` bytes in the template, filled with `fill` where no digit goes.
    Fixed { len: u8, fill: u8 },
    /// Appended after the template's data, Lc increased by the number of digits.
    Appended,
}

/// What the user types for a MODIFY.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Modify {
    /// Current PIN, new PIN, confirmation (both PINs in the command, current first).
    OldAndNew,
    /// New PIN and its confirmation (only the new PIN in the command).
    NewConfirmed,
}

/// The PC/SC `bmFormatString`: byte units, PIN at position 0, left-justified, ASCII.
const FORMAT_ASCII_BYTES: u8 = 0x82;
/// `bEntryValidationCondition`: the validation key ends the entry.
const VALIDATION_KEY: u8 = 0x02;
/// `wLangId`: fr-FR (0x040C), the CPS holders' language.
const LANG_FR: [u8; 2] = [0x0C, 0x04];

/// Everything needed to describe one code's entry to the pad: the block and the digit range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PadFormat {
    pub(crate) block: Block,
    pub(crate) min: u8,
    pub(crate) max: u8,
}

/// The pad format of a code of `policy`, or why the pad cannot take it. `shared`: the command
/// carries another code after this one (old ‖ new), so the block must have a fixed size.
pub(crate) fn pad_format(
    policy: &PinPolicy,
    pad: &PinPad,
    kind: PinKind,
    shared: bool,
) -> Result<PadFormat, String> {
    if !matches!(policy.pin_type, PinType::AsciiNumeric | PinType::Utf8) {
        return Err(format!(
            "the card's {kind} encoding ({:?}) cannot be described to a PIN pad",
            policy.pin_type
        ));
    }
    let min = policy.min_len.max(usize::from(pad.min_digits)).max(1);
    let max = policy.max_len.min(usize::from(pad.max_digits));
    if min > max {
        return Err(format!(
            "the card's {kind} has {} to {} digits, the pad takes {} to {}",
            policy.min_len, policy.max_len, pad.min_digits, pad.max_digits
        ));
    }
    // The length fits one byte: max ≤ the pad's u8 maximum.
    let (min, max) = (
        u8::try_from(min).map_err(|_| "PIN too long".to_string())?,
        u8::try_from(max).map_err(|_| "PIN too long".to_string())?,
    );
    let block = if policy.needs_padding {
        // PinPolicy::format pads to the stored length; a longer code would go unpadded.
        if policy.stored_len < policy.max_len || policy.stored_len > 15 {
            return Err(format!(
                "the card's {kind} block ({} bytes for up to {} digits) cannot be described to a PIN pad",
                policy.stored_len, policy.max_len
            ));
        }
        Block::Fixed {
            len: policy.stored_len as u8,
            fill: policy.pad_char,
        }
    } else if shared {
        if min != max || max > 15 {
            return Err(format!(
                "the card's {kind} has a variable length and shares its command with another code"
            ));
        }
        Block::Fixed { len: max, fill: 0 }
    } else {
        Block::Appended
    };
    Ok(PadFormat { block, min, max })
}

/// `bmPINBlockString` and the template's data for one block.
fn block_bytes(block: Block) -> (u8, Vec<u8>) {
    match block {
        Block::Fixed { len, fill } => (len, vec![fill; usize::from(len)]),
        Block::Appended => (0, Vec::new()),
    }
}

/// `CLA INS P1 P2 Lc data`.
fn template(header: [u8; 4], data: &[u8]) -> Vec<u8> {
    let mut apdu = header.to_vec();
    // At most two 15-byte blocks: Lc fits.
    apdu.push(data.len() as u8);
    apdu.extend_from_slice(data);
    apdu
}

/// A `PIN_VERIFY_STRUCTURE` (PC/SC part 10 v2.02.09 §2.5.2; pcsc-lite reader.h) for the command
/// `header` carrying one code.
pub(crate) fn verify_structure(header: [u8; 4], f: PadFormat) -> Vec<u8> {
    let (block_string, data) = block_bytes(f.block);
    let apdu = template(header, &data);
    let mut s = vec![
        0x00, // bTimerOut: the reader's default
        0x00, // bTimerOut2
        FORMAT_ASCII_BYTES,
        block_string,
        0x00, // bmPINLengthFormat: no length field
        f.max,
        f.min, // wPINMaxExtraDigit (little-endian: max, then min)
        VALIDATION_KEY,
        0x01, // bNumberMessage
        LANG_FR[0],
        LANG_FR[1],
        0x00, // bMsgIndex
        0x00,
        0x00,
        0x00, // bTeoPrologue
    ];
    s.extend((apdu.len() as u32).to_le_bytes());
    s.extend(apdu);
    s
}

/// A `PIN_MODIFY_STRUCTURE` (PC/SC part 10 v2.02.09 §2.5.3) for the command `header`:
/// current ‖ new (each a fixed block) or the new PIN alone, the new PIN always confirmed.
pub(crate) fn modify_structure(header: [u8; 4], f: PadFormat, what: Modify) -> Vec<u8> {
    let (block_string, block) = block_bytes(f.block);
    let (data, offset_old, offset_new, confirm, messages) = match what {
        Modify::OldAndNew => {
            let mut data = block.clone();
            data.extend_from_slice(&block);
            (data, 0, block.len() as u8, 0x03, 0x03)
        }
        Modify::NewConfirmed => (block, 0, 0, 0x01, 0x02),
    };
    let apdu = template(header, &data);
    let mut s = vec![
        0x00, // bTimerOut
        0x00, // bTimerOut2
        FORMAT_ASCII_BYTES,
        block_string,
        0x00, // bmPINLengthFormat
        offset_old,
        offset_new,
        f.max,
        f.min, // wPINMaxExtraDigit
        confirm,
        VALIDATION_KEY,
        messages,
        LANG_FR[0],
        LANG_FR[1],
        0x00,
        0x01,
        0x02, // bMsgIndex1..3
        0x00,
        0x00,
        0x00, // bTeoPrologue
    ];
    s.extend((apdu.len() as u32).to_le_bytes());
    s.extend(apdu);
    s
}

/// The reader that `operation` needs, or [`CardError::PinPadUnsupported`].
pub(crate) fn need_modify(
    pad: &PadReader,
    reader: &str,
    operation: &'static str,
) -> Result<ControlCode, CardError> {
    pad.modify.ok_or_else(|| CardError::PinPadUnsupported {
        operation,
        reader: reader.to_owned(),
        reason: "the reader cannot take a new PIN on its pad (no FEATURE_MODIFY_PIN_DIRECT)".into(),
    })
}

/// [`pad_format`] with its refusal as [`CardError::PinPadUnsupported`].
pub(crate) fn format_for(
    io: &Io<'_>,
    policy: &PinPolicy,
    pad: &PadReader,
    kind: PinKind,
    shared: bool,
    operation: &'static str,
) -> Result<PadFormat, CardError> {
    pad_format(policy, &pad.pad, kind, shared).map_err(|reason| CardError::PinPadUnsupported {
        operation,
        reader: io.reader().to_owned(),
        reason,
    })
}

/// The reader's answer to a PIN control: the card's status word, or the reader's own answer
/// as its precise error (PC/SC part 10 §2.5: `6400` timeout, `6401` cancel, `6402` new PIN and
/// confirmation differ, `6403` length out of range; the card saw nothing then).
pub(crate) fn answer_sw(answer: &[u8], operation: &'static str) -> Result<StatusWord, CardError> {
    let [.., sw1, sw2] = answer else {
        return Err(CardError::malformed(
            "PIN pad answer",
            format!("{} bytes, no status word", answer.len()),
        ));
    };
    match (*sw1, *sw2) {
        (0x64, 0x00) => Err(CardError::PinPadTimeout { operation }),
        (0x64, 0x01) => Err(CardError::PinPadCancelled { operation }),
        (0x64, 0x02) => Err(CardError::PinPadMismatch { operation }),
        (0x64, 0x03) => Err(CardError::PinPadLength { operation }),
        (a, b) => Ok(StatusWord(a, b)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn pad(min: u8, max: u8) -> PinPad {
        PinPad {
            verify: true,
            modify: true,
            min_digits: min,
            max_digits: max,
            display: None,
        }
    }

    fn cps3_real() -> PinPolicy {
        // docs/card-spec.md §8.5: a real CPS3's AODF.
        PinPolicy {
            min_len: 4,
            max_len: 4,
            stored_len: 8,
            needs_padding: true,
            pad_char: 0xFF,
            pin_type: PinType::AsciiNumeric,
            reference: 1,
        }
    }

    #[test]
    fn padded_policy_gives_a_fixed_ff_block() {
        let f = pad_format(&cps3_real(), &pad(4, 8), PinKind::User, false).unwrap();
        assert_eq!(f.block, Block::Fixed { len: 8, fill: 0xFF });
        assert_eq!((f.min, f.max), (4, 4));
        let s = verify_structure([0x00, 0x20, 0x00, 0x01], f);
        assert_eq!(&s[..7], &[0, 0, 0x82, 0x08, 0x00, 0x04, 0x04]);
        assert_eq!(&s[15..19], &13u32.to_le_bytes());
        assert_eq!(&s[19..], b"\x00\x20\x00\x01\x08\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF");
    }

    #[test]
    fn unpadded_policy_is_appended_unless_shared() {
        let p = PinPolicy::default_for(PinKind::User);
        let f = pad_format(&p, &pad(0, 255), PinKind::User, false).unwrap();
        assert_eq!(f.block, Block::Appended);
        let s = verify_structure([0x01, 0x20, 0x00, 0x01], f);
        assert_eq!(s[3], 0);
        assert_eq!(&s[19..], b"\x01\x20\x00\x01\x00");
        let shared = pad_format(&p, &pad(0, 255), PinKind::User, true).unwrap();
        assert_eq!(shared.block, Block::Fixed { len: 4, fill: 0 });
        let mut variable = p.clone();
        variable.max_len = 8;
        assert!(pad_format(&variable, &pad(0, 255), PinKind::User, true).is_err());
    }

    #[test]
    fn lengths_are_narrowed_to_the_pad_or_refused() {
        let mut p = PinPolicy::default_for(PinKind::User);
        p.min_len = 4;
        p.max_len = 12;
        let f = pad_format(&p, &pad(6, 8), PinKind::User, false).unwrap();
        assert_eq!((f.min, f.max), (6, 8));
        let puk = PinPolicy::default_for(PinKind::Puk);
        assert!(pad_format(&puk, &pad(4, 6), PinKind::Puk, false).is_err());
        let mut bcd = PinPolicy::default_for(PinKind::User);
        bcd.pin_type = PinType::Bcd;
        assert!(pad_format(&bcd, &pad(0, 255), PinKind::User, false).is_err());
    }

    #[test]
    fn modify_structures() {
        let f = pad_format(&cps3_real(), &pad(4, 8), PinKind::User, true).unwrap();
        let s = modify_structure([0x00, 0x24, 0x00, 0x01], f, Modify::OldAndNew);
        assert_eq!(&s[..10], &[0, 0, 0x82, 0x08, 0x00, 0x00, 0x08, 0x04, 0x04, 0x03]);
        assert_eq!(&s[24..29], &[0x00, 0x24, 0x00, 0x01, 0x10]);
        assert_eq!(s.len(), 24 + 5 + 16);
        let f = pad_format(
            &PinPolicy::default_for(PinKind::User),
            &pad(0, 255),
            PinKind::User,
            false,
        )
        .unwrap();
        let s = modify_structure([0x01, 0x24, 0x01, 0x01], f, Modify::NewConfirmed);
        assert_eq!(&s[3..10], &[0x00, 0x00, 0x00, 0x00, 0x04, 0x04, 0x01]);
        assert_eq!(&s[24..], &[0x01, 0x24, 0x01, 0x01, 0x00]);
    }

    #[test]
    fn reader_answers_are_precise_errors() {
        for (sw, check) in [
            ([0x64, 0x00], "timeout"),
            ([0x64, 0x01], "cancel"),
            ([0x64, 0x02], "differ"),
            ([0x64, 0x03], "digits"),
        ] {
            let e = answer_sw(&sw, "verify").unwrap_err();
            assert!(e.to_string().contains(check), "{e}");
        }
        assert_eq!(
            answer_sw(&[0x63, 0xC2], "verify").unwrap(),
            StatusWord(0x63, 0xC2)
        );
        assert_eq!(
            answer_sw(&[0x01, 0x90, 0x00], "verify").unwrap(),
            StatusWord(0x90, 0x00)
        );
        assert!(answer_sw(&[0x90], "verify").is_err());
    }

    use cpx_ifd_pinpad::keypad::KeyEntry;
    use cpx_ifd_pinpad::pin::{PadOutcome, modify_apdu, parse_modify, parse_verify, verify_apdu};
    use proptest::prelude::*;

    use crate::pin::Pin;

    fn policy() -> impl Strategy<Value = PinPolicy> {
        (
            1usize..=8,
            0usize..=4,
            any::<bool>(),
            0usize..=4,
            any::<u8>(),
            any::<u8>(),
        )
            .prop_map(
                |(min, extra, needs_padding, more, pad_char, reference)| PinPolicy {
                    min_len: min,
                    max_len: min + extra,
                    stored_len: min + extra + more,
                    needs_padding,
                    pad_char,
                    pin_type: PinType::AsciiNumeric,
                    reference,
                },
            )
    }

    fn sent(outcome: PadOutcome) -> Vec<u8> {
        match outcome {
            PadOutcome::Send(apdu) => apdu.to_vec(),
            PadOutcome::Answer(sw) => panic!("the reader answered {sw:02X?}"),
        }
    }

    proptest! {
        /// What the emulated reader sends from cpx's structure is, byte for byte, the host
        /// command for the same digits (VERIFY, and a new PIN alone); a length out of the policy
        /// is the reader's 6403, as the host refuses it before any APDU.
        #[test]
        fn the_pad_sends_what_the_host_sends(p in policy(), digits in "[0-9]{0,14}", cla in any::<u8>()) {
            let pin = Pin::new(&digits);
            let entry = KeyEntry::digits(&digits).unwrap_or(KeyEntry::Timeout);
            let host = p.format(PinKind::User, &pin);
            let Ok(f) = pad_format(&p, &pad(0, 255), PinKind::User, false) else {
                // Only a padded policy whose block cannot hold its longest PIN is refused.
                prop_assert!(p.needs_padding && (p.stored_len < p.max_len || p.stored_len > 15));
                return Ok(());
            };
            let v = parse_verify(&verify_structure([cla, 0x20, 0x00, p.reference], f)).unwrap();
            let m = parse_modify(&modify_structure([cla, 0x24, 0x01, p.reference], f, Modify::NewConfirmed)).unwrap();
            match host {
                Ok(value) if !digits.is_empty() => {
                    let command = crate::commands::verify(cla, p.reference, &value).unwrap();
                    prop_assert_eq!(sent(verify_apdu(&v, &entry)), command.to_bytes().to_vec());
                    let mut twice = (0..2).map(|_| KeyEntry::digits(&digits).unwrap());
                    let set = sent(modify_apdu(&m, || Ok::<_, ()>(twice.next().unwrap())).unwrap());
                    let command = crate::commands::change_reference_data(cla, 0x01, p.reference, &value).unwrap();
                    prop_assert_eq!(set, command.to_bytes().to_vec());
                }
                Ok(_) => {}
                Err(_) => prop_assert_eq!(verify_apdu(&v, &entry), PadOutcome::Answer([0x64, 0x03])),
            }
        }

        /// CHANGE REFERENCE DATA with old ‖ new in one command (the CPS3's `24 00`): the same
        /// bytes as the host's.
        #[test]
        fn a_shared_change_matches_the_host(p in policy(), old in "[0-9]{1,12}", new in "[0-9]{1,12}") {
            let (Ok(o), Ok(n)) = (p.format(PinKind::User, &Pin::new(&old)), p.format(PinKind::User, &Pin::new(&new))) else {
                return Ok(());
            };
            let Ok(f) = pad_format(&p, &pad(0, 255), PinKind::User, true) else {
                return Ok(());
            };
            let m = parse_modify(&modify_structure([0x00, 0x24, 0x00, p.reference], f, Modify::OldAndNew)).unwrap();
            let mut script = [&old, &new, &new].into_iter().map(|d| KeyEntry::digits(d).unwrap());
            let pad_sent = sent(modify_apdu(&m, || Ok::<_, ()>(script.next().unwrap())).unwrap());
            let mut data = o.to_vec();
            data.extend_from_slice(&n);
            let command = crate::commands::change_reference_data(0x00, 0x00, p.reference, &data).unwrap();
            prop_assert_eq!(pad_sent, command.to_bytes().to_vec());
        }
    }

    #[test]
    fn setting_from_values() {
        assert!(PinPadSetting::parse(None, None).allows("r"));
        for off in ["off", "OFF", " 0 ", "no", "false"] {
            assert!(!PinPadSetting::parse(Some(off), None).allows("r"), "{off}");
        }
        assert!(PinPadSetting::parse(Some("maybe"), None).allows("r"));
        let s = PinPadSetting::parse(Some("on"), Some(";  ;cpx PINPAD;"));
        assert!(!s.allows("cpx pinpad 00 00"));
        assert!(s.allows("Virtual PCD 00 00"));
    }
}
