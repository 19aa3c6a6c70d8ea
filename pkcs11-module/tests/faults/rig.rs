//! A card in a leased reader with everything a fault test needs to watch it: the fault switch
//! (pull it out mid-command), the wire recording (what reached the card), the emulator's state
//! (PIN counters), and the PKCS#11 slot.

use std::sync::mpsc;
use std::time::Duration;

use cpx_emulator::{CardImage, EmulatedCard, SharedCard};
use cpx_testkit::{Failed, Faults, FaultyCard, ReaderLease, Recorder, Recording, apdu, wait_for_card};
use cpx_vpcd::CardSlot;
use cryptoki::error::{Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{AttributeType, ObjectClass};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use rsa::{Pkcs1v15Sign, RsaPublicKey};
use sha2::Digest;

use crate::common::*;

/// The PIN and PUK of the built-in images.
pub const PIN: &str = "1234";

/// Longest any single module call may take here: every call in these tests either answers
/// within a few seconds (a command cut by a removal waits for pcscd to confirm it, at most 3 s)
/// or is a hang. Generous, for a loaded machine: it costs nothing when the call answers.
pub const CALL_BOUND: Duration = Duration::from_secs(30);

/// How long the removal of a pulled card may take to show (pcscd polls every 400 ms; a loaded
/// machine is slower). A bound on waiting for a condition: it costs nothing when all goes well.
pub const PULL_BOUND: Duration = Duration::from_secs(30);

/// The two private keys of a CPx card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Signature,
    Authentication,
}

impl Key {
    pub fn label(self) -> &'static str {
        match self {
            Key::Signature => "CPS_PRIV_SIG",
            Key::Authentication => "CPS_PRIV_AUT",
        }
    }
}

/// One emulated card, wrapped so: `CardSlot` → [`FaultyCard`] → [`Recorder`] → the emulator.
/// The recording therefore holds what the card itself received.
pub struct Rig {
    pub image: CardImage,
    pub lease: ReaderLease,
    pub slot: CardSlot,
    pub faults: Faults,
    pub wire: Recording,
    pub card: SharedCard,
    pub p11slot: Slot,
}

/// `stem`'s card wrapped for a fault test, not yet inserted.
pub fn wrapped(stem: &str) -> Result<(CardImage, Box<FaultyCard>, Faults, Recording, SharedCard), Failed> {
    let image = cpx_emulator::builtin_image(stem).ok_or_else(|| format!("no image {stem}"))??;
    let card = SharedCard::new(cpx_emulator::card_from_image(&image));
    let (recorder, wire) = Recorder::new(Box::new(card.clone()));
    let (faulty, faults) = FaultyCard::new(Box::new(recorder));
    Ok((image, Box::new(faulty), faults, wire, card))
}

impl Rig {
    /// Lease a reader, insert `stem`'s card, wait until PC/SC and the module see it.
    pub fn insert(stem: &str) -> Result<Rig, Failed> {
        let (image, faulty, faults, wire, card) = wrapped(stem)?;
        let (lease, slot) = cpx_testkit::insert_card(faulty)?;
        let p11slot = slot_of(pkcs11()?, &lease.name)?;
        Ok(Rig {
            image,
            lease,
            slot,
            faults,
            wire,
            card,
            p11slot,
        })
    }

    /// Put the pulled (or removed) card back and wait until PC/SC shows it.
    pub fn reinsert(&mut self) -> Result<(), Failed> {
        cpx_testkit::reinsert(&mut self.slot, &self.lease.name)
    }

    /// Wait until PC/SC no longer shows the card.
    pub fn wait_gone(&self) -> Result<(), Failed> {
        Ok(wait_for_card(&self.lease.name, false, PULL_BOUND)?)
    }

    /// The armed pull fired; the command it cut.
    pub fn pulled(&self) -> Result<Vec<u8>, Failed> {
        self.faults.wait_pulled(PULL_BOUND).ok_or_else(|| {
            self.faults.disarm();
            Failed::from("the armed command never reached the card: the fault was not injected")
        })
    }

    /// The card's current PIN value (ASCII), from its non-volatile state.
    pub fn current_pin(&self) -> Result<String, Failed> {
        let state = self.card.state();
        let pin = state
            .pins
            .iter()
            .find(|p| p.reference == 0x01)
            .ok_or("no PIN object")?;
        let bytes = (0..pin.value.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&pin.value[i..i + 2], 16))
            .collect::<Result<Vec<u8>, _>>()?;
        Ok(String::from_utf8(bytes)?)
    }

    /// Fail unless the PIN and PUK counters are at their maximum: nothing the middleware did
    /// cost the holder a try.
    pub fn counters_at_max(&self, when: &str) -> Result<(), Failed> {
        at_max(&self.card, &self.image, when)
    }

    /// The public key of `key`'s certificate, from the card image.
    pub fn public_key(&self, key: Key) -> Result<RsaPublicKey, Failed> {
        let k = match key {
            Key::Signature => &self.image.sign,
            Key::Authentication => &self.image.auth,
        };
        Ok(cert_key(&k.as_ref().ok_or("no such key")?.cert))
    }
}

