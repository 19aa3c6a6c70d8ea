//! Sending commands inside one transaction: the re-select rules of docs/card-spec.md §1.3 and §2.3, file
//! reads in each card's chunk size, the FCP/FCI size.

use cpx_apdu::{Command, Response, StatusWord, tlv};
use cpx_transport::{CardTransaction, TransportError};

use crate::commands as cmd;
use crate::error::CardError;
use crate::generation::{Capabilities, FileSelection, Generation};

/// READ BINARY chunk of the generation ([`Capabilities::read_chunk`]).
pub(crate) fn chunk(generation: Generation) -> usize {
    generation.capabilities().read_chunk
}

/// Largest READ BINARY offset: with P1 bit 8 = 0, P1-P2 is a 15-bit offset (ISO 7816-4 READ
/// BINARY; docs/card-spec.md §2.3). Bit 8 set would make P1 a short EF identifier instead.
pub(crate) const MAX_READ_OFFSET: usize = 0x7FFF;

/// The largest transparent EF a read by offset can reach: the last chunk starts at
/// [`MAX_READ_OFFSET`] at most. Any size from a card above this (an FCP/FCI tag 80/81, a DER
/// header, a CPS2ter FCI) is malformed card data, rejected before anything is allocated for it:
/// a card claiming `80 04 FF FF FF FF` would otherwise make the host allocate 4 GiB (issue 13).
pub(crate) fn max_readable(generation: Generation) -> usize {
    MAX_READ_OFFSET + chunk(generation)
}

/// `size` (claimed by the card for `object`, `what` says where) if a read by offset can reach
/// it, else [`CardError::MalformedCardData`].
pub(crate) fn addressable(size: usize, limit: usize, object: &str, what: &str) -> Result<usize, CardError> {
    if size > limit {
        return Err(CardError::malformed(
            object,
            format!(
                "{what} claims {size} bytes, more than READ BINARY can address ({limit} bytes: 15-bit offset + one chunk)"
            ),
        ));
    }
    Ok(size)
}

/// One transaction's worth of card access.
pub(crate) struct Io<'a> {
    tx: &'a mut dyn CardTransaction,
    pub(crate) generation: Generation,
    /// A SELECT by path or FID was refused (`6A82`, `6A86`, `6A87`): a path that does not
    /// exist on the card, which a stale seed can give ([`crate::seed`]).
    pub(crate) select_refused: bool,
    /// A PIN command (VERIFY, CHANGE REFERENCE DATA, RESET RETRY COUNTER) was sent: what was
    /// done cannot be done again.
    pub(crate) pin_sent: bool,
}

impl<'a> Io<'a> {
    pub(crate) fn new(tx: &'a mut dyn CardTransaction, generation: Generation) -> Self {
        Io {
            tx,
            generation,
            select_refused: false,
            pin_sent: false,
        }
    }

    /// Record what [`Io::select_refused`] and [`Io::pin_sent`] track.
    fn note(&mut self, command: &Command, sw: StatusWord) {
        match command.ins() {
            // P1 04 is a selection by AID, never a path from a PKCS#15 file.
            0xA4 if command.p1() != 0x04 && matches!(sw.to_u16(), 0x6A82 | 0x6A86 | 0x6A87) => {
                self.select_refused = true;
            }
            // VERIFY without data only asks whether the code is verified (no try spent).
            0x20 if command.data().is_empty() => {}
            0x20 | 0x24 | 0x2C => self.pin_sent = true,
            _ => {}
        }
    }

    /// The reader's name.
    pub(crate) fn reader(&self) -> &str {
        self.tx.reader()
    }

    /// The reader's part 10 features (cached by the transport per connection).
    pub(crate) fn reader_features(&mut self) -> Result<cpx_transport::ReaderFeatures, CardError> {
        Ok(self.tx.reader_features()?)
    }

    /// A control command to the reader, inside this transaction.
    pub(crate) fn control(
        &mut self,
        code: cpx_transport::ControlCode,
        input: &[u8],
    ) -> Result<Vec<u8>, TransportError> {
        self.tx.control(code, input)
    }

