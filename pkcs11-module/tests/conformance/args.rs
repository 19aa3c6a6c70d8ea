//! The safe argument types of the raw wrappers (`raw.rs`): input and output buffers, attribute
//! templates, mechanisms, and their C forms. Building a pointer is safe; `raw.rs` passes them.

use std::ffi::c_void;
use std::ptr::null_mut;

use cryptoki_sys::*;

/// An input buffer: NULL with a declared length (the plan's "NULL pData" rows) or real bytes.
#[derive(Debug, Clone, Copy)]
pub enum In<'a> {
    /// NULL pointer, this length.
    Null(CK_ULONG),
    /// These bytes.
    Bytes(&'a [u8]),
}

impl In<'_> {
    pub fn raw(self) -> (*mut CK_BYTE, CK_ULONG) {
        match self {
            In::Null(n) => (null_mut(), n),
            // The C API takes `*mut` for inputs it only reads.
            In::Bytes(b) => (b.as_ptr().cast_mut(), b.len() as CK_ULONG),
        }
    }
}

/// An output under the two-call protocol.
#[derive(Debug)]
pub enum Out<'a> {
    /// NULL buffer and NULL length pointer.
    Null,
    /// NULL buffer: a size query.
    Len(&'a mut CK_ULONG),
    /// A buffer whose capacity is declared in the length (at most the buffer's size).
    Buf(&'a mut [u8], &'a mut CK_ULONG),
    /// A buffer and a NULL length pointer.
    BufNoLen(&'a mut [u8]),
}

impl Out<'_> {
    pub fn raw(&mut self) -> (*mut CK_BYTE, *mut CK_ULONG) {
        match self {
            Out::Null => (null_mut(), null_mut()),
            Out::Len(l) => (null_mut(), &mut **l),
            Out::Buf(b, l) => {
                // The module may write up to the declared capacity.
                assert!(**l as usize <= b.len(), "declared capacity beyond the buffer");
                (b.as_mut_ptr(), &mut **l)
            }
            Out::BufNoLen(b) => (b.as_mut_ptr(), null_mut()),
        }
    }
}

/// One template attribute: a value (its length is the buffer's) or a NULL pValue (a size query);
/// `len` receives ulValueLen back.
#[derive(Debug, Clone)]
pub struct Attr {
    /// CKA_*.
    pub ty: CK_ATTRIBUTE_TYPE,
    /// The value or buffer; `None` = NULL pValue.
    pub value: Option<Vec<u8>>,
    /// ulValueLen after the call.
    pub len: CK_ULONG,
}

impl Attr {
    /// An attribute with this value (templates for search, set, create).
    pub fn of(ty: CK_ATTRIBUTE_TYPE, value: &[u8]) -> Attr {
        Attr {
            ty,
            value: Some(value.to_vec()),
            len: value.len() as CK_ULONG,
        }
    }

    /// A CK_ULONG-valued attribute (CKA_CLASS…).
    pub fn ulong(ty: CK_ATTRIBUTE_TYPE, v: CK_ULONG) -> Attr {
        Attr::of(ty, &v.to_ne_bytes())
    }

    /// A CK_BBOOL attribute.
    pub fn bool(ty: CK_ATTRIBUTE_TYPE, v: bool) -> Attr {
        Attr::of(ty, &[CK_BBOOL::from(v)])
    }

    /// NULL pValue: asks for the length.
    pub fn size_of(ty: CK_ATTRIBUTE_TYPE) -> Attr {
        Attr {
            ty,
            value: None,
            len: 0,
        }
    }

    /// A zeroed buffer of `n` bytes for the value.
    pub fn buffer(ty: CK_ATTRIBUTE_TYPE, n: usize) -> Attr {
        Attr {
            ty,
            value: Some(vec![0; n]),
            len: n as CK_ULONG,
        }
    }

    /// The value as returned (the buffer cut to ulValueLen).
    pub fn bytes(&self) -> Option<&[u8]> {
        let v = self.value.as_deref()?;
        v.get(..usize::try_from(self.len).ok()?)
    }
}

