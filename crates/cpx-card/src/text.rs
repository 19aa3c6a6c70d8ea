//! Text that came from a card (or a reader driver), made safe to show.
//!
//! A card is not trusted: a TokenInfo label holding `ESC [2J` cleared the terminal of whoever ran
//! `cpx status`, and reached `CK_TOKEN_INFO.label` as is (issue 13 item 7). The rule, for every
//! string a card gives (labels, manufacturer, business data, certificate names) and for reader
//! names: **each control character (C0 `U+0000`–`U+001F`, DEL `U+007F`, C1 `U+0080`–`U+009F`)
//! and each invalid UTF-8 sequence becomes one [`REPLACEMENT`] character, `U+FFFD` (�)**.
//! Everything else is kept as the card wrote it, so an honest label is unchanged.
//!
//! `U+FFFD` rather than dropping: the reader of the label sees that something was there
//! (a dropped byte could turn a hostile label into an honest-looking one), and it is what
//! [`String::from_utf8_lossy`] already does for invalid UTF-8. Tabs and newlines are controls
//! too: a label is one line.
//!
//! ```
//! use cpx_card::text::{display_safe, display_safe_bytes};
//!
//! assert_eq!(display_safe("CPS3v3-2900995266"), "CPS3v3-2900995266");
//! assert_eq!(display_safe("A\u{1b}[2J\u{9b}1m"), "A\u{FFFD}[2J\u{FFFD}1m");
//! assert_eq!(display_safe_bytes(b"A\x00\xFF\xFEB"), "A\u{FFFD}\u{FFFD}\u{FFFD}B");
//! ```

use std::borrow::Cow;

/// What replaces a control character or an invalid UTF-8 sequence: `U+FFFD`.
pub const REPLACEMENT: char = '\u{FFFD}';

/// Whether `c` must not reach a terminal, a JSON string or a PKCS#11 text field: a C0 or C1
/// control or DEL (Unicode general category Cc, which is exactly those 65 code points).
///
/// ```
/// assert!(cpx_card::text::is_unsafe('\u{1b}'));
/// assert!(cpx_card::text::is_unsafe('\u{9b}'));
/// assert!(!cpx_card::text::is_unsafe('é'));
/// ```
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
}

/// `s` with every control character replaced by [`REPLACEMENT`]; borrowed when there is none.
///
/// ```
/// use cpx_card::text::display_safe;
/// assert!(matches!(display_safe("Médecin"), std::borrow::Cow::Borrowed("Médecin")));
/// assert_eq!(display_safe("a\tb\nc\u{7f}"), "a\u{FFFD}b\u{FFFD}c\u{FFFD}");
/// ```
pub fn display_safe(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(
        s.chars()
            .map(|c| if is_unsafe(c) { REPLACEMENT } else { c })
            .collect(),
    )
}

/// Bytes a card gave as text (UTF8String, a label `[0]`…): invalid UTF-8 sequences and control
/// characters each become [`REPLACEMENT`]; borrowed when the bytes are clean UTF-8.
///
/// ```
/// use cpx_card::text::display_safe_bytes;
/// assert_eq!(display_safe_bytes(b"ASIP SANTE"), "ASIP SANTE");
/// assert_eq!(display_safe_bytes(b"\x1b[2J\xC2\x9B"), "\u{FFFD}[2J\u{FFFD}");
/// ```
pub fn display_safe_bytes(bytes: &[u8]) -> Cow<'_, str> {
    match String::from_utf8_lossy(bytes) {
        Cow::Borrowed(s) => display_safe(s),
        Cow::Owned(s) => Cow::Owned(display_safe(&s).into_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_control_and_only_controls_are_replaced() {
        for u in 0..=0x10FFFFu32 {
            let Some(c) = char::from_u32(u) else { continue };
            let control = u < 0x20 || u == 0x7F || (0x80..=0x9F).contains(&u);
            assert_eq!(is_unsafe(c), control, "U+{u:04X}");
        }
    }

    #[test]
    fn the_hostile_label_of_issue_13() {
        let label = b"CPS3\x1b[2J\x00\xC2\x9B2J\xFF-1";
        let safe = display_safe_bytes(label);
        assert_eq!(safe, "CPS3\u{FFFD}[2J\u{FFFD}\u{FFFD}2J\u{FFFD}-1");
        assert!(!safe.chars().any(char::is_control));
    }

    #[test]
    fn honest_text_is_borrowed_unchanged() {
        assert!(matches!(
            display_safe_bytes("Certificat d'Authentification CPS".as_bytes()),
            Cow::Borrowed(_)
        ));
        assert_eq!(
            display_safe("Pharmacien • Île-de-France"),
            "Pharmacien • Île-de-France"
        );
    }
}
