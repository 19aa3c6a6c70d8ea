//! Rows 1300–1311: RSA-PSS with the authentication key, CPS4 only (docs/card-spec.md §4.4, §10.10;
//! `testSignatureRsaPssManagementFunctions`): CKM_SHA1_RSA_PKCS_PSS and CKM_SHA256_RSA_PKCS_PSS
//! with hashAlg = the mechanism's hash, MGF1 with it, sLen = its length; each signature checked
//! in software, then verified by the module.

use cryptoki_sys::*;

use crate::raw::{In, Mech};
use crate::runner::{AUTH_CERT, Gen, Item, PIN, row, setup};
use crate::sign::{sign_size, sign_value};
use crate::soft::{self, DOCUMENT, Hash};

const SHA1_PSS: Mech = Mech {
    ty: CKM_SHA1_RSA_PKCS_PSS,
    pss: Some((CKM_SHA_1, CKG_MGF1_SHA1, 20)),
    garbage: None,
};
const SHA256_PSS: Mech = Mech {
    ty: CKM_SHA256_RSA_PKCS_PSS,
    pss: Some((CKM_SHA256, CKG_MGF1_SHA256, 32)),
    garbage: None,
};

/// Sign (size, value) and verify with one PSS mechanism, from row `first`.
fn round(first: u32, m: Mech, h: Hash, keep: &'static str) -> Vec<Item> {
    let name = if h == Hash::Sha1 {
        "CKM_SHA1_RSA_PKCS_PSS"
    } else {
        "CKM_SHA256_RSA_PKCS_PSS"
    };
    vec![
        row(
            first,
            format!("C_SignInit {name}, authentication key"),
            CKR_OK,
            move |c| Ok(c.p11.sign_init(c.s("s")?, Some(m), c.o("auth_key")?)),
        ),
        row(first + 1, "C_Sign, size", CKR_OK, |c| sign_size(c, DOCUMENT)),
        row(
            first + 2,
            "C_Sign, value (checked in software)",
            CKR_OK,
            move |c| {
                sign_value(c, DOCUMENT, AUTH_CERT, keep, |k, s| {
                    soft::check_pss(k, h, DOCUMENT, s)
                })
            },
        ),
        row(
            first + 3,
            format!("C_VerifyInit {name}, authentication public key"),
            CKR_OK,
            move |c| Ok(c.p11.verify_init(c.s("s")?, Some(m), c.o("auth_pub")?)),
        ),
        row(first + 4, "C_Verify", CKR_OK, move |c| {
            let sig = c.blob(keep)?;
            Ok(c.p11.verify(c.s("s")?, In::Bytes(DOCUMENT), In::Bytes(&sig)))
        }),
    ]
}

/// The rows (CPS4).
pub fn rows(_kind: Gen) -> Vec<Item> {
    let mut v = vec![
        setup("C_Initialize(NULL)", |c| Ok(c.p11.initialize(None))),
        row(1300, "C_OpenSession read-only", CKR_OK, |c| c.open("s", false)),
        row(1301, "C_Login", CKR_OK, |c| {
            Ok(c.p11.login(c.s("s")?, CKU_USER, In::Bytes(PIN)))
        }),
        setup("find CPS_PRIV_AUT and its public key", |c| {
            let k = c.by_label("s", CKO_PRIVATE_KEY, "CPS_PRIV_AUT")?;
            c.objects.insert("auth_key", k);
            let p = c.key_of_cert("s", AUTH_CERT, CKO_PUBLIC_KEY)?;
            c.objects.insert("auth_pub", p);
            Ok(CKR_OK)
        }),
    ];
    v.extend(round(1302, SHA1_PSS, Hash::Sha1, "pss1_sig"));
    v.extend(round(1307, SHA256_PSS, Hash::Sha256, "pss256_sig"));
    v.push(setup("C_CloseAllSessions, C_Finalize", |c| {
        c.close_all()?;
        c.finalize().map(|()| CKR_OK)
    }));
    v
}
