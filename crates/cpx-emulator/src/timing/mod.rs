//! A real reader's clock: how long each exchange would take on a USB CCID reader with a contact
//! card, from the card's ATR (ISO/IEC 7816-3 link speed and framing) and a table of card
//! processing times per generation. Opt-in pacing for the emulator ([`Paced`]) and the figures
//! the benchmarks report as "modelled seconds on a real reader".
//!
//! The time of one exchange is `transmission + processing + usb_round_trip`:
//! - **transmission**: characters on the contact link × character time, etu = Fi / (Di · f) at
//!   f = [`READER_CLOCK_HZ`] (`wire`: T=0 header, procedure bytes and SW; T=1 blocks, chaining and
//!   acknowledgements; guard times);
//! - **processing**: [`CardTimings::processing`], by command and outcome;
//! - **USB round trip**: [`USB_ROUND_TRIP`] per APDU exchange.
//!
//! Every figure and its source or reasoning is in docs/reader-timing.md.
//!
//! ```
//! use std::time::Duration;
//! use cpx_emulator::timing::ReaderClock;
//!
//! // CPS3: no TA1, so Fi 372, Di 1 at 4 MHz: one etu is 93 µs, a character 12 etu.
//! let clock = ReaderClock::for_atr(&cpx_emulator::facts::ATR_CPS3)?;
//! assert_eq!(clock.etu(), Duration::from_micros(93));
//! // READ BINARY of 223 bytes: header 5 characters; ACK + 223 data + SW = 226 characters;
//! // one turnaround (4 etu): 2776 etu = 258.168 ms on the wire.
//! let mut response = vec![0u8; 223];
//! response.extend([0x90, 0x00]);
//! let read = [0x00, 0xB0, 0x00, 0x00, 0xDF];
//! assert_eq!(clock.transmission(&read, &response), Duration::from_micros(258_168));
//! // + 2 ms of card processing + 1 ms USB round trip.
//! assert_eq!(clock.exchange(&read, &response), Duration::from_micros(261_168));
//! # Ok::<(), cpx_emulator::timing::AtrError>(())
//! ```

mod atr;
mod card;
mod paced;
mod wire;

use std::time::Duration;

pub use atr::{AtrError, AtrParameters, DEFAULT_IFSC};
pub use card::CardTimings;
pub use paced::Paced;
pub use wire::IFSD;

use crate::link::Protocol;
use crate::state::EmulatedCard;
use cpx_vpcd::VirtualCard as _;

/// How an emulated card answers: at once (the default), or no sooner than a real reader would
/// ([`Paced`]). `cpx emulate --timing real` and `cpx_testkit::SandboxConfig::timing` take it.
///
/// ```
/// use cpx_emulator::timing::Timing;
///
/// assert_eq!("real".parse::<Timing>(), Ok(Timing::Real));
/// assert_eq!(Timing::default(), Timing::Instant);
/// assert_eq!(Timing::Real.to_string(), "real");
/// assert!("slow".parse::<Timing>().is_err());
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Timing {
    /// Answer as soon as the emulator has computed the response.
    #[default]
    Instant,
    /// Hold each answer back until its modelled real-reader time ([`ReaderClock::exchange`])
    /// has passed.
    Real,
}

impl Timing {
    /// `card`, paced when `self` is [`Timing::Real`]; unchanged otherwise. An ATR the clock
    /// cannot read leaves the card unpaced (and is logged): the emulator's own ATRs all parse.
    pub fn apply(self, card: Box<dyn EmulatedCard>) -> Box<dyn EmulatedCard> {
        match self {
            Timing::Instant => card,
            Timing::Real => match ReaderClock::for_atr(&card.atr()) {
                Ok(clock) => Box::new(Paced::with_clock(card, clock)),
                Err(e) => {
                    log::warn!("card left unpaced: {e}");
                    card
                }
            },
        }
    }
}

impl std::fmt::Display for Timing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Timing::Instant => "instant",
            Timing::Real => "real",
        })
    }
}

/// A [`Timing`] name that is neither `instant` nor `real`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown timing {0:?}: expected \"instant\" or \"real\"")]
pub struct UnknownTiming(pub String);

impl std::str::FromStr for Timing {
    type Err = UnknownTiming;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "instant" => Ok(Timing::Instant),
            "real" => Ok(Timing::Real),
            other => Err(UnknownTiming(other.to_owned())),
        }
    }
}

/// The clock a CCID reader gives the card: 4 MHz, the `dwDefaultClock` most CCID readers
/// declare and within every CPx ATR's fmax (5 MHz for TA1 = 18, 4 MHz without TA1).
pub const READER_CLOCK_HZ: u32 = 4_000_000;

/// One USB round trip per APDU exchange (a CCID bulk-out command and its bulk-in answer on a
/// full-speed reader): an assumption, docs/reader-timing.md.
pub const USB_ROUND_TRIP: Duration = Duration::from_millis(1);

