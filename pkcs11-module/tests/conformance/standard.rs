//! Rows 1400–1425: return codes the PKCS#11 2.40 §5 lists require where the official plan is
//! silent (issue 14): the legacy parallel-function calls, a seed for the card's generator, a
//! ciphertext the card refuses, a parameter given to a mechanism that takes none, single- and
//! multi-part calls mixed in one operation, the operations a failed call ends, and C_Verify
//! agreeing with C_Sign on a bare hash given to the signature key, and the application's mutex
//! callbacks used when it asks for them (C_Initialize case 3), and handles never named twice
//! across C_Finalize and C_Initialize. Each row but
//! 1407 failed on the module before issue 14 (CKR_FUNCTION_NOT_SUPPORTED for the first two,
//! CKR_DATA_INVALID, CKR_OK with the parameter ignored or the parts concatenated, and
//! operations still active after CKR_ARGUMENTS_BAD).

use cryptoki_sys::*;

use crate::raw::{In, InitArgs, Mech, Out, app_mutex};
use crate::runner::{AUTH_CERT, BAD_SESSION, Ctx, Gen, Item, PIN, SIG_CERT, StepResult, row, setup};
use crate::soft::{self, Hash};

const RSA_PKCS: Mech = Mech::of(CKM_RSA_PKCS);
const SHA256: Mech = Mech::of(CKM_SHA256);

/// `first` must answer CKR_OK (the set-up of a row); then the row's own call.
fn after(first: CK_RV, what: &str, then: impl FnOnce() -> CK_RV) -> StepResult {
    if first != CKR_OK {
        return Err(format!("{what}: 0x{first:08X}"));
    }
    Ok(then())
}

fn digest_started(c: &Ctx) -> Result<CK_SESSION_HANDLE, String> {
    let h = c.s("s")?;
    let rv = c.p11.digest_init(h, Some(SHA256));
    after(rv, "C_DigestInit", || CKR_OK)?;
    Ok(h)
}

