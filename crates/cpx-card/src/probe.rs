//! Read-only probes for `cpx report` (docs/card-report.md): what a card answers to a SELECT of a
//! file the driver does not need, or to a READ BINARY of a given length, recorded raw so that
//! the facts the emulator had to choose (crates/cpx-emulator/CHOICES.md: file identifiers, chunk
//! limits) can be checked against real cards. Only SELECT and READ BINARY are sent: no write, no
//! PIN command, no security state changed.

use crate::card::Card;
use crate::commands as cmd;
use crate::error::CardError;

/// Where a probed file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeBase {
    /// A path from the MF (`3F00` first).
    Mf,
    /// A path inside the card's PKCS#15 application DF (the one the card layer uses).
    Application,
}

/// What the card answered to one probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// The absolute path selected (`3F00` first).
    pub path: Vec<u8>,
    /// Status word of the SELECT (with FCP/FCI, the generation's form).
    pub select_sw: u16,
    /// Its response data (the FCP or FCI).
    pub fcp: Vec<u8>,
    /// Status word and data of the READ BINARY at offset 0, when the file was selected and a
    /// length was asked.
    pub read: Option<(u16, Vec<u8>)>,
}

impl Card {
    /// What the card answers to a read of each security environment of `numbers` (GET DATA of
    /// the SE; SELECT and GET DATA only, nothing changed), as `(number, status word, data)`;
    /// empty for a generation without such a read. The card's application is selected again
    /// before the next operation, as after any reset.
    ///
    /// # Errors
    /// Transport errors; the MF refused.
    pub fn probe_security_environments(
        &mut self,
        numbers: &[u8],
    ) -> Result<Vec<(u8, u16, Vec<u8>)>, CardError> {
        let driver = self.generation().driver();
        self.run(true, |io, _| driver.probe_security_environments(io, numbers))
    }

    /// The absolute path of the PKCS#15 application DF the card layer uses (from EF.DIR, or
    /// the generation's fixed path), `3F00` first; empty before it is known.
    pub fn application_path(&self) -> &[u8] {
        &self.st.app_path
    }

    /// SELECT `path` (relative to `base`) with FCP/FCI, as this card's generation selects
    /// files, then, if the card selected it and `read_le` is given, READ BINARY of `read_le`
    /// bytes (1..=256) at offset 0. Card answers are returned, not judged: a `6A82` is a result.
    ///
    /// # Errors
    /// Transport errors; a path that cannot be encoded.
    pub fn probe_file(
        &mut self,
        base: ProbeBase,
        path: &[u8],
        read_le: Option<u16>,
    ) -> Result<Probe, CardError> {
        self.run(true, |io, st| {
            let absolute = match base {
                ProbeBase::Mf => path.to_vec(),
                ProbeBase::Application => [st.app_path.as_slice(), path].concat(),
            };
            let select = io.select_command(&absolute, true)?;
            let r = io.transmit(&select)?;
            let select_sw = r.sw().to_u16();
            let fcp = r.data().to_vec();
            let read = match read_le {
                Some(le) if select_sw == 0x9000 => {
                    let c = cmd::read_binary(io.caps().cla, 0, le)?;
                    let r = io.transmit(&c)?;
                    Some((r.sw().to_u16(), r.data().to_vec()))
                }
                _ => None,
            };
            Ok(Probe {
                path: absolute,
                select_sw,
                fcp,
                read,
            })
        })
    }
}
