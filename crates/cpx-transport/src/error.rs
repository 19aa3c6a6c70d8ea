//! The transport's one error type.

use cpx_apdu::ApduError;

/// Everything that can go wrong between us and the card, with the reader named where it matters.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// pcscd is not running or not reachable.
    #[error("the PC/SC service is not running (start pcscd)")]
    NoService,
    /// pcscd runs but sees no reader.
    #[error("no smart card reader found")]
    NoReaders,
    /// No reader has that name.
    #[error("no reader named {0:?}")]
    UnknownReader(String),
    /// The reader is empty.
    #[error("no card in reader {0:?}")]
    NoCard(String),
    /// The card was pulled out while we were connected.
    #[error("the card was removed from reader {0:?}")]
    CardRemoved(String),
    /// Another program reset the card. We have reconnected; the caller must re-select its
    /// application and consider the PIN unverified.
    #[error(
        "the card in {0:?} was reset by another program: its security state (verified PIN, \
         selected application) is lost"
    )]
    CardReset(String),
    /// The card does not answer (mute, badly inserted, or not powered).
    #[error("the card in {0:?} does not respond")]
    CardMute(String),
    /// Another program holds the card exclusively.
    #[error("the card in {0:?} is held exclusively by another program")]
    SharingViolation(String),
    /// The reader went away (unplugged) while we used it.
    #[error("reader {0:?} is no longer available")]
    ReaderUnavailable(String),
    /// A blocking call was cancelled through a [`Canceller`](crate::Canceller).
    #[error("cancelled")]
    Cancelled,
    /// A wait ran out of time.
    #[error("timed out")]
    Timeout,
    /// The command cannot be encoded as a short APDU.
    #[error("invalid command: {0}")]
    InvalidCommand(#[source] ApduError),
    /// The card answered something that is not a response APDU (empty, one byte, oversized).
    #[error("malformed response from the card in {reader:?}: {source}")]
    MalformedResponse {
        /// The reader of the card.
        reader: String,
        /// What was wrong.
        #[source]
        source: ApduError,
    },
    /// The card kept announcing more data (61xx/9Fxx) past any sane size.
    #[error(
        "the card in {reader:?} announced more than {limit} bytes of response; GET RESPONSE loop aborted"
    )]
    ResponseTooLong {
        /// The reader of the card.
        reader: String,
        /// The limit that was crossed.
        limit: usize,
    },
    /// The reader does not support the control command it was sent (`SCardControl`): no driver
    /// support for it, or a code the reader never announced.
    #[error("reader {0:?} does not support this control command")]
    ControlUnsupported(String),
    /// A reader's answer to a control command is not what the standard says: a feature list
    /// (`CM_IOCTL_GET_FEATURE_REQUEST`) or a property list (`FEATURE_GET_TLV_PROPERTIES`) that
    /// does not parse (docs/reader-features.md).
    #[error("malformed reader answer at byte {offset}: {problem}")]
    MalformedReaderAnswer {
        /// Where the faulty entry starts in the answer.
        offset: usize,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// Any other PC/SC failure, with the call that failed.
    #[error("PC/SC {call} failed: {source}")]
    Pcsc {
        /// The PC/SC call (e.g. `SCardTransmit`).
        call: &'static str,
        /// The PC/SC error.
        #[source]
        source: pcsc::Error,
    },
}

impl TransportError {
    /// Map a PC/SC error to the precise variant, naming the reader.
    pub(crate) fn from_pcsc(call: &'static str, reader: &str, e: pcsc::Error) -> Self {
        use pcsc::Error as E;
        match e {
            E::NoService | E::ServiceStopped | E::NoReadersAvailable if call == "SCardEstablishContext" => {
                Self::NoService
            }
            E::NoService | E::ServiceStopped => Self::NoService,
            E::NoReadersAvailable => Self::NoReaders,
            E::UnknownReader => Self::UnknownReader(reader.to_owned()),
            E::NoSmartcard => Self::NoCard(reader.to_owned()),
            E::RemovedCard => Self::CardRemoved(reader.to_owned()),
            // On an open handle, pcsc-lite answers PROTO_MISMATCH when the card now in the reader
            // negotiated another protocol than the one we connected to: it is another card (seen
            // when a T=0 CPS3 is swapped for a T=1 CPS4 between two polls).
            E::ProtoMismatch if matches!(call, "SCardTransmit" | "SCardBeginTransaction") => {
                Self::CardRemoved(reader.to_owned())
            }
            E::ResetCard => Self::CardReset(reader.to_owned()),
            E::UnresponsiveCard | E::UnpoweredCard | E::UnsupportedCard => Self::CardMute(reader.to_owned()),
            E::SharingViolation => Self::SharingViolation(reader.to_owned()),
            E::ReaderUnavailable => Self::ReaderUnavailable(reader.to_owned()),
            E::UnsupportedFeature if call == "SCardControl" => Self::ControlUnsupported(reader.to_owned()),
            E::Cancelled => Self::Cancelled,
            E::Timeout => Self::Timeout,
            source => Self::Pcsc { call, source },
        }
    }

    /// Whether pcscd itself is gone: not running ([`TransportError::NoService`]), or lost under
    /// an open context — pcsc-lite answers a comm error to a client blocked in
    /// `SCardGetStatusChange` when pcscd dies, and an invalid handle to a context of a pcscd
    /// that was restarted since. Every card handle is gone with it.
    ///
    /// ```
    /// use cpx_transport::TransportError;
    /// assert!(TransportError::NoService.is_service_lost());
    /// assert!(!TransportError::Timeout.is_service_lost());
    /// ```
    pub fn is_service_lost(&self) -> bool {
        use pcsc::Error as E;
        matches!(
            self,
            Self::NoService
                | Self::Pcsc {
                    source: E::CommError | E::InvalidHandle | E::ServiceStopped,
                    ..
                }
        )
    }

    /// Whether the card (or reader) is gone: the caller should drop its channel and wait for a card.
    pub fn is_card_gone(&self) -> bool {
        matches!(
            self,
            Self::CardRemoved(_) | Self::NoCard(_) | Self::ReaderUnavailable(_) | Self::UnknownReader(_)
        )
    }
}
