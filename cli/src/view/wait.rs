//! What `cpx wait` shows: the structs the command fills, as its JSON (docs/cli-json.md)
//! and its text.

use serde::Serialize;

#[derive(Serialize)]
pub(crate) struct Event {
    /// `inserted` or `removed`.
    pub(crate) event: &'static str,
    pub(crate) reader: String,
    /// The new card's ATR (upper-case hex) for `inserted`; null for `removed`.
    pub(crate) atr: Option<String>,
}
