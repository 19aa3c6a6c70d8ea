//! Rows 900–924: the CPS business objects (docs/card-spec.md §2.4, §5.3, §5.4; `testCpsDataObject`):
//! CPS_DATA found as modifiable, read, written with value+i and read back; CPS_ACTIVITY_01_PS
//! (private), CPS_NAME_PS (public) and the signature certificate read (size, then value).
//!
//! The CPS4 DODF does not flag CPS_DATA modifiable (docs/card-spec.md §6.1, "the 900 block on CPS4"): the
//! search finds nothing and the write rows 905–908 are not run. The official CPS4 report then
//! renumbers the following rows (909 becomes 905…, 21 IDs); here they keep the CPS3 numbers, so
//! that an ID is the same check on both cards. The official program reports each C_OpenSession
//! that starts a sub-block under the ID of the row before it; so do we.

use cryptoki_sys::*;

use crate::raw::{Attr, In};
use crate::runner::{Ctx, Gen, Item, PIN, SIG_CERT, StepResult, row, setup};

/// C_FindObjects into a 2-handle array (as the C program): the number found must be `want`.
fn find_count(c: &mut Ctx, name: &'static str, want: usize) -> StepResult {
    let mut out = [0; 2];
    let mut n = 0;
    let rv = c.p11.find_objects(c.s("ro")?, &mut out, &mut n);
    if rv == CKR_OK {
        if n as usize != want {
            return Err(format!("{n} objects found, {want} expected"));
        }
        if want > 0 {
            c.objects.insert(name, out[0]);
        }
    }
    Ok(rv)
}

fn value_size(c: &mut Ctx, name: &'static str) -> StepResult {
    let mut t = [Attr::size_of(CKA_VALUE)];
    let rv = c.p11.get_attribute_value(c.s("ro")?, c.o(name)?, &mut t);
    if rv == CKR_OK {
        if t[0].len == 0 || t[0].len == CK_UNAVAILABLE_INFORMATION {
            return Err(format!("size {}", t[0].len));
        }
        c.blobs.insert(name, vec![0; t[0].len as usize]);
    }
    Ok(rv)
}

/// CKA_VALUE into a buffer of the size row `value_size` got; kept under `name`.
fn value(c: &mut Ctx, name: &'static str) -> StepResult {
    let size = c.blob(name)?.len();
    let mut t = [Attr::buffer(CKA_VALUE, size)];
    let rv = c.p11.get_attribute_value(c.s("ro")?, c.o(name)?, &mut t);
    if rv == CKR_OK {
        let v = t[0].bytes().ok_or("no value")?.to_vec();
        if v.len() != size {
            return Err(format!("{} bytes read, {size} announced", v.len()));
        }
        c.blobs.insert(name, v);
    }
    Ok(rv)
}

fn find_init(c: &mut Ctx, class: CK_OBJECT_CLASS, flag: Attr, label: &str) -> StepResult {
    let mut t = [
        Attr::ulong(CKA_CLASS, class),
        Attr::bool(CKA_TOKEN, true),
        flag,
        Attr::of(CKA_LABEL, label.as_bytes()),
    ];
    Ok(c.p11.find_objects_init(c.s("ro")?, &mut t))
}

fn restart(c: &mut Ctx) -> StepResult {
    c.finalize()?;
    c.init()?;
    Ok(CKR_OK)
}

/// The search, size and value rows of one object (`first` is the FindObjectsInit row).
fn read_object(first: u32, class: CK_OBJECT_CLASS, private: bool, label: &'static str) -> Vec<Item> {
    vec![
        row(first, format!("C_FindObjectsInit: {label}"), CKR_OK, move |c| {
            find_init(c, class, Attr::bool(CKA_PRIVATE, private), label)
        }),
        row(first + 1, format!("C_FindObjects: {label}"), CKR_OK, move |c| {
            find_count(c, label, 1)
        }),
        row(first + 2, "C_FindObjectsFinal", CKR_OK, |c| {
            Ok(c.p11.find_objects_final(c.s("ro")?))
        }),
        row(
            first + 3,
            format!("C_GetAttributeValue CKA_VALUE of {label}, size"),
            CKR_OK,
            move |c| value_size(c, label),
        ),
        row(
            first + 4,
            format!("C_GetAttributeValue CKA_VALUE of {label}, value"),
            CKR_OK,
            move |c| value(c, label),
        ),
    ]
}

