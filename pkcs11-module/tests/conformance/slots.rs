//! Rows 100–127: slots and tokens (docs/card-spec.md §6.1; `testSlotAndTokenManagementFunctions`). The
//! official program uses the first slot with a card; here, the slot of the reader holding our
//! card (the sandbox has several readers).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use cryptoki_sys::*;

use crate::raw::{In, blank};
use crate::runner::{Ctx, Gen, Item, StepResult, row, setup, text};

/// The rows.
pub fn rows(kind: Gen) -> Vec<Item> {
    vec![
        row(
            100,
            "C_GetSlotList before C_Initialize",
            CKR_CRYPTOKI_NOT_INITIALIZED,
            |c| Ok(c.p11.get_slot_list(false, None, Some(&mut 0))),
        ),
        row(
            101,
            "C_GetSlotInfo before C_Initialize",
            CKR_CRYPTOKI_NOT_INITIALIZED,
            |c| Ok(c.p11.get_slot_info(0, None)),
        ),
        row(
            102,
            "C_GetTokenInfo before C_Initialize",
            CKR_CRYPTOKI_NOT_INITIALIZED,
            |c| Ok(c.p11.get_token_info(0, None)),
        ),
        row(
            103,
            "C_WaitForSlotEvent before C_Initialize",
            CKR_CRYPTOKI_NOT_INITIALIZED,
            |c| Ok(c.p11.wait_for_slot_event(CKF_DONT_BLOCK, None)),
        ),
        row(
            104,
            "C_GetMechanismList before C_Initialize",
            CKR_CRYPTOKI_NOT_INITIALIZED,
            |c| Ok(c.p11.get_mechanism_list(0, None, None)),
        ),
        row(
            105,
            "C_GetMechanismInfo before C_Initialize",
            CKR_CRYPTOKI_NOT_INITIALIZED,
            |c| Ok(c.p11.get_mechanism_info(0, 0, None)),
        ),
        // The official CPS3 library implements C_InitToken and checks initialisation first. Ours
        // does not implement it (Tableau 1: "not implemented"), and PKCS#11 (2.40 §5, 2.20 §11)
        // says an unsupported function is a stub that simply returns CKR_FUNCTION_NOT_SUPPORTED;
        // the official program expects that too from a library without it (its CPS2ter case).
        row(
            106,
            "C_InitToken before C_Initialize: not implemented, a stub (PKCS#11 2.40 §5)",
            CKR_FUNCTION_NOT_SUPPORTED,
            |c| Ok(c.p11.init_token(0)),
        ),
        row(
            107,
            "C_InitPIN before C_Initialize",
            CKR_CRYPTOKI_NOT_INITIALIZED,
            |c| Ok(c.p11.init_pin(0, In::Null(0))),
        ),
        row(
            108,
            "C_SetPIN before C_Initialize",
            CKR_CRYPTOKI_NOT_INITIALIZED,
            |c| Ok(c.p11.set_pin(0, In::Null(0), In::Null(0))),
        ),
        setup("C_Initialize(NULL)", |c| Ok(c.p11.initialize(None))),
        row(109, "C_GetSlotList with pulCount NULL", CKR_ARGUMENTS_BAD, |c| {
            Ok(c.p11.get_slot_list(false, None, None))
        }),
        row(110, "C_GetSlotList: number of readers", CKR_OK, |c| {
            Ok(c.p11.get_slot_list(false, None, Some(&mut 0)))
        }),
        row(111, "C_GetSlotList: reader IDs", CKR_OK, |c| slot_ids(c, false)),
        row(
            112,
            "C_GetSlotList with a list one too short",
            CKR_BUFFER_TOO_SMALL,
            short_list,
        ),
        row(113, "C_GetSlotList: number of readers with a card", CKR_OK, |c| {
            let mut n = 0;
            let rv = c.p11.get_slot_list(true, None, Some(&mut n));
            if rv == CKR_OK && n == 0 {
                return Err("no slot with a token".into());
            }
            Ok(rv)
        }),
        row(114, "C_GetSlotList: IDs of readers with a card", CKR_OK, |c| {
            slot_ids(c, true)
        }),
        row(115, "C_GetSlotInfo with pInfo NULL", CKR_ARGUMENTS_BAD, |c| {
            Ok(c.p11.get_slot_info(c.slot()?, None))
        }),
        row(116, "C_GetSlotInfo of slot 99", CKR_SLOT_ID_INVALID, |c| {
            Ok(c.p11.get_slot_info(99, Some(&mut blank())))
        }),
        row(117, "C_GetSlotInfo", CKR_OK, slot_info),
        row(118, "C_GetTokenInfo with pInfo NULL", CKR_ARGUMENTS_BAD, |c| {
            Ok(c.p11.get_token_info(c.slot()?, None))
        }),
        row(
            119,
            "C_GetTokenInfo of slot 999999999",
            CKR_SLOT_ID_INVALID,
            |c| Ok(c.p11.get_token_info(999_999_999, Some(&mut blank()))),
        ),
        row(120, "C_GetTokenInfo", CKR_OK, move |c| token_info(c, kind)),
        // The official library does not block (CKR_FUNCTION_NOT_SUPPORTED, rows absent from the
        // reports); the program's own comment says CKR_OK is what PKCS#11 wants, and our module
        // blocks until the event.
        row(
            121,
            "C_WaitForSlotEvent(0) while the card is pulled out (PKCS#11: CKR_OK)",
            CKR_OK,
            |c| wait_event(c, false),
        ),
        row(
            122,
            "C_WaitForSlotEvent(0) while the card is put back (PKCS#11: CKR_OK)",
            CKR_OK,
            |c| wait_event(c, true),
        ),
        row(
            123,
            "C_WaitForSlotEvent(CKF_DONT_BLOCK), nothing new",
            CKR_NO_EVENT,
            |c| Ok(c.p11.wait_for_slot_event(CKF_DONT_BLOCK, Some(&mut 0))),
        ),
        // Contactless: the official module lists CKM_RSA_PKCS alone, the card's only signature
        // mechanism (docs/card-spec.md §7), and passes this row; cpx also lists the software digests,
        // which work there too (issue 14), so one entry is too few everywhere.
        row(
            124,
            "C_GetMechanismList with a 1-entry list",
            CKR_BUFFER_TOO_SMALL,
            |c| {
                let mut list = [0; 1];
                let mut n = 1;
                Ok(c.p11.get_mechanism_list(c.slot()?, Some(&mut list), Some(&mut n)))
            },
        ),
        row(125, "C_GetMechanismList: number of mechanisms", CKR_OK, |c| {
            Ok(c.p11.get_mechanism_list(c.slot()?, None, Some(&mut 0)))
        }),
        row(
            126,
            "C_GetMechanismList: the mechanisms (Tableau 2, docs/card-spec.md §4.1)",
            CKR_OK,
            move |c| mechanisms(c, kind).map(|(rv, _)| rv),
        ),
        row(127, "C_GetMechanismInfo of each mechanism", CKR_OK, move |c| {
            mechanism_infos(c, kind)
        }),
        setup("C_Finalize", |c| Ok(c.p11.finalize())),
    ]
}

