//! Decodes the fuzzer's bytes into C_* calls and checks each outcome (see the module docs).
//!
//! Pointers the harness passes are always valid for what it declares, except where a NULL
//! pointer is the point: a declared length larger than the real buffer is used only for output
//! buffers far larger than anything the module writes (the module must trust a declared
//! capacity; the harness never lets it write past the real one).

use std::ffi::c_void;
use std::ptr::null_mut;
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

use cpx_transport_virtual::{VirtualControl, VirtualReaders};
use cryptoki_sys::*;
use rsa::RsaPublicKey;

use super::rv_lists::{allowed, known_deviation};
use super::signatures::{SignOp, public_keys, verifies};

unsafe extern "C" {
    /// The module's own entry point, linked in from the `cpx_pkcs11` rlib.
    fn C_GetFunctionList(list: *mut *mut CK_FUNCTION_LIST) -> CK_RV;
}

/// The card images a run may use (first input byte), compiled into the emulator.
const IMAGES: [&str; 3] = ["cps3-doctor", "cps4-doctor", "cps3-contactless"];
/// At most this many calls per input: enough for any state, short enough for many runs.
const MAX_CALLS: usize = 64;
const READER: &str = "Virtual reader 0";

/// Set by the panic hook: the module catches panics at the ABI (CKR_GENERAL_ERROR), this sees
/// them anyway.
static PANICKED: AtomicBool = AtomicBool::new(false);

/// Print every call and its code (the seed replay sets it with `C_ABI_FUZZ_TRACE=1`).
pub static TRACE: AtomicBool = AtomicBool::new(false);

fn functions() -> &'static CK_FUNCTION_LIST {
    static mut LIST: *mut CK_FUNCTION_LIST = null_mut();
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // The module's panics, not the harness's own assertions (or a test's).
            let file = info.location().map(|l| l.file()).unwrap_or_default();
            if !file.contains("c_abi_fuzz") {
                PANICKED.store(true, Ordering::SeqCst);
            }
            previous(info);
        }));
        // Every run asks for the cache to be off: nothing is written to the disk, no state
        // crosses inputs.
        // SAFETY: set once, before any thread of the module exists.
        unsafe { std::env::set_var("CPX_PKCS11_CACHE", "off") };
        let mut list = null_mut();
        // SAFETY: a valid out-pointer.
        let rv = unsafe { C_GetFunctionList(&mut list) };
        assert!(rv == CKR_OK && !list.is_null(), "C_GetFunctionList: 0x{rv:X}");
        // SAFETY: written once under `Once`, read only after it.
        unsafe { LIST = list };
    });
    // SAFETY: set under `Once` above to the module's static, non-NULL list.
    unsafe { &*LIST }
}

/// The fuzzer's bytes, read as choices (0 once exhausted).
struct Input<'a> {
    data: &'a [u8],
    at: usize,
}

impl Input<'_> {
    fn done(&self) -> bool {
        self.at >= self.data.len()
    }
    fn byte(&mut self) -> u8 {
        let b = self.data.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        b
    }
    fn pick(&mut self, n: usize) -> usize {
        usize::from(self.byte()) % n
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.pick(max + 1);
        (0..n).map(|_| self.byte()).collect()
    }
    /// A length: 0, small, the usual sizes, or huge (only ever paired with NULL or with a real
    /// buffer of [`HUGE_REAL`] bytes).
    fn out_len(&mut self) -> OutLen {
        match self.pick(8) {
            0 => OutLen::Null,
            1 => OutLen::Real(0),
            2 => OutLen::Real(1),
            3 => OutLen::Real(20),
            4 => OutLen::Real(255),
            5 => OutLen::Real(256),
            6 => OutLen::Huge,
            _ => OutLen::Real(usize::from(self.byte()) * 4),
        }
    }
}

/// How an output buffer is passed.
#[derive(Clone, Copy, Debug)]
enum OutLen {
    /// NULL pointer (the size query), with a garbage declared length.
    Null,
    /// A real buffer of this many bytes, declared as such.
    Real(usize),
    /// A real buffer of [`HUGE_REAL`] bytes declared as `CK_ULONG::MAX`.
    Huge,
}

/// Larger than anything the module writes (a certificate, a signature, a data object).
const HUGE_REAL: usize = 1 << 16;

struct OutBuf {
    buf: Vec<u8>,
    len: CK_ULONG,
    null: bool,
}

impl OutBuf {
    fn new(mode: OutLen) -> OutBuf {
        match mode {
            OutLen::Null => OutBuf {
                buf: Vec::new(),
                len: 0x5A5A,
                null: true,
            },
            OutLen::Real(n) => OutBuf {
                buf: vec![0; n],
                len: n as CK_ULONG,
                null: false,
            },
            OutLen::Huge => OutBuf {
                buf: vec![0; HUGE_REAL],
                len: CK_ULONG::MAX,
                null: false,
            },
        }
    }
    fn ptr(&mut self) -> *mut CK_BYTE {
        if self.null {
            null_mut()
        } else {
            self.buf.as_mut_ptr()
        }
    }
    /// What the module wrote, when it wrote into a real buffer.
    fn written(&self) -> Option<&[u8]> {
        (!self.null).then(|| &self.buf[..(self.len as usize).min(self.buf.len())])
    }
}

