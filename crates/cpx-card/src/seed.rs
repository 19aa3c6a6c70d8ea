//! PKCS#15 files known from before (a disk cache): given at open, they spare the card the reads
//! of EF.DIR, TokenInfo, the ODF and the xDFs (docs/card-spec.md §1.4), which never change for one card
//! (serial) and one interface.
//!
//! Rules, so that a seed can never make the card layer give a wrong answer or fail:
//! - a seed is used only when the card's own serial, read from EF.SN.ICC at every open
//!   (docs/card-spec.md §1.3), its generation and its interface are the seed's;
//! - seeded bytes go through the same parsers as bytes read from the card;
//! - a seed that does not parse is dropped as a whole at open; an operation that fails in a
//!   way a stale seed can cause (a SELECT refusing a path, a missing object or reference,
//!   malformed data), before any PIN command was sent, drops every seed and runs again once
//!   on the files read from the card (see `Card::attempt`).

use crate::atr::Interface;
use crate::commands::{AID_P15_CL, AID_P15_CONTACT};
use crate::error::CardError;
use crate::generation::Generation;
use crate::pkcs15::aodf::{self, AuthObject};
use crate::pkcs15::cdf::{self, CertificateInfo};
use crate::pkcs15::dir;
use crate::pkcs15::dodf::{self, DataObjectInfo};
use crate::pkcs15::odf::{self, Odf};
use crate::pkcs15::prkdf::{self, PrivateKey};
use crate::pkcs15::tokeninfo::{self, TokenInfo};

/// The raw public PKCS#15 files of one card, as read from it: what [`Card::pkcs15_files`]
/// exports and [`Card::open_with`] / [`Identified::open`] take back. Only the directory files
/// a card gives without any PIN (docs/card-spec.md §1.4); never a PIN, never a data object's value.
///
/// `None` is a file not read (or not given); `Some(vec![])` an xDF the ODF does not list.
/// EF.DIR is not used on a CPS3 contact card (its application path is fixed, docs/card-spec.md §1.4 point
/// 4).
///
/// ```
/// use cpx_card::{Generation, Interface, Pkcs15Files};
///
/// let mut files = Pkcs15Files::new(Generation::Cps4, Interface::Contact, "99213845");
/// assert!(files.is_empty());
/// files.odf = Some(vec![0xA0, 0x06, 0x30, 0x04, 0x04, 0x02, 0x70, 0x02]);
/// assert!(!files.is_empty());
/// ```
///
/// [`Card::pkcs15_files`]: crate::Card::pkcs15_files
/// [`Card::open_with`]: crate::Card::open_with
/// [`Identified::open`]: crate::Identified::open
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pkcs15Files {
    /// The card generation the files were read from.
    pub generation: Generation,
    /// The interface they were read through (contact and contactless show different
    /// applications, docs/card-spec.md §7).
    pub interface: Interface,
    /// The serial of the card they were read from (EF.SN.ICC, docs/card-spec.md §1.3).
    pub serial: String,
    /// EF.DIR, `3F00/2F00`.
    pub ef_dir: Option<Vec<u8>>,
    /// TokenInfo, app/5032.
    pub token_info: Option<Vec<u8>>,
    /// ODF, app/5031.
    pub odf: Option<Vec<u8>>,
    /// AODF (PIN objects).
    pub aodf: Option<Vec<u8>>,
    /// PrKDF (private keys).
    pub prkdf: Option<Vec<u8>>,
    /// CDF (certificates).
    pub cdf: Option<Vec<u8>>,
    /// DODF (data objects).
    pub dodf: Option<Vec<u8>>,
}

impl Pkcs15Files {
    /// No file yet, for the card `serial` of `generation` on `interface`.
    pub fn new(generation: Generation, interface: Interface, serial: impl Into<String>) -> Pkcs15Files {
        Pkcs15Files {
            generation,
            interface,
            serial: serial.into(),
            ef_dir: None,
            token_info: None,
            odf: None,
            aodf: None,
            prkdf: None,
            cdf: None,
            dodf: None,
        }
    }

    /// No file at all.
    pub fn is_empty(&self) -> bool {
        [
            &self.ef_dir,
            &self.token_info,
            &self.odf,
            &self.aodf,
            &self.prkdf,
            &self.cdf,
            &self.dodf,
        ]
        .iter()
        .all(|f| f.is_none())
    }

    /// Read from this card, on this interface.
    pub(crate) fn is_for(&self, generation: Generation, interface: Interface, serial: &str) -> bool {
        self.generation == generation && self.interface == interface && self.serial == serial
    }
}

/// The application path when the generation fixes it on the contact interface
/// ([`crate::Capabilities::fixed_contact_app_path`]: 3F00/0001 on a CPS3, real trace, docs/card-spec.md §1.4
/// point 4); `None` elsewhere: it comes from EF.DIR (the CPS3 contactless and CPS4 paths are not
/// public; docs/card-spec.md §10.3).
pub(crate) fn fixed_app_path(generation: Generation, interface: Interface) -> Option<Vec<u8>> {
    let path = generation.capabilities().fixed_contact_app_path?;
    (interface == Interface::Contact).then(|| path.to_vec())
}

/// The application path EF.DIR gives for the interface's PKCS#15 AID (docs/card-spec.md §1.4 point 2).
pub(crate) fn app_path_from_dir(ef_dir: &[u8], interface: Interface) -> Result<Vec<u8>, CardError> {
    let aid = match interface {
        Interface::Contact => &AID_P15_CONTACT[..],
        Interface::Contactless => &AID_P15_CL[..],
    };
    dir::app_path(ef_dir, aid)?
        .ok_or_else(|| CardError::ObjectNotFound("PKCS#15 application in EF.DIR".into()))
}

/// Seeded files, parsed.
#[derive(Debug)]
pub(crate) struct Parsed {
    /// From EF.DIR (never on a CPS3 contact card).
    pub(crate) app_path: Option<Vec<u8>>,
    pub(crate) token: Option<TokenInfo>,
    pub(crate) odf: Option<Odf>,
    pub(crate) aodf: Option<Vec<AuthObject>>,
    pub(crate) prkdf: Option<Vec<PrivateKey>>,
    pub(crate) cdf: Option<Vec<CertificateInfo>>,
    pub(crate) dodf: Option<Vec<DataObjectInfo>>,
    /// The raw files kept (EF.DIR left out where it is not used).
    pub(crate) raw: Pkcs15Files,
}

/// Parse every file of a seed with the parsers of the files read from the card; the first
/// error rejects the whole seed.
pub(crate) fn parse(files: &Pkcs15Files) -> Result<Parsed, CardError> {
    fn each<T>(
        f: &Option<Vec<u8>>,
        parse: impl Fn(&[u8]) -> Result<T, CardError>,
    ) -> Result<Option<T>, CardError> {
        f.as_deref().map(parse).transpose()
    }
    let mut raw = files.clone();
    let app_path = if fixed_app_path(files.generation, files.interface).is_some() {
        raw.ef_dir = None;
        None
    } else {
        each(&files.ef_dir, |d| app_path_from_dir(d, files.interface))?
    };
    Ok(Parsed {
        app_path,
        token: each(&files.token_info, tokeninfo::parse)?,
        odf: each(&files.odf, odf::parse)?,
        aodf: each(&files.aodf, aodf::parse)?,
        prkdf: each(&files.prkdf, prkdf::parse)?,
        cdf: each(&files.cdf, cdf::parse)?,
        dodf: each(&files.dodf, dodf::parse)?,
        raw,
    })
}