/// The modelled time of exchanges on a real reader with one card.
///
/// ```
/// use std::time::Duration;
/// use cpx_emulator::{Protocol, timing::ReaderClock};
///
/// // CPS4: TA1 = 18 (Fi 372, Di 12), T=1 (pcsc-lite's pick when offered): etu = 7.75 µs.
/// let clock = ReaderClock::for_atr(&cpx_emulator::facts::ATR_CPS4)?;
/// assert_eq!(clock.protocol(), Protocol::T1);
/// assert_eq!(clock.etu(), Duration::from_nanos(7_750));
/// # Ok::<(), cpx_emulator::timing::AtrError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReaderClock {
    atr: AtrParameters,
    protocol: Protocol,
    clock_hz: u32,
    usb_round_trip: Duration,
    card: CardTimings,
}

impl ReaderClock {
    /// The clock for the card with this ATR: its TA1 speed, T=1 when offered (pcsc-lite's
    /// choice, docs/card-spec.md §10.1) else T=0, [`READER_CLOCK_HZ`], [`USB_ROUND_TRIP`], and the
    /// generation's [`CardTimings::for_atr`].
    pub fn for_atr(atr: &[u8]) -> Result<Self, AtrError> {
        let params = AtrParameters::parse(atr)?;
        Ok(ReaderClock {
            atr: params,
            protocol: if params.t1 { Protocol::T1 } else { Protocol::T0 },
            clock_hz: READER_CLOCK_HZ,
            usb_round_trip: USB_ROUND_TRIP,
            card: CardTimings::for_atr(atr),
        })
    }

    /// The same clock with other card processing times.
    pub fn with_card_timings(mut self, card: CardTimings) -> Self {
        self.card = card;
        self
    }

    /// The same clock with another USB round trip per exchange.
    pub fn with_usb_round_trip(mut self, round_trip: Duration) -> Self {
        self.usb_round_trip = round_trip;
        self
    }

    /// The same clock on another protocol (e.g. T=0 for a T=0/T=1 card a reader runs in T=0).
    pub fn with_protocol(mut self, protocol: Protocol) -> Self {
        self.protocol = protocol;
        self
    }

    /// The protocol the exchanges are timed on.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// What the ATR says about the link.
    pub fn parameters(&self) -> &AtrParameters {
        &self.atr
    }

    /// The card processing times in use.
    pub fn card_timings(&self) -> &CardTimings {
        &self.card
    }

    /// One elementary time unit: Fi / (Di · f) (ISO 7816-3 §7.1).
    pub fn etu(&self) -> Duration {
        self.etus(1)
    }

    fn etus(&self, etu: u64) -> Duration {
        // Nanoseconds, exact for the CPx ATRs: 372e9 / 4e6 = 93 000, / 12 = 7 750.
        let nanos = u128::from(etu) * u128::from(self.atr.fi) * 1_000_000_000
            / (u128::from(self.atr.di.max(1)) * u128::from(self.clock_hz.max(1)));
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// Time on the contact link for `command` and its `response` (data + SW1 SW2), both ways.
    pub fn transmission(&self, command: &[u8], response: &[u8]) -> Duration {
        self.etus(wire::exchange_etu(&self.atr, self.protocol, command, response))
    }

    /// Time the card computes before answering (see [`CardTimings::processing`]).
    pub fn processing(&self, command: &[u8], response: &[u8]) -> Duration {
        self.card.processing(command, response)
    }

    /// The whole exchange as the application sees it: transmission + processing + one USB
    /// round trip.
    pub fn exchange(&self, command: &[u8], response: &[u8]) -> Duration {
        self.transmission(command, response) + self.processing(command, response) + self.usb_round_trip
    }

    /// Totals over a sequence of exchanges (e.g. a recorded session).
    ///
    /// ```
    /// use cpx_emulator::timing::ReaderClock;
    ///
    /// let clock = ReaderClock::for_atr(&cpx_emulator::facts::ATR_CPS3)?;
    /// let exchanges = [(vec![0x00, 0x20, 0x00, 0x01], vec![0x63, 0xC3])];
    /// let figures = clock.session(exchanges.iter().map(|(c, r)| (c.as_slice(), r.as_slice())));
    /// assert_eq!((figures.apdus, figures.bytes), (1, 6));
    /// assert_eq!(figures.total(), figures.transmission + figures.processing + figures.usb);
    /// # Ok::<(), cpx_emulator::timing::AtrError>(())
    /// ```
    pub fn session<'a>(&self, exchanges: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) -> SessionFigures {
        let mut figures = SessionFigures::default();
        for (command, response) in exchanges {
            figures.apdus += 1;
            figures.bytes += command.len() + response.len();
            figures.transmission += self.transmission(command, response);
            figures.processing += self.processing(command, response);
            figures.usb += self.usb_round_trip;
        }
        figures
    }
}

/// What a sequence of exchanges costs on a modelled real reader.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionFigures {
    /// Command APDUs (each with its response; GET RESPONSE counts as one).
    pub apdus: usize,
    /// APDU bytes, commands and responses (SW included), without link framing.
    pub bytes: usize,
    /// Time on the contact link.
    pub transmission: Duration,
    /// Card processing time.
    pub processing: Duration,
    /// USB round trips.
    pub usb: Duration,
}

impl SessionFigures {
    /// Modelled time of the whole sequence.
    pub fn total(&self) -> Duration {
        self.transmission + self.processing + self.usb
    }
}

#[cfg(test)]
mod tests;
