//! Error types of the crate: [`ApduError`] for building and parsing APDUs, [`TlvError`] for BER-TLV.

/// An APDU could not be built or parsed.
///
/// Only short APDUs exist on CPx cards (docs/card-spec.md §2.3: no extended length), so every limit here is a
/// short-APDU limit: at most 255 data bytes in a command, Le in `1..=256`, at most 256 data bytes
/// in a response.
///
/// ```
/// use cpx_apdu::{ApduError, Command};
///
/// let err = Command::new(0x00, 0xD6, 0x00, 0x00).with_data(vec![0; 300]).unwrap_err();
/// assert_eq!(err, ApduError::DataTooLong { len: 300 });
/// ```
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum ApduError {
    /// Command data longer than the 255 bytes a short APDU can carry; use [`chain`](crate::chain).
    #[error("command data of {len} bytes does not fit a short APDU (at most 255)")]
    DataTooLong {
        /// Length of the data that was refused.
        len: usize,
    },
    /// Le outside `1..=256` (256 is encoded as `00`).
    #[error("Le {0} is outside 1..=256")]
    InvalidLe(u16),
    /// Chunk size for command chaining outside `1..=255`.
    #[error("chaining chunk size {0} is outside 1..=255")]
    InvalidChunkSize(usize),
    /// A response APDU shorter than the 2 status bytes; holds the length received.
    #[error("response of {0} bytes is shorter than the 2-byte status word")]
    ResponseTooShort(usize),
    /// A response APDU longer than 256 data bytes + SW1 SW2; holds the length received.
    #[error("response of {0} bytes exceeds a short APDU (at most 258)")]
    ResponseTooLong(usize),
    /// A command APDU shorter than its 4-byte header; holds the length received.
    #[error("command of {0} bytes is shorter than the 4-byte header")]
    CommandTooShort(usize),
    /// A command APDU whose Lc byte disagrees with its total length.
    #[error("command of {len} bytes does not match its Lc byte {lc}")]
    CommandLengthMismatch {
        /// The Lc byte (number of data bytes announced).
        lc: u8,
        /// Total length of the command APDU, header included.
        len: usize,
    },
    /// A command APDU in extended-length form (byte 5 is `00` and more bytes follow); CPx cards
    /// only use short APDUs (docs/card-spec.md §2.3).
    #[error("extended-length command APDUs are not supported")]
    ExtendedLength,
}

/// BER-TLV data could not be parsed.
///
/// Every variant that concerns a position carries `offset`: the index of the offending byte in the
/// slice handed to the parsing function (for [`Tlv::children`](crate::tlv::Tlv::children), in the
/// parent's value).
///
/// ```
/// use cpx_apdu::{TlvError, tlv};
///
/// // Tag 5A announces 10 bytes but only 2 follow.
/// assert_eq!(tlv::parse_all(&[0x5A, 0x0A, 0x80, 0x25]), Err(TlvError::Truncated { offset: 0 }));
/// ```
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum TlvError {
    /// The element starting at `offset` (its first tag byte) runs past the end of the input:
    /// tag, length field or value cut short.
    #[error("TLV element at offset {offset} is truncated")]
    Truncated {
        /// Index of the first tag byte of the truncated element.
        offset: usize,
    },
    /// Indefinite length (`80`), which ISO 7816-4 does not allow; `offset` is the length byte.
    #[error("indefinite length at offset {offset}")]
    IndefiniteLength {
        /// Index of the `80` length byte.
        offset: usize,
    },
    /// A long-form length of more than 4 bytes (`85` and above, or the reserved `FF`); `offset`
    /// is the first length byte.
    #[error("length field at offset {offset} is too large")]
    LengthTooLarge {
        /// Index of the first length byte.
        offset: usize,
    },
    /// A tag of more than 4 bytes (it would not fit the `u32` of [`Tlv::tag`](crate::tlv::Tlv::tag));
    /// `offset` is its first byte.
    #[error("tag at offset {offset} is longer than 4 bytes")]
    TagTooLong {
        /// Index of the first tag byte.
        offset: usize,
    },
    /// A path longer than [`MAX_DEPTH`](crate::tlv::MAX_DEPTH), or data nested deeper than that.
    #[error("TLV nesting deeper than {} levels", crate::tlv::MAX_DEPTH)]
    TooDeep,
    /// An INTEGER value read as unsigned ([`Tlv::uint`](crate::tlv::Tlv::uint)) is empty or
    /// negative.
    #[error("not a non-negative INTEGER")]
    NotUnsigned,
    /// An INTEGER value read as unsigned does not fit 32 bits.
    #[error("INTEGER too large")]
    IntegerTooLarge,
}