fn slot_ids(c: &mut Ctx, present: bool) -> StepResult {
    let mut n = 0;
    crate::runner::ok(c.p11.get_slot_list(present, None, Some(&mut n)), "size query")?;
    let mut list = vec![0; n as usize];
    let rv = c.p11.get_slot_list(present, Some(&mut list), Some(&mut n));
    if rv == CKR_OK && !list[..n as usize].contains(&c.slot()?) {
        return Err(format!("our slot is not in {list:?}"));
    }
    Ok(rv)
}

fn short_list(c: &mut Ctx) -> StepResult {
    let mut n = 0;
    crate::runner::ok(c.p11.get_slot_list(false, None, Some(&mut n)), "size query")?;
    let all = n;
    let mut short = n.saturating_sub(1);
    let mut list = vec![0; short as usize];
    let rv = c.p11.get_slot_list(false, Some(&mut list), Some(&mut short));
    if rv == CKR_BUFFER_TOO_SMALL && short != all {
        return Err(format!(
            "pulCount is {short} after BUFFER_TOO_SMALL, {all} needed"
        ));
    }
    Ok(rv)
}

fn slot_info(c: &mut Ctx) -> StepResult {
    let mut info: CK_SLOT_INFO = blank();
    let rv = c.p11.get_slot_info(c.slot()?, Some(&mut info));
    // docs/card-spec.md §5.2: REMOVABLE | HW_SLOT, the reader name as slotDescription.
    let want = CKF_TOKEN_PRESENT | CKF_REMOVABLE_DEVICE | CKF_HW_SLOT;
    if rv == CKR_OK && (info.flags & want != want || text(&info.slotDescription) != c.reader) {
        return Err(format!(
            "flags 0x{:X}, description {:?}",
            info.flags,
            text(&info.slotDescription)
        ));
    }
    Ok(rv)
}

fn token_info(c: &mut Ctx, kind: Gen) -> StepResult {
    let mut info: CK_TOKEN_INFO = blank();
    let rv = c.p11.get_token_info(c.slot()?, Some(&mut info));
    // The official program tells the generations apart by "CPS3"/"CPS4" in the label (docs/card-spec.md
    // §1.4).
    let label = text(&info.label);
    let want = if kind == Gen::Cps4 { "CPS4" } else { "CPS3" };
    if rv == CKR_OK && !label.contains(want) {
        return Err(format!("label {label:?} lacks {want}"));
    }
    Ok(rv)
}

