//! Rows 0–13: general functions (docs/card-spec.md §6.1; `testGeneralPurposeFunctions` of the official
//! program). The "cas 1–4" of C_Initialize are the four combinations of mutex callbacks and
//! CKF_OS_LOCKING_OK; the program finalises after each.

use cryptoki_sys::*;

use crate::raw::{InitArgs, blank};
use crate::runner::{Gen, Item, row, setup};

fn init_with(callbacks: [bool; 4], flags: CK_FLAGS) -> InitArgs {
    InitArgs { callbacks, flags }
}

/// The rows.
pub fn rows(_kind: Gen) -> Vec<Item> {
    const ALL: [bool; 4] = [true; 4];
    const NONE: [bool; 4] = [false; 4];
    vec![
        row(0, "C_GetFunctionList", CKR_OK, |c| {
            let (rv, same) = c.p11.get_function_list();
            if rv == CKR_OK && !same {
                return Err("a second call gave another list".into());
            }
            Ok(rv)
        }),
        row(
            1,
            "C_Finalize before C_Initialize",
            CKR_CRYPTOKI_NOT_INITIALIZED,
            |c| Ok(c.p11.finalize()),
        ),
        row(
            2,
            "C_GetInfo before C_Initialize",
            CKR_CRYPTOKI_NOT_INITIALIZED,
            |c| Ok(c.p11.get_info(Some(&mut blank()))),
        ),
        row(
            4,
            "C_Initialize, case 3: four mutex callbacks, flags 0",
            CKR_OK,
            |c| Ok(c.p11.initialize(Some(init_with(ALL, 0)))),
        ),
        setup("C_Finalize", |c| Ok(c.p11.finalize())),
        row(
            5,
            "C_Initialize, case 4: four callbacks and CKF_OS_LOCKING_OK",
            CKR_OK,
            |c| Ok(c.p11.initialize(Some(init_with(ALL, CKF_OS_LOCKING_OK)))),
        ),
        setup("C_Finalize", |c| Ok(c.p11.finalize())),
        row(6, "C_Initialize, case 1: no callback, flags 0", CKR_OK, |c| {
            Ok(c.p11.initialize(Some(init_with(NONE, 0))))
        }),
        setup("C_Finalize", |c| Ok(c.p11.finalize())),
        row(
            7,
            "C_Initialize, case 2: no callback, CKF_OS_LOCKING_OK",
            CKR_OK,
            |c| Ok(c.p11.initialize(Some(init_with(NONE, CKF_OS_LOCKING_OK)))),
        ),
        setup("C_Finalize", |c| Ok(c.p11.finalize())),
        // CreateMutex and UnlockMutex only: PKCS#11 2.40 §5.4 wants all four or none.
        row(
            8,
            "C_Initialize with 2 of the 4 mutex callbacks",
            CKR_ARGUMENTS_BAD,
            |c| {
                Ok(c.p11
                    .initialize(Some(init_with([true, false, false, true], CKF_OS_LOCKING_OK))))
            },
        ),
        row(9, "C_Initialize(NULL)", CKR_OK, |c| Ok(c.p11.initialize(None))),
        row(
            10,
            "C_Initialize when already initialised",
            CKR_CRYPTOKI_ALREADY_INITIALIZED,
            |c| Ok(c.p11.initialize(None)),
        ),
        row(11, "C_GetInfo(NULL)", CKR_ARGUMENTS_BAD, |c| {
            Ok(c.p11.get_info(None))
        }),
        row(12, "C_GetInfo", CKR_OK, |c| {
            let mut info: CK_INFO = blank();
            let rv = c.p11.get_info(Some(&mut info));
            if rv == CKR_OK && info.cryptokiVersion.major != 2 {
                return Err(format!(
                    "cryptokiVersion {}.{}",
                    info.cryptokiVersion.major, info.cryptokiVersion.minor
                ));
            }
            Ok(rv)
        }),
        row(13, "C_Finalize", CKR_OK, |c| Ok(c.p11.finalize())),
    ]
}
