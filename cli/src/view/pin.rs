//! What `cpx pin` shows: the structs the command fills, as its JSON (docs/cli-json.md)
//! and its text.

use serde::Serialize;

use crate::session::CodeState;

#[derive(Serialize)]
pub(crate) struct PinReport {
    pub(crate) reader: String,
    /// `verify`, `change` or `unblock`.
    pub(crate) operation: &'static str,
    /// Always true: failures exit non-zero with nothing on stdout.
    pub(crate) ok: bool,
    pub(crate) pin: Option<CodeState>,
    pub(crate) puk: Option<CodeState>,
}
