//! A recording [`CardChannel`]: every command the card layer sends and the complete response it
//! gets back, tagged with what the caller was doing, for `cpx report` (docs/card-report.md).
//!
//! The decorator sits between the card layer and the PC/SC channel, so the report holds exactly
//! the exchanges of the card layer's normal open and read paths, with no card logic duplicated.
//! Responses are the ones [`cpx_transport::exchange`] assembled (GET RESPONSE chains joined,
//! `6Cxx` re-issued), as the card layer sees them. The data field of VERIFY, CHANGE REFERENCE
//! DATA and RESET RETRY COUNTER is masked before it is stored: a PIN never reaches the tape.

use std::sync::{Arc, Mutex, PoisonError};

use cpx_apdu::{Command, Response};
use cpx_transport::{
    CardChannel, CardTransaction, ControlCode, ExchangePolicy, Protocol, ReaderFeatures, TransportError,
};

/// Byte written in place of each byte of a masked PIN field (`*`).
pub(crate) const PIN_MASK: u8 = 0x2A;

/// One command and what came back.
#[derive(Debug, Clone)]
pub(crate) struct Exchange {
    /// What the caller was doing (e.g. "identify and open").
    pub(crate) purpose: String,
    /// The command APDU, PIN data masked.
    pub(crate) command: Vec<u8>,
    /// Response data ‖ SW1 SW2; `None` when the transport failed.
    pub(crate) response: Option<Vec<u8>>,
    /// The transport error, when there was one.
    pub(crate) error: Option<String>,
    /// The data field was masked (a PIN command).
    pub(crate) masked: bool,
}

#[derive(Debug, Default)]
struct Log {
    purpose: String,
    exchanges: Vec<Exchange>,
    /// Probing: a `6Cxx` is recorded as the card gave it, not re-issued by the transport.
    raw_6c: bool,
    /// Every APDU as it went to the card and its answer as it came back (the transport's wire
    /// tap), PIN data masked.
    wire: Vec<(Vec<u8>, Vec<u8>)>,
}

/// The shared record: the channel writes, the command reads.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tape(Arc<Mutex<Log>>);

impl Tape {
    fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Tag the exchanges that follow with `purpose`.
    pub(crate) fn purpose(&self, purpose: &str) {
        purpose.clone_into(&mut self.log().purpose);
    }

    /// While `raw` holds, the card's `6Cxx` answers reach the caller (and the tape) as they are:
    /// the transport does not send the command again with the Le the card asked for
    /// ([`ExchangePolicy::reissue_on_6cxx`]). For the probes of how a card answers a READ BINARY
    /// past the end of a file (docs/card-report.md, `[link]`).
    pub(crate) fn raw_6c(&self, raw: bool) {
        self.log().raw_6c = raw;
    }

    /// The wire tap to give the PC/SC channel ([`CardChannel::set_wire_tap`]): what it sees goes
    /// to this tape, PIN data masked ([`masked_raw`]).
    pub(crate) fn wire_tap(&self) -> cpx_transport::WireTap {
        let tape = self.clone();
        std::sync::Arc::new(move |command: &[u8], response: &[u8]| {
            tape.log().wire.push((masked_raw(command), response.to_vec()));
        })
    }

    /// The T=0 steps below the joined answers: every wire exchange answered `61xx`, `6Cxx` or
    /// `9Fxx`, and the one after each (its GET RESPONSE, or the command sent again).
    pub(crate) fn wire_steps(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let log = self.log();
        let announces = |r: &[u8]| r.len() >= 2 && matches!(r[r.len() - 2], 0x61 | 0x6C | 0x9F);
        log.wire
            .iter()
            .enumerate()
            .filter(|(i, (_, r))| announces(r) || i.checked_sub(1).is_some_and(|j| announces(&log.wire[j].1)))
            .map(|(_, e)| e.clone())
            .collect()
    }

    /// Everything recorded so far.
    pub(crate) fn exchanges(&self) -> Vec<Exchange> {
        self.log().exchanges.clone()
    }

    fn record(&self, command: &Command, result: &Result<Response, TransportError>) {
        let (command, masked) = masked_bytes(command);
        let mut log = self.log();
        let purpose = log.purpose.clone();
        let (response, error) = match result {
            Ok(r) => (Some(r.to_bytes().to_vec()), None),
            Err(e) => (None, Some(e.to_string())),
        };
        log.exchanges.push(Exchange {
            purpose,
            command,
            response,
            error,
            masked,
        });
    }
}

/// The command's bytes with the data field of a PIN command (VERIFY `20`, CHANGE REFERENCE DATA
/// `24`, RESET RETRY COUNTER `2C`) replaced by [`PIN_MASK`] bytes of the same length.
pub(crate) fn masked_bytes(command: &Command) -> (Vec<u8>, bool) {
    let pin_command = matches!(command.ins(), 0x20 | 0x24 | 0x2C);
    if !pin_command || command.data().is_empty() {
        return (command.to_bytes().to_vec(), false);
    }
    let mask = vec![PIN_MASK; command.data().len()];
    let masked = Command::new(command.cla(), command.ins(), command.p1(), command.p2()).with_data(mask);
    let masked = match (masked, command.le()) {
        (Ok(c), Some(le)) => c.with_le(le),
        (other, _) => other,
    };
    match masked {
        Ok(c) => (c.to_bytes().to_vec(), true),
        // Cannot happen (same lengths as a valid command); never store the original anyway.
        Err(_) => (command.to_bytes()[..4].to_vec(), true),
    }
}

