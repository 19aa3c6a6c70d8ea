//! Rows 1000–1008: CKM_SHA256_RSA_PKCS in 80-byte parts with the signature key, then the same
//! verification (docs/card-spec.md §6 "Test inputs", §4.2; `testSignatureSHA256ManagementFunctions`). The
//! program reports every C_SignUpdate as row 1003 and every C_VerifyUpdate as row 1007. On the
//! contactless interface there is no PIN and no hash mechanism (docs/card-spec.md §7): C_Login gives
//! CKR_USER_PIN_NOT_INITIALIZED and C_SignInit CKR_MECHANISM_INVALID, where the block stops.

use cryptoki_sys::*;

use crate::raw::{In, Mech, Out};
use crate::runner::{Gen, Item, PIN, SIG_CERT, StepResult, row, setup};
use crate::soft::{self, Hash};

/// An ~850-byte text (docs/card-spec.md §6: 11 parts of at most 80 bytes).
pub const TEXT: &str = "Le present texte sert de message pour la signature en plusieurs morceaux avec la \
cle de signature de la carte. Il est decoupe en blocs de quatre-vingts octets, chacun transmis par un appel \
a C_SignUpdate, puis la signature est obtenue par C_SignFinal, d'abord pour en connaitre la taille, ensuite \
pour en recevoir la valeur. La meme suite de blocs est ensuite verifiee par C_VerifyUpdate et C_VerifyFinal \
avec la cle publique du certificat de signature. Sur une CPS3, le dernier tour du condensat SHA-256 est \
calcule par la carte elle-meme, a partir de l'etat intermediaire que le poste lui transmet avec la fin du \
message; sur une CPS4, le poste calcule le condensat entier. Dans les deux cas, la signature obtenue doit \
etre une signature PKCS#1 v1.5 valide du message complet, ce que le test controle aussi par logiciel.";

const SHA256_RSA_PKCS: Mech = Mech::of(CKM_SHA256_RSA_PKCS);

fn chunks() -> impl Iterator<Item = &'static [u8]> {
    TEXT.as_bytes().chunks(80)
}

/// The rows.
pub fn rows(kind: Gen) -> Vec<Item> {
    let cl = kind == Gen::Cl;
    let key = if cl { "CPS_PRIV_TECH_AUT" } else { "CPS_PRIV_SIG" };
    let mut v = vec![
        setup("C_Initialize(NULL)", |c| Ok(c.p11.initialize(None))),
        row(1000, "C_OpenSession read-only", CKR_OK, |c| c.open("s", false)),
        row(
            1001,
            if cl {
                "C_Login, contactless: no PIN (docs/card-spec.md §7)"
            } else {
                "C_Login"
            },
            if cl { CKR_USER_PIN_NOT_INITIALIZED } else { CKR_OK },
            |c| Ok(c.p11.login(c.s("s")?, CKU_USER, In::Bytes(PIN))),
        ),
        setup("find the private key", move |c| {
            let k = c.by_label("s", CKO_PRIVATE_KEY, key)?;
            c.objects.insert("key", k);
            Ok(CKR_OK)
        }),
        row(
            1002,
            if cl {
                "C_SignInit CKM_SHA256_RSA_PKCS, contactless: no hash mechanism (docs/card-spec.md §7)"
            } else {
                "C_SignInit CKM_SHA256_RSA_PKCS, signature key"
            },
            if cl { CKR_MECHANISM_INVALID } else { CKR_OK },
            |c| Ok(c.p11.sign_init(c.s("s")?, Some(SHA256_RSA_PKCS), c.o("key")?)),
        ),
    ];
    if cl {
        v.push(setup("C_CloseAllSessions, C_Finalize", |c| {
            c.close_all()?;
            c.finalize().map(|()| CKR_OK)
        }));
        return v;
    }
    for (i, part) in chunks().enumerate() {
        v.push(row(
            1003,
            format!("C_SignUpdate, part {} ({} bytes)", i + 1, part.len()),
            CKR_OK,
            move |c| Ok(c.p11.sign_update(c.s("s")?, In::Bytes(part))),
        ));
    }
    v.extend([
        row(1004, "C_SignFinal, size", CKR_OK, |c| {
            let mut n = 0;
            let rv = c.p11.sign_final(c.s("s")?, Out::Len(&mut n));
            c.blobs.insert("sha256_sig", vec![0; n as usize]);
            Ok(rv)
        }),
        row(1005, "C_SignFinal, value (checked in software)", CKR_OK, |c| {
            signed(c)
        }),
        setup("find the signature public key", |c| {
            let k = c.key_of_cert("s", SIG_CERT, CKO_PUBLIC_KEY)?;
            c.objects.insert("pub", k);
            Ok(CKR_OK)
        }),
        row(
            1006,
            "C_VerifyInit CKM_SHA256_RSA_PKCS, signature public key",
            CKR_OK,
            |c| Ok(c.p11.verify_init(c.s("s")?, Some(SHA256_RSA_PKCS), c.o("pub")?)),
        ),
    ]);
    for (i, part) in chunks().enumerate() {
        v.push(row(
            1007,
            format!("C_VerifyUpdate, part {} ({} bytes)", i + 1, part.len()),
            CKR_OK,
            move |c| Ok(c.p11.verify_update(c.s("s")?, In::Bytes(part))),
        ));
    }
    v.extend([
        row(1008, "C_VerifyFinal", CKR_OK, |c| {
            let sig = c.blob("sha256_sig")?;
            Ok(c.p11.verify_final(c.s("s")?, In::Bytes(&sig)))
        }),
        setup("C_CloseAllSessions, C_Finalize", |c| {
            c.close_all()?;
            c.finalize().map(|()| CKR_OK)
        }),
    ]);
    v
}

fn signed(c: &mut crate::runner::Ctx) -> StepResult {
    let mut sig = c.blob("sha256_sig")?;
    let mut n = sig.len() as CK_ULONG;
    let rv = c.p11.sign_final(c.s("s")?, Out::Buf(&mut sig, &mut n));
    if rv == CKR_OK {
        sig.truncate(n as usize);
        soft::check_message(&c.cert_key("s", SIG_CERT)?, Hash::Sha256, TEXT.as_bytes(), &sig)?;
        c.blobs.insert("sha256_sig", sig);
    }
    Ok(rv)
}
