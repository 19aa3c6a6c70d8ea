//! Status words (SW1 SW2) and their typed meaning.

use std::fmt;

/// The two status bytes SW1 SW2 that end every response APDU.
///
/// ```
/// use cpx_apdu::{Status, StatusWord};
///
/// let sw = StatusWord::from_u16(0x63C2);
/// assert_eq!(sw.kind(), Status::VerifyFailed { tries_left: 2 });
/// assert_eq!(sw.to_string(), "63C2 (verification failed, 2 tries left)");
/// assert!(StatusWord::SUCCESS.is_success());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct StatusWord(pub u8, pub u8);

impl StatusWord {
    /// `90 00`: normal processing.
    pub const SUCCESS: StatusWord = StatusWord(0x90, 0x00);

    /// Builds a status word from `0xSW1SW2`.
    pub const fn from_u16(sw: u16) -> Self {
        let [sw1, sw2] = sw.to_be_bytes();
        StatusWord(sw1, sw2)
    }

    /// The status word as `0xSW1SW2`.
    pub const fn to_u16(self) -> u16 {
        u16::from_be_bytes([self.0, self.1])
    }

    /// SW1.
    pub const fn sw1(self) -> u8 {
        self.0
    }

    /// SW2.
    pub const fn sw2(self) -> u8 {
        self.1
    }

    /// `true` for `90 00` only.
    pub const fn is_success(self) -> bool {
        self.0 == 0x90 && self.1 == 0x00
    }

    /// The typed meaning of this status word.
    pub const fn kind(self) -> Status {
        // A count byte of 00 means 256 in 61xx, 9Fxx and 6Cxx (short Le convention).
        let count = if self.1 == 0 { 256 } else { self.1 as u16 };
        match (self.0, self.1) {
            (0x90, 0x00) => Status::Success,
            (0x61, _) => Status::BytesAvailable(count),
            // docs/card-spec.md §2.2, §2.3: CPS2ter volet on T=0 answers 9Fxx, fetched with CLA A0.
            (0x9F, _) => Status::Cps2terBytesAvailable(count),
            (0x6C, _) => Status::WrongLe { exact: count },
            (0x63, 0x00) => Status::WarningNoInformation,
            (0x63, 0xC0..=0xCF) => Status::VerifyFailed {
                tries_left: self.1 & 0x0F,
            },
            (0x65, 0x81) => Status::MemoryFailure,
            (0x67, 0x00) => Status::WrongLength,
            (0x68, 0x81) => Status::LogicalChannelNotSupported,
            (0x69, 0x00) => Status::CommandNotAllowed,
            (0x69, 0x82) => Status::SecurityStatusNotSatisfied,
            (0x69, 0x83) => Status::AuthenticationMethodBlocked,
            (0x69, 0x84) => Status::ReferenceDataNotUsable,
            (0x69, 0x85) => Status::ConditionsOfUseNotSatisfied,
            (0x69, 0x86) => Status::CommandNotAllowedNoCurrentEf,
            (0x6A, 0x80) => Status::IncorrectData,
            (0x6A, 0x81) => Status::FunctionNotSupported,
            (0x6A, 0x82) => Status::FileNotFound,
            (0x6A, 0x83) => Status::RecordNotFound,
            (0x6A, 0x84) => Status::NotEnoughMemory,
            (0x6A, 0x86) => Status::IncorrectP1P2,
            (0x6A, 0x88) => Status::ReferencedDataNotFound,
            (0x6B, 0x00) => Status::WrongP1P2,
            (0x6D, 0x00) => Status::InsNotSupported,
            (0x6E, 0x00) => Status::ClaNotSupported,
            // docs/card-notes.md §3: CPS2ter volet status words.
            (0x94, 0x02) => Status::Cps2terBadAddressOrLength,
            (0x94, 0x04) => Status::Cps2terFileNotFound,
            (0x98, 0x02) => Status::Cps2terPinNotActivated,
            (0x98, 0x04) => Status::Cps2terPinWrong,
            (0x98, 0x40) => Status::Cps2terPinLocked,
            _ => Status::Other(self.to_u16()),
        }
    }
}

impl From<u16> for StatusWord {
    fn from(sw: u16) -> Self {
        StatusWord::from_u16(sw)
    }
}

impl From<StatusWord> for u16 {
    fn from(sw: StatusWord) -> Self {
        sw.to_u16()
    }
}

impl From<StatusWord> for Status {
    fn from(sw: StatusWord) -> Self {
        sw.kind()
    }
}

/// `6982 (security status not satisfied)`: four upper-case hex digits, then the meaning.
impl fmt::Display for StatusWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02X}{:02X} ({})", self.0, self.1, self.kind())
    }
}

/// A status word other than `90 00` is an error when a caller turns a [`Response`](crate::Response)
/// into a `Result`.
impl std::error::Error for StatusWord {}