    /// A PIN-pad control (VERIFY/MODIFY PIN DIRECT) with `structure`: the card's status word, or
    /// the reader's own answer as its precise error (nothing reached the card then). Counted as
    /// a PIN command ([`Io::pin_sent`]) whatever the outcome: it is never done again. A reader
    /// that refuses the structure is [`CardError::PinPadUnsupported`].
    pub(crate) fn pad_control(
        &mut self,
        code: cpx_transport::ControlCode,
        structure: &[u8],
        operation: &'static str,
    ) -> Result<StatusWord, CardError> {
        self.pin_sent = true;
        let answer = match self.tx.control(code, structure) {
            Ok(answer) => answer,
            Err(TransportError::ControlUnsupported(reader)) => {
                return Err(CardError::PinPadUnsupported {
                    operation,
                    reader,
                    reason: "the reader refused the PIN structure".into(),
                });
            }
            Err(e) => return Err(e.into()),
        };
        crate::pinpad::answer_sw(&answer, operation)
    }

    /// The table of the card's generation.
    pub(crate) fn caps(&self) -> &'static Capabilities {
        self.generation.capabilities()
    }

    /// Send one command as it is: no re-select, nothing recorded (the application selections).
    pub(crate) fn transmit_once(&mut self, command: &Command) -> Result<Response, CardError> {
        Ok(self.tx.transmit(command)?)
    }

    /// Send one command; on `6Exx` or `6A86` (and the generation's
    /// [`Capabilities::reselect_on`]) select the CPS AID and resend once (docs/card-spec.md §2.3, §3.2).
    /// Chained parts and selects by AID are never resent.
    pub(crate) fn transmit(&mut self, command: &Command) -> Result<Response, CardError> {
        let response = self.tx.transmit(command)?;
        let sw = response.sw();
        let retry =
            sw.0 == 0x6E || sw == StatusWord(0x6A, 0x86) || self.caps().reselect_on == Some(sw.to_u16());
        let is_aid_select = command.ins() == 0xA4 && command.p1() == 0x04;
        if !retry || command.cla() & 0x10 != 0 || is_aid_select || command.cla() == cmd::CLA_CPS2TER {
            self.note(command, sw);
            return Ok(response);
        }
        log::debug!(target: "cpx::card", "{sw}: re-selecting the CPS application and resending once");
        self.select_cps_aid()?;
        let response = self.tx.transmit(command)?;
        self.note(command, response.sw());
        Ok(response)
    }

    /// Send and require `90 00`; the data on success.
    pub(crate) fn ok(&mut self, command: &Command, operation: &'static str) -> Result<Vec<u8>, CardError> {
        let r = self.transmit(command)?;
        if r.is_success() {
            Ok(r.into_data())
        } else {
            Err(CardError::from_sw(operation, r.sw()))
        }
    }

    /// Send a command chain (PSO DECIPHER): no part is resent; the last part's data on success.
    pub(crate) fn chain(&mut self, parts: &[Command], operation: &'static str) -> Result<Vec<u8>, CardError> {
        let mut last = Vec::new();
        for part in parts {
            let r = self.tx.transmit(part)?;
            if !r.is_success() {
                return Err(CardError::from_sw(operation, r.sw()));
            }
            last = r.into_data();
        }
        Ok(last)
    }

    /// Select the CPS application, as the generation's driver does it (docs/card-spec.md §1.3, §2.3, §10.15).
    pub(crate) fn select_cps_aid(&mut self) -> Result<(), CardError> {
        self.generation.driver().select_application(self)
    }

    /// The SELECT by path of the generation ([`FileSelection`]), with or without FCP/FCI.
    pub(crate) fn select_command(&self, path: &[u8], fcp: bool) -> Result<Command, CardError> {
        Ok(match self.caps().file_selection {
            FileSelection::IasPathFromMf => cmd::cps3_select_path(path, fcp)?,
            FileSelection::IsoPathAfterMf => cmd::cps4_select_path(path, fcp)?,
        })
    }

    /// Select a DF or EF by absolute path (3F00 first), without FCP/FCI on CPS3 (`P2=0C`). The
    /// CPS4 has no "no FCI" form but case 3 (docs/card-spec.md §2.2).
    pub(crate) fn select(&mut self, path: &[u8], operation: &'static str) -> Result<(), CardError> {
        let c = self.select_command(path, false)?;
        self.ok(&c, operation).map(drop)
    }

    /// Select with FCP/FCI and return the file size (tag 80, or 81); `None` when the file does not
    /// exist (`6A82`). A size beyond [`max_readable`] is [`CardError::MalformedCardData`].
    pub(crate) fn select_size(&mut self, path: &[u8], object: &str) -> Result<Option<usize>, CardError> {
        let c = self.select_command(path, true)?;
        let r = self.transmit(&c)?;
        match r.sw().to_u16() {
            0x9000 => {}
            0x6A82 => return Ok(None),
            _ => return Err(CardError::from_sw("select file", r.sw())),
        }
        let size = fcp_size(r.data())
            .ok_or_else(|| CardError::malformed(format!("FCP of {object}"), "no size (tag 80/81)"))?;
        addressable(size, max_readable(self.generation), object, "its FCP/FCI").map(Some)
    }

    /// READ BINARY of the current EF from `offset`, `len` bytes, in chunks. The end must be
    /// within [`max_readable`] (the callers check sizes from the card against it first); a chunk
    /// longer than asked is malformed.
    pub(crate) fn read(&mut self, offset: usize, len: usize, out: &mut Vec<u8>) -> Result<(), CardError> {
        let cla = self.caps().cla;
        let step = chunk(self.generation);
        let end = offset
            .checked_add(len)
            .filter(|end| *end <= max_readable(self.generation))
            .ok_or_else(|| CardError::malformed("file", "read past what READ BINARY can address"))?;
        reserve(out, len, "file")?;
        let mut at = offset;
        while at < end {
            let le = step.min(end - at);
            let off = u16::try_from(at)
                .ok()
                .filter(|o| usize::from(*o) <= MAX_READ_OFFSET);
            let off = off.ok_or_else(|| CardError::malformed("file", "larger than 32 KiB"))?;
            let data = self.ok(&cmd::read_binary(cla, off, le as u16)?, "read binary")?;
            if data.is_empty() {
                return Err(CardError::malformed("file", "READ BINARY returned no data"));
            }
            if data.len() > le {
                return Err(CardError::malformed(
                    "file",
                    format!("READ BINARY returned {} bytes for Le {le}", data.len()),
                ));
            }
            at += data.len();
            out.extend_from_slice(&data);
        }
        Ok(())
    }

    /// A whole transparent EF: select with FCP, read its size in chunks. `None` if absent.
    pub(crate) fn read_file(&mut self, path: &[u8], object: &str) -> Result<Option<Vec<u8>>, CardError> {
        let Some(size) = self.select_size(path, object)? else {
            return Ok(None);
        };
        let mut out = Vec::new();
        self.read(0, size, &mut out)?;
        Ok(Some(out))
    }

    /// A DER object (certificate): where [`Capabilities::der_size_from_header`] (CPS3) the FCP
    /// is skipped (one GET RESPONSE less on T=0): the first chunk's DER header gives the length.
    /// Elsewhere (CPS4) the FCI costs nothing on T=1.
    pub(crate) fn read_der(&mut self, path: &[u8], object: &str) -> Result<Vec<u8>, CardError> {
        if !self.caps().der_size_from_header {
            return self
                .read_file(path, object)?
                .ok_or_else(|| CardError::ObjectNotFound(object.into()));
        }
        let r = self.transmit(&self.select_command(path, false)?)?;
        match r.sw().to_u16() {
            0x9000 => {}
            0x6A82 => return Err(CardError::ObjectNotFound(object.into())),
            _ => return Err(CardError::from_sw("select file", r.sw())),
        }
        let mut out = Vec::new();
        self.read(0, chunk(self.generation), &mut out)?;
        let total = der_len(&out).ok_or_else(|| CardError::malformed(object, "not a DER SEQUENCE"))?;
        let total = addressable(total, max_readable(self.generation), object, "its DER header")?;
        if total <= out.len() {
            out.truncate(total);
        } else {
            let have = out.len();
            self.read(have, total - have, &mut out)?;
        }
        Ok(out)
    }
}

