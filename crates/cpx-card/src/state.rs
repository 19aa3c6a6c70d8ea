//! What the layer knows of the open card: identity, PKCS#15 read so far (each file read once, on
//! first need), PIN state.

use crate::atr::Interface;
use crate::ber::Path;
use crate::crypto::KeyRole;
use crate::error::CardError;
use crate::generation::Generation;
use crate::io::Io;
use crate::pin::{PinKind, PinPolicy};
use crate::pkcs15::aodf::AuthObject;
use crate::pkcs15::cdf::CertificateInfo;
use crate::pkcs15::dodf::DataObjectInfo;
use crate::pkcs15::odf::Odf;
use crate::pkcs15::prkdf::{self, PrivateKey};
use crate::pkcs15::tokeninfo::{self, TokenInfo};
use crate::pkcs15::{aodf, cdf, dodf, odf};
use crate::seed::{self, Parsed, Pkcs15Files};

/// A private key as the commands need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KeyInfo {
    pub(crate) reference: u8,
    pub(crate) modulus_len: usize,
}

pub(crate) struct State {
    pub(crate) generation: Generation,
    pub(crate) interface: Interface,
    pub(crate) serial: String,
    /// The application DF; empty until known (EF.DIR read or seeded).
    pub(crate) app_path: Vec<u8>,
    /// TokenInfo, once read or seeded.
    pub(crate) token: Option<TokenInfo>,
    pub(crate) pin_verified: bool,
    /// The card already showed the PIN verified (another program's login) when we verified it:
    /// letting go of the card then leaves it verified ([`crate::Card::release_login`]).
    pub(crate) pin_found_verified: bool,
    /// The PUK was verified in this card session (and not reset since).
    pub(crate) puk_verified: bool,
    pub(crate) replaced_by: Option<String>,
    odf: Option<Odf>,
    aodf: Option<Vec<AuthObject>>,
    prkdf: Option<Vec<PrivateKey>>,
    cdf: Option<Vec<CertificateInfo>>,
    dodf: Option<Vec<DataObjectInfo>>,
    /// The raw files behind what is known above (read from the card or seeded).
    files: Pkcs15Files,
    /// Some of what is known came from a seed ([`crate::seed`]) not dropped since.
    pub(crate) seeded: bool,
    /// The reader's PIN pad once asked (`Some(None)`: none, or not usable).
    pub(crate) pad: Option<Option<crate::pinpad::PadReader>>,
    /// Whether pads may be used; [`crate::PinPadSetting::from_env`] when not set.
    pub(crate) pad_setting: Option<crate::pinpad::PinPadSetting>,
}

impl State {
    /// A card identified by its serial; application and TokenInfo not known yet
    /// ([`State::install`], [`State::ensure_app`]).
    pub(crate) fn new(generation: Generation, interface: Interface, serial: String) -> State {
        State {
            generation,
            interface,
            files: Pkcs15Files::new(generation, interface, serial.clone()),
            serial,
            app_path: seed::fixed_app_path(generation, interface).unwrap_or_default(),
            token: None,
            pin_verified: false,
            pin_found_verified: false,
            puk_verified: false,
            replaced_by: None,
            odf: None,
            aodf: None,
            prkdf: None,
            cdf: None,
            dodf: None,
            seeded: false,
            pad: None,
            pad_setting: None,
        }
    }

    /// Take what a parsed seed knows (after its serial was checked).
    pub(crate) fn install(&mut self, p: Parsed) {
        if let Some(a) = p.app_path {
            self.app_path = a;
        }
        self.token = p.token;
        self.odf = p.odf;
        self.aodf = p.aodf;
        self.prkdf = p.prkdf;
        self.cdf = p.cdf;
        self.dodf = p.dodf;
        self.seeded = !p.raw.is_empty();
        self.files = p.raw;
    }

    /// Forget everything seeded (and read): the files are read from the card again when
    /// needed, starting with [`State::ensure_app`].
    pub(crate) fn drop_seeds(&mut self) {
        self.app_path = seed::fixed_app_path(self.generation, self.interface).unwrap_or_default();
        self.token = None;
        self.odf = None;
        self.aodf = None;
        self.prkdf = None;
        self.cdf = None;
        self.dodf = None;
        self.files = Pkcs15Files::new(self.generation, self.interface, self.serial.clone());
        self.seeded = false;
    }

    /// The raw files known so far.
    pub(crate) fn files(&self) -> &Pkcs15Files {
        &self.files
    }

    /// The application path is known (fixed, seeded, or read from EF.DIR).
    pub(crate) fn app_known(&self) -> bool {
        !self.app_path.is_empty()
    }

