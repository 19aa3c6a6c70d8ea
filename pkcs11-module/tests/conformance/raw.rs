//! The built module's C ABI, loaded with `libloading` and called through `C_GetFunctionList`:
//! the only `unsafe` of the conformance test. The plan calls functions before C_Initialize, with
//! NULL pointers and with short buffers, which the `cryptoki` crate cannot express; these
//! wrappers can, and keep every pointer they pass valid for what they declare.
#![allow(unsafe_code)]

use std::ffi::c_void;
use std::path::Path;
use std::ptr::null_mut;
use std::sync::OnceLock;

use cryptoki_sys::*;

pub use crate::args::{Attr, In, Mech, Out};
use crate::args::{capacity_checked, opt, read_back, template, with_mech};

/// What a wrapper answers when the module's function list has a NULL entry (a module bug the
/// runner names as such; no real return code has this value).
pub const NULL_ENTRY: CK_RV = CKR_VENDOR_DEFINED | 0x00C0_FFEE;

/// The loaded library and its 2.40 function list.
pub struct Module {
    _lib: libloading::Library,
    get_function_list: unsafe extern "C" fn(*mut *mut CK_FUNCTION_LIST) -> CK_RV,
    list: *const CK_FUNCTION_LIST,
}

// SAFETY: the function list is an immutable static of the library, which stays loaded for the
// life of the process (the `Module` lives in a `OnceLock` and is never dropped); the module's
// entry points are thread-safe (it says CKF_OS_LOCKING_OK works).
unsafe impl Send for Module {}
// SAFETY: as above.
unsafe impl Sync for Module {}

static MODULE: OnceLock<Result<Module, String>> = OnceLock::new();

/// The module at `path`, loaded once per process (C_Initialize/C_Finalize are process-global).
pub fn load(path: &Path) -> Result<&'static Module, String> {
    MODULE
        .get_or_init(|| Module::open(path))
        .as_ref()
        .map_err(Clone::clone)
}

impl Module {
    fn open(path: &Path) -> Result<Module, String> {
        // SAFETY: loading our own cdylib runs no initialisation code besides Rust statics.
        let lib =
            unsafe { libloading::Library::new(path) }.map_err(|e| format!("{}: {e}", path.display()))?;
        // SAFETY: C_GetFunctionList has this signature (PKCS#11 2.40 §5.2).
        let get_function_list = unsafe {
            *lib.get::<unsafe extern "C" fn(*mut *mut CK_FUNCTION_LIST) -> CK_RV>(b"C_GetFunctionList\0")
                .map_err(|e| format!("C_GetFunctionList: {e}"))?
        };
        let mut list: *mut CK_FUNCTION_LIST = null_mut();
        // SAFETY: a valid out-pointer.
        let rv = unsafe { get_function_list(&mut list) };
        if rv != CKR_OK || list.is_null() {
            return Err(format!("C_GetFunctionList: 0x{rv:08X}"));
        }
        Ok(Module {
            _lib: lib,
            get_function_list,
            list,
        })
    }

    fn list(&self) -> &CK_FUNCTION_LIST {
        // SAFETY: checked non-NULL at load; a static of the still-loaded library.
        unsafe { &*self.list }
    }
}

/// Call entry `$name` of the function list, or answer [`NULL_ENTRY`].
macro_rules! call {
    ($m:ident . $name:ident ( $($arg:expr),* $(,)? )) => {{
        let rv = match $m.list().$name {
            // SAFETY: each wrapper passes pointers valid for what it declares (see its comment).
            Some(f) => unsafe { f($($arg),*) },
            None => NULL_ENTRY,
        };
        observe(stringify!($name), rv);
        rv
    }};
}

