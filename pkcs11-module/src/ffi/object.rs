//! Object entry points: C_GetAttributeValue, C_SetAttributeValue, C_FindObjects*.

use cryptoki_sys::*;

use super::{guard, non_null, put};
use crate::attributes::{AttrValue, Wanted};
use crate::error::{Result, ck};
use crate::object;
use crate::state::module;

/// Read a caller template.
///
/// # Safety
/// `t` NULL or valid for `n` attributes.
unsafe fn template<'a>(t: *mut CK_ATTRIBUTE, n: CK_ULONG) -> Result<&'a mut [CK_ATTRIBUTE]> {
    if n == 0 {
        return Ok(&mut []);
    }
    non_null(t)?;
    // SAFETY: valid for `n` attributes per the caller.
    Ok(unsafe { std::slice::from_raw_parts_mut(t, n as usize) })
}

#[unsafe(no_mangle)]
pub(crate) unsafe extern "C" fn C_GetAttributeValue(
    h: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
    t: *mut CK_ATTRIBUTE,
    n: CK_ULONG,
) -> CK_RV {
    guard("C_GetAttributeValue", || {
        let m = module()?;
        non_null(t)?;
        // SAFETY: checked by template.
        let attrs = unsafe { template(t, n)? };
        let wanted: Vec<Wanted> = attrs
            .iter()
            .map(|a| Wanted {
                kind: a.type_,
                size_only: a.pValue.is_null(),
            })
            .collect();
        let values = object::get_attributes(&m, h, object, &wanted)?;
        let mut rv = CKR_OK;
        for (a, v) in attrs.iter_mut().zip(values) {
            match v {
                AttrValue::Invalid => {
                    a.ulValueLen = CK_UNAVAILABLE_INFORMATION;
                    if rv != CKR_ATTRIBUTE_SENSITIVE {
                        rv = CKR_ATTRIBUTE_TYPE_INVALID;
                    }
                }
                AttrValue::Size(n) => {
                    // Only given for a NULL pValue (a size query).
                    a.ulValueLen = n as CK_ULONG;
                }
                AttrValue::Sensitive => {
                    a.ulValueLen = CK_UNAVAILABLE_INFORMATION;
                    rv = CKR_ATTRIBUTE_SENSITIVE;
                }
                AttrValue::Bytes(v) => {
                    if a.pValue.is_null() {
                        a.ulValueLen = v.len() as CK_ULONG;
                    } else if (a.ulValueLen as usize) < v.len() {
                        a.ulValueLen = CK_UNAVAILABLE_INFORMATION;
                        if rv == CKR_OK {
                            rv = CKR_BUFFER_TOO_SMALL;
                        }
                    } else {
                        // SAFETY: the caller's buffer holds ulValueLen ≥ len bytes.
                        unsafe { std::ptr::copy_nonoverlapping(v.as_ptr(), a.pValue as *mut u8, v.len()) };
                        a.ulValueLen = v.len() as CK_ULONG;
                    }
                }
            }
        }
        if rv == CKR_OK { Ok(()) } else { ck(rv) }
    })
}

/// Copy a caller template's (type, value) pairs.
///
/// # Safety
/// `attrs` from [`template`]; each pValue valid for ulValueLen bytes when not 0.
unsafe fn pairs(attrs: &[CK_ATTRIBUTE]) -> Result<Vec<(CK_ATTRIBUTE_TYPE, Vec<u8>)>> {
    let mut out = Vec::with_capacity(attrs.len());
    for a in attrs {
        let v = if a.ulValueLen == 0 {
            Vec::new()
        } else {
            non_null(a.pValue)?;
            // SAFETY: valid for ulValueLen bytes per the caller.
            unsafe { std::slice::from_raw_parts(a.pValue as *const u8, a.ulValueLen as usize) }.to_vec()
        };
        out.push((a.type_, v));
    }
    Ok(out)
}

#[unsafe(no_mangle)]
pub(crate) unsafe extern "C" fn C_SetAttributeValue(
    h: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
    t: *mut CK_ATTRIBUTE,
    n: CK_ULONG,
) -> CK_RV {
    guard("C_SetAttributeValue", || {
        let m = module()?;
        non_null(t)?;
        // SAFETY: checked by template; values valid per the caller.
        let wanted = unsafe { pairs(template(t, n)?)? };
        object::set_attributes(&m, h, object, &wanted)
    })
}

#[unsafe(no_mangle)]
pub(crate) unsafe extern "C" fn C_FindObjectsInit(
    h: CK_SESSION_HANDLE,
    t: *mut CK_ATTRIBUTE,
    n: CK_ULONG,
) -> CK_RV {
    guard("C_FindObjectsInit", || {
        let m = module()?;
        // SAFETY: checked by template.
        let attrs = unsafe { template(t, n)? };
        // SAFETY: values valid per the caller.
        let wanted = unsafe { pairs(attrs)? };
        object::find_init(&m, h, &wanted)
    })
}

#[unsafe(no_mangle)]
pub(crate) unsafe extern "C" fn C_FindObjects(
    h: CK_SESSION_HANDLE,
    out: *mut CK_OBJECT_HANDLE,
    max: CK_ULONG,
    count: *mut CK_ULONG,
) -> CK_RV {
    guard("C_FindObjects", || {
        let m = module()?;
        non_null(out)?;
        non_null(count)?;
        let found = object::find_next(&m, h, max as usize)?;
        // SAFETY: room for `max` ≥ found.len() handles per the caller.
        unsafe {
            std::ptr::copy_nonoverlapping(found.as_ptr(), out, found.len());
            put(count, found.len() as CK_ULONG)
        }
    })
}

#[unsafe(no_mangle)]
pub(crate) unsafe extern "C" fn C_FindObjectsFinal(h: CK_SESSION_HANDLE) -> CK_RV {
    guard("C_FindObjectsFinal", || object::find_final(&*module()?, h))
}
