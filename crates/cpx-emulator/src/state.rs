//! Persistent card state: what a card keeps across power cycles and commands can change, so a
//! virtual card can outlive its process (`cpx emulate --state FILE`).
//!
//! [`CardState`] holds the non-volatile part only: PIN/PUK values, tries and uses left (blocked =
//! no try or no use left), the contents of every EF that UPDATE BINARY can change (keyed by its
//! absolute path in hex, e.g. `3F000001D107`) and the GET CHALLENGE counter. The selected file,
//! verified PINs, security environment and pending response are volatile: a restored card starts
//! as freshly powered.
//!
//! ```
//! use cpx_emulator::{CardImage, card_from_image};
//!
//! let image = CardImage::load(concat!(env!("CARGO_MANIFEST_DIR"),
//!     "/../../test-vectors/cards/cps3-doctor/card.toml"))?;
//! let mut card = card_from_image(&image);
//! // a wrong PIN, padded to 8 bytes with FF as the real CPS3 AODF says
//! card.transmit(&[0x00, 0x20, 0x00, 0x01, 0x08, 0x30, 0x30, 0x30, 0x30, 0xFF, 0xFF, 0xFF, 0xFF]);
//! let saved = toml::to_string(&card.state())?;
//!
//! let mut again = card_from_image(&image);
//! again.restore(&toml::from_str(&saved)?)?;
//! assert_eq!(again.transmit(&[0x00, 0x20, 0x00, 0x01]), [0x63, 0xC2]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use cpx_vpcd::VirtualCard;
use serde::{Deserialize, Serialize};

use crate::fs::{Access, FileSystem};
use crate::image::CardKind;
use crate::pin::Pin;

/// Version of the [`CardState`] layout; [`EmulatedCard::restore`] refuses other versions.
pub const STATE_VERSION: u32 = 1;

/// The non-volatile state of one card (see the module docs). Serialize it with any serde format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardState {
    /// Layout version, [`STATE_VERSION`].
    pub version: u32,
    /// The card model the state was taken from.
    pub kind: CardKind,
    /// The card's PAN (EF.SN.ICC, hex): a state restores only into the same card.
    pub pan: String,
    /// PIN objects (CHV 01 PIN, 02 PUK), by reference.
    pub pins: Vec<PinState>,
    /// Contents (hex) of the EFs UPDATE BINARY may change, by absolute path in hex.
    pub files: BTreeMap<String, String>,
    /// GET CHALLENGE counter (the challenge bytes derive from it).
    pub challenges: u64,
}

/// One PIN object's non-volatile state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinState {
    /// Reference (01 PIN, 02 PUK).
    pub reference: u8,
    /// Current value, hex (CHANGE REFERENCE DATA and unblock change it): the PIN itself, without
    /// the CPS3's FF padding (e.g. `31323334`).
    pub value: String,
    /// Tries left; 0 = blocked.
    pub tries_left: u8,
    /// Uses left (PUK only); 0 = blocked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_left: Option<u16>,
}

/// Why a [`CardState`] cannot be restored. Nothing is changed when restore fails.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The state was written by another layout version.
    #[error("card state version {found}, this emulator reads version {expected}")]
    Version {
        /// Version in the state.
        found: u32,
        /// [`STATE_VERSION`].
        expected: u32,
    },
    /// The state belongs to another card (model or PAN differ).
    #[error(
        "card state of a {found_kind:?} card (PAN {found_pan}) does not fit this {kind:?} card (PAN {pan})"
    )]
    WrongCard {
        /// Model in the state.
        found_kind: CardKind,
        /// PAN in the state.
        found_pan: String,
        /// This card's model.
        kind: CardKind,
        /// This card's PAN.
        pan: String,
    },
    /// The state names a PIN object the card does not have.
    #[error("card state names PIN reference {0:#04x}, which this card does not have")]
    UnknownPin(u8),
    /// The state names a file that is not an updatable EF of the card.
    #[error("card state names file {0}, which is not an updatable EF of this card")]
    UnknownFile(String),
    /// A value is malformed or out of range.
    #[error("bad card state value for {field}: {reason}")]
    Value {
        /// Where.
        field: String,
        /// What is wrong.
        reason: String,
    },
}

fn bad(field: impl Into<String>, reason: impl Into<String>) -> StateError {
    StateError::Value {
        field: field.into(),
        reason: reason.into(),
    }
}

/// A virtual card whose non-volatile state can be saved and restored.
///
/// `Box<dyn EmulatedCard>` is itself a [`VirtualCard`] and coerces to `Box<dyn VirtualCard>`
/// (for [`cpx_vpcd::CardSlot::new`]); [`into_virtual`] spells the conversion out. To read the
/// state of a card while vpcd serves it, share it through a [`SharedCard`].
pub trait EmulatedCard: VirtualCard {
    /// The card model.
    fn kind(&self) -> CardKind;

    /// The current non-volatile state.
    fn state(&self) -> CardState;

    /// Replace the non-volatile state with `state` (taken from a card of the same image) and power
    /// cycle the card. On error the card is unchanged.
    fn restore(&mut self, state: &CardState) -> Result<(), StateError>;
}

/// A boxed emulated card as a plain virtual card (what [`cpx_vpcd::CardSlot`] takes).
pub fn into_virtual(card: Box<dyn EmulatedCard>) -> Box<dyn VirtualCard> {
    card
}

/// An emulated card shared between its owner and a vpcd slot: clone it, give one clone to the
/// slot (`CardSlot::new(addr, Box::new(clone))`) and keep the other to call [`state`](Self::state)
/// between APDUs.
#[derive(Clone)]
pub struct SharedCard(Arc<Mutex<Box<dyn EmulatedCard>>>);

