//! Virtual CPx cards for tests and CI: the CPS3 (Oberthur IAS-ECC) contact and contactless models
//! and the CPS4 (NXP ChipDoc) model, as pure APDU state machines (bytes in, bytes out) implementing
//! [`cpx_vpcd::VirtualCard`], whose non-volatile state can be saved and restored ([`state`]).
//!
//! There is no real card in CI: whatever this crate gets wrong, the middleware will get wrong with
//! real cards. Every behaviour cites its source, a section of the repository's card documents
//! (`docs/card-spec.md §x`, `docs/card-notes.md §x`, `docs/data-and-certs.md §x`); bytes the sources
//! give are in [`facts`], and every behaviour the sources leave open is a documented constant in
//! [`choices`] (also listed in `CHOICES.md`).
//!
//! ```no_run
//! use cpx_emulator::{CardImage, card_from_image};
//! use cpx_vpcd::CardSlot;
//!
//! let image = CardImage::load("test-vectors/cards/cps3-doctor/card.toml")?;
//! let mut slot = CardSlot::new("127.0.0.1:35963", card_from_image(&image));
//! slot.insert()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Design
//! - [`image`]: what is on the card, loaded from `card.toml` + DER files.
//! - `cps3`: the IAS-ECC file system (`fs`), PKCS#15 structures (`pkcs15`), PINs (`pin`),
//!   keys (`crypto`, `sha_resume`), and the command processor.
//! - `cps4`: the ChipDoc applet on logical channel 1 (Java Card channel rules), its files, PINs and
//!   PKCS#1 v1.5 / PSS / raw RSA operations; T=1 or T=0 according to the ATR.
//! - `common`: what both models share (file system state, PIN objects, SELECT resolution,
//!   READ/UPDATE BINARY, PIN commands, GET CHALLENGE, PKCS#15 application building), with the
//!   differences between the cards in one `Profile` per card.
//! - `link`: T=0 `61xx`/GET RESPONSE/`6Cxx`, T=1 Le handling, command chaining.
//! - [`state`]: [`EmulatedCard`] and the serde [`CardState`] (PIN counters and values, written EFs).
//! - [`apdu`]: the card-side APDU parser, written independently of `cpx-apdu`.
//! - [`timing`]: a real reader's clock (ISO 7816-3 link timing from the ATR, card processing
//!   times, USB round trips) and [`timing::Paced`], which makes a card answer no sooner.
//!
//! # Card image format (`card.toml`)
//! ```toml
//! kind = "cps3"                 # cps3 | cps3-contactless | cps4 | cps5-test (test-only stub)
//! atr = "cps3"                  # optional: a name (cps3, cps3-variant, cps3-contactless, cps4,
//!                               # cps4-rc, cps4-t0) or hex; default = the kind's ATR
//! token_serial = "9900000001"   # 10 digits: token label CPS3v3-<serial>, TokenInfo serialNumber
//! pan = "80250000010000000118"  # optional EF.SN.ICC PAN (10 bytes hex); default: 8025000001 +
//!                               # last 8 serial digits + Luhn digit + F
//! token_label = "…"             # optional override
//! last_update = "20100316110000Z" # optional TokenInfo lastUpdate
//! sig_key_fresh_verify = false  # optional, see choices::SIG_KEY_FRESH_VERIFY
//! sit_fact = "hex"              # optional CPS2ter CPS_SIT_FACT content
//!
//! [ef_actua]                    # optional: EF_ACTUA 3F00/D010 present (docs/card-spec.md §5.7)
//! start = "20240101000000"      # EC { 81 start, 82 end } in BCD; or hex = "…" for raw content
//! end = "20300101000000"
//!
//! [pin]                         # CHV 01; absent on the contactless image
//! value = "1234"                # digits; CPS3: exactly 4 (the card compares them padded to 8
//!                               # bytes with FF, facts::AODF_CPS3); CPS4: 4..8, unpadded
//! tries_left = 3                # optional (max_tries = 3 by default)
//! [puk]                         # CHV 02
//! value = "12345678"            # 8 digits
//! tries_left = 10               # optional (max 10), usage_left = 100 by default
//!
//! [keys.sign]                   # CPS_PRIV_SIG (ref 81); also keys.auth (82), keys.tech (CL;
//!                               # without it DF 0002 holds no CL application files)
//! key = "sign.TEST-ONLY.key.der"  # PKCS#8 DER
//! cert = "sign.der"               # X.509 DER
//!
//! [[data]]                      # business data objects (DODF), in DF 0001
//! label = "CPS_NAME_PS"
//! fid = "D102"
//! private = false               # read needs the PIN
//! modifiable = false            # PKCS#15 modifiable (CKA_MODIFIABLE)
//! writable = false              # optional: UPDATE BINARY after the PIN (default = modifiable)
//! size = 128                    # optional: zero-padded file size
//! template = "EE"               # optional (default EE) with fields = [{tag, text}], or hex = "…"
//! fields = [{ tag = "80", text = "MEDECIN-TEST0001" }]
//! ```
//! The business data *contents* are not public (docs/data-and-certs.md §1): the images carry plausible
//! BER-TLV, `EE { 8x text }`, with `84` raison sociale / `85` structure id / `86` secteur in
//! situations (docs/data-and-certs.md §1.2) and a 4-character specialty as the last field of CPS_INFO_PS.

pub mod apdu;
mod builtin;
pub mod choices;
mod common;
mod cps3;
mod cps4;
mod crypto;
pub mod facts;
mod fs;
pub mod image;
mod link;
mod pin;
mod pkcs15;
pub mod replay;
mod rig;
pub mod sha_resume;
pub mod state;
pub mod timing;
mod tlv;
pub mod variants;

pub use builtin::{builtin_image, builtin_stems, find_image};
pub use cps3::{Cps3Card, Interface};
pub use cps4::Cps4Card;
pub use image::{CardImage, CardKind, FileImage, ImageError, LinkImage, PastEnd, RecordedSe};
pub use link::Protocol;
pub use rig::{Rig, RigError, control};
pub use state::{CardState, EmulatedCard, PinState, SharedCard, StateError, into_virtual};
pub use variants::find_card;

/// Build the virtual card an image describes: a [`Cps4Card`] for `cps4`, else a [`Cps3Card`].
///
/// The box coerces to `Box<dyn cpx_vpcd::VirtualCard>` where one is expected (e.g.
/// `CardSlot::new(addr, card_from_image(&image))`); see also [`into_virtual`] and [`SharedCard`].
pub fn card_from_image(image: &CardImage) -> Box<dyn EmulatedCard> {
    match image.kind {
        CardKind::Cps4 | CardKind::Cps5Test => Box::new(Cps4Card::new(image)),
        CardKind::Cps3 | CardKind::Cps3Contactless => Box::new(Cps3Card::new(image)),
    }
}
