//! Hex rendering (no dependency for two functions).

const UPPER: &[u8; 16] = b"0123456789ABCDEF";
const LOWER: &[u8; 16] = b"0123456789abcdef";

fn render(bytes: &[u8], digits: &[u8; 16]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(digits[usize::from(b >> 4)]));
        s.push(char::from(digits[usize::from(b & 0x0F)]));
    }
    s
}

/// Upper-case hex, the card-data convention (`EE`, `84`).
pub(crate) fn upper(bytes: &[u8]) -> String {
    render(bytes, UPPER)
}

/// Lower-case hex, the certificate convention (serials, fingerprints, key identifiers).
pub(crate) fn lower(bytes: &[u8]) -> String {
    render(bytes, LOWER)
}

#[cfg(test)]
mod tests {
    #[test]
    fn both_cases() {
        assert_eq!(super::upper(&[0x0A, 0xEE]), "0AEE");
        assert_eq!(super::lower(&[0x0A, 0xEE]), "0aee");
        assert_eq!(super::lower(&[]), "");
    }
}