/// A command APDU's bytes as [`masked_bytes`] would write them: the data field of a PIN
/// command replaced by [`PIN_MASK`] bytes (short APDUs: Lc in byte 5).
pub(crate) fn masked_raw(command: &[u8]) -> Vec<u8> {
    let mut out = command.to_vec();
    if let [_, 0x20 | 0x24 | 0x2C, _, _, lc, ..] = *command {
        let end = (5 + usize::from(lc)).min(out.len());
        out[5.min(end)..end].fill(PIN_MASK);
    }
    out
}

/// A [`CardChannel`] that records every exchange on a [`Tape`].
pub(crate) struct Recording {
    inner: Box<dyn CardChannel>,
    tape: Tape,
    /// The policy the card layer set; the inner channel gets it, `6Cxx` re-issue off while the
    /// tape says so.
    policy: ExchangePolicy,
}

impl Recording {
    /// Record the exchanges of `inner` on `tape`.
    pub(crate) fn new(inner: Box<dyn CardChannel>, tape: Tape) -> Recording {
        let policy = inner.policy();
        Recording { inner, tape, policy }
    }

    /// Give the inner channel the card layer's policy, or the probing one.
    fn apply_policy(&mut self) {
        let mut policy = self.policy;
        if self.tape.log().raw_6c {
            policy.reissue_on_6cxx = false;
        }
        if self.inner.policy() != policy {
            self.inner.set_policy(policy);
        }
    }
}

impl CardChannel for Recording {
    fn reader(&self) -> &str {
        self.inner.reader()
    }
    fn atr(&self) -> &[u8] {
        self.inner.atr()
    }
    fn protocol(&self) -> Protocol {
        self.inner.protocol()
    }
    fn policy(&self) -> ExchangePolicy {
        self.policy
    }
    fn set_policy(&mut self, policy: ExchangePolicy) {
        self.policy = policy;
        self.apply_policy();
    }
    fn transmit(&mut self, command: &Command) -> Result<Response, TransportError> {
        self.apply_policy();
        let result = self.inner.transmit(command);
        self.tape.record(command, &result);
        result
    }
    fn transaction(&mut self) -> Result<Box<dyn CardTransaction + '_>, TransportError> {
        self.apply_policy();
        let inner = self.inner.transaction()?;
        Ok(Box::new(RecordingTransaction {
            inner,
            tape: self.tape.clone(),
        }))
    }
    fn reconnect(&mut self, reset: bool) -> Result<(), TransportError> {
        self.inner.reconnect(reset)
    }
    fn control(&mut self, code: ControlCode, input: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.inner.control(code, input)
    }
    fn reader_features(&mut self) -> Result<ReaderFeatures, TransportError> {
        self.inner.reader_features()
    }
    fn set_wire_tap(&mut self, tap: Option<cpx_transport::WireTap>) {
        self.inner.set_wire_tap(tap);
    }
}

struct RecordingTransaction<'a> {
    inner: Box<dyn CardTransaction + 'a>,
    tape: Tape,
}

impl CardTransaction for RecordingTransaction<'_> {
    fn transmit(&mut self, command: &Command) -> Result<Response, TransportError> {
        let result = self.inner.transmit(command);
        self.tape.record(command, &result);
        result
    }
    fn reader(&self) -> &str {
        self.inner.reader()
    }
    fn control(&mut self, code: ControlCode, input: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.inner.control(code, input)
    }
    fn reader_features(&mut self) -> Result<ReaderFeatures, TransportError> {
        self.inner.reader_features()
    }
    fn end(self: Box<Self>, reset: bool) -> Result<(), TransportError> {
        self.inner.end(reset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_data_is_masked_and_other_commands_kept() {
        let verify = Command::new(0x00, 0x20, 0x00, 0x01)
            .with_data(b"1234\xFF\xFF\xFF\xFF".to_vec())
            .unwrap();
        let (bytes, masked) = masked_bytes(&verify);
        assert!(masked);
        assert_eq!(bytes, hex::decode("00200001082A2A2A2A2A2A2A2A").unwrap());
        let empty_verify = Command::new(0x00, 0x20, 0x00, 0x01);
        assert_eq!(
            masked_bytes(&empty_verify),
            (hex::decode("00200001").unwrap(), false)
        );
        let read = Command::new(0x00, 0xB0, 0x00, 0x00).with_le(256).unwrap();
        assert_eq!(masked_bytes(&read), (hex::decode("00B0000000").unwrap(), false));
        // The wire's raw bytes, masked alike; a 4-byte VERIFY and a short one do not panic.
        let raw = hex::decode("002000010831323334FFFFFFFF").unwrap();
        assert_eq!(
            masked_raw(&raw),
            hex::decode("00200001082A2A2A2A2A2A2A2A").unwrap()
        );
        assert_eq!(
            masked_raw(&hex::decode("00200001").unwrap()),
            hex::decode("00200001").unwrap()
        );
        assert_eq!(
            masked_raw(&hex::decode("0020000108313233").unwrap()),
            hex::decode("00200001082A2A2A").unwrap()
        );
        assert_eq!(
            masked_raw(&hex::decode("00B0000000").unwrap()),
            hex::decode("00B0000000").unwrap()
        );
    }
}