impl std::fmt::Debug for SharedCard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SharedCard").field(&self.lock().kind()).finish()
    }
}

impl SharedCard {
    /// Share `card`.
    pub fn new(card: Box<dyn EmulatedCard>) -> Self {
        Self(Arc::new(Mutex::new(card)))
    }

    /// Exclusive access to the card.
    pub fn lock(&self) -> MutexGuard<'_, Box<dyn EmulatedCard>> {
        // A card that panicked mid-APDU is still the best card we have.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl VirtualCard for SharedCard {
    fn atr(&self) -> Vec<u8> {
        self.lock().atr()
    }
    fn power_on(&mut self) {
        self.lock().power_on()
    }
    fn power_off(&mut self) {
        self.lock().power_off()
    }
    fn reset(&mut self) {
        self.lock().reset()
    }
    fn transmit(&mut self, command: &[u8]) -> Vec<u8> {
        self.lock().transmit(command)
    }
}

impl EmulatedCard for SharedCard {
    fn kind(&self) -> CardKind {
        self.lock().kind()
    }
    fn state(&self) -> CardState {
        self.lock().state()
    }
    fn restore(&mut self, state: &CardState) -> Result<(), StateError> {
        self.lock().restore(state)
    }
}

/// The non-volatile parts of a card, borrowed mutably to apply a state.
pub(crate) struct NonVolatile<'a> {
    pub(crate) kind: CardKind,
    pub(crate) pan: &'a [u8; 10],
    pub(crate) fs: &'a mut FileSystem,
    pub(crate) pins: &'a mut [Pin],
    pub(crate) challenges: &'a mut u64,
}

fn updatable(fs: &FileSystem) -> impl Iterator<Item = (String, usize)> + '_ {
    (0..fs.files.len()).filter_map(move |idx| {
        let f = fs.get(idx)?;
        fs.data(idx)?;
        let writable = f.contact.update != Access::Never || f.contactless.update != Access::Never;
        let path: Vec<u8> = fs.path(idx).iter().flat_map(|fid| fid.to_be_bytes()).collect();
        writable.then(|| (hex::encode_upper(path), idx))
    })
}

/// Take the state of a card.
pub(crate) fn capture(
    kind: CardKind,
    pan: &[u8],
    fs: &FileSystem,
    pins: &[Pin],
    challenges: u64,
) -> CardState {
    CardState {
        version: STATE_VERSION,
        kind,
        pan: hex::encode_upper(pan),
        pins: pins
            .iter()
            .map(|p| PinState {
                reference: p.reference,
                value: hex::encode_upper(&p.value),
                tries_left: p.tries_left,
                usage_left: p.usage_left,
            })
            .collect(),
        files: updatable(fs)
            .filter_map(|(path, idx)| Some((path, hex::encode_upper(fs.data(idx)?))))
            .collect(),
        challenges,
    }
}

/// Check `state` against the card, then apply it (all or nothing).
pub(crate) fn apply(nv: &mut NonVolatile<'_>, state: &CardState) -> Result<(), StateError> {
    if state.version != STATE_VERSION {
        return Err(StateError::Version {
            found: state.version,
            expected: STATE_VERSION,
        });
    }
    let pan = hex::encode_upper(nv.pan);
    if state.kind != nv.kind || !state.pan.eq_ignore_ascii_case(&pan) {
        return Err(StateError::WrongCard {
            found_kind: state.kind,
            found_pan: state.pan.clone(),
            kind: nv.kind,
            pan,
        });
    }
    let mut pin_changes = Vec::new();
    for s in &state.pins {
        let field = format!("pin {:#04x}", s.reference);
        let (i, p) = nv
            .pins
            .iter()
            .enumerate()
            .find(|(_, p)| p.reference == s.reference)
            .ok_or(StateError::UnknownPin(s.reference))?;
        let value = hex::decode(&s.value).map_err(|e| bad(&field, e.to_string()))?;
        if !p.acceptable(&value) {
            return Err(bad(
                &field,
                format!("length must be {}..={}", p.min_len, p.max_len),
            ));
        }
        if s.tries_left > p.max_tries {
            return Err(bad(&field, format!("tries_left above max_tries {}", p.max_tries)));
        }
        if s.usage_left.is_some() != p.usage_left.is_some() {
            return Err(bad(&field, "usage_left only exists on the PUK"));
        }
        pin_changes.push((i, value, s.tries_left, s.usage_left));
    }
    let writable: BTreeMap<String, usize> = updatable(nv.fs).collect();
    let mut file_changes = Vec::new();
    for (path, content) in &state.files {
        let idx = *writable
            .get(&path.to_ascii_uppercase())
            .ok_or_else(|| StateError::UnknownFile(path.clone()))?;
        let content = hex::decode(content).map_err(|e| bad(path, e.to_string()))?;
        let size = nv.fs.data(idx).map_or(0, <[u8]>::len);
        if content.len() != size {
            return Err(bad(
                path,
                format!("the EF holds {size} bytes, not {}", content.len()),
            ));
        }
        file_changes.push((idx, content));
    }
    for (i, value, tries, usage) in pin_changes {
        if let Some(p) = nv.pins.get_mut(i) {
            p.value = value;
            p.tries_left = tries;
            p.usage_left = usage;
            p.verified = false;
        }
    }
    for (idx, content) in file_changes {
        if let Some(d) = nv.fs.data_mut(idx) {
            *d = content;
        }
    }
    *nv.challenges = state.challenges;
    Ok(())
}
