//! The built module on a PIN-pad reader (issue 17): a private pcscd loads the test PIN-pad
//! driver (`crates/cpx-ifd-pinpad`), the emulated CPS3 (T=0) or CPS4 (T=1) is plugged into it,
//! the keypad is scripted. Through `cryptoki`: CKF_PROTECTED_AUTHENTICATION_PATH, C_Login with
//! no PIN, a PIN given still typed on the host, cancel/timeout/length, C_SetPIN and the unblock
//! (C_Login(SO) + C_InitPIN) on the pad; a NULL PIN on a token without the flag stays
//! CKR_ARGUMENTS_BAD. Through OpenSC's `pkcs11-tool`: `--login` with no `--pin`, and `--test
//! --login`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::process::{Command, ExitCode};
use std::sync::{Mutex, PoisonError};

use common::*;
use cpx_testkit::{Failed, PinpadReader, Trial, insert_seen};
use cpx_vpcd::CardSlot;
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::ObjectClass;
use cryptoki::session::UserType;
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;

/// One PIN-pad reader, one keypad script: the trials take turns.
static PAD: Mutex<()> = Mutex::new(());

fn pin(p: &str) -> AuthPin {
    AuthPin::from(p)
}

/// No PIN given, as a client does for a protected authentication path: cryptoki passes an empty
/// PIN (non-NULL pointer, length 0) to C_SetPIN and C_InitPIN, and NULL to C_Login with `None`.
fn no_pin() -> AuthPin {
    AuthPin::from("")
}

struct OnPad {
    pad: PinpadReader,
    _slot: CardSlot,
}

impl OnPad {
    fn insert(stem: &str) -> Result<OnPad, Failed> {
        let pad = PinpadReader::from_env().ok_or("the sandbox has no PIN-pad reader")?;
        std::fs::write(&pad.keypad, "")?;
        let mut slot = CardSlot::new(pad.vpcd_addr(), emulated(stem));
        insert_seen(&mut slot, &pad.name)?;
        Ok(OnPad { pad, _slot: slot })
    }

    fn types(&self, lines: &[&str]) -> Result<(), Failed> {
        let mut text = lines.join("\n");
        text.push('\n');
        std::fs::write(&self.pad.keypad, text)?;
        Ok(())
    }

    fn slot(&self) -> Result<Slot, Failed> {
        slot_of(pkcs11()?, &self.pad.name)
    }
}

/// Login with no PIN through the pad, a signature; refusals with their codes and no try spent;
/// a PIN given is still typed on the host.
fn login(stem: &str) -> Result<(), Failed> {
    let _turn = PAD.lock().unwrap_or_else(PoisonError::into_inner);
    let t = OnPad::insert(stem)?;
    let p11 = pkcs11()?;
    let slot = t.slot()?;
    let info = p11.get_token_info(slot)?;
    assert!(
        info.protected_authentication_path(),
        "{stem}: no CKF_PROTECTED_AUTHENTICATION_PATH"
    );
    let s = p11.open_ro_session(slot)?;

    for (typed, rv) in [
        ("cancel", RvError::FunctionCanceled),
        ("timeout", RvError::FunctionCanceled),
        ("12", RvError::PinIncorrect),
    ] {
        t.types(&[typed])?;
        expect_rv(s.login(UserType::User, None), rv, typed)?;
        let info = p11.get_token_info(slot)?;
        assert!(!info.user_pin_count_low(), "{stem}: keypad {typed:?} spent a try");
    }
    t.types(&["9999"])?;
    expect_rv(
        s.login(UserType::User, None),
        RvError::PinIncorrect,
        "wrong PIN on the pad",
    )?;
    assert!(p11.get_token_info(slot)?.user_pin_count_low());

    t.types(&["1234"])?;
    s.login(UserType::User, None)?;
    assert!(!p11.get_token_info(slot)?.user_pin_count_low());
    let key = find_one(&s, ObjectClass::PRIVATE_KEY, "CPS_PRIV_AUT")?;
    let signature = s.sign(&Mechanism::Sha256RsaPkcs, key, b"signed after a PIN-pad login")?;
    assert!(signature.len() >= 128);
    s.logout()?;

    // A client that always prompts: the PIN it gives is typed on the host, pad or not.
    t.types(&["cancel"])?;
    s.login(UserType::User, Some(&pin("1234")))?;
    s.logout()?;
    Ok(())
}

