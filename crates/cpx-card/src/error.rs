//! The crate's one error type.

use cpx_apdu::{ApduError, StatusWord};
use cpx_transport::TransportError;

use crate::pin::PinKind;

/// Everything that can go wrong in the card layer, precise enough for a PKCS#11 module to map
/// each case to one return code (docs/card-spec.md §3.3).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CardError {
    /// The ATR is none of the CPx ATRs of docs/card-spec.md §1.1 / docs/card-notes.md §2.
    #[error("not a CPx card: unknown ATR {atr}")]
    NotCpxCard {
        /// The ATR, upper-case hex.
        atr: String,
    },
    /// EF.SN.ICC does not carry the ANS issuer number `80 25 00 00 01` (docs/card-spec.md §1.3).
    #[error("not a CPx card: EF.SN.ICC issuer {found} is not 8025000001")]
    WrongIssuer {
        /// The first five PAN bytes found, hex.
        found: String,
    },
    /// VERIFY (or CHANGE) refused the PIN; the card counted a failed try.
    #[error("wrong {kind}: {tries_left} tries left")]
    WrongPin {
        /// Which code.
        kind: PinKind,
        /// Tries left after this failure.
        tries_left: u8,
    },
    /// The PIN or PUK is blocked (`6983`, `63C0` on CPS4, usage counter 0 on CPS3).
    #[error("{kind} is blocked")]
    PinBlocked {
        /// Which code.
        kind: PinKind,
    },
    /// The code does not match the card's policy; nothing was sent to the card.
    #[error("{kind} rejected before reaching the card: {reason}")]
    PinFormat {
        /// Which code.
        kind: PinKind,
        /// What is wrong (length, characters).
        reason: String,
    },
    /// The card has no such code on this interface (CPS3 contactless has no PIN, docs/card-spec.md §7).
    #[error("this card interface has no {0}")]
    NoSuchPin(PinKind),
    /// The code was to be entered on the reader's PIN pad ([`crate::PinEntry::PinPad`]) and
    /// this reader cannot do it: it has no PIN pad (no `FEATURE_VERIFY_PIN_DIRECT`, or no
    /// `FEATURE_MODIFY_PIN_DIRECT` for a change), pad use is turned off for it
    /// ([`crate::PinPadSetting`]), the card's PIN format cannot be described to a pad, or the
    /// pad's digit limits exclude the card's PIN length. Nothing was sent to the card.
    #[error("{operation} on the PIN pad of {reader:?}: {reason} (nothing was sent to the card)")]
    PinPadUnsupported {
        /// The operation asked (verify, change PIN, unblock PIN).
        operation: &'static str,
        /// The reader name.
        reader: String,
        /// Why the pad cannot be used.
        reason: String,
    },
    /// The user pressed Cancel on the PIN pad (the reader answered `6401`, PC/SC part 10
    /// §2.5): the card saw nothing, no try spent.
    #[error("{operation} cancelled on the PIN pad (no try spent)")]
    PinPadCancelled {
        /// The operation (verify, change PIN, unblock PIN).
        operation: &'static str,
    },
    /// Nothing was typed on the PIN pad before its timeout (the reader answered `6400`): the
    /// card saw nothing, no try spent.
    #[error("{operation}: nothing typed on the PIN pad before its timeout (no try spent)")]
    PinPadTimeout {
        /// The operation.
        operation: &'static str,
    },
    /// The new PIN and its confirmation typed on the PIN pad differ (the reader answered
    /// `6402`): the card saw nothing, no try spent.
    #[error("{operation}: the new PIN and its confirmation typed on the PIN pad differ (no try spent)")]
    PinPadMismatch {
        /// The operation.
        operation: &'static str,
    },
    /// The code typed on the PIN pad has fewer or more digits than the card's policy allows
    /// (the reader answered `6403`): the card saw nothing, no try spent.
    #[error("{operation}: the code typed on the PIN pad has a wrong number of digits (no try spent)")]
    PinPadLength {
        /// The operation.
        operation: &'static str,
    },
    /// `6982`: the operation needs the PIN.
    #[error("security status not satisfied for {operation}: present the PIN first")]
    SecurityStatusNotSatisfied {
        /// The operation refused.
        operation: &'static str,
    },
    /// `6984`/`6985`/`6986`/`6900`: the key or object does not allow this use (docs/card-spec.md §3.3).
    #[error("{operation} not allowed by the card ({sw})")]
    NotAllowed {
        /// The operation refused.
        operation: &'static str,
        /// The status word.
        sw: StatusWord,
    },
    /// The card was removed; [`Card::reconnect`](crate::Card::reconnect) once it is back.
    #[error("the card was removed from {reader:?}")]
    CardRemoved {
        /// The reader name.
        reader: String,
    },
    /// The card was reset (by another program or a reinsertion of the same card): the layer has
    /// re-selected the application and checked the serial, but a verified PIN is lost.
    #[error("the card was reset: the PIN must be presented again")]
    PinStateLost,
    /// Another card is now in the reader (the serial number differs).
    #[error("a different card is in the reader: expected serial {expected}, found {found}")]
    DifferentCard {
        /// The serial of the card this session was opened on.
        expected: String,
        /// The serial of the card now present.
        found: String,
    },
    /// Card data that does not parse, with the offending object named.
    #[error("malformed card data in {object}: {reason}")]
    MalformedCardData {
        /// The object (file or PKCS#15 entry).
        object: String,
        /// What is wrong.
        reason: String,
    },
    /// No object of that name (data object label, key role, file).
    #[error("no such object on the card: {0}")]
    ObjectNotFound(String),
    /// The operation does not exist on this card generation or interface.
    #[error("{operation} is not supported here: {reason}")]
    Unsupported {
        /// The operation.
        operation: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// Caller data the card cannot take (length, DigestInfo); nothing was sent.
    #[error("invalid input for {operation}: {reason}")]
    InvalidInput {
        /// The operation.
        operation: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// Any other status word, with the operation.
    #[error("{operation} failed: {sw}")]
    Status {
        /// The operation.
        operation: &'static str,
        /// The status word.
        sw: StatusWord,
    },
    /// Building an APDU failed (a bug, or oversized input).
    #[error("cannot build the command: {0}")]
    Apdu(#[from] ApduError),
    /// The transport failed (PC/SC, reader gone, malformed response).
    #[error(transparent)]
    Transport(TransportError),
}

impl From<TransportError> for CardError {
    fn from(e: TransportError) -> Self {
        match e {
            TransportError::CardRemoved(reader) | TransportError::NoCard(reader) => {
                CardError::CardRemoved { reader }
            }
            other => CardError::Transport(other),
        }
    }
}

impl CardError {
    /// A [`CardError::MalformedCardData`].
    pub(crate) fn malformed(object: impl Into<String>, reason: impl Into<String>) -> Self {
        CardError::MalformedCardData {
            object: object.into(),
            reason: reason.into(),
        }
    }

    /// Map a failing status word of `operation` (docs/card-spec.md §3.3).
    pub(crate) fn from_sw(operation: &'static str, sw: StatusWord) -> Self {
        match sw.to_u16() {
            0x6982 | 0x9804 | 0x9802 => CardError::SecurityStatusNotSatisfied { operation },
            0x6984 | 0x6985 | 0x6986 | 0x6900 => CardError::NotAllowed { operation, sw },
            _ => CardError::Status { operation, sw },
        }
    }

    /// Whether this is a reset reported by the transport.
    pub(crate) fn is_reset(&self) -> bool {
        matches!(self, CardError::Transport(TransportError::CardReset(_)))
    }
}