/// The rows (contact cards).
pub fn rows(kind: Gen) -> Vec<Item> {
    let cps3 = kind == Gen::Cps3;
    let mut v = vec![
        setup("C_Initialize(NULL)", |c| Ok(c.p11.initialize(None))),
        setup("C_OpenSession read-only", |c| c.open("ro", false)),
        row(900, "C_OpenSession read-write", CKR_OK, |c| c.open("rw", true)),
        row(901, "C_Login", CKR_OK, |c| {
            Ok(c.p11.login(c.s("ro")?, CKU_USER, In::Bytes(PIN)))
        }),
        row(
            902,
            "C_FindObjectsInit: CPS_DATA with CKA_MODIFIABLE TRUE",
            CKR_OK,
            |c| find_init(c, CKO_DATA, Attr::bool(CKA_MODIFIABLE, true), "CPS_DATA"),
        ),
        row(
            903,
            if cps3 {
                "C_FindObjects: CPS_DATA"
            } else {
                "C_FindObjects: nothing on CPS4 (CPS_DATA not modifiable, docs/card-spec.md §6.1)"
            },
            CKR_OK,
            move |c| find_count(c, "CPS_DATA", usize::from(cps3)),
        ),
        row(904, "C_FindObjectsFinal", CKR_OK, |c| {
            Ok(c.p11.find_objects_final(c.s("ro")?))
        }),
    ];
    if cps3 {
        v.extend([
            row(
                905,
                "C_GetAttributeValue CKA_VALUE of CPS_DATA, size",
                CKR_OK,
                |c| value_size(c, "CPS_DATA"),
            ),
            row(
                906,
                "C_GetAttributeValue CKA_VALUE of CPS_DATA, value",
                CKR_OK,
                |c| value(c, "CPS_DATA"),
            ),
            // docs/card-spec.md §5.4: C_SetAttributeValue writes CKA_VALUE of CPS_DATA (R/W session).
            row(907, "C_SetAttributeValue: CPS_DATA value + i", CKR_OK, |c| {
                let new = plus_index(&c.blob("CPS_DATA")?);
                Ok(c.p11
                    .set_attribute_value(c.s("rw")?, c.o("CPS_DATA")?, &mut [Attr::of(CKA_VALUE, &new)]))
            }),
            row(908, "C_GetAttributeValue: the new CPS_DATA value", CKR_OK, |c| {
                let new = plus_index(&c.blob("CPS_DATA")?);
                let mut t = [Attr::buffer(CKA_VALUE, new.len())];
                let rv = c.p11.get_attribute_value(c.s("ro")?, c.o("CPS_DATA")?, &mut t);
                if rv == CKR_OK && t[0].bytes() != Some(&new[..]) {
                    return Err("the value read back is not the one written".into());
                }
                Ok(rv)
            }),
        ]);
    }
    let before = if cps3 { 908 } else { 904 };
    v.extend([
        setup("C_Finalize, C_Initialize", restart),
        row(before, "C_OpenSession read-only", CKR_OK, |c| c.open("ro", false)),
        row(909, "C_Login", CKR_OK, |c| {
            Ok(c.p11.login(c.s("ro")?, CKU_USER, In::Bytes(PIN)))
        }),
    ]);
    v.extend(read_object(910, CKO_DATA, true, "CPS_ACTIVITY_01_PS"));
    v.extend([
        setup("C_Finalize, C_Initialize", restart),
        row(914, "C_OpenSession read-only", CKR_OK, |c| c.open("ro", false)),
    ]);
    v.extend(read_object(915, CKO_DATA, false, "CPS_NAME_PS"));
    v.extend([
        setup("C_Finalize, C_Initialize", restart),
        row(919, "C_OpenSession read-only", CKR_OK, |c| c.open("ro", false)),
    ]);
    v.extend(read_object(920, CKO_CERTIFICATE, false, SIG_CERT));
    v.push(setup("C_Finalize", |c| c.finalize().map(|()| CKR_OK)));
    v
}

/// The plan's new value: byte i + i.
fn plus_index(v: &[u8]) -> Vec<u8> {
    v.iter()
        .enumerate()
        .map(|(i, b)| b.wrapping_add(i as u8))
        .collect()
}
