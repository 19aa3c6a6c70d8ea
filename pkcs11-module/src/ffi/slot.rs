//! Slot and token entry points.

use std::ffi::c_void;

use cryptoki_sys::*;

use super::{guard, non_null, output_list, put};
use crate::error::ck;
use crate::slot;
use crate::state::module;

#[unsafe(no_mangle)]
pub(crate) unsafe extern "C" fn C_GetSlotList(
    token_present: CK_BBOOL,
    list: *mut CK_SLOT_ID,
    count: *mut CK_ULONG,
) -> CK_RV {
    guard("C_GetSlotList", || {
        let m = module()?;
        non_null(count)?;
        let slots = slot::slot_list(&m, token_present != 0)?;
        // SAFETY: checked by output_list.
        unsafe { output_list(list, count, &slots) }
    })
}

#[unsafe(no_mangle)]
pub(crate) unsafe extern "C" fn C_GetSlotInfo(id: CK_SLOT_ID, info: *mut CK_SLOT_INFO) -> CK_RV {
    guard("C_GetSlotInfo", || {
        let m = module()?;
        non_null(info)?;
        let i = slot::slot_info(&m, id)?;
        // SAFETY: non-NULL, valid per the caller.
        unsafe { put(info, i) }
    })
}

#[unsafe(no_mangle)]
pub(crate) unsafe extern "C" fn C_GetTokenInfo(id: CK_SLOT_ID, info: *mut CK_TOKEN_INFO) -> CK_RV {
    guard("C_GetTokenInfo", || {
        let m = module()?;
        non_null(info)?;
        let i = slot::token_info(&m, id)?;
        // SAFETY: non-NULL, valid per the caller.
        unsafe { put(info, i) }
    })
}

#[unsafe(no_mangle)]
pub(crate) unsafe extern "C" fn C_GetMechanismList(
    id: CK_SLOT_ID,
    list: *mut CK_MECHANISM_TYPE,
    count: *mut CK_ULONG,
) -> CK_RV {
    guard("C_GetMechanismList", || {
        let m = module()?;
        non_null(count)?;
        let mechs = slot::mechanism_list(&m, id)?;
        // SAFETY: checked by output_list.
        unsafe { output_list(list, count, &mechs) }
    })
}

#[unsafe(no_mangle)]
pub(crate) unsafe extern "C" fn C_GetMechanismInfo(
    id: CK_SLOT_ID,
    mech: CK_MECHANISM_TYPE,
    info: *mut CK_MECHANISM_INFO,
) -> CK_RV {
    guard("C_GetMechanismInfo", || {
        let m = module()?;
        non_null(info)?;
        let i = slot::mechanism_info(&m, id, mech)?;
        // SAFETY: non-NULL, valid per the caller.
        unsafe { put(info, i) }
    })
}

#[unsafe(no_mangle)]
pub(crate) unsafe extern "C" fn C_WaitForSlotEvent(
    flags: CK_FLAGS,
    slot: *mut CK_SLOT_ID,
    reserved: *mut c_void,
) -> CK_RV {
    guard("C_WaitForSlotEvent", || {
        let m = module()?;
        non_null(slot)?;
        if !reserved.is_null() {
            return ck(CKR_ARGUMENTS_BAD);
        }
        let id = slot::wait_for_slot_event(&m, flags & CKF_DONT_BLOCK != 0)?;
        // SAFETY: non-NULL, valid per the caller.
        unsafe { put(slot, id) }
    })
}
