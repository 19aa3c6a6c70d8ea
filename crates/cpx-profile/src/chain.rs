//! Trust anchors and chain validation: signature, validity at a given instant, basic constraints
//! and key usage of CAs, path length.
//!
//! Signatures are checked with the pure-Rust `rsa` crate, not x509-parser's `verify` feature
//! (ring): one RSA stack across the project (the emulator and xtask use `rsa`), no C/asm.
//!
//! Anchors come from directories: this repository's test PKI (`test-vectors/pki`), the official
//! middleware's CA store [`OFFICIAL_COFFRE`] when present (docs/card-notes.md §7), any directory the user
//! names. Every certificate in a trusted directory may serve as an intermediate; a path is valid
//! only when it ends at a self-issued certificate of the store.
//!
//! ```
//! use cpx_profile::{Certificate, ChainStatus, Timestamp, TrustStore};
//!
//! # let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../test-vectors");
//! let mut store = TrustStore::new();
//! store.load_dir(format!("{root}/pki"))?;
//! let leaf = Certificate::from_der(&std::fs::read(format!("{root}/cards/cps3-doctor/auth.der"))?)?;
//! let report = store.validate(&leaf, &[], Timestamp::parse("2027-01-01T00:00:00Z")?);
//! assert_eq!(report.status, ChainStatus::Valid);
//! assert_eq!(report.path.len(), 3); // leaf → FORT PERSONNES → RACINE FORT
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::{Path, PathBuf};

use rsa::{BigUint, Pkcs1v15Sign, RsaPublicKey};
use serde::Serialize;
use sha1::Sha1;
use sha2::{Digest, Sha224, Sha256, Sha384, Sha512};
use x509_parser::pem::Pem;

use crate::ca::{self, CaInfo};
use crate::cert::Certificate;
use crate::error::ProfileError;
use crate::oids;
use crate::timestamp::Timestamp;

/// Where the official Cryptolib CPS installs the IGC-Santé CA certificates (docs/card-notes.md §7).
pub const OFFICIAL_COFFRE: &str = "/etc/opt/santesocial/CPS/Coffre";

/// Longest path followed (leaf included). IGC-Santé paths have 3 certificates.
pub const MAX_PATH: usize = 8;

/// Largest RSA modulus accepted for signature checks (the real roots are 4096-bit).
const MAX_RSA_BITS: usize = 8192;

/// Certificates trusted for path building.
#[derive(Debug, Clone, Default)]
pub struct TrustStore {
    certs: Vec<(Certificate, String)>,
}

/// What [`TrustStore::load_dir`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoadReport {
    /// The directory.
    pub dir: PathBuf,
    /// Certificates added (file names).
    pub loaded: Vec<String>,
    /// Files skipped, with the reason (private keys, non-certificates, duplicates).
    pub skipped: Vec<(String, String)>,
}

/// Chain validation outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChainStatus {
    /// A path to a trusted anchor, every check passed.
    Valid,
    /// A path to a trusted anchor, but some check failed (see `problems`).
    Invalid,
    /// No path to a trusted anchor (issuer not in the store, or a loop).
    Incomplete,
}

/// One certificate of a path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainLink {
    /// Subject DN text.
    pub subject: String,
    /// SHA-256 of the certificate.
    pub sha256: String,
    /// What the subject name says about the CA; `None` for a certificate that is not a CA
    /// (basicConstraints cA unset), i.e. a card certificate at index 0.
    pub ca: Option<CaInfo>,
    /// notAfter.
    pub not_after: Timestamp,
    /// Where it came from: `leaf` (the certificate validated), `supplied` (an intermediate given
    /// to [`TrustStore::validate`]), or the trust-store origin (file name for [`TrustStore::load_dir`]).
    pub origin: String,
}

