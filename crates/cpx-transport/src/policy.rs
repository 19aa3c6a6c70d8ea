//! How responses are collected from a given card.

/// How [`exchange`](crate::exchange) follows up a command: GET RESPONSE sizing, T=0 rules, limits.
///
/// ```
/// use cpx_transport::ExchangePolicy;
/// // A card taking 256-byte chunks, otherwise as cautious as the default.
/// let policy = ExchangePolicy { max_chunk: 256, ..ExchangePolicy::GENERIC };
/// assert_eq!(ExchangePolicy::default().max_chunk, 0xE7);
/// assert_eq!(policy.max_chunk, 256);
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
    /// Before the card is identified: cautious chunks that every card accepts (0xE7, the
    /// smallest `max_recv_size` of the known cards, docs/card-spec.md §2.3). Each card generation's own
    /// policy is in its table (`cpx_card::Capabilities::exchange`).
    pub const GENERIC: ExchangePolicy = ExchangePolicy {
        max_chunk: 0xE7,
        max_response_len: 16 * 1024,
        reissue_on_6cxx: true,
    };
}

impl Default for ExchangePolicy {
    fn default() -> Self {
        Self::GENERIC
    }
}
