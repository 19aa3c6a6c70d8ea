//! Mechanisms per card (docs/card-spec.md §4.1, Tableau 2) and their parameters.

use cpx_card::{Generation, HashAlg, Interface};
use cryptoki_sys::*;

use crate::error::{Result, ck};

/// The card a mechanism list is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CardKind {
    /// The card generation (its capabilities say what it signs with).
    pub generation: Generation,
    /// Contact or contactless.
    pub interface: Interface,
}

/// `CK_RSA_PKCS_PSS_PARAMS`, read from the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PssParams {
    /// hashAlg.
    pub hash: CK_MECHANISM_TYPE,
    /// mgf.
    pub mgf: CK_RSA_PKCS_MGF_TYPE,
    /// sLen.
    pub salt_len: CK_ULONG,
}

/// A `CK_MECHANISM` in safe form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MechanismArg {
    /// The mechanism type.
    pub mechanism: CK_MECHANISM_TYPE,
    /// PSS parameters when the caller gave a parameter of the right size.
    pub pss: Option<PssParams>,
    /// The caller gave a parameter (`ulParameterLen` ≠ 0) to a mechanism that takes none
    /// (CKM_RSA_PKCS, CKM_SHA*_RSA_PKCS, the digests): CKR_MECHANISM_PARAM_INVALID at the
    /// operation's init, rather than a parameter silently ignored (issue 14).
    pub stray_parameter: bool,
}

impl MechanismArg {
    /// A mechanism given without a parameter.
    ///
    /// ```
    /// use cpx_pkcs11::mechanisms::MechanismArg;
    /// let rsa = MechanismArg::plain(cryptoki_sys::CKM_RSA_PKCS);
    /// assert!(rsa.pss.is_none() && !rsa.stray_parameter);
    /// ```
    pub fn plain(mechanism: CK_MECHANISM_TYPE) -> Self {
        MechanismArg {
            mechanism,
            pss: None,
            stray_parameter: false,
        }
    }

    /// Whether this mechanism type takes a parameter (the RSA-PSS family: `CK_RSA_PKCS_PSS_PARAMS`).
    pub fn takes_parameter(mechanism: CK_MECHANISM_TYPE) -> bool {
        matches!(
            mechanism,
            CKM_RSA_PKCS_PSS | CKM_SHA1_RSA_PKCS_PSS | CKM_SHA256_RSA_PKCS_PSS
        )
    }

    /// CKR_MECHANISM_PARAM_INVALID for a parameter given to a mechanism that takes none.
    pub fn no_stray_parameter(&self) -> Result<()> {
        if self.stray_parameter {
            return ck(CKR_MECHANISM_PARAM_INVALID);
        }
        Ok(())
    }
}

/// What to sign or verify with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignMech {
    /// CKM_RSA_PKCS: caller data (hash or DigestInfo).
    RsaPkcs,
    /// CKM_SHA*_RSA_PKCS.
    Pkcs1(HashAlg),
    /// CKM_RSA_PKCS_PSS: the caller gives the hash.
    PssHash(HashAlg),
    /// CKM_SHA*_RSA_PKCS_PSS.
    Pss(HashAlg),
}

impl SignMech {
    /// Whether the data is a message to hash (multi-part makes sense).
    pub fn hashes(self) -> bool {
        matches!(self, SignMech::Pkcs1(_) | SignMech::Pss(_))
    }
}

const KEY_BITS: CK_ULONG = 2048;

/// C_GetMechanismList.
pub fn list(card: CardKind) -> Vec<CK_MECHANISM_TYPE> {
    if card.interface == Interface::Contactless {
        // docs/card-spec.md §7: the card signs RSA-PKCS only; the digests are the host's and work on any
        // card, so they are listed (the official module lists RSA-PKCS alone; issue 14).
        return vec![CKM_RSA_PKCS, CKM_SHA_1, CKM_SHA256];
    }
    let mut v = vec![
        CKM_RSA_PKCS,
        CKM_SHA1_RSA_PKCS,
        CKM_SHA256_RSA_PKCS,
        CKM_SHA_1,
        CKM_SHA256,
    ];
    if card.generation.capabilities().pss {
        v.extend([CKM_RSA_PKCS_PSS, CKM_SHA1_RSA_PKCS_PSS, CKM_SHA256_RSA_PKCS_PSS]);
    }
    v
}

