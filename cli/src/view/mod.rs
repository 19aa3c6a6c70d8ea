//! What the commands show, one module per command (as `oct` has): the structs a command fills,
//! serialised as its `--json` document (docs/cli-json.md) and printed as its text. The commands
//! (`commands/`) talk to the card and fill these; how the result looks lives here. Rendering
//! helpers shared by all (JSON envelope, terminal-safe text) are in `output.rs`.

pub(crate) mod certs;
pub(crate) mod data;
pub(crate) mod pin;
pub(crate) mod readers;
pub(crate) mod report;
pub(crate) mod sign;
pub(crate) mod status;
pub(crate) mod wait;
