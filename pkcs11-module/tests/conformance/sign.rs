//! Rows 600–644: signature on the card (docs/card-spec.md §4.2–§4.4; `testSignatureManagementFunctions`).
//! Inputs of docs/card-spec.md §6 "Test inputs": the authentication key signs a 35-byte SHA-1 DigestInfo
//! with CKM_RSA_PKCS (513 bytes for the over-long case), the signature key 1405 bytes of 'A'
//! with CKM_SHA1_RSA_PKCS; 636–644 sign hashes with CKM_RSA_PKCS and the signature key. Every
//! signature is verified in software with the certificate's key, and kept for the 700 rows.

use cryptoki_sys::*;

use crate::raw::{In, Mech, Out};
use crate::runner::{AUTH_CERT, BAD_SESSION, Ctx, Gen, Item, PIN, SIG_CERT, StepResult, ok, row, setup};
use crate::soft::{self, DOCUMENT, Hash};

pub(crate) const RSA_PKCS: Mech = Mech::of(CKM_RSA_PKCS);
pub(crate) const SHA1_RSA_PKCS: Mech = Mech::of(CKM_SHA1_RSA_PKCS);

/// 1405 bytes of 'A': the signature key's input (docs/card-spec.md §6, `testSetData`).
pub fn long_data() -> Vec<u8> {
    vec![b'A'; 1405]
}

/// 35 bytes of 'A': the authentication key's input, the length of a SHA-1 DigestInfo.
pub fn short_data() -> Vec<u8> {
    vec![b'A'; 35]
}

/// Close every session, open a read-only one named "s", log in, find a private key by label.
pub fn fresh(c: &mut Ctx, key_label: &'static str, name: &'static str) -> StepResult {
    c.close_all()?;
    ok(c.open("s", false)?, "C_OpenSession")?;
    c.login("s")?;
    let k = c.by_label("s", CKO_PRIVATE_KEY, key_label)?;
    c.objects.insert(name, k);
    Ok(CKR_OK)
}

/// C_Sign with a NULL buffer: CKR_OK and 256 bytes announced (2048-bit keys, docs/card-spec.md §4.1).
pub fn sign_size(c: &mut Ctx, data: &[u8]) -> StepResult {
    let mut n = 0;
    let rv = c.p11.sign(c.s("s")?, In::Bytes(data), Out::Len(&mut n));
    if rv == CKR_OK && n != 256 {
        return Err(format!("{n} bytes announced"));
    }
    Ok(rv)
}

/// C_Sign into a 256-byte buffer; the signature is checked with `check` (the certificate's key)
/// and kept under `keep`.
pub fn sign_value(
    c: &mut Ctx,
    data: &[u8],
    cert: &str,
    keep: &'static str,
    check: impl Fn(&rsa::RsaPublicKey, &[u8]) -> Result<(), String>,
) -> StepResult {
    let mut sig = vec![0u8; 256];
    let mut n = 256;
    let rv = c.p11.sign(c.s("s")?, In::Bytes(data), Out::Buf(&mut sig, &mut n));
    if rv == CKR_OK {
        sig.truncate(n as usize);
        check(&c.cert_key("s", cert)?, &sig)?;
        c.blobs.insert(keep, sig);
    }
    Ok(rv)
}

fn sign_init(c: &mut Ctx, m: Mech, key: &str) -> StepResult {
    Ok(c.p11.sign_init(c.s("s")?, Some(m), c.o(key)?))
}

/// The rows (contact cards only: the official program runs the contactless variant in 1100).
pub fn rows(_kind: Gen) -> Vec<Item> {
    let mut v = before_init();
    v.extend(init_errors());
    v.extend(single_part());
    v.extend(multi_part());
    v.extend(hashes());
    v
}

fn before_init() -> Vec<Item> {
    vec![
        row(
            600,
            "C_SignInit before C_Initialize",
            CKR_CRYPTOKI_NOT_INITIALIZED,
            |c| Ok(c.p11.sign_init(BAD_SESSION, Some(RSA_PKCS), 0)),
        ),
        row(
            601,
            "C_Sign before C_Initialize",
            CKR_CRYPTOKI_NOT_INITIALIZED,
            |c| {
                Ok(c.p11
                    .sign(BAD_SESSION, In::Bytes(b"testtesttesttest"), Out::Len(&mut 0)))
            },
        ),
        row(
            602,
            "C_SignUpdate before C_Initialize",
            CKR_CRYPTOKI_NOT_INITIALIZED,
            |c| Ok(c.p11.sign_update(BAD_SESSION, In::Bytes(b"testtesttesttest"))),
        ),
        row(
            603,
            "C_SignFinal before C_Initialize",
            CKR_CRYPTOKI_NOT_INITIALIZED,
            |c| {
                let mut buf = [0u8; 256];
                Ok(c.p11.sign_final(BAD_SESSION, Out::Buf(&mut buf, &mut 256)))
            },
        ),
    ]
}

