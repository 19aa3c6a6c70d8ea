//! The emulated keypad: what "the user types" is scripted by the test in a text file that the
//! driver reads at each PIN entry (docs/pinpad-reader.md).
//!
//! One line per PIN entry, consumed in order (the driver rewrites the file without it):
//!
//! ```text
//! # comments and blank lines are skipped
//! 1234        the user types 1 2 3 4 and presses OK
//! 12          too few digits: the reader answers 6403 itself
//! cancel      the user presses Cancel: 6401
//! timeout     the user types nothing until the timeout: 6400
//! ```
//!
//! A missing or empty file is a user who types nothing: a timeout. The file holds test PINs:
//! the driver never logs its content.

use std::fs;
use std::io;
use std::path::Path;

use zeroize::Zeroizing;

/// One PIN entry on the keypad.
#[derive(Debug, PartialEq, Eq)]
pub enum KeyEntry {
    /// Digits (values 0-9) typed, then OK.
    Digits(Zeroizing<Vec<u8>>),
    /// Cancel pressed.
    Cancel,
    /// Nothing typed before the timeout.
    Timeout,
}

impl KeyEntry {
    /// The entry for a line of the script, or `None` if the line is not one.
    ///
    /// ```
    /// use cpx_ifd_pinpad::keypad::KeyEntry;
    /// assert_eq!(KeyEntry::digits("cancel"), Some(KeyEntry::Cancel));
    /// assert!(matches!(KeyEntry::digits("0912"), Some(KeyEntry::Digits(d)) if d.as_slice() == [0, 9, 1, 2]));
    /// assert_eq!(KeyEntry::digits("12a4"), None);
    /// ```
    pub fn digits(line: &str) -> Option<KeyEntry> {
        match line.trim() {
            "cancel" => Some(KeyEntry::Cancel),
            "timeout" => Some(KeyEntry::Timeout),
            digits if digits.bytes().all(|b| b.is_ascii_digit()) => Some(KeyEntry::Digits(Zeroizing::new(
                digits.bytes().map(|b| b - b'0').collect(),
            ))),
            _ => None,
        }
    }
}

/// Why the script could not be read.
#[derive(Debug)]
pub enum KeypadError {
    /// The file exists but cannot be read or rewritten.
    Io(io::Error),
    /// A line is neither digits, `cancel` nor `timeout` (its content is not repeated: it may
    /// be a PIN).
    BadLine(usize),
}

impl std::fmt::Display for KeypadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io(e) => write!(f, "keypad script: {e}"),
            Self::BadLine(n) => write!(f, "keypad script line {n}: not digits, `cancel` or `timeout`"),
        }
    }
}

impl std::error::Error for KeypadError {}

/// Take the next entry from the script at `path`, removing it from the file.
pub fn next_entry(path: &Path) -> Result<KeyEntry, KeypadError> {
    let text = match fs::read_to_string(path) {
        Ok(text) => Zeroizing::new(text),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(KeyEntry::Timeout),
        Err(e) => return Err(KeypadError::Io(e)),
    };
    let mut lines = text.lines().enumerate();
    let mut entry = None;
    for (n, line) in lines.by_ref() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        entry = Some(KeyEntry::digits(line).ok_or(KeypadError::BadLine(n + 1))?);
        break;
    }
    let rest: Zeroizing<String> = Zeroizing::new(lines.map(|(_, l)| format!("{l}\n")).collect());
    let Some(entry) = entry else {
        return Ok(KeyEntry::Timeout);
    };
    // Rewrite through a temporary file and a rename: a test appending at the same time sees
    // either the old or the new script, never half of one.
    let tmp = path.with_extension("consuming");
    fs::write(&tmp, rest.as_bytes()).map_err(KeypadError::Io)?;
    fs::rename(&tmp, path).map_err(KeypadError::Io)?;
    Ok(entry)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn entries_are_consumed_in_order() {
        let dir = std::env::temp_dir().join(format!("cpx-keypad-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("keypad");
        assert_eq!(
            next_entry(&path).unwrap(),
            KeyEntry::Timeout,
            "no file: nobody types"
        );
        fs::write(&path, "# script\n\n1234\ncancel\n  timeout  \nnot a pin\n").unwrap();
        assert!(matches!(next_entry(&path).unwrap(), KeyEntry::Digits(d) if d.as_slice() == [1, 2, 3, 4]));
        assert_eq!(next_entry(&path).unwrap(), KeyEntry::Cancel);
        assert_eq!(next_entry(&path).unwrap(), KeyEntry::Timeout);
        assert!(matches!(next_entry(&path), Err(KeypadError::BadLine(1))));
        fs::write(&path, "").unwrap();
        assert_eq!(
            next_entry(&path).unwrap(),
            KeyEntry::Timeout,
            "empty: nobody types"
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
