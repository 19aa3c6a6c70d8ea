//! Card recognition from the ATR (docs/card-spec.md §1.1, §1.2; variant ATRs of docs/card-notes.md §2).

use crate::error::CardError;

/// The card generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Generation {
    /// CPS3: Oberthur IAS-ECC.
    Cps3,
    /// CPS4: NXP ChipDoc, logical channel 1.
    Cps4,
}

impl Generation {
    /// The model string of docs/card-spec.md §1.2 / §5.2: "IAS ECC" or "ChipDoc".
    pub fn model(self) -> &'static str {
        match self {
            Generation::Cps3 => "IAS ECC",
            Generation::Cps4 => "ChipDoc",
        }
    }
}

/// How the card is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Interface {
    /// ISO 7816-3 contacts.
    Contact,
    /// ISO 14443 (CPS3 only, docs/card-spec.md §7).
    Contactless,
}

/// One known ATR, with a mask for the entries real cards vary on.
struct Known {
    atr: &'static [u8],
    mask: Option<&'static [u8]>,
    generation: Generation,
    interface: Interface,
}

const KNOWN: &[Known] = &[
    // docs/card-spec.md §1.1 row 1; with the declared mask it also matches the docs/card-notes.md §2 variant
    // 3B AC 00 40 2A 00 12 25 00 64 80 82 02 12 00 90 00.
    Known {
        atr: &[
            0x3B, 0xAC, 0x00, 0x40, 0x2A, 0x00, 0x12, 0x25, 0x00, 0x64, 0x80, 0x00, 0x03, 0x10, 0x00, 0x90,
            0x00,
        ],
        mask: Some(&[
            0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0xFF, 0xFF,
            0xFF,
        ]),
        generation: Generation::Cps3,
        interface: Interface::Contact,
    },
    // docs/card-spec.md §1.1 row 2; the mask also matches the registry/minidriver form 3B 8F … 00 00 EC C0 …
    // (docs/card-spec.md §1.1 Windows registry, docs/card-notes.md §2).
    Known {
        atr: &[
            0x3B, 0x8F, 0x80, 0x01, 0x00, 0x31, 0xB8, 0x64, 0x04, 0xB0, 0xEC, 0xC1, 0x73, 0x94, 0x01, 0x80,
            0x82, 0x90, 0x00, 0x0E,
        ],
        mask: Some(&[
            0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0xFF, 0xC0, 0xFF, 0xFF, 0xFF, 0xFF,
            0xFF, 0xFF, 0xFF, 0xFF,
        ]),
        generation: Generation::Cps3,
        interface: Interface::Contactless,
    },
    // docs/card-spec.md §1.1 rows 3–5: CPS4 release candidate, final, RC T=0 only (exact).
    Known {
        atr: &[
            0x3B, 0x9B, 0x18, 0x80, 0x01, 0x00, 0x12, 0x25, 0x00, 0x64, 0x80, 0x00, 0x04, 0x01, 0x00, 0x90,
            0x44,
        ],
        mask: None,
        generation: Generation::Cps4,
        interface: Interface::Contact,
    },
    Known {
        atr: &[
            0x3B, 0x9B, 0x18, 0x80, 0x01, 0x00, 0x12, 0x25, 0x00, 0x64, 0x80, 0x04, 0x01, 0x00, 0x00, 0x90,
            0x44,
        ],
        mask: None,
        generation: Generation::Cps4,
        interface: Interface::Contact,
    },
    Known {
        atr: &[
            0x3B, 0xDC, 0x18, 0xFF, 0x00, 0x00, 0x12, 0x25, 0x00, 0x64, 0x80, 0x00, 0x04, 0x01, 0x00, 0x90,
            0x00,
        ],
        mask: None,
        generation: Generation::Cps4,
        interface: Interface::Contact,
    },
];

/// Generation and interface of a CPx ATR. Exact ATRs first (docs/card-spec.md §1.1 matches exactly), then the
/// masked CPS3 entries (variants of docs/card-notes.md §2). An unknown ATR is logged and refused.
///
/// ```
/// use cpx_card::{Generation, Interface, identify_atr};
/// let cps4 = [0x3B, 0x9B, 0x18, 0x80, 0x01, 0x00, 0x12, 0x25, 0x00, 0x64, 0x80, 0x04, 0x01, 0x00, 0x00, 0x90, 0x44];
/// assert_eq!(identify_atr(&cps4)?, (Generation::Cps4, Interface::Contact));
/// assert!(identify_atr(&[0x3B, 0x00]).is_err());
/// # Ok::<(), cpx_card::CardError>(())
/// ```
pub fn identify_atr(atr: &[u8]) -> Result<(Generation, Interface), CardError> {
    let exact = KNOWN.iter().find(|k| k.atr == atr);
    let masked = || {
        KNOWN.iter().find(|k| {
            k.mask.is_some_and(|m| {
                k.atr.len() == atr.len() && k.atr.iter().zip(m).zip(atr).all(|((a, m), b)| a & m == b & m)
            })
        })
    };
    match exact.or_else(masked) {
        Some(k) => Ok((k.generation, k.interface)),
        None => {
            let hex = hex_upper(atr);
            log::warn!(target: "cpx::card", "not a CPx card: unknown ATR {hex}");
            Err(CardError::NotCpxCard { atr: hex })
        }
    }
}

pub(crate) fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_atr_and_the_variants() {
        let cases: &[(&[u8], Generation, Interface)] = &[
            (KNOWN[0].atr, Generation::Cps3, Interface::Contact),
            (KNOWN[1].atr, Generation::Cps3, Interface::Contactless),
            (KNOWN[2].atr, Generation::Cps4, Interface::Contact),
            (KNOWN[3].atr, Generation::Cps4, Interface::Contact),
            (KNOWN[4].atr, Generation::Cps4, Interface::Contact),
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
            assert_eq!(identify_atr(atr).unwrap(), (*g, *i), "{}", hex_upper(atr));
        }
    }

    #[test]
    fn unknown_atrs_are_not_cpx() {
        // OpenSC's typo 2B 8F … (docs/card-notes.md §2) and a truncated CPS4 ATR.
        let mut typo = KNOWN[1].atr.to_vec();
        typo[0] = 0x2B;
        for atr in [&typo[..], &KNOWN[3].atr[..16], &[][..]] {
            assert!(matches!(identify_atr(atr), Err(CardError::NotCpxCard { .. })));
        }
    }
}
