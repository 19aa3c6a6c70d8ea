//! How long a card computes before it answers a command, per card generation: the part of an
//! exchange no link speed changes. docs/reader-timing.md gives every figure's source or reasoning;
//! no public figure exists for the CPS3 or CPS4 chips themselves, so these are assumptions
//! anchored on published measurements of comparable cards.

use std::time::Duration;

const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Processing times of one card generation, by command.
///
/// ```
/// use std::time::Duration;
/// use cpx_emulator::timing::CardTimings;
///
/// // PSO COMPUTE DIGITAL SIGNATURE that succeeded: one RSA-2048 private-key operation.
/// let pso_cds = [0x00, 0x2A, 0x9E, 0x9A, 0x00];
/// assert_eq!(CardTimings::CPS3.processing(&pso_cds, &[0x61, 0x00]), Duration::from_millis(250));
/// // Refused (security status not satisfied): no RSA operation ran.
/// assert_eq!(CardTimings::CPS3.processing(&pso_cds, &[0x69, 0x82]), CardTimings::CPS3.dispatch);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CardTimings {
    /// An RSA-2048 private-key operation: PSO COMPUTE DIGITAL SIGNATURE, PSO DECIPHER,
    /// INTERNAL AUTHENTICATE (last command of a chain), when it succeeds.
    pub rsa_private: Duration,
    /// VERIFY with a PIN: try counter decremented in non-volatile memory, PIN compared, counter
    /// restored on success.
    pub verify: Duration,
    /// CHANGE REFERENCE DATA / RESET RETRY COUNTER: several non-volatile writes.
    pub change_pin: Duration,
    /// SELECT: file search and FCI/FCP built from non-volatile memory.
    pub select: Duration,
    /// Writing one started [`page`](Self::page) of non-volatile memory (UPDATE BINARY).
    pub write_page: Duration,
    /// Non-volatile page size the writes are counted in.
    pub page: usize,
    /// Any other command (READ BINARY, GET RESPONSE, MSE, PSO HASH, GET CHALLENGE, GET DATA,
    /// VERIFY without data, a refused command): command dispatch and a short read or computation.
    pub dispatch: Duration,
}

impl CardTimings {
    /// CPS3: Oberthur IAS-ECC on a 2010-era contact chip (docs/card-spec.md §1.1). RSA-2048 at 250 ms: a
    /// contact card of that class measured 269 ms per whole RSA-2048 signature, transmission
    /// included (docs/reader-timing.md, "card processing").
    pub const CPS3: CardTimings = CardTimings {
        rsa_private: ms(250),
        verify: ms(20),
        change_pin: ms(30),
        select: ms(5),
        write_page: ms(5),
        page: 64,
        dispatch: ms(2),
    };

    /// CPS4: NXP ChipDoc on a current secure element. RSA-2048 at 150 ms: recent secure
    /// elements measure 134–138 ms per whole RSA-2048 operation over USB, and vendors quote
    /// 50–200 ms with a coprocessor (docs/reader-timing.md, "card processing").
    pub const CPS4: CardTimings = CardTimings {
        rsa_private: ms(150),
        verify: ms(10),
        change_pin: ms(15),
        select: ms(2),
        write_page: ms(3),
        page: 64,
        dispatch: ms(1),
    };

    /// The generation an ATR belongs to: the CPS4 figures for the three CPS4 ATRs of docs/card-spec.md §1.1
    /// (rows 3–5), the CPS3 figures for anything else (CPS3 contact and contactless, and
    /// unknown cards, which get the slower, older chip's figures).
    pub fn for_atr(atr: &[u8]) -> CardTimings {
        use crate::facts::{ATR_CPS4, ATR_CPS4_RC, ATR_CPS4_T0};
        if [&ATR_CPS4[..], &ATR_CPS4_RC, &ATR_CPS4_T0].contains(&atr) {
            CardTimings::CPS4
        } else {
            CardTimings::CPS3
        }
    }

    /// How long the card computes before answering `command` with `response` (data + SW1 SW2).
    ///
    /// Keyed on INS (and P1 P2 for PSO), the CLA chaining bit (only the last command of a chain
    /// computes) and the status word: a refused command only costs [`dispatch`](Self::dispatch).
    pub fn processing(&self, command: &[u8], response: &[u8]) -> Duration {
        let (Some(&cla), Some(&ins)) = (command.first(), command.get(1)) else {
            return self.dispatch;
        };
        let (p1, p2) = (
            command.get(2).copied().unwrap_or(0),
            command.get(3).copied().unwrap_or(0),
        );
        let sw = match response {
            [.., sw1, sw2] => (*sw1, *sw2),
            _ => (0x6F, 0x00),
        };
        // 9000, 61xx / 9Fxx (data waiting for GET RESPONSE): the command did its work.
        let done = matches!(sw, (0x90, 0x00) | (0x61, _) | (0x9F, _));
        let chained = cla & 0x10 != 0;
        let has_data = command.len() > 5;
        match ins {
            // PSO CDS (9E 9A), PSO DECIPHER (80 86); INTERNAL AUTHENTICATE.
            0x2A if done && !chained && matches!((p1, p2), (0x9E, 0x9A) | (0x80, 0x86)) => self.rsa_private,
            0x88 if done && !chained => self.rsa_private,
            // A PIN comparison writes the try counter whatever the outcome: 9000 or 63Cx.
            0x20 if has_data && (done || sw.0 == 0x63) => self.verify,
            0x24 | 0x2C if done => self.change_pin,
            0xA4 if done => self.select,
            0xD6 | 0xD7 if done => {
                let written = usize::from(command.get(4).copied().unwrap_or(0));
                let pages = written.div_ceil(self.page.max(1)).max(1);
                self.dispatch + self.write_page * u32::try_from(pages).unwrap_or(u32::MAX)
            }
            _ => self.dispatch,
        }
    }
}