/// The typed meaning of a [`StatusWord`] (ISO 7816-4 plus the CPS2ter status words of docs/card-notes.md §3).
///
/// Byte counts whose SW2 is `00` mean 256.
///
/// ```
/// use cpx_apdu::{Status, StatusWord};
///
/// assert_eq!(StatusWord(0x61, 0x00).kind(), Status::BytesAvailable(256));
/// assert_eq!(StatusWord(0x6A, 0x82).kind(), Status::FileNotFound);
/// assert_eq!(StatusWord(0x6F, 0x00).kind(), Status::Other(0x6F00));
/// ```
#[non_exhaustive]
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Status {
    /// `90 00`: normal processing.
    Success,
    /// `61 xx`: xx bytes are waiting for GET RESPONSE (`61 00` = 256).
    BytesAvailable(u16),
    /// `9F xx`: the same on the CPS2ter volet, fetched by GET RESPONSE with CLA `A0` (docs/card-spec.md
    /// §2.3).
    Cps2terBytesAvailable(u16),
    /// `6C xx`: wrong Le; resend with Le = `exact` (`6C 00` = 256).
    WrongLe {
        /// The Le the card wants.
        exact: u16,
    },
    /// `63 Cx`: verification failed, x tries left.
    VerifyFailed {
        /// Remaining tries (the low nibble of SW2).
        tries_left: u8,
    },
    /// `63 00`: warning, no information given.
    WarningNoInformation,
    /// `67 00`: wrong length (Lc or Le).
    WrongLength,
    /// `69 82`: security status not satisfied (PIN not verified).
    SecurityStatusNotSatisfied,
    /// `69 83`: authentication method blocked (PIN locked).
    AuthenticationMethodBlocked,
    /// `69 84`: reference data not usable.
    ReferenceDataNotUsable,
    /// `69 85`: conditions of use not satisfied.
    ConditionsOfUseNotSatisfied,
    /// `69 86`: command not allowed, no current EF.
    CommandNotAllowedNoCurrentEf,
    /// `69 00`: command not allowed.
    CommandNotAllowed,
    /// `68 81`: logical channel not supported.
    LogicalChannelNotSupported,
    /// `6A 80`: incorrect parameters in the data field.
    IncorrectData,
    /// `6A 81`: function not supported.
    FunctionNotSupported,
    /// `6A 82`: file or application not found.
    FileNotFound,
    /// `6A 83`: record not found.
    RecordNotFound,
    /// `6A 84`: not enough memory space in the file.
    NotEnoughMemory,
    /// `6A 86`: incorrect P1 P2.
    IncorrectP1P2,
    /// `6A 88`: referenced data not found.
    ReferencedDataNotFound,
    /// `6B 00`: wrong P1 P2 (offset outside the EF).
    WrongP1P2,
    /// `6D 00`: instruction not supported.
    InsNotSupported,
    /// `6E 00`: class not supported.
    ClaNotSupported,
    /// `94 02`: CPS2ter, address or length out of range (docs/card-notes.md §3).
    Cps2terBadAddressOrLength,
    /// `94 04`: CPS2ter, file identifier not found (docs/card-notes.md §3).
    Cps2terFileNotFound,
    /// `98 04`: CPS2ter, wrong PIN (docs/card-notes.md §3).
    Cps2terPinWrong,
    /// `98 40`: CPS2ter, PIN locked (docs/card-notes.md §3).
    Cps2terPinLocked,
    /// `98 02`: CPS2ter, PIN not activated (docs/card-notes.md §3).
    Cps2terPinNotActivated,
    /// `65 81`: memory failure.
    MemoryFailure,
    /// Any other status word, as `0xSW1SW2`.
    Other(u16),
}

