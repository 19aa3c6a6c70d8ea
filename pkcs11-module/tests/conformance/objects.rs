//! Rows 300–318: objects (docs/card-spec.md §6.1; `testObjectManagementFunctions` and the key search of
//! `testGetPkcs11Object`).

use cryptoki_sys::*;

use crate::raw::Attr;
use crate::runner::{Ctx, Gen, Item, StepResult, row, setup};

/// CKA_ID of the CPS3 keys: the PKCS#15 application AID ‖ key number (docs/card-spec.md §1.5).
pub const CPS3_KEY_ID_PREFIX: [u8; 13] = [
    0xE8, 0x28, 0xBD, 0x08, 0x0F, 0x80, 0x25, 0x00, 0x00, 0x01, 0xFF, 0x00, 0x10,
];

/// The public data object the official program looks for.
fn id_card_template() -> Vec<Attr> {
    vec![
        Attr::ulong(CKA_CLASS, CKO_DATA),
        Attr::bool(CKA_TOKEN, true),
        Attr::bool(CKA_PRIVATE, false),
        Attr::of(CKA_LABEL, b"CPS_ID_CARD"),
    ]
}

/// One C_FindObjects call for one handle, kept under `name`; fewer than one is a failed check.
pub fn find_next(c: &mut Ctx, session: &str, name: &'static str) -> StepResult {
    let mut out = [0; 1];
    let mut n = 0;
    let rv = c.p11.find_objects(c.s(session)?, &mut out, &mut n);
    if rv == CKR_OK {
        if n < 1 {
            return Err("no object found".into());
        }
        c.objects.insert(name, out[0]);
    }
    Ok(rv)
}

