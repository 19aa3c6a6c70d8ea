//! PIN and PUK values, the policy that checks them before any APDU, and their on-card format
//! (docs/card-spec.md §3.1: the AODF decides; defaults 4 digits for the PIN, 8 for the PUK,
//! docs/card-notes.md §4).

use std::fmt;

use zeroize::Zeroizing;

use crate::error::CardError;

/// Which code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PinKind {
    /// The holder's PIN ("code porteur", CHV 01).
    User,
    /// The unblocking code ("code de déblocage", CHV 02).
    Puk,
}

impl fmt::Display for PinKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PinKind::User => "PIN",
            PinKind::Puk => "PUK",
        })
    }
}

/// A PIN or PUK value. Wiped on drop; `Debug` never shows it.
///
/// ```
/// let pin = cpx_card::Pin::new("1234");
/// assert_eq!(format!("{pin:?}"), "Pin(****)");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Pin(Zeroizing<Vec<u8>>);

impl Pin {
    /// A code from its characters (digits on CPx cards). Checked against the card's policy only
    /// when used, before any APDU.
    pub fn new(value: &str) -> Pin {
        Pin(Zeroizing::new(value.as_bytes().to_vec()))
    }

    /// A code from raw bytes.
    pub fn from_bytes(value: &[u8]) -> Pin {
        Pin(Zeroizing::new(value.to_vec()))
    }

    fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin(****)")
    }
}

/// How a code reaches the card: typed on the host ([`Pin`], checked against the card's policy
/// before any APDU), or entered on the reader's PIN pad, where the host never sees it (PC/SC part
/// 10 VERIFY/MODIFY PIN DIRECT).
///
/// With [`PinEntry::PinPad`] the reader collects the digits (PC/SC part 10 secure PIN entry,
/// [`crate::Card::pin_pad`]); on a reader without a usable pad the operation fails with
/// [`CardError::PinPadUnsupported`] before anything is sent to the card (no try spent).
///
/// ```
/// use cpx_card::{Pin, PinEntry};
/// let typed = PinEntry::from(Pin::new("1234"));
/// assert_eq!(format!("{typed:?}"), "Host(Pin(****))");
/// assert!(typed.host().is_some());
/// assert!(PinEntry::PinPad.host().is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PinEntry {
    /// A code typed on the host and sent in the command.
    Host(Pin),
    /// The code is entered on the reader's PIN pad.
    PinPad,
}

impl PinEntry {
    /// The code typed on the host; `None` for the PIN pad.
    pub fn host(&self) -> Option<&Pin> {
        match self {
            PinEntry::Host(pin) => Some(pin),
            PinEntry::PinPad => None,
        }
    }
}

impl From<Pin> for PinEntry {
    fn from(pin: Pin) -> Self {
        PinEntry::Host(pin)
    }
}

/// PKCS#15 PinType (ISO 7816-15).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinType {
    /// Packed BCD.
    Bcd,
    /// ASCII digits (the CPx PINs).
    AsciiNumeric,
    /// Any UTF-8.
    Utf8,
    /// One digit per byte, high nibble F.
    HalfNibbleBcd,
    /// ISO 9564-1 format 2 block.
    Iso9564,
}

impl PinType {
    pub(crate) fn from_enum(v: u32) -> Option<PinType> {
        Some(match v {
            0 => PinType::Bcd,
            1 => PinType::AsciiNumeric,
            2 => PinType::Utf8,
            3 => PinType::HalfNibbleBcd,
            4 => PinType::Iso9564,
            _ => return None,
        })
    }

    fn digits_only(self) -> bool {
        self != PinType::Utf8
    }
}

/// How a code is checked and formatted: from the AODF entry (docs/card-spec.md §3.1) or the defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinPolicy {
    /// Shortest accepted code.
    pub min_len: usize,
    /// Longest accepted code.
    pub max_len: usize,
    /// Length on the card, the target of padding.
    pub stored_len: usize,
    /// `needs-padding` pinFlag (bit 5): pad to `stored_len` with `pad_char`.
    pub needs_padding: bool,
    /// The padding byte.
    pub pad_char: u8,
    /// Encoding.
    pub pin_type: PinType,
    /// The card's reference of the code (P2 of VERIFY).
    pub reference: u8,
}

impl PinPolicy {
    /// The CPS3/CPS4 defaults when the AODF gives nothing: 4 digits for the PIN, 8 for the PUK
    /// (brief; docs/card-notes.md §4), references 01 / 02 (docs/card-spec.md §3.2, §8.4), unpadded ASCII
    /// (docs/card-spec.md §8.5). A card uses its own generation's ([`crate::Capabilities::default_policy`]).
    pub fn default_for(kind: PinKind) -> PinPolicy {
        let (len, reference) = match kind {
            PinKind::User => (4, 0x01),
            PinKind::Puk => (8, 0x02),
        };
        PinPolicy {
            min_len: len,
            max_len: len,
            stored_len: len,
            needs_padding: false,
            pad_char: 0x00,
            pin_type: PinType::AsciiNumeric,
            reference,
        }
    }

