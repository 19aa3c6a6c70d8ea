//! SELECT resolution, READ BINARY, UPDATE BINARY inside the application (docs/card-spec.md §1.3, §2.2, §2.3,
//! §5.4, §8, §10.2, §10.13). The SELECT P2 forms and the reply (IAS FCP `62` or ChipDoc FCI `6F`)
//! are each card's.

use super::Core;
use crate::apdu::{Command, sw};
use crate::choices;
use crate::fs::{FileSystem, MF};
use crate::image::PastEnd;
use crate::link::{Protocol, Reply};
use crate::variants::OverLimit;

const WRONG_NC: u16 = 0x6A87; // Nc inconsistent with P1-P2

/// The current DF and EF (volatile).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Cursor {
    pub(crate) df: usize,
    pub(crate) ef: Option<usize>,
}

impl Cursor {
    /// Make a file current: a DF becomes the current DF (no current EF), an EF the current EF in
    /// its parent DF.
    pub(crate) fn select(&mut self, fs: &FileSystem, idx: usize) {
        if fs.is_df(idx) {
            self.df = idx;
            self.ef = None;
        } else {
            self.df = fs.get(idx).and_then(|f| f.parent).unwrap_or(MF);
            self.ef = Some(idx);
        }
    }
}

/// How a card reads the SELECT P1 forms where the two cards differ (docs/card-spec.md §2.2).
#[derive(Debug)]
pub(crate) struct SelectForms {
    /// P1 00 with no data selects the MF (ISO 7816-4 §7.1.1); otherwise 6A87.
    pub(crate) empty_fid_is_mf: bool,
    /// P1 00 also finds the parent DF and the parent's children (ISO search order), not only the
    /// MF, the current DF and its children.
    pub(crate) fid_searches_parent: bool,
    /// P1 02 selects an EF under the current DF only (ISO); otherwise P1 02 is P1 00.
    pub(crate) p1_02_ef_only: bool,
    /// P1 09 is a path from the MF when it starts with 3F00 (the CPS3 form, docs/card-spec.md
    /// §2.2), else from the current DF; otherwise always a path from the current DF (ISO).
    pub(crate) p1_09_from_3f00: bool,
}

fn one_fid(data: &[u8]) -> Result<u16, u16> {
    match data {
        [a, b] => Ok(u16::from_be_bytes([*a, *b])),
        _ => Err(WRONG_NC),
    }
}

fn fids(data: &[u8]) -> Result<Vec<u16>, u16> {
    if data.is_empty() || !data.len().is_multiple_of(2) {
        return Err(WRONG_NC);
    }
    Ok(data
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect())
}

impl Core {
    /// The file a SELECT names by P1 and data (the card has checked P2 and its special AIDs);
    /// 6A82 when there is none. Does not change the current file.
    pub(crate) fn resolve_select(&self, cmd: &Command) -> Result<usize, u16> {
        let forms = &self.profile.select;
        let fs = &self.fs;
        let cur = self.cursor.df;
        let parent = fs.get(cur).and_then(|f| f.parent);
        let is = |idx: usize, fid: u16| fs.get(idx).is_some_and(|f| f.fid == fid);
        let target = match cmd.p1 {
            0x00 if cmd.data.is_empty() && forms.empty_fid_is_mf => Some(MF),
            // MF, DF or EF by FID: the MF, the current DF, its children [, its parent, the
            // parent's children].
            0x00 | 0x02 if cmd.p1 == 0x00 || !forms.p1_02_ef_only => match one_fid(&cmd.data)? {
                0x3F00 => Some(MF),
                fid if is(cur, fid) => Some(cur),
                fid if forms.fid_searches_parent => fs
                    .child(cur, fid)
                    .or_else(|| parent.filter(|&p| is(p, fid)))
                    .or_else(|| parent.and_then(|p| fs.child(p, fid))),
                fid => fs.child(cur, fid),
            },
            0x02 => fs.child(cur, one_fid(&cmd.data)?).filter(|&i| !fs.is_df(i)),
            0x01 => fs.child(cur, one_fid(&cmd.data)?).filter(|&i| fs.is_df(i)),
            0x03 if cmd.data.is_empty() => parent,
            0x03 => return Err(WRONG_NC),
            0x04 if cmd.data.is_empty() || cmd.data.len() > 16 => return Err(WRONG_NC),
            0x04 => fs.by_aid(&cmd.data),
            // Path from the MF without 3F00 (ISO; the module's form, docs/card-spec.md §2.2).
            0x08 => fs.walk(MF, &fids(&cmd.data)?),
            // A path starting with 3F00 is from the MF; any other from the current DF (ISO): a
            // real CPS3 selects `00 A4 09 04 02 2F01` with the MF current (`[GH#2223]`,
            // test-vectors/reports/opensc-2223-cps3.toml) and answers 6A82 to
            // `00 A4 09 04 02 2F00` elsewhere (docs/card-spec.md §2.2).
            0x09 if forms.p1_09_from_3f00 => match fids(&cmd.data)?.split_first() {
                Some((0x3F00, rest)) => fs.walk(MF, rest),
                _ => fs.walk(cur, &fids(&cmd.data)?),
            },
            0x09 => fs.walk(cur, &fids(&cmd.data)?),
            _ => return Err(sw::WRONG_P1P2),
        };
        target.ok_or(sw::FILE_NOT_FOUND)
    }

