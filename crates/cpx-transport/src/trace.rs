//! APDU traces at `trace` level, target `cpx::apdu`. PIN-carrying data is masked by
//! [`Command::trace`]; decrypted data (possibly a session key) is masked here.

use cpx_apdu::{Command, spaced_hex};

use crate::{ControlCode, TransportError};

pub(crate) fn command(reader: &str, command: &Command) {
    if log::log_enabled!(target: "cpx::apdu", log::Level::Trace) {
        log::trace!(target: "cpx::apdu", "{reader} > {}", command.trace());
    }
}

pub(crate) fn response(reader: &str, command: &Command, bytes: &[u8]) {
    if !log::log_enabled!(target: "cpx::apdu", log::Level::Trace) {
        return;
    }
    // PSO DECIPHER (INS 2A, P1P2 80 86) returns plaintext: a TLS pre-master secret, a document key.
    let secret = command.ins() == 0x2A && command.p1() == 0x80 && command.p2() == 0x86;
    let text = match bytes.len() {
        n if n >= 2 && secret && n > 2 => {
            format!("<{} bytes masked> {}", n - 2, hex::encode_upper(&bytes[n - 2..]))
        }
        _ => spaced_hex(bytes),
    };
    log::trace!(target: "cpx::apdu", "{reader} < {text}");
}

/// A control command (`SCardControl`) and its outcome. Only sizes are traced: a control's data
/// may be a PIN-pad structure, and its answer the card's.
pub(crate) fn control(
    reader: &str,
    code: ControlCode,
    sent: usize,
    result: &Result<Vec<u8>, TransportError>,
) {
    if !log::log_enabled!(target: "cpx::apdu", log::Level::Trace) {
        return;
    }
    match result {
        Ok(answer) => log::trace!(
            target: "cpx::apdu",
            "{reader} control {code}: {sent} bytes > {} bytes <",
            answer.len()
        ),
        Err(e) => log::trace!(target: "cpx::apdu", "{reader} control {code}: {sent} bytes > {e}"),
    }
}
