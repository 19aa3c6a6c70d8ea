//! The return codes PKCS#11 2.40 (base specification, §5) lists for each function, as data, and
//! the module's known deviations from them (issue 14).
//!
//! A code is allowed for a function when it is in the function's own list, in the universal
//! list (§5.1: any function may return CKR_GENERAL_ERROR, CKR_HOST_MEMORY, CKR_FUNCTION_FAILED,
//! CKR_OK), or in the list of its kind of call (§5.1: a call on a session may also return
//! CKR_SESSION_HANDLE_INVALID, CKR_DEVICE_REMOVED, CKR_SESSION_CLOSED; a call that uses a token
//! CKR_DEVICE_MEMORY, CKR_DEVICE_ERROR, CKR_TOKEN_NOT_PRESENT, CKR_DEVICE_REMOVED). Every function
//! with a pointer argument may return CKR_ARGUMENTS_BAD (§5.1, "rather generic error code"; the
//! §5 lists of the functions without one, [`NO_POINTER`], do not have it).
//!
//! Shared by the tests: `common::rv_lists` for those that `mod common;` (issue 14's §5 table
//! test), and the C ABI fuzz harness (tests/c_abi_fuzz, also the cargo-fuzz target
//! `pkcs11_calls`), which checks every code it observes against it.
#![allow(dead_code)]

use cryptoki_sys::*;

/// How a function is called, for the codes §5.1 adds to its list.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    /// No session, no token (C_Initialize, C_GetInfo, C_GetSlotList...).
    General,
    /// On a slot's token, without a session.
    Token,
    /// On a session (and its token).
    Session,
}

/// §5.1: any function.
pub const UNIVERSAL: &[CK_RV] = &[CKR_GENERAL_ERROR, CKR_HOST_MEMORY, CKR_FUNCTION_FAILED, CKR_OK];
/// §5.1: functions that use a session handle.
pub const SESSION: &[CK_RV] = &[CKR_SESSION_HANDLE_INVALID, CKR_DEVICE_REMOVED, CKR_SESSION_CLOSED];
/// §5.1: functions that use a token.
pub const TOKEN: &[CK_RV] = &[
    CKR_DEVICE_MEMORY,
    CKR_DEVICE_ERROR,
    CKR_TOKEN_NOT_PRESENT,
    CKR_DEVICE_REMOVED,
];

const CNI: CK_RV = CKR_CRYPTOKI_NOT_INITIALIZED;

