//! The CPS2ter volet of the CPS3: CLA A0, FCI tag 85, `9Fxx` (docs/card-spec.md §2.2, docs/card-notes.md §3).

use super::Cps3Card;
use crate::apdu::{Command, sw};
use crate::choices;
use crate::fs::{Access, Body, MF};
use crate::link::{Delivery, Reply};
use crate::tlv::tlv;

impl Cps3Card {
    pub(super) fn cps2ter(&mut self, cmd: &Command) -> Reply {
        match cmd.ins {
            0xA4 => self.cps2ter_select(cmd),
            0xB0 => self.cps2ter_read(cmd),
            _ => sw::INS_NOT_SUPPORTED.into(),
        }
    }

    /// `A0 A4 00 00 02 <FID>`, one path element at a time; 3F00 = MF.
    fn cps2ter_select(&mut self, cmd: &Command) -> Reply {
        if cmd.p1 != 0 || cmd.p2 != 0 {
            return sw::WRONG_PARAMETERS.into();
        }
        let [a, b] = cmd.data[..] else {
            return sw::WRONG_LENGTH.into();
        };
        let fid = u16::from_be_bytes([a, b]);
        let fs = &self.cps2ter;
        let cur = self.session.cps2ter.df;
        let target = if fid == 0x3F00 {
            Some(MF)
        } else {
            fs.child(cur, fid)
                .or_else(|| fs.get(cur).and_then(|f| f.parent).and_then(|p| fs.child(p, fid)))
        };
        let Some(idx) = target else {
            return sw::CPS2TER_NOT_FOUND.into();
        };
        let Some(file) = fs.get(idx) else {
            return sw::CPS2TER_NOT_FOUND.into();
        };
        // FCI: size(2) ‖ FID(2) ‖ type (1 MF, 2 DF, 4 EF) (docs/card-spec.md §2.2).
        let (size, kind) = match &file.body {
            Body::Ef { data, .. } => (data.len(), 4),
            Body::Df { .. } if idx == MF => (0, 1),
            Body::Df { .. } => (0, 2),
        };
        let mut fci = (size as u16).to_be_bytes().to_vec();
        fci.extend(fid.to_be_bytes());
        fci.push(kind);
        fci.truncate(choices::CPS2TER_FCI_LEN);
        self.session.cps2ter.select(fs, idx);
        Reply {
            data: tlv(&[0x85], &fci),
            sw: sw::OK,
            delivery: Delivery::Deferred(0x9F),
        }
    }

    /// `A0 B0 <offset> Le`; situations need the (IAS) PIN, else 9804.
    fn cps2ter_read(&mut self, cmd: &Command) -> Reply {
        let Some(idx) = self.session.cps2ter.ef else {
            return 0x9400.into();
        };
        let needs_pin = self
            .cps2ter
            .get(idx)
            .is_some_and(|f| f.contact.read == Access::Pin);
        if needs_pin && !self.core.user_verified() {
            return sw::CPS2TER_ACCESS.into();
        }
        let Some(data) = self.cps2ter.data(idx) else {
            return 0x9400.into();
        };
        let offset = usize::from(cmd.p1) << 8 | usize::from(cmd.p2);
        let ne = cmd.ne().unwrap_or(0);
        match data.get(offset..offset + ne) {
            Some(d) if ne > 0 => Reply::direct(d.to_vec(), sw::OK),
            _ => sw::CPS2TER_BAD_ADDRESS.into(),
        }
    }
}
