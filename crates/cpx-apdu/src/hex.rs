//! The one spaced-hex rendering of the workspace (`3B AC 00 40`), for APDU traces and for what
//! the CLI shows of an ATR; plain hex is the `hex` crate's.

use std::fmt::Write;

/// Upper-case hex with a space between bytes, the way APDUs and ATRs are written in logs and
/// card documentation.
///
/// ```
/// assert_eq!(cpx_apdu::spaced_hex(&[0x3B, 0xAC, 0x00, 0x40]), "3B AC 00 40");
/// assert_eq!(cpx_apdu::spaced_hex(&[]), "");
/// ```
pub fn spaced_hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        // Writing to a String cannot fail.
        let _ = write!(s, "{b:02X}");
    }
    s
}