    /// Check `pin` and return the bytes to send, or [`CardError::PinFormat`] (no APDU sent).
    pub fn format(&self, kind: PinKind, pin: &Pin) -> Result<Zeroizing<Vec<u8>>, CardError> {
        let value = pin.bytes();
        let bad = |reason: String| CardError::PinFormat { kind, reason };
        if value.len() < self.min_len || value.len() > self.max_len {
            return Err(bad(if self.min_len == self.max_len {
                format!(
                    "{} characters where the card expects {}",
                    value.len(),
                    self.min_len
                )
            } else {
                format!(
                    "{} characters where the card expects {} to {}",
                    value.len(),
                    self.min_len,
                    self.max_len
                )
            }));
        }
        if self.pin_type.digits_only() && !value.iter().all(u8::is_ascii_digit) {
            return Err(bad("only digits are allowed".into()));
        }
        // Capacity for every format (ISO 9564: 8 bytes): the buffer never grows, so no unwiped
        // copy of the PIN is left behind by a reallocation.
        let mut out = Zeroizing::new(Vec::with_capacity(self.stored_len.max(value.len()).max(8)));
        match self.pin_type {
            PinType::AsciiNumeric | PinType::Utf8 => out.extend_from_slice(value),
            PinType::HalfNibbleBcd => out.extend(value.iter().map(|d| 0xF0 | (d - b'0'))),
            PinType::Bcd => {
                for pair in value.chunks(2) {
                    let hi = pair[0] - b'0';
                    let lo = pair.get(1).map_or(self.pad_char & 0x0F, |d| d - b'0');
                    out.push((hi << 4) | lo);
                }
            }
            PinType::Iso9564 => {
                // Format 2: 2N d1 d2 … padded with F to 8 bytes.
                let mut nibbles = Zeroizing::new(Vec::with_capacity(16.max(value.len() + 2)));
                nibbles.extend([0x2, value.len() as u8 & 0x0F]);
                nibbles.extend(value.iter().map(|d| d - b'0'));
                nibbles.resize(16, 0x0F);
                out.extend(nibbles.chunks(2).map(|p| (p[0] << 4) | p[1]));
                return Ok(out);
            }
        }
        if self.needs_padding && out.len() < self.stored_len {
            out.resize(self.stored_len, self.pad_char);
        }
        Ok(out)
    }
}

/// The state of a code as the card reports it (docs/card-spec.md §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinStatus {
    /// Tries left, when the card says (CPS4 answers `9000` without a count when already verified).
    pub tries_left: Option<u8>,
    /// Maximum tries (CPS3 tag 9A; the CPS4 does not tell, docs/card-spec.md §10.6).
    pub max_tries: Option<u8>,
    /// Blocked: no try left, or (CPS3) usage counter 9D at 0 (docs/card-spec.md §3.2).
    pub blocked: bool,
    /// Known to be verified in the current card session (CPS4 `9000`).
    pub verified: Option<bool>,
    /// CPS3 usage counter (tag 9D, e.g. 100 unblocks for the PUK, docs/card-spec.md §8.4).
    pub usage_left: Option<u16>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_cps3_aodf_policy_pads_to_8_with_ff() {
        // Brief: minLength 4, storedLength 8, maxLength 4, needs-padding, padChar FF.
        let p = PinPolicy {
            min_len: 4,
            max_len: 4,
            stored_len: 8,
            needs_padding: true,
            pad_char: 0xFF,
            pin_type: PinType::AsciiNumeric,
            reference: 1,
        };
        let out = p.format(PinKind::User, &Pin::new("1234")).unwrap();
        assert_eq!(&out[..], &[0x31, 0x32, 0x33, 0x34, 0xFF, 0xFF, 0xFF, 0xFF]);
        assert!(matches!(
            p.format(PinKind::User, &Pin::new("12345")),
            Err(CardError::PinFormat { .. })
        ));
        assert!(matches!(
            p.format(PinKind::User, &Pin::new("12a4")),
            Err(CardError::PinFormat { .. })
        ));
    }

    #[test]
    fn defaults_are_4_and_8_digits_unpadded() {
        let pin = PinPolicy::default_for(PinKind::User);
        assert_eq!(
            &pin.format(PinKind::User, &Pin::new("1234")).unwrap()[..],
            b"1234"
        );
        assert!(pin.format(PinKind::User, &Pin::new("123")).is_err());
        let puk = PinPolicy::default_for(PinKind::Puk);
        assert_eq!(
            &puk.format(PinKind::Puk, &Pin::new("12345678")).unwrap()[..],
            b"12345678"
        );
        assert!(puk.format(PinKind::Puk, &Pin::new("1234")).is_err());
    }

    #[test]
    fn other_encodings() {
        let mut p = PinPolicy::default_for(PinKind::User);
        p.pin_type = PinType::Bcd;
        p.pad_char = 0xFF;
        assert_eq!(
            &p.format(PinKind::User, &Pin::new("1234")).unwrap()[..],
            &[0x12, 0x34]
        );
        p.pin_type = PinType::HalfNibbleBcd;
        assert_eq!(
            &p.format(PinKind::User, &Pin::new("1234")).unwrap()[..],
            &[0xF1, 0xF2, 0xF3, 0xF4]
        );
        p.pin_type = PinType::Iso9564;
        assert_eq!(
            &p.format(PinKind::User, &Pin::new("1234")).unwrap()[..],
            &[0x24, 0x12, 0x34, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]
        );
    }
}