    /// Read the application path from EF.DIR (docs/card-spec.md §1.4 point 2, §10.3) when it is not known:
    /// the CPS3 contact path is fixed (docs/card-spec.md §1.4 point 4), a seed may give it.
    pub(crate) fn ensure_app(&mut self, io: &mut Io<'_>) -> Result<(), CardError> {
        if self.app_path.is_empty() {
            let ef_dir = io
                .read_file(&[0x3F, 0x00, 0x2F, 0x00], "EF.DIR")?
                .ok_or_else(|| CardError::ObjectNotFound("EF.DIR".into()))?;
            self.app_path = seed::app_path_from_dir(&ef_dir, self.interface)?;
            self.files.ef_dir = Some(ef_dir);
        }
        Ok(())
    }

    /// Read TokenInfo (app/5032, docs/card-spec.md §1.4 point 5) when it is neither read nor seeded: only
    /// its label and manufacturer use it (C_GetTokenInfo), so it is read when they are asked.
    pub(crate) fn ensure_token_info(&mut self, io: &mut Io<'_>) -> Result<(), CardError> {
        self.ensure_app(io)?;
        if self.token.is_none() {
            let ti = io
                .read_file(&self.app_file([0x50, 0x32]), "TokenInfo")?
                .ok_or_else(|| CardError::ObjectNotFound("TokenInfo".into()))?;
            self.token = Some(tokeninfo::parse(&ti)?);
            self.files.token_info = Some(ti);
        }
        Ok(())
    }

    /// `app/<fid>`.
    pub(crate) fn app_file(&self, fid: [u8; 2]) -> Vec<u8> {
        let mut p = self.app_path.clone();
        p.extend_from_slice(&fid);
        p
    }

    fn odf(&mut self, io: &mut Io<'_>) -> Result<Odf, CardError> {
        if let Some(o) = &self.odf {
            return Ok(o.clone());
        }
        // ODF = app path + 5031 (docs/card-spec.md §1.4 point 5).
        let data = io
            .read_file(&self.app_file([0x50, 0x31]), "ODF")?
            .ok_or_else(|| CardError::ObjectNotFound("ODF".into()))?;
        let parsed = odf::parse(&data)?;
        self.odf = Some(parsed.clone());
        self.files.odf = Some(data);
        Ok(parsed)
    }

    fn read_xdf(
        &mut self,
        io: &mut Io<'_>,
        pick: fn(&Odf) -> Option<Path>,
        name: &str,
    ) -> Result<Vec<u8>, CardError> {
        let Some(path) = pick(&self.odf(io)?) else {
            return Ok(Vec::new());
        };
        io.read_file(&path.absolute(&self.app_path), name)?
            .ok_or_else(|| CardError::ObjectNotFound(name.into()))
    }

    pub(crate) fn aodf(&mut self, io: &mut Io<'_>) -> Result<Vec<AuthObject>, CardError> {
        if self.aodf.is_none() {
            let data = self.read_xdf(io, |o| o.aodf.clone(), "AODF")?;
            self.aodf = Some(aodf::parse(&data)?);
            self.files.aodf = Some(data);
        }
        Ok(self.aodf.clone().unwrap_or_default())
    }

    pub(crate) fn prkdf(&mut self, io: &mut Io<'_>) -> Result<Vec<PrivateKey>, CardError> {
        if self.prkdf.is_none() {
            let data = self.read_xdf(io, |o| o.prkdf.clone(), "PrKDF")?;
            self.prkdf = Some(prkdf::parse(&data)?);
            self.files.prkdf = Some(data);
        }
        Ok(self.prkdf.clone().unwrap_or_default())
    }

    pub(crate) fn cdf(&mut self, io: &mut Io<'_>) -> Result<Vec<CertificateInfo>, CardError> {
        if self.cdf.is_none() {
            let data = self.read_xdf(io, |o| o.cdf.clone(), "CDF")?;
            self.cdf = Some(cdf::parse(&data)?);
            self.files.cdf = Some(data);
        }
        Ok(self.cdf.clone().unwrap_or_default())
    }

    pub(crate) fn dodf(&mut self, io: &mut Io<'_>) -> Result<Vec<DataObjectInfo>, CardError> {
        if self.dodf.is_none() {
            let data = self.read_xdf(io, |o| o.dodf.clone(), "DODF")?;
            self.dodf = Some(dodf::parse(&data)?);
            self.files.dodf = Some(data);
        }
        Ok(self.dodf.clone().unwrap_or_default())
    }

