//! Response APDUs: data followed by SW1 SW2.

use std::fmt::{self, Write as _};

use zeroize::Zeroizing;

use crate::error::ApduError;
use crate::status::StatusWord;

/// Most bytes of one short response APDU: 256 data bytes + SW1 SW2 (docs/card-spec.md §2.3: short APDUs
/// only).
pub const MAX_RESPONSE_LEN: usize = 256 + 2;

/// A response APDU: data (possibly empty) and a status word.
///
/// The data is wiped from memory on drop (it may be a deciphered key). `Debug` shows only its
/// length; [`Response::trace`] shows it in full.
///
/// ```
/// use cpx_apdu::{Response, Status, StatusWord};
///
/// // docs/card-spec.md §1.3: READ BINARY of EF.SN.ICC.
/// let raw = [0x5A, 0x0A, 0x80, 0x25, 0x00, 0x00, 0x01, 0x99, 0x21, 0x38, 0x45, 0x0F, 0x90, 0x00];
/// let rsp = Response::from_bytes(&raw)?;
/// assert!(rsp.is_success());
/// assert_eq!(rsp.data().len(), 12);
///
/// let more = Response::from_bytes(&[0x61, 0x27])?;
/// assert_eq!(more.sw().kind(), Status::BytesAvailable(0x27));
/// assert_eq!(more.into_result(), Err(StatusWord(0x61, 0x27)));
/// # Ok::<(), cpx_apdu::ApduError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Response {
    data: Zeroizing<Vec<u8>>,
    sw: StatusWord,
}

impl Response {
    /// Parses one short response APDU. Never panics.
    ///
    /// # Errors
    /// [`ApduError::ResponseTooShort`] under 2 bytes, [`ApduError::ResponseTooLong`] over
    /// 258 bytes (256 data bytes + SW).
    pub fn from_bytes(raw: &[u8]) -> Result<Response, ApduError> {
        if raw.len() > MAX_RESPONSE_LEN {
            return Err(ApduError::ResponseTooLong(raw.len()));
        }
        match raw.split_last_chunk::<2>() {
            Some((data, &[sw1, sw2])) => Ok(Response::new(data.to_vec(), StatusWord(sw1, sw2))),
            None => Err(ApduError::ResponseTooShort(raw.len())),
        }
    }

    /// A response from parts, with no length limit: the transport uses it to join the pieces of a
    /// GET RESPONSE or READ BINARY sequence.
    pub fn new(data: Vec<u8>, sw: StatusWord) -> Response {
        Response {
            data: Zeroizing::new(data),
            sw,
        }
    }

    /// The data bytes, without the status word.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// Takes the data out; the caller now owns (and should wipe, if secret) it.
    pub fn into_data(mut self) -> Vec<u8> {
        std::mem::take(&mut *self.data)
    }

    /// The status word.
    pub fn sw(&self) -> StatusWord {
        self.sw
    }

    /// `true` when the status word is `90 00`.
    pub fn is_success(&self) -> bool {
        self.sw.is_success()
    }

    /// `Ok(data)` on `90 00`, otherwise `Err(sw)` (any data is dropped and wiped).
    ///
    /// `61xx`, `6Cxx` and `9Fxx` are errors here: the transport deals with them before.
    pub fn into_result(self) -> Result<Vec<u8>, StatusWord> {
        if self.is_success() {
            Ok(self.into_data())
        } else {
            Err(self.sw)
        }
    }

    /// Upper-case hex with spaces, data then SW, for logs: `5A 0A … 90 00`. Shows all the data.
    pub fn trace(&self) -> String {
        let mut out = String::with_capacity(3 * (self.data.len() + 2));
        for byte in self.data.iter().chain(&[self.sw.0, self.sw.1]) {
            if !out.is_empty() {
                out.push(' ');
            }
            // Writing to a String cannot fail.
            let _ = write!(out, "{byte:02X}");
        }
        out
    }

    /// The encoding: data followed by SW1 SW2.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Vec::with_capacity(self.data.len() + 2);
        out.extend_from_slice(&self.data);
        out.extend_from_slice(&[self.sw.0, self.sw.1]);
        Zeroizing::new(out)
    }
}

/// `Response { data: <12 bytes>, sw: 9000 }`: the data itself is left out, it may be secret.
impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("data", &format_args!("<{} bytes>", self.data.len()))
            .field("sw", &format_args!("{:02X}{:02X}", self.sw.0, self.sw.1))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::Status;
    use hex_literal::hex;

    #[test]
    fn parses_data_and_sw() {
        let raw = hex!("5A 0A 80 25 00 00 01 99 21 38 45 0F 90 00");
        let rsp = Response::from_bytes(&raw).unwrap();
        assert_eq!(rsp.data(), &raw[..12]);
        assert_eq!(rsp.sw(), StatusWord::SUCCESS);
        assert!(rsp.is_success());
        assert_eq!(rsp.to_bytes().as_slice(), &raw[..]);
        assert_eq!(rsp.clone().into_data(), &raw[..12]);
        assert_eq!(rsp.into_result(), Ok(raw[..12].to_vec()));
    }

    #[test]
    fn sw_only() {
        let rsp = Response::from_bytes(&hex!("61 27")).unwrap();
        assert!(rsp.data().is_empty());
        assert_eq!(rsp.sw().kind(), Status::BytesAvailable(0x27));
        assert!(!rsp.is_success());
        assert_eq!(rsp.into_result(), Err(StatusWord(0x61, 0x27)));
        let rsp = Response::from_bytes(&hex!("90 00")).unwrap();
        assert_eq!(rsp.into_result(), Ok(Vec::new()));
    }

    #[test]
    fn error_sw_with_data_is_an_error() {
        let rsp = Response::from_bytes(&hex!("01 02 62 82")).unwrap();
        assert_eq!(rsp.data(), &[1, 2]);
        assert_eq!(rsp.into_result(), Err(StatusWord(0x62, 0x82)));
    }

    #[test]
    fn malformed_responses() {
        assert_eq!(Response::from_bytes(&[]), Err(ApduError::ResponseTooShort(0)));
        assert_eq!(Response::from_bytes(&[0x90]), Err(ApduError::ResponseTooShort(1)));
        assert_eq!(
            Response::from_bytes(&[0; 259]),
            Err(ApduError::ResponseTooLong(259))
        );
        assert_eq!(
            Response::from_bytes(&[0; 4096]),
            Err(ApduError::ResponseTooLong(4096))
        );
        let mut max = vec![0xAB; 256];
        max.extend_from_slice(&hex!("90 00"));
        let rsp = Response::from_bytes(&max).unwrap();
        assert_eq!(rsp.data().len(), 256);
    }

    #[test]
    fn new_allows_joined_data() {
        // docs/card-spec.md §2.3: a 256-byte signature fetched as E7 + 19 bytes, joined by the transport.
        let rsp = Response::new(vec![0x11; 600], StatusWord::SUCCESS);
        assert_eq!(rsp.data().len(), 600);
        assert_eq!(rsp.into_result().map(|d| d.len()), Ok(600));
    }

    #[test]
    fn trace_and_debug() {
        let rsp = Response::from_bytes(&hex!("63 C2")).unwrap();
        assert_eq!(rsp.trace(), "63 C2");
        let rsp = Response::from_bytes(&hex!("DE AD 90 00")).unwrap();
        assert_eq!(rsp.trace(), "DE AD 90 00");
        let debug = format!("{rsp:?}");
        assert_eq!(debug, "Response { data: <2 bytes>, sw: 9000 }");
        assert!(!debug.contains("DE"));
    }
}
