//! The card layer of cpx: one API over the CPS3 (Oberthur IAS-ECC) and the CPS4 (NXP ChipDoc),
//! built on [`cpx_transport`].
//!
//! - Each card generation is one module behind one driver trait, with its facts in one table
//!   ([`Capabilities`], read through [`Generation::capabilities`]): callers read what a card can
//!   do there rather than comparing generations.
//! - [`Card::open`] identifies the card from its ATR ([`identify_atr`]), reads EF.SN.ICC with the
//!   issuer check and the serial rule of the official module ([`serial_from_ef_sn_icc`]), and
//!   TokenInfo.
//! - PKCS#15 ([`pkcs15`]) is parsed with a BER reader that accepts the CPS3's non-DER BIT STRINGs;
//!   each directory file is read once, when first needed.
//! - The directory files read ([`Card::pkcs15_files`]) can be given back when the same card is
//!   opened again ([`Card::open_with`], or [`Card::identify`] then [`Identified::open`]): only
//!   EF.SN.ICC is read then, and the seeds are checked against the card's serial, parsed like
//!   card data, and dropped (read from the card) when inconsistent.
//! - PINs ([`Pin`]) are checked against the AODF policy before any APDU ([`PinPolicy`]), wiped on
//!   drop and never logged; VERIFY is never retried. [`PinEntry`] says how a code reaches the
//!   card: typed on the host, or on the reader's PIN pad (PC/SC part 10 secure PIN entry:
//!   [`Card::pin_pad`] says whether the reader has a usable one, [`PinPadSetting`] turns pad
//!   use off; the reader's cancel, timeout, mismatch and length answers are precise errors that
//!   spend no try).
//! - For a PKCS#11 module: the PrKDF, CDF and DODF listings ([`Card::private_keys`],
//!   [`Card::certificate_infos`], [`Card::data_objects`]) whose entries ([`PrivateKeyInfo`],
//!   [`Certificate::listed`], [`DataObject`]) name their object and can be kept as they are
//!   (certificates read one by one with [`Card::read_listed_certificate`]),
//!   the PIN policy ([`Card::pin_policy`]), a real logout of the card ([`Card::logout`]), unblock
//!   with the PUK already verified ([`Card::unblock_pin_after_puk`]), card randomness
//!   ([`Card::get_challenge`], [`Card::random_bytes`]), data object size and write
//!   ([`Card::data_object_size`], [`Card::write_data_object`]).
//! - Text from the card (TokenInfo label and manufacturer, every PKCS#15 label) is made safe to
//!   show when parsed: control characters and invalid UTF-8 become U+FFFD ([`text`], whose
//!   [`text::display_safe`] also serves other text such as reader names).
//! - [`commands`] holds one function per card command, with the exact bytes of
//!   `docs/card-spec.md` (§ cited on each).
//!
//! ```no_run
//! use cpx_card::{Card, KeyRole, Mechanism, HashAlg, Pin};
//! use cpx_transport::Pcsc;
//!
//! let pcsc = Pcsc::establish()?;
//! let mut card = Card::open(Box::new(pcsc.connect("Virtual PCD 00 00")?))?;
//! println!("{} {} {}", card.model(), card.serial(), card.token_label());
//! card.verify_pin(&Pin::new("1234"))?;
//! let signature = card.sign(KeyRole::Signature, Mechanism::Pkcs1(HashAlg::Sha256), b"document")?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod atr;
mod ber;
mod card;
pub mod commands;
mod crypto;
mod data;
mod error;
mod generation;
mod hash;
mod io;
mod open;
mod pin;
mod pinops;
mod pinpad;
pub mod pkcs15;
mod probe;
mod seed;
mod session;
mod state;
pub mod text;

pub use atr::{Interface, identify_atr};
pub use ber::Path;
pub use card::{CHALLENGES_PER_TRANSACTION, Card, Certificate, PrivateKeyInfo};
pub use crypto::{KeyRole, Mechanism};
pub use data::{DataObject, EfActua, parse_ef_actua};
pub use error::CardError;
pub use generation::cps3::parse_pin_data;
pub use generation::{Capabilities, FileSelection, Generation, KeyReferences, KnownAtr};
pub use hash::{HashAlg, MessageHash, partial_hash, pkcs1_type1, pkcs1_type2_unpad, strip_digest_info};
pub use open::Identified;
pub use pin::{Pin, PinEntry, PinKind, PinPolicy, PinStatus, PinType};
pub use pinpad::{PinPad, PinPadSetting};
pub use probe::{Probe, ProbeBase};
pub use seed::Pkcs15Files;
pub use session::serial_from_ef_sn_icc;