/// A failed check. `index` is the position in `path` (0 = the certificate validated).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum ChainProblem {
    /// notBefore is after the validation instant.
    #[error("certificate #{index} is not yet valid (notBefore {not_before})")]
    NotYetValid {
        /// Position in the path.
        index: usize,
        /// notBefore.
        not_before: Timestamp,
    },
    /// notAfter is before the validation instant.
    #[error("certificate #{index} expired on {not_after}")]
    Expired {
        /// Position in the path.
        index: usize,
        /// notAfter.
        not_after: Timestamp,
    },
    /// The signature does not verify with the issuer's key.
    #[error("signature of certificate #{index} does not verify with its issuer's key")]
    BadSignature {
        /// Position in the path of the signed certificate.
        index: usize,
    },
    /// Signature algorithm or key this crate cannot check.
    #[error("certificate #{index}: cannot check signature ({detail})")]
    UnsupportedSignature {
        /// Position in the path of the signed certificate.
        index: usize,
        /// Algorithm or key problem.
        detail: String,
    },
    /// An issuer without basicConstraints cA.
    #[error("certificate #{index} issues certificates but is not a CA (basicConstraints)")]
    NotCa {
        /// Position of the issuer.
        index: usize,
    },
    /// An issuer whose keyUsage lacks keyCertSign.
    #[error("certificate #{index} issues certificates without keyUsage keyCertSign")]
    NoKeyCertSign {
        /// Position of the issuer.
        index: usize,
    },
    /// pathLenConstraint exceeded.
    #[error("certificate #{index} allows {path_len} intermediate(s) below it, the path has {below}")]
    PathLenExceeded {
        /// Position of the constraining CA.
        index: usize,
        /// Its pathLenConstraint.
        path_len: u32,
        /// Intermediates below it.
        below: usize,
    },
    /// The issuer of the last certificate is not in the store.
    #[error("issuer of certificate #{index} not found: {issuer}")]
    IssuerNotFound {
        /// Position of the certificate whose issuer is missing.
        index: usize,
        /// The issuer DN text.
        issuer: String,
    },
    /// The path loops or is longer than [`MAX_PATH`].
    #[error("path longer than {MAX_PATH} or looping at certificate #{index}")]
    TooLong {
        /// Position where building stopped.
        index: usize,
    },
}

/// The result of validating one certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainReport {
    /// Outcome.
    pub status: ChainStatus,
    /// The instant of validation.
    pub at: Timestamp,
    /// The path found, from the validated certificate to the anchor (or as far as it goes).
    pub path: Vec<ChainLink>,
    /// Every failed check.
    pub problems: Vec<ChainProblem>,
}

