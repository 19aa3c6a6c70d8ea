//! Text from a certificate or a data object, made safe to show: each control character (C0,
//! DEL, C1: Unicode category Cc) becomes U+FFFD. X.509 strings can hold controls (a
//! TeletexString, an IA5String, a UTF8String may carry ESC or the C1 CSI `U+009B`), and the
//! values of this crate go to terminals, JSON and PKCS#11 fields (issue 13 item 7).
//!
//! The same rule as `cpx_card::text` (docs/pkcs11-module.md "Text from the card"), repeated
//! here because this crate depends on no other cpx crate (docs/architecture.md).

/// `s` with every control character replaced by U+FFFD.
pub(crate) fn safe(s: String) -> String {
    if s.chars().any(char::is_control) {
        s.chars()
            .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
            .collect()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn controls_become_the_replacement_character() {
        assert_eq!(
            super::safe("Dr\u{1b}[2J\u{0}\u{9b}1m".into()),
            "Dr\u{FFFD}[2J\u{FFFD}\u{FFFD}1m"
        );
        assert_eq!(super::safe("Médecin".into()), "Médecin");
    }
}
