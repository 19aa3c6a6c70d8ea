//! Opening a card: identify it (ATR, EF.SN.ICC), then learn its application and TokenInfo,
//! from the card or from files known from before ([`Pkcs15Files`]).

use cpx_transport::CardChannel;

use crate::atr::{Interface, identify_atr};
use crate::card::Card;
use crate::data::{self, EfActua};
use crate::error::CardError;
use crate::generation::Generation;
use crate::io::Io;
use crate::seed::{self, Pkcs15Files};
use crate::session;
use crate::state::State;

/// A card whose identity is known (ATR and serial) and nothing else yet: the first step of
/// [`Card::identify`]`(…)?.`[`open`](Identified::open), for a caller that looks up what it knows
/// of the card by serial (and, on a CPS3 contact card, by EF_ACTUA, docs/card-spec.md §5.7) before the
/// PKCS#15 files are read.
///
/// ```no_run
/// # fn cached(serial: &str) -> Option<cpx_card::Pkcs15Files> { None }
/// use cpx_card::Card;
/// use cpx_transport::Pcsc;
///
/// let pcsc = Pcsc::establish()?;
/// let mut id = Card::identify(Box::new(pcsc.connect("Virtual PCD 00 00")?))?;
/// let _update_marker = id.ef_actua()?; // CPS3 contact only; nothing sent elsewhere
/// let files = cached(id.serial());
/// let card = id.open(files.as_ref())?; // TokenInfo not read when the files hold it
/// println!("{} {}", card.serial(), card.token_label());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Identified {
    channel: Box<dyn CardChannel>,
    generation: Generation,
    interface: Interface,
    serial: String,
}

impl std::fmt::Debug for Identified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identified")
            .field("reader", &self.channel.reader())
            .field("generation", &self.generation)
            .field("interface", &self.interface)
            .field("serial", &self.serial)
            .finish()
    }
}

impl Card {
    /// Identify the card (ATR, then EF.SN.ICC with the issuer check) and read TokenInfo (and
    /// EF.DIR where the application path comes from it): [`Card::identify`] then
    /// [`Identified::open`] without files.
    ///
    /// # Errors
    /// [`CardError::NotCpxCard`] for an unknown ATR, [`CardError::WrongIssuer`], transport
    /// errors, malformed data.
    pub fn open(channel: Box<dyn CardChannel>) -> Result<Card, CardError> {
        Card::identify(channel)?.open(None)
    }

    /// [`Card::open`] with the PKCS#15 files of an earlier session ([`Card::pkcs15_files`]):
    /// used only if the card's serial (read from the card), generation and interface are the
    /// files'; whatever the files hold is not read again. Files that do not parse, or that an
    /// operation finds inconsistent with the card, are dropped and read from the card: never
    /// an error because of them.
    ///
    /// ```no_run
    /// # fn f(first: Box<dyn cpx_transport::CardChannel>, again: Box<dyn cpx_transport::CardChannel>) -> Result<(), cpx_card::CardError> {
    /// use cpx_card::{Card, PinKind};
    /// let mut card = Card::open(first)?; // EF.SN.ICC, TokenInfo
    /// card.pin_statuses(&[PinKind::User, PinKind::Puk])?; // + ODF, AODF, then the counters
    /// let files = card.pkcs15_files().clone();
    /// drop(card);
    /// let mut card = Card::open_with(again, &files)?; // EF.SN.ICC only
    /// card.pin_statuses(&[PinKind::User, PinKind::Puk])?; // the counters only
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`Card::open`].
    pub fn open_with(channel: Box<dyn CardChannel>, files: &Pkcs15Files) -> Result<Card, CardError> {
        Card::identify(channel)?.open(Some(files))
    }

    /// The first step of opening: the ATR, the ChipDoc AID on a CPS4 (docs/card-spec.md §1.3), EF.SN.ICC
    /// with the issuer check; nothing else is read. See [`Identified`].
    ///
    /// # Errors
    /// [`CardError::NotCpxCard`] for an unknown ATR, [`CardError::WrongIssuer`], transport
    /// errors, malformed EF.SN.ICC.
    pub fn identify(mut channel: Box<dyn CardChannel>) -> Result<Identified, CardError> {
        let (generation, interface) = identify_atr(channel.atr())?;
        channel.set_policy(generation.capabilities().exchange);
        let serial = {
            let mut tx = channel.transaction()?;
            let mut io = Io::new(&mut *tx, generation);
            if generation.capabilities().select_aid_at_open {
                // docs/card-spec.md §1.3: ChipDoc on channel 1, no MANAGE CHANNEL.
                io.select_cps_aid()?;
            }
            session::read_serial(&mut io)?
        };
        Ok(Identified {
            channel,
            generation,
            interface,
            serial,
        })
    }
}