/// The C template over `attrs`: each pValue points into its `Vec`, ulValueLen is its length.
pub fn template(attrs: &mut [Attr]) -> Vec<CK_ATTRIBUTE> {
    attrs
        .iter_mut()
        .map(|a| match &mut a.value {
            Some(v) => CK_ATTRIBUTE {
                type_: a.ty,
                pValue: v.as_mut_ptr().cast::<c_void>(),
                ulValueLen: v.len() as CK_ULONG,
            },
            None => CK_ATTRIBUTE {
                type_: a.ty,
                pValue: null_mut(),
                ulValueLen: 0,
            },
        })
        .collect()
}

pub fn read_back(attrs: &mut [Attr], raw: &[CK_ATTRIBUTE]) {
    for (a, r) in attrs.iter_mut().zip(raw) {
        a.len = r.ulValueLen;
    }
}

/// A mechanism, with RSA-PSS parameters when given.
#[derive(Debug, Clone, Copy)]
pub struct Mech {
    /// CKM_*.
    pub ty: CK_MECHANISM_TYPE,
    /// CK_RSA_PKCS_PSS_PARAMS (hashAlg, mgf, sLen).
    pub pss: Option<(CK_MECHANISM_TYPE, CK_RSA_PKCS_MGF_TYPE, CK_ULONG)>,
    /// Instead of `pss`: a parameter of this length, NULL (`true`) or pointing to that many
    /// bytes of 0xA5 (`false`).
    pub garbage: Option<(bool, CK_ULONG)>,
}

impl Mech {
    /// A mechanism without parameter.
    pub const fn of(ty: CK_MECHANISM_TYPE) -> Mech {
        Mech {
            ty,
            pss: None,
            garbage: None,
        }
    }

    /// A mechanism with a parameter it does not take: `len` bytes, or NULL declared `len` long.
    pub const fn with_garbage(ty: CK_MECHANISM_TYPE, null: bool, len: CK_ULONG) -> Mech {
        Mech {
            ty,
            pss: None,
            garbage: Some((null, len)),
        }
    }
}

/// NULL for `None`, else the pointer.
pub fn opt<T>(p: Option<&mut T>) -> *mut T {
    p.map_or(null_mut(), |r| r as *mut T)
}

/// A list pointer whose declared capacity (`*count`) fits the list.
pub fn capacity_checked<T>(list: Option<&mut [T]>, count: Option<&CK_ULONG>) -> *mut T {
    match list {
        None => null_mut(),
        Some(l) => {
            assert!(
                count.is_some_and(|c| *c as usize <= l.len()),
                "declared capacity beyond the list"
            );
            l.as_mut_ptr()
        }
    }
}

/// Run `f` with a `CK_MECHANISM` built from `m` (its parameter lives for the call) or NULL.
pub fn with_mech(m: Option<Mech>, f: impl FnOnce(*mut CK_MECHANISM) -> CK_RV) -> CK_RV {
    let Some(m) = m else { return f(null_mut()) };
    let mut params = m.pss.map(|(hash, mgf, salt)| CK_RSA_PKCS_PSS_PARAMS {
        hashAlg: hash,
        mgf,
        sLen: salt,
    });
    let (p, n) = match params.as_mut() {
        Some(p) => (
            (p as *mut CK_RSA_PKCS_PSS_PARAMS).cast::<c_void>(),
            std::mem::size_of::<CK_RSA_PKCS_PSS_PARAMS>() as CK_ULONG,
        ),
        None => (null_mut(), 0),
    };
    let mut bytes = Vec::new();
    let (p, n) = match m.garbage {
        Some((true, len)) => (null_mut(), len),
        Some((false, len)) => {
            bytes = vec![0xA5u8; len as usize];
            (bytes.as_mut_ptr().cast::<c_void>(), len)
        }
        None => (p, n),
    };
    let mut ck = CK_MECHANISM {
        mechanism: m.ty,
        pParameter: p,
        ulParameterLen: n,
    };
    let rv = f(&mut ck);
    drop(bytes);
    rv
}
