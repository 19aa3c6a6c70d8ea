//! Command APDU parsing (card side) and status words.
//!
//! Written independently of the host-side `cpx-apdu` crate on purpose: the two sides only meet on
//! the wire (docs/architecture.md "Rules"). Short APDUs only: neither card generation supports extended
//! length (docs/card-spec.md §2.3).

/// A parsed short command APDU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// Class byte as received.
    pub cla: u8,
    /// Instruction byte.
    pub ins: u8,
    /// Parameter 1.
    pub p1: u8,
    /// Parameter 2.
    pub p2: u8,
    /// Command data (empty for cases 1 and 2).
    pub data: Vec<u8>,
    /// Le as sent: `None` when absent, `Some(0)` means 256.
    pub le: Option<u8>,
}

impl Command {
    /// Parse a short APDU. Returns `None` for anything that is not a well-formed case 1–4 short APDU
    /// (the card answers `67 00` then).
    pub fn parse(raw: &[u8]) -> Option<Self> {
        let (header, body) = raw.split_first_chunk::<4>()?;
        let [cla, ins, p1, p2] = *header;
        let (data, le) = match body {
            [] => (Vec::new(), None),
            [le] => (Vec::new(), Some(*le)),
            [lc, rest @ ..] => {
                let lc = usize::from(*lc);
                if lc == 0 {
                    // A zero Lc with more bytes would be an extended APDU: not supported.
                    return None;
                }
                match rest.len().checked_sub(lc)? {
                    0 => (rest.to_vec(), None),
                    1 => (rest[..lc].to_vec(), rest.get(lc).copied()),
                    _ => return None,
                }
            }
        };
        Some(Self {
            cla,
            ins,
            p1,
            p2,
            data,
            le,
        })
    }

    /// The number of bytes Le asks for (`00` = 256), or `None` when Le is absent.
    pub fn ne(&self) -> Option<usize> {
        self.le.map(|b| if b == 0 { 256 } else { usize::from(b) })
    }
}

/// Status words used by the cards (ISO 7816-4 §5.1.3 unless noted).
pub mod sw {
    /// Normal processing.
    pub const OK: u16 = 0x9000;
    /// End of file reached before reading Ne bytes.
    pub const EOF_WARNING: u16 = 0x6282;
    /// Wrong length.
    pub const WRONG_LENGTH: u16 = 0x6700;
    /// Logical channel not supported.
    pub const CHANNEL_NOT_SUPPORTED: u16 = 0x6881;
    /// Secure messaging not supported.
    pub const SM_NOT_SUPPORTED: u16 = 0x6882;
    /// Last command of the chain expected.
    pub const LAST_OF_CHAIN_EXPECTED: u16 = 0x6883;
    /// Command chaining not supported.
    pub const CHAINING_NOT_SUPPORTED: u16 = 0x6884;
    /// Security status not satisfied.
    pub const SECURITY_NOT_SATISFIED: u16 = 0x6982;
    /// Authentication method blocked.
    pub const BLOCKED: u16 = 0x6983;
    /// Conditions of use not satisfied.
    pub const CONDITIONS_NOT_SATISFIED: u16 = 0x6985;
    /// Command not allowed (no current EF).
    pub const NO_CURRENT_EF: u16 = 0x6986;
    /// Incorrect parameters in the data field.
    pub const WRONG_DATA: u16 = 0x6A80;
    /// File or application not found.
    pub const FILE_NOT_FOUND: u16 = 0x6A82;
    /// Not enough memory space in the file.
    pub const NOT_ENOUGH_MEMORY: u16 = 0x6A84;
    /// Incorrect parameters P1-P2.
    pub const WRONG_P1P2: u16 = 0x6A86;
    /// Referenced data not found.
    pub const DATA_NOT_FOUND: u16 = 0x6A88;
    /// Wrong parameters P1-P2 (offset outside the EF).
    pub const WRONG_PARAMETERS: u16 = 0x6B00;
    /// Instruction not supported.
    pub const INS_NOT_SUPPORTED: u16 = 0x6D00;
    /// Class not supported.
    pub const CLA_NOT_SUPPORTED: u16 = 0x6E00;
    /// CPS2ter: file ID not found (docs/card-notes.md §3, `card-cps.c`).
    pub const CPS2TER_NOT_FOUND: u16 = 0x9404;
    /// CPS2ter: bad address or length.
    pub const CPS2TER_BAD_ADDRESS: u16 = 0x9402;
    /// CPS2ter: access condition not fulfilled (PIN not presented).
    pub const CPS2TER_ACCESS: u16 = 0x9804;
}

/// A status word to bytes.
pub(crate) fn sw_bytes(sw: u16) -> [u8; 2] {
    sw.to_be_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_four_cases() {
        let c = Command::parse(&[0, 0xB0, 0, 0]).unwrap();
        assert_eq!((c.data.len(), c.le), (0, None));
        let c = Command::parse(&[0, 0xB0, 0, 0, 0x0C]).unwrap();
        assert_eq!((c.data.len(), c.ne()), (0, Some(12)));
        let c = Command::parse(&[0, 0xA4, 9, 0x0C, 2, 0x3F, 0]).unwrap();
        assert_eq!((c.data, c.le), (vec![0x3F, 0], None));
        let c = Command::parse(&[0, 0xA4, 9, 4, 2, 0x3F, 0, 0]).unwrap();
        assert_eq!((c.ne(), c.data), (Some(256), vec![0x3F, 0]));
        assert!(Command::parse(&[0, 0xA4, 9, 4, 3, 0x3F, 0]).is_none());
        assert!(Command::parse(&[0, 0xA4, 9, 4, 1, 0x3F, 0, 0]).is_none());
        assert!(Command::parse(&[0, 0xA4, 9]).is_none());
        assert!(Command::parse(&[0, 0xA4, 9, 4, 0, 1, 2]).is_none());
    }
}
