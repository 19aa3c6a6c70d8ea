//! Finding and opening the CPx card a command works on, and the PIN steps shared by the commands
//! that spend a try.

use clap::Args;
use cpx_card::{Card, CardError, Generation, Interface, PinEntry, PinKind, PinPad, PinStatus};
use cpx_transport::{Pcsc, ReaderInfo, ReaderStatus, TransportError};
use serde::Serialize;

use crate::error::CliError;
use crate::secrets::Secrets;

/// `--reader R`, shared by the card commands.
#[derive(Debug, Args)]
pub(crate) struct ReaderArg {
    /// The reader to use (see `cpx readers`); default: the first reader holding a CPx card.
    #[arg(long, value_name = "READER")]
    pub(crate) reader: Option<String>,
}

/// An open card and how its reader was chosen.
pub(crate) struct Session {
    pub(crate) card: Card,
    /// The reader was picked by cpx (no `--reader`).
    pub(crate) auto: bool,
}

/// Why [`first_cpx_card`] passed over a reader holding a card.
#[derive(Debug)]
pub(crate) enum PassedOver {
    /// pcscd reports the card mute: not even tried.
    Mute,
    /// A card that is not a CPx card ([`CardError::NotCpxCard`], [`CardError::WrongIssuer`]).
    NotCpx(CardError),
    /// Connecting or opening failed otherwise.
    Unreadable(CardError),
}

/// A reader [`first_cpx_card`] passed over, and why.
#[derive(Debug)]
pub(crate) struct Passed {
    pub(crate) reader: String,
    pub(crate) why: PassedOver,
}

/// The card of the first reader among `readers` that holds a CPx card, opened; or, when none
/// does, every reader holding a card with the reason it was passed over (empty: no card at all).
/// The one place that picks a reader when the user named none (`Session::open`, `cpx doctor`).
pub(crate) fn first_cpx_card<'a>(
    pcsc: &Pcsc,
    readers: impl IntoIterator<Item = &'a ReaderInfo>,
) -> Result<Card, Vec<Passed>> {
    let mut passed = Vec::new();
    for r in readers.into_iter().filter(|r| r.status.has_card()) {
        let why = if r.status == ReaderStatus::Mute {
            PassedOver::Mute
        } else {
            let opened = pcsc
                .connect(&r.name)
                .map_err(CardError::from)
                .and_then(|channel| Card::open(Box::new(channel)));
            match opened {
                Ok(card) => return Ok(card),
                Err(e @ (CardError::NotCpxCard { .. } | CardError::WrongIssuer { .. })) => {
                    PassedOver::NotCpx(e)
                }
                Err(e) => PassedOver::Unreadable(e),
            }
        };
        passed.push(Passed {
            reader: r.name.clone(),
            why,
        });
    }
    Err(passed)
}

impl Session {
    /// Open the card in `--reader`, or the first reader whose card is a CPx card.
    pub(crate) fn open(arg: &ReaderArg) -> Result<Session, CliError> {
        let pcsc = Pcsc::establish()?;
        if let Some(name) = &arg.reader {
            let card = Card::open(Box::new(pcsc.connect(name)?))?;
            return Ok(Session { card, auto: false });
        }
        let readers = pcsc.readers()?;
        if readers.is_empty() {
            return Err(TransportError::NoReaders.into());
        }
        let passed = match first_cpx_card(&pcsc, &readers) {
            Ok(card) => {
                log::debug!("using {} (first reader with a CPx card)", card.reader());
                return Ok(Session { card, auto: true });
            }
            Err(passed) => passed,
        };
        let mut others = Vec::new();
        for p in passed {
            match p.why {
                PassedOver::NotCpx(e) => others.push(format!("{}: {e}", p.reader)),
                PassedOver::Mute => log::debug!("{}: the card does not answer (mute)", p.reader),
                PassedOver::Unreadable(e) => log::debug!("{}: {e}", p.reader),
            }
        }
        if others.is_empty() {
            Err(CliError::NoCardAnywhere)
        } else {
            Err(CliError::NotCpx(format!(
                "no reader holds a CPx card ({})",
                others.join("; ")
            )))
        }
    }

    /// The reader's name, to show: a driver's name is not trusted either (controls → U+FFFD,
    /// docs/cli-json.md).
    pub(crate) fn reader(&self) -> String {
        cpx_card::text::display_safe(self.card.reader()).into_owned()
    }