/// A mechanism's name for logs (`CKM_…`, else its number in hex).
pub fn name(m: CK_MECHANISM_TYPE) -> String {
    let known = match m {
        CKM_RSA_PKCS => "CKM_RSA_PKCS",
        CKM_RSA_X_509 => "CKM_RSA_X_509",
        CKM_SHA1_RSA_PKCS => "CKM_SHA1_RSA_PKCS",
        CKM_SHA256_RSA_PKCS => "CKM_SHA256_RSA_PKCS",
        CKM_SHA384_RSA_PKCS => "CKM_SHA384_RSA_PKCS",
        CKM_SHA512_RSA_PKCS => "CKM_SHA512_RSA_PKCS",
        CKM_RSA_PKCS_PSS => "CKM_RSA_PKCS_PSS",
        CKM_SHA1_RSA_PKCS_PSS => "CKM_SHA1_RSA_PKCS_PSS",
        CKM_SHA256_RSA_PKCS_PSS => "CKM_SHA256_RSA_PKCS_PSS",
        CKM_SHA384_RSA_PKCS_PSS => "CKM_SHA384_RSA_PKCS_PSS",
        CKM_SHA512_RSA_PKCS_PSS => "CKM_SHA512_RSA_PKCS_PSS",
        CKM_SHA_1 => "CKM_SHA_1",
        CKM_SHA256 => "CKM_SHA256",
        _ => return format!("mechanism 0x{m:08X}"),
    };
    known.to_owned()
}

/// C_GetMechanismInfo.
pub fn info(card: CardKind, m: CK_MECHANISM_TYPE) -> Result<CK_MECHANISM_INFO> {
    if !list(card).contains(&m) {
        return ck(CKR_MECHANISM_INVALID);
    }
    let contact = card.interface == Interface::Contact;
    let flags = match m {
        CKM_RSA_PKCS => {
            let mut f = CKF_HW | CKF_SIGN | CKF_VERIFY | CKF_ENCRYPT;
            if contact && card.generation.capabilities().decrypt {
                f |= CKF_DECRYPT;
            }
            f
        }
        CKM_SHA_1 | CKM_SHA256 => CKF_DIGEST,
        _ => CKF_HW | CKF_SIGN | CKF_VERIFY,
    };
    let (min, max) = if matches!(m, CKM_SHA_1 | CKM_SHA256) {
        (0, 0)
    } else {
        (KEY_BITS, KEY_BITS)
    };
    Ok(CK_MECHANISM_INFO {
        ulMinKeySize: min,
        ulMaxKeySize: max,
        flags,
    })
}

fn hash_of(m: CK_MECHANISM_TYPE) -> Option<HashAlg> {
    match m {
        CKM_SHA_1 => Some(HashAlg::Sha1),
        CKM_SHA256 => Some(HashAlg::Sha256),
        _ => None,
    }
}

fn mgf_of(h: HashAlg) -> CK_RSA_PKCS_MGF_TYPE {
    match h {
        HashAlg::Sha1 => CKG_MGF1_SHA1,
        HashAlg::Sha256 => CKG_MGF1_SHA256,
    }
}

/// Check PSS parameters: hashAlg as the mechanism (or SHA-1/SHA-256 for CKM_RSA_PKCS_PSS),
/// MGF1 with the same hash, sLen = hash length (what the card does, docs/card-spec.md §10.10).
fn pss(arg: &MechanismArg, expected: Option<HashAlg>) -> Result<HashAlg> {
    let Some(p) = arg.pss else {
        return ck(CKR_MECHANISM_PARAM_INVALID);
    };
    let Some(h) = hash_of(p.hash) else {
        return ck(CKR_MECHANISM_PARAM_INVALID);
    };
    if expected.is_some_and(|e| e != h) || p.mgf != mgf_of(h) || p.salt_len as usize != h.digest_len() {
        return ck(CKR_MECHANISM_PARAM_INVALID);
    }
    Ok(h)
}

/// A signature mechanism valid on this card, with its parameters checked.
pub fn sign_mech(card: CardKind, arg: &MechanismArg) -> Result<SignMech> {
    let m = arg.mechanism;
    if !list(card).contains(&m) || matches!(m, CKM_SHA_1 | CKM_SHA256) {
        return ck(CKR_MECHANISM_INVALID);
    }
    if !MechanismArg::takes_parameter(m) {
        arg.no_stray_parameter()?;
    }
    Ok(match m {
        CKM_RSA_PKCS => SignMech::RsaPkcs,
        CKM_SHA1_RSA_PKCS => SignMech::Pkcs1(HashAlg::Sha1),
        CKM_SHA256_RSA_PKCS => SignMech::Pkcs1(HashAlg::Sha256),
        CKM_RSA_PKCS_PSS => SignMech::PssHash(pss(arg, None)?),
        CKM_SHA1_RSA_PKCS_PSS => SignMech::Pss(pss(arg, Some(HashAlg::Sha1))?),
        CKM_SHA256_RSA_PKCS_PSS => SignMech::Pss(pss(arg, Some(HashAlg::Sha256))?),
        _ => return ck(CKR_MECHANISM_INVALID),
    })
}

