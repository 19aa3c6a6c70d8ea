//! A small T=0 card for transport tests. It parses APDUs with its own byte handling (not cpx-apdu),
//! so a bug in the driver's encoding cannot hide on both sides.

use std::sync::{Arc, Mutex, PoisonError};

use cpx_vpcd::VirtualCard;

/// The CPS3 contact ATR (docs/card-spec.md §1.1): T=0 only, so pcsc-lite does no GET RESPONSE of its own.
pub const CPS3_ATR: [u8; 17] = [
    0x3B, 0xAC, 0x00, 0x40, 0x2A, 0x00, 0x12, 0x25, 0x00, 0x64, 0x80, 0x00, 0x03, 0x10, 0x00, 0x90, 0x00,
];

/// Everything the card received, shared with the test that inspects it.
pub type TestCardLog = Arc<Mutex<Vec<Vec<u8>>>>;

/// A T=0 test card. Its proprietary commands (CLA 80):
///
/// | command | effect |
/// |---|---|
/// | `80 10 00 00 [Le]` | a 600-byte answer (`i mod 251`), announced `61 00`, served only in GET RESPONSE chunks of at most `E7` (a larger Le gets `67 00`) |
/// | `80 12 00 00 Le` | 12 bytes when Le = `0C`, else `6C 0C` |
/// | `80 14 00 00 Lc data` | echoes the data through `61xx` (case 4 on T=0) |
/// | `80 20 00 00` | "verify": sets the security state |
/// | `80 22 00 00` | `90 00` when the security state is set, `69 82` otherwise |
///
/// Anything else gets `6D 00`. A reset or power cycle clears the security state, as on a real card.
#[derive(Debug, Default)]
pub struct TestCard {
    log: TestCardLog,
    pending: Vec<u8>,
    verified: bool,
    atr: Option<Vec<u8>>,
}

impl TestCard {
    /// A fresh card with an empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// The same card with another ATR (e.g. to tell two cards apart).
    pub fn with_atr(mut self, atr: Vec<u8>) -> Self {
        self.atr = Some(atr);
        self
    }

    /// A handle on the log of received commands (GET ATR polls are not logged).
    pub fn log(&self) -> TestCardLog {
        Arc::clone(&self.log)
    }

    /// The 600-byte payload of `80 10`.
    pub fn long_answer() -> Vec<u8> {
        (0..600u32).map(|i| (i % 251) as u8).collect()
    }

    fn announce(&mut self, data: Vec<u8>) -> Vec<u8> {
        let n = data.len();
        self.pending = data;
        if n == 0 {
            vec![0x90, 0x00]
        } else {
            vec![0x61, if n >= 256 { 0x00 } else { n as u8 }]
        }
    }

    fn get_response(&mut self, le: usize) -> Vec<u8> {
        if self.pending.is_empty() {
            return vec![0x69, 0x85];
        }
        let le = if le == 0 { 256 } else { le };
        // docs/card-spec.md §2.3: the CPS3 serves at most E7 per GET RESPONSE; refuse more so a transport
        // that asks for more is caught.
        if le > 0xE7 {
            return vec![0x67, 0x00];
        }
        let take = le.min(self.pending.len());
        let mut out: Vec<u8> = self.pending.drain(..take).collect();
        let left = self.pending.len();
        if left == 0 {
            out.extend_from_slice(&[0x90, 0x00]);
        } else {
            out.extend_from_slice(&[0x61, if left >= 256 { 0x00 } else { left as u8 }]);
        }
        out
    }
}

impl VirtualCard for TestCard {
    fn atr(&self) -> Vec<u8> {
        self.atr.clone().unwrap_or_else(|| CPS3_ATR.to_vec())
    }

    fn power_on(&mut self) {
        self.verified = false;
        self.pending.clear();
    }

    fn power_off(&mut self) {
        self.verified = false;
        self.pending.clear();
    }

    fn transmit(&mut self, command: &[u8]) -> Vec<u8> {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(command.to_vec());
        let [cla, ins, _p1, _p2, rest @ ..] = command else {
            return vec![0x67, 0x00];
        };
        // T=0: one P3 byte at most; a case-4 command arrives as case 3 (data, no Le).
        let p3 = rest.first().copied().map(usize::from);
        let data = rest.get(1..).unwrap_or_default();
        match (*cla, *ins) {
            (0x00, 0xC0) => self.get_response(p3.unwrap_or(0)),
            (0x80, 0x10) => self.announce(Self::long_answer()),
            (0x80, 0x12) => match p3 {
                Some(0x0C) => {
                    let mut r = (1..=12).collect::<Vec<u8>>();
                    r.extend_from_slice(&[0x90, 0x00]);
                    r
                }
                _ => vec![0x6C, 0x0C],
            },
            (0x80, 0x14) => {
                if p3 != Some(data.len()) {
                    return vec![0x67, 0x00];
                }
                self.announce(data.to_vec())
            }
            (0x80, 0x20) => {
                self.verified = true;
                vec![0x90, 0x00]
            }
            (0x80, 0x22) => {
                if self.verified {
                    vec![0x90, 0x00]
                } else {
                    vec![0x69, 0x82]
                }
            }
            (0x80, _) => vec![0x6D, 0x00],
            _ => vec![0x6E, 0x00],
        }
    }
}
