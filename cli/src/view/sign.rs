//! What `cpx sign` shows: the structs the command fills, as its JSON (docs/cli-json.md)
//! and its text.

use serde::Serialize;

#[derive(Serialize)]
pub(crate) struct Signed {
    pub(crate) reader: String,
    /// `auth` or `sign`.
    pub(crate) key: &'static str,
    /// `pkcs1v15` or `pss`.
    pub(crate) padding: &'static str,
    /// `sha256` or `sha1`.
    pub(crate) hash: &'static str,
    /// PSS salt length in bytes; null for PKCS#1 v1.5.
    pub(crate) salt_length: Option<usize>,
    pub(crate) input: String,
    pub(crate) signature_file: String,
    /// Signature length in bytes (the key's modulus length).
    pub(crate) signature_length: usize,
}
