//! Another program logs the card out under a logged-in browser: what another middleware (the
//! official module on exit, `cpx pin logout`, a billing program's own driver) sends, straight
//! through PC/SC from the test process — the module in the browser knows nothing of it.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use cpx_card::commands::{CLA_CPS3, CLA_CPS4, verify_reset, verify_status};
use cpx_testkit::Failed;
use cpx_transport::{CardChannel, Pcsc};

use crate::support::{CPS3, Card};

/// The PIN's reference (P2 of VERIFY) on both generations (docs/card-spec.md §3.2).
const PIN_REFERENCE: u8 = 0x01;

/// What the card answered to the other program, in order (status words as `9000`, `63C3`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardLogout {
    /// VERIFY without data before: `9000` while someone's login holds on the card.
    pub before: String,
    /// VERIFY P1=FF, the logout itself.
    pub logout: String,
    /// VERIFY without data after: `63Cx` (not verified, x tries left) once it took effect.
    pub after: String,
}

/// In one PC/SC transaction (nobody's APDU between them) on the card in `reader`: asks whether
/// the PIN is verified (VERIFY without data: no try spent, ISO/IEC 7816-4 §11.5.6), logs it out
/// (VERIFY P1=FF, the ISO "logout" form both generations take, docs/card-spec.md §3.2), and asks again.
/// Connects in shared mode and leaves the card as it is on disconnect (no reset).
pub fn log_out_card(reader: &str, card: &Card) -> Result<CardLogout, Failed> {
    // CLA: the CPS3's basic channel, the CPS4's logical channel 1 (docs/card-spec.md §1.3).
    let cla = if card.stem == CPS3.stem {
        CLA_CPS3
    } else {
        CLA_CPS4
    };
    let pcsc = Pcsc::establish()?;
    let mut channel = pcsc.connect(reader)?;
    let mut tx = channel.transaction()?;
    let mut sw = |command| -> Result<String, Failed> {
        let sw = tx.transmit(&command)?.sw();
        Ok(format!("{:02X}{:02X}", sw.0, sw.1))
    };
    let before = sw(verify_status(cla, PIN_REFERENCE))?;
    let logout = sw(verify_reset(cla, PIN_REFERENCE))?;
    let after = sw(verify_status(cla, PIN_REFERENCE))?;
    tx.end(false)?;
    Ok(CardLogout {
        before,
        logout,
        after,
    })
}