impl Status {
    /// `true` for [`Status::Success`] only.
    pub const fn is_success(self) -> bool {
        matches!(self, Status::Success)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Status::Success => f.write_str("success"),
            Status::BytesAvailable(n) => write!(f, "{n} bytes available"),
            Status::Cps2terBytesAvailable(n) => write!(f, "CPS2ter: {n} bytes available"),
            Status::WrongLe { exact } => write!(f, "wrong Le, expected {exact}"),
            Status::VerifyFailed { tries_left } => {
                write!(f, "verification failed, {tries_left} tries left")
            }
            Status::WarningNoInformation => f.write_str("warning, no information"),
            Status::WrongLength => f.write_str("wrong length"),
            Status::SecurityStatusNotSatisfied => f.write_str("security status not satisfied"),
            Status::AuthenticationMethodBlocked => f.write_str("authentication method blocked"),
            Status::ReferenceDataNotUsable => f.write_str("reference data not usable"),
            Status::ConditionsOfUseNotSatisfied => f.write_str("conditions of use not satisfied"),
            Status::CommandNotAllowedNoCurrentEf => f.write_str("command not allowed, no current EF"),
            Status::CommandNotAllowed => f.write_str("command not allowed"),
            Status::LogicalChannelNotSupported => f.write_str("logical channel not supported"),
            Status::IncorrectData => f.write_str("incorrect data"),
            Status::FunctionNotSupported => f.write_str("function not supported"),
            Status::FileNotFound => f.write_str("file not found"),
            Status::RecordNotFound => f.write_str("record not found"),
            Status::NotEnoughMemory => f.write_str("not enough memory"),
            Status::IncorrectP1P2 => f.write_str("incorrect P1 P2"),
            Status::ReferencedDataNotFound => f.write_str("referenced data not found"),
            Status::WrongP1P2 => f.write_str("wrong P1 P2"),
            Status::InsNotSupported => f.write_str("instruction not supported"),
            Status::ClaNotSupported => f.write_str("class not supported"),
            Status::Cps2terBadAddressOrLength => f.write_str("CPS2ter: bad address or length"),
            Status::Cps2terFileNotFound => f.write_str("CPS2ter: file not found"),
            Status::Cps2terPinWrong => f.write_str("CPS2ter: wrong PIN"),
            Status::Cps2terPinLocked => f.write_str("CPS2ter: PIN locked"),
            Status::Cps2terPinNotActivated => f.write_str("CPS2ter: PIN not activated"),
            Status::MemoryFailure => f.write_str("memory failure"),
            Status::Other(_) => f.write_str("unknown status"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_status_word_is_mapped() {
        let table: &[(u16, Status)] = &[
            (0x9000, Status::Success),
            (0x6127, Status::BytesAvailable(0x27)),
            (0x6100, Status::BytesAvailable(256)),
            (0x6119, Status::BytesAvailable(0x19)),
            (0x9F0A, Status::Cps2terBytesAvailable(10)),
            (0x9F00, Status::Cps2terBytesAvailable(256)),
            (0x6C10, Status::WrongLe { exact: 16 }),
            (0x6C00, Status::WrongLe { exact: 256 }),
            (0x63C3, Status::VerifyFailed { tries_left: 3 }),
            (0x63C0, Status::VerifyFailed { tries_left: 0 }),
            (0x63CF, Status::VerifyFailed { tries_left: 15 }),
            (0x6300, Status::WarningNoInformation),
            (0x6700, Status::WrongLength),
            (0x6982, Status::SecurityStatusNotSatisfied),
            (0x6983, Status::AuthenticationMethodBlocked),
            (0x6984, Status::ReferenceDataNotUsable),
            (0x6985, Status::ConditionsOfUseNotSatisfied),
            (0x6986, Status::CommandNotAllowedNoCurrentEf),
            (0x6900, Status::CommandNotAllowed),
            (0x6881, Status::LogicalChannelNotSupported),
            (0x6A80, Status::IncorrectData),
            (0x6A81, Status::FunctionNotSupported),
            (0x6A82, Status::FileNotFound),
            (0x6A83, Status::RecordNotFound),
            (0x6A84, Status::NotEnoughMemory),
            (0x6A86, Status::IncorrectP1P2),
            (0x6A88, Status::ReferencedDataNotFound),
            (0x6B00, Status::WrongP1P2),
            (0x6D00, Status::InsNotSupported),
            (0x6E00, Status::ClaNotSupported),
            (0x9402, Status::Cps2terBadAddressOrLength),
            (0x9404, Status::Cps2terFileNotFound),
            (0x9804, Status::Cps2terPinWrong),
            (0x9840, Status::Cps2terPinLocked),
            (0x9802, Status::Cps2terPinNotActivated),
            (0x6581, Status::MemoryFailure),
            (0x6F00, Status::Other(0x6F00)),
            (0x6381, Status::Other(0x6381)),
            (0x9001, Status::Other(0x9001)),
            (0x0000, Status::Other(0x0000)),
        ];
        for &(sw, status) in table {
            let word = StatusWord::from_u16(sw);
            assert_eq!(word.kind(), status, "{sw:04X}");
            assert_eq!(Status::from(word), status);
            assert_eq!(word.to_u16(), sw);
            assert_eq!(word.is_success(), sw == 0x9000);
            assert_eq!(status.is_success(), sw == 0x9000);
        }
    }

    #[test]
    fn u16_round_trip_and_byte_order() {
        assert_eq!(StatusWord::from_u16(0x6982), StatusWord(0x69, 0x82));
        assert_eq!(StatusWord(0x69, 0x82).sw1(), 0x69);
        assert_eq!(StatusWord(0x69, 0x82).sw2(), 0x82);
        assert_eq!(u16::from(StatusWord(0x90, 0x00)), 0x9000);
        assert_eq!(StatusWord::from(0x9000), StatusWord::SUCCESS);
        for sw in 0..=u16::MAX {
            assert_eq!(StatusWord::from_u16(sw).to_u16(), sw);
        }
    }

    #[test]
    fn display() {
        assert_eq!(
            StatusWord(0x69, 0x82).to_string(),
            "6982 (security status not satisfied)"
        );
        assert_eq!(StatusWord::SUCCESS.to_string(), "9000 (success)");
        assert_eq!(StatusWord(0x61, 0x00).to_string(), "6100 (256 bytes available)");
        assert_eq!(StatusWord(0x6a, 0x82).to_string(), "6A82 (file not found)");
        assert_eq!(StatusWord(0x98, 0x40).to_string(), "9840 (CPS2ter: PIN locked)");
        assert_eq!(StatusWord(0x6F, 0x00).to_string(), "6F00 (unknown status)");
    }
}
