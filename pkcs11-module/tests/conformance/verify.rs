//! Rows 700–737: verification, in software by the module with the certificate's key (docs/card-spec.md §4.5;
//! `testVerificationSignatureManagementFunctions`), of the signatures made by rows 621, 635,
//! 638 and 641. A failed C_Verify/C_VerifyFinal ends the operation (rows 715, 730).

use cryptoki_sys::*;

use crate::raw::{In, Mech};
use crate::runner::{AUTH_CERT, BAD_SESSION, Ctx, Gen, Item, SIG_CERT, StepResult, ok, row, setup};
use crate::sign::{RSA_PKCS, SHA1_RSA_PKCS, long_data, short_data};
use crate::soft::{self, DOCUMENT};

/// Close every session, open a read-only one named "s", find the public key of a certificate.
fn fresh(c: &mut Ctx, cert: &'static str) -> StepResult {
    c.close_all()?;
    ok(c.open("s", false)?, "C_OpenSession")?;
    let k = c.key_of_cert("s", cert, CKO_PUBLIC_KEY)?;
    c.objects.insert("pub", k);
    Ok(CKR_OK)
}

fn verify_init(c: &mut Ctx, m: Mech) -> StepResult {
    Ok(c.p11.verify_init(c.s("s")?, Some(m), c.o("pub")?))
}

fn update(c: &mut Ctx) -> StepResult {
    Ok(c.p11.verify_update(c.s("s")?, In::Bytes(&long_data())))
}

