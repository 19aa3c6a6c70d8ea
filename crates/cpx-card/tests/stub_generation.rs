//! The test-only stub generation (feature `stub-generation`, src/generation/stub.rs) through the
//! real stack: private pcscd + vpcd + the emulator's matching `cps5-test` card. It shows that a
//! generation added in cpx-card's generation modules alone is recognised by the card layer and
//! listed by the PKCS#11 module (linked in from its rlib and called through its C ABI, in this
//! process: no second build of the cdylib), with its own PIN format (6 digits here, where the
//! real cards take 4).
//!
//! `cargo test -p cpx-card --features stub-generation --test stub_generation`
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unsafe_code
)]

mod common;

use std::process::ExitCode;
use std::ptr::null_mut;

use common::*;
use cpx_card::{Card, CardError, Generation, HashAlg, KeyRole, Mechanism, Pin, PinKind};
use cpx_emulator::CardImage;
use cpx_testkit::{Failed, ReaderLease, SandboxConfig, Trial};
use cpx_transport::Pcsc;
use cpx_vpcd::CardSlot;
use cryptoki_sys::*;
// Links the module in: its C ABI is called through `C_GetFunctionList` below.
extern crate cpx_pkcs11;

unsafe extern "C" {
    /// The module's entry point, linked in from the `cpx_pkcs11` rlib.
    fn C_GetFunctionList(list: *mut *mut CK_FUNCTION_LIST) -> CK_RV;
}

/// The stub's PIN: 6 digits, which no real CPx generation takes.
const PIN: &str = "123456";

fn main() -> ExitCode {
    cpx_testkit::run_tests(&SandboxConfig::default(), || {
        vec![
            Trial::test("stub_card_layer", card_layer),
            Trial::test("stub_through_the_module", through_the_module),
        ]
    })
}

/// A `cps5-test` image with the keys and certificates of `cps4-doctor`.
fn image() -> CardImage {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test-vectors/cards/cps4-doctor");
    let toml = format!(
        r#"
kind = "cps5-test"
token_serial = "9900000055"
[pin]
value = "{PIN}"
[puk]
value = "12345678"
[keys.sign]
key = "sign.TEST-ONLY.key.der"
cert = "sign.der"
[keys.auth]
key = "auth.TEST-ONLY.key.der"
cert = "auth.der"
[[data]]
label = "CPS_NAME_PS"
fid = "D102"
fields = [{{ tag = "80", text = "STUB-TEST" }}]
"#
    );
    CardImage::from_toml(&toml, &mut |name| {
        std::fs::read(dir.join(name)).map_err(|source| cpx_emulator::ImageError::Io {
            path: dir.join(name),
            source,
        })
    })
    .unwrap()
}

fn insert() -> Result<(ReaderLease, CardSlot, Wire), Failed> {
    let (rec, wire) = Recorder::new(cpx_emulator::card_from_image(&image()));
    let (lease, slot) = cpx_testkit::insert_card(Box::new(rec))?;
    Ok((lease, slot, wire))
}

fn card_layer() -> Result<(), Failed> {
    let (lease, _slot, wire) = insert()?;
    let mut card = Card::open(Box::new(Pcsc::establish()?.connect(&lease.name)?))?;
    assert_eq!(card.generation(), Generation::Cps5Test);
    let caps = card.generation().capabilities();
    assert_eq!((caps.name, card.model()), ("CPS5-TEST", "Test stub"));
    assert_eq!(card.serial(), "00000055");
    assert_eq!(card.token_label(), "CPS5TEST-9900000055");
    // The PIN format is the card's (AODF 6..8 digits): a 4-digit code never reaches it.
    wire.take();
    let e = card.verify_pin(&Pin::new("1234")).unwrap_err();
    assert!(matches!(e, CardError::PinFormat { .. }), "{e:?}");
    assert!(
        wire.take()
            .iter()
            .all(|(c, _)| c.get(1) != Some(&0x20) || c.len() <= 5),
        "a VERIFY with data was sent for a malformed PIN"
    );
    assert_eq!(card.pin_policy(PinKind::User)?.min_len, 6);
    card.verify_pin(&Pin::new(PIN))?;
    let keys = card.private_keys()?;
    assert_eq!(keys.len(), 2, "{keys:?}");
    let cert = card.certificate(KeyRole::Signature)?;
    let signature = card.sign(KeyRole::Signature, Mechanism::Pkcs1(HashAlg::Sha256), b"stub")?;
    verify_pkcs1(&public_key(&cert.der), HashAlg::Sha256, b"stub", &signature);
    card.logout()?;
    Ok(())
}