/// (PIN tries left, PUK tries left) of an emulated card, from its non-volatile state.
pub fn tries_of(card: &SharedCard) -> (u8, u8) {
    let state = card.state();
    let left = |r: u8| {
        state
            .pins
            .iter()
            .find(|p| p.reference == r)
            .map_or(0, |p| p.tries_left)
    };
    (left(0x01), left(0x02))
}

/// Fail unless `card`'s PIN and PUK tries are at the maximum its image gives.
pub fn at_max(card: &SharedCard, image: &CardImage, when: &str) -> Result<(), Failed> {
    let max = (
        image.pin.as_ref().map_or(0, |p| p.max_tries),
        image.puk.as_ref().map_or(0, |p| p.max_tries),
    );
    let now = tries_of(card);
    if now != max {
        return Err(format!("{when}: PIN/PUK tries left {now:?}, expected {max:?}").into());
    }
    Ok(())
}

/// PIN presentations (VERIFY with data) among `commands`.
pub fn verifies(commands: &[Vec<u8>]) -> usize {
    commands.iter().filter(|c| apdu::is_verify_with_data(c)).count()
}

/// Private-key operations (PSO CDS, INTERNAL AUTHENTICATE, PSO DECIPHER) among `commands`.
pub fn key_operations(commands: &[Vec<u8>]) -> usize {
    commands
        .iter()
        .filter(|c| apdu::is_private_key_operation(c))
        .count()
}

/// Run `f` on another thread and wait at most `bound`: a call still running then is a hang.
pub fn bounded<T: Send + 'static>(
    what: &str,
    bound: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Failed> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(bound)
        .map_err(|_| Failed::from(format!("{what}: no answer within {bound:?} (hang)")))
}

/// The return code of a failed call; a success is a test failure.
pub fn rv_of<T: std::fmt::Debug>(r: cryptoki::error::Result<T>, what: &str) -> Result<RvError, Failed> {
    match r {
        Err(Error::Pkcs11(rv, _)) => Ok(rv),
        other => Err(format!("{what}: expected a PKCS#11 error, got {other:?}").into()),
    }
}

/// Log in, find `key` and sign `data` with CKM_SHA256_RSA_PKCS; the signature is checked with
/// the certificate's key.
pub fn sign_checked(session: &Session, key: Key, pk: &RsaPublicKey, data: &[u8]) -> Result<(), Failed> {
    let h = find_one(session, ObjectClass::PRIVATE_KEY, key.label())?;
    let sig = session.sign(&Mechanism::Sha256RsaPkcs, h, data)?;
    pk.verify(
        Pkcs1v15Sign::new::<sha2::Sha256>(),
        &sha2::Sha256::digest(data),
        &sig,
    )
    .map_err(|e| format!("{} signature does not verify: {e}", key.label()))?;
    Ok(())
}

/// A new session on `slot`, logged in with `pin`; checks that exactly one PIN presentation
/// reached the card for that C_Login.
pub fn fresh_login(rig: &Rig, pin: &str) -> Result<Session, Failed> {
    let p11 = pkcs11()?;
    let s = p11.open_rw_session(rig.p11slot)?;
    rig.wire.take();
    s.login(UserType::User, Some(&AuthPin::from(pin)))?;
    let n = verifies(&rig.wire.commands());
    if n != 1 {
        return Err(format!("one C_Login sent {n} PIN presentations").into());
    }
    Ok(s)
}

/// The session is gone the way the module documents it: CKR_DEVICE_REMOVED once (unless the
/// failing call already returned it), then CKR_SESSION_HANDLE_INVALID. The module looks at
/// PC/SC at most every `slots::SESSION_POLL` (100 ms) for session calls, so a session may still
/// answer for that long (longer on a loaded machine) after PC/SC shows the removal: wait for its
/// first error, within [`PULL_BOUND`].
pub fn session_dropped(s: &Session, already_reported: bool, what: &str) -> Result<(), Failed> {
    let deadline = std::time::Instant::now() + PULL_BOUND;
    let first = loop {
        match s.get_session_info() {
            Ok(_) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            r => break r,
        }
    };
    if !already_reported {
        expect_rv(first, RvError::DeviceRemoved, what)?;
        return expect_rv(
            s.get_session_info(),
            RvError::SessionHandleInvalid,
            &format!("{what}, after CKR_DEVICE_REMOVED"),
        );
    }
    expect_rv(first, RvError::SessionHandleInvalid, what)
}

/// CKA_VALUE of the certificate labelled `label`.
pub fn cert_value(s: &Session, label: &str) -> Result<Vec<u8>, Failed> {
    let c = find_one(s, ObjectClass::CERTIFICATE, label)?;
    bytes_attr(s, c, AttributeType::Value)
}
