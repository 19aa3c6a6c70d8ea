//! A certificate's role on the card, from its usages only, never from where it was read.

use serde::Serialize;

use crate::ext::Extensions;
use crate::oids;

/// What a certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// "Certificat d'Authentification CPS": TLS client authentication and smart-card logon.
    Authentication,
    /// "Certificat de Signature CPS": non-repudiation signatures.
    Signature,
    /// "Certificat Technique CPS": contactless authentication without PIN (docs/card-notes.md §6, §9).
    Technical,
    /// A CA certificate.
    CertificationAuthority,
    /// The usages do not tell (or contradict each other).
    Unknown,
}

impl Role {
    /// The lower-case name used in the JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Authentication => "authentication",
            Role::Signature => "signature",
            Role::Technical => "technical",
            Role::CertificationAuthority => "certification_authority",
            Role::Unknown => "unknown",
        }
    }
}

/// A role and the rule that gave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoleInfo {
    /// The role.
    pub role: Role,
    /// Which usages decided, with the source of the rule.
    pub basis: String,
}

/// Classify from keyUsage, extKeyUsage and basicConstraints.
///
/// Rules, first match wins:
/// 1. basicConstraints cA, or keyUsage keyCertSign → CA;
/// 2. keyUsage nonRepudiation → signature (docs/data-and-certs.md §2.5, docs/card-notes.md §5.1:
///    `CPS_PRIV_SIG` is the nonRepudiation key), unless client-authentication purposes are also present →
///    unknown;
/// 3. extKeyUsage msSmartcardLogin → authentication (the real TEST CPE, docs/data-and-certs.md §2.1, §2.5);
/// 4. extKeyUsage clientAuth without msSmartcardLogin → technical. The technical certificate's
///    real profile is not public: this follows the test PKI's inferred profile
///    (test-vectors/README.md, "Per certificate role"), confidence L;
/// 5. otherwise unknown.
pub(crate) fn classify(ext: &Extensions) -> RoleInfo {
    let ku = |name: &str| ext.key_usage.as_ref().is_some_and(|k| k.has(name));
    let eku = |oid: &str| ext.extended_key_usage.as_ref().is_some_and(|e| e.has(oid));
    let info = |role, basis: &str| RoleInfo {
        role,
        basis: basis.to_owned(),
    };
    if ext.basic_constraints.is_some_and(|b| b.ca) || ku("keyCertSign") {
        return info(
            Role::CertificationAuthority,
            "basicConstraints cA or keyUsage keyCertSign",
        );
    }
    let client = eku(oids::CLIENT_AUTH) || eku(oids::MS_SMARTCARD_LOGIN);
    if ku("nonRepudiation") {
        if client {
            return info(
                Role::Unknown,
                "keyUsage nonRepudiation together with client-authentication purposes",
            );
        }
        return info(
            Role::Signature,
            "keyUsage nonRepudiation (docs/data-and-certs.md §2.5, docs/card-notes.md §5.1)",
        );
    }
    if eku(oids::MS_SMARTCARD_LOGIN) {
        return info(
            Role::Authentication,
            "extKeyUsage msSmartcardLogin (docs/data-and-certs.md §2.1, §2.5)",
        );
    }
    if eku(oids::CLIENT_AUTH) {
        return info(
            Role::Technical,
            "extKeyUsage clientAuth without msSmartcardLogin (test PKI's inferred technical profile, confidence L)",
        );
    }
    info(
        Role::Unknown,
        "no nonRepudiation, msSmartcardLogin, clientAuth or CA usage",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ext::{BasicConstraints, ExtendedKeyUsage, KeyUsage, NamedOid};

    fn ext(ku: &[&str], eku: &[&str], ca: bool) -> Extensions {
        Extensions {
            key_usage: (!ku.is_empty()).then(|| KeyUsage {
                critical: true,
                usages: ku.iter().map(|s| (*s).to_owned()).collect(),
            }),
            extended_key_usage: (!eku.is_empty()).then(|| ExtendedKeyUsage {
                critical: false,
                usages: eku
                    .iter()
                    .map(|o| NamedOid {
                        oid: (*o).to_owned(),
                        name: None,
                    })
                    .collect(),
            }),
            basic_constraints: Some(BasicConstraints {
                critical: ca,
                ca,
                path_len: None,
            }),
            ..Extensions::default()
        }
    }

    #[test]
    fn rules() {
        let r = |e: &Extensions| classify(e).role;
        let both = [oids::CLIENT_AUTH, oids::MS_SMARTCARD_LOGIN];
        assert_eq!(r(&ext(&["digitalSignature"], &both, false)), Role::Authentication);
        assert_eq!(
            r(&ext(&["digitalSignature", "keyEncipherment"], &both, false)),
            Role::Authentication
        );
        assert_eq!(
            r(&ext(&["digitalSignature", "nonRepudiation"], &[], false)),
            Role::Signature
        );
        assert_eq!(
            r(&ext(&["digitalSignature"], &[oids::CLIENT_AUTH], false)),
            Role::Technical
        );
        assert_eq!(
            r(&ext(&["keyCertSign", "cRLSign"], &[], true)),
            Role::CertificationAuthority
        );
        assert_eq!(r(&ext(&["nonRepudiation"], &both, false)), Role::Unknown);
        assert_eq!(r(&ext(&["digitalSignature"], &[], false)), Role::Unknown);
        assert_eq!(r(&Extensions::default()), Role::Unknown);
    }
}