fn functions() -> &'static CK_FUNCTION_LIST {
    let mut list = null_mut();
    // SAFETY: a valid out-pointer; the module's list is a static.
    let rv = unsafe { C_GetFunctionList(&mut list) };
    assert!(rv == CKR_OK && !list.is_null(), "C_GetFunctionList: 0x{rv:X}");
    // SAFETY: non-NULL, points to the module's static list.
    unsafe { &*list }
}

fn ok(what: &str, rv: CK_RV) {
    assert_eq!(rv, CKR_OK, "{what}: 0x{rv:X}");
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim_end().to_owned()
}

/// The handles of the objects of `class` in session `s`.
fn find(f: &CK_FUNCTION_LIST, s: CK_SESSION_HANDLE, class: CK_OBJECT_CLASS) -> Vec<CK_OBJECT_HANDLE> {
    let mut class = class;
    let mut template = [CK_ATTRIBUTE {
        type_: CKA_CLASS,
        pValue: (&raw mut class).cast(),
        ulValueLen: std::mem::size_of::<CK_OBJECT_CLASS>() as CK_ULONG,
    }];
    // SAFETY: template and buffers outlive the calls.
    unsafe {
        ok(
            "C_FindObjectsInit",
            (f.C_FindObjectsInit.unwrap())(s, template.as_mut_ptr(), 1),
        );
        let mut found = vec![0; 32];
        let mut n: CK_ULONG = 0;
        ok(
            "C_FindObjects",
            (f.C_FindObjects.unwrap())(s, found.as_mut_ptr(), found.len() as CK_ULONG, &mut n),
        );
        ok("C_FindObjectsFinal", (f.C_FindObjectsFinal.unwrap())(s));
        found.truncate(n as usize);
        found
    }
}

fn through_the_module() -> Result<(), Failed> {
    let (lease, _slot, _wire) = insert()?;
    // SAFETY: set before the module starts any thread; no cache written by a test.
    unsafe { std::env::set_var("CPX_PKCS11_CACHE", "off") };
    let f = functions();
    // SAFETY: every pointer below is valid for the call; buffers outlive them.
    unsafe {
        ok("C_Initialize", (f.C_Initialize.unwrap())(null_mut()));
        let mut slots = vec![0; 16];
        let mut n = slots.len() as CK_ULONG;
        ok(
            "C_GetSlotList",
            (f.C_GetSlotList.unwrap())(CK_TRUE, slots.as_mut_ptr(), &mut n),
        );
        slots.truncate(n as usize);
        let slot = slots
            .into_iter()
            .find(|s| {
                let mut info: CK_SLOT_INFO = std::mem::zeroed();
                (f.C_GetSlotInfo.unwrap())(*s, &mut info) == CKR_OK
                    && text(&info.slotDescription).starts_with(&lease.name)
            })
            .ok_or("the stub card's reader is not among the slots with a token")?;
        let mut token: CK_TOKEN_INFO = std::mem::zeroed();
        ok("C_GetTokenInfo", (f.C_GetTokenInfo.unwrap())(slot, &mut token));
        assert_eq!(text(&token.label), "CPS5TEST-9900000055");
        assert_eq!(text(&token.serialNumber), "00000055");
        assert_eq!((token.ulMinPinLen, token.ulMaxPinLen), (6, 8));

        let mut s = 0;
        ok(
            "C_OpenSession",
            (f.C_OpenSession.unwrap())(slot, CKF_SERIAL_SESSION, null_mut(), None, &mut s),
        );
        assert_eq!(find(f, s, CKO_CERTIFICATE).len(), 2, "certificates");
        assert!(!find(f, s, CKO_DATA).is_empty(), "data objects");
        let mut pin = PIN.as_bytes().to_vec();
        ok(
            "C_Login",
            (f.C_Login.unwrap())(s, CKU_USER, pin.as_mut_ptr(), pin.len() as CK_ULONG),
        );
        assert_eq!(find(f, s, CKO_PRIVATE_KEY).len(), 2, "private keys after login");
        ok("C_Logout", (f.C_Logout.unwrap())(s));
        ok("C_CloseSession", (f.C_CloseSession.unwrap())(s));
        ok("C_Finalize", (f.C_Finalize.unwrap())(null_mut()));
    }
    Ok(())
}
