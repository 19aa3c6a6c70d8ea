//! What a French CPx card's certificates and business data say, for applications and admins:
//! holder, card, certificate roles, IGC-Santé CA and chain, expiry, business data objects, and a
//! versioned JSON form.
//!
//! DER in, identity out: no PC/SC, no dependency on the other cpx crates (docs/architecture.md).
//! Editors can feed it certificates obtained anywhere (a TLS handshake, a PKCS#11 module, files).
//! Validation time is always a parameter.
//!
//! ```
//! use cpx_profile::{IdStatus, Profile, Role, Timestamp, TrustStore};
//!
//! # let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../test-vectors");
//! let mut store = TrustStore::new();
//! store.load_dir(format!("{root}/pki"))?;             // or TrustStore::load_official_coffre
//! let auth = std::fs::read(format!("{root}/cards/cps3-doctor/auth.der"))?;
//! let sign = std::fs::read(format!("{root}/cards/cps3-doctor/sign.der"))?;
//! let info_ps = [0xEE, 0x06, 0x83, 0x04, b'S', b'M', b'2', b'6'];   // CPS_INFO_PS value
//!
//! let profile = Profile::builder()
//!     .certificate_from("Certificat d'Authentification CPS", &auth)
//!     .certificate_from("Certificat de Signature CPS", &sign)
//!     .data_object("CPS_INFO_PS", &info_ps)
//!     .build(&store, Timestamp::parse("2027-01-01T00:00:00Z")?);
//!
//! let id = profile.holder.national_id.as_ref().unwrap();
//! assert_eq!((id.scheme.as_deref(), id.status), (Some("rpps"), IdStatus::Valid));
//! assert_eq!(profile.holder.profession.as_ref().map(|p| p.code.as_str()), Some("10")); // G15 Médecin
//! assert_eq!(profile.holder.specialty.as_ref().map(|s| s.code.as_str()), Some("SM26"));
//! assert_eq!(profile.card.serial.as_deref(), Some("9900000001"));
//! assert_eq!(profile.certificates[1].certificate.role.role, Role::Signature);
//! assert_eq!(profile.summary.days_left, Some(731));
//! println!("{}", profile.to_json());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Modules, one concern each: [`cert`] (X.509 facts), [`dn`], [`ext`], [`health`] (ANS
//! extensions), [`role`], [`national_id`], [`holder`], [`ca`], [`chain`], [`expiry`], [`tlv`],
//! [`business`], [`codes`] (DICO tables), [`profile`], [`json`] (schema).

pub mod business;
pub mod ca;
pub mod cert;
pub mod chain;
pub mod codes;
mod der;
pub mod dn;
mod error;
pub mod expiry;
pub mod ext;
pub mod health;
pub mod holder;
pub mod json;
pub mod national_id;
mod oids;
pub mod profile;
pub mod role;
mod summary;
mod text;
mod timestamp;
pub mod tlv;

pub use business::{BusinessObject, Decoded};
pub use ca::CaInfo;
pub use cert::{Certificate, Validity};
pub use chain::{ChainReport, ChainStatus, OFFICIAL_COFFRE, TrustStore};
pub use error::{NameField, ProfileError, TlvError, TlvErrorKind};
pub use expiry::{Expiry, ExpiryStatus};
pub use holder::{Card, CardType, Holder, Organisation};
pub use national_id::{IdKind, IdStatus, NationalId};
pub use profile::{Profile, ProfileBuilder, SCHEMA_VERSION};
pub use role::{Role, RoleInfo};
pub use summary::HolderSummary;
pub use timestamp::Timestamp;