fn init_errors() -> Vec<Item> {
    vec![
        setup("C_Initialize(NULL)", |c| Ok(c.p11.initialize(None))),
        row(
            604,
            "C_SignInit on an invalid session",
            CKR_SESSION_HANDLE_INVALID,
            |c| Ok(c.p11.sign_init(BAD_SESSION, Some(RSA_PKCS), 0)),
        ),
        setup("C_OpenSession read-only", |c| c.open("s", false)),
        row(605, "C_Login", CKR_OK, |c| {
            Ok(c.p11.login(c.s("s")?, CKU_USER, In::Bytes(PIN)))
        }),
        // The C program's mechanism is uninitialised; a valid one keeps the row about the key.
        row(606, "C_SignInit with key handle 0", CKR_KEY_HANDLE_INVALID, |c| {
            Ok(c.p11.sign_init(c.s("s")?, Some(RSA_PKCS), 0))
        }),
        setup("find CPS_PRIV_AUT and its public key", |c| {
            let k = c.by_label("s", CKO_PRIVATE_KEY, "CPS_PRIV_AUT")?;
            c.objects.insert("auth_key", k);
            let p = c.key_of_cert("s", AUTH_CERT, CKO_PUBLIC_KEY)?;
            c.objects.insert("auth_pub", p);
            Ok(CKR_OK)
        }),
        row(
            607,
            "C_SignInit with CKM_RSA_PKCS_KEY_PAIR_GEN",
            CKR_MECHANISM_INVALID,
            |c| sign_init(c, Mech::of(CKM_RSA_PKCS_KEY_PAIR_GEN), "auth_key"),
        ),
        row(
            608,
            "C_SignInit CKM_SHA1_RSA_PKCS with the public authentication key",
            CKR_KEY_TYPE_INCONSISTENT,
            |c| sign_init(c, SHA1_RSA_PKCS, "auth_pub"),
        ),
        setup("C_Logout", |c| Ok(c.p11.logout(c.s("s")?))),
        row(
            609,
            "C_SignInit, user not logged in",
            CKR_USER_NOT_LOGGED_IN,
            |c| sign_init(c, RSA_PKCS, "auth_key"),
        ),
    ]
}