/// Function name → its kind and the codes of its own §5 list.
pub const TABLE: &[(&str, Kind, &[CK_RV])] = &[
    // §5.4 general-purpose functions
    (
        "C_Initialize",
        Kind::General,
        &[
            CKR_CANT_LOCK,
            CKR_CRYPTOKI_ALREADY_INITIALIZED,
            CKR_NEED_TO_CREATE_THREADS,
        ],
    ),
    ("C_Finalize", Kind::General, &[CNI]),
    ("C_GetInfo", Kind::General, &[CNI]),
    ("C_GetFunctionList", Kind::General, &[]),
    // §5.5 slot and token management
    ("C_GetSlotList", Kind::General, &[CKR_BUFFER_TOO_SMALL, CNI]),
    (
        "C_GetSlotInfo",
        Kind::General,
        &[CNI, CKR_DEVICE_ERROR, CKR_SLOT_ID_INVALID],
    ),
    (
        "C_GetTokenInfo",
        Kind::Token,
        &[CNI, CKR_SLOT_ID_INVALID, CKR_TOKEN_NOT_RECOGNIZED],
    ),
    ("C_WaitForSlotEvent", Kind::General, &[CNI, CKR_NO_EVENT]),
    (
        "C_GetMechanismList",
        Kind::Token,
        &[
            CKR_BUFFER_TOO_SMALL,
            CNI,
            CKR_SLOT_ID_INVALID,
            CKR_TOKEN_NOT_RECOGNIZED,
        ],
    ),
    (
        "C_GetMechanismInfo",
        Kind::Token,
        &[
            CNI,
            CKR_MECHANISM_INVALID,
            CKR_SLOT_ID_INVALID,
            CKR_TOKEN_NOT_RECOGNIZED,
        ],
    ),
    (
        "C_InitPIN",
        Kind::Session,
        &[
            CNI,
            CKR_FUNCTION_CANCELED,
            CKR_PIN_INVALID,
            CKR_PIN_LEN_RANGE,
            CKR_SESSION_READ_ONLY,
            CKR_TOKEN_WRITE_PROTECTED,
            CKR_USER_NOT_LOGGED_IN,
        ],
    ),
    (
        "C_SetPIN",
        Kind::Session,
        &[
            CNI,
            CKR_FUNCTION_CANCELED,
            CKR_PIN_INCORRECT,
            CKR_PIN_INVALID,
            CKR_PIN_LEN_RANGE,
            CKR_PIN_LOCKED,
            CKR_SESSION_READ_ONLY,
            CKR_TOKEN_WRITE_PROTECTED,
        ],
    ),
    // §5.6 session management
    (
        "C_OpenSession",
        Kind::Token,
        &[
            CNI,
            CKR_SESSION_COUNT,
            CKR_SESSION_PARALLEL_NOT_SUPPORTED,
            CKR_SESSION_READ_WRITE_SO_EXISTS,
            CKR_SLOT_ID_INVALID,
            CKR_TOKEN_NOT_RECOGNIZED,
            CKR_TOKEN_WRITE_PROTECTED,
        ],
    ),
    ("C_CloseSession", Kind::Session, &[CNI]),
    ("C_CloseAllSessions", Kind::Token, &[CNI, CKR_SLOT_ID_INVALID]),
    ("C_GetSessionInfo", Kind::Session, &[CNI]),
    (
        "C_Login",
        Kind::Session,
        &[
            CNI,
            CKR_FUNCTION_CANCELED,
            CKR_OPERATION_NOT_INITIALIZED,
            CKR_PIN_INCORRECT,
            CKR_PIN_LOCKED,
            CKR_SESSION_READ_ONLY_EXISTS,
            CKR_USER_ALREADY_LOGGED_IN,
            CKR_USER_ANOTHER_ALREADY_LOGGED_IN,
            CKR_USER_PIN_NOT_INITIALIZED,
            CKR_USER_TOO_MANY_TYPES,
            CKR_USER_TYPE_INVALID,
        ],
    ),
    ("C_Logout", Kind::Session, &[CNI, CKR_USER_NOT_LOGGED_IN]),
    // §5.7 object management
    (
        "C_GetAttributeValue",
        Kind::Session,
        &[
            CKR_ATTRIBUTE_SENSITIVE,
            CKR_ATTRIBUTE_TYPE_INVALID,
            CKR_BUFFER_TOO_SMALL,
            CNI,
            CKR_OBJECT_HANDLE_INVALID,
        ],
    ),
    (
        "C_SetAttributeValue",
        Kind::Session,
        &[
            CKR_ACTION_PROHIBITED,
            CKR_ATTRIBUTE_READ_ONLY,
            CKR_ATTRIBUTE_TYPE_INVALID,
            CKR_ATTRIBUTE_VALUE_INVALID,
            CNI,
            CKR_OBJECT_HANDLE_INVALID,
            CKR_SESSION_READ_ONLY,
            CKR_TEMPLATE_INCONSISTENT,
            CKR_TOKEN_WRITE_PROTECTED,
            CKR_USER_NOT_LOGGED_IN,
        ],
    ),
    (
        "C_FindObjectsInit",
        Kind::Session,
        &[
            CKR_ATTRIBUTE_TYPE_INVALID,
            CKR_ATTRIBUTE_VALUE_INVALID,
            CNI,
            CKR_OPERATION_ACTIVE,
        ],
    ),
    (
        "C_FindObjects",
        Kind::Session,
        &[CNI, CKR_OPERATION_NOT_INITIALIZED],
    ),
    (
        "C_FindObjectsFinal",
        Kind::Session,
        &[CNI, CKR_OPERATION_NOT_INITIALIZED],
    ),
    // §5.8–§5.13 cryptographic functions
    ("C_EncryptInit", Kind::Session, INIT),
    (
        "C_Encrypt",
        Kind::Session,
        &[
            CKR_BUFFER_TOO_SMALL,
            CNI,
            CKR_DATA_INVALID,
            CKR_DATA_LEN_RANGE,
            CKR_FUNCTION_CANCELED,
            CKR_OPERATION_NOT_INITIALIZED,
        ],
    ),
    ("C_DecryptInit", Kind::Session, INIT),
    (
        "C_Decrypt",
        Kind::Session,
        &[
            CKR_BUFFER_TOO_SMALL,
            CNI,
            CKR_ENCRYPTED_DATA_INVALID,
            CKR_ENCRYPTED_DATA_LEN_RANGE,
            CKR_FUNCTION_CANCELED,
            CKR_OPERATION_NOT_INITIALIZED,
            CKR_USER_NOT_LOGGED_IN,
        ],
    ),
    (
        "C_DigestInit",
        Kind::Session,
        &[
            CNI,
            CKR_FUNCTION_CANCELED,
            CKR_MECHANISM_INVALID,
            CKR_MECHANISM_PARAM_INVALID,
            CKR_OPERATION_ACTIVE,
            CKR_USER_NOT_LOGGED_IN,
        ],
    ),
    (
        "C_Digest",
        Kind::Session,
        &[
            CKR_BUFFER_TOO_SMALL,
            CNI,
            CKR_DATA_LEN_RANGE,
            CKR_FUNCTION_CANCELED,
            CKR_OPERATION_NOT_INITIALIZED,
        ],
    ),
    (
        "C_DigestUpdate",
        Kind::Session,
        &[CNI, CKR_FUNCTION_CANCELED, CKR_OPERATION_NOT_INITIALIZED],
    ),
    (
        "C_DigestFinal",
        Kind::Session,
        &[
            CKR_BUFFER_TOO_SMALL,
            CNI,
            CKR_FUNCTION_CANCELED,
            CKR_OPERATION_NOT_INITIALIZED,
        ],
    ),
    ("C_SignInit", Kind::Session, INIT),
    (
        "C_Sign",
        Kind::Session,
        &[
            CKR_BUFFER_TOO_SMALL,
            CNI,
            CKR_DATA_INVALID,
            CKR_DATA_LEN_RANGE,
            CKR_FUNCTION_CANCELED,
            CKR_OPERATION_NOT_INITIALIZED,
            CKR_USER_NOT_LOGGED_IN,
            CKR_FUNCTION_REJECTED,
            CKR_TOKEN_RESOURCE_EXCEEDED,
        ],
    ),
    (
        "C_SignUpdate",
        Kind::Session,
        &[
            CNI,
            CKR_DATA_LEN_RANGE,
            CKR_FUNCTION_CANCELED,
            CKR_OPERATION_NOT_INITIALIZED,
            CKR_USER_NOT_LOGGED_IN,
            CKR_TOKEN_RESOURCE_EXCEEDED,
        ],
    ),
    (
        "C_SignFinal",
        Kind::Session,
        &[
            CKR_BUFFER_TOO_SMALL,
            CNI,
            CKR_DATA_LEN_RANGE,
            CKR_FUNCTION_CANCELED,
            CKR_OPERATION_NOT_INITIALIZED,
            CKR_USER_NOT_LOGGED_IN,
            CKR_FUNCTION_REJECTED,
            CKR_TOKEN_RESOURCE_EXCEEDED,
        ],
    ),
    ("C_VerifyInit", Kind::Session, INIT),
    (
        "C_Verify",
        Kind::Session,
        &[
            CNI,
            CKR_DATA_INVALID,
            CKR_DATA_LEN_RANGE,
            CKR_FUNCTION_CANCELED,
            CKR_OPERATION_NOT_INITIALIZED,
            CKR_SIGNATURE_INVALID,
            CKR_SIGNATURE_LEN_RANGE,
            CKR_TOKEN_RESOURCE_EXCEEDED,
        ],
    ),
    // §5.13: C_VerifyUpdate and C_VerifyFinal.
    (
        "C_VerifyUpdate",
        Kind::Session,
        &[
            CNI,
            CKR_DATA_LEN_RANGE,
            CKR_FUNCTION_CANCELED,
            CKR_OPERATION_NOT_INITIALIZED,
            CKR_TOKEN_RESOURCE_EXCEEDED,
        ],
    ),
    (
        "C_VerifyFinal",
        Kind::Session,
        &[
            CNI,
            CKR_DATA_LEN_RANGE,
            CKR_FUNCTION_CANCELED,
            CKR_OPERATION_NOT_INITIALIZED,
            CKR_SIGNATURE_INVALID,
            CKR_SIGNATURE_LEN_RANGE,
            CKR_TOKEN_RESOURCE_EXCEEDED,
        ],
    ),
    // §5.14 random number generation
    (
        "C_SeedRandom",
        Kind::Session,
        &[
            CNI,
            CKR_FUNCTION_CANCELED,
            CKR_OPERATION_ACTIVE,
            CKR_RANDOM_SEED_NOT_SUPPORTED,
            CKR_RANDOM_NO_RNG,
            CKR_USER_NOT_LOGGED_IN,
        ],
    ),
    (
        "C_GenerateRandom",
        Kind::Session,
        &[
            CNI,
            CKR_FUNCTION_CANCELED,
            CKR_OPERATION_ACTIVE,
            CKR_RANDOM_NO_RNG,
            CKR_USER_NOT_LOGGED_IN,
        ],
    ),
    // §5.15 parallel function management (legacy): always CKR_FUNCTION_NOT_PARALLEL.
    (
        "C_GetFunctionStatus",
        Kind::Session,
        &[CNI, CKR_FUNCTION_NOT_PARALLEL],
    ),
    (
        "C_CancelFunction",
        Kind::Session,
        &[CNI, CKR_FUNCTION_NOT_PARALLEL],
    ),
];