/// C_SetPIN with no PINs: current, new, confirmation on the pad; a confirmation that differs is
/// CKR_PIN_INVALID; a pair with one PIN given is CKR_ARGUMENTS_BAD. Then the unblock: C_Login(SO)
/// and C_InitPIN with no PIN.
fn change_and_unblock(stem: &str) -> Result<(), Failed> {
    let _turn = PAD.lock().unwrap_or_else(PoisonError::into_inner);
    let t = OnPad::insert(stem)?;
    let p11 = pkcs11()?;
    let slot = t.slot()?;
    let rw = p11.open_rw_session(slot)?;

    t.types(&["1234", "5678", "5679"])?;
    expect_rv(
        rw.set_pin(&no_pin(), &no_pin()),
        RvError::PinInvalid,
        "confirmation differs",
    )?;
    expect_rv(
        rw.set_pin(&no_pin(), &pin("5678")),
        RvError::ArgumentsBad,
        "mixed pair",
    )?;
    t.types(&["1234", "56", "56"])?;
    expect_rv(
        rw.set_pin(&no_pin(), &no_pin()),
        RvError::PinLenRange,
        "new PIN too short",
    )?;
    t.types(&["1234", "5678", "5678"])?;
    rw.set_pin(&no_pin(), &no_pin())?;
    rw.logout().ok();
    rw.login(UserType::User, Some(&pin("5678")))?;
    rw.logout()?;
    rw.set_pin(&pin("5678"), &pin("1234"))?;
    rw.logout().ok();

    // Block the PIN, then unblock it on the pad.
    for _ in 0..3 {
        let _ = rw.login(UserType::User, Some(&pin("9999")));
    }
    assert!(p11.get_token_info(slot)?.user_pin_locked());
    t.types(&["12345678"])?;
    rw.login(UserType::So, None)?;
    t.types(&["4321", "4321"])?;
    rw.init_pin(&no_pin())?;
    rw.logout()?;
    assert!(!p11.get_token_info(slot)?.user_pin_locked());
    t.types(&["4321"])?;
    rw.login(UserType::User, None)?;
    rw.logout()?;
    rw.set_pin(&pin("4321"), &pin("1234"))?;
    rw.logout().ok();
    Ok(())
}

/// The same through the C ABI with real NULL pointers (cryptoki passes an empty PIN to C_SetPIN
/// and C_InitPIN): C_SetPIN(NULL, NULL), C_Login(CKU_SO, NULL) + C_InitPIN(NULL), and NULL with a
/// length, which is CKR_ARGUMENTS_BAD.
#[allow(unsafe_code)]
fn null_pointers(stem: &str) -> Result<(), Failed> {
    use cryptoki_sys::*;
    use std::ptr::null_mut;
    let _turn = PAD.lock().unwrap_or_else(PoisonError::into_inner);
    let t = OnPad::insert(stem)?;
    let slot = t.slot()?;
    // The module cryptoki loaded and initialised: dlopen of the same file gives the same library.
    // SAFETY: our own cdylib, already loaded in this process.
    let lib = unsafe { libloading::Library::new(module_path()?) }?;
    // SAFETY: C_GetFunctionList has this signature (PKCS#11 2.40 §5.2).
    let get = unsafe {
        lib.get::<unsafe extern "C" fn(*mut *mut CK_FUNCTION_LIST) -> CK_RV>(b"C_GetFunctionList\0")
    }?;
    let mut list: *mut CK_FUNCTION_LIST = null_mut();
    // SAFETY: a valid out-pointer.
    assert_eq!(unsafe { get(&mut list) }, CKR_OK);
    // SAFETY: non-NULL after CKR_OK, a static of the loaded library.
    let f = unsafe { &*list };
    let (open, login, logout, set_pin, init_pin, close) = (
        f.C_OpenSession.ok_or("C_OpenSession")?,
        f.C_Login.ok_or("C_Login")?,
        f.C_Logout.ok_or("C_Logout")?,
        f.C_SetPIN.ok_or("C_SetPIN")?,
        f.C_InitPIN.ok_or("C_InitPIN")?,
        f.C_CloseSession.ok_or("C_CloseSession")?,
    );
    let mut h: CK_SESSION_HANDLE = 0;
    // SAFETY (every call below): NULL PINs with length 0 or 4, a valid out-pointer, our session.
    let rv = unsafe {
        open(
            slot.id(),
            CKF_SERIAL_SESSION | CKF_RW_SESSION,
            null_mut(),
            None,
            &mut h,
        )
    };
    assert_eq!(rv, CKR_OK, "C_OpenSession");
    let step = |what: &str, rv: CK_RV, expected: CK_RV| -> Result<(), Failed> {
        if rv == expected {
            Ok(())
        } else {
            Err(format!("{stem}: {what}: 0x{rv:X}, expected 0x{expected:X}").into())
        }
    };
    step(
        "C_Login NULL with a length",
        unsafe { login(h, CKU_USER, null_mut(), 4) },
        CKR_ARGUMENTS_BAD,
    )?;
    t.types(&["1234", "5678", "5678"])?;
    step(
        "C_SetPIN(NULL, NULL)",
        unsafe { set_pin(h, null_mut(), 0, null_mut(), 0) },
        CKR_OK,
    )?;
    t.types(&["5678"])?;
    step(
        "C_Login(NULL) with the new PIN",
        unsafe { login(h, CKU_USER, null_mut(), 0) },
        CKR_OK,
    )?;
    step("C_Logout", unsafe { logout(h) }, CKR_OK)?;
    t.types(&["5678", "1234", "1234"])?;
    step(
        "C_SetPIN back",
        unsafe { set_pin(h, null_mut(), 0, null_mut(), 0) },
        CKR_OK,
    )?;
    t.types(&["12345678", "1234", "1234"])?;
    step(
        "C_Login(SO, NULL)",
        unsafe { login(h, CKU_SO, null_mut(), 0) },
        CKR_OK,
    )?;
    step("C_InitPIN(NULL)", unsafe { init_pin(h, null_mut(), 0) }, CKR_OK)?;
    step("C_Logout SO", unsafe { logout(h) }, CKR_OK)?;
    t.types(&["1234"])?;
    step(
        "C_Login(NULL) after the unblock",
        unsafe { login(h, CKU_USER, null_mut(), 0) },
        CKR_OK,
    )?;
    step("C_CloseSession", unsafe { close(h) }, CKR_OK)?;
    Ok(())
}

