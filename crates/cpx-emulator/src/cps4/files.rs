//! ChipDoc SELECT: the P2 forms and the FCI `6F` (docs/card-spec.md §1.3, §2.2 CPS4 column, §10.2). The P1
//! forms, READ BINARY and UPDATE BINARY are shared with the CPS3 (`common`, [`super::PROFILE`]).

use super::Cps4Card;
use crate::apdu::{Command, sw};
use crate::fs::{Body, FileSystem};
use crate::link::Reply;
use crate::tlv::tlv;

/// The FCI (`6F`) or FCP (`62`) of a file, ChipDoc style: `80` size (EFs; the only tag the module
/// reads, docs/card-spec.md §10.2), `82` descriptor, `83` FID, `84` DF name, `8A` life cycle. No IAS access
/// rules.
pub(super) fn fci(fs: &FileSystem, idx: usize, template: u8) -> Option<Vec<u8>> {
    let f = fs.get(idx)?;
    if let Some(recorded) = f.recorded_fcp.as_ref().filter(|r| r.first() == Some(&template)) {
        return Some(recorded.clone());
    }
    let mut v = Vec::new();
    match &f.body {
        Body::Ef { data, .. } => {
            let size = u16::try_from(data.len()).unwrap_or(u16::MAX).to_be_bytes();
            v.extend(tlv(&[0x80], &size));
            v.extend(tlv(&[0x82], &[0x01]));
            v.extend(tlv(&[0x83], &f.fid.to_be_bytes()));
        }
        Body::Df { aid } => {
            v.extend(tlv(&[0x82], &[0x38]));
            v.extend(tlv(&[0x83], &f.fid.to_be_bytes()));
            if let Some(a) = aid {
                v.extend(tlv(&[0x84], a));
            }
        }
    }
    v.extend(tlv(&[0x8A], &[0x05]));
    Some(tlv(&[template], &v))
}

impl Cps4Card {
    /// ISO SELECT inside the ChipDoc applet. P2 00 = FCI `6F` (what the module parses; it rejects
    /// `62`, docs/card-spec.md §2.2), 04 = FCP `62`, 0C = nothing.
    pub(super) fn select(&mut self, cmd: &Command) -> Reply {
        let template = match cmd.p2 {
            0x00 => Some(0x6F),
            0x04 => Some(0x62),
            0x0C => None,
            _ => return sw::WRONG_P1P2.into(),
        };
        let idx = match self.core.resolve_select(cmd) {
            Ok(idx) => idx,
            Err(e) => return e.into(),
        };
        self.core.cursor.select(&self.core.fs, idx);
        match template.and_then(|t| fci(&self.core.fs, idx, t)) {
            Some(f) => Reply::data(self.core.knobs.fcp(f)),
            None => Reply::ok(),
        }
    }
}
