//! The state the steps of one card's plan share, and the unreported calls they build on
//! (initialise, find the card's slot, open a session, log in, find objects, read attributes).

use std::collections::HashMap;

use cpx_testkit::ReaderLease;
use cpx_vpcd::CardSlot;
use cryptoki_sys::*;

use crate::raw::{Attr, In, Module, Out, blank};
use crate::runner::{StepResult, rv_name};

/// The test PIN (docs/card-spec.md §6 "Test inputs": length 4; the emulator images' PIN).
pub const PIN: &[u8] = b"1234";

/// The authentication certificate's label (docs/card-spec.md §5.3).
pub const AUTH_CERT: &str = "Certificat d'Authentification CPS";
/// The signature certificate's label (docs/card-spec.md §5.3).
pub const SIG_CERT: &str = "Certificat de Signature CPS";

/// The plan's invalid session handle (`0xFFFFFFFF` in the official program).
pub const BAD_SESSION: CK_SESSION_HANDLE = 0xFFFF_FFFF;

/// State shared by the steps of one card's plan.
pub struct Ctx {
    /// The loaded module.
    pub p11: &'static Module,
    /// The PC/SC reader holding the card.
    pub reader: String,
    /// The card in that reader (removal and reinsertion rows).
    pub card: CardSlot,
    /// Sessions by name.
    pub sessions: HashMap<&'static str, CK_SESSION_HANDLE>,
    /// Object handles by name.
    pub objects: HashMap<&'static str, CK_OBJECT_HANDLE>,
    /// Data kept between rows (signatures, ciphertext…).
    pub blobs: HashMap<&'static str, Vec<u8>>,
    /// Another reader and card some rows use (the mute card of row 1201).
    pub other: Option<(ReaderLease, CardSlot)>,
    /// Extra detail a step gives for the report of its row.
    pub detail: Option<String>,
    _lease: ReaderLease,
}

/// Err unless `rv` is CKR_OK.
pub fn ok(rv: CK_RV, what: &str) -> Result<(), String> {
    if rv == CKR_OK {
        Ok(())
    } else {
        Err(format!("{what}: {}", rv_name(rv)))
    }
}

impl Ctx {
    /// A context for the card in `lease`.
    pub fn new(p11: &'static Module, lease: ReaderLease, card: CardSlot) -> Ctx {
        Ctx {
            p11,
            reader: lease.name.clone(),
            card,
            sessions: HashMap::new(),
            objects: HashMap::new(),
            blobs: HashMap::new(),
            other: None,
            detail: None,
            _lease: lease,
        }
    }

    /// C_Initialize(NULL), which must succeed.
    pub fn init(&mut self) -> Result<(), String> {
        ok(self.p11.initialize(None), "C_Initialize")
    }

    /// C_Finalize; "not initialised" is fine. Forgets the sessions.
    pub fn finalize(&mut self) -> Result<(), String> {
        self.sessions.clear();
        match self.p11.finalize() {
            CKR_OK | CKR_CRYPTOKI_NOT_INITIALIZED => Ok(()),
            rv => Err(format!("C_Finalize: {}", rv_name(rv))),
        }
    }

    /// The slot of our reader (slot IDs are the module's; found by slotDescription).
    pub fn slot(&self) -> Result<CK_SLOT_ID, String> {
        self.slot_of(&self.reader)
    }

    /// The slot of a reader.
    pub fn slot_of(&self, reader: &str) -> Result<CK_SLOT_ID, String> {
        for s in self.slots(false)? {
            let mut info: CK_SLOT_INFO = blank();
            ok(self.p11.get_slot_info(s, Some(&mut info)), "C_GetSlotInfo")?;
            if text(&info.slotDescription) == reader {
                return Ok(s);
            }
        }
        Err(format!("no slot for reader {reader:?}"))
    }

    /// C_GetSlotList, both calls.
    pub fn slots(&self, present: bool) -> Result<Vec<CK_SLOT_ID>, String> {
        let mut n: CK_ULONG = 0;
        ok(
            self.p11.get_slot_list(present, None, Some(&mut n)),
            "C_GetSlotList",
        )?;
        let mut list = vec![0; n as usize];
        ok(
            self.p11.get_slot_list(present, Some(&mut list), Some(&mut n)),
            "C_GetSlotList",
        )?;
        list.truncate(n as usize);
        Ok(list)
    }

    /// Open a session on our slot and name it.
    pub fn open(&mut self, name: &'static str, rw: bool) -> StepResult {
        let slot = self.slot()?;
        let flags = CKF_SERIAL_SESSION | if rw { CKF_RW_SESSION } else { 0 };
        let mut h = 0;
        let rv = self.p11.open_session(slot, flags, Some(&mut h));
        if rv == CKR_OK {
            self.sessions.insert(name, h);
        }
        Ok(rv)
    }

    /// A named session.
    pub fn s(&self, name: &str) -> Result<CK_SESSION_HANDLE, String> {
        self.sessions
            .get(name)
            .copied()
            .ok_or(format!("no session {name:?}"))
    }