/// The rows.
pub fn rows(kind: Gen) -> Vec<Item> {
    vec![
        row(
            300,
            "C_FindObjectsInit before C_Initialize",
            CKR_CRYPTOKI_NOT_INITIALIZED,
            |c| Ok(c.p11.find_objects_init(999, &mut [])),
        ),
        row(
            301,
            "C_FindObjects before C_Initialize",
            CKR_CRYPTOKI_NOT_INITIALIZED,
            |c| Ok(c.p11.find_objects(999, &mut [0], &mut 0)),
        ),
        row(
            302,
            "C_FindObjectsFinal before C_Initialize",
            CKR_CRYPTOKI_NOT_INITIALIZED,
            |c| Ok(c.p11.find_objects_final(999)),
        ),
        row(
            303,
            "C_GetAttributeValue before C_Initialize",
            CKR_CRYPTOKI_NOT_INITIALIZED,
            |c| Ok(c.p11.get_attribute_value(999, 0, &mut [])),
        ),
        setup("C_Initialize(NULL)", |c| Ok(c.p11.initialize(None))),
        setup("C_OpenSession read-only", |c| c.open("ro", false)),
        setup("C_OpenSession read-write", |c| c.open("rw", true)),
        row(
            304,
            "C_CreateObject (not implemented, Tableau 1)",
            CKR_FUNCTION_NOT_SUPPORTED,
            |c| Ok(c.p11.create_object(c.s("ro")?, &mut [], &mut 0)),
        ),
        row(
            305,
            "C_CopyObject (not implemented, Tableau 1)",
            CKR_FUNCTION_NOT_SUPPORTED,
            |c| Ok(c.p11.copy_object(c.s("ro")?, 0, &mut [], &mut 0)),
        ),
        row(
            306,
            "C_FindObjectsInit on session 999",
            CKR_SESSION_HANDLE_INVALID,
            |c| Ok(c.p11.find_objects_init(999, &mut id_card_template())),
        ),
        row(
            307,
            "C_FindObjectsInit: public CKO_DATA CPS_ID_CARD",
            CKR_OK,
            |c| Ok(c.p11.find_objects_init(c.s("rw")?, &mut id_card_template())),
        ),
        row(308, "C_FindObjects", CKR_OK, |c| find_next(c, "rw", "id_card")),
        row(
            309,
            "C_FindObjects on session 999",
            CKR_SESSION_HANDLE_INVALID,
            |c| Ok(c.p11.find_objects(999, &mut [0], &mut 0)),
        ),
        row(
            310,
            "C_GetObjectSize (not implemented, Tableau 1)",
            CKR_FUNCTION_NOT_SUPPORTED,
            |c| Ok(c.p11.get_object_size(c.s("ro")?, c.o("id_card")?, &mut 0)),
        ),
        row(311, "C_FindObjectsFinal", CKR_OK, |c| {
            Ok(c.p11.find_objects_final(c.s("rw")?))
        }),
        row(
            312,
            "C_GetAttributeValue of the object found (CKA_CLASS)",
            CKR_OK,
            |c| {
                let mut t = [Attr::buffer(CKA_CLASS, std::mem::size_of::<CK_ULONG>())];
                let rv = c.p11.get_attribute_value(c.s("rw")?, c.o("id_card")?, &mut t);
                if rv == CKR_OK && t[0].bytes() != Some(&CKO_DATA.to_ne_bytes()[..]) {
                    return Err(format!("CKA_CLASS {:?}", t[0].bytes()));
                }
                Ok(rv)
            },
        ),
        setup("C_Login", |c| c.login("ro").map(|()| CKR_OK)),
        row(313, "C_FindObjectsInit: private key CPS_PRIV_SIG", CKR_OK, |c| {
            let mut t = [
                Attr::ulong(CKA_CLASS, CKO_PRIVATE_KEY),
                Attr::bool(CKA_PRIVATE, true),
                Attr::bool(CKA_TOKEN, true),
                Attr::of(CKA_LABEL, b"CPS_PRIV_SIG"),
            ];
            Ok(c.p11.find_objects_init(c.s("ro")?, &mut t))
        }),
        row(314, "C_FindObjects: private key CPS_PRIV_SIG", CKR_OK, move |c| {
            let rv = find_next(c, "ro", "sig_key")?;
            if rv == CKR_OK && kind == Gen::Cps3 {
                let id = c.attr("ro", c.o("sig_key")?, CKA_ID);
                if id.as_deref().ok() != Some(&[&CPS3_KEY_ID_PREFIX[..], &[0x01]].concat()[..]) {
                    return Err(format!("CKA_ID {id:02X?}, docs/card-spec.md §1.5 says AID ‖ 01"));
                }
            }
            Ok(rv)
        }),
        row(315, "C_FindObjectsFinal", CKR_OK, |c| {
            Ok(c.p11.find_objects_final(c.s("ro")?))
        }),
        // The official program searches the CKA_ID it hard-codes (AID ‖ 01 on CPS3, AID ‖ 10 on
        // CPS4). CPS4 key IDs are not public (the emulator gives AID ‖ 01 / 02,
        // crates/cpx-emulator/CHOICES.md): the search uses the CKA_ID of the private key found above.
        row(
            316,
            "C_FindObjectsInit: public key with the signature key's CKA_ID",
            CKR_OK,
            |c| {
                let id = c.attr("ro", c.o("sig_key")?, CKA_ID)?;
                let mut t = [
                    Attr::ulong(CKA_CLASS, CKO_PUBLIC_KEY),
                    Attr::bool(CKA_PRIVATE, false),
                    Attr::bool(CKA_TOKEN, true),
                    Attr::of(CKA_ID, &id),
                ];
                Ok(c.p11.find_objects_init(c.s("ro")?, &mut t))
            },
        ),
        row(317, "C_FindObjects: public signature key", CKR_OK, |c| {
            find_next(c, "ro", "sig_pub")
        }),
        row(318, "C_FindObjectsFinal", CKR_OK, |c| {
            Ok(c.p11.find_objects_final(c.s("ro")?))
        }),
        setup("C_CloseAllSessions, C_Finalize", |c| {
            c.close_all()?;
            c.finalize()?;
            Ok(CKR_OK)
        }),
    ]
}