impl TrustStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add one certificate (DER or PEM, one or more PEM blocks); `origin` names it in reports.
    ///
    /// # Errors
    /// The parse error of the first certificate that does not parse.
    pub fn add(&mut self, bytes: &[u8], origin: &str) -> Result<usize, ProfileError> {
        let mut added = 0;
        if bytes.starts_with(b"-----BEGIN") {
            for pem in Pem::iter_from_buffer(bytes) {
                let pem = pem.map_err(|e| ProfileError::Malformed(format!("PEM: {e}")))?;
                if pem.label == "CERTIFICATE" {
                    added += usize::from(self.push(Certificate::from_der(&pem.contents)?, origin));
                }
            }
        } else {
            added += usize::from(self.push(Certificate::from_der(bytes)?, origin));
        }
        Ok(added)
    }

    fn push(&mut self, cert: Certificate, origin: &str) -> bool {
        if self.certs.iter().any(|(c, _)| c.sha256 == cert.sha256) {
            return false;
        }
        self.certs.push((cert, origin.to_owned()));
        true
    }

    /// Load every `*.der`, `*.cer`, `*.crt` and `*.pem` file of `dir` (not recursive), in file-name
    /// order. Files that are not certificates (e.g. the test PKI's private keys) are skipped and
    /// reported.
    ///
    /// # Errors
    /// [`ProfileError::Io`] when the directory cannot be listed.
    pub fn load_dir(&mut self, dir: impl AsRef<Path>) -> Result<LoadReport, ProfileError> {
        let dir = dir.as_ref();
        let io = |e: std::io::Error| ProfileError::Io {
            path: dir.to_path_buf(),
            reason: e.to_string(),
        };
        let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        names.sort();
        let mut report = LoadReport {
            dir: dir.to_path_buf(),
            loaded: Vec::new(),
            skipped: Vec::new(),
        };
        for path in names {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let ext = path
                .extension()
                .and_then(|e| e.to_str())
                .unwrap_or_default()
                .to_ascii_lowercase();
            if !matches!(ext.as_str(), "der" | "cer" | "crt" | "pem") || !path.is_file() {
                continue;
            }
            let outcome = std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| self.add(&b, &name).map_err(|e| e.to_string()));
            match outcome {
                Ok(0) => report.skipped.push((name, "duplicate or no certificate".into())),
                Ok(_) => report.loaded.push(name),
                Err(e) => report.skipped.push((name, e)),
            }
        }
        Ok(report)
    }

    /// Load [`OFFICIAL_COFFRE`] if it exists; `None` when it does not.
    pub fn load_official_coffre(&mut self) -> Option<Result<LoadReport, ProfileError>> {
        Path::new(OFFICIAL_COFFRE)
            .is_dir()
            .then(|| self.load_dir(OFFICIAL_COFFRE))
    }

    /// Number of certificates.
    pub fn len(&self) -> usize {
        self.certs.len()
    }

    /// No certificate at all.
    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }

    /// Every certificate with its origin.
    pub fn certificates(&self) -> impl Iterator<Item = (&Certificate, &str)> {
        self.certs.iter().map(|(c, o)| (c, o.as_str()))
    }

    /// Validate `cert` at `at`, building the path from the store plus `intermediates` (e.g. the
    /// other certificates a TLS peer sent, which are not trusted by themselves).
    pub fn validate(&self, cert: &Certificate, intermediates: &[Certificate], at: Timestamp) -> ChainReport {
        let pool: Vec<(&Certificate, &str)> = self
            .certs
            .iter()
            .map(|(c, o)| (c, o.as_str()))
            .chain(intermediates.iter().map(|c| (c, "supplied")))
            .collect();
        let mut path: Vec<(&Certificate, &str)> = vec![(cert, "leaf")];
        let mut problems = Vec::new();
        let mut anchored = false;
        loop {
            let index = path.len() - 1;
            let Some(&(current, _)) = path.last() else { break };
            if current.is_self_issued() && self.certs.iter().any(|(c, _)| c.sha256 == current.sha256) {
                if let Err(p) = verify(current, current, index) {
                    problems.push(p);
                }
                anchored = true;
                break;
            }
            if path.len() >= MAX_PATH {
                problems.push(ChainProblem::TooLong { index });
                break;
            }
            let candidates: Vec<(&Certificate, &str)> =
                pool.iter().copied().filter(|(c, _)| issued(c, current)).collect();
            let chosen = candidates
                .iter()
                .find(|(c, _)| verify(current, c, index).is_ok())
                .or(candidates.first())
                .copied();
            let Some((issuer, origin)) = chosen else {
                problems.push(ChainProblem::IssuerNotFound {
                    index,
                    issuer: current.issuer.text.clone(),
                });
                break;
            };
            if path.iter().any(|(c, _)| c.sha256 == issuer.sha256) {
                problems.push(ChainProblem::TooLong { index });
                break;
            }
            if let Err(p) = verify(current, issuer, index) {
                problems.push(p);
            }
            path.push((issuer, origin));
        }
        for (i, (c, _)) in path.iter().enumerate() {
            if at < c.validity.not_before {
                problems.push(ChainProblem::NotYetValid {
                    index: i,
                    not_before: c.validity.not_before,
                });
            }
            if at > c.validity.not_after {
                problems.push(ChainProblem::Expired {
                    index: i,
                    not_after: c.validity.not_after,
                });
            }
            if i == 0 {
                continue;
            }
            let ext = &c.extensions;
            if !ext.basic_constraints.is_some_and(|b| b.ca) {
                problems.push(ChainProblem::NotCa { index: i });
            }
            if ext.key_usage.as_ref().is_some_and(|k| !k.has("keyCertSign")) {
                problems.push(ChainProblem::NoKeyCertSign { index: i });
            }
            // Intermediates strictly between this CA and the validated certificate.
            let below = i - 1;
            if let Some(path_len) = ext.basic_constraints.and_then(|b| b.path_len)
                && usize::try_from(path_len).is_ok_and(|p| below > p)
            {
                problems.push(ChainProblem::PathLenExceeded {
                    index: i,
                    path_len,
                    below,
                });
            }
        }
        problems.sort_by_key(problem_index);
        let status = match (anchored, problems.is_empty()) {
            (false, _) => ChainStatus::Incomplete,
            (true, true) => ChainStatus::Valid,
            (true, false) => ChainStatus::Invalid,
        };
        let path = path
            .into_iter()
            .map(|(c, origin)| ChainLink {
                subject: c.subject.text.clone(),
                sha256: c.sha256.clone(),
                ca: c
                    .extensions
                    .basic_constraints
                    .is_some_and(|b| b.ca)
                    .then(|| ca::classify(&c.subject)),
                not_after: c.validity.not_after,
                origin: origin.to_owned(),
            })
            .collect();
        ChainReport {
            status,
            at,
            path,
            problems,
        }
    }
}

