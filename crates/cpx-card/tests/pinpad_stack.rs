//! The card layer's PIN pad through the real stack: a private pcscd loads the test PIN-pad reader
//! driver (`crates/cpx-ifd-pinpad`, docs/pinpad-reader.md), the emulated CPS3 (T=0) or CPS4
//! (T=1) is plugged into it, the keypad is scripted, and `cpx_card::Card` logs in, signs,
//! changes and unblocks the PIN through PC/SC part 10 VERIFY/MODIFY PIN DIRECT. The commands
//! the card receives are compared byte for byte with those of the same operation typed on the
//! host, and the tries are read back from the card after every refusal.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::process::ExitCode;
use std::sync::{Mutex, PoisonError};

use cpx_card::{Card, CardError, HashAlg, KeyRole, Mechanism, Pin, PinEntry, PinKind, PinPadSetting};
use cpx_testkit::{Failed, PinpadReader, Recorder, Recording, SandboxConfig, Trial, emulated, insert_seen};
use cpx_transport::{CardChannel, Pcsc, Protocol};
use cpx_vpcd::CardSlot;

/// One PIN-pad reader and one keypad script in the sandbox: the trials take turns.
static PAD: Mutex<()> = Mutex::new(());

const PUK: &str = "12345678";

struct OnPad {
    card: Card,
    recording: Recording,
    keypad: std::path::PathBuf,
    _slot: CardSlot,
}

impl OnPad {
    /// `stem` in the PIN-pad reader, opened; its protocol checked.
    fn insert(stem: &str, protocol: Protocol) -> Result<OnPad, Failed> {
        let pad = PinpadReader::from_env().ok_or("the sandbox has no PIN-pad reader")?;
        std::fs::write(&pad.keypad, "")?;
        let (recorder, recording) = Recorder::new(emulated(stem)?);
        let mut slot = CardSlot::new(pad.vpcd_addr(), Box::new(recorder));
        insert_seen(&mut slot, &pad.name)?;
        let channel = Pcsc::establish()?.connect(&pad.name)?;
        assert_eq!(channel.protocol(), protocol, "{stem}");
        let mut card = Card::open(Box::new(channel))?;
        card.set_pin_pad_setting(PinPadSetting::on());
        Ok(OnPad {
            card,
            recording,
            keypad: pad.keypad,
            _slot: slot,
        })
    }

    /// What the user will type, one line per entry.
    fn types(&self, lines: &[&str]) -> Result<(), Failed> {
        let mut text = lines.join("\n");
        text.push('\n');
        std::fs::write(&self.keypad, text)?;
        Ok(())
    }

    /// The commands the card received since the last call.
    fn received(&self) -> Vec<Vec<u8>> {
        self.recording.take().into_iter().map(|(c, _)| c).collect()
    }

    fn tries(&mut self, kind: PinKind) -> Result<u8, Failed> {
        self.card
            .pin_status(kind)?
            .tries_left
            .ok_or_else(|| format!("the card gives no {kind} tries count").into())
    }
}

/// What a refusal must be.
type Expected = fn(&CardError) -> bool;

/// A VERIFY (or change, or unblock) with data: a PIN command that spends a try when wrong.
fn pin_commands(commands: &[Vec<u8>]) -> Vec<Vec<u8>> {
    commands
        .iter()
        .filter(|c| matches!(c.get(1), Some(0x20 | 0x24 | 0x2C)) && c.len() > 4)
        .cloned()
        .collect()
}

fn protocol_of(stem: &str) -> Protocol {
    // docs/card-spec.md §8.1 (CPS3 contact T=0), §10.1 (CPS4 T=1).
    if stem.starts_with("cps4") {
        Protocol::T1
    } else {
        Protocol::T0
    }
}

/// Login and signature through the pad; the card receives what a keyboard login sends.
fn login_and_sign(stem: &str) -> Result<(), Failed> {
    let _turn = PAD.lock().unwrap_or_else(PoisonError::into_inner);
    let mut t = OnPad::insert(stem, protocol_of(stem))?;
    let pad = t
        .card
        .pin_pad()?
        .ok_or("no PIN pad found on the PIN-pad reader")?;
    assert!(pad.verify && pad.modify, "{pad:?}");
    assert_eq!((pad.min_digits, pad.max_digits, pad.display), (4, 8, None));
    // The AODF read now, so that both logins below find it known.
    t.card.pin_policy(PinKind::User)?;
    t.received();

    // The keyboard login, then the same digits on the pad.
    t.card.verify_entry(PinKind::User, &Pin::new("1234").into())?;
    let keyboard = t.received();
    t.card.logout()?;
    t.received();
    t.types(&["1234"])?;
    t.card.verify_entry(PinKind::User, &PinEntry::PinPad)?;
    let on_pad = t.received();
    assert!(!pin_commands(&keyboard).is_empty(), "{keyboard:02X?}");
    assert_eq!(
        on_pad, keyboard,
        "{stem}: the pad login differs from the keyboard login"
    );
    assert!(t.card.pin_verified());

    let signature = t.card.sign(
        KeyRole::Signature,
        Mechanism::Pkcs1(HashAlg::Sha256),
        b"signed on the pad",
    )?;
    assert!(signature.len() >= 128, "{} bytes", signature.len());
    t.card.logout()?;
    assert_eq!(t.tries(PinKind::User)?, 3);
    Ok(())
}

