//! The parts of an ATR that set a contact link's speed (ISO/IEC 7816-3:2006 §8.2–8.3): `TA1`
//! (Fi, Di), `TC1` (extra guard time N), the offered protocols (`TDi`), and for T=1 the first
//! `TAi`/`TCi` after `T=1` is announced (IFSC, error detection code).
//!
//! ISO 7816-3 is not public; the tables below are the ones every public summary reproduces
//! (e.g. Wikipedia "Answer to reset", and L. Rousseau's "ATR statistics" series on
//! blog.apdu.fr, which quotes it). docs/reader-timing.md lists them with their sources.

/// Why an ATR cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AtrError {
    /// Fewer than the two mandatory bytes TS and T0.
    #[error("ATR too short: {0} byte(s), TS and T0 are mandatory")]
    TooShort(usize),
    /// TS is neither 3B (direct convention) nor 3F (inverse convention).
    #[error("ATR TS byte {0:#04X} is neither 3B nor 3F")]
    BadTs(u8),
    /// The interface or historical bytes announced are not all there.
    #[error("ATR truncated: T0/TDi announce {needed} bytes, the ATR has {len}")]
    Truncated {
        /// Bytes the ATR announces (without TCK).
        needed: usize,
        /// Bytes it has.
        len: usize,
    },
    /// TA1 codes a reserved Fi or Di (ISO 7816-3 Tables 7 and 8).
    #[error("ATR TA1 {0:#04X} codes a reserved Fi or Di value")]
    ReservedTa1(u8),
}

/// What an ATR says about the link's timing.
///
/// ```
/// use cpx_emulator::timing::AtrParameters;
///
/// // CPS3 contact ATR: no TA1 (Fi 372, Di 1), T=0 only.
/// let cps3 = AtrParameters::parse(&cpx_emulator::facts::ATR_CPS3)?;
/// assert_eq!((cps3.fi, cps3.di, cps3.t1), (372, 1, false));
/// // CPS4: TA1 = 18 (Fi 372, Di 12), T=0 and T=1.
/// let cps4 = AtrParameters::parse(&cpx_emulator::facts::ATR_CPS4)?;
/// assert_eq!((cps4.fi, cps4.di, cps4.t0, cps4.t1), (372, 12, true, true));
/// # Ok::<(), cpx_emulator::timing::AtrError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AtrParameters {
    /// Clock rate conversion integer Fi (TA1 high nibble; 372 when TA1 is absent).
    pub fi: u16,
    /// Baud rate adjustment integer Di (TA1 low nibble; 1 when TA1 is absent).
    pub di: u16,
    /// Extra guard time integer N (TC1; 0 when absent).
    pub extra_guard: u8,
    /// T=0 is offered (explicitly by a TDi, or implicitly when no TD1 is present).
    pub t0: bool,
    /// T=1 is offered by some TDi.
    pub t1: bool,
    /// T=1 card information field size IFSC (first TAi after T=1; 32 when absent, §11.4.2).
    pub ifsc: u8,
    /// T=1 uses a CRC (2 bytes) rather than an LRC (1 byte) as its epilogue (first TCi after
    /// T=1, bit 1; LRC when absent, §11.4.4).
    pub crc: bool,
}

/// Fi by the high nibble of TA1 (ISO 7816-3 Table 7); `None` = reserved.
fn fi_of(code: u8) -> Option<u16> {
    Some(match code {
        0 | 1 => 372,
        2 => 558,
        3 => 744,
        4 => 1116,
        5 => 1488,
        6 => 1860,
        9 => 512,
        10 => 768,
        11 => 1024,
        12 => 1536,
        13 => 2048,
        _ => return None,
    })
}

/// Di by the low nibble of TA1 (ISO 7816-3 Table 8); `None` = reserved.
fn di_of(code: u8) -> Option<u16> {
    Some(match code {
        1 => 1,
        2 => 2,
        3 => 4,
        4 => 8,
        5 => 16,
        6 => 32,
        7 => 64,
        8 => 12,
        9 => 20,
        _ => return None,
    })
}

/// IFSC when the ATR does not give one (ISO 7816-3 §11.4.2).
pub const DEFAULT_IFSC: u8 = 32;

impl AtrParameters {
    /// Read TS, T0 and the interface bytes; the historical bytes must be present, TCK is not
    /// checked (a reader computes the link from the interface bytes alone).
    pub fn parse(atr: &[u8]) -> Result<Self, AtrError> {
        let (&ts, &t0) = match atr {
            [ts, t0, ..] => (ts, t0),
            _ => return Err(AtrError::TooShort(atr.len())),
        };
        if ts != 0x3B && ts != 0x3F {
            return Err(AtrError::BadTs(ts));
        }
        let historical = usize::from(t0 & 0x0F);
        let mut params = AtrParameters {
            fi: 372,
            di: 1,
            extra_guard: 0,
            t0: true,
            t1: false,
            ifsc: DEFAULT_IFSC,
            crc: false,
        };
        let mut offered_t0 = false;
        let mut any_td = false;
        // The group being read (1 = TA1..TD1), the protocol its TDi-1 announced, and whether
        // T=1's specific group (the first one for T=1 with i > 2, §8.2.3) has been read.
        let mut group = 1;
        let mut announced: Option<u8> = None;
        let mut t1_group_read = false;
        let mut y = t0 >> 4;
        let mut i = 2;
        let truncated = |needed: usize| AtrError::Truncated {
            needed,
            len: atr.len(),
        };
        loop {
            let mut next = |present: bool| -> Result<Option<u8>, AtrError> {
                if !present {
                    return Ok(None);
                }
                let byte = *atr.get(i).ok_or_else(|| truncated(i + 1 + historical))?;
                i += 1;
                Ok(Some(byte))
            };
            let ta = next(y & 0x1 != 0)?;
            let _tb = next(y & 0x2 != 0)?;
            let tc = next(y & 0x4 != 0)?;
            let td = next(y & 0x8 != 0)?;
            if group == 1 {
                if let Some(ta1) = ta {
                    params.fi = fi_of(ta1 >> 4).ok_or(AtrError::ReservedTa1(ta1))?;
                    params.di = di_of(ta1 & 0x0F).ok_or(AtrError::ReservedTa1(ta1))?;
                }
                params.extra_guard = tc.unwrap_or(0);
            } else if announced == Some(1) && group >= 3 && !t1_group_read {
                t1_group_read = true;
                if let Some(ifsc) = ta {
                    params.ifsc = ifsc;
                }
                if let Some(tc) = tc {
                    params.crc = tc & 0x01 != 0;
                }
            }
            let Some(td) = td else { break };
            any_td = true;
            let protocol = td & 0x0F;
            offered_t0 |= protocol == 0;
            params.t1 |= protocol == 1;
            announced = Some(protocol);
            y = td >> 4;
            group += 1;
        }
        params.t0 = offered_t0 || !any_td;
        let needed = i + historical;
        if atr.len() < needed {
            return Err(truncated(needed));
        }
        Ok(params)
    }
}
