//! Rows 401–409: encryption, in software with the authentication public key (docs/card-spec.md §4.5;
//! `testEncryptManagementFunctions`). Row 400 ("not supported in CPS3") is obsolete and absent
//! from both reports. The ciphertext of row 409 is decrypted by rows 512 and 517.

use cryptoki_sys::*;

use crate::raw::{In, Mech, Out};
use crate::runner::{AUTH_CERT, BAD_SESSION, Ctx, Gen, Item, StepResult, row, setup};

/// The plan's plaintext: "Message chiffre" and its NUL (16 bytes, as the C program encrypts).
pub const PLAIN: &[u8] = b"Message chiffre\0";

const RSA_PKCS: Mech = Mech::of(CKM_RSA_PKCS);

fn find_auth_public(c: &mut Ctx) -> StepResult {
    let k = c.key_of_cert("s", AUTH_CERT, CKO_PUBLIC_KEY)?;
    c.objects.insert("auth_pub", k);
    Ok(CKR_OK)
}

fn fresh_session(c: &mut Ctx) -> StepResult {
    c.close_all()?;
    crate::runner::ok(c.open("s", true)?, "C_OpenSession")?;
    c.login("s")?;
    find_auth_public(c)
}

/// The rows.
pub fn rows(_kind: Gen) -> Vec<Item> {
    vec![
        setup("C_Initialize(NULL)", |c| Ok(c.p11.initialize(None))),
        row(
            401,
            "C_EncryptInit on an invalid session",
            CKR_SESSION_HANDLE_INVALID,
            |c| Ok(c.p11.encrypt_init(BAD_SESSION, Some(RSA_PKCS), 0)),
        ),
        setup("C_OpenSession read-write", |c| c.open("s", true)),
        // The C program passes an uninitialised mechanism; a valid one keeps the row about the key.
        row(
            402,
            "C_EncryptInit with key handle 0",
            CKR_KEY_HANDLE_INVALID,
            |c| Ok(c.p11.encrypt_init(c.s("s")?, Some(RSA_PKCS), 0)),
        ),
        setup("C_Login, find the authentication public key", |c| {
            c.login("s")?;
            find_auth_public(c)
        }),
        row(
            403,
            "C_EncryptInit with CKM_RSA_PKCS_KEY_PAIR_GEN",
            CKR_MECHANISM_INVALID,
            |c| {
                Ok(c.p11.encrypt_init(
                    c.s("s")?,
                    Some(Mech::of(CKM_RSA_PKCS_KEY_PAIR_GEN)),
                    c.o("auth_pub")?,
                ))
            },
        ),
        setup("find CPS_PRIV_AUT", |c| {
            let k = c.by_label("s", CKO_PRIVATE_KEY, "CPS_PRIV_AUT")?;
            c.objects.insert("auth_key", k);
            Ok(CKR_OK)
        }),
        row(
            404,
            "C_EncryptInit with the private authentication key",
            CKR_KEY_TYPE_INCONSISTENT,
            |c| Ok(c.p11.encrypt_init(c.s("s")?, Some(RSA_PKCS), c.o("auth_key")?)),
        ),
        setup(
            "C_CloseAllSessions, new session, C_Login, public key",
            fresh_session,
        ),
        row(
            405,
            "C_Encrypt without C_EncryptInit",
            CKR_OPERATION_NOT_INITIALIZED,
            |c| Ok(c.p11.encrypt(c.s("s")?, In::Bytes(PLAIN), Out::Len(&mut 0))),
        ),
        row(
            406,
            "C_EncryptInit CKM_RSA_PKCS, authentication public key",
            CKR_OK,
            |c| Ok(c.p11.encrypt_init(c.s("s")?, Some(RSA_PKCS), c.o("auth_pub")?)),
        ),
        // PKCS#11 §5.2: NULL pulEncryptedDataLen is CKR_ARGUMENTS_BAD; the operation stays.
        row(407, "C_Encrypt(len 0, NULL, NULL)", CKR_ARGUMENTS_BAD, |c| {
            Ok(c.p11.encrypt(c.s("s")?, In::Bytes(&PLAIN[..0]), Out::Null))
        }),
        row(408, "C_Encrypt into 12 bytes", CKR_BUFFER_TOO_SMALL, |c| {
            let mut buf = [0u8; 30];
            let mut n = 12;
            Ok(c.p11.encrypt(
                c.s("s")?,
                In::Bytes(b"testtesttesttest"),
                Out::Buf(&mut buf, &mut n),
            ))
        }),
        row(409, "C_Encrypt (size, then value)", CKR_OK, |c| {
            let h = c.s("s")?;
            let (rv, cipher) = c.two_calls(|out| c.p11.encrypt(h, In::Bytes(PLAIN), out));
            if rv == CKR_OK {
                if cipher.len() != 256 {
                    return Err(format!("{} bytes of ciphertext", cipher.len()));
                }
                c.blobs.insert("cipher", cipher);
            }
            Ok(rv)
        }),
        setup("C_CloseAllSessions, C_Finalize", |c| {
            c.close_all()?;
            c.finalize()?;
            Ok(CKR_OK)
        }),
    ]
}