impl Identified {
    /// The card generation: what it can do is in [`Generation::capabilities`].
    pub fn generation(&self) -> Generation {
        self.generation
    }

    /// Contact or contactless.
    pub fn interface(&self) -> Interface {
        self.interface
    }

    /// The serial number (docs/card-spec.md §1.3), read from the card.
    pub fn serial(&self) -> &str {
        &self.serial
    }

    /// The reader name.
    pub fn reader(&self) -> &str {
        self.channel.reader()
    }

    /// EF_ACTUA (CPS3 contact, [`crate::Capabilities::ef_actua`]; `None` when absent and
    /// elsewhere, with nothing sent, docs/card-spec.md §5.7),
    /// as [`Card::ef_actua`].
    ///
    /// # Errors
    /// Transport errors, a malformed EF_ACTUA.
    pub fn ef_actua(&mut self) -> Result<Option<EfActua>, CardError> {
        let (generation, interface) = (self.generation, self.interface);
        self.run(|io| data::ef_actua(io, generation, interface))
    }

    /// Open the card: its application path and TokenInfo from `files` when they are this
    /// card's (serial, generation, interface) and parse, else read from the card (EF.DIR where
    /// the path comes from it, then TokenInfo, docs/card-spec.md §1.4). The other files of `files` (ODF,
    /// xDFs) are taken too and not read when needed. Files that do not parse are all dropped
    /// (logged), never an error.
    ///
    /// # Errors
    /// Transport errors; a card whose EF.DIR or TokenInfo is missing or malformed.
    pub fn open(self, files: Option<&Pkcs15Files>) -> Result<Card, CardError> {
        let mut card = self.open_lazy(files)?;
        card.read_token_info()?;
        Ok(card)
    }

    /// Open the card as [`Identified::open`] does, without reading anything: the files of
    /// `files` are taken when they are this card's, and what they lack is read from the card
    /// when an operation needs it — EF.DIR (where the application path comes from it) at the
    /// first operation in the application, TokenInfo when [`Card::read_token_info`] asks for it
    /// (a PKCS#11 token needs it for C_GetTokenInfo only, docs/card-spec.md §1.4).
    ///
    /// ```no_run
    /// # fn f(channel: Box<dyn cpx_transport::CardChannel>) -> Result<(), cpx_card::CardError> {
    /// let mut card = cpx_card::Card::identify(channel)?.open_lazy(None)?; // EF.SN.ICC only
    /// let keys = card.private_keys()?; // ODF + PrKDF (and EF.DIR on a CPS4)
    /// assert!(!card.token_info_known());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// None today besides those of [`Card::identify`], which came before; the `Result` leaves
    /// room for checks at open.
    pub fn open_lazy(self, files: Option<&Pkcs15Files>) -> Result<Card, CardError> {
        let mut st = State::new(self.generation, self.interface, self.serial.clone());
        if let Some(files) = files {
            if !files.is_for(self.generation, self.interface, &self.serial) {
                log::debug!(target: "cpx::card", "{}: PKCS#15 files of card {} ({:?} {:?}) not used for card {}", self.channel.reader(), files.serial, files.generation, files.interface, self.serial);
            } else {
                match seed::parse(files) {
                    Ok(parsed) => st.install(parsed),
                    Err(e) => {
                        log::info!(target: "cpx::card", "{}: PKCS#15 files given at open not used: {e}", self.channel.reader());
                    }
                }
            }
        }
        log::debug!(target: "cpx::card", "{}: {:?} {:?} serial {}{}", self.channel.reader(), st.generation, st.interface, st.serial, if st.seeded { " (PKCS#15 files given)" } else { "" });
        Ok(Card {
            channel: self.channel,
            st,
        })
    }

