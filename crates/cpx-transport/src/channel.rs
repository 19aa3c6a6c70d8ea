//! The transport abstraction the card layer is written against.

use cpx_apdu::{Command, Response};

use crate::{ControlCode, ExchangePolicy, ReaderFeatures, TransportError};

/// The transmission protocol negotiated with the card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// Character protocol: case-4 commands go out as case 3 and the card answers `61xx`.
    T0,
    /// Block protocol: Le travels with the command and data comes back directly.
    T1,
    /// Raw (reader-specific) or undetermined.
    Raw,
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Protocol::T0 => "T=0",
            Protocol::T1 => "T=1",
            Protocol::Raw => "raw",
        })
    }
}

/// A connection to one card in one reader.
///
/// [`transmit`](CardChannel::transmit) sends one command and collects its whole response (GET
/// RESPONSE chains included) atomically with respect to other programs. Operations made of several
/// commands (select + verify + sign) run inside a [`transaction`](CardChannel::transaction) so no
/// other program's APDU can slip in between.
///
/// ```no_run
/// use cpx_apdu::Command;
/// use cpx_transport::{CardChannel, Pcsc};
///
/// # fn main() -> Result<(), cpx_transport::TransportError> {
/// let pcsc = Pcsc::establish()?;
/// let mut card = pcsc.connect("Virtual PCD 00 00")?;
/// let select_mf = Command::new(0x00, 0xA4, 0x09, 0x0C).with_data(vec![0x3F, 0x00]).unwrap();
/// let mut tx = card.transaction()?;
/// let response = tx.transmit(&select_mf)?;
/// assert!(response.is_success());
/// # Ok(()) }
/// ```
pub trait CardChannel: Send {
    /// The reader's PC/SC name.
    fn reader(&self) -> &str;
    /// The card's answer-to-reset.
    fn atr(&self) -> &[u8];
    /// The protocol in use.
    fn protocol(&self) -> Protocol;
    /// How responses are collected (set once the card generation is known).
    fn policy(&self) -> ExchangePolicy;
    /// Change how responses are collected.
    fn set_policy(&mut self, policy: ExchangePolicy);
    /// Send one command and return its complete response, in a transaction of its own.
    fn transmit(&mut self, command: &Command) -> Result<Response, TransportError>;
    /// Begin an exclusive transaction; it ends when the returned value is dropped (or
    /// [`CardTransaction::end`] is called). Blocks while another program holds one.
    fn transaction(&mut self) -> Result<Box<dyn CardTransaction + '_>, TransportError>;
    /// Reconnect to the card, optionally resetting it (which loses its security state).
    fn reconnect(&mut self, reset: bool) -> Result<(), TransportError>;
    /// Send a control command to the reader (`SCardControl`) in a transaction of its own, and
    /// return its answer. The codes a reader accepts come from
    /// [`reader_features`](CardChannel::reader_features); a reader that has no such command
    /// answers [`TransportError::ControlUnsupported`].
    fn control(&mut self, code: ControlCode, input: &[u8]) -> Result<Vec<u8>, TransportError>;
    /// The reader's PC/SC part 10 features (docs/reader-features.md), asked on first use and
    /// cached for the life of this connection.
    ///
    /// A reader that cannot answer (no control support, as vpcd) or answers garbage has no
    /// features: that is [`ReaderFeatures::none`], not an error. Errors are only those the caller
    /// must act on whatever it was doing: the card reset by another program, the card or reader
    /// gone, pcscd lost.
    ///
    /// ```no_run
    /// use cpx_transport::{CardChannel, Feature, Pcsc};
    ///
    /// let pcsc = Pcsc::establish()?;
    /// let mut card = pcsc.connect("Virtual PCD 00 00")?;
    /// if let Some(code) = card.reader_features()?.get(Feature::VERIFY_PIN_DIRECT) {
    ///     println!("PIN pad: VERIFY_PIN_DIRECT through control code {code}");
    /// }
    /// # Ok::<(), cpx_transport::TransportError>(())
    /// ```
    fn reader_features(&mut self) -> Result<ReaderFeatures, TransportError>;
    /// Show `tap` every APDU as it goes to the card and the card's answer as it comes back,
    /// below the GET RESPONSE and `6Cxx` handling of [`exchange`](crate::exchange) (so a T=0
    /// answer is seen as its `61xx` and GET RESPONSE steps); `None` removes it. For recording
    /// tools (`cpx report`): the tap sees PIN commands as sent, so it must mask them itself.
    /// A channel that has no such level (a test double) ignores it.
    fn set_wire_tap(&mut self, tap: Option<WireTap>) {
        let _ = tap;
    }
}

/// What [`CardChannel::set_wire_tap`] calls: the command APDU as sent, then the response APDU
/// (data ‖ SW1 SW2) as received.
pub type WireTap = std::sync::Arc<dyn Fn(&[u8], &[u8]) + Send + Sync>;

/// An exclusive transaction on a card: nobody else's APDUs until it ends.
pub trait CardTransaction {
    /// Send one command and return its complete response.
    fn transmit(&mut self, command: &Command) -> Result<Response, TransportError>;
    /// The reader's PC/SC name.
    fn reader(&self) -> &str;
    /// Send a control command to the reader (`SCardControl`) inside this transaction: a PIN-pad
    /// VERIFY goes through here, between the SELECT before it and the commands after it.
    fn control(&mut self, code: ControlCode, input: &[u8]) -> Result<Vec<u8>, TransportError>;
    /// The reader's features, as [`CardChannel::reader_features`] (same cache).
    fn reader_features(&mut self) -> Result<ReaderFeatures, TransportError>;
    /// End the transaction, optionally resetting the card (e.g. to drop a verified PIN).
    fn end(self: Box<Self>, reset: bool) -> Result<(), TransportError>;
}