/// Cancel, timeout, too short, too long: precise errors, nothing reaches the card, no try spent;
/// then a wrong PIN on the pad costs one try and the right one restores them.
fn refusals(stem: &str) -> Result<(), Failed> {
    let _turn = PAD.lock().unwrap_or_else(PoisonError::into_inner);
    let mut t = OnPad::insert(stem, protocol_of(stem))?;
    // One digit more than the card's policy allows (the policy, not the pad's 8, decides).
    let too_long = "1".repeat(t.card.pin_policy(PinKind::User)?.max_len + 1);
    t.received();
    let cases: [(&str, Expected); 5] = [
        ("cancel", |e| {
            matches!(e, CardError::PinPadCancelled { operation: "verify" })
        }),
        ("timeout", |e| {
            matches!(e, CardError::PinPadTimeout { operation: "verify" })
        }),
        ("", |e| matches!(e, CardError::PinPadTimeout { .. })),
        ("12", |e| {
            matches!(e, CardError::PinPadLength { operation: "verify" })
        }),
        (&too_long, |e| matches!(e, CardError::PinPadLength { .. })),
    ];
    for (typed, expected) in cases {
        t.types(&[typed])?;
        let r = t.card.verify_entry(PinKind::User, &PinEntry::PinPad);
        match &r {
            Err(e) if expected(e) => {}
            other => return Err(format!("{stem}: keypad {typed:?}: {other:?}").into()),
        }
        assert!(!t.card.pin_verified());
        let seen = t.received();
        assert!(
            pin_commands(&seen).is_empty(),
            "{stem}: keypad {typed:?}: the card saw {seen:02X?}"
        );
        assert_eq!(t.tries(PinKind::User)?, 3, "{stem}: keypad {typed:?} spent a try");
    }
    // The PUK through the pad: 8 digits, fewer is refused by the reader.
    let puk_tries = t.tries(PinKind::Puk)?;
    t.types(&["1234"])?;
    let r = t.card.verify_entry(PinKind::Puk, &PinEntry::PinPad);
    assert!(matches!(r, Err(CardError::PinPadLength { .. })), "{r:?}");
    assert_eq!(t.tries(PinKind::Puk)?, puk_tries, "{stem}: a PUK try spent");

    t.types(&["9999", "1234"])?;
    let r = t.card.verify_entry(PinKind::User, &PinEntry::PinPad);
    assert!(
        matches!(
            r,
            Err(CardError::WrongPin {
                kind: PinKind::User,
                tries_left: 2
            })
        ),
        "{stem}: {r:?}"
    );
    assert_eq!(t.tries(PinKind::User)?, 2);
    t.card.verify_entry(PinKind::User, &PinEntry::PinPad)?;
    t.card.logout()?;
    assert_eq!(t.tries(PinKind::User)?, 3);
    Ok(())
}

/// PIN change on the pad (current, new, confirmation), byte-identical to the host change; a
/// confirmation that differs is refused by the reader, no try spent.
fn change(stem: &str) -> Result<(), Failed> {
    let _turn = PAD.lock().unwrap_or_else(PoisonError::into_inner);
    let mut t = OnPad::insert(stem, protocol_of(stem))?;
    t.received();
    t.types(&["1234", "5678", "5679"])?;
    let r = t.card.change_pin_entry(&PinEntry::PinPad, &PinEntry::PinPad);
    assert!(
        matches!(
            r,
            Err(CardError::PinPadMismatch {
                operation: "change PIN"
            })
        ),
        "{stem}: {r:?}"
    );
    t.card.logout()?;
    assert_eq!(t.tries(PinKind::User)?, 3);
    t.received();

    t.types(&["1234", "5678", "5678"])?;
    t.card.change_pin_entry(&PinEntry::PinPad, &PinEntry::PinPad)?;
    let on_pad = t.received();
    // The card now takes 5678 (typed on the pad), and only it.
    t.types(&["5678"])?;
    t.card.verify_entry(PinKind::User, &PinEntry::PinPad)?;
    t.card.logout()?;
    // Back to 1234 on the host, then the same change on the host, to compare.
    t.card.change_pin(&Pin::new("5678"), &Pin::new("1234"))?;
    t.card.logout()?;
    t.received();
    t.card.change_pin(&Pin::new("1234"), &Pin::new("5678"))?;
    let keyboard = t.received();
    assert_eq!(
        on_pad, keyboard,
        "{stem}: the pad change differs from the keyboard change"
    );
    // And back through the pad, so the image is as found.
    t.card.logout()?;
    t.types(&["5678", "1234", "1234"])?;
    t.card.change_pin_entry(&PinEntry::PinPad, &PinEntry::PinPad)?;
    t.card.logout()?;
    assert_eq!(t.tries(PinKind::User)?, 3);
    t.card.verify_pin(&Pin::new("1234"))?;
    Ok(())
}

