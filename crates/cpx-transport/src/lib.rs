//! The PC/SC transport of cpx: how APDUs reach a CPS3 or CPS4 card and come back.
//!
//! - [`Pcsc`] lists readers with their state ([`Pcsc::readers`]), connects to a card in shared mode
//!   ([`Pcsc::connect`]) and watches for insertions, removals and reader hot-plug
//!   ([`Pcsc::monitor`]).
//! - [`CardChannel`] is the trait the card layer talks to: one command in, its complete response
//!   out ([`exchange`] follows `61xx`, `9Fxx` and `6Cxx` as docs/card-spec.md §2.3 says), exclusive
//!   transactions around multi-APDU operations, reconnect.
//! - Reader features (PC/SC v2 part 10, docs/reader-features.md): [`CardChannel::reader_features`]
//!   asks the reader once per connection which control codes it answers (PIN pad, properties);
//!   [`CardChannel::control`] and [`CardTransaction::control`] send them (`SCardControl`).
//! - Its test double, the same trait straight to virtual cards in this process, is the separate
//!   crate `cpx-transport-virtual` (tests, benchmarks and fuzzing only).
//! - A card reset by another program becomes [`TransportError::CardReset`] after we have
//!   reconnected: the caller re-selects its application and treats the PIN as unverified. A removed
//!   card is [`TransportError::CardRemoved`].
//! - Processes take turns on a card: a process that uses it in a loop lets the others in between
//!   its transactions, which pcsc-lite alone does not (see docs/pkcs11-module.md, "Sharing the
//!   card"). `CPX_PCSC_TURNS=off` disables this, as a diagnostic.
//! - APDUs are traced with `log` at trace level under the target `cpx::apdu`; the data of VERIFY,
//!   CHANGE REFERENCE DATA and RESET RETRY COUNTER is always masked, as is decrypted data.
//!
//! ```no_run
//! use cpx_apdu::Command;
//! use cpx_transport::{CardChannel, ExchangePolicy, Pcsc};
//!
//! let pcsc = Pcsc::establish()?;
//! let reader = pcsc.readers()?.into_iter().find(|r| r.status.has_card()).expect("a card");
//! let mut card = pcsc.connect(&reader.name)?;
//! card.set_policy(ExchangePolicy::GENERIC);
//! // SELECT EF.SN.ICC with its FCP (docs/card-spec.md §1.3): on T=0 this comes back through GET RESPONSE.
//! let select = Command::new(0x00, 0xA4, 0x09, 0x04)
//!     .with_data(vec![0x3F, 0x00, 0xD0, 0x03]).unwrap()
//!     .with_le(256).unwrap();
//! let fcp = card.transmit(&select)?;
//! println!("{:02X?} {}", fcp.data(), fcp.sw());
//! # Ok::<(), cpx_transport::TransportError>(())
//! ```

mod channel;
mod direct;
mod error;
mod events;
mod exchange;
mod features;
pub mod fork_guard;
mod pcsc_channel;
mod policy;
mod readers;
mod trace;
mod turns;

pub use channel::{CardChannel, CardTransaction, Protocol, WireTap};
pub use direct::DirectReader;
pub use error::TransportError;
pub use events::{Canceller, Monitor, ReaderEvent};
pub use exchange::{RawTransmit, exchange};
pub use features::{ControlCode, Feature, ReaderFeatures, ReaderProperties};
pub use pcsc_channel::{Pcsc, PcscChannel};
pub use policy::ExchangePolicy;
pub use readers::{ReaderInfo, ReaderStatus};

/// Time since the crate's first look at the clock: timestamps kept in atomics (an `Instant`
/// cannot live in one) count from there.
pub(crate) fn since_start() -> std::time::Duration {
    static ORIGIN: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    ORIGIN.get_or_init(std::time::Instant::now).elapsed()
}
