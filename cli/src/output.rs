//! Text or JSON output. Every JSON document carries `"schema": "cpx/<command>"` and
//! `"version": N`, bumped on any incompatible change (docs/cli-json.md).
//!
//! Last line of defence against a hostile card or reader driver (issue 13 item 7): card text is
//! already made safe where it is parsed (`cpx_card::text`, cpx-profile), and everything printed
//! here goes through [`terminal_safe`] once more, so no control character other than our own
//! line breaks reaches the terminal, and no C1 control or DEL (which serde_json writes raw)
//! reaches a JSON document: each becomes U+FFFD (docs/cli-json.md "Text from the card").

use std::borrow::Cow;

use serde::Serialize;

/// How a command reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Text,
    Json,
}

#[derive(Serialize)]
struct Envelope<'a, T: Serialize> {
    schema: &'a str,
    version: u32,
    #[serde(flatten)]
    body: &'a T,
}

/// Print `body` as the versioned JSON document of `command`.
pub(crate) fn print_json<T: Serialize>(
    command: &str,
    version: u32,
    body: &T,
) -> Result<(), crate::error::CliError> {
    let schema = format!("cpx/{command}");
    let text = serde_json::to_string_pretty(&Envelope {
        schema: &schema,
        version,
        body,
    })
    .map_err(|e| crate::error::CliError::Output(e.to_string()))?;
    // serde_json escapes C0 inside strings, so the only raw controls left are its own line
    // breaks and any C1 / DEL, which it writes as is: those become U+FFFD.
    println!("{}", terminal_safe(&text));
    Ok(())
}

/// `text` with every control character (C0, DEL, C1) except `\n` replaced by U+FFFD, the
/// replacement of `cpx_card::text`; borrowed when there is none.
pub(crate) fn terminal_safe(text: &str) -> Cow<'_, str> {
    let unsafe_char = |c: char| c != '\n' && cpx_card::text::is_unsafe(c);
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|c| {
                if unsafe_char(c) {
                    cpx_card::text::REPLACEMENT
                } else {
                    c
                }
            })
            .collect(),
    )
}

/// `println!` for text output: the line goes through [`terminal_safe`].
macro_rules! outln {
    ($($arg:tt)*) => {
        println!("{}", $crate::output::terminal_safe(&format!($($arg)*)))
    };
}
pub(crate) use outln;

/// `eprintln!` for messages that may quote the card or a reader: through [`terminal_safe`].
macro_rules! errln {
    ($($arg:tt)*) => {
        eprintln!("{}", $crate::output::terminal_safe(&format!($($arg)*)))
    };
}
pub(crate) use errln;

/// `3B AC 00 40` style: the workspace's one spaced-hex rendering.
pub(crate) use cpx_apdu::spaced_hex;

#[cfg(test)]
mod tests {
    use super::terminal_safe;

    #[test]
    fn only_line_breaks_survive() {
        assert_eq!(terminal_safe("a\nb"), "a\nb");
        assert_eq!(
            terminal_safe("\u{1b}[2J\r\t\u{0}\u{7f}\u{9b}é"),
            "\u{FFFD}[2J\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}é"
        );
    }
}