/// Unblock a blocked PIN with the PUK and a new PIN typed on the pad (byte-identical to the host
/// unblock); then C_Login(SO) + C_InitPIN's path: the PUK verified, the new PIN on the pad.
fn unblock(stem: &str) -> Result<(), Failed> {
    let _turn = PAD.lock().unwrap_or_else(PoisonError::into_inner);
    let mut t = OnPad::insert(stem, protocol_of(stem))?;
    let block = |t: &mut OnPad| -> Result<(), Failed> {
        for _ in 0..3 {
            let _ = t.card.verify_pin(&Pin::new("9999"));
        }
        assert_eq!(t.tries(PinKind::User)?, 0, "{stem}: blocked");
        Ok(())
    };
    block(&mut t)?;
    t.received();
    // Cancelled at the PUK: nothing sent, no PUK try spent.
    t.types(&["cancel"])?;
    let r = t.card.unblock_pin_entry(&PinEntry::PinPad, &PinEntry::PinPad);
    assert!(matches!(r, Err(CardError::PinPadCancelled { .. })), "{r:?}");
    assert!(pin_commands(&t.received()).is_empty());

    t.types(&[PUK, "1234", "1234"])?;
    t.card.unblock_pin_entry(&PinEntry::PinPad, &PinEntry::PinPad)?;
    let on_pad = t.received();
    t.card.logout()?;
    assert_eq!(t.tries(PinKind::User)?, 3);
    block(&mut t)?;
    t.received();
    t.card.unblock_pin(&Pin::new(PUK), &Pin::new("1234"))?;
    let keyboard = t.received();
    assert_eq!(
        on_pad, keyboard,
        "{stem}: the pad unblock differs from the keyboard unblock"
    );
    t.card.logout()?;

    // The PUK verified first (on the pad), then the new PIN on the pad.
    block(&mut t)?;
    t.types(&[PUK, "4321", "4321"])?;
    t.card.verify_entry(PinKind::Puk, &PinEntry::PinPad)?;
    t.card.unblock_pin_after_puk_entry(&PinEntry::PinPad)?;
    t.card.logout()?;
    assert_eq!(t.tries(PinKind::User)?, 3);
    t.card.change_pin(&Pin::new("4321"), &Pin::new("1234"))?;
    t.card.logout()?;
    Ok(())
}

/// `CPX_PINPAD_IGNORE` (through [`PinPadSetting`]) hides the pad: no pad, PinPadUnsupported with
/// nothing sent, and the keyboard path still works.
fn turned_off() -> Result<(), Failed> {
    let _turn = PAD.lock().unwrap_or_else(PoisonError::into_inner);
    let mut t = OnPad::insert("cps3-doctor", Protocol::T0)?;
    t.card
        .set_pin_pad_setting(PinPadSetting::parse(None, Some("CPX PINPAD")));
    assert_eq!(t.card.pin_pad()?, None);
    t.received();
    t.types(&["1234"])?;
    let r = t.card.verify_entry(PinKind::User, &PinEntry::PinPad);
    assert!(matches!(r, Err(CardError::PinPadUnsupported { .. })), "{r:?}");
    assert!(t.received().is_empty());
    t.card.verify_pin(&Pin::new("1234"))?;
    t.card.set_pin_pad_setting(PinPadSetting::off());
    assert_eq!(t.card.pin_pad()?, None);
    t.card.set_pin_pad_setting(PinPadSetting::on());
    assert!(t.card.pin_pad()?.is_some());
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
    let config = SandboxConfig {
        entries: 1,
        pinpad: Some(driver),
        ..SandboxConfig::default()
    };
    cpx_testkit::run_tests(&config, || {
        let mut trials = Vec::new();
        for stem in ["cps3-doctor", "cps4-doctor"] {
            trials.push(Trial::test(
                format!("{stem}_login_and_sign_on_the_pad"),
                move || login_and_sign(stem),
            ));
            trials.push(Trial::test(
                format!("{stem}_pad_refusals_spend_no_try"),
                move || refusals(stem),
            ));
            trials.push(Trial::test(format!("{stem}_change_on_the_pad"), move || {
                change(stem)
            }));
            trials.push(Trial::test(format!("{stem}_unblock_on_the_pad"), move || {
                unblock(stem)
            }));
        }
        trials.push(Trial::test("pad_turned_off_by_setting", turned_off));
        trials
    })
}