/// §5.8–§5.11: C_EncryptInit, C_DecryptInit, C_SignInit, C_VerifyInit.
const INIT: &[CK_RV] = &[
    CNI,
    CKR_FUNCTION_CANCELED,
    CKR_KEY_FUNCTION_NOT_PERMITTED,
    CKR_KEY_HANDLE_INVALID,
    CKR_KEY_SIZE_RANGE,
    CKR_KEY_TYPE_INCONSISTENT,
    CKR_MECHANISM_INVALID,
    CKR_MECHANISM_PARAM_INVALID,
    CKR_OPERATION_ACTIVE,
    CKR_PIN_EXPIRED,
    CKR_USER_NOT_LOGGED_IN,
];

/// Codes the module returns outside a function's list on purpose, each with its reason: allowed
/// here so that the fuzzer hunts for new ones. Issue 14 fixed the others (C_Decrypt's
/// CKR_DATA_INVALID, the legacy parallel functions, C_SeedRandom, C_SetPIN's two codes).
pub const KNOWN_DEVIATIONS: &[(&str, CK_RV, &str)] = &[
    // Deliberate: a bad key handle to C_DecryptInit is CKR_OBJECT_HANDLE_INVALID, as the official
    // module answers and its conformance plan expects (src/crypto.rs `decrypt_init`, "docs/card-spec.md §6.1
    // row 503"); §5.9 lists CKR_KEY_HANDLE_INVALID. Found by the pkcs11_calls fuzz target; kept
    // for the official plan (a drop-in answers what the official module answers).
    (
        "C_DecryptInit",
        CKR_OBJECT_HANDLE_INVALID,
        "official module's code for a bad key handle (crypto.rs decrypt_init)",
    ),
];

