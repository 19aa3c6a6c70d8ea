//! The crate's error types: one enum for certificates and files, one struct for BER-TLV.

use std::path::PathBuf;

use serde::Serialize;

/// Which name of a certificate an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NameField {
    /// The subject DN.
    Subject,
    /// The issuer DN.
    Issuer,
}

impl std::fmt::Display for NameField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NameField::Subject => "subject",
            NameField::Issuer => "issuer",
        })
    }
}

/// Why a certificate (or a trust-store file) could not be turned into a profile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// No bytes at all.
    #[error("empty input: no certificate bytes")]
    Empty,
    /// The first byte is not the SEQUENCE tag a DER certificate starts with.
    #[error("not a DER certificate: expected tag 30 (SEQUENCE) at offset {offset}, found {found:02X}")]
    WrongTag {
        /// Offset of the offending tag.
        offset: usize,
        /// The tag byte found.
        found: u8,
    },
    /// The input ends before the certificate does.
    #[error("truncated DER: the certificate declares {declared} bytes, only {available} are present")]
    Truncated {
        /// Total length the outer SEQUENCE declares (header included).
        declared: usize,
        /// Bytes present.
        available: usize,
    },
    /// The outer length field cannot be right: indefinite, more than 4 length bytes, or larger
    /// than any certificate (see [`crate::cert::MAX_CERT_LEN`]).
    #[error("absurd DER length at offset {offset}: {detail}")]
    AbsurdLength {
        /// Offset of the length field.
        offset: usize,
        /// What is wrong with it.
        detail: String,
    },
    /// Bytes follow the certificate.
    #[error("{count} trailing bytes after the certificate")]
    TrailingBytes {
        /// How many.
        count: usize,
    },
    /// The X.509 parser refused the structure inside the outer SEQUENCE.
    #[error("malformed certificate: {0}")]
    Malformed(String),
    /// A DN whose structure is wrong (not SEQUENCE OF SET OF SEQUENCE { OID, value }).
    #[error("malformed {name} name: {detail}")]
    BadName {
        /// Subject or issuer.
        name: NameField,
        /// What is wrong.
        detail: String,
    },
    /// A DN attribute's bytes are not valid for its string type (e.g. a UTF8String that is not
    /// UTF-8).
    #[error("{name} RDN #{rdn}, attribute {attribute}: {string_type} value is not valid ({detail})")]
    BadString {
        /// Subject or issuer.
        name: NameField,
        /// RDN index (0 = first in DER order).
        rdn: usize,
        /// Attribute short name or OID.
        attribute: String,
        /// ASN.1 string type of the value.
        string_type: String,
        /// What is wrong.
        detail: String,
    },
    /// A critical extension this crate does not process (RFC 5280 §4.2: reject).
    #[error("unknown critical extension {oid}")]
    UnknownCriticalExtension {
        /// Its OID.
        oid: String,
    },
    /// A known extension whose value does not parse.
    #[error("malformed extension {name} ({oid}): {detail}")]
    BadExtension {
        /// Its OID.
        oid: String,
        /// Its name.
        name: String,
        /// What is wrong.
        detail: String,
    },
    /// An instant that cannot be parsed or represented.
    #[error("invalid time {0:?}: expected RFC 3339, e.g. 2027-01-01T00:00:00Z")]
    BadTime(String),
    /// A directory or file could not be read.
    #[error("cannot read {}: {reason}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error, as text.
        reason: String,
    },
}

/// Where and why BER-TLV decoding stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error, Serialize)]
#[error("BER-TLV error at offset {offset}: {kind}")]
pub struct TlvError {
    /// Offset of the offending data object (or byte) in the decoded input.
    pub offset: usize,
    /// The cause.
    pub kind: TlvErrorKind,
}

/// The cause of a [`TlvError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum TlvErrorKind {
    /// The input ends inside a tag.
    #[error("truncated tag")]
    TruncatedTag,
    /// A tag longer than 4 bytes.
    #[error("tag longer than 4 bytes")]
    TagTooLong,
    /// The input ends inside a length field.
    #[error("truncated length")]
    TruncatedLength,
    /// Length byte `80` (indefinite form), not used by card data.
    #[error("indefinite length")]
    IndefiniteLength,
    /// A long-form length with more than 4 length bytes.
    #[error("length field of {bytes} bytes")]
    LengthTooLong {
        /// Number of length bytes announced.
        bytes: usize,
    },
    /// The value is longer than the bytes left.
    #[error("value of {length} bytes but only {available} left")]
    ValueOverrun {
        /// Declared length.
        length: usize,
        /// Bytes actually left after the header.
        available: usize,
    },
    /// Constructed objects nested deeper than [`crate::tlv::MAX_DEPTH`].
    #[error("nesting deeper than {max}")]
    TooDeep {
        /// The limit.
        max: usize,
    },
}
