//! Rows 800–819: software digests (docs/card-spec.md §4.1; `testDigestManagementFunctions` and its
//! `CPSGES_CondenseMessage_1455_*` sequences). Every value is compared with SHA-1/SHA-256
//! computed here.

use cryptoki_sys::*;

use crate::raw::{In, Mech, Out};
use crate::runner::{BAD_SESSION, Ctx, Gen, Item, StepResult, row, setup};
use crate::soft::{self, DOCUMENT};

/// The plan's second message (`DATA2_TO_DIGEST`).
const MESSAGE2: &[u8] = b"VICTOR    1007141750163220748";

const SHA_1: Mech = Mech::of(CKM_SHA_1);

fn init(c: &mut Ctx, m: Mech) -> StepResult {
    Ok(c.p11.digest_init(c.s("s")?, Some(m)))
}

fn size(rv: CK_RV, n: CK_ULONG, want: usize) -> StepResult {
    if rv == CKR_OK && n as usize != want {
        return Err(format!("{n} bytes announced, {want} expected"));
    }
    Ok(rv)
}

fn value(rv: CK_RV, buf: &[u8], n: CK_ULONG, want: &[u8]) -> StepResult {
    if rv == CKR_OK && buf.get(..n as usize) != Some(want) {
        return Err(format!(
            "digest {:02X?}, expected {want:02X?}",
            buf.get(..n as usize)
        ));
    }
    Ok(rv)
}

/// The rows.
pub fn rows(_kind: Gen) -> Vec<Item> {
    vec![
        row(
            800,
            "C_DigestInit before C_Initialize",
            CKR_CRYPTOKI_NOT_INITIALIZED,
            |c| Ok(c.p11.digest_init(BAD_SESSION, Some(SHA_1))),
        ),
        row(
            801,
            "C_Digest before C_Initialize",
            CKR_CRYPTOKI_NOT_INITIALIZED,
            |c| {
                Ok(c.p11
                    .digest(BAD_SESSION, In::Bytes(b"testtesttesttest"), Out::Len(&mut 0)))
            },
        ),
        setup("C_Initialize(NULL)", |c| Ok(c.p11.initialize(None))),
        row(
            802,
            "C_DigestInit on an invalid session",
            CKR_SESSION_HANDLE_INVALID,
            |c| Ok(c.p11.digest_init(BAD_SESSION, Some(SHA_1))),
        ),
        setup("C_OpenSession read-only", |c| c.open("s", false)),
        row(803, "C_DigestInit CKM_SHA_1", CKR_OK, |c| init(c, SHA_1)),
        row(804, "C_Digest, size", CKR_OK, |c| {
            let mut n = 0;
            let rv = c.p11.digest(c.s("s")?, In::Bytes(DOCUMENT), Out::Len(&mut n));
            size(rv, n, 20)
        }),
        row(805, "C_Digest, value", CKR_OK, |c| {
            let (mut buf, mut n) = ([0u8; 20], 20);
            let rv = c
                .p11
                .digest(c.s("s")?, In::Bytes(DOCUMENT), Out::Buf(&mut buf, &mut n));
            value(rv, &buf, n, &soft::sha1(DOCUMENT))
        }),
        row(806, "C_DigestInit CKM_SHA256", CKR_OK, |c| {
            init(c, Mech::of(CKM_SHA256))
        }),
        row(807, "C_DigestUpdate", CKR_OK, |c| {
            Ok(c.p11.digest_update(c.s("s")?, In::Bytes(MESSAGE2)))
        }),
        row(808, "C_DigestFinal, size", CKR_OK, |c| {
            let mut n = 0;
            let rv = c.p11.digest_final(c.s("s")?, Out::Len(&mut n));
            size(rv, n, 32)
        }),
        row(809, "C_DigestFinal, value", CKR_OK, |c| {
            let (mut buf, mut n) = ([0u8; 32], 32);
            let rv = c.p11.digest_final(c.s("s")?, Out::Buf(&mut buf, &mut n));
            value(rv, &buf, n, &soft::sha256(MESSAGE2))
        }),
        // 1455_01, the "non-standard" sequence: C_Digest size query, then C_DigestFinal. The
        // size query leaves the operation active (PKCS#11 §5.2); nothing was fed with
        // C_DigestUpdate, so the final digest is of the empty message.
        row(
            810,
            "C_DigestInit CKM_SHA_1 (non-standard sequence)",
            CKR_OK,
            |c| init(c, SHA_1),
        ),
        row(811, "C_Digest, size (non-standard sequence)", CKR_OK, |c| {
            let mut n = 0;
            let rv = c.p11.digest(c.s("s")?, In::Bytes(DOCUMENT), Out::Len(&mut n));
            size(rv, n, 20)
        }),
        row(812, "C_DigestFinal after a C_Digest size query", CKR_OK, |c| {
            let (mut buf, mut n) = ([0u8; 20], 20);
            let rv = c.p11.digest_final(c.s("s")?, Out::Buf(&mut buf, &mut n));
            value(rv, &buf, n, &soft::sha1(b""))
        }),
        // 1455_03: update and final into a 128-byte buffer.
        row(813, "C_DigestInit CKM_SHA_1 (128-byte buffer)", CKR_OK, |c| {
            init(c, SHA_1)
        }),
        row(814, "C_DigestUpdate (128-byte buffer)", CKR_OK, |c| {
            Ok(c.p11.digest_update(c.s("s")?, In::Bytes(DOCUMENT)))
        }),
        row(815, "C_DigestFinal into 128 bytes", CKR_OK, |c| {
            let (mut buf, mut n) = ([0u8; 128], 128);
            let rv = c.p11.digest_final(c.s("s")?, Out::Buf(&mut buf, &mut n));
            value(rv, &buf, n, &soft::sha1(DOCUMENT))
        }),
        // 1455_04: single part into a 128-byte buffer.
        row(816, "C_DigestInit CKM_SHA_1 (128-byte buffer)", CKR_OK, |c| {
            init(c, SHA_1)
        }),
        row(817, "C_Digest into 128 bytes", CKR_OK, |c| {
            let (mut buf, mut n) = ([0u8; 128], 128);
            let rv = c
                .p11
                .digest(c.s("s")?, In::Bytes(DOCUMENT), Out::Buf(&mut buf, &mut n));
            value(rv, &buf, n, &soft::sha1(DOCUMENT))
        }),
        // 1455_05: a buffer of 20 - 2 bytes.
        row(818, "C_DigestInit CKM_SHA_1 (18-byte buffer)", CKR_OK, |c| {
            init(c, SHA_1)
        }),
        row(819, "C_Digest into 18 bytes", CKR_BUFFER_TOO_SMALL, |c| {
            let (mut buf, mut n) = ([0u8; 128], 18);
            let rv = c
                .p11
                .digest(c.s("s")?, In::Bytes(DOCUMENT), Out::Buf(&mut buf, &mut n));
            if rv == CKR_BUFFER_TOO_SMALL && n != 20 {
                return Err(format!("{n} bytes said needed"));
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