/// Reserve room for `additional` more bytes of `object` in `out`, as an error rather than an
/// abort if the host cannot give it.
pub(crate) fn reserve(out: &mut Vec<u8>, additional: usize, object: &str) -> Result<(), CardError> {
    out.try_reserve(additional).map_err(|_| {
        CardError::malformed(
            object,
            format!("no memory for the {additional} bytes the card claims"),
        )
    })
}

/// Size from an FCP (`62`) or FCI (`6F`) template: tag 80, else 81.
pub(crate) fn fcp_size(fcp: &[u8]) -> Option<usize> {
    let top = tlv::parse_all(fcp).ok()?;
    let t = top.into_iter().find(|t| t.tag == 0x62 || t.tag == 0x6F)?;
    let size = match t.find(0x80).ok()? {
        Some(s) => s,
        None => t.find(0x81).ok()??,
    };
    if size.value.is_empty() || size.value.len() > 4 {
        return None;
    }
    Some(
        size.value
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b)),
    )
}

/// Total length of the DER element at the start of `data` (header + value), from its header.
pub(crate) fn der_len(data: &[u8]) -> Option<usize> {
    if data.first()? & 0x1F == 0x1F {
        return None;
    }
    match *data.get(1)? {
        n @ 0..=0x7F => Some(2 + usize::from(n)),
        0x81 => Some(3 + usize::from(*data.get(2)?)),
        0x82 => Some(4 + (usize::from(*data.get(2)?) << 8 | usize::from(*data.get(3)?))),
        0x83 => Some(
            5 + (usize::from(*data.get(2)?) << 16
                | usize::from(*data.get(3)?) << 8
                | usize::from(*data.get(4)?)),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_from_fcp_and_der_headers() {
        // docs/card-spec.md §1.3 real FCP of EF.SN.ICC.
        let fcp = [
            0x62, 0x25, 0x80, 0x02, 0x00, 0x0C, 0x82, 0x01, 0x01, 0x83, 0x02, 0xD0, 0x03, 0x88, 0x01, 0xE0,
            0xA1, 0x12, 0x8C, 0x07, 0x7B, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x9C, 0x07, 0x7B, 0xFF, 0xFF,
            0xFF, 0xFF, 0xFF, 0x00, 0x8A, 0x01, 0x05,
        ];
        assert_eq!(fcp_size(&fcp), Some(12));
        assert_eq!(fcp_size(&[0x6F, 0x04, 0x81, 0x02, 0x01, 0x00]), Some(256));
        assert_eq!(fcp_size(&[0x6F, 0x00]), None);
        assert_eq!(fcp_size(&[0x62]), None);
        assert_eq!(der_len(&[0x30, 0x82, 0x04, 0xD2]), Some(0x4D6));
        assert_eq!(der_len(&[0x30, 0x05]), Some(7));
        assert_eq!(der_len(&[0x30, 0x85]), None);
        assert_eq!(der_len(&[]), None);
    }

    #[test]
    fn sizes_beyond_the_15_bit_offset_are_malformed() {
        // The last chunk may start at 0x7FFF: 0x7FFF + 0xE7 on CPS3, + 256 on CPS4.
        assert_eq!(max_readable(Generation::Cps3), 0x80E6);
        assert_eq!(max_readable(Generation::Cps4), 0x80FF);
        assert_eq!(addressable(0x80E6, 0x80E6, "f", "its FCP").ok(), Some(0x80E6));
        let e = addressable(0xFFFF_FFFF, 0x80E6, "TokenInfo", "its FCP").unwrap_err();
        assert_eq!(
            e.to_string(),
            "malformed card data in TokenInfo: its FCP claims 4294967295 bytes, more than READ \
             BINARY can address (32998 bytes: 15-bit offset + one chunk)"
        );
        let mut v = vec![1u8];
        reserve(&mut v, 100, "f").unwrap();
        assert!(v.capacity() >= 101);
        assert!(reserve(&mut v, usize::MAX, "f").is_err());
    }
}