fn problem_index(p: &ChainProblem) -> usize {
    match p {
        ChainProblem::NotYetValid { index, .. }
        | ChainProblem::Expired { index, .. }
        | ChainProblem::BadSignature { index }
        | ChainProblem::UnsupportedSignature { index, .. }
        | ChainProblem::NotCa { index }
        | ChainProblem::NoKeyCertSign { index }
        | ChainProblem::PathLenExceeded { index, .. }
        | ChainProblem::IssuerNotFound { index, .. }
        | ChainProblem::TooLong { index } => *index,
    }
}

/// `issuer`'s subject is `cert`'s issuer, and the key identifiers agree when both are present.
fn issued(issuer: &Certificate, cert: &Certificate) -> bool {
    if !issuer.subject.same_name(&cert.issuer) {
        return false;
    }
    match (
        &cert.extensions.authority_key_id,
        &issuer.extensions.subject_key_id,
    ) {
        (Some(aki), Some(ski)) => aki == ski,
        _ => true,
    }
}

/// Check `cert`'s signature with `issuer`'s RSA key (PKCS#1 v1.5).
fn verify(cert: &Certificate, issuer: &Certificate, index: usize) -> Result<(), ChainProblem> {
    let unsupported = |detail: String| ChainProblem::UnsupportedSignature { index, detail };
    let (n, e) = issuer
        .rsa
        .as_ref()
        .ok_or_else(|| unsupported("issuer key is not RSA".into()))?;
    let key =
        RsaPublicKey::new_with_max_size(BigUint::from_bytes_be(n), BigUint::from_bytes_be(e), MAX_RSA_BITS)
            .map_err(|err| unsupported(format!("issuer RSA key: {err}")))?;
    let tbs = cert.tbs_bytes();
    let (scheme, digest) = match cert.signature_algorithm.oid.as_str() {
        oids::SHA256_RSA => (Pkcs1v15Sign::new::<Sha256>(), Sha256::digest(tbs).to_vec()),
        oids::SHA384_RSA => (Pkcs1v15Sign::new::<Sha384>(), Sha384::digest(tbs).to_vec()),
        oids::SHA512_RSA => (Pkcs1v15Sign::new::<Sha512>(), Sha512::digest(tbs).to_vec()),
        oids::SHA224_RSA => (Pkcs1v15Sign::new::<Sha224>(), Sha224::digest(tbs).to_vec()),
        // SHA-1: legacy IGC-CPS2ter certificates.
        oids::SHA1_RSA => (Pkcs1v15Sign::new::<Sha1>(), Sha1::digest(tbs).to_vec()),
        other => return Err(unsupported(format!("signature algorithm {other}"))),
    };
    key.verify(scheme, &digest, &cert.signature)
        .map_err(|_| ChainProblem::BadSignature { index })
}
