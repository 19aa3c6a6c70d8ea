//! Readers and what is in them.

use std::time::Duration;

use pcsc::{ReaderState, State};

use crate::{Pcsc, TransportError};

/// What a reader holds, as PC/SC reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReaderStatus {
    /// No card.
    Empty,
    /// A card, not connected by anyone.
    CardPresent,
    /// A card connected by some program (shared).
    InUse,
    /// A card held exclusively by some program.
    InUseExclusive,
    /// A card that does not answer to reset (mute, inserted the wrong way, not a smart card).
    Mute,
    /// The reader exists but cannot be used (being set up, or its driver failed).
    Unavailable,
}

impl std::fmt::Display for ReaderStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ReaderStatus::Empty => "empty",
            ReaderStatus::CardPresent => "card present",
            ReaderStatus::InUse => "card in use",
            ReaderStatus::InUseExclusive => "card in exclusive use",
            ReaderStatus::Mute => "mute card",
            ReaderStatus::Unavailable => "unavailable",
        })
    }
}

impl ReaderStatus {
    pub(crate) fn from_state(state: State) -> Self {
        if state.contains(State::UNAVAILABLE) || state.contains(State::UNKNOWN) {
            ReaderStatus::Unavailable
        } else if state.contains(State::EMPTY) || !state.contains(State::PRESENT) {
            ReaderStatus::Empty
        } else if state.contains(State::MUTE) {
            ReaderStatus::Mute
        } else if state.contains(State::EXCLUSIVE) {
            ReaderStatus::InUseExclusive
        } else if state.contains(State::INUSE) {
            ReaderStatus::InUse
        } else {
            ReaderStatus::CardPresent
        }
    }

    /// Whether a card is physically there (usable or not).
    pub fn has_card(self) -> bool {
        matches!(
            self,
            Self::CardPresent | Self::InUse | Self::InUseExclusive | Self::Mute
        )
    }
}

/// One reader and its state. Contactless readers are readers like any other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderInfo {
    /// The PC/SC reader name: the key to choose a reader (indexes change with plugging order).
    pub name: String,
    /// What it holds.
    pub status: ReaderStatus,
    /// The card's ATR when a card is present.
    pub atr: Option<Vec<u8>>,
}

impl Pcsc {
    /// Every reader with its state. No reader is an empty list, not an error.
    pub fn readers(&self) -> Result<Vec<ReaderInfo>, TransportError> {
        let _pc = crate::fork_guard::enter();
        let names = match self.ctx.list_readers_owned() {
            Ok(names) => names,
            Err(pcsc::Error::NoReadersAvailable) => return Ok(Vec::new()),
            Err(e) => return Err(TransportError::from_pcsc("SCardListReaders", "", e)),
        };
        let mut states: Vec<ReaderState> = names
            .into_iter()
            .map(|n| ReaderState::new(n, State::UNAWARE))
            .collect();
        if states.is_empty() {
            return Ok(Vec::new());
        }
        let _pc = crate::fork_guard::enter();
        self.ctx
            .get_status_change(Duration::ZERO, &mut states)
            .map_err(|e| TransportError::from_pcsc("SCardGetStatusChange", "", e))?;
        Ok(states
            .iter()
            .map(|s| {
                let status = ReaderStatus::from_state(s.event_state());
                ReaderInfo {
                    name: s.name().to_string_lossy().into_owned(),
                    status,
                    atr: (status.has_card() && !s.atr().is_empty()).then(|| s.atr().to_vec()),
                }
            })
            .collect())
    }
}
