//! SELECT (docs/card-spec.md §1.3, §2.2, §8): the IAS P2 forms, the IAS and ISD AIDs, the FCP `62`. The P1
//! forms, READ BINARY and UPDATE BINARY are shared with the CPS4 (`common`, [`super::PROFILE`]).

use super::Cps3Card;
use crate::apdu::{Command, sw};
use crate::choices;
use crate::common::isd_fci;
use crate::facts;
use crate::fs::MF;
use crate::link::Reply;

impl Cps3Card {
    pub(super) fn select(&mut self, cmd: &Command) -> Reply {
        // P2 must be 04 (FCP) or 0C (no data): `00 A4 02 00` and `00 A4 04 00 <P15 AID>` give 6A86
        // (docs/card-spec.md §2.2, upstream commits).
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
        if cmd.p1 == 0x04 && cmd.data == facts::AID_ISD {
            return self.select_isd(want_fcp);
        }
        if cmd.p1 == 0x04 && cmd.data == facts::AID_CPS2TER {
            return choices::CPS2TER_AID_ON_CPS3_SW.into();
        }
        let idx = match self.core.resolve_select(cmd) {
            Ok(idx) => idx,
            Err(e) => return e.into(),
        };
        self.select_idx(idx);
        match (want_fcp, self.core.fs.fcp(idx)) {
            (true, Some(fcp)) => Reply::data(self.core.knobs.fcp(fcp)),
            _ => Reply::ok(),
        }
    }

    fn select_idx(&mut self, idx: usize) {
        self.session.isd_selected = false;
        self.core.cursor.select(&self.core.fs, idx);
    }

    /// The GlobalPlatform ISD: an FCI, and the IAS application is no longer selected.
    fn select_isd(&mut self, want_fci: bool) -> Reply {
        self.session.isd_selected = choices::ISD_DESELECTS_IAS;
        self.core.logout();
        if !want_fci {
            return Reply::ok();
        }
        Reply::data(isd_fci())
    }
}