fn single_part() -> Vec<Item> {
    vec![
        setup("new session, C_Login, CPS_PRIV_AUT", |c| {
            fresh(c, "CPS_PRIV_AUT", "auth_key")
        }),
        row(
            610,
            "C_Sign without C_SignInit",
            CKR_OPERATION_NOT_INITIALIZED,
            |c| {
                Ok(c.p11
                    .sign(c.s("s")?, In::Bytes(b"testtesttesttest"), Out::Len(&mut 0)))
            },
        ),
        row(
            611,
            "C_Sign on an invalid session",
            CKR_SESSION_HANDLE_INVALID,
            |c| {
                Ok(c.p11
                    .sign(BAD_SESSION, In::Bytes(b"testtesttesttest"), Out::Len(&mut 0)))
            },
        ),
        row(612, "C_SignInit CKM_RSA_PKCS, authentication key", CKR_OK, |c| {
            sign_init(c, RSA_PKCS, "auth_key")
        }),
        row(613, "C_Sign(NULL, 16, NULL, NULL)", CKR_ARGUMENTS_BAD, |c| {
            Ok(c.p11.sign(c.s("s")?, In::Null(16), Out::Null))
        }),
        // 614: CPS2ter only (a second C_SignInit), absent from both reports.
        row(615, "C_Sign size query with 0 bytes of data", CKR_OK, |c| {
            sign_size(c, &b"Un message a signer"[..0])
        }),
        row(616, "C_Sign into a 0-byte buffer", CKR_BUFFER_TOO_SMALL, |c| {
            let mut buf = [0u8; 256];
            let mut n = 0;
            let rv = c
                .p11
                .sign(c.s("s")?, In::Bytes(&b"x"[..0]), Out::Buf(&mut buf, &mut n));
            if rv == CKR_BUFFER_TOO_SMALL && n != 256 {
                return Err(format!("{n} bytes said needed"));
            }
            Ok(rv)
        }),
        row(
            617,
            "C_Sign with pData NULL and a 256-byte buffer",
            CKR_ARGUMENTS_BAD,
            |c| {
                let mut buf = [0u8; 256];
                Ok(c.p11.sign(c.s("s")?, In::Null(0), Out::Buf(&mut buf, &mut 256)))
            },
        ),
        // docs/card-spec.md §4.3: at most 40 % of the modulus for the authentication key.
        row(
            618,
            "C_Sign of 513 bytes with CKM_RSA_PKCS",
            CKR_DATA_LEN_RANGE,
            |c| {
                let mut buf = [0u8; 256];
                Ok(c.p11
                    .sign(c.s("s")?, In::Bytes(&[b'A'; 513]), Out::Buf(&mut buf, &mut 256)))
            },
        ),
        row(619, "C_SignInit CKM_RSA_PKCS (again)", CKR_OK, |c| {
            sign_init(c, RSA_PKCS, "auth_key")
        }),
        row(620, "C_Sign of a SHA-1 DigestInfo, size", CKR_OK, |c| {
            sign_size(c, &soft::digest_info_sha1(DOCUMENT))
        }),
        row(621, "C_Sign of a SHA-1 DigestInfo, value", CKR_OK, |c| {
            let di = soft::digest_info_sha1(DOCUMENT);
            sign_value(c, &di, AUTH_CERT, "auth_sig", |k, s| soft::check_raw(k, &di, s))
        }),
    ]
}

fn multi_part() -> Vec<Item> {
    vec![
        setup("new session, C_Login, CPS_PRIV_SIG", |c| {
            fresh(c, "CPS_PRIV_SIG", "sig_key")
        }),
        row(
            622,
            "C_SignUpdate without C_SignInit",
            CKR_OPERATION_NOT_INITIALIZED,
            |c| Ok(c.p11.sign_update(c.s("s")?, In::Bytes(b"testtesttesttest"))),
        ),
        row(
            623,
            "C_SignUpdate on an invalid session",
            CKR_SESSION_HANDLE_INVALID,
            |c| Ok(c.p11.sign_update(BAD_SESSION, In::Bytes(b"testtesttesttest"))),
        ),
        row(624, "C_SignInit CKM_SHA1_RSA_PKCS, signature key", CKR_OK, |c| {
            sign_init(c, SHA1_RSA_PKCS, "sig_key")
        }),
        row(625, "C_SignUpdate(NULL, 16)", CKR_ARGUMENTS_BAD, |c| {
            Ok(c.p11.sign_update(c.s("s")?, In::Null(16)))
        }),
        row(626, "C_SignUpdate of 1405 bytes", CKR_OK, |c| {
            Ok(c.p11.sign_update(c.s("s")?, In::Bytes(&long_data())))
        }),
        row(627, "C_SignUpdate of 1405 bytes again", CKR_OK, |c| {
            Ok(c.p11.sign_update(c.s("s")?, In::Bytes(&long_data())))
        }),
        setup("new session, C_Login, CPS_PRIV_SIG", |c| {
            fresh(c, "CPS_PRIV_SIG", "sig_key")
        }),
        row(
            628,
            "C_SignFinal without C_SignInit",
            CKR_OPERATION_NOT_INITIALIZED,
            |c| {
                let mut buf = [0u8; 256];
                Ok(c.p11.sign_final(c.s("s")?, Out::Buf(&mut buf, &mut 256)))
            },
        ),
        row(629, "C_SignInit CKM_SHA1_RSA_PKCS, signature key", CKR_OK, |c| {
            sign_init(c, SHA1_RSA_PKCS, "sig_key")
        }),
        row(
            630,
            "C_SignFinal on an invalid session",
            CKR_SESSION_HANDLE_INVALID,
            |c| {
                let mut buf = [0u8; 256];
                Ok(c.p11.sign_final(BAD_SESSION, Out::Buf(&mut buf, &mut 256)))
            },
        ),
        row(
            631,
            "C_SignFinal with pulSignatureLen NULL",
            CKR_ARGUMENTS_BAD,
            |c| {
                let mut buf = [0u8; 256];
                Ok(c.p11.sign_final(c.s("s")?, Out::BufNoLen(&mut buf)))
            },
        ),
        row(632, "C_SignUpdate of 1405 bytes", CKR_OK, |c| {
            Ok(c.p11.sign_update(c.s("s")?, In::Bytes(&long_data())))
        }),
        row(633, "C_SignFinal into 250 bytes", CKR_BUFFER_TOO_SMALL, |c| {
            let mut buf = [0u8; 256];
            Ok(c.p11.sign_final(c.s("s")?, Out::Buf(&mut buf, &mut 250)))
        }),
        row(634, "C_SignFinal, size only", CKR_OK, |c| {
            let mut n = 0;
            let rv = c.p11.sign_final(c.s("s")?, Out::Len(&mut n));
            if rv == CKR_OK && n != 256 {
                return Err(format!("{n} bytes announced"));
            }
            Ok(rv)
        }),
        row(635, "C_SignFinal, value (SHA-1 of 1405 bytes)", CKR_OK, |c| {
            let mut sig = vec![0u8; 256];
            let mut n = 256;
            let rv = c.p11.sign_final(c.s("s")?, Out::Buf(&mut sig, &mut n));
            if rv == CKR_OK {
                sig.truncate(n as usize);
                soft::check_message(&c.cert_key("s", SIG_CERT)?, Hash::Sha1, &long_data(), &sig)?;
                c.blobs.insert("sig_1405", sig);
            }
            Ok(rv)
        }),
    ]
}

