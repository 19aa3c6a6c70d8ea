//! Card recognition from the ATR (docs/card-spec.md §1.1, §1.2; variant ATRs of docs/card-notes.md §2): each
//! generation lists its own ATRs in its table ([`crate::Capabilities::atrs`]).

use crate::error::CardError;
use crate::generation::Generation;

/// How the card is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Interface {
    /// ISO 7816-3 contacts.
    Contact,
    /// ISO 14443 (CPS3 only, docs/card-spec.md §7).
    Contactless,
}

/// Generation and interface of a CPx ATR, among the ATRs of every known generation. Exact ATRs
/// first (docs/card-spec.md §1.1 matches exactly), then the masked entries (variants of docs/card-notes.md
/// §2). An unknown ATR is logged and refused.
///
/// ```
/// use cpx_card::{Generation, Interface, identify_atr};
/// let cps4 = [0x3B, 0x9B, 0x18, 0x80, 0x01, 0x00, 0x12, 0x25, 0x00, 0x64, 0x80, 0x04, 0x01, 0x00, 0x00, 0x90, 0x44];
/// assert_eq!(identify_atr(&cps4)?, (Generation::Cps4, Interface::Contact));
/// assert!(identify_atr(&[0x3B, 0x00]).is_err());
/// # Ok::<(), cpx_card::CardError>(())
/// ```
pub fn identify_atr(atr: &[u8]) -> Result<(Generation, Interface), CardError> {
    match crate::generation::find_atr(atr) {
        Some(found) => Ok(found),
        None => {
            let hex = hex::encode_upper(atr);
            log::warn!(target: "cpx::card", "not a CPx card: unknown ATR {hex}");
            Err(CardError::NotCpxCard { atr: hex })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(g: Generation, i: usize) -> &'static [u8] {
        g.capabilities().atrs[i].atr
    }

    #[test]
    fn every_listed_atr_and_the_variants() {
        let cases: &[(&[u8], Generation, Interface)] = &[
            (known(Generation::Cps3, 0), Generation::Cps3, Interface::Contact),
            (
                known(Generation::Cps3, 1),
                Generation::Cps3,
                Interface::Contactless,
            ),
            (known(Generation::Cps4, 0), Generation::Cps4, Interface::Contact),
            (known(Generation::Cps4, 1), Generation::Cps4, Interface::Contact),
            (known(Generation::Cps4, 2), Generation::Cps4, Interface::Contact),
            // docs/card-notes.md §2 variant
            (
                &[
                    0x3B, 0xAC, 0x00, 0x40, 0x2A, 0x00, 0x12, 0x25, 0x00, 0x64, 0x80, 0x82, 0x02, 0x12, 0x00,
                    0x90, 0x00,
                ],
                Generation::Cps3,
                Interface::Contact,
            ),
            // registry form of the CL ATR (docs/card-spec.md §1.1)
            (
                &[
                    0x3B, 0x8F, 0x80, 0x01, 0x00, 0x31, 0xB8, 0x64, 0x00, 0x00, 0xEC, 0xC0, 0x73, 0x94, 0x01,
                    0x80, 0x82, 0x90, 0x00, 0x0E,
                ],
                Generation::Cps3,
                Interface::Contactless,
            ),
        ];
        for (atr, g, i) in cases {
            assert_eq!(identify_atr(atr).unwrap(), (*g, *i), "{}", hex::encode_upper(atr));
        }
    }

    #[test]
    fn unknown_atrs_are_not_cpx() {
        // OpenSC's typo 2B 8F … (docs/card-notes.md §2) and a truncated CPS4 ATR.
        let mut typo = known(Generation::Cps3, 1).to_vec();
        typo[0] = 0x2B;
        for atr in [&typo[..], &known(Generation::Cps4, 1)[..16], &[][..]] {
            assert!(matches!(identify_atr(atr), Err(CardError::NotCpxCard { .. })));
        }
    }
}
