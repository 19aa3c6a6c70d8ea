//! Rows 1100–1125: authentication on the contactless interface (docs/card-spec.md §7; defined but absent from
//! both reports; `testContactlessSignatureManagementFunctions` / `testAuthenWithKeys`). No PIN:
//! C_Login gives CKR_USER_PIN_NOT_INITIALIZED; the public key CPS_PRIV_TECH_AUT signs with
//! CKM_RSA_PKCS in one part and in parts, and the signatures are the same.

use cryptoki_sys::*;

use crate::raw::{Attr, In, Mech, Out};
use crate::runner::{Ctx, Gen, Item, PIN, StepResult, row, setup};
use crate::sign::{RSA_PKCS, sign_size};
use crate::soft;

/// The program's message: "Message court, de 33 octets maxi." (33 bytes).
const MESSAGE: &[u8] = b"Message court, de 33 octets maxi.";

fn find_init(c: &mut Ctx, t: &mut [Attr]) -> StepResult {
    Ok(c.p11.find_objects_init(c.s("s")?, t))
}

fn find_one(c: &mut Ctx, name: &'static str) -> StepResult {
    crate::objects::find_next(c, "s", name)
}

fn final_value(c: &mut Ctx, signed: &'static [u8], keep: &'static str) -> StepResult {
    let mut sig = vec![0u8; 256];
    let mut n = 256;
    let rv = c.p11.sign_final(c.s("s")?, Out::Buf(&mut sig, &mut n));
    if rv == CKR_OK {
        sig.truncate(n as usize);
        soft::check_raw(&c.cert_key("s", "Certificat Technique CPS")?, signed, &sig)?;
        c.blobs.insert(keep, sig);
    }
    Ok(rv)
}

fn final_size(c: &mut Ctx) -> StepResult {
    let mut n = 0;
    Ok(c.p11.sign_final(c.s("s")?, Out::Len(&mut n)))
}

fn sign_init(c: &mut Ctx, m: Mech) -> StepResult {
    Ok(c.p11.sign_init(c.s("s")?, Some(m), c.o("tech_key")?))
}