/// A digest mechanism (software, any card).
pub fn digest_mech(arg: &MechanismArg) -> Result<HashAlg> {
    let h = hash_of(arg.mechanism).map_or_else(|| ck(CKR_MECHANISM_INVALID), Ok)?;
    arg.no_stray_parameter()?;
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CPS4: CardKind = CardKind {
        generation: Generation::Cps4,
        interface: Interface::Contact,
    };
    const CPS3: CardKind = CardKind {
        generation: Generation::Cps3,
        interface: Interface::Contact,
    };

    fn arg(m: CK_MECHANISM_TYPE, p: Option<(CK_MECHANISM_TYPE, CK_ULONG, CK_ULONG)>) -> MechanismArg {
        MechanismArg {
            mechanism: m,
            pss: p.map(|(hash, mgf, salt_len)| PssParams { hash, mgf, salt_len }),
            stray_parameter: false,
        }
    }

    #[test]
    fn pss_parameters_are_checked() {
        let ok = arg(CKM_SHA256_RSA_PKCS_PSS, Some((CKM_SHA256, CKG_MGF1_SHA256, 32)));
        assert_eq!(sign_mech(CPS4, &ok).ok(), Some(SignMech::Pss(HashAlg::Sha256)));
        for bad in [
            arg(CKM_SHA256_RSA_PKCS_PSS, Some((CKM_SHA_1, CKG_MGF1_SHA1, 20))),
            arg(CKM_SHA256_RSA_PKCS_PSS, Some((CKM_SHA256, CKG_MGF1_SHA1, 32))),
            arg(CKM_SHA256_RSA_PKCS_PSS, Some((CKM_SHA256, CKG_MGF1_SHA256, 20))),
            arg(CKM_SHA256_RSA_PKCS_PSS, None),
        ] {
            assert_eq!(
                sign_mech(CPS4, &bad).map_err(|e| e.rv()).err(),
                Some(CKR_MECHANISM_PARAM_INVALID)
            );
        }
        assert_eq!(
            sign_mech(CPS3, &ok).map_err(|e| e.rv()).err(),
            Some(CKR_MECHANISM_INVALID)
        );
    }

    #[test]
    fn a_parameter_to_a_mechanism_that_takes_none_is_refused() {
        let stray = |m| MechanismArg {
            stray_parameter: true,
            ..MechanismArg::plain(m)
        };
        for m in [CKM_RSA_PKCS, CKM_SHA256_RSA_PKCS] {
            assert_eq!(
                sign_mech(CPS3, &stray(m)).map_err(|e| e.rv()).err(),
                Some(CKR_MECHANISM_PARAM_INVALID)
            );
            assert!(sign_mech(CPS3, &MechanismArg::plain(m)).is_ok());
        }
        assert_eq!(
            digest_mech(&stray(CKM_SHA256)).map_err(|e| e.rv()).err(),
            Some(CKR_MECHANISM_PARAM_INVALID)
        );
        // An unknown mechanism stays CKR_MECHANISM_INVALID, parameter or not.
        assert_eq!(
            sign_mech(CPS3, &stray(CKM_RSA_PKCS_PSS))
                .map_err(|e| e.rv())
                .err(),
            Some(CKR_MECHANISM_INVALID)
        );
    }

    #[test]
    fn tableau_2() {
        assert_eq!(list(CPS3).len(), 5);
        assert_eq!(list(CPS4).len(), 8);
        let cl = CardKind {
            generation: Generation::Cps3,
            interface: Interface::Contactless,
        };
        assert_eq!(list(cl), vec![CKM_RSA_PKCS, CKM_SHA_1, CKM_SHA256]);
        assert_eq!(info(cl, CKM_SHA256).map(|i| i.flags).ok(), Some(CKF_DIGEST));
        assert_eq!(info(CPS3, CKM_SHA256).map(|i| i.flags).ok(), Some(CKF_DIGEST));
        assert!(info(CPS3, CKM_RSA_PKCS_PSS).is_err());
    }
}
