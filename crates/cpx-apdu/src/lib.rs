//! ISO 7816-4 command and response APDUs, status words and BER-TLV for the French CPx
//! health-professional cards (CPS3 = IAS-ECC, CPS4 = NXP ChipDoc, and the CPS2ter volet).
//!
//! Pure data handling, no I/O: the transport crate sends what [`Command::to_bytes`] builds and
//! hands the reply to [`Response::from_bytes`]. Only short APDUs exist (docs/card-spec.md §2.3); data longer
//! than 255 bytes goes through [`chain`]. Command data is wiped on drop and never shown for PIN
//! commands ([`Command::trace`]).
//!
//! ```
//! use cpx_apdu::{Command, Response, Status, tlv};
//!
//! // docs/card-spec.md §3.2: ask a CPS3 for the tries left on PIN 01 ...
//! let get_data = Command::new(0x00, 0xCB, 0x3F, 0xFF)
//!     .with_data([0x4D, 0x08, 0x70, 0x06, 0xBF, 0x81, 0x01, 0x02, 0xA0, 0x80])?
//!     .with_le(256)?;
//! assert_eq!(get_data.trace(), "00 CB 3F FF 0A 4D 08 70 06 BF 81 01 02 A0 80 00");
//!
//! // ... on T=0 it goes without Le and the card answers 61 18 ...
//! let first = Response::from_bytes(&[0x61, 0x18])?;
//! assert_eq!(first.sw().kind(), Status::BytesAvailable(0x18));
//!
//! // ... then GET RESPONSE brings the data.
//! let reply = Response::from_bytes(&[
//!     0x70, 0x16, 0xBF, 0x81, 0x01, 0x12, 0xA0, 0x10, 0x9A, 0x01, 0x03, 0x9B, 0x01, 0x03,
//!     0xA1, 0x08, 0x8C, 0x06, 0xF3, 0x00, 0x00, 0x13, 0xFF, 0x00, 0x90, 0x00,
//! ])?;
//! let data = reply.into_result()?;
//! let left = tlv::find_path(&data, &[0x70, 0xBF8101, 0xA0, 0x9B])?.map(|t| t.value);
//! assert_eq!(left, Some(&[0x03][..]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod command;
mod error;
mod hex;
mod response;
mod status;
pub mod tlv;

pub use command::{
    CLA_CHAINING, Case, Command, INS_CHANGE_REFERENCE_DATA, INS_RESET_RETRY_COUNTER, INS_VERIFY, MAX_DATA,
    MAX_LE, chain,
};
pub use error::{ApduError, TlvError};
pub use hex::spaced_hex;
pub use response::{MAX_RESPONSE_LEN, Response};
pub use status::{Status, StatusWord};