fn hashes() -> Vec<Item> {
    let again = |c: &mut Ctx| -> StepResult {
        c.finalize()?;
        c.init()?;
        fresh(c, "CPS_PRIV_SIG", "sig_key")
    };
    vec![
        setup("C_Finalize, C_Initialize, session, C_Login, CPS_PRIV_SIG", again),
        // docs/card-spec.md §4.2 (CPS3) and §10.9 (CPS4): CKM_RSA_PKCS on the signature key signs a raw hash.
        row(636, "C_SignInit CKM_RSA_PKCS, signature key", CKR_OK, |c| {
            sign_init(c, RSA_PKCS, "sig_key")
        }),
        row(637, "C_Sign of a raw SHA-1 hash, size", CKR_OK, |c| {
            sign_size(c, &soft::sha1(DOCUMENT))
        }),
        row(638, "C_Sign of a raw SHA-1 hash, value", CKR_OK, |c| {
            let h = soft::sha1(DOCUMENT);
            sign_value(c, &h, SIG_CERT, "sig_sha1_hash", |k, s| {
                soft::check_hash(k, Hash::Sha1, &h, s)
            })
        }),
        row(639, "C_SignInit CKM_RSA_PKCS, signature key", CKR_OK, |c| {
            sign_init(c, RSA_PKCS, "sig_key")
        }),
        row(640, "C_Sign of a raw SHA-256 hash, size", CKR_OK, |c| {
            sign_size(c, &soft::sha256(DOCUMENT))
        }),
        row(641, "C_Sign of a raw SHA-256 hash, value", CKR_OK, |c| {
            let h = soft::sha256(DOCUMENT);
            sign_value(c, &h, SIG_CERT, "sig_sha256_hash", |k, s| {
                soft::check_hash(k, Hash::Sha256, &h, s)
            })
        }),
        setup("C_Finalize, C_Initialize, session, C_Login, CPS_PRIV_SIG", again),
        row(642, "C_SignInit CKM_RSA_PKCS, signature key", CKR_OK, |c| {
            sign_init(c, RSA_PKCS, "sig_key")
        }),
        row(643, "C_Sign of a SHA-256 DigestInfo, size", CKR_OK, |c| {
            sign_size(c, &soft::digest_info_sha256(DOCUMENT))
        }),
        row(644, "C_Sign of a SHA-256 DigestInfo, value", CKR_OK, |c| {
            let di = soft::digest_info_sha256(DOCUMENT);
            sign_value(c, &di, SIG_CERT, "sig_sha256_di", |k, s| {
                soft::check_hash(k, Hash::Sha256, &soft::sha256(DOCUMENT), s)
            })
        }),
        setup("C_CloseAllSessions, C_Finalize", |c| {
            c.close_all()?;
            c.finalize()?;
            Ok(CKR_OK)
        }),
    ]
}