/// The rows (contactless card only).
pub fn rows(_kind: Gen) -> Vec<Item> {
    let mut v = vec![
        setup("C_Initialize(NULL)", |c| Ok(c.p11.initialize(None))),
        row(1100, "C_OpenSession read-only (contactless)", CKR_OK, |c| {
            c.open("s", false)
        }),
        row(
            1101,
            "C_Login: no PIN on the contactless interface",
            CKR_USER_PIN_NOT_INITIALIZED,
            |c| Ok(c.p11.login(c.s("s")?, CKU_USER, In::Bytes(PIN))),
        ),
        row(
            1102,
            "C_FindObjectsInit: private key CPS_PRIV_TECH_AUT",
            CKR_OK,
            |c| {
                find_init(
                    c,
                    &mut [
                        Attr::ulong(CKA_CLASS, CKO_PRIVATE_KEY),
                        Attr::of(CKA_LABEL, b"CPS_PRIV_TECH_AUT"),
                    ],
                )
            },
        ),
        row(
            1103,
            "C_FindObjects: CPS_PRIV_TECH_AUT (public object, docs/card-spec.md §5.3)",
            CKR_OK,
            |c| find_one(c, "tech_key"),
        ),
        row(1104, "C_FindObjectsFinal", CKR_OK, |c| {
            Ok(c.p11.find_objects_final(c.s("s")?))
        }),
        row(1105, "C_GetAttributeValue CKA_ID, size", CKR_OK, |c| {
            let mut t = [Attr::size_of(CKA_ID)];
            let rv = c.p11.get_attribute_value(c.s("s")?, c.o("tech_key")?, &mut t);
            c.blobs.insert("tech_id", vec![0; t[0].len as usize]);
            Ok(rv)
        }),
        row(1106, "C_GetAttributeValue CKA_ID, value", CKR_OK, |c| {
            let mut t = [Attr::buffer(CKA_ID, c.blob("tech_id")?.len())];
            let rv = c.p11.get_attribute_value(c.s("s")?, c.o("tech_key")?, &mut t);
            c.blobs
                .insert("tech_id", t[0].bytes().unwrap_or_default().to_vec());
            Ok(rv)
        }),
        row(
            1107,
            "C_FindObjectsInit: public key with that CKA_ID",
            CKR_OK,
            |c| {
                let id = c.blob("tech_id")?;
                find_init(
                    c,
                    &mut [Attr::of(CKA_ID, &id), Attr::ulong(CKA_CLASS, CKO_PUBLIC_KEY)],
                )
            },
        ),
        row(1108, "C_FindObjects: the public key", CKR_OK, |c| {
            find_one(c, "tech_pub")
        }),
        row(1109, "C_FindObjectsFinal", CKR_OK, |c| {
            Ok(c.p11.find_objects_final(c.s("s")?))
        }),
        row(
            1110,
            "C_SignInit with CKM_RSA_PKCS_KEY_PAIR_GEN",
            CKR_MECHANISM_INVALID,
            |c| sign_init(c, Mech::of(CKM_RSA_PKCS_KEY_PAIR_GEN)),
        ),
        row(1111, "C_SignInit CKM_RSA_PKCS", CKR_OK, |c| {
            sign_init(c, RSA_PKCS)
        }),
        row(
            1112,
            "C_SignInit CKM_RSA_X_509 while a signature is active",
            CKR_OPERATION_ACTIVE,
            |c| sign_init(c, Mech::of(CKM_RSA_X_509)),
        ),
        row(1113, "C_Sign, size", CKR_OK, |c| sign_size(c, MESSAGE)),
        row(1114, "C_Sign, value", CKR_OK, |c| {
            crate::sign::sign_value(c, MESSAGE, "Certificat Technique CPS", "cl_sig", |k, s| {
                soft::check_raw(k, MESSAGE, s)
            })
        }),
        row(1115, "C_SignInit CKM_RSA_PKCS", CKR_OK, |c| {
            sign_init(c, RSA_PKCS)
        }),
        row(1116, "C_SignUpdate \"Mess\"", CKR_OK, |c| {
            Ok(c.p11.sign_update(c.s("s")?, In::Bytes(b"Mess")))
        }),
        row(1117, "C_SignUpdate \"age\"", CKR_OK, |c| {
            Ok(c.p11.sign_update(c.s("s")?, In::Bytes(b"age")))
        }),
        row(1118, "C_SignFinal, size", CKR_OK, final_size),
        row(1119, "C_SignFinal, value (of \"Message\")", CKR_OK, |c| {
            final_value(c, b"Message", "cl_sig_parts")
        }),
        row(1120, "C_SignInit CKM_RSA_PKCS", CKR_OK, |c| {
            sign_init(c, RSA_PKCS)
        }),
    ];
    for (i, part) in MESSAGE.chunks(20).enumerate() {
        v.push(row(
            1121,
            format!("C_SignUpdate, part {} ({} bytes)", i + 1, part.len()),
            CKR_OK,
            move |c| Ok(c.p11.sign_update(c.s("s")?, In::Bytes(part))),
        ));
    }
    v.extend([
        row(1122, "C_SignFinal, size", CKR_OK, final_size),
        row(1123, "C_SignFinal, value: the same as row 1114's", CKR_OK, |c| {
            let rv = final_value(c, MESSAGE, "cl_sig_20")?;
            // PKCS#1 v1.5 is deterministic: one part or several, the same signature.
            if rv == CKR_OK && c.blob("cl_sig_20")? != c.blob("cl_sig")? {
                return Err("differs from the one-part signature".into());
            }
            Ok(rv)
        }),
        row(1124, "C_VerifyInit CKM_RSA_PKCS, public key", CKR_OK, |c| {
            Ok(c.p11.verify_init(c.s("s")?, Some(RSA_PKCS), c.o("tech_pub")?))
        }),
        row(1125, "C_Verify of row 1114's signature", CKR_OK, |c| {
            let sig = c.blob("cl_sig")?;
            Ok(c.p11.verify(c.s("s")?, In::Bytes(MESSAGE), In::Bytes(&sig)))
        }),
        setup("C_CloseAllSessions, C_Finalize", |c| {
            c.close_all()?;
            c.finalize().map(|()| CKR_OK)
        }),
    ]);
    v
}