    /// The EF of a READ/UPDATE BINARY and the offset: SFI form (P1 b8 = 1, which makes the EF
    /// current) or the current EF.
    fn binary_target(&mut self, cmd: &Command) -> Result<(usize, usize), u16> {
        if cmd.p1 & 0x80 != 0 {
            if cmd.p1 & 0x60 != 0 {
                return Err(sw::WRONG_P1P2);
            }
            let idx = self
                .fs
                .child_by_sfi(self.cursor.df, cmd.p1 & 0x1F)
                .ok_or(sw::FILE_NOT_FOUND)?;
            self.cursor.ef = Some(idx);
            Ok((idx, usize::from(cmd.p2)))
        } else {
            let idx = self.cursor.ef.ok_or(sw::NO_CURRENT_EF)?;
            Ok((idx, usize::from(cmd.p1) << 8 | usize::from(cmd.p2)))
        }
    }

    /// READ BINARY `xx B0 <offset> Le`: 256-byte chunks, exact length for the tail (docs/card-spec.md
    /// §10.13); past the end `choices::READ_PAST_END_T0_USES_6C`.
    pub(crate) fn read_binary(&mut self, cmd: &Command) -> Reply {
        if self.profile.read_refuses_data && !cmd.data.is_empty() {
            return sw::WRONG_LENGTH.into();
        }
        let (idx, offset) = match self.binary_target(cmd) {
            Ok(t) => t,
            Err(e) => return e.into(),
        };
        if let Err(e) = self.check(self.rules(idx).read) {
            return e.into();
        }
        let Some(ne) = cmd.ne() else {
            return sw::WRONG_LENGTH.into();
        };
        // A field card's chunk limit (a replayed report's `[link] read_binary_max`).
        if self
            .link_image
            .read_binary_max
            .is_some_and(|max| ne > usize::from(max))
        {
            return sw::WRONG_LENGTH.into();
        }
        let Some(data) = self.fs.data(idx) else {
            return sw::NO_CURRENT_EF.into();
        };
        if offset >= data.len() {
            return sw::WRONG_PARAMETERS.into();
        }
        let left = &data[offset..];
        // A card whose READ BINARY gives fewer bytes than asked (the variant matrix's `rb-chunk`).
        if let Some((limit, over)) = self.knobs.read_limit
            && ne > limit
            && left.len() > limit
        {
            return match over {
                OverLimit::Short => Reply::direct(left[..limit].to_vec(), sw::OK),
                OverLimit::Wrong6C => (0x6C00 | (limit as u16 & 0xFF)).into(),
            };
        }
        if ne <= left.len() {
            return Reply::direct(left[..ne].to_vec(), sw::OK);
        }
        // A field card's answer past the end (a replayed report's `[link] read_past_end`).
        match self.link_image.read_past_end {
            Some(PastEnd::WrongLe) => return (0x6C00 | (left.len() as u16 & 0xFF)).into(),
            Some(PastEnd::EndOfFile) => return Reply::direct(left.to_vec(), sw::EOF_WARNING),
            Some(PastEnd::WrongLength) => return sw::WRONG_LENGTH.into(),
            Some(PastEnd::WrongOffset) => return sw::WRONG_PARAMETERS.into(),
            None => {}
        }
        if self.protocol == Protocol::T0
            && choices::READ_PAST_END_T0_USES_6C
            && !self.knobs.read_past_end_6282
        {
            // Short APDUs only (`apdu`): Ne ≤ 256, so fewer than 256 bytes are left here.
            return (0x6C00 | (left.len() as u16 & 0xFF)).into();
        }
        Reply::direct(left.to_vec(), sw::EOF_WARNING)
    }

    /// UPDATE BINARY `xx D6 <offset> Lc data` (CPS_DATA after the PIN, docs/card-spec.md §5.4).
    pub(crate) fn update_binary(&mut self, cmd: &Command) -> Reply {
        let (idx, offset) = match self.binary_target(cmd) {
            Ok(t) => t,
            Err(e) => return e.into(),
        };
        if let Err(e) = self.check(self.rules(idx).update) {
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