    /// One transaction. A reset by another program since [`Card::identify`] is recovered once:
    /// application selected again and the serial checked (another card is never taken for
    /// this one).
    fn run<T>(&mut self, mut f: impl FnMut(&mut Io<'_>) -> Result<T, CardError>) -> Result<T, CardError> {
        let first = match self.channel.transaction() {
            Ok(mut tx) => f(&mut Io::new(&mut *tx, self.generation)),
            Err(e) => Err(e.into()),
        };
        match first {
            Err(e) if e.is_reset() => {
                let mut tx = self.channel.transaction()?;
                let mut io = Io::new(&mut *tx, self.generation);
                session::reattach(&mut io, &self.serial)?;
                f(&mut io)
            }
            other => other,
        }
    }
}

/// The files of a card opened with them.
impl Card {
    /// The raw PKCS#15 files known so far (EF.DIR, TokenInfo, ODF and the xDFs, as read from
    /// the card or given at open and still trusted), to give back to [`Card::open_with`] in a
    /// later session with the same card (a disk cache). All of them are files the card gives
    /// without a PIN (docs/card-spec.md §1.4).
    ///
    /// ```no_run
    /// # fn f(channel: Box<dyn cpx_transport::CardChannel>, again: Box<dyn cpx_transport::CardChannel>) -> Result<(), cpx_card::CardError> {
    /// use cpx_card::{Card, KeyRole};
    /// let mut card = Card::open(channel)?;
    /// card.private_keys()?; // reads the ODF and the PrKDF
    /// let files = card.pkcs15_files().clone();
    /// drop(card);
    /// // Later, the same card: neither TokenInfo nor the ODF nor the PrKDF is read again.
    /// let mut card = Card::open_with(again, &files)?;
    /// assert!(card.seeded());
    /// card.private_keys()?;
    /// # Ok(()) }
    /// ```
    pub fn pkcs15_files(&self) -> &Pkcs15Files {
        self.st.files()
    }

    /// Whether files given at open ([`Card::open_with`], [`Identified::open`]) are in use:
    /// `false` when none were given, when they were for another card or did not parse, and
    /// after an operation found them inconsistent with the card (they are then read from the
    /// card again, or after [`Card::forget_files`]).
    pub fn seeded(&self) -> bool {
        self.st.seeded
    }

    /// Stop using the files given at open (a caller that finds them inconsistent with what it
    /// knows of the card): they are read from the card from now on, TokenInfo (and EF.DIR
    /// where needed) at once. Nothing is sent when no file is in use.
    ///
    /// ```no_run
    /// # fn f(channel: Box<dyn cpx_transport::CardChannel>, files: &cpx_card::Pkcs15Files) -> Result<(), cpx_card::CardError> {
    /// let mut card = cpx_card::Card::open_with(channel, files)?;
    /// if card.seeded() && card.token_label() != "CPS3v3-9900000001" {
    ///     card.forget_files()?; // the label now comes from the card
    ///     assert!(!card.seeded());
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// Transport errors; a card whose EF.DIR or TokenInfo is missing or malformed.
    pub fn forget_files(&mut self) -> Result<(), CardError> {
        if !self.st.seeded {
            return Ok(());
        }
        self.st.drop_seeds();
        self.run(true, |io, st| st.ensure_token_info(io))
    }
}