/// The rows.
pub fn rows(kind: Gen) -> Vec<Item> {
    let mut v = vec![
        setup("C_Initialize(NULL)", |c| Ok(c.p11.initialize(None))),
        setup("C_OpenSession read-only", |c| c.open("s", false)),
        // §5.14: a token whose generator takes no seed.
        row(
            1400,
            "C_SeedRandom, 8 bytes",
            CKR_RANDOM_SEED_NOT_SUPPORTED,
            |c| Ok(c.p11.seed_random(c.s("s")?, In::Bytes(&[0x5A; 8]))),
        ),
        row(
            1401,
            "C_SeedRandom on an invalid session",
            CKR_SESSION_HANDLE_INVALID,
            |c| Ok(c.p11.seed_random(BAD_SESSION, In::Bytes(&[0x5A; 8]))),
        ),
        // §5.16: legacy functions of a library that never runs a function in parallel.
        row(1402, "C_GetFunctionStatus", CKR_FUNCTION_NOT_PARALLEL, |c| {
            Ok(c.p11.get_function_status(c.s("s")?))
        }),
        row(1403, "C_CancelFunction", CKR_FUNCTION_NOT_PARALLEL, |c| {
            Ok(c.p11.cancel_function(c.s("s")?))
        }),
        row(
            1404,
            "C_GetFunctionStatus on an invalid session",
            CKR_SESSION_HANDLE_INVALID,
            |c| Ok(c.p11.get_function_status(BAD_SESSION)),
        ),
        // A parameter the mechanism does not take is not silently ignored.
        row(
            1410,
            "C_DigestInit CKM_SHA256 with an 8-byte parameter",
            CKR_MECHANISM_PARAM_INVALID,
            |c| {
                Ok(c.p11
                    .digest_init(c.s("s")?, Some(Mech::with_garbage(CKM_SHA256, false, 8))))
            },
        ),
        // §5.10: C_Digest "must be called after C_DigestInit without intervening
        // C_DigestUpdate calls": the mix ends the operation, nothing is hashed.
        row(
            1413,
            "C_Digest after C_DigestUpdate",
            CKR_OPERATION_NOT_INITIALIZED,
            |c| {
                let h = digest_started(c)?;
                let up = c.p11.digest_update(h, In::Bytes(b"abc"));
                after(up, "C_DigestUpdate", || {
                    let (mut out, mut n) = ([0u8; 32], 32);
                    c.p11.digest(h, In::Bytes(b"def"), Out::Buf(&mut out, &mut n))
                })
            },
        ),
        row(
            1414,
            "C_DigestFinal after the mix",
            CKR_OPERATION_NOT_INITIALIZED,
            |c| {
                let (mut out, mut n) = ([0u8; 32], 32);
                Ok(c.p11.digest_final(c.s("s")?, Out::Buf(&mut out, &mut n)))
            },
        ),
        // §5.10: a C_DigestUpdate that fails, CKR_ARGUMENTS_BAD included, ends the operation.
        row(1415, "C_DigestUpdate with a NULL part", CKR_ARGUMENTS_BAD, |c| {
            let h = digest_started(c)?;
            Ok(c.p11.digest_update(h, In::Null(3)))
        }),
        row(
            1416,
            "C_DigestFinal after the failed C_DigestUpdate",
            CKR_OPERATION_NOT_INITIALIZED,
            |c| {
                let (mut out, mut n) = ([0u8; 32], 32);
                Ok(c.p11.digest_final(c.s("s")?, Out::Buf(&mut out, &mut n)))
            },
        ),
    ];
    if kind != Gen::Cl {
        // §5.9: C_Decrypt's list has CKR_ENCRYPTED_DATA_INVALID, not CKR_DATA_INVALID, for a
        // ciphertext the card refuses (6A80: the padding does not decode).
        let refused = |id: u32, what: &'static str, byte: u8| {
            row(id, what, CKR_ENCRYPTED_DATA_INVALID, move |c| {
                let h = c.s("s")?;
                let key = c.o("auth_key")?;
                let init = c.p11.decrypt_init(h, Some(RSA_PKCS), key);
                if init != CKR_OK {
                    return Err(format!("C_DecryptInit: 0x{init:08X}"));
                }
                let mut out = [0u8; 256];
                let mut n = 256;
                Ok(c.p11
                    .decrypt(h, In::Bytes(&[byte; 256]), Out::Buf(&mut out, &mut n)))
            })
        };
        v.extend([
            setup("C_Login", |c| {
                Ok(c.p11.login(c.s("s")?, CKU_USER, In::Bytes(PIN)))
            }),
            setup("find the authentication private key", |c| {
                let k = c.key_of_cert("s", AUTH_CERT, CKO_PRIVATE_KEY)?;
                c.objects.insert("auth_key", k);
                Ok(CKR_OK)
            }),
            row(
                1411,
                "C_SignInit CKM_RSA_PKCS with an 8-byte parameter",
                CKR_MECHANISM_PARAM_INVALID,
                |c| {
                    let m = Mech::with_garbage(CKM_RSA_PKCS, false, 8);
                    Ok(c.p11.sign_init(c.s("s")?, Some(m), c.o("auth_key")?))
                },
            ),
            row(
                1412,
                "C_SignInit CKM_RSA_PKCS, parameter NULL with length 100",
                CKR_MECHANISM_PARAM_INVALID,
                |c| {
                    let m = Mech::with_garbage(CKM_RSA_PKCS, true, 100);
                    Ok(c.p11.sign_init(c.s("s")?, Some(m), c.o("auth_key")?))
                },
            ),
            // §5.12: C_Sign after C_SignUpdate signs nothing (and ends the operation).
            row(
                1417,
                "C_Sign after C_SignUpdate (CKM_RSA_PKCS)",
                CKR_OPERATION_NOT_INITIALIZED,
                |c| {
                    let h = c.s("s")?;
                    let init = c.p11.sign_init(h, Some(RSA_PKCS), c.o("auth_key")?);
                    after(init, "C_SignInit", || CKR_OK)?;
                    let up = c.p11.sign_update(h, In::Bytes(&[0x11; 16]));
                    after(up, "C_SignUpdate", || {
                        let (mut out, mut n) = ([0u8; 512], 512);
                        c.p11.sign(h, In::Bytes(&[0x22; 16]), Out::Buf(&mut out, &mut n))
                    })
                },
            ),
            row(
                1418,
                "C_SignFinal after the mix",
                CKR_OPERATION_NOT_INITIALIZED,
                |c| {
                    let (mut out, mut n) = ([0u8; 512], 512);
                    Ok(c.p11.sign_final(c.s("s")?, Out::Buf(&mut out, &mut n)))
                },
            ),
            // §5.9: a C_Decrypt that fails, CKR_ARGUMENTS_BAD included, ends the operation.
            row(
                1419,
                "C_Decrypt with pEncryptedData NULL",
                CKR_ARGUMENTS_BAD,
                |c| {
                    let h = c.s("s")?;
                    let init = c.p11.decrypt_init(h, Some(RSA_PKCS), c.o("auth_key")?);
                    after(init, "C_DecryptInit", || {
                        let (mut out, mut n) = ([0u8; 256], 256);
                        c.p11.decrypt(h, In::Null(256), Out::Buf(&mut out, &mut n))
                    })
                },
            ),
            row(
                1420,
                "C_Decrypt after the failed C_Decrypt",
                CKR_OPERATION_NOT_INITIALIZED,
                |c| {
                    let (mut out, mut n) = ([0u8; 256], 256);
                    Ok(c.p11
                        .decrypt(c.s("s")?, In::Bytes(&[0; 256]), Out::Buf(&mut out, &mut n)))
                },
            ),
            // The signature key signs a bare hash as its DigestInfo (docs/card-spec.md §4.2): C_Verify on the
            // same data with the same mechanism must say so too.
            row(
                1421,
                "C_Verify CKM_RSA_PKCS, signature key, of a bare SHA-256 hash C_Sign signed",
                CKR_OK,
                sign_then_verify_bare_hash,
            ),
            refused(1405, "C_Decrypt of 256 bytes 00", 0x00),
            refused(1406, "C_Decrypt of 256 bytes FF", 0xFF),
            // A C_Decrypt that fails other than for the buffer ends the operation (§5.9).
            row(
                1407,
                "C_Decrypt after a refused ciphertext",
                CKR_OPERATION_NOT_INITIALIZED,
                |c| {
                    let mut n = 0;
                    Ok(c.p11.decrypt(c.s("s")?, In::Bytes(&[0; 256]), Out::Len(&mut n)))
                },
            ),
        ]);
    }
    v.extend([
        setup("C_CloseAllSessions, C_Finalize", |c| {
            c.close_all()?;
            c.finalize()?;
            Ok(CKR_OK)
        }),
        row(
            1408,
            "C_GetFunctionStatus before C_Initialize",
            CKR_CRYPTOKI_NOT_INITIALIZED,
            |c| Ok(c.p11.get_function_status(BAD_SESSION)),
        ),
        row(
            1409,
            "C_SeedRandom before C_Initialize",
            CKR_CRYPTOKI_NOT_INITIALIZED,
            |c| Ok(c.p11.seed_random(BAD_SESSION, In::Bytes(&[0x5A; 8]))),
        ),
        // §5.4 case 3: four callbacks, no CKF_OS_LOCKING_OK: "the library [must] use the
        // supplied function pointers for mutex-handling".
        row(
            1422,
            "C_Initialize case 3: calls lock and unlock the application's mutex",
            CKR_OK,
            |c| {
                let before = app_mutex::counts();
                let init = c.p11.initialize(Some(InitArgs {
                    callbacks: [true; 4],
                    flags: 0,
                }));
                after(init, "C_Initialize", || CKR_OK)?;
                let slots = c.slots(false)?;
                let rv = c.p11.get_info(Some(&mut crate::raw::blank()));
                let [creates, _, locks, unlocks] = app_mutex::counts();
                if creates != before[0] + 1 || locks < before[2] + 2 || locks - before[2] != unlocks - before[3] {
                    return Err(format!(
                        "callback calls {:?} after {:?} ({} slots): one CreateMutex and a lock and unlock per call expected",
                        app_mutex::counts(),
                        before,
                        slots.len()
                    ));
                }
                if app_mutex::held() {
                    return Err("the mutex is still held between calls".into());
                }
                Ok(rv)
            },
        ),
        row(1423, "C_Finalize destroys the application's mutex", CKR_OK, |c| {
            let before = app_mutex::counts();
            let rv = c.p11.finalize();
            let now = app_mutex::counts();
            if rv == CKR_OK && (now[1] != before[1] + 1 || now[2] - before[2] != now[3] - before[3]) {
                return Err(format!("callback calls {now:?} after {before:?}"));
            }
            Ok(rv)
        }),
        // Case 4: callbacks and CKF_OS_LOCKING_OK: the module's native locks, callbacks unused.
        row(
            1424,
            "C_Initialize case 4: the callbacks are not called",
            CKR_OK,
            |c| {
                let before = app_mutex::counts();
                let init = c.p11.initialize(Some(InitArgs {
                    callbacks: [true; 4],
                    flags: CKF_OS_LOCKING_OK,
                }));
                after(init, "C_Initialize", || CKR_OK)?;
                c.slots(false)?;
                let rv = c.p11.finalize();
                if app_mutex::counts() != before {
                    return Err(format!("callback calls {:?} after {before:?}", app_mutex::counts()));
                }
                Ok(rv)
            },
        ),
        // Handles are never reused, across C_Finalize + C_Initialize too: a stale handle an
        // application kept must not name a new session or object.
        row(
            1425,
            "After C_Finalize + C_Initialize, the old session and object handles are invalid",
            CKR_OK,
            handles_not_reused,
        ),
    ]);
    v
}

