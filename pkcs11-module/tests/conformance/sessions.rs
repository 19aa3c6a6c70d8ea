//! Rows 200–222: sessions (docs/card-spec.md §6.1; `testSessionManagementFunctions`). On the contactless
//! interface there is no PIN: the program then expects CKR_USER_PIN_NOT_INITIALIZED from
//! C_Login and CKR_USER_NOT_LOGGED_IN from C_Logout (docs/card-spec.md §7, row group 1100).

use cryptoki_sys::*;

use crate::raw::{In, blank};
use crate::runner::{BAD_SESSION, Gen, Item, PIN, row, setup};

/// The rows.
pub fn rows(kind: Gen) -> Vec<Item> {
    let cl = kind == Gen::Cl;
    let (login, again, logout) = if cl {
        (
            CKR_USER_PIN_NOT_INITIALIZED,
            CKR_USER_PIN_NOT_INITIALIZED,
            CKR_USER_NOT_LOGGED_IN,
        )
    } else {
        (CKR_OK, CKR_USER_ALREADY_LOGGED_IN, CKR_OK)
    };
    vec![
        setup("C_Initialize(NULL)", |c| Ok(c.p11.initialize(None))),
        row(200, "C_OpenSession read-only", CKR_OK, |c| c.open("ro", false)),
        row(201, "C_OpenSession read-write", CKR_OK, |c| c.open("rw", true)),
        row(202, "C_OpenSession, 3rd session (read-only)", CKR_OK, |c| {
            c.open("s3", false)
        }),
        row(203, "C_OpenSession, 4th session (read-only)", CKR_OK, |c| {
            c.open("s4", false)
        }),
        row(204, "C_OpenSession, 5th session (read-only)", CKR_OK, |c| {
            c.open("s5", false)
        }),
        row(205, "C_GetSessionInfo", CKR_OK, |c| {
            let mut info: CK_SESSION_INFO = blank();
            let rv = c.p11.get_session_info(c.s("ro")?, Some(&mut info));
            if rv == CKR_OK && (info.state != CKS_RO_PUBLIC_SESSION || info.slotID != c.slot()?) {
                return Err(format!("state {}, slot {}", info.state, info.slotID));
            }
            Ok(rv)
        }),
        // PKCS#11 §5.6: no SO login while a read-only session exists.
        row(
            206,
            "C_Login(CKU_SO) with read-only sessions open",
            CKR_SESSION_READ_ONLY_EXISTS,
            |c| Ok(c.p11.login(c.s("ro")?, CKU_SO, In::Bytes(PIN))),
        ),
        row(
            207,
            if cl {
                "C_Login(CKU_USER), contactless: no PIN (docs/card-spec.md §7)"
            } else {
                "C_Login(CKU_USER)"
            },
            login,
            |c| Ok(c.p11.login(c.s("ro")?, CKU_USER, In::Bytes(PIN))),
        ),
        row(208, "C_Login a second time", again, |c| {
            Ok(c.p11.login(c.s("ro")?, CKU_USER, In::Bytes(PIN)))
        }),
        row(
            209,
            "C_GetOperationState (not implemented, Tableau 1)",
            CKR_FUNCTION_NOT_SUPPORTED,
            |c| Ok(c.p11.get_operation_state(c.s("ro")?)),
        ),
        row(
            210,
            "C_SetOperationState (not implemented, Tableau 1)",
            CKR_FUNCTION_NOT_SUPPORTED,
            |c| Ok(c.p11.set_operation_state(c.s("ro")?)),
        ),
        row(
            211,
            if cl {
                "C_Logout, contactless: nobody logged in"
            } else {
                "C_Logout"
            },
            logout,
            |c| Ok(c.p11.logout(c.s("ro")?)),
        ),
        row(212, "C_CloseSession", CKR_OK, |c| {
            Ok(c.p11.close_session(c.s("ro")?))
        }),
        row(213, "C_CloseAllSessions", CKR_OK, |c| {
            Ok(c.p11.close_all_sessions(c.slot()?))
        }),
        row(
            214,
            "C_CloseSession of session 3 after C_CloseAllSessions",
            CKR_SESSION_HANDLE_INVALID,
            |c| Ok(c.p11.close_session(c.s("s3")?)),
        ),
        row(
            215,
            "C_GetSessionInfo of session 999",
            CKR_SESSION_HANDLE_INVALID,
            |c| Ok(c.p11.get_session_info(999, Some(&mut blank()))),
        ),
        row(216, "C_Login on session 999", CKR_SESSION_HANDLE_INVALID, |c| {
            Ok(c.p11.login(999, CKU_USER, In::Bytes(PIN)))
        }),
        row(217, "C_OpenSession with phSession NULL", CKR_ARGUMENTS_BAD, |c| {
            Ok(c.p11.open_session(c.slot()?, CKF_SERIAL_SESSION, None))
        }),
        setup("C_Finalize", |c| {
            c.finalize()?;
            Ok(CKR_OK)
        }),
        row(
            218,
            "C_OpenSession before C_Initialize",
            CKR_CRYPTOKI_NOT_INITIALIZED,
            |c| {
                Ok(c.p11
                    .open_session(0, CKF_SERIAL_SESSION | CKF_RW_SESSION, Some(&mut 0)))
            },
        ),
        row(
            219,
            "C_GetSessionInfo before C_Initialize",
            CKR_CRYPTOKI_NOT_INITIALIZED,
            |c| Ok(c.p11.get_session_info(BAD_SESSION, Some(&mut blank()))),
        ),
        row(
            220,
            "C_Login before C_Initialize",
            CKR_CRYPTOKI_NOT_INITIALIZED,
            |c| Ok(c.p11.login(BAD_SESSION, CKU_USER, In::Bytes(PIN))),
        ),
        row(
            221,
            "C_InitPIN before C_Initialize",
            CKR_CRYPTOKI_NOT_INITIALIZED,
            |c| Ok(c.p11.init_pin(BAD_SESSION, In::Null(0))),
        ),
        row(
            222,
            "C_Logout before C_Initialize",
            CKR_CRYPTOKI_NOT_INITIALIZED,
            |c| Ok(c.p11.logout(BAD_SESSION)),
        ),
    ]
}
