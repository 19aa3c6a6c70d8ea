//! A reader opened without a card (`SCARD_SHARE_DIRECT`): only its control commands, so that its
//! PC/SC part 10 features (docs/reader-features.md) can be asked before a card is inserted —
//! `cpx readers` showing the PIN pad of an empty reader. pcsc-lite connects in shared or
//! exclusive mode only to a card; a direct connection reaches the reader's driver without one.
//! No APDU goes through it.

use std::ffi::CString;

use pcsc::{Disposition, Protocols, ShareMode};
use zeroize::Zeroizing;

use crate::features::{self, ControlCode, ReaderFeatures};
use crate::{Pcsc, TransportError, fork_guard};

/// A direct connection to a reader ([`Pcsc::connect_direct`]): its control commands only.
/// Disconnected on drop, leaving any card as it is.
pub struct DirectReader {
    card: Option<pcsc::Card>,
    reader: String,
}

impl std::fmt::Debug for DirectReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectReader")
            .field("reader", &self.reader)
            .finish()
    }
}

impl Pcsc {
    /// Open `reader` for its control commands only (`SCardConnect` with `SCARD_SHARE_DIRECT`),
    /// with or without a card in it. Meant for a reader that holds no card: with a card,
    /// [`Pcsc::connect`] and [`crate::CardChannel::reader_features`] (inside the card's turn)
    /// are the way.
    ///
    /// ```no_run
    /// let pcsc = cpx_transport::Pcsc::establish()?;
    /// let mut reader = pcsc.connect_direct("Gemalto USB GemPCPinpad SmartCard Reader 00 00")?;
    /// println!("PIN pad: {}", reader.reader_features()?.has_pin_pad());
    /// # Ok::<(), cpx_transport::TransportError>(())
    /// ```
    pub fn connect_direct(&self, reader: &str) -> Result<DirectReader, TransportError> {
        let name = CString::new(reader).map_err(|_| TransportError::UnknownReader(reader.to_owned()))?;
        let card = {
            let _pc = fork_guard::enter();
            self.ctx.connect(&name, ShareMode::Direct, Protocols::UNDEFINED)
        }
        .map_err(|e| TransportError::from_pcsc("SCardConnect", reader, e))?;
        Ok(DirectReader {
            card: Some(card),
            reader: reader.to_owned(),
        })
    }
}

impl DirectReader {
    /// The reader's PC/SC name.
    pub fn reader(&self) -> &str {
        &self.reader
    }

    /// `SCardControl` on the reader; the answer buffer is wiped once copied out.
    pub fn control(&mut self, code: ControlCode, input: &[u8]) -> Result<Vec<u8>, TransportError> {
        let Some(card) = &self.card else {
            unreachable!("direct reader used after disconnect");
        };
        if input.len() > pcsc::MAX_BUFFER_SIZE_EXTENDED {
            return Err(TransportError::Pcsc {
                call: "SCardControl",
                source: pcsc::Error::InsufficientBuffer,
            });
        }
        let mut buf = Zeroizing::new(vec![0u8; pcsc::MAX_BUFFER_SIZE_EXTENDED]);
        let result = {
            let _pc = fork_guard::enter();
            card.control(code.0.into(), input, &mut buf).map(<[u8]>::to_vec)
        }
        .map_err(|e| TransportError::from_pcsc("SCardControl", &self.reader, e));
        crate::trace::control(&self.reader, code, input.len(), &result);
        result
    }

    /// The reader's part 10 features, read as [`crate::CardChannel::reader_features`] reads them:
    /// a reader that cannot answer, or answers garbage, has none.
    pub fn reader_features(&mut self) -> Result<ReaderFeatures, TransportError> {
        let asked = self.control(ControlCode::GET_FEATURE_REQUEST, &[]);
        features::from_answer(&self.reader, asked)
    }
}

impl Drop for DirectReader {
    fn drop(&mut self) {
        let Some(card) = self.card.take() else { return };
        let _pc = fork_guard::enter();
        if let Err((_, e)) = card.disconnect(Disposition::LeaveCard) {
            log::debug!("{}: SCardDisconnect (direct): {e}", self.reader);
        }
    }
}