/// Rows 121–122: a blocking C_WaitForSlotEvent while another thread pulls the card out (or puts
/// it back) 300 ms later. A watchdog finalises the module after 30 s (generous for a loaded
/// machine; it costs nothing when the event comes), which must wake the wait, so a module that
/// never answers fails the row instead of hanging the test.
fn wait_event(c: &mut Ctx, insert: bool) -> StepResult {
    const DELAY: Duration = Duration::from_millis(300);
    const WATCHDOG: Duration = Duration::from_secs(30);
    let slot = c.slot()?;
    let p11 = c.p11;
    let card = &mut c.card;
    let done = AtomicBool::new(false);
    let started = Instant::now();
    let mut event_slot = CK_INVALID_HANDLE;
    let (rv, woken, moved) = std::thread::scope(|s| {
        let helper = s.spawn(|| {
            std::thread::sleep(DELAY);
            let moved = if insert {
                card.insert().map_err(|e| e.to_string())
            } else {
                card.remove();
                Ok(())
            };
            let deadline = Instant::now() + WATCHDOG;
            while !done.load(Ordering::SeqCst) {
                if Instant::now() > deadline {
                    let _ = p11.finalize();
                    return (true, moved);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            (false, moved)
        });
        let rv = p11.wait_for_slot_event(0, Some(&mut event_slot));
        done.store(true, Ordering::SeqCst);
        let (woken, moved) = helper
            .join()
            .unwrap_or((false, Err("helper thread panicked".into())));
        (rv, woken, moved)
    });
    moved?;
    if woken {
        c.init()?;
        return Err(format!(
            "no event within {WATCHDOG:?} (the watchdog's C_Finalize woke the wait)"
        ));
    }
    if rv != CKR_OK {
        return Ok(rv);
    }
    if started.elapsed() < DELAY {
        return Err("answered before the card moved: a stale event".into());
    }
    c.detail = Some(format!(
        "event {} ms after the wait began",
        started.elapsed().as_millis()
    ));
    if event_slot != slot {
        return Err(format!("event for slot {event_slot}, the card is in slot {slot}"));
    }
    let mut info: CK_SLOT_INFO = blank();
    crate::runner::ok(c.p11.get_slot_info(slot, Some(&mut info)), "C_GetSlotInfo")?;
    if (info.flags & CKF_TOKEN_PRESENT != 0) != insert {
        return Err(format!("slot flags 0x{:X} after the event", info.flags));
    }
    Ok(rv)
}

/// The mechanisms of Tableau 2 (docs/card-spec.md §4.1): CPS3 five, CPS4 with the three PSS ones;
/// contactless: CKM_RSA_PKCS only (docs/card-spec.md §7).
pub fn expected_mechanisms(kind: Gen) -> BTreeSet<CK_MECHANISM_TYPE> {
    let mut v = vec![
        CKM_RSA_PKCS,
        CKM_SHA1_RSA_PKCS,
        CKM_SHA256_RSA_PKCS,
        CKM_SHA_1,
        CKM_SHA256,
    ];
    match kind {
        Gen::Cps3 => {}
        Gen::Cps4 => v.extend([CKM_RSA_PKCS_PSS, CKM_SHA1_RSA_PKCS_PSS, CKM_SHA256_RSA_PKCS_PSS]),
        Gen::Cl => v = vec![CKM_RSA_PKCS, CKM_SHA_1, CKM_SHA256],
    }
    v.into_iter().collect()
}

fn mechanisms(c: &mut Ctx, kind: Gen) -> Result<(CK_RV, Vec<CK_MECHANISM_TYPE>), String> {
    let slot = c.slot()?;
    let mut n = 0;
    crate::runner::ok(c.p11.get_mechanism_list(slot, None, Some(&mut n)), "size query")?;
    let mut list = vec![0; n as usize];
    let rv = c.p11.get_mechanism_list(slot, Some(&mut list), Some(&mut n));
    list.truncate(n as usize);
    let got: BTreeSet<_> = list.iter().copied().collect();
    if rv == CKR_OK && got != expected_mechanisms(kind) {
        return Err(format!("mechanisms {list:X?}"));
    }
    Ok((rv, list))
}

fn mechanism_infos(c: &mut Ctx, kind: Gen) -> StepResult {
    let slot = c.slot()?;
    let (_, list) = mechanisms(c, kind)?;
    for m in list {
        let mut info: CK_MECHANISM_INFO = blank();
        let rv = c.p11.get_mechanism_info(slot, m, Some(&mut info));
        if rv != CKR_OK {
            c.detail = Some(format!("mechanism 0x{m:X}"));
            return Ok(rv);
        }
        let want = if matches!(m, CKM_SHA_1 | CKM_SHA256) {
            CKF_DIGEST
        } else {
            CKF_SIGN | CKF_VERIFY
        };
        if info.flags & want != want {
            return Err(format!("mechanism 0x{m:X}: flags 0x{:X}", info.flags));
        }
    }
    Ok(CKR_OK)
}