/// Every (function, code) the wrappers saw since the last [`take_observed`].
static OBSERVED: std::sync::Mutex<Vec<(&'static str, CK_RV)>> = std::sync::Mutex::new(Vec::new());

fn observe(function: &'static str, rv: CK_RV) {
    OBSERVED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push((function, rv));
}

/// The codes observed so far, forgotten here (the runner checks each plan's against the §5
/// lists, `common::rv_lists`).
pub fn take_observed() -> Vec<(&'static str, CK_RV)> {
    std::mem::take(&mut *OBSERVED.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
}

/// Which C_Initialize argument fields are set (the plan's "cas 1–4" and the partial case).
#[derive(Debug, Clone, Copy, Default)]
pub struct InitArgs {
    /// CreateMutex, DestroyMutex, LockMutex, UnlockMutex set (non-NULL)?
    pub callbacks: [bool; 4],
    /// flags.
    pub flags: CK_FLAGS,
}

/// The mutex the callbacks below hand out: one spin lock, and counts of each callback's calls,
/// so that a row can tell whether the module used them (C_Initialize case 3) or not (case 4).
pub mod app_mutex {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    pub static LOCKED: AtomicBool = AtomicBool::new(false);
    pub static CREATES: AtomicUsize = AtomicUsize::new(0);
    pub static DESTROYS: AtomicUsize = AtomicUsize::new(0);
    pub static LOCKS: AtomicUsize = AtomicUsize::new(0);
    pub static UNLOCKS: AtomicUsize = AtomicUsize::new(0);

    /// (creates, destroys, locks, unlocks) so far.
    pub fn counts() -> [usize; 4] {
        [&CREATES, &DESTROYS, &LOCKS, &UNLOCKS].map(|c| c.load(Ordering::SeqCst))
    }

    /// Whether the mutex is held now.
    pub fn held() -> bool {
        LOCKED.load(Ordering::SeqCst)
    }
}

static APP_MUTEX: u8 = 0;

fn is_app_mutex(m: *mut c_void) -> bool {
    std::ptr::eq(m.cast_const().cast::<u8>(), &raw const APP_MUTEX)
}

unsafe extern "C" fn create_mutex(pp: *mut *mut c_void) -> CK_RV {
    use std::sync::atomic::Ordering;
    if pp.is_null() {
        return CKR_ARGUMENTS_BAD;
    }
    app_mutex::CREATES.fetch_add(1, Ordering::SeqCst);
    // SAFETY: non-NULL out-pointer per the PKCS#11 contract.
    unsafe { pp.write((&raw const APP_MUTEX).cast_mut().cast::<c_void>()) };
    CKR_OK
}
unsafe extern "C" fn destroy_mutex(m: *mut c_void) -> CK_RV {
    use std::sync::atomic::Ordering;
    if !is_app_mutex(m) {
        return CKR_MUTEX_BAD;
    }
    app_mutex::DESTROYS.fetch_add(1, Ordering::SeqCst);
    CKR_OK
}
unsafe extern "C" fn lock_mutex(m: *mut c_void) -> CK_RV {
    use std::sync::atomic::Ordering;
    if !is_app_mutex(m) {
        return CKR_MUTEX_BAD;
    }
    while app_mutex::LOCKED
        .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
        .is_err()
    {
        std::hint::spin_loop();
    }
    app_mutex::LOCKS.fetch_add(1, Ordering::SeqCst);
    CKR_OK
}
unsafe extern "C" fn unlock_mutex(m: *mut c_void) -> CK_RV {
    use std::sync::atomic::Ordering;
    if !is_app_mutex(m) {
        return CKR_MUTEX_BAD;
    }
    if !app_mutex::LOCKED.swap(false, Ordering::SeqCst) {
        return CKR_MUTEX_NOT_LOCKED;
    }
    app_mutex::UNLOCKS.fetch_add(1, Ordering::SeqCst);
    CKR_OK
}

impl Module {
    /// C_GetFunctionList(&list): CKR_OK and the same list as at load.
    pub fn get_function_list(&self) -> (CK_RV, bool) {
        let mut list: *mut CK_FUNCTION_LIST = null_mut();
        // SAFETY: a valid out-pointer.
        let rv = unsafe { (self.get_function_list)(&mut list) };
        (rv, std::ptr::eq(list, self.list))
    }

    /// C_Initialize(NULL) or with arguments (pReserved always NULL).
    pub fn initialize(&self, args: Option<InitArgs>) -> CK_RV {
        let Some(a) = args else {
            return call!(self.C_Initialize(null_mut()));
        };
        let mut ck = CK_C_INITIALIZE_ARGS {
            CreateMutex: a.callbacks[0].then_some(create_mutex as _),
            DestroyMutex: a.callbacks[1].then_some(destroy_mutex as _),
            LockMutex: a.callbacks[2].then_some(lock_mutex as _),
            UnlockMutex: a.callbacks[3].then_some(unlock_mutex as _),
            flags: a.flags,
            pReserved: null_mut(),
        };
        call!(self.C_Initialize((&raw mut ck).cast::<c_void>()))
    }

    /// C_Finalize(NULL).
    pub fn finalize(&self) -> CK_RV {
        call!(self.C_Finalize(null_mut()))
    }

    /// C_GetInfo.
    pub fn get_info(&self, info: Option<&mut CK_INFO>) -> CK_RV {
        call!(self.C_GetInfo(opt(info)))
    }

    /// C_GetSlotList; with a list, `count` declares its capacity (at most its length).
    pub fn get_slot_list(
        &self,
        present: bool,
        list: Option<&mut [CK_SLOT_ID]>,
        count: Option<&mut CK_ULONG>,
    ) -> CK_RV {
        let list = capacity_checked(list, count.as_deref());
        call!(self.C_GetSlotList(CK_BBOOL::from(present), list, opt(count)))
    }

    /// C_GetSlotInfo.
    pub fn get_slot_info(&self, slot: CK_SLOT_ID, info: Option<&mut CK_SLOT_INFO>) -> CK_RV {
        call!(self.C_GetSlotInfo(slot, opt(info)))
    }

    /// C_GetTokenInfo.
    pub fn get_token_info(&self, slot: CK_SLOT_ID, info: Option<&mut CK_TOKEN_INFO>) -> CK_RV {
        call!(self.C_GetTokenInfo(slot, opt(info)))
    }

    /// C_WaitForSlotEvent (pReserved NULL).
    pub fn wait_for_slot_event(&self, flags: CK_FLAGS, slot: Option<&mut CK_SLOT_ID>) -> CK_RV {
        call!(self.C_WaitForSlotEvent(flags, opt(slot), null_mut()))
    }

    /// C_GetMechanismList; with a list, `count` declares its capacity.
    pub fn get_mechanism_list(
        &self,
        slot: CK_SLOT_ID,
        list: Option<&mut [CK_MECHANISM_TYPE]>,
        count: Option<&mut CK_ULONG>,
    ) -> CK_RV {
        let list = capacity_checked(list, count.as_deref());
        call!(self.C_GetMechanismList(slot, list, opt(count)))
    }

    /// C_GetMechanismInfo.
    pub fn get_mechanism_info(
        &self,
        slot: CK_SLOT_ID,
        ty: CK_MECHANISM_TYPE,
        info: Option<&mut CK_MECHANISM_INFO>,
    ) -> CK_RV {
        call!(self.C_GetMechanismInfo(slot, ty, opt(info)))
    }

    /// C_InitToken(slot, NULL, 0, NULL).
    pub fn init_token(&self, slot: CK_SLOT_ID) -> CK_RV {
        call!(self.C_InitToken(slot, null_mut(), 0, null_mut()))
    }

    /// C_InitPIN.
    pub fn init_pin(&self, h: CK_SESSION_HANDLE, pin: In<'_>) -> CK_RV {
        let (p, n) = pin.raw();
        call!(self.C_InitPIN(h, p, n))
    }

    /// C_SetPIN.
    pub fn set_pin(&self, h: CK_SESSION_HANDLE, old: In<'_>, new: In<'_>) -> CK_RV {
        let ((o, on), (n, nn)) = (old.raw(), new.raw());
        call!(self.C_SetPIN(h, o, on, n, nn))
    }

    /// C_OpenSession (no callback).
    pub fn open_session(
        &self,
        slot: CK_SLOT_ID,
        flags: CK_FLAGS,
        h: Option<&mut CK_SESSION_HANDLE>,
    ) -> CK_RV {
        call!(self.C_OpenSession(slot, flags, null_mut(), None, opt(h)))
    }

    /// C_CloseSession.
    pub fn close_session(&self, h: CK_SESSION_HANDLE) -> CK_RV {
        call!(self.C_CloseSession(h))
    }

    /// C_CloseAllSessions.
    pub fn close_all_sessions(&self, slot: CK_SLOT_ID) -> CK_RV {
        call!(self.C_CloseAllSessions(slot))
    }

    /// C_GetSessionInfo.
    pub fn get_session_info(&self, h: CK_SESSION_HANDLE, info: Option<&mut CK_SESSION_INFO>) -> CK_RV {
        call!(self.C_GetSessionInfo(h, opt(info)))
    }

    /// C_GetOperationState(h, NULL, &len).
    pub fn get_operation_state(&self, h: CK_SESSION_HANDLE) -> CK_RV {
        let mut len: CK_ULONG = 0;
        call!(self.C_GetOperationState(h, null_mut(), &mut len))
    }

    /// C_SetOperationState(h, NULL, 0, 0, 0).
    pub fn set_operation_state(&self, h: CK_SESSION_HANDLE) -> CK_RV {
        call!(self.C_SetOperationState(h, null_mut(), 0, 0, 0))
    }

    /// C_SeedRandom.
    pub fn seed_random(&self, h: CK_SESSION_HANDLE, seed: In<'_>) -> CK_RV {
        let (p, n) = seed.raw();
        call!(self.C_SeedRandom(h, p, n))
    }

    /// C_GetFunctionStatus (legacy).
    pub fn get_function_status(&self, h: CK_SESSION_HANDLE) -> CK_RV {
        call!(self.C_GetFunctionStatus(h))
    }

    /// C_CancelFunction (legacy).
    pub fn cancel_function(&self, h: CK_SESSION_HANDLE) -> CK_RV {
        call!(self.C_CancelFunction(h))
    }

    /// C_Login.
    pub fn login(&self, h: CK_SESSION_HANDLE, user: CK_USER_TYPE, pin: In<'_>) -> CK_RV {
        let (p, n) = pin.raw();
        call!(self.C_Login(h, user, p, n))
    }

    /// C_Logout.
    pub fn logout(&self, h: CK_SESSION_HANDLE) -> CK_RV {
        call!(self.C_Logout(h))
    }

    /// C_CreateObject.
    pub fn create_object(
        &self,
        h: CK_SESSION_HANDLE,
        attrs: &mut [Attr],
        out: &mut CK_OBJECT_HANDLE,
    ) -> CK_RV {
        let mut t = template(attrs);
        call!(self.C_CreateObject(h, t.as_mut_ptr(), t.len() as CK_ULONG, out))
    }

    /// C_CopyObject.
    pub fn copy_object(
        &self,
        h: CK_SESSION_HANDLE,
        o: CK_OBJECT_HANDLE,
        attrs: &mut [Attr],
        out: &mut CK_OBJECT_HANDLE,
    ) -> CK_RV {
        let mut t = template(attrs);
        call!(self.C_CopyObject(h, o, t.as_mut_ptr(), t.len() as CK_ULONG, out))
    }

    /// C_GetObjectSize.
    pub fn get_object_size(&self, h: CK_SESSION_HANDLE, o: CK_OBJECT_HANDLE, size: &mut CK_ULONG) -> CK_RV {
        call!(self.C_GetObjectSize(h, o, size))
    }

    /// C_GetAttributeValue; each attribute's `len` gets ulValueLen back.
    pub fn get_attribute_value(
        &self,
        h: CK_SESSION_HANDLE,
        o: CK_OBJECT_HANDLE,
        attrs: &mut [Attr],
    ) -> CK_RV {
        let mut t = template(attrs);
        let rv = call!(self.C_GetAttributeValue(h, o, t.as_mut_ptr(), t.len() as CK_ULONG));
        read_back(attrs, &t);
        rv
    }

    /// C_SetAttributeValue.
    pub fn set_attribute_value(
        &self,
        h: CK_SESSION_HANDLE,
        o: CK_OBJECT_HANDLE,
        attrs: &mut [Attr],
    ) -> CK_RV {
        let mut t = template(attrs);
        call!(self.C_SetAttributeValue(h, o, t.as_mut_ptr(), t.len() as CK_ULONG))
    }

    /// C_FindObjectsInit.
    pub fn find_objects_init(&self, h: CK_SESSION_HANDLE, attrs: &mut [Attr]) -> CK_RV {
        let mut t = template(attrs);
        call!(self.C_FindObjectsInit(h, t.as_mut_ptr(), t.len() as CK_ULONG))
    }

    /// C_FindObjects: up to `out.len()` handles, their number in `count`.
    pub fn find_objects(
        &self,
        h: CK_SESSION_HANDLE,
        out: &mut [CK_OBJECT_HANDLE],
        count: &mut CK_ULONG,
    ) -> CK_RV {
        call!(self.C_FindObjects(h, out.as_mut_ptr(), out.len() as CK_ULONG, count))
    }

    /// C_FindObjectsFinal.
    pub fn find_objects_final(&self, h: CK_SESSION_HANDLE) -> CK_RV {
        call!(self.C_FindObjectsFinal(h))
    }

    /// C_EncryptInit (NULL mechanism when `None`).
    pub fn encrypt_init(&self, h: CK_SESSION_HANDLE, m: Option<Mech>, key: CK_OBJECT_HANDLE) -> CK_RV {
        with_mech(m, |p| call!(self.C_EncryptInit(h, p, key)))
    }

    /// C_Encrypt.
    pub fn encrypt(&self, h: CK_SESSION_HANDLE, data: In<'_>, mut out: Out<'_>) -> CK_RV {
        let ((d, n), (o, l)) = (data.raw(), out.raw());
        call!(self.C_Encrypt(h, d, n, o, l))
    }

    /// C_DecryptInit.
    pub fn decrypt_init(&self, h: CK_SESSION_HANDLE, m: Option<Mech>, key: CK_OBJECT_HANDLE) -> CK_RV {
        with_mech(m, |p| call!(self.C_DecryptInit(h, p, key)))
    }

    /// C_Decrypt.
    pub fn decrypt(&self, h: CK_SESSION_HANDLE, data: In<'_>, mut out: Out<'_>) -> CK_RV {
        let ((d, n), (o, l)) = (data.raw(), out.raw());
        call!(self.C_Decrypt(h, d, n, o, l))
    }

    /// C_SignInit.
    pub fn sign_init(&self, h: CK_SESSION_HANDLE, m: Option<Mech>, key: CK_OBJECT_HANDLE) -> CK_RV {
        with_mech(m, |p| call!(self.C_SignInit(h, p, key)))
    }

    /// C_Sign.
    pub fn sign(&self, h: CK_SESSION_HANDLE, data: In<'_>, mut out: Out<'_>) -> CK_RV {
        let ((d, n), (o, l)) = (data.raw(), out.raw());
        call!(self.C_Sign(h, d, n, o, l))
    }

    /// C_SignUpdate.
    pub fn sign_update(&self, h: CK_SESSION_HANDLE, part: In<'_>) -> CK_RV {
        let (d, n) = part.raw();
        call!(self.C_SignUpdate(h, d, n))
    }

    /// C_SignFinal.
    pub fn sign_final(&self, h: CK_SESSION_HANDLE, mut out: Out<'_>) -> CK_RV {
        let (o, l) = out.raw();
        call!(self.C_SignFinal(h, o, l))
    }

    /// C_VerifyInit.
    pub fn verify_init(&self, h: CK_SESSION_HANDLE, m: Option<Mech>, key: CK_OBJECT_HANDLE) -> CK_RV {
        with_mech(m, |p| call!(self.C_VerifyInit(h, p, key)))
    }

    /// C_Verify.
    pub fn verify(&self, h: CK_SESSION_HANDLE, data: In<'_>, sig: In<'_>) -> CK_RV {
        let ((d, n), (s, sn)) = (data.raw(), sig.raw());
        call!(self.C_Verify(h, d, n, s, sn))
    }

    /// C_VerifyUpdate.
    pub fn verify_update(&self, h: CK_SESSION_HANDLE, part: In<'_>) -> CK_RV {
        let (d, n) = part.raw();
        call!(self.C_VerifyUpdate(h, d, n))
    }

    /// C_VerifyFinal.
    pub fn verify_final(&self, h: CK_SESSION_HANDLE, sig: In<'_>) -> CK_RV {
        let (s, n) = sig.raw();
        call!(self.C_VerifyFinal(h, s, n))
    }

    /// C_DigestInit.
    pub fn digest_init(&self, h: CK_SESSION_HANDLE, m: Option<Mech>) -> CK_RV {
        with_mech(m, |p| call!(self.C_DigestInit(h, p)))
    }

    /// C_Digest.
    pub fn digest(&self, h: CK_SESSION_HANDLE, data: In<'_>, mut out: Out<'_>) -> CK_RV {
        let ((d, n), (o, l)) = (data.raw(), out.raw());
        call!(self.C_Digest(h, d, n, o, l))
    }

    /// C_DigestUpdate.
    pub fn digest_update(&self, h: CK_SESSION_HANDLE, part: In<'_>) -> CK_RV {
        let (d, n) = part.raw();
        call!(self.C_DigestUpdate(h, d, n))
    }

    /// C_DigestFinal.
    pub fn digest_final(&self, h: CK_SESSION_HANDLE, mut out: Out<'_>) -> CK_RV {
        let (o, l) = out.raw();
        call!(self.C_DigestFinal(h, o, l))
    }
}

/// C structs whose all-zero bytes are a valid value.
///
/// # Safety
/// Only for types made of integers and byte arrays (no references, no function pointers).
pub unsafe trait Plain {}
// SAFETY: integers, byte arrays and CK_VERSION only.
unsafe impl Plain for CK_INFO {}
// SAFETY: as above.
unsafe impl Plain for CK_SLOT_INFO {}
// SAFETY: as above.
unsafe impl Plain for CK_TOKEN_INFO {}
// SAFETY: integers only.
unsafe impl Plain for CK_SESSION_INFO {}
// SAFETY: integers only.
unsafe impl Plain for CK_MECHANISM_INFO {}

/// A zeroed C struct to pass as an out-parameter.
pub fn blank<T: Plain>() -> T {
    // SAFETY: `Plain` types are integers and byte arrays, for which zero is valid.
    unsafe { std::mem::zeroed() }
}
