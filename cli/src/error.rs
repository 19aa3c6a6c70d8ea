//! The CLI's one error type: what can make `cpx` fail, its message and its exit code
//! (README, "Exit codes"). Commands return it; `main` prints it and exits with its code.

use cpx_card::{CardError, PinKind};
use cpx_transport::TransportError;

/// What can make `cpx` fail, each with its own exit code (README, "Exit codes").
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    #[error("{0}")]
    Transport(#[from] TransportError),
    #[error("{}", card_message(.0))]
    Card(#[from] CardError),
    #[error("no card in any reader")]
    NoCardAnywhere,
    #[error("not a CPx card: {0}")]
    NotCpx(String),
    #[error("certificate invalid: {0}")]
    CertificateInvalid(String),
    #[error("no card inserted or removed within {0} s")]
    Timeout(String),
    #[error("cannot write output: {0}")]
    Output(String),
    #[error("{0}")]
    Io(String),
    #[error("{0}")]
    Usage(String),
    #[error("emulator: {0}")]
    Emulator(String),
    #[error("doctor: failed: {0}")]
    ChecksFailed(String),
}

/// The messages of the PIN errors, as the README documents them.
fn card_message(e: &CardError) -> String {
    match e {
        CardError::WrongPin {
            kind: PinKind::User,
            tries_left: 0,
        }
        | CardError::PinBlocked { kind: PinKind::User } => {
            "PIN blocked: unblock with your PUK (cpx pin unblock)".into()
        }
        CardError::WrongPin {
            kind: PinKind::Puk,
            tries_left: 0,
        }
        | CardError::PinBlocked { kind: PinKind::Puk } => "PUK blocked: the card must be replaced".into(),
        CardError::WrongPin { kind, tries_left: 1 } => format!("wrong {kind}, 1 try left"),
        CardError::WrongPin { kind, tries_left } => format!("wrong {kind}, {tries_left} tries left"),
        CardError::PinFormat { kind, reason } => {
            format!("{kind} refused before reaching the card (no try spent): {reason}")
        }
        // The reader answered for itself (PC/SC part 10: 6401, 6400, 6402, 6403): the card saw
        // nothing (docs/pinpad-readers.md).
        CardError::PinPadCancelled { .. } => {
            "cancelled on the reader's keypad: nothing was sent to the card (no try spent)".into()
        }
        CardError::PinPadTimeout { .. } => {
            "nothing was typed on the reader's keypad in time: nothing was sent to the card (no try \
             spent)"
                .into()
        }
        CardError::PinPadMismatch { .. } => {
            "the new PIN and its confirmation typed on the reader's keypad differ: nothing was \
             changed (no try spent)"
                .into()
        }
        CardError::PinPadLength { .. } => {
            "the code typed on the reader's keypad has too few or too many digits for the card: \
             the reader refused it, nothing was sent to the card (no try spent)"
                .into()
        }
        other => other.to_string(),
    }
}

fn transport_code(e: &TransportError) -> u8 {
    match e {
        TransportError::NoService => 3,
        TransportError::NoReaders | TransportError::UnknownReader(_) => 4,
        TransportError::NoCard(_) | TransportError::CardRemoved(_) => 5,
        _ => 1,
    }
}

impl CliError {
    /// 0 ok; 1 other failures; 2 usage; 3 PC/SC service missing; 4 no reader; 5 no card;
    /// 6 wrong PIN/PUK; 7 PIN blocked; 8 PUK blocked; 9 not a CPx card; 10 certificate invalid;
    /// 11 PIN/PUK malformed (nothing sent; on a PIN pad too: too few or too many digits);
    /// 12 `cpx wait` timed out; 13 a `cpx doctor` check failed; 14 cancelled on the PIN pad;
    /// 15 nothing typed on the PIN pad in time; 16 new PIN and confirmation differ on the pad.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            CliError::Transport(t) | CliError::Card(CardError::Transport(t)) => transport_code(t),
            CliError::Card(c) => match c {
                CardError::WrongPin {
                    kind: PinKind::User,
                    tries_left: 0,
                }
                | CardError::PinBlocked { kind: PinKind::User } => 7,
                CardError::WrongPin {
                    kind: PinKind::Puk,
                    tries_left: 0,
                }
                | CardError::PinBlocked { kind: PinKind::Puk } => 8,
                CardError::WrongPin { .. } => 6,
                CardError::NotCpxCard { .. } | CardError::WrongIssuer { .. } => 9,
                CardError::PinFormat { .. } | CardError::PinPadLength { .. } => 11,
                CardError::PinPadCancelled { .. } => 14,
                CardError::PinPadTimeout { .. } => 15,
                CardError::PinPadMismatch { .. } => 16,
                CardError::CardRemoved { .. } => 5,
                _ => 1,
            },
            CliError::NoCardAnywhere => 5,
            CliError::NotCpx(_) => 9,
            CliError::CertificateInvalid(_) => 10,
            CliError::Timeout(_) => 12,
            CliError::ChecksFailed(_) => 13,
            CliError::Usage(_) => 2,
            CliError::Output(_) | CliError::Io(_) | CliError::Emulator(_) => 1,
        }
    }
}