    /// The AODF object of a code: the user PIN is the non-unblocking object with reference 01 (or
    /// the first non-unblocking one); the PUK is flagged unblockingPin/soPin, or protects the PIN,
    /// or has reference 02.
    pub(crate) fn auth_object(
        &mut self,
        io: &mut Io<'_>,
        kind: PinKind,
    ) -> Result<Option<AuthObject>, CardError> {
        if self.interface == Interface::Contactless {
            // docs/card-spec.md §7: no PIN on the contactless interface.
            return Err(CardError::NoSuchPin(kind));
        }
        let objects = self.aodf(io)?;
        let user = objects
            .iter()
            .find(|o| !o.is_unblocking() && o.policy.reference == 0x01)
            .or_else(|| objects.iter().find(|o| !o.is_unblocking()));
        let found = match kind {
            PinKind::User => user,
            PinKind::Puk => objects
                .iter()
                .find(|o| o.is_unblocking())
                .or_else(|| {
                    let protector = user.and_then(|u| u.common.auth_id.as_ref());
                    objects.iter().find(|o| Some(&o.auth_id) == protector)
                })
                .or_else(|| objects.iter().find(|o| o.policy.reference == 0x02)),
        };
        Ok(found.cloned())
    }

    /// Policy of a code: the AODF's, else the defaults (docs/card-spec.md §3.1).
    pub(crate) fn policy(
        &mut self,
        io: &mut Io<'_>,
        kind: PinKind,
    ) -> Result<(PinPolicy, Option<Path>), CardError> {
        Ok(match self.auth_object(io, kind)? {
            Some(o) => (o.policy, o.path),
            None => (self.generation.capabilities().default_policy(kind).clone(), None),
        })
    }

    /// The private key of a role (docs/card-spec.md §1.5): nonRepudiation = signature key, otherwise sign or
    /// decrypt = authentication key (the technical key on the contactless interface, docs/card-spec.md §7).
    pub(crate) fn key(&mut self, io: &mut Io<'_>, role: KeyRole) -> Result<KeyInfo, CardError> {
        let keys = self.prkdf(io)?;
        let Some(key) = keys.iter().find(|k| role_of(k) == Some(role)) else {
            return Err(CardError::ObjectNotFound(format!("{role:?} key")));
        };
        let reference = self.key_reference(role, key);
        let modulus_len = usize::try_from(key.modulus_bits.div_ceil(8)).unwrap_or(256);
        Ok(KeyInfo {
            reference,
            modulus_len,
        })
    }

    /// The reference the commands use for a key of `role` (docs/card-spec.md §1.5: PrKDF keyReference, else
    /// the generation's default, [`crate::KeyReferences`]; the CPS4 authentication key fixed at
    /// 0x20).
    pub(crate) fn key_reference(&self, role: KeyRole, key: &PrivateKey) -> u8 {
        let refs = self.generation.capabilities().keys;
        match role {
            KeyRole::Authentication if refs.authentication_fixed => {
                let fixed = refs.authentication;
                if key.reference.is_some_and(|r| r & 0x7F != fixed) {
                    log::warn!(target: "cpx::card", "PrKDF gives {:?} for the {} authentication key; using {fixed:#04x}", key.reference, self.generation.name());
                }
                fixed
            }
            KeyRole::Authentication => key.reference.unwrap_or(refs.authentication),
            KeyRole::Signature => key.reference.unwrap_or(refs.signature),
        }
    }

    /// The CKA_ID of a role's key.
    pub(crate) fn key_id(&mut self, io: &mut Io<'_>, role: KeyRole) -> Result<Vec<u8>, CardError> {
        let keys = self.prkdf(io)?;
        keys.iter()
            .find(|k| match role {
                KeyRole::Signature => k.usage & prkdf::USAGE_NON_REPUDIATION != 0,
                KeyRole::Authentication => k.usage & prkdf::USAGE_NON_REPUDIATION == 0,
            })
            .map(|k| k.id.clone())
            .ok_or_else(|| CardError::ObjectNotFound(format!("{role:?} key")))
    }
}

/// The role of a PrKDF key (docs/card-spec.md §1.5): nonRepudiation = signature key; otherwise sign or
/// decrypt = authentication key (the technical key on the contactless interface, docs/card-spec.md §7).
pub(crate) fn role_of(key: &PrivateKey) -> Option<KeyRole> {
    if key.usage & prkdf::USAGE_NON_REPUDIATION != 0 {
        Some(KeyRole::Signature)
    } else if key.usage & (prkdf::USAGE_SIGN | prkdf::USAGE_DECRYPT) != 0 {
        Some(KeyRole::Authentication)
    } else {
        None
    }
}