/// A token in a reader without a pad: no flag, a NULL PIN is CKR_ARGUMENTS_BAD.
fn no_pad() -> Result<(), Failed> {
    let (lease, _card) = insert("cps3-doctor")?;
    let p11 = pkcs11()?;
    let slot = slot_of(p11, &lease.name)?;
    assert!(!p11.get_token_info(slot)?.protected_authentication_path());
    let s = p11.open_ro_session(slot)?;
    expect_rv(
        s.login(UserType::User, None),
        RvError::ArgumentsBad,
        "NULL PIN, no pad",
    )?;
    s.login(UserType::User, Some(&pin("1234")))?;
    Ok(())
}

fn tool(args: &[&str]) -> Result<String, Failed> {
    tool_env(args, &[])
}

fn tool_env(args: &[&str], env: &[(&str, &str)]) -> Result<String, Failed> {
    let out = Command::new("pkcs11-tool")
        .envs(env.iter().copied())
        .arg("--module")
        .arg(module_path()?)
        .args(args)
        .output()
        .map_err(|e| format!("pkcs11-tool: {e} (install opensc)"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("$ pkcs11-tool {}\n{text}", args.join(" "));
    if !out.status.success() {
        return Err(format!("pkcs11-tool {args:?} failed ({}):\n{text}", out.status).into());
    }
    Ok(text)
}

/// `pkcs11-tool --login` with no `--pin` on the pad reader (it leaves the PIN to the pad when
/// the token has the flag), and `--test --login`: every PIN it asks comes from the keypad.
fn pkcs11_tool(stem: &str) -> Result<(), Failed> {
    let _turn = PAD.lock().unwrap_or_else(PoisonError::into_inner);
    let t = OnPad::insert(stem)?;
    let name = t.pad.name.clone();
    // The token's flag as pkcs11-tool shows it ("PIN pad present"), and the off switch read by
    // the module from its environment.
    let slots = tool(&["-L"])?;
    assert!(slots.contains("PIN pad present"), "{slots}");
    for env in [("CPX_PINPAD", "off"), ("CPX_PINPAD_IGNORE", "Other;CPX PinPad")] {
        let slots = tool_env(&["-L"], &[env])?;
        assert!(
            slots.contains(&name) && !slots.contains("PIN pad present"),
            "{env:?}: {slots}"
        );
    }
    let left = || -> Result<usize, Failed> { Ok(std::fs::read_to_string(&t.pad.keypad)?.lines().count()) };
    t.types(&["1234"; 40])?;
    let listed = tool(&["--slot-description", &name, "-O", "--login"])?;
    assert!(
        listed.contains("CPS_PRIV_SIG") && listed.contains("CPS_PRIV_AUT"),
        "{listed}"
    );
    assert_eq!(left()?, 39, "{stem}: the login did not go through the pad");
    let test = tool(&["--slot-description", &name, "--test", "--login"])?;
    assert!(test.contains("No errors"), "{test}");
    let used = 39 - left()?;
    assert!(used >= 1, "{stem}: --test --login typed nothing on the pad");
    eprintln!("{stem}: pkcs11-tool --test --login asked the pad {used} time(s)");
    Ok(())
}

fn main() -> ExitCode {
    let driver = match cpx_testkit::built_pinpad_driver() {
        Ok(driver) => driver,
        Err(e) => {
            eprintln!("the PIN-pad reader driver: {e}");
            return ExitCode::FAILURE;
        }
    };
    let config = cpx_testkit::SandboxConfig {
        pinpad: Some(driver),
        ..common::sandbox(1)
    };
    cpx_testkit::run_tests(&config, || {
        let mut trials = Vec::new();
        for stem in ["cps3-doctor", "cps4-doctor"] {
            trials.push(Trial::test(
                format!("{stem}_login_with_no_pin_uses_the_pad"),
                move || login(stem),
            ));
            trials.push(Trial::test(
                format!("{stem}_set_pin_and_unblock_on_the_pad"),
                move || change_and_unblock(stem),
            ));
            trials.push(Trial::test(
                format!("{stem}_pkcs11_tool_login_on_the_pad"),
                move || pkcs11_tool(stem),
            ));
        }
        trials.push(Trial::test("cps3-doctor_null_pins_through_the_c_abi", || {
            null_pointers("cps3-doctor")
        }));
        trials.push(Trial::test("no_pad_null_pin_is_arguments_bad", no_pad));
        trials
    })
}
