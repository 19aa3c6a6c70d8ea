//! ChipDoc SELECT (ISO forms, FCI `6F`), READ BINARY, UPDATE BINARY (spec §1.3, §2.2 CPS4 column,
//! §2.3, §5.4, §10.2, §10.13).

use super::Cps4Card;
use crate::apdu::{Command, sw};
use crate::choices;
use crate::fs::{Body, FileSystem, MF};
use crate::link::{Protocol, Reply};
use crate::tlv::tlv;

const WRONG_NC: u16 = 0x6A87; // Nc inconsistent with P1-P2

fn fids(data: &[u8]) -> Option<Vec<u16>> {
    if data.is_empty() || !data.len().is_multiple_of(2) {
        return None;
    }
    Some(
        data.chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect(),
    )
}

fn one_fid(data: &[u8]) -> Result<u16, u16> {
    match data {
        [a, b] => Ok(u16::from_be_bytes([*a, *b])),
        _ => Err(WRONG_NC),
    }
}

/// The FCI (`6F`) or FCP (`62`) of a file, ChipDoc style: `80` size (EFs; the only tag the module
/// reads, spec §10.2), `82` descriptor, `83` FID, `84` DF name, `8A` life cycle. No IAS access rules.
pub(super) fn fci(fs: &FileSystem, idx: usize, template: u8) -> Option<Vec<u8>> {
    let f = fs.get(idx)?;
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
    /// `62`, spec §2.2), 04 = FCP `62`, 0C = nothing.
    pub(super) fn select(&mut self, cmd: &Command) -> Reply {
        let template = match cmd.p2 {
            0x00 => Some(0x6F),
            0x04 => Some(0x62),
            0x0C => None,
            _ => return sw::WRONG_P1P2.into(),
        };
        let fs = &self.fs;
        let cur = self.session.current_df;
        let parent = fs.get(cur).and_then(|f| f.parent);
        let target = match cmd.p1 {
            // MF, DF or EF by FID; no data = MF (ISO 7816-4 §7.1.1). Searched: the current DF,
            // its children, its parent, the parent's children.
            0x00 if cmd.data.is_empty() => Some(MF),
            0x00 => match one_fid(&cmd.data) {
                Ok(0x3F00) => Some(MF),
                Ok(fid) if fs.get(cur).is_some_and(|f| f.fid == fid) => Some(cur),
                Ok(fid) => fs
                    .child(cur, fid)
                    .or_else(|| parent.filter(|&p| fs.get(p).is_some_and(|f| f.fid == fid)))
                    .or_else(|| parent.and_then(|p| fs.child(p, fid))),
                Err(e) => return e.into(),
            },
            0x01 => match one_fid(&cmd.data) {
                Ok(fid) => fs.child(cur, fid).filter(|&i| fs.is_df(i)),
                Err(e) => return e.into(),
            },
            0x02 => match one_fid(&cmd.data) {
                Ok(fid) => fs.child(cur, fid).filter(|&i| !fs.is_df(i)),
                Err(e) => return e.into(),
            },
            0x03 if cmd.data.is_empty() => parent,
            0x03 => return WRONG_NC.into(),
            0x04 if cmd.data.is_empty() || cmd.data.len() > 16 => return WRONG_NC.into(),
            0x04 => fs.by_aid(&cmd.data),
            // Path from the MF without 3F00 (the module's form, spec §2.2) / from the current DF.
            0x08 | 0x09 => match fids(&cmd.data) {
                Some(p) => fs.walk(if cmd.p1 == 0x08 { MF } else { cur }, &p),
                None => return WRONG_NC.into(),
            },
            _ => return sw::WRONG_P1P2.into(),
        };
        let Some(idx) = target else {
            return sw::FILE_NOT_FOUND.into();
        };
        if self.fs.is_df(idx) {
            self.session.current_df = idx;
            self.session.current_ef = None;
        } else {
            self.session.current_df = self.fs.get(idx).and_then(|f| f.parent).unwrap_or(MF);
            self.session.current_ef = Some(idx);
        }
        match template.and_then(|t| fci(&self.fs, idx, t)) {
            Some(f) => Reply::data(f),
            None => Reply::ok(),
        }
    }

    /// The EF of a READ/UPDATE BINARY: SFI form (P1 b8 = 1) or the current EF.
    fn binary_target(&mut self, cmd: &Command) -> Result<(usize, usize), u16> {
        if cmd.p1 & 0x80 != 0 {
            if cmd.p1 & 0x60 != 0 {
                return Err(sw::WRONG_P1P2);
            }
            let idx = self
                .fs
                .child_by_sfi(self.session.current_df, cmd.p1 & 0x1F)
                .ok_or(sw::FILE_NOT_FOUND)?;
            self.session.current_ef = Some(idx);
            Ok((idx, usize::from(cmd.p2)))
        } else {
            let idx = self.session.current_ef.ok_or(sw::NO_CURRENT_EF)?;
            Ok((idx, usize::from(cmd.p1) << 8 | usize::from(cmd.p2)))
        }
    }

    /// READ BINARY `01 B0 <offset> 00`: 256-byte chunks, exact length for the tail (spec §10.13).
    pub(super) fn read_binary(&mut self, cmd: &Command) -> Reply {
        if !cmd.data.is_empty() {
            return sw::WRONG_LENGTH.into();
        }
        let (idx, offset) = match self.binary_target(cmd) {
            Ok(t) => t,
            Err(e) => return e.into(),
        };
        let read = self.fs.get(idx).map(|f| f.contact.read);
        if let Err(e) = self.check(read.unwrap_or(crate::fs::Access::Never)) {
            return e.into();
        }
        let Some(ne) = cmd.ne() else {
            return sw::WRONG_LENGTH.into();
        };
        let Some(data) = self.fs.data(idx) else {
            return sw::NO_CURRENT_EF.into();
        };
        if offset >= data.len() {
            return sw::WRONG_PARAMETERS.into();
        }
        let left = &data[offset..];
        if ne <= left.len() {
            return Reply::direct(left[..ne].to_vec(), sw::OK);
        }
        if self.protocol == Protocol::T0 && choices::READ_PAST_END_T0_USES_6C {
            return (0x6C00 | (left.len() as u16 & 0xFF)).into();
        }
        Reply::direct(left.to_vec(), sw::EOF_WARNING)
    }

    /// UPDATE BINARY `01 D6 <offset> Lc data` (CPS_DATA after the PIN, spec §5.4).
    pub(super) fn update_binary(&mut self, cmd: &Command) -> Reply {
        let (idx, offset) = match self.binary_target(cmd) {
            Ok(t) => t,
            Err(e) => return e.into(),
        };
        let update = self.fs.get(idx).map(|f| f.contact.update);
        if let Err(e) = self.check(update.unwrap_or(crate::fs::Access::Never)) {
            return e.into();
        }
        if cmd.data.is_empty() {
            return sw::WRONG_LENGTH.into();
        }
        let Some(data) = self.fs.data_mut(idx) else {
            return sw::NO_CURRENT_EF.into();
        };
        if offset >= data.len() {
            return sw::WRONG_PARAMETERS.into();
        }
        let Some(dst) = data.get_mut(offset..offset + cmd.data.len()) else {
            return sw::NOT_ENOUGH_MEMORY.into();
        };
        dst.copy_from_slice(&cmd.data);
        Reply::ok()
    }
}
