//! The test double of cpx-transport: [`CardChannel`](cpx_transport::CardChannel)s and a reader
//! set straight to virtual cards ([`cpx_vpcd::VirtualCard`]) in this process, no pcscd, no
//! sockets. Tests, benchmarks and in-process fuzzing of the layers above the transport use it;
//! the production transport does not contain it and release builds never link it.
//!
//! - [`VirtualChannel`] is one connection to one card, with a [`VirtualControl`] that removes,
//!   inserts or resets it as a person or another program would.
//! - [`VirtualReaders`] is a whole reader set of such cards, with the reader list, presence and
//!   events [`cpx_transport::Pcsc`] gives (the PKCS#11 module's `virtual-readers` test backend).
//!
//! ```
//! use cpx_apdu::Command;
//! use cpx_transport::CardChannel;
//! use cpx_transport_virtual::VirtualChannel;
//!
//! struct Ok9000;
//! impl cpx_vpcd::VirtualCard for Ok9000 {
//!     fn atr(&self) -> Vec<u8> { vec![0x3B, 0x02, 0x14, 0x00] }
//!     fn transmit(&mut self, _apdu: &[u8]) -> Vec<u8> { vec![0x90, 0x00] }
//! }
//!
//! let (mut channel, _control) = VirtualChannel::new("virtual reader", Box::new(Ok9000));
//! assert!(channel.transmit(&Command::new(0x00, 0xA4, 0x04, 0x0C))?.is_success());
//! assert!(channel.reader_features()?.is_empty(), "a virtual reader has no control command");
//! # Ok::<(), cpx_transport::TransportError>(())
//! ```

mod channel;
mod readers;

pub use channel::{VirtualChannel, VirtualControl, protocol_from_atr};
pub use readers::{VirtualCanceller, VirtualMonitor, VirtualReaders};
