//! Rows 500–517: decryption with the authentication key on the card (docs/card-spec.md §4.3, §4.4;
//! `testDecryptManagementFunctions`), of the ciphertext made by row 409.

use cryptoki_sys::*;

use crate::encrypt::PLAIN;
use crate::raw::{In, InitArgs, Mech, Out};
use crate::runner::{AUTH_CERT, BAD_SESSION, Ctx, Gen, Item, PIN, StepResult, ok, row, setup};

const RSA_PKCS: Mech = Mech::of(CKM_RSA_PKCS);

fn find_auth_key(c: &mut Ctx) -> StepResult {
    let k = c.key_of_cert("s", AUTH_CERT, CKO_PRIVATE_KEY)?;
    c.objects.insert("auth_key", k);
    Ok(CKR_OK)
}

fn login(c: &mut Ctx) -> StepResult {
    Ok(c.p11.login(c.s("s")?, CKU_USER, In::Bytes(PIN)))
}

/// C_Decrypt of row 409's ciphertext, the plaintext compared.
fn decrypt_value(c: &mut Ctx, declared: CK_ULONG) -> StepResult {
    let cipher = c.blob("cipher")?;
    let mut buf = vec![0u8; declared as usize];
    let mut n = declared;
    let rv = c
        .p11
        .decrypt(c.s("s")?, In::Bytes(&cipher), Out::Buf(&mut buf, &mut n));
    if rv == CKR_OK && buf.get(..n as usize) != Some(PLAIN) {
        return Err(format!("plaintext {:02X?}", buf.get(..n as usize)));
    }
    Ok(rv)
}

fn size_query(c: &mut Ctx, key: &'static str) -> StepResult {
    let cipher = c.blob("cipher")?;
    let mut n = 0;
    let rv = c.p11.decrypt(c.s("s")?, In::Bytes(&cipher), Out::Len(&mut n));
    c.blobs.insert(key, n.to_ne_bytes().to_vec());
    Ok(rv)
}

fn size_of(c: &Ctx, key: &str) -> Result<CK_ULONG, String> {
    let v = c.blob(key)?;
    Ok(CK_ULONG::from_ne_bytes(v.try_into().map_err(|_| "bad size")?))
}