/// Everything one input's run knows.
struct Run {
    control: VirtualControl,
    keys: Vec<RsaPublicKey>,
    pin: Vec<u8>,
    puk: Vec<u8>,
    initialized: bool,
    slots: Vec<CK_SLOT_ID>,
    open: Vec<CK_SESSION_HANDLE>,
    closed: Vec<CK_SESSION_HANDLE>,
    objects: Vec<CK_OBJECT_HANDLE>,
    signing: Vec<(CK_SESSION_HANDLE, SignOp)>,
    /// Whether a session handle of the call was one we closed.
    used_closed: bool,
    stats: Stats,
    /// Every call made and its code, in order.
    record: Vec<(&'static str, CK_RV)>,
}

/// What one input reached (the seed replay checks its seeds reach login, find and sign).
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    /// C_* calls made.
    pub calls: usize,
    /// C_Login answered CKR_OK.
    pub logins: usize,
    /// Objects C_FindObjects returned.
    pub objects: usize,
    /// Signatures answered CKR_OK and verified with a certificate.
    pub signatures: usize,
}

/// Run one input. Panics (the fuzzer's finding) when a call breaks a rule.
pub fn run(data: &[u8]) -> Stats {
    run_recorded(data).0
}

/// [`run`], with every call made and its code, in order (the hand-written sequences of
/// tests/c_abi_fuzz_seeds.rs check them).
pub fn run_recorded(data: &[u8]) -> (Stats, Vec<(&'static str, CK_RV)>) {
    let f = functions();
    let mut input = Input { data, at: 0 };
    let stem = IMAGES[input.pick(IMAGES.len())];
    let image = match cpx_emulator::builtin_image(stem) {
        Some(Ok(image)) => image,
        other => panic!("built-in image {stem}: {:?}", other.map(|r| r.err())),
    };
    let certificates: Vec<Vec<u8>> = [&image.sign, &image.auth, &image.tech]
        .into_iter()
        .flatten()
        .map(|k| k.cert.clone())
        .collect();
    // A fresh card per input: PIN tries burnt by one input never reach the next.
    let readers = VirtualReaders::new();
    let control = readers.insert(
        READER,
        cpx_emulator::into_virtual(cpx_emulator::card_from_image(&image)),
    );
    // SAFETY: NULL reserved pointer. Leftovers of a failed earlier input are cleared.
    unsafe { (f.C_Finalize.unwrap())(null_mut()) };
    PANICKED.store(false, Ordering::SeqCst);
    cpx_pkcs11::readers::use_virtual_readers(Some(readers));
    let mut run = Run {
        control,
        keys: public_keys(&certificates),
        pin: image.pin.as_ref().map(|p| p.value.clone()).unwrap_or_default(),
        puk: image.puk.as_ref().map(|p| p.value.clone()).unwrap_or_default(),
        initialized: false,
        slots: Vec::new(),
        open: Vec::new(),
        closed: Vec::new(),
        objects: Vec::new(),
        signing: Vec::new(),
        used_closed: false,
        stats: Stats::default(),
        record: Vec::new(),
    };
    let rv = unsafe { (f.C_Initialize.unwrap())(null_mut()) };
    run.check("C_Initialize", rv);
    run.initialized = rv == CKR_OK;
    let mut calls = 0;
    while !input.done() && calls < MAX_CALLS {
        calls += 1;
        run.used_closed = false;
        run.step(f, &mut input);
    }
    run.used_closed = false;
    let rv = unsafe { (f.C_Finalize.unwrap())(null_mut()) };
    run.check("C_Finalize", rv);
    cpx_pkcs11::readers::use_virtual_readers(None);
    (run.stats, run.record)
}

impl Run {
    /// The rules every call's outcome follows.
    fn check(&mut self, function: &'static str, rv: CK_RV) {
        self.stats.calls += 1;
        self.record.push((function, rv));
        if TRACE.load(Ordering::Relaxed) {
            eprintln!(
                "  {function} → 0x{rv:X}{}",
                if self.used_closed { " (closed session)" } else { "" }
            );
        }
        assert!(
            !PANICKED.swap(false, Ordering::SeqCst),
            "{function}: the module panicked"
        );
        assert!(
            allowed(function, rv) || known_deviation(function, rv).is_some(),
            "{function} returned 0x{rv:X}, not in its PKCS#11 2.40 §5 list"
        );
        // A known deviation answers before looking at the session (the legacy parallel
        // functions' FUNCTION_NOT_SUPPORTED, issue 14): it says nothing about the handle.
        if self.used_closed && known_deviation(function, rv).is_none() {
            assert!(
                matches!(
                    rv,
                    CKR_SESSION_HANDLE_INVALID | CKR_CRYPTOKI_NOT_INITIALIZED | CKR_ARGUMENTS_BAD
                ),
                "{function} on a closed session returned 0x{rv:X}"
            );
        }
    }

    fn slot(&mut self, input: &mut Input) -> CK_SLOT_ID {
        match input.pick(8) {
            0 => CK_SLOT_ID::from(input.byte()),
            1 => CK_SLOT_ID::MAX,
            _ => self.slots.first().copied().unwrap_or(0),
        }
    }

    fn session(&mut self, input: &mut Input) -> CK_SESSION_HANDLE {
        let b = input.byte();
        if b < 170 && !self.open.is_empty() {
            return self.open[usize::from(b) % self.open.len()];
        }
        if b < 220 && !self.closed.is_empty() {
            self.used_closed = true;
            return self.closed[usize::from(b) % self.closed.len()];
        }
        match b % 3 {
            0 => CK_INVALID_HANDLE,
            1 => CK_SESSION_HANDLE::MAX,
            _ => CK_SESSION_HANDLE::from(input.u32()),
        }
    }

    fn object(&mut self, input: &mut Input) -> CK_OBJECT_HANDLE {
        let b = input.byte();
        if b < 200 && !self.objects.is_empty() {
            return self.objects[usize::from(b) % self.objects.len()];
        }
        match b % 3 {
            0 => CK_INVALID_HANDLE,
            1 => CK_OBJECT_HANDLE::MAX,
            _ => CK_OBJECT_HANDLE::from(input.u32()),
        }
    }

    /// A session closed by us: gone for good (handles are never reused).
    fn closed(&mut self, h: CK_SESSION_HANDLE) {
        self.open.retain(|s| *s != h);
        self.signing.retain(|(s, _)| *s != h);
        if !self.closed.contains(&h) {
            self.closed.push(h);
        }
    }

    fn close_all(&mut self) {
        for h in std::mem::take(&mut self.open) {
            self.closed(h);
        }
    }

    fn step(&mut self, f: &CK_FUNCTION_LIST, input: &mut Input) {
        match input.pick(32) {
            0 => self.initialize(f, input),
            1 => {
                let reserved = if input.pick(8) == 0 {
                    8 as *mut c_void
                } else {
                    null_mut()
                };
                let rv = unsafe { (f.C_Finalize.unwrap())(reserved) };
                self.check("C_Finalize", rv);
                if rv == CKR_OK {
                    self.initialized = false;
                    self.close_all();
                    self.objects.clear();
                }
            }
            2 => {
                let mut info = unsafe { std::mem::zeroed::<CK_INFO>() };
                let p = if input.pick(4) == 0 {
                    null_mut()
                } else {
                    &mut info as *mut _
                };
                self.check("C_GetInfo", unsafe { (f.C_GetInfo.unwrap())(p) });
            }
            3 => self.slot_list(f, input),
            4 => {
                let slot = self.slot(input);
                let mut info = unsafe { std::mem::zeroed::<CK_SLOT_INFO>() };
                let p = if input.pick(8) == 0 {
                    null_mut()
                } else {
                    &mut info as *mut _
                };
                self.check("C_GetSlotInfo", unsafe { (f.C_GetSlotInfo.unwrap())(slot, p) });
            }
            5 => {
                let slot = self.slot(input);
                let mut info = unsafe { std::mem::zeroed::<CK_TOKEN_INFO>() };
                let p = if input.pick(8) == 0 {
                    null_mut()
                } else {
                    &mut info as *mut _
                };
                self.check("C_GetTokenInfo", unsafe { (f.C_GetTokenInfo.unwrap())(slot, p) });
            }
            6 => self.mechanism_list(f, input),
            7 => {
                let slot = self.slot(input);
                let mech = mechanism_type(input);
                let mut info = unsafe { std::mem::zeroed::<CK_MECHANISM_INFO>() };
                let p = if input.pick(8) == 0 {
                    null_mut()
                } else {
                    &mut info as *mut _
                };
                self.check("C_GetMechanismInfo", unsafe {
                    (f.C_GetMechanismInfo.unwrap())(slot, mech, p)
                });
            }
            8 | 9 => self.open_session(f, input),
            10 => {
                let h = self.session(input);
                let rv = unsafe { (f.C_CloseSession.unwrap())(h) };
                self.check("C_CloseSession", rv);
                if rv == CKR_OK {
                    self.closed(h);
                }
            }
            11 => {
                let slot = self.slot(input);
                let rv = unsafe { (f.C_CloseAllSessions.unwrap())(slot) };
                self.check("C_CloseAllSessions", rv);
                if rv == CKR_OK {
                    self.close_all();
                }
            }
            12 => {
                let h = self.session(input);
                let mut info = unsafe { std::mem::zeroed::<CK_SESSION_INFO>() };
                let p = if input.pick(8) == 0 {
                    null_mut()
                } else {
                    &mut info as *mut _
                };
                self.check("C_GetSessionInfo", unsafe { (f.C_GetSessionInfo.unwrap())(h, p) });
            }
            13 | 14 => self.login(f, input),
            15 => {
                let h = self.session(input);
                self.check("C_Logout", unsafe { (f.C_Logout.unwrap())(h) });
            }
            16 | 17 => self.find(f, input),
            18 => self.get_attributes(f, input),
            19 | 20 => self.sign_init(f, input),
            21 | 22 => self.sign(f, input),
            23 => self.sign_update(f, input),
            24 => self.verify(f, input),
            25 => self.digest(f, input),
            26 => self.decrypt(f, input),
            27 => self.random(f, input),
            28 => self.set_pin(f, input),
            29 => self.card(input),
            30 => self.set_attribute(f, input),
            _ => self.odd_ones(f, input),
        }
    }

    fn initialize(&mut self, f: &CK_FUNCTION_LIST, input: &mut Input) {
        let mut args = CK_C_INITIALIZE_ARGS {
            CreateMutex: None,
            DestroyMutex: None,
            LockMutex: None,
            UnlockMutex: None,
            flags: 0,
            pReserved: null_mut(),
        };
        let p = match input.pick(4) {
            0 => null_mut(),
            1 => {
                args.flags = CKF_OS_LOCKING_OK;
                &mut args as *mut _ as *mut c_void
            }
            2 => {
                args.flags = CK_FLAGS::from(input.byte());
                args.pReserved = 8 as *mut c_void;
                &mut args as *mut _ as *mut c_void
            }
            _ => {
                args.flags = CKF_LIBRARY_CANT_CREATE_OS_THREADS;
                &mut args as *mut _ as *mut c_void
            }
        };
        let rv = unsafe { (f.C_Initialize.unwrap())(p) };
        self.check("C_Initialize", rv);
        if rv == CKR_OK {
            self.initialized = true;
        }
    }

    fn slot_list(&mut self, f: &CK_FUNCTION_LIST, input: &mut Input) {
        let present = CK_BBOOL::from(input.pick(2) == 0);
        let mut list = vec![0 as CK_SLOT_ID; input.pick(4)];
        let mut count = list.len() as CK_ULONG;
        let (plist, pcount) = match input.pick(6) {
            0 => (null_mut(), &mut count as *mut _),
            1 => (list.as_mut_ptr(), null_mut()),
            _ => (list.as_mut_ptr(), &mut count as *mut _),
        };
        let rv = unsafe { (f.C_GetSlotList.unwrap())(present, plist, pcount) };
        self.check("C_GetSlotList", rv);
        if rv == CKR_OK && !plist.is_null() {
            for s in &list[..count as usize] {
                if !self.slots.contains(s) {
                    self.slots.push(*s);
                }
            }
        }
    }

    fn mechanism_list(&mut self, f: &CK_FUNCTION_LIST, input: &mut Input) {
        let slot = self.slot(input);
        let mut list = vec![0 as CK_MECHANISM_TYPE; input.pick(12)];
        let mut count = list.len() as CK_ULONG;
        let (plist, pcount) = match input.pick(6) {
            0 => (null_mut(), &mut count as *mut _),
            1 => (list.as_mut_ptr(), null_mut()),
            _ => (list.as_mut_ptr(), &mut count as *mut _),
        };
        self.check("C_GetMechanismList", unsafe {
            (f.C_GetMechanismList.unwrap())(slot, plist, pcount)
        });
    }

    fn open_session(&mut self, f: &CK_FUNCTION_LIST, input: &mut Input) {
        let slot = self.slot(input);
        let flags = match input.pick(5) {
            0 => CKF_SERIAL_SESSION | CKF_RW_SESSION,
            1 => CKF_RW_SESSION,
            2 => CK_FLAGS::from(input.u32()),
            _ => CKF_SERIAL_SESSION,
        };
        let mut h: CK_SESSION_HANDLE = 0;
        let ph = if input.pick(10) == 0 {
            null_mut()
        } else {
            &mut h as *mut _
        };
        let rv = unsafe { (f.C_OpenSession.unwrap())(slot, flags, null_mut(), None, ph) };
        self.check("C_OpenSession", rv);
        if rv == CKR_OK {
            assert!(
                !self.closed.contains(&h),
                "C_OpenSession reused the closed handle {h}"
            );
            self.open.push(h);
        }
    }

    fn pin(&mut self, input: &mut Input, right: &[u8]) -> (Vec<u8>, bool) {
        match input.pick(8) {
            0..=3 => (right.to_vec(), true),
            4 => {
                // Same length, last digit changed: reaches the card and costs a try.
                let mut wrong = right.to_vec();
                if let Some(last) = wrong.last_mut() {
                    *last = if *last == b'9' { b'0' } else { *last + 1 };
                }
                (wrong, right.is_empty())
            }
            5 => (Vec::new(), right.is_empty()),
            _ => {
                let pin = input.bytes(20);
                let same = pin == right;
                (pin, same)
            }
        }
    }

    fn login(&mut self, f: &CK_FUNCTION_LIST, input: &mut Input) {
        let h = self.session(input);
        let user = match input.pick(6) {
            0 => CKU_SO,
            1 => CKU_CONTEXT_SPECIFIC,
            2 => CK_USER_TYPE::from(input.u32()),
            _ => CKU_USER,
        };
        let right = if user == CKU_SO {
            self.puk.clone()
        } else {
            self.pin.clone()
        };
        let (pin, is_right) = self.pin(input, &right);
        let null = input.pick(12) == 0;
        let p = if null {
            null_mut()
        } else {
            pin.as_ptr() as *mut CK_UTF8CHAR
        };
        let rv = unsafe { (f.C_Login.unwrap())(h, user, p, pin.len() as CK_ULONG) };
        self.check("C_Login", rv);
        if rv == CKR_OK {
            assert!(is_right && !null, "C_Login succeeded with a wrong PIN");
            self.stats.logins += 1;
        }
    }

    fn set_pin(&mut self, f: &CK_FUNCTION_LIST, input: &mut Input) {
        let h = self.session(input);
        let init = input.pick(3) == 0;
        let current = self.pin.clone();
        let (old, old_right) = self.pin(input, &current);
        let new: Vec<u8> = match input.pick(4) {
            0 => input.bytes(12),
            _ => {
                // A valid PIN of the card's length (digits).
                let n = current.len().max(4);
                (0..n).map(|_| b'0' + input.byte() % 10).collect()
            }
        };
        let rv = if init {
            unsafe { (f.C_InitPIN.unwrap())(h, new.as_ptr() as *mut _, new.len() as CK_ULONG) }
        } else {
            unsafe {
                (f.C_SetPIN.unwrap())(
                    h,
                    old.as_ptr() as *mut _,
                    old.len() as CK_ULONG,
                    new.as_ptr() as *mut _,
                    new.len() as CK_ULONG,
                )
            }
        };
        self.check(if init { "C_InitPIN" } else { "C_SetPIN" }, rv);
        if rv == CKR_OK {
            assert!(init || old_right, "C_SetPIN succeeded with a wrong old PIN");
            self.pin = new;
        }
    }

    fn find(&mut self, f: &CK_FUNCTION_LIST, input: &mut Input) {
        let h = self.session(input);
        let mut values: Vec<Vec<u8>> = Vec::new();
        let mut template = Vec::new();
        for _ in 0..input.pick(4) {
            let kind = attribute_type(input);
            let value = match input.pick(5) {
                // A well-formed CK_ULONG (class, key type).
                0 => (CK_ULONG::from(input.byte() % 5)).to_ne_bytes().to_vec(),
                1 => vec![CK_BBOOL::from(input.byte() % 3)],
                _ => input.bytes(40),
            };
            values.push(value);
            template.push((kind, input.pick(8) == 0));
        }
        let mut attrs: Vec<CK_ATTRIBUTE> = template
            .iter()
            .zip(values.iter_mut())
            .map(|((kind, null), v)| CK_ATTRIBUTE {
                type_: *kind,
                pValue: if *null {
                    null_mut()
                } else {
                    v.as_mut_ptr() as *mut c_void
                },
                ulValueLen: if *null { 100 } else { v.len() as CK_ULONG },
            })
            .collect();
        let p = if attrs.is_empty() && input.pick(2) == 0 {
            null_mut()
        } else {
            attrs.as_mut_ptr()
        };
        let rv = unsafe { (f.C_FindObjectsInit.unwrap())(h, p, attrs.len() as CK_ULONG) };
        self.check("C_FindObjectsInit", rv);
        let used_closed = self.used_closed;
        for _ in 0..input.pick(3) {
            let mut found = vec![0 as CK_OBJECT_HANDLE; input.pick(6)];
            let mut count: CK_ULONG = 0x5A;
            let (pf, pc) = match input.pick(8) {
                0 => (null_mut(), &mut count as *mut _),
                1 => (found.as_mut_ptr(), null_mut()),
                _ => (found.as_mut_ptr(), &mut count as *mut _),
            };
            let rv = unsafe { (f.C_FindObjects.unwrap())(h, pf, found.len() as CK_ULONG, pc) };
            self.used_closed = used_closed;
            self.check("C_FindObjects", rv);
            if rv == CKR_OK && !pf.is_null() && !pc.is_null() {
                assert!(
                    count as usize <= found.len(),
                    "C_FindObjects: {count} objects in {}",
                    found.len()
                );
                self.stats.objects += count as usize;
                for o in &found[..count as usize] {
                    if !self.objects.contains(o) {
                        self.objects.push(*o);
                    }
                }
            }
        }
        if input.pick(2) == 0 {
            self.used_closed = used_closed;
            self.check("C_FindObjectsFinal", unsafe {
                (f.C_FindObjectsFinal.unwrap())(h)
            });
        }
    }

    fn get_attributes(&mut self, f: &CK_FUNCTION_LIST, input: &mut Input) {
        let h = self.session(input);
        let o = self.object(input);
        let mut bufs: Vec<OutBuf> = Vec::new();
        let mut kinds = Vec::new();
        for _ in 0..input.pick(5) {
            kinds.push(attribute_type(input));
            bufs.push(OutBuf::new(input.out_len()));
        }
        let mut attrs: Vec<CK_ATTRIBUTE> = kinds
            .iter()
            .zip(bufs.iter_mut())
            .map(|(kind, b)| CK_ATTRIBUTE {
                type_: *kind,
                pValue: b.ptr() as *mut c_void,
                ulValueLen: b.len,
            })
            .collect();
        let p = if input.pick(10) == 0 {
            null_mut()
        } else {
            attrs.as_mut_ptr()
        };
        let rv = unsafe { (f.C_GetAttributeValue.unwrap())(h, o, p, attrs.len() as CK_ULONG) };
        self.check("C_GetAttributeValue", rv);
        if rv != CKR_OK || p.is_null() {
            return;
        }
        // The two-call pattern every client uses: a length answered to a size query (NULL
        // pValue) fetches the value, with that exact length, at once.
        for (attr, buf) in attrs.iter().zip(&bufs) {
            let n = attr.ulValueLen;
            if !buf.null || n == CK_UNAVAILABLE_INFORMATION {
                continue;
            }
            assert!(
                n as usize <= HUGE_REAL,
                "C_GetAttributeValue size query: {n} bytes"
            );
            let mut value = vec![0u8; n as usize];
            let mut again = CK_ATTRIBUTE {
                type_: attr.type_,
                pValue: value.as_mut_ptr() as *mut c_void,
                ulValueLen: n,
            };
            let rv = unsafe { (f.C_GetAttributeValue.unwrap())(h, o, &mut again, 1) };
            self.check("C_GetAttributeValue", rv);
            assert!(
                rv == CKR_OK && again.ulValueLen == n,
                "attribute 0x{:X}: size query said {n} bytes, the fetch 0x{rv:X} with {}",
                attr.type_,
                again.ulValueLen
            );
        }
    }

    fn set_attribute(&mut self, f: &CK_FUNCTION_LIST, input: &mut Input) {
        let h = self.session(input);
        let o = self.object(input);
        let mut value = input.bytes(64);
        let kind = attribute_type(input);
        let null = input.pick(8) == 0;
        let mut attr = CK_ATTRIBUTE {
            type_: kind,
            pValue: if null {
                null_mut()
            } else {
                value.as_mut_ptr() as *mut c_void
            },
            ulValueLen: if null { 100 } else { value.len() as CK_ULONG },
        };
        let rv = unsafe { (f.C_SetAttributeValue.unwrap())(h, o, &mut attr, 1) };
        self.check("C_SetAttributeValue", rv);
    }

    fn sign_init(&mut self, f: &CK_FUNCTION_LIST, input: &mut Input) {
        let h = self.session(input);
        let (mut mech, _param, pss) = mechanism(input);
        let key = self.object(input);
        let p = if input.pick(12) == 0 {
            null_mut()
        } else {
            &mut mech as *mut _
        };
        let rv = unsafe { (f.C_SignInit.unwrap())(h, p, key) };
        self.check("C_SignInit", rv);
        if rv == CKR_OK {
            self.signing.retain(|(s, _)| *s != h);
            self.signing.push((
                h,
                SignOp {
                    mechanism: mech.mechanism,
                    pss,
                    parts: Vec::new(),
                },
            ));
        }
    }

    fn sign_update(&mut self, f: &CK_FUNCTION_LIST, input: &mut Input) {
        let h = self.session(input);
        let data = input.bytes(80);
        let null = input.pick(12) == 0;
        let p = if null { null_mut() } else { data.as_ptr() as *mut _ };
        let rv = unsafe { (f.C_SignUpdate.unwrap())(h, p, data.len() as CK_ULONG) };
        self.check("C_SignUpdate", rv);
        match self.signing.iter_mut().find(|(s, _)| *s == h) {
            Some((_, op)) if rv == CKR_OK => op.parts.extend_from_slice(&data),
            Some(_) => self.signing.retain(|(s, _)| *s != h),
            None => {}
        }
    }

    fn sign(&mut self, f: &CK_FUNCTION_LIST, input: &mut Input) {
        let h = self.session(input);
        let final_ = input.pick(4) == 0;
        let data = match input.pick(4) {
            0 => vec![0xAB; 20],
            1 => vec![0xCD; 32],
            _ => input.bytes(120),
        };
        let null_data = input.pick(16) == 0;
        let mut out = OutBuf::new(input.out_len());
        let mut len = out.len;
        let plen = if input.pick(16) == 0 {
            null_mut()
        } else {
            &mut len as *mut _
        };
        let (function, rv) = if final_ {
            ("C_SignFinal", unsafe {
                (f.C_SignFinal.unwrap())(h, out.ptr(), plen)
            })
        } else {
            let pd = if null_data {
                null_mut()
            } else {
                data.as_ptr() as *mut _
            };
            ("C_Sign", unsafe {
                (f.C_Sign.unwrap())(h, pd, data.len() as CK_ULONG, out.ptr(), plen)
            })
        };
        self.check(function, rv);
        out.len = len;
        let op = self
            .signing
            .iter()
            .find(|(s, _)| *s == h)
            .map(|(_, op)| op.clone());
        let size_query = rv == CKR_OK && out.null;
        if rv == CKR_OK
            && let (Some(op), Some(signature)) = (op, out.written())
        {
            let message = if final_ { op.parts.clone() } else { data.clone() };
            // Issue 14: C_Sign after C_SignUpdate signs the concatenation today.
            let joined = [op.parts.as_slice(), data.as_slice()].concat();
            assert!(
                verifies(&self.keys, &op, &message, signature)
                    || (!final_ && !op.parts.is_empty() && verifies(&self.keys, &op, &joined, signature)),
                "{function} CKR_OK with a signature that does not verify ({op:?}, {} bytes)",
                signature.len()
            );
            self.stats.signatures += 1;
        }
        if !(size_query || rv == CKR_BUFFER_TOO_SMALL) {
            self.signing.retain(|(s, _)| *s != h);
        }
    }

    fn verify(&mut self, f: &CK_FUNCTION_LIST, input: &mut Input) {
        let h = self.session(input);
        let (mut mech, _param, _) = mechanism(input);
        let key = self.object(input);
        let rv = unsafe { (f.C_VerifyInit.unwrap())(h, &mut mech, key) };
        self.check("C_VerifyInit", rv);
        let data = input.bytes(64);
        let sig = input.bytes(255);
        let rv = unsafe {
            (f.C_Verify.unwrap())(
                h,
                data.as_ptr() as *mut _,
                data.len() as CK_ULONG,
                sig.as_ptr() as *mut _,
                sig.len() as CK_ULONG,
            )
        };
        self.check("C_Verify", rv);
    }

    fn digest(&mut self, f: &CK_FUNCTION_LIST, input: &mut Input) {
        let h = self.session(input);
        let (mut mech, _param, _) = mechanism(input);
        let rv = unsafe { (f.C_DigestInit.unwrap())(h, &mut mech) };
        self.check("C_DigestInit", rv);
        let data = input.bytes(100);
        let mut out = OutBuf::new(input.out_len());
        let mut len = out.len;
        let rv = match input.pick(3) {
            0 => {
                let rv = unsafe {
                    (f.C_DigestUpdate.unwrap())(h, data.as_ptr() as *mut _, data.len() as CK_ULONG)
                };
                self.check("C_DigestUpdate", rv);
                ("C_DigestFinal", unsafe {
                    (f.C_DigestFinal.unwrap())(h, out.ptr(), &mut len)
                })
            }
            _ => ("C_Digest", unsafe {
                (f.C_Digest.unwrap())(
                    h,
                    data.as_ptr() as *mut _,
                    data.len() as CK_ULONG,
                    out.ptr(),
                    &mut len,
                )
            }),
        };
        self.check(rv.0, rv.1);
    }

    fn decrypt(&mut self, f: &CK_FUNCTION_LIST, input: &mut Input) {
        let h = self.session(input);
        let (mut mech, _param, _) = mechanism(input);
        let key = self.object(input);
        let rv = unsafe { (f.C_DecryptInit.unwrap())(h, &mut mech, key) };
        self.check("C_DecryptInit", rv);
        let data = match input.pick(3) {
            0 => vec![0; 256],
            1 => vec![0xFF; 256],
            _ => input.bytes(255),
        };
        let mut out = OutBuf::new(input.out_len());
        let mut len = out.len;
        let rv = unsafe {
            (f.C_Decrypt.unwrap())(
                h,
                data.as_ptr() as *mut _,
                data.len() as CK_ULONG,
                out.ptr(),
                &mut len,
            )
        };
        self.check("C_Decrypt", rv);
    }

    fn random(&mut self, f: &CK_FUNCTION_LIST, input: &mut Input) {
        let h = self.session(input);
        let n = match input.pick(4) {
            0 => 0,
            1 => 1,
            _ => usize::from(input.byte()) + 1,
        };
        let mut buf = vec![0u8; n];
        let p = if input.pick(10) == 0 {
            null_mut()
        } else {
            buf.as_mut_ptr()
        };
        let rv = unsafe { (f.C_GenerateRandom.unwrap())(h, p, n as CK_ULONG) };
        self.check("C_GenerateRandom", rv);
    }

    /// Card events: pulled out, put back, reset by another program.
    fn card(&mut self, input: &mut Input) {
        match input.pick(3) {
            0 => self.control.remove(),
            1 => {
                if !self.control.is_present() {
                    self.control.insert();
                }
            }
            _ => self.control.reset(),
        }
        // Sessions of a card that went stay among the picks of open ones (their calls answer
        // DEVICE_REMOVED or SESSION_HANDLE_INVALID, both in every session function's list);
        // they were not closed by C_CloseSession, so the closed-handle rule does not cover them.
        if input.pick(2) == 0 {
            let mut slot: CK_SLOT_ID = 0;
            let rv =
                unsafe { (functions().C_WaitForSlotEvent.unwrap())(CKF_DONT_BLOCK, &mut slot, null_mut()) };
            self.check("C_WaitForSlotEvent", rv);
        }
    }

    fn odd_ones(&mut self, f: &CK_FUNCTION_LIST, input: &mut Input) {
        let h = self.session(input);
        match input.pick(5) {
            0 => self.check("C_GetFunctionStatus", unsafe {
                (f.C_GetFunctionStatus.unwrap())(h)
            }),
            1 => self.check("C_CancelFunction", unsafe { (f.C_CancelFunction.unwrap())(h) }),
            2 => {
                let seed = input.bytes(16);
                let rv =
                    unsafe { (f.C_SeedRandom.unwrap())(h, seed.as_ptr() as *mut _, seed.len() as CK_ULONG) };
                self.check("C_SeedRandom", rv);
            }
            3 => {
                // At any time, initialised or not: NULL is refused, a pointer gets the same list.
                self.used_closed = false;
                let null = input.pick(2) == 0;
                let mut list: *mut CK_FUNCTION_LIST = null_mut();
                let p = if null { null_mut() } else { &mut list as *mut _ };
                let rv = unsafe { (f.C_GetFunctionList.unwrap())(p) };
                self.check("C_GetFunctionList", rv);
                if null {
                    assert_eq!(rv, CKR_ARGUMENTS_BAD, "C_GetFunctionList(NULL)");
                } else {
                    assert!(
                        rv == CKR_OK && std::ptr::eq(list, f),
                        "C_GetFunctionList: another list"
                    );
                }
            }
            _ => {
                self.used_closed = false;
                let mut slot: CK_SLOT_ID = 0;
                let p = if input.pick(4) == 0 {
                    null_mut()
                } else {
                    &mut slot as *mut _
                };
                // Always CKF_DONT_BLOCK: a blocking wait would wait for a card event forever.
                let rv = unsafe { (f.C_WaitForSlotEvent.unwrap())(CKF_DONT_BLOCK, p, null_mut()) };
                self.check("C_WaitForSlotEvent", rv);
            }
        }
    }
}

fn mechanism_type(input: &mut Input) -> CK_MECHANISM_TYPE {
    const TYPES: [CK_MECHANISM_TYPE; 10] = [
        CKM_RSA_PKCS,
        CKM_SHA1_RSA_PKCS,
        CKM_SHA256_RSA_PKCS,
        CKM_RSA_PKCS_PSS,
        CKM_SHA1_RSA_PKCS_PSS,
        CKM_SHA256_RSA_PKCS_PSS,
        CKM_SHA_1,
        CKM_SHA256,
        CKM_RSA_X_509,
        CKM_SHA512_RSA_PKCS,
    ];
    match input.pick(12) {
        10 => CK_MECHANISM_TYPE::from(input.u32()),
        11 => CKM_VENDOR_DEFINED | CK_MECHANISM_TYPE::from(input.byte()),
        i => TYPES[i],
    }
}

/// Storage for a mechanism's parameter, kept alive for the call.
pub struct Param(Vec<u8>);

/// A mechanism with a chosen parameter: none, NULL with length 100, garbage, or PSS parameters
/// (well-formed or not); and the PSS (hash, salt) the harness expects when they are well-formed.
fn mechanism(input: &mut Input) -> (CK_MECHANISM, Param, Option<(CK_MECHANISM_TYPE, usize)>) {
    let kind = mechanism_type(input);
    let mut param = Param(Vec::new());
    let mut pss = None;
    let (ptr, len): (*mut c_void, CK_ULONG) = match input.pick(6) {
        0 => (null_mut(), 100),
        1 => {
            param.0 = input.bytes(64);
            (param.0.as_mut_ptr() as *mut c_void, param.0.len() as CK_ULONG)
        }
        2 | 3 => {
            let hash = [
                CKM_SHA_1,
                CKM_SHA256,
                CKM_SHA512,
                CK_MECHANISM_TYPE::from(input.byte()),
            ][input.pick(4)];
            let mgf = [
                CKG_MGF1_SHA1,
                CKG_MGF1_SHA256,
                CK_RSA_PKCS_MGF_TYPE::from(input.byte()),
            ][input.pick(3)];
            let salt = [20, 32, 0, 300][input.pick(4)];
            let p = CK_RSA_PKCS_PSS_PARAMS {
                hashAlg: hash,
                mgf,
                sLen: salt,
            };
            let size = std::mem::size_of::<CK_RSA_PKCS_PSS_PARAMS>();
            // SAFETY: plain integers, copied as bytes.
            param.0 = unsafe { std::slice::from_raw_parts(&p as *const _ as *const u8, size) }.to_vec();
            let declared = if input.pick(6) == 0 { size - 1 } else { size };
            if declared == size {
                pss = Some((hash, salt as usize));
            }
            (param.0.as_mut_ptr() as *mut c_void, declared as CK_ULONG)
        }
        _ => (null_mut(), 0),
    };
    (
        CK_MECHANISM {
            mechanism: kind,
            pParameter: ptr,
            ulParameterLen: len,
        },
        param,
        pss,
    )
}

fn attribute_type(input: &mut Input) -> CK_ATTRIBUTE_TYPE {
    const TYPES: [CK_ATTRIBUTE_TYPE; 14] = [
        CKA_CLASS,
        CKA_ID,
        CKA_LABEL,
        CKA_VALUE,
        CKA_KEY_TYPE,
        CKA_MODULUS,
        CKA_PUBLIC_EXPONENT,
        CKA_PRIVATE,
        CKA_TOKEN,
        CKA_SIGN,
        CKA_CERTIFICATE_TYPE,
        CKA_VALUE_LEN,
        CKA_MODIFIABLE,
        CKA_APPLICATION,
    ];
    match input.pick(16) {
        14 => CK_ATTRIBUTE_TYPE::from(input.u32()),
        15 => CKA_VENDOR_DEFINED | CK_ATTRIBUTE_TYPE::from(input.byte()),
        i => TYPES[i],
    }
}