    /// The PIN and PUK status; `None` for a code the interface does not have (CPS3 contactless).
    pub(crate) fn codes(&mut self) -> Result<Codes, CliError> {
        if self.card.interface() == Interface::Contactless {
            return Ok(Codes { pin: None, puk: None });
        }
        match self.card.pin_statuses(&[PinKind::User, PinKind::Puk]) {
            Ok(v) => Ok(Codes {
                pin: v.first().map(CodeState::from),
                puk: v.get(1).map(CodeState::from),
            }),
            Err(CardError::NoSuchPin(_)) => Ok(Codes { pin: None, puk: None }),
            Err(e) => Err(e.into()),
        }
    }

    /// Before a command that spends a try of `kind`: show the tries left on stderr, and refuse
    /// when the code is already blocked (nothing sent).
    pub(crate) fn before_spending(&mut self, kind: PinKind) -> Result<(), CliError> {
        let codes = self.codes()?;
        let state = match kind {
            PinKind::User => codes.pin,
            PinKind::Puk => codes.puk,
        };
        let Some(state) = state else {
            return Err(CardError::NoSuchPin(kind).into());
        };
        if state.blocked {
            return Err(CardError::PinBlocked { kind }.into());
        }
        match state.tries_left {
            Some(1) => eprintln!("{kind}: 1 try left"),
            Some(n) => eprintln!("{kind}: {n} tries left"),
            None => eprintln!("{kind}: already verified in this card session"),
        }
        Ok(())
    }

    /// The reader's PIN pad when the codes go through it: `secrets` allow it (no `--pin-stdin`,
    /// `--pin-file` or `--no-pinpad`) and the card layer finds a usable pad (`Card::pin_pad`:
    /// none without one, or when `CPX_PINPAD=off` / `CPX_PINPAD_IGNORE` turn it off).
    pub(crate) fn pin_pad(&mut self, secrets: &Secrets) -> Result<Option<PinPad>, CliError> {
        if !secrets.pad_allowed() {
            return Ok(None);
        }
        Ok(self.card.pin_pad()?)
    }

    /// Present the PIN (after showing the tries left), unless the interface has none: on the
    /// reader's PIN pad when it has one (the computer never sees the PIN), else from `secrets`.
    pub(crate) fn login(&mut self, secrets: &mut Secrets) -> Result<(), CliError> {
        if self.card.interface() == Interface::Contactless {
            return Ok(());
        }
        self.before_spending(PinKind::User)?;
        if self.pin_pad(secrets)?.is_some() {
            pad_says(PAD_VERIFY);
            self.card.verify_entry(PinKind::User, &PinEntry::PinPad)?;
        } else {
            let pin = secrets.pin(PinKind::User, "PIN: ")?;
            self.card.verify_pin(&pin)?;
        }
        Ok(())
    }
}

/// What the user is told to type on the PIN pad, for a verify (docs/pinpad-readers.md).
pub(crate) const PAD_VERIFY: &str = "Type your PIN on the reader's keypad, then confirm on the reader.";

/// The instruction for a PIN-pad entry, on stderr (never on stdout, which may carry JSON).
pub(crate) fn pad_says(what: &str) {
    eprintln!("{what}");
}

/// `CPS3` / `CPS4`.
pub(crate) fn generation_name(g: Generation) -> &'static str {
    g.name()
}

/// `contact` / `contactless`.
pub(crate) fn interface_name(i: Interface) -> &'static str {
    match i {
        Interface::Contact => "contact",
        Interface::Contactless => "contactless",
    }
}

/// The state of a PIN or PUK as the JSON shows it.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct CodeState {
    /// Tries left; null when the card does not say (CPS4, already verified).
    pub(crate) tries_left: Option<u8>,
    /// Maximum tries; null when the card does not say (CPS4).
    pub(crate) max_tries: Option<u8>,
    pub(crate) blocked: bool,
    /// Verified in the current card session; null when unknown.
    pub(crate) verified: Option<bool>,
}

impl From<&PinStatus> for CodeState {
    fn from(s: &PinStatus) -> Self {
        CodeState {
            tries_left: s.tries_left,
            max_tries: s.max_tries,
            blocked: s.blocked,
            verified: s.verified,
        }
    }
}

impl CodeState {
    /// `3 tries left`, `blocked`…
    pub(crate) fn text(&self, kind: PinKind) -> String {
        if self.blocked {
            return match kind {
                PinKind::User => "blocked (unblock with your PUK: cpx pin unblock)".into(),
                PinKind::Puk => "blocked (the card must be replaced)".into(),
            };
        }
        match self.tries_left {
            Some(1) => "1 try left".into(),
            Some(n) => format!("{n} tries left"),
            None if self.verified == Some(true) => "verified".into(),
            None => "tries left unknown".into(),
        }
    }
}

/// PIN and PUK.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct Codes {
    pub(crate) pin: Option<CodeState>,
    pub(crate) puk: Option<CodeState>,
}
