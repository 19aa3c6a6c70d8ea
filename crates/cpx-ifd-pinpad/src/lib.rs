//! **Test-only** pcscd reader driver (IFD handler): a PIN-pad reader whose keypad is scripted by
//! the test, and whose card is cpx's emulator over the vpcd protocol.
//!
//! vpcd cannot carry `SCardControl`, so PC/SC part 10 secure PIN entry (issue 17) cannot be
//! tested through it. This driver is loaded by pcscd through a reader.conf entry like vpcd's
//! (`LIBPATH` this cdylib, `DEVICENAME <keypad script path>:<tcp port>`), listens on
//! 127.0.0.1:port for a virtual card (any `cpx_vpcd::CardSlot`, so every card image works),
//! and answers the part 10 control commands: `CM_IOCTL_GET_FEATURE_REQUEST`,
//! `FEATURE_VERIFY_PIN_DIRECT`, `FEATURE_MODIFY_PIN_DIRECT`, `FEATURE_IFD_PIN_PROPERTIES`,
//! `FEATURE_GET_TLV_PROPERTIES`. For the two PIN features it reads what "the user types" from
//! the [`keypad`] script and formats the digits into the APDU template of the structure the
//! middleware sent ([`pin`]), as a real reader does: a wrong structure shows up as a wrong APDU
//! at the card. How to use it: docs/pinpad-reader.md.
//!
//! All unsafe code is in the private `ffi` module; the rest is safe and unit-tested.

mod ffi;
pub mod keypad;
pub mod pin;
pub mod reader;
