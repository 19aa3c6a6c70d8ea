//! What the layer knows of the open card: identity, PKCS#15 read so far (each file read once, on
//! first need), PIN state.

use crate::atr::{Generation, Interface};
use crate::ber::Path;
use crate::crypto::KeyRole;
use crate::error::CardError;
use crate::io::Io;
use crate::pin::{PinKind, PinPolicy};
use crate::pkcs15::aodf::AuthObject;
use crate::pkcs15::cdf::CertificateInfo;
use crate::pkcs15::dodf::DataObjectInfo;
use crate::pkcs15::odf::Odf;
use crate::pkcs15::prkdf::{self, PrivateKey};
use crate::pkcs15::tokeninfo::TokenInfo;
use crate::pkcs15::{aodf, cdf, dodf, odf};

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
    pub(crate) app_path: Vec<u8>,
    pub(crate) token: TokenInfo,
    pub(crate) pin_verified: bool,
    /// The PUK was verified in this card session (and not reset since).
    pub(crate) puk_verified: bool,
    pub(crate) replaced_by: Option<String>,
    odf: Option<Odf>,
    aodf: Option<Vec<AuthObject>>,
    prkdf: Option<Vec<PrivateKey>>,
    cdf: Option<Vec<CertificateInfo>>,
    dodf: Option<Vec<DataObjectInfo>>,
}

impl State {
    pub(crate) fn new(
        generation: Generation,
        interface: Interface,
        serial: String,
        app_path: Vec<u8>,
        token: TokenInfo,
    ) -> State {
        State {
            generation,
            interface,
            serial,
            app_path,
            token,
            pin_verified: false,
            puk_verified: false,
            replaced_by: None,
            odf: None,
            aodf: None,
            prkdf: None,
            cdf: None,
            dodf: None,
        }
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
        // ODF = app path + 5031 (spec §1.4 point 5).
        let data = io
            .read_file(&self.app_file([0x50, 0x31]), "ODF")?
            .ok_or_else(|| CardError::ObjectNotFound("ODF".into()))?;
        let parsed = odf::parse(&data)?;
        self.odf = Some(parsed.clone());
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
        }
        Ok(self.aodf.clone().unwrap_or_default())
    }

    pub(crate) fn prkdf(&mut self, io: &mut Io<'_>) -> Result<Vec<PrivateKey>, CardError> {
        if self.prkdf.is_none() {
            let data = self.read_xdf(io, |o| o.prkdf.clone(), "PrKDF")?;
            self.prkdf = Some(prkdf::parse(&data)?);
        }
        Ok(self.prkdf.clone().unwrap_or_default())
    }

    pub(crate) fn cdf(&mut self, io: &mut Io<'_>) -> Result<Vec<CertificateInfo>, CardError> {
        if self.cdf.is_none() {
            let data = self.read_xdf(io, |o| o.cdf.clone(), "CDF")?;
            self.cdf = Some(cdf::parse(&data)?);
        }
        Ok(self.cdf.clone().unwrap_or_default())
    }

    pub(crate) fn dodf(&mut self, io: &mut Io<'_>) -> Result<Vec<DataObjectInfo>, CardError> {
        if self.dodf.is_none() {
            let data = self.read_xdf(io, |o| o.dodf.clone(), "DODF")?;
            self.dodf = Some(dodf::parse(&data)?);
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
            // spec §7: no PIN on the contactless interface.
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

    /// Policy of a code: the AODF's, else the defaults (spec §3.1).
    pub(crate) fn policy(
        &mut self,
        io: &mut Io<'_>,
        kind: PinKind,
    ) -> Result<(PinPolicy, Option<Path>), CardError> {
        Ok(match self.auth_object(io, kind)? {
            Some(o) => (o.policy, o.path),
            None => (PinPolicy::default_for(kind), None),
        })
    }

    /// The private key of a role (spec §1.5): nonRepudiation = signature key, otherwise sign or
    /// decrypt = authentication key (the technical key on the contactless interface, spec §7).
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

    /// The reference the commands use for a key of `role` (spec §1.5: PrKDF keyReference, the
    /// CPS4 authentication key fixed at 0x20, defaults 81/82 on CPS3, 01 on CPS4).
    pub(crate) fn key_reference(&self, role: KeyRole, key: &PrivateKey) -> u8 {
        match (self.generation, role) {
            // spec §1.5: the CPS4 authentication key is 0x20, fixed by the module.
            (Generation::Cps4, KeyRole::Authentication) => {
                if key.reference.is_some_and(|r| r & 0x7F != 0x20) {
                    log::warn!(target: "cpx::card", "PrKDF gives {:?} for the CPS4 authentication key; using 0x20", key.reference);
                }
                0x20
            }
            (Generation::Cps4, KeyRole::Signature) => key.reference.unwrap_or(0x01),
            (Generation::Cps3, KeyRole::Signature) => key.reference.unwrap_or(0x81),
            (Generation::Cps3, KeyRole::Authentication) => key.reference.unwrap_or(0x82),
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

/// The role of a PrKDF key (spec §1.5): nonRepudiation = signature key; otherwise sign or decrypt
/// = authentication key (the technical key on the contactless interface, spec §7).
pub(crate) fn role_of(key: &PrivateKey) -> Option<KeyRole> {
    if key.usage & prkdf::USAGE_NON_REPUDIATION != 0 {
        Some(KeyRole::Signature)
    } else if key.usage & (prkdf::USAGE_SIGN | prkdf::USAGE_DECRYPT) != 0 {
        Some(KeyRole::Authentication)
    } else {
        None
    }
}
