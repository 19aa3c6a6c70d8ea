//! What `cpx certs` shows: the structs the command fills, as its JSON (docs/cli-json.md)
//! and its text.

use cpx_profile::{ChainStatus, ExpiryStatus, Role, Timestamp};
use serde::Serialize;

use crate::view::status::CertInfo;

#[derive(Serialize)]
pub(crate) struct List {
    pub(crate) reader: String,
    pub(crate) certificates: Vec<CertInfo>,
}

#[derive(Serialize)]
pub(crate) struct Exported {
    pub(crate) reader: String,
    /// `pem` or `der`.
    pub(crate) format: &'static str,
    pub(crate) file: String,
    pub(crate) certificates: Vec<ExportedCert>,
}

#[derive(Serialize)]
pub(crate) struct ExportedCert {
    pub(crate) role: Role,
    pub(crate) subject: String,
    pub(crate) sha256: String,
}

#[derive(Serialize)]
pub(crate) struct Verified {
    pub(crate) reader: String,
    /// The instant of validation.
    pub(crate) at: Timestamp,
    pub(crate) anchors: Vec<Anchors>,
    /// Every certificate valid.
    pub(crate) valid: bool,
    pub(crate) certificates: Vec<VerifiedCert>,
}

#[derive(Serialize)]
pub(crate) struct Anchors {
    pub(crate) dir: String,
    /// Certificates loaded from it.
    pub(crate) loaded: usize,
}

#[derive(Serialize)]
pub(crate) struct VerifiedCert {
    pub(crate) role: Role,
    pub(crate) subject: String,
    /// `valid`, `invalid` (a check failed) or `incomplete` (no path to an anchor).
    pub(crate) status: ChainStatus,
    pub(crate) expiry: ExpiryStatus,
    pub(crate) days_left: i64,
    /// Subjects from the certificate to the anchor (as far as it goes).
    pub(crate) path: Vec<String>,
    pub(crate) problems: Vec<String>,
}