/// The functions without a pointer argument: §5 does not list CKR_ARGUMENTS_BAD for them.
pub const NO_POINTER: &[&str] = &[
    "C_CloseSession",
    "C_CloseAllSessions",
    "C_Logout",
    "C_FindObjectsFinal",
    "C_GetFunctionStatus",
    "C_CancelFunction",
];

/// The functions the module does not implement: their stub answers CKR_FUNCTION_NOT_SUPPORTED
/// (§5.1: "even unsupported functions … should have a stub … [that] should simply return"
/// it), whatever its arguments (src/ffi/lists.rs).
pub const NOT_IMPLEMENTED: &[&str] = &[
    "C_InitToken",
    "C_GetOperationState",
    "C_SetOperationState",
    "C_CreateObject",
    "C_CopyObject",
    "C_DestroyObject",
    "C_GetObjectSize",
    "C_EncryptUpdate",
    "C_EncryptFinal",
    "C_DecryptUpdate",
    "C_DecryptFinal",
    "C_DigestKey",
    "C_SignRecoverInit",
    "C_SignRecover",
    "C_VerifyRecoverInit",
    "C_VerifyRecover",
    "C_DigestEncryptUpdate",
    "C_DecryptDigestUpdate",
    "C_SignEncryptUpdate",
    "C_DecryptVerifyUpdate",
    "C_GenerateKey",
    "C_GenerateKeyPair",
    "C_WrapKey",
    "C_UnwrapKey",
    "C_DeriveKey",
];

/// Whether PKCS#11 2.40 §5 allows `rv` from `function` (a function missing from [`TABLE`] is
/// allowed nothing but the universal codes, and CKR_FUNCTION_NOT_SUPPORTED when it is one of
/// the [`NOT_IMPLEMENTED`]).
pub fn allowed(function: &str, rv: CK_RV) -> bool {
    if UNIVERSAL.contains(&rv) || (rv == CKR_ARGUMENTS_BAD && !NO_POINTER.contains(&function)) {
        return true;
    }
    if rv == CKR_FUNCTION_NOT_SUPPORTED && NOT_IMPLEMENTED.contains(&function) {
        return true;
    }
    let Some((_, kind, own)) = TABLE.iter().find(|(f, _, _)| *f == function) else {
        return false;
    };
    own.contains(&rv)
        || (*kind != Kind::General && TOKEN.contains(&rv))
        || (*kind == Kind::Session && SESSION.contains(&rv))
}

/// The issue-14 deviation that explains `rv` from `function`, if any.
pub fn known_deviation(function: &str, rv: CK_RV) -> Option<&'static str> {
    KNOWN_DEVIATIONS
        .iter()
        .find(|(f, r, _)| *f == function && *r == rv)
        .map(|(_, _, why)| *why)
}