/// The rows (contact cards).
pub fn rows(_kind: Gen) -> Vec<Item> {
    let mut v = vec![
        row(
            700,
            "C_VerifyInit before C_Initialize",
            CKR_CRYPTOKI_NOT_INITIALIZED,
            |c| Ok(c.p11.verify_init(BAD_SESSION, Some(RSA_PKCS), 0)),
        ),
        row(
            701,
            "C_Verify before C_Initialize",
            CKR_CRYPTOKI_NOT_INITIALIZED,
            |c| {
                Ok(c.p11
                    .verify(BAD_SESSION, In::Bytes(b"testtesttesttest"), In::Bytes(&[0; 256])))
            },
        ),
        row(
            702,
            "C_VerifyUpdate before C_Initialize",
            CKR_CRYPTOKI_NOT_INITIALIZED,
            |c| Ok(c.p11.verify_update(BAD_SESSION, In::Bytes(b"testtesttesttest"))),
        ),
        row(
            703,
            "C_VerifyFinal before C_Initialize",
            CKR_CRYPTOKI_NOT_INITIALIZED,
            |c| Ok(c.p11.verify_final(BAD_SESSION, In::Bytes(&[0; 256]))),
        ),
        setup("C_Initialize(NULL)", |c| Ok(c.p11.initialize(None))),
        row(
            704,
            "C_VerifyInit on an invalid session",
            CKR_SESSION_HANDLE_INVALID,
            |c| Ok(c.p11.verify_init(BAD_SESSION, Some(RSA_PKCS), 0)),
        ),
        setup("C_OpenSession read-only", |c| c.open("s", false)),
        // The C program's mechanism is uninitialised; a valid one keeps the row about the key.
        row(
            705,
            "C_VerifyInit with key handle 0",
            CKR_KEY_HANDLE_INVALID,
            |c| Ok(c.p11.verify_init(c.s("s")?, Some(RSA_PKCS), 0)),
        ),
        setup("find the authentication public key", |c| fresh(c, AUTH_CERT)),
        row(
            706,
            "C_VerifyInit with CKM_RSA_PKCS_KEY_PAIR_GEN",
            CKR_MECHANISM_INVALID,
            |c| verify_init(c, Mech::of(CKM_RSA_PKCS_KEY_PAIR_GEN)),
        ),
        row(707, "C_VerifyInit with pMechanism NULL", CKR_ARGUMENTS_BAD, |c| {
            Ok(c.p11.verify_init(c.s("s")?, None, c.o("pub")?))
        }),
        setup("new session, authentication public key", |c| fresh(c, AUTH_CERT)),
        row(
            708,
            "C_Verify without C_VerifyInit",
            CKR_OPERATION_NOT_INITIALIZED,
            |c| {
                Ok(c.p11
                    .verify(c.s("s")?, In::Bytes(b"testtesttesttest"), In::Bytes(&[0; 256])))
            },
        ),
        row(
            709,
            "C_Verify on an invalid session",
            CKR_SESSION_HANDLE_INVALID,
            |c| {
                Ok(c.p11
                    .verify(BAD_SESSION, In::Bytes(b"testtesttesttest"), In::Bytes(&[0; 256])))
            },
        ),
        row(
            710,
            "C_VerifyInit CKM_RSA_PKCS, authentication public key",
            CKR_OK,
            |c| verify_init(c, RSA_PKCS),
        ),
        row(711, "C_Verify(NULL, 16, NULL, 256)", CKR_ARGUMENTS_BAD, |c| {
            Ok(c.p11.verify(c.s("s")?, In::Null(16), In::Null(256)))
        }),
        row(
            712,
            "C_Verify of 513 bytes, 128-byte signature",
            CKR_DATA_LEN_RANGE,
            |c| {
                Ok(c.p11
                    .verify(c.s("s")?, In::Bytes(&[b'A'; 513]), In::Bytes(&[0; 128])))
            },
        ),
        row(713, "C_VerifyInit CKM_RSA_PKCS (again)", CKR_OK, |c| {
            verify_init(c, RSA_PKCS)
        }),
        row(
            714,
            "C_Verify with a 124-byte signature",
            CKR_SIGNATURE_LEN_RANGE,
            |c| {
                let sig = c.blob("auth_sig")?;
                Ok(c.p11
                    .verify(c.s("s")?, In::Bytes(&short_data()), In::Bytes(&sig[..124])))
            },
        ),
        row(
            715,
            "C_Verify after a failed C_Verify",
            CKR_OPERATION_NOT_INITIALIZED,
            |c| {
                let sig = c.blob("auth_sig")?;
                Ok(c.p11.verify(c.s("s")?, In::Bytes(&short_data()), In::Bytes(&sig)))
            },
        ),
        row(716, "C_VerifyInit CKM_RSA_PKCS (again)", CKR_OK, |c| {
            verify_init(c, RSA_PKCS)
        }),
        row(
            717,
            "C_Verify of row 621's signature of a SHA-1 DigestInfo",
            CKR_OK,
            |c| {
                let sig = c.blob("auth_sig")?;
                let di = soft::digest_info_sha1(DOCUMENT);
                Ok(c.p11.verify(c.s("s")?, In::Bytes(&di), In::Bytes(&sig)))
            },
        ),
        setup("new session, signature public key", |c| fresh(c, SIG_CERT)),
        row(
            718,
            "C_VerifyUpdate without C_VerifyInit",
            CKR_OPERATION_NOT_INITIALIZED,
            |c| Ok(c.p11.verify_update(c.s("s")?, In::Bytes(b"testtesttesttest"))),
        ),
        row(
            719,
            "C_VerifyUpdate on an invalid session",
            CKR_SESSION_HANDLE_INVALID,
            |c| Ok(c.p11.verify_update(BAD_SESSION, In::Bytes(b"testtesttesttest"))),
        ),
        row(
            720,
            "C_VerifyInit CKM_SHA1_RSA_PKCS, signature public key",
            CKR_OK,
            |c| verify_init(c, SHA1_RSA_PKCS),
        ),
        row(721, "C_VerifyUpdate(NULL, 16)", CKR_ARGUMENTS_BAD, |c| {
            Ok(c.p11.verify_update(c.s("s")?, In::Null(16)))
        }),
        row(722, "C_VerifyUpdate of 1405 bytes", CKR_OK, update),
        row(723, "C_VerifyUpdate of 1405 bytes again", CKR_OK, update),
    ];
    v.extend(finals());
    v
}

