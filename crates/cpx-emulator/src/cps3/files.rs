//! SELECT, READ BINARY, UPDATE BINARY (spec §1.3, §2.2, §2.3, §5.4, §8).

use super::Cps3Card;
use crate::apdu::{Command, sw};
use crate::choices;
use crate::facts;
use crate::fs::MF;
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

impl Cps3Card {
    pub(super) fn select(&mut self, cmd: &Command) -> Reply {
        // P2 must be 04 (FCP) or 0C (no data): `00 A4 02 00` and `00 A4 04 00 <P15 AID>` give 6A86
        // (spec §2.2, upstream commits).
        let want_fcp = match cmd.p2 {
            0x04 => true,
            0x0C => false,
            0x00 if cmd.p1 == 0x04 && cmd.data == facts::AID_IAS => {
                // `00 A4 04 00 08 80250000 01FF0100` returned 9000 on a real CPS3 (GH#2223).
                self.select_idx(MF);
                return Reply::ok();
            }
            // Application selection at card-manager level (the ISD) is not an IAS DF selection either.
            0x00 if cmd.p1 == 0x04 && cmd.data == facts::AID_ISD => return self.select_isd(true),
            _ => return sw::WRONG_P1P2.into(),
        };
        let fs = &self.fs;
        let cur = self.session.current_df;
        let target = match cmd.p1 {
            // ISO: MF / DF / EF by FID.
            0x00 | 0x02 => {
                let [a, b] = cmd.data[..] else {
                    return WRONG_NC.into();
                };
                let fid = &u16::from_be_bytes([a, b]);
                if *fid == 0x3F00 {
                    Some(MF)
                } else if fs.get(cur).is_some_and(|f| f.fid == *fid) {
                    Some(cur)
                } else {
                    fs.child(cur, *fid)
                }
            }
            0x01 => {
                let [a, b] = cmd.data[..] else {
                    return WRONG_NC.into();
                };
                let fid = &u16::from_be_bytes([a, b]);
                fs.child(cur, *fid).filter(|&i| fs.is_df(i))
            }
            0x03 => {
                if !cmd.data.is_empty() {
                    return WRONG_NC.into();
                }
                fs.get(cur).and_then(|f| f.parent)
            }
            0x04 => {
                if cmd.data.is_empty() || cmd.data.len() > 16 {
                    return WRONG_NC.into();
                }
                if cmd.data == facts::AID_ISD {
                    return self.select_isd(want_fcp);
                }
                if cmd.data == facts::AID_CPS2TER {
                    return choices::CPS2TER_AID_ON_CPS3_SW.into();
                }
                fs.by_aid(&cmd.data)
            }
            // Path from the MF without 3F00 (ISO), and the CPS3 form with 3F00 (spec §2.2).
            0x08 => match fids(&cmd.data) {
                Some(p) => fs.walk(MF, &p),
                None => return WRONG_NC.into(),
            },
            0x09 => match fids(&cmd.data) {
                Some(p) if p.first() == Some(&0x3F00) => fs.walk(MF, &p[1..]),
                Some(_) => None,
                None => return WRONG_NC.into(),
            },
            _ => return sw::WRONG_P1P2.into(),
        };
        let Some(idx) = target else {
            return sw::FILE_NOT_FOUND.into();
        };
        self.session.isd_selected = false;
        self.select_idx(idx);
        match (want_fcp, self.fs.fcp(idx)) {
            (true, Some(fcp)) => Reply::data(fcp),
            _ => Reply::ok(),
        }
    }

    fn select_idx(&mut self, idx: usize) {
        self.session.isd_selected = false;
        if self.fs.is_df(idx) {
            self.session.current_df = idx;
            self.session.current_ef = None;
        } else {
            self.session.current_df = self.fs.get(idx).and_then(|f| f.parent).unwrap_or(MF);
            self.session.current_ef = Some(idx);
        }
    }

    /// The GlobalPlatform ISD: an FCI, and the IAS application is no longer selected.
    fn select_isd(&mut self, want_fci: bool) -> Reply {
        self.session.isd_selected = choices::ISD_DESELECTS_IAS;
        for p in &mut self.pins {
            p.verified = false;
        }
        if !want_fci {
            return Reply::ok();
        }
        let prop = tlv(&[0xA5], &tlv(&[0x9F, 0x65], &[0xFF]));
        Reply::data(tlv(&[0x6F], &[tlv(&[0x84], &facts::AID_ISD), prop].concat()))
    }

    /// Resolve the EF of a READ/UPDATE BINARY: SFI form (P1 b8 = 1) or the current EF.
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

    pub(super) fn read_binary(&mut self, cmd: &Command) -> Reply {
        let (idx, offset) = match self.binary_target(cmd) {
            Ok(t) => t,
            Err(e) => return e.into(),
        };
        if let Err(e) = self.check(self.rules(&self.fs, idx).read) {
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
            return (0x6C00 | left.len() as u16).into();
        }
        Reply::direct(left.to_vec(), sw::EOF_WARNING)
    }

    pub(super) fn update_binary(&mut self, cmd: &Command) -> Reply {
        let (idx, offset) = match self.binary_target(cmd) {
            Ok(t) => t,
            Err(e) => return e.into(),
        };
        if let Err(e) = self.check(self.rules(&self.fs, idx).update) {
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