/// Row 1421: C_Sign and C_Verify with CKM_RSA_PKCS and the signature key's pair over a bare
/// SHA-256 hash; the signature checked in software as PKCS#1 v1.5 of its DigestInfo.
fn sign_then_verify_bare_hash(c: &mut Ctx) -> StepResult {
    let h = c.s("s")?;
    let private = c.key_of_cert("s", SIG_CERT, CKO_PRIVATE_KEY)?;
    let public = c.key_of_cert("s", SIG_CERT, CKO_PUBLIC_KEY)?;
    let hash = soft::sha256(soft::DOCUMENT);
    let init = c.p11.sign_init(h, Some(RSA_PKCS), private);
    after(init, "C_SignInit", || CKR_OK)?;
    let (mut sig, mut n) = ([0u8; 512], 512);
    let signed = c.p11.sign(h, In::Bytes(&hash), Out::Buf(&mut sig, &mut n));
    after(signed, "C_Sign", || CKR_OK)?;
    let sig = &sig[..n as usize];
    soft::check_hash(&c.cert_key("s", SIG_CERT)?, Hash::Sha256, &hash, sig)?;
    let init = c.p11.verify_init(h, Some(RSA_PKCS), public);
    after(init, "C_VerifyInit", || {
        c.p11.verify(h, In::Bytes(&hash), In::Bytes(sig))
    })
}