/// The rows.
pub fn rows(_kind: Gen) -> Vec<Item> {
    vec![
        row(
            500,
            "C_DecryptInit before C_Initialize",
            CKR_CRYPTOKI_NOT_INITIALIZED,
            |c| Ok(c.p11.decrypt_init(BAD_SESSION, Some(RSA_PKCS), 0)),
        ),
        // The program passes pReserved = "winlogonDecrypt". PKCS#11 wants pReserved NULL (our
        // module answers CKR_ARGUMENTS_BAD otherwise) and decryption has not depended on it since
        // lib 2.10 (docs/card-spec.md §4.3, §5.5): the same flags, pReserved NULL.
        setup(
            "C_Initialize(CKF_OS_LOCKING_OK | CKF_LIBRARY_CANT_CREATE_OS_THREADS)",
            |c| {
                Ok(c.p11.initialize(Some(InitArgs {
                    callbacks: [false; 4],
                    flags: CKF_OS_LOCKING_OK | CKF_LIBRARY_CANT_CREATE_OS_THREADS,
                })))
            },
        ),
        row(
            501,
            "C_DecryptInit on an invalid session",
            CKR_SESSION_HANDLE_INVALID,
            |c| Ok(c.p11.decrypt_init(BAD_SESSION, Some(RSA_PKCS), 0)),
        ),
        setup("C_OpenSession read-only", |c| c.open("s", false)),
        row(502, "C_Login", CKR_OK, login),
        // The C program's mechanism is uninitialised; a valid one keeps the row about the key.
        // docs/card-spec.md §6.1: the official module says OBJECT_HANDLE_INVALID here, not
        // KEY_HANDLE_INVALID.
        row(
            503,
            "C_DecryptInit with key handle 0",
            CKR_OBJECT_HANDLE_INVALID,
            |c| Ok(c.p11.decrypt_init(c.s("s")?, Some(RSA_PKCS), 0)),
        ),
        setup("find the authentication private key", find_auth_key),
        row(
            504,
            "C_DecryptInit with CKM_RSA_PKCS_KEY_PAIR_GEN",
            CKR_MECHANISM_INVALID,
            |c| {
                Ok(c.p11.decrypt_init(
                    c.s("s")?,
                    Some(Mech::of(CKM_RSA_PKCS_KEY_PAIR_GEN)),
                    c.o("auth_key")?,
                ))
            },
        ),
        setup("C_Logout", |c| Ok(c.p11.logout(c.s("s")?))),
        row(
            505,
            "C_DecryptInit, user not logged in",
            CKR_USER_NOT_LOGGED_IN,
            |c| Ok(c.p11.decrypt_init(c.s("s")?, Some(RSA_PKCS), c.o("auth_key")?)),
        ),
        setup("C_CloseAllSessions, new session, C_Login, key", |c| {
            c.close_all()?;
            ok(c.open("s", false)?, "C_OpenSession")?;
            c.login("s")?;
            find_auth_key(c)
        }),
        row(
            506,
            "C_Decrypt without C_DecryptInit",
            CKR_OPERATION_NOT_INITIALIZED,
            |c| {
                Ok(c.p11
                    .decrypt(c.s("s")?, In::Bytes(b"testtesttesttest"), Out::Len(&mut 0)))
            },
        ),
        row(
            507,
            "C_Decrypt on an invalid session",
            CKR_SESSION_HANDLE_INVALID,
            |c| {
                Ok(c.p11
                    .decrypt(BAD_SESSION, In::Bytes(b"testtesttesttest"), Out::Len(&mut 0)))
            },
        ),
        row(508, "C_DecryptInit CKM_RSA_PKCS", CKR_OK, |c| {
            Ok(c.p11.decrypt_init(c.s("s")?, Some(RSA_PKCS), c.o("auth_key")?))
        }),
        row(
            509,
            "C_Decrypt with pEncryptedData NULL",
            CKR_ARGUMENTS_BAD,
            |c| Ok(c.p11.decrypt(c.s("s")?, In::Null(256), Out::Len(&mut 0))),
        ),
        // The official program goes on with row 509's operation; PKCS#11 2.40 §5.9 ends it at
        // any failure but CKR_BUFFER_TOO_SMALL, and so does cpx (issue 14): a new one here.
        setup("C_DecryptInit again (row 509 ended the operation)", |c| {
            Ok(c.p11.decrypt_init(c.s("s")?, Some(RSA_PKCS), c.o("auth_key")?))
        }),
        row(510, "C_Decrypt into 2 bytes", CKR_BUFFER_TOO_SMALL, |c| {
            let cipher = c.blob("cipher")?;
            let mut buf = [0u8; 32];
            let mut n = 2;
            let rv = c
                .p11
                .decrypt(c.s("s")?, In::Bytes(&cipher), Out::Buf(&mut buf, &mut n));
            if rv == CKR_BUFFER_TOO_SMALL && n as usize != PLAIN.len() {
                return Err(format!(
                    "{n} bytes said needed, the plaintext has {}",
                    PLAIN.len()
                ));
            }
            Ok(rv)
        }),
        row(511, "C_Decrypt, size only", CKR_OK, |c| {
            size_query(c, "plain_len")
        }),
        row(512, "C_Decrypt, value", CKR_OK, |c| {
            let n = size_of(c, "plain_len")?;
            decrypt_value(c, n)
        }),
        setup("C_CloseAllSessions, C_Finalize", |c| {
            c.close_all()?;
            c.finalize()?;
            Ok(CKR_OK)
        }),
        row(513, "C_Initialize(NULL)", CKR_OK, |c| Ok(c.p11.initialize(None))),
        setup("C_OpenSession read-only", |c| c.open("s", false)),
        row(514, "C_Login (after C_Initialize(NULL))", CKR_OK, login),
        setup("find the authentication private key", find_auth_key),
        row(515, "C_DecryptInit (after C_Initialize(NULL))", CKR_OK, |c| {
            Ok(c.p11.decrypt_init(c.s("s")?, Some(RSA_PKCS), c.o("auth_key")?))
        }),
        row(
            516,
            "C_Decrypt, size only (after C_Initialize(NULL))",
            CKR_OK,
            |c| size_query(c, "plain_len"),
        ),
        row(517, "C_Decrypt, value (after C_Initialize(NULL))", CKR_OK, |c| {
            let n = size_of(c, "plain_len")?;
            decrypt_value(c, n)
        }),
        setup("C_CloseAllSessions, C_Finalize", |c| {
            c.close_all()?;
            c.finalize()?;
            Ok(CKR_OK)
        }),
    ]
}
