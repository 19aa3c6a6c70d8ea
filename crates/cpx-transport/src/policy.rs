//! How responses are collected from a given card.

/// How [`exchange`](crate::exchange) follows up a command: GET RESPONSE sizing, T=0 rules, limits.
///
/// ```
/// use cpx_transport::ExchangePolicy;
/// // docs/card-spec.md §2.3: CPS3 returns at most 0xE7 bytes per GET RESPONSE.
/// assert_eq!(ExchangePolicy::CPS3.max_chunk, 0xE7);
/// assert_eq!(ExchangePolicy::CPS4.max_chunk, 256);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExchangePolicy {
    /// Largest Le asked in one GET RESPONSE (1..=256). A card announcing `61 00` (256 bytes) is asked
    /// for this many at a time.
    pub max_chunk: u16,
    /// Upper bound on a whole response assembled from GET RESPONSE chunks; a card announcing more is
    /// treated as hostile (it could otherwise keep us looping forever).
    pub max_response_len: usize,
    /// Re-send a command once with the Le the card asks for in `6Cxx` (docs/card-spec.md §2.3).
    pub reissue_on_6cxx: bool,
}

impl ExchangePolicy {
    /// CPS3 (IAS-ECC): `max_recv_size` 0xE7 (docs/card-spec.md §2.3, §8.1).
    pub const CPS3: ExchangePolicy = ExchangePolicy {
        max_chunk: 0xE7,
        max_response_len: 16 * 1024,
        reissue_on_6cxx: true,
    };
    /// CPS4 (ChipDoc): 256-byte chunks (docs/card-spec.md §2.3, §10.13).
    pub const CPS4: ExchangePolicy = ExchangePolicy {
        max_chunk: 256,
        max_response_len: 16 * 1024,
        reissue_on_6cxx: true,
    };
    /// Before the card is identified: cautious chunks that every card accepts.
    pub const GENERIC: ExchangePolicy = Self::CPS3;
}

impl Default for ExchangePolicy {
    fn default() -> Self {
        Self::GENERIC
    }
}
