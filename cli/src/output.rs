//! Text or JSON output. Every JSON document carries `"schema": "cpx/<command>"` and
//! `"version": N`, bumped on any incompatible change (docs/cli-json.md).

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
) -> Result<(), crate::commands::CliError> {
    let schema = format!("cpx/{command}");
    let text = serde_json::to_string_pretty(&Envelope {
        schema: &schema,
        version,
        body,
    })
    .map_err(|e| crate::commands::CliError::Output(e.to_string()))?;
    println!("{text}");
    Ok(())
}

/// `3B AC 00 40` style.
pub(crate) fn spaced_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(" ")
}