fn finals() -> Vec<Item> {
    vec![
        setup("new session, signature public key", |c| fresh(c, SIG_CERT)),
        row(
            724,
            "C_VerifyFinal without C_VerifyInit",
            CKR_OPERATION_NOT_INITIALIZED,
            |c| Ok(c.p11.verify_final(c.s("s")?, In::Bytes(&[0; 256]))),
        ),
        row(
            725,
            "C_VerifyFinal on an invalid session",
            CKR_SESSION_HANDLE_INVALID,
            |c| Ok(c.p11.verify_final(BAD_SESSION, In::Bytes(&[0; 256]))),
        ),
        row(726, "C_VerifyInit CKM_SHA1_RSA_PKCS", CKR_OK, |c| {
            verify_init(c, SHA1_RSA_PKCS)
        }),
        row(727, "C_VerifyFinal(NULL, 256)", CKR_ARGUMENTS_BAD, |c| {
            Ok(c.p11.verify_final(c.s("s")?, In::Null(256)))
        }),
        row(728, "C_VerifyUpdate of 1405 bytes", CKR_OK, update),
        row(
            729,
            "C_VerifyFinal with a 250-byte signature",
            CKR_SIGNATURE_LEN_RANGE,
            |c| Ok(c.p11.verify_final(c.s("s")?, In::Bytes(&[0; 250]))),
        ),
        row(
            730,
            "C_VerifyFinal after a failed C_VerifyFinal",
            CKR_OPERATION_NOT_INITIALIZED,
            |c| Ok(c.p11.verify_final(c.s("s")?, In::Bytes(&[0; 256]))),
        ),
        row(731, "C_VerifyInit CKM_SHA1_RSA_PKCS (again)", CKR_OK, |c| {
            verify_init(c, SHA1_RSA_PKCS)
        }),
        row(732, "C_VerifyUpdate of 1405 bytes", CKR_OK, update),
        row(733, "C_VerifyFinal of row 635's signature", CKR_OK, |c| {
            let sig = c.blob("sig_1405")?;
            Ok(c.p11.verify_final(c.s("s")?, In::Bytes(&sig)))
        }),
        setup("C_Finalize, C_Initialize, session, signature public key", |c| {
            c.finalize()?;
            c.init()?;
            fresh(c, SIG_CERT)
        }),
        // Rows 638/641 signed raw hashes of "document_to_sign" with CKM_RSA_PKCS: the same
        // signatures as CKM_SHA*_RSA_PKCS of the document (docs/card-spec.md §4.2 "hash off card", §10.9).
        row(734, "C_VerifyInit CKM_SHA1_RSA_PKCS", CKR_OK, |c| {
            verify_init(c, SHA1_RSA_PKCS)
        }),
        row(
            735,
            "C_Verify of row 638's signature of the SHA-1 hash",
            CKR_OK,
            |c| {
                let sig = c.blob("sig_sha1_hash")?;
                Ok(c.p11.verify(c.s("s")?, In::Bytes(DOCUMENT), In::Bytes(&sig)))
            },
        ),
        row(736, "C_VerifyInit CKM_SHA256_RSA_PKCS", CKR_OK, |c| {
            verify_init(c, Mech::of(CKM_SHA256_RSA_PKCS))
        }),
        row(
            737,
            "C_Verify of row 641's signature of the SHA-256 hash",
            CKR_OK,
            |c| {
                let sig = c.blob("sig_sha256_hash")?;
                Ok(c.p11.verify(c.s("s")?, In::Bytes(DOCUMENT), In::Bytes(&sig)))
            },
        ),
        setup("C_CloseAllSessions, C_Finalize", |c| {
            c.close_all()?;
            c.finalize()?;
            Ok(CKR_OK)
        }),
    ]
}