    /// A named object.
    pub fn o(&self, name: &str) -> Result<CK_OBJECT_HANDLE, String> {
        self.objects
            .get(name)
            .copied()
            .ok_or(format!("no object {name:?}"))
    }

    /// Kept data.
    pub fn blob(&self, name: &str) -> Result<Vec<u8>, String> {
        self.blobs.get(name).cloned().ok_or(format!("no data {name:?}"))
    }

    /// C_Login(USER, PIN) on a named session; already logged in is fine (the official helper
    /// logs in before every key search and ignores that code).
    pub fn login(&self, session: &str) -> Result<(), String> {
        match self.p11.login(self.s(session)?, CKU_USER, In::Bytes(PIN)) {
            CKR_OK | CKR_USER_ALREADY_LOGGED_IN => Ok(()),
            rv => Err(format!("C_Login: {}", rv_name(rv))),
        }
    }

    /// C_CloseAllSessions on our slot.
    pub fn close_all(&mut self) -> Result<(), String> {
        self.sessions.clear();
        ok(self.p11.close_all_sessions(self.slot()?), "C_CloseAllSessions")
    }

    /// Every object matching `template` (init, find, final).
    pub fn find(&self, session: &str, template: &[Attr]) -> Result<Vec<CK_OBJECT_HANDLE>, String> {
        let h = self.s(session)?;
        ok(
            self.p11.find_objects_init(h, &mut template.to_vec()),
            "C_FindObjectsInit",
        )?;
        let mut out = Vec::new();
        loop {
            let mut batch = [0; 8];
            let mut n = 0;
            ok(self.p11.find_objects(h, &mut batch, &mut n), "C_FindObjects")?;
            out.extend_from_slice(&batch[..n as usize]);
            if (n as usize) < batch.len() {
                break;
            }
        }
        ok(self.p11.find_objects_final(h), "C_FindObjectsFinal")?;
        Ok(out)
    }

    /// The one object matching `template`.
    pub fn find_one(&self, session: &str, template: &[Attr]) -> Result<CK_OBJECT_HANDLE, String> {
        match self.find(session, template)?.as_slice() {
            [h] => Ok(*h),
            other => Err(format!("{} objects found, 1 expected", other.len())),
        }
    }

    /// The object of class `class` labelled `label`.
    pub fn by_label(
        &self,
        session: &str,
        class: CK_OBJECT_CLASS,
        label: &str,
    ) -> Result<CK_OBJECT_HANDLE, String> {
        self.find_one(
            session,
            &[
                Attr::ulong(CKA_CLASS, class),
                Attr::of(CKA_LABEL, label.as_bytes()),
            ],
        )
        .map_err(|e| format!("{label}: {e}"))
    }

    /// An attribute's value (size query, then read).
    pub fn attr(&self, session: &str, o: CK_OBJECT_HANDLE, ty: CK_ATTRIBUTE_TYPE) -> Result<Vec<u8>, String> {
        let h = self.s(session)?;
        let mut q = [Attr::size_of(ty)];
        ok(
            self.p11.get_attribute_value(h, o, &mut q),
            "C_GetAttributeValue (size)",
        )?;
        let mut v = [Attr::buffer(ty, q[0].len as usize)];
        ok(self.p11.get_attribute_value(h, o, &mut v), "C_GetAttributeValue")?;
        v[0].bytes().map(<[u8]>::to_vec).ok_or("no value".into())
    }

    /// The key object of class `class` with the CKA_ID of the certificate labelled `label` (how
    /// the official program finds the authentication keys, `getCPS3EncryptPubKey`).
    pub fn key_of_cert(
        &self,
        session: &str,
        label: &str,
        class: CK_OBJECT_CLASS,
    ) -> Result<CK_OBJECT_HANDLE, String> {
        let cert = self.by_label(session, CKO_CERTIFICATE, label)?;
        let id = self.attr(session, cert, CKA_ID)?;
        self.find_one(session, &[Attr::ulong(CKA_CLASS, class), Attr::of(CKA_ID, &id)])
            .map_err(|e| format!("key of {label}: {e}"))
    }

    /// The RSA key of the certificate labelled `label`, for checks in software.
    pub fn cert_key(&self, session: &str, label: &str) -> Result<rsa::RsaPublicKey, String> {
        let cert = self.by_label(session, CKO_CERTIFICATE, label)?;
        Ok(crate::common::cert_key(&self.attr(session, cert, CKA_VALUE)?))
    }

    /// Both calls of a two-call output: the size query, then the value with a buffer that size.
    /// The first call's failure is returned as the code; the value is empty then.
    pub fn two_calls(&self, mut f: impl FnMut(Out<'_>) -> CK_RV) -> (CK_RV, Vec<u8>) {
        let mut n: CK_ULONG = 0;
        let rv = f(Out::Len(&mut n));
        if rv != CKR_OK {
            return (rv, Vec::new());
        }
        let mut buf = vec![0; n as usize];
        let rv = f(Out::Buf(&mut buf, &mut n));
        buf.truncate(n as usize);
        (rv, buf)
    }
}

/// A blank-padded PKCS#11 text field, trimmed.
pub fn text(field: &[u8]) -> String {
    String::from_utf8_lossy(field).trim_end().to_owned()
}