/// Row 1425: a session and the objects it lists, C_Finalize, C_Initialize, the same again: no
/// handle comes back, and the old ones are refused.
fn handles_not_reused(c: &mut Ctx) -> StepResult {
    let all = |c: &mut Ctx| -> Result<(CK_SESSION_HANDLE, Vec<CK_OBJECT_HANDLE>), String> {
        after(c.p11.initialize(None), "C_Initialize", || CKR_OK)?;
        after(c.open("h", false)?, "C_OpenSession", || CKR_OK)?;
        Ok((c.s("h")?, c.find("h", &[])?))
    };
    let (old_session, old_objects) = all(c)?;
    c.close_all()?;
    c.finalize()?;
    let (session, objects) = all(c)?;
    let reused: Vec<_> = objects.iter().filter(|o| old_objects.contains(o)).collect();
    let Some(&old_object) = old_objects.first() else {
        return Err("no object listed".into());
    };
    if session == old_session || !reused.is_empty() || objects.is_empty() {
        return Err(format!(
            "session {old_session} then {session}; objects {old_objects:?} then {objects:?}"
        ));
    }
    let stale = c
        .p11
        .get_session_info(old_session, Some(&mut crate::raw::blank()));
    let mut class = [crate::raw::Attr::size_of(CKA_CLASS)];
    let stale_object = c.p11.get_attribute_value(session, old_object, &mut class);
    c.close_all()?;
    c.finalize()?;
    if stale != CKR_SESSION_HANDLE_INVALID || stale_object != CKR_OBJECT_HANDLE_INVALID {
        return Err(format!(
            "old session: 0x{stale:08X}, old object: 0x{stale_object:08X} (SESSION/OBJECT_HANDLE_INVALID expected)"
        ));
    }
    Ok(CKR_OK)
}
