//! The one API over both generations.

use cpx_transport::CardChannel;
use zeroize::Zeroizing;

use crate::atr::{Interface, identify_atr};
use crate::crypto::{KeyRole, Mechanism, ToSign};
use crate::data::{self, DataObject, EfActua};
use crate::error::CardError;
use crate::generation::Generation;
use crate::hash::{HashAlg, MessageHash};
use crate::io::Io;
use crate::pin::{Pin, PinEntry, PinKind, PinPolicy, PinStatus};
use crate::pinops;
use crate::pinpad::{self, PadReader, PinPad, PinPadSetting};
use crate::pkcs15::cdf::CertificateInfo;
use crate::session;
use crate::state::{self, State};

/// A certificate as the card lists it (its CDF entry: label, iD, authority) and its DER, read
/// from the card or empty while not read ([`Certificate::listed`]). It names the certificate;
/// the card layer finds the file from the label and iD ([`Card::read_listed_certificate`]), so
/// an entry kept elsewhere (the PKCS#11 module's disk cache) is the same value as the one the
/// card lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    /// CDF label, e.g. "Certificat de Signature CPS".
    pub label: String,
    /// CKA_ID (the private key's iD).
    pub id: Vec<u8>,
    /// CA certificate.
    pub authority: bool,
    /// X.509 DER.
    pub der: Vec<u8>,
}

impl Certificate {
    /// The listing entry of a CDF entry, not read yet (empty DER).
    pub fn listed(info: &CertificateInfo) -> Certificate {
        Certificate {
            label: info.common.label.clone(),
            id: info.id.clone(),
            authority: info.authority,
            der: Vec::new(),
        }
    }
}

/// A private key as the PrKDF lists it (docs/card-spec.md §1.5), without reading anything else:
/// the listing entry, what anyone may know of the key (the key itself never leaves the card).
/// It names the key; the card layer finds what it sends for it (the key reference of MSE,
/// docs/card-spec.md §1.5) from its [`KeyRole`], so an entry kept elsewhere (the PKCS#11
/// module's disk cache) is the same value as the one the card lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivateKeyInfo {
    /// The PrKDF label, e.g. "CPS_PRIV_SIG" (docs/card-spec.md §5.3).
    pub label: String,
    /// iD (CKA_ID), shared with the key's certificate.
    pub id: Vec<u8>,
    /// What the card layer uses it for: nonRepudiation = [`KeyRole::Signature`], otherwise
    /// sign/decrypt = [`KeyRole::Authentication`].
    pub role: KeyRole,
    /// modulusLength in bits.
    pub modulus_bits: u32,
    /// The `private` object flag: using the key needs the PIN (false for the contactless
    /// technical key, docs/card-spec.md §5.3).
    pub private: bool,
}

/// An open CPS3 or CPS4.
///
/// Every operation runs in one PC/SC transaction. A reset (another program, or the same card
/// reinserted) is recovered: the application is re-selected and the serial checked; if a PIN had
/// been verified the call fails with [`CardError::PinStateLost`], otherwise it is done again once.
/// VERIFY, CHANGE and unblock are never resent. Another card in the reader gives
/// [`CardError::DifferentCard`] from then on.
pub struct Card {
    pub(crate) channel: Box<dyn CardChannel>,
    pub(crate) st: State,
}

impl std::fmt::Debug for Card {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Card")
            .field("reader", &self.channel.reader())
            .field("generation", &self.st.generation)
            .field("interface", &self.st.interface)
            .field("serial", &self.st.serial)
            .finish()
    }
}

impl Card {
    /// The card generation: what it can do is in [`Generation::capabilities`].
    pub fn generation(&self) -> Generation {
        self.st.generation
    }

    /// Contact or contactless.
    pub fn interface(&self) -> Interface {
        self.st.interface
    }

    /// The serial number as the official module shows it (docs/card-spec.md §1.3), e.g. "99213845".
    pub fn serial(&self) -> &str {
        &self.st.serial
    }

    /// "IAS ECC" or "ChipDoc" (docs/card-spec.md §5.2): [`crate::Capabilities::model`].
    pub fn model(&self) -> &'static str {
        self.st.generation.model()
    }

    /// TokenInfo label, or "(unknown)" (docs/card-spec.md §1.4 point 5). On a card opened with
    /// [`Identified::open_lazy`](crate::Identified::open_lazy), call [`Card::read_token_info`]
    /// first: TokenInfo is not read before.
    pub fn token_label(&self) -> &str {
        let label = self.st.token.as_ref().and_then(|t| t.label.as_deref());
        label.unwrap_or("(unknown)")
    }

    /// TokenInfo manufacturerID, or "(unknown)".
    pub fn manufacturer(&self) -> &str {
        let manufacturer = self.st.token.as_ref().and_then(|t| t.manufacturer.as_deref());
        manufacturer.unwrap_or("(unknown)")
    }

    /// Whether TokenInfo is known (read, or given at open): [`Card::token_label`] and
    /// [`Card::manufacturer`] then come from it.
    pub fn token_info_known(&self) -> bool {
        self.st.token.is_some()
    }

    /// Read TokenInfo (and EF.DIR first where the application path comes from it, docs/card-spec.md §1.4)
    /// unless it is known already: nothing is sent then. A card opened with
    /// [`Identified::open_lazy`](crate::Identified::open_lazy) reads it here, when its label or
    /// manufacturer is first needed.
    ///
    /// ```no_run
    /// # fn f(id: cpx_card::Identified) -> Result<(), cpx_card::CardError> {
    /// let mut card = id.open_lazy(None)?; // nothing read after EF.SN.ICC
    /// card.read_token_info()?; // SELECT + READ BINARY of TokenInfo
    /// println!("{}", card.token_label());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// Transport errors; a missing or malformed EF.DIR or TokenInfo.
    pub fn read_token_info(&mut self) -> Result<(), CardError> {
        if self.st.token.is_some() {
            return Ok(());
        }
        self.run(true, |io, st| st.ensure_token_info(io))
    }

    /// Whether this session verified the PIN (and no reset has happened since).
    pub fn pin_verified(&self) -> bool {
        self.st.pin_verified
    }

    /// The reader name.
    pub fn reader(&self) -> &str {
        self.channel.reader()
    }

    /// One transaction running `f`. When `f` fails in a way a stale seed can cause (a refused
    /// SELECT, a missing object or reference, malformed data) while seeded files are in use
    /// and before any PIN command was sent, the seeds are dropped and `f` runs once more, in
    /// the same transaction, on files read from the card ([`crate::seed`]).
    fn attempt<T>(
        &mut self,
        f: &mut impl FnMut(&mut Io<'_>, &mut State) -> Result<T, CardError>,
    ) -> Result<T, CardError> {
        let reader = self.channel.reader().to_owned();
        let mut tx = self.channel.transaction()?;
        let mut io = Io::new(&mut *tx, self.st.generation);
        let first = f(&mut io, &mut self.st);
        let suspect = match &first {
            Ok(_) => false,
            Err(e) => {
                io.select_refused
                    || matches!(
                        e,
                        CardError::ObjectNotFound(_) | CardError::MalformedCardData { .. }
                    )
                    // 6A88: a key or PIN reference the card does not have.
                    || matches!(e, CardError::Status { sw, .. } if sw.to_u16() == 0x6A88)
            }
        };
        if !suspect || !self.st.seeded || io.pin_sent {
            return first;
        }
        if let Err(e) = &first {
            log::info!(target: "cpx::card", "{reader}: {e} with PKCS#15 files given at open: reading them from the card");
        }
        // TokenInfo, when it was known, is read again at once: its label stays available.
        let had_token_info = self.st.token.is_some();
        self.st.drop_seeds();
        io.select_refused = false;
        self.st.ensure_app(&mut io)?;
        if had_token_info {
            self.st.ensure_token_info(&mut io)?;
        }
        f(&mut io, &mut self.st)
    }

    /// Re-select and check the serial after a reset or reinsertion.
    fn reattach(&mut self) -> Result<(), CardError> {
        self.st.pin_verified = false;
        self.st.puk_verified = false;
        let (generation, _) = identify_atr(self.channel.atr())?;
        let result = if generation == self.st.generation {
            // A plain transaction: the serial check has nothing to do with seeds.
            match self.channel.transaction() {
                Ok(mut tx) => session::reattach(&mut Io::new(&mut *tx, generation), &self.st.serial),
                Err(e) => Err(e.into()),
            }
        } else {
            Err(CardError::DifferentCard {
                expected: self.st.serial.clone(),
                found: format!("a {generation:?} card"),
            })
        };
        if let Err(CardError::DifferentCard { found, .. }) = &result {
            self.st.replaced_by = Some(found.clone());
        }
        result
    }

    pub(crate) fn run<T>(
        &mut self,
        retry: bool,
        mut f: impl FnMut(&mut Io<'_>, &mut State) -> Result<T, CardError>,
    ) -> Result<T, CardError> {
        if let Some(found) = &self.st.replaced_by {
            return Err(CardError::DifferentCard {
                expected: self.st.serial.clone(),
                found: found.clone(),
            });
        }
        // After seeds were dropped and the card could not be read then.
        let mut f = |io: &mut Io<'_>, st: &mut State| {
            if !st.app_known() {
                st.ensure_app(io)?;
            }
            f(io, st)
        };
        let first = self.attempt(&mut f);
        if let Err(CardError::SecurityStatusNotSatisfied { .. }) = &first {
            // `6982`: what needed a verified code found none (docs/card-spec.md §3.3).
            self.forget_pin_verification();
        }
        let lost = match &first {
            Err(e) if e.is_reset() => true,
            Err(CardError::CardRemoved { .. }) => {
                // The card may be back (or another one): reconnect and check.
                if self.channel.reconnect(false).is_err() {
                    return first;
                }
                true
            }
            _ => false,
        };
        if !lost {
            return first;
        }
        let was_verified = self.st.pin_verified || self.st.puk_verified;
        self.reattach()?;
        if was_verified || !retry {
            return Err(CardError::PinStateLost);
        }
        self.attempt(&mut f)
    }

    /// Reconnect after [`CardError::CardRemoved`] and check that the card is the same one.
    ///
    /// # Errors
    /// [`CardError::DifferentCard`] when another card is in the reader; transport errors.
    pub fn reconnect(&mut self) -> Result<(), CardError> {
        self.channel.reconnect(false)?;
        self.reattach()
    }

    /// Status of the PIN or PUK (one SELECT MF + one GET DATA on CPS3, docs/card-spec.md §3.2; one empty
    /// VERIFY on CPS4, docs/card-spec.md §10.6).
    pub fn pin_status(&mut self, kind: PinKind) -> Result<PinStatus, CardError> {
        let mut all = self.pin_statuses(&[kind])?;
        all.pop()
            .ok_or_else(|| CardError::ObjectNotFound(kind.to_string()))
    }

    /// Status of several codes in one transaction (one SELECT MF for all on CPS3).
    pub fn pin_statuses(&mut self, kinds: &[PinKind]) -> Result<Vec<PinStatus>, CardError> {
        let statuses = self.run(true, |io, st| st.generation.driver().pin_status(io, st, kinds))?;
        // A CPS4 says whether the PIN is verified (docs/card-spec.md §10.6): not any more means our login
        // is gone (another program logged the card out).
        let pin_not_verified = kinds
            .iter()
            .zip(&statuses)
            .any(|(k, s)| *k == PinKind::User && s.verified == Some(false));
        if pin_not_verified {
            self.forget_pin_verification();
        }
        Ok(statuses)
    }

    /// VERIFY the PIN. The format is checked against the AODF before anything is sent; a failure
    /// is reported with the tries left and never retried.
    pub fn verify_pin(&mut self, pin: &Pin) -> Result<(), CardError> {
        self.verify(PinKind::User, pin)
    }

    /// The reader's PIN pad: `Some` when the reader has `FEATURE_VERIFY_PIN_DIRECT` (PC/SC v2
    /// part 10, docs/reader-features.md) and pad use is not turned off for it
    /// ([`PinPadSetting`], from `CPX_PINPAD` / `CPX_PINPAD_IGNORE` unless
    /// [`Card::set_pin_pad_setting`] gave another). The reader is asked once per card (its
    /// features, then its properties: digit limits, display), inside a transaction: control
    /// commands to the reader, no APDU of its own (the application is selected first if this
    /// card was opened lazily and has not been used yet). A reader that describes its keypad wrongly has no pad here.
    ///
    /// ```no_run
    /// # fn f(card: &mut cpx_card::Card) -> Result<(), cpx_card::CardError> {
    /// use cpx_card::{PinEntry, PinKind};
    /// match card.pin_pad()? {
    ///     Some(pad) => {
    ///         println!("type your PIN on the reader");
    ///         if let Some((lines, chars)) = pad.display {
    ///             println!("(its display: {lines}×{chars})");
    ///         }
    ///         card.verify_entry(PinKind::User, &PinEntry::PinPad)?;
    ///     }
    ///     None => card.verify_entry(PinKind::User, &cpx_card::Pin::new("1234").into())?,
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// Only what the caller must act on anyway: the card removed or reset, pcscd lost.
    pub fn pin_pad(&mut self) -> Result<Option<PinPad>, CardError> {
        Ok(self.pad_reader()?.map(|r| r.pad))
    }

    /// Whether pads may be used for this card, instead of [`PinPadSetting::from_env`] (read at
    /// the first [`Card::pin_pad`] or PIN-pad operation otherwise).
    ///
    /// ```no_run
    /// # fn f(card: &mut cpx_card::Card) -> Result<(), cpx_card::CardError> {
    /// card.set_pin_pad_setting(cpx_card::PinPadSetting::off());
    /// assert!(card.pin_pad()?.is_none());
    /// # Ok(()) }
    /// ```
    pub fn set_pin_pad_setting(&mut self, setting: PinPadSetting) {
        self.st.pad_setting = Some(setting);
    }

    fn pad_reader(&mut self) -> Result<Option<PadReader>, CardError> {
        let setting = self.st.pad_setting.get_or_insert_with(PinPadSetting::from_env);
        if !setting.allows(self.channel.reader()) {
            return Ok(None);
        }
        if let Some(known) = self.st.pad {
            return Ok(known);
        }
        let found = self.run(true, |io, _| pinpad::discover(io))?;
        self.st.pad = Some(found);
        Ok(found)
    }

    /// The pad for `operation`, or [`CardError::PinPadUnsupported`] (nothing sent).
    fn need_pad(&mut self, operation: &'static str) -> Result<PadReader, CardError> {
        if let Some(pad) = self.pad_reader()? {
            return Ok(pad);
        }
        let allowed = self
            .st
            .pad_setting
            .as_ref()
            .is_none_or(|s| s.allows(self.channel.reader()));
        Err(CardError::PinPadUnsupported {
            operation,
            reader: self.channel.reader().to_owned(),
            reason: if allowed {
                "the reader has no PIN pad (no FEATURE_VERIFY_PIN_DIRECT)".into()
            } else {
                "PIN pad use is turned off for this reader (CPX_PINPAD, CPX_PINPAD_IGNORE)".into()
            },
        })
    }

    /// VERIFY the PIN or the PUK, typed on the host or entered on the reader's PIN pad
    /// ([`PinEntry`]); [`Card::verify`] for a code typed on the host.
    ///
    /// On the pad, the reader collects the digits and sends the VERIFY itself (PC/SC part 10
    /// `FEATURE_VERIFY_PIN_DIRECT`), built as the host VERIFY of the same digits (the block from
    /// the card's PIN policy, `crate::pinpad`); the reader enforces the policy's lengths. The
    /// reader's own answers are precise errors that spend no try:
    /// [`CardError::PinPadCancelled`], [`CardError::PinPadTimeout`],
    /// [`CardError::PinPadLength`]. A reader without a usable pad is
    /// [`CardError::PinPadUnsupported`], nothing sent. Never retried.
    ///
    /// ```no_run
    /// # fn f(card: &mut cpx_card::Card) -> Result<(), cpx_card::CardError> {
    /// use cpx_card::{CardError, Pin, PinEntry, PinKind};
    /// match card.verify_entry(PinKind::User, &PinEntry::PinPad) {
    ///     Err(CardError::PinPadUnsupported { .. }) => card.verify_entry(PinKind::User, &Pin::new("1234").into())?,
    ///     Err(CardError::PinPadCancelled { .. }) => println!("cancelled on the reader"),
    ///     other => other?,
    /// }
    /// # Ok(()) }
    /// ```
    pub fn verify_entry(&mut self, kind: PinKind, entry: &PinEntry) -> Result<(), CardError> {
        match entry {
            PinEntry::Host(pin) => self.verify(kind, pin),
            PinEntry::PinPad => {
                let pad = self.need_pad("verify")?;
                self.verify_with(kind, Entered::Pad(&pad))
            }
        }
    }

    /// [`Card::change_pin`] with both codes typed on the host, or both on the PIN pad: the
    /// reader asks the current PIN, the new PIN and its confirmation (`FEATURE_MODIFY_PIN_DIRECT`;
    /// on a card whose change is VERIFY then a set, `FEATURE_VERIFY_PIN_DIRECT` for the current
    /// PIN first). A mixed pair (one code on the host, the other on the pad) is
    /// [`CardError::InvalidInput`], nothing sent: a change is done on one side. Besides the
    /// errors of [`Card::verify_entry`], [`CardError::PinPadMismatch`] when the confirmation
    /// differs (no try spent).
    ///
    /// ```no_run
    /// # fn f(card: &mut cpx_card::Card) -> Result<(), cpx_card::CardError> {
    /// use cpx_card::PinEntry;
    /// card.change_pin_entry(&PinEntry::PinPad, &PinEntry::PinPad)?;
    /// # Ok(()) }
    /// ```
    pub fn change_pin_entry(&mut self, old: &PinEntry, new: &PinEntry) -> Result<(), CardError> {
        match (old, new) {
            (PinEntry::Host(old), PinEntry::Host(new)) => self.change_pin(old, new),
            (PinEntry::PinPad, PinEntry::PinPad) => {
                let pad = self.need_pad("change PIN")?;
                let r = self.run(false, |io, st| st.generation.driver().change_pad(io, st, &pad));
                if r.is_err() {
                    self.st.pin_verified = false;
                }
                r
            }
            _ => Err(mixed("change PIN")),
        }
    }

    /// [`Card::unblock_pin`] with both codes typed on the host, or both on the PIN pad: the
    /// reader asks the PUK (VERIFY), then the new PIN and its confirmation (RESET RETRY COUNTER
    /// or the set that follows it, as the card's generation needs). A mixed pair is
    /// [`CardError::InvalidInput`], nothing sent. Errors as [`Card::change_pin_entry`].
    pub fn unblock_pin_entry(&mut self, puk: &PinEntry, new: &PinEntry) -> Result<(), CardError> {
        match (puk, new) {
            (PinEntry::Host(puk), PinEntry::Host(new)) => self.unblock_pin(puk, new),
            (PinEntry::PinPad, PinEntry::PinPad) => {
                let pad = self.need_pad("unblock PIN")?;
                self.st.pin_verified = false;
                let r = self.run(false, |io, st| st.generation.driver().unblock_pad(io, st, &pad));
                // The PUK may be left verified on the card: [`Card::logout`] resets it too.
                if !matches!(
                    r,
                    Err(CardError::PinFormat { .. }
                        | CardError::PinStateLost
                        | CardError::PinPadUnsupported { .. })
                ) {
                    self.st.puk_verified = true;
                }
                r
            }
            _ => Err(mixed("unblock PIN")),
        }
    }

    /// [`Card::unblock_pin_after_puk`] with the new PIN typed on the host or entered (and
    /// confirmed) on the PIN pad (PKCS#11 C_Login(CKU_SO) then C_InitPIN with no PIN).
    pub fn unblock_pin_after_puk_entry(&mut self, new: &PinEntry) -> Result<(), CardError> {
        match new {
            PinEntry::Host(new) => self.unblock_pin_after_puk(new),
            PinEntry::PinPad => {
                let pad = self.need_pad("unblock PIN")?;
                self.st.pin_verified = false;
                self.run(false, |io, st| {
                    st.generation.driver().unblock_verified_pad(io, st, &pad)
                })
            }
        }
    }

    /// VERIFY the PIN or the PUK typed on the host ([`Card::verify_entry`] also takes the PIN
    /// pad).
    ///
    /// For the PIN, the card is first asked whether it has the PIN verified already (VERIFY
    /// without data, which spends no try): the card's verified state is shared by every program
    /// using it, and a login found there belongs to another program, which
    /// [`Card::release_login`] (and dropping the card) then leaves in place.
    pub fn verify(&mut self, kind: PinKind, pin: &Pin) -> Result<(), CardError> {
        self.verify_with(kind, Entered::Host(pin))
    }

    fn verify_with(&mut self, kind: PinKind, entered: Entered<'_>) -> Result<(), CardError> {
        let mut found = false;
        let r = self.run(false, |io, st| {
            if kind == PinKind::User {
                // A malformed PIN (or one the pad cannot take) is refused before anything is
                // sent, the question included.
                match entered {
                    Entered::Host(pin) => drop(st.policy(io, kind)?.0.format(kind, pin)?),
                    Entered::Pad(pad) => drop(pinops::pad_format(io, st, kind, pad, false, "verify")?),
                }
                found = pinops::verified_now(io, st, kind)? == Some(true);
            }
            match entered {
                Entered::Host(pin) => st.generation.driver().verify(io, st, kind, pin),
                Entered::Pad(pad) => st.generation.driver().verify_pad(io, st, kind, pad),
            }
        });
        match kind {
            PinKind::User => {
                self.st.pin_verified = r.is_ok();
                self.st.pin_found_verified = r.is_ok() && found;
            }
            // Only a success says anything: after a refused VERIFY (malformed, refused before
            // any APDU; or wrong, where the sources do not say the card forgets an earlier
            // verification) a PUK verified before may still be verified on the card, and
            // [`Card::logout`] must still reset it (found by the pin_model fuzz target).
            PinKind::Puk => self.st.puk_verified |= r.is_ok(),
        }
        r
    }

    /// Whether the card has the PIN verified now, whoever verified it (VERIFY without data: no
    /// try spent; one APDU, after the PIN object's selection when the AODF gives a path). When
    /// the card says it is not, this card's own login is known gone too (another program logged
    /// the card out, or reset it): [`Card::pin_verified`] turns false. `None` when the card
    /// gives no answer to that question, and on the contactless interface (no PIN, docs/card-spec.md §7).
    ///
    /// ```no_run
    /// # fn f(card: &mut cpx_card::Card) -> Result<(), cpx_card::CardError> {
    /// if card.pin_verified() && card.pin_verified_on_card()? == Some(false) {
    ///     // logged out by another program: ask the user for the PIN again
    /// }
    /// # Ok(()) }
    /// ```
    pub fn pin_verified_on_card(&mut self) -> Result<Option<bool>, CardError> {
        if self.st.interface == Interface::Contactless {
            return Ok(None);
        }
        let now = self.run(true, |io, st| pinops::verified_now(io, st, PinKind::User))?;
        if now == Some(false) {
            self.forget_pin_verification();
        }
        Ok(now)
    }

    /// The card is known not to have the PIN verified any more (it answered `6982` to an
    /// operation that needs it): this card's login is gone, and nothing is to be logged out.
    fn forget_pin_verification(&mut self) {
        if self.st.pin_verified {
            log::info!(target: "cpx::card", "{}: the card no longer has the PIN verified (another program logged it out or reset it)", self.channel.reader());
        }
        self.st.pin_verified = false;
        self.st.pin_found_verified = false;
    }

    /// Change the PIN (CPS3 `24 00` old ‖ new; CPS4 VERIFY old + `24 01` new, docs/card-spec.md §10.7).
    pub fn change_pin(&mut self, old: &Pin, new: &Pin) -> Result<(), CardError> {
        let r = self.run(false, |io, st| st.generation.driver().change(io, st, old, new));
        if r.is_err() {
            self.st.pin_verified = false;
        }
        r
    }

    /// Unblock the PIN with the PUK and set a new PIN (docs/card-spec.md §3.2, §9, §10.8). The PIN is not
    /// verified afterwards.
    pub fn unblock_pin(&mut self, puk: &Pin, new: &Pin) -> Result<(), CardError> {
        self.st.pin_verified = false;
        let r = self.run(false, |io, st| st.generation.driver().unblock(io, st, puk, new));
        // The PUK may be left verified on the card: [`Card::logout`] resets it too.
        if !matches!(r, Err(CardError::PinFormat { .. } | CardError::PinStateLost)) {
            self.st.puk_verified = true;
        }
        r
    }

    /// Sign with a key (docs/card-spec.md §4.2–§4.4). Returns the signature (modulus length).
    pub fn sign(&mut self, key: KeyRole, mechanism: Mechanism, data: &[u8]) -> Result<Vec<u8>, CardError> {
        match mechanism {
            Mechanism::Pkcs1(alg) | Mechanism::Pss(alg) => {
                let mut message = self.message_hash(key, alg);
                message.update(data);
                self.sign_message(key, mechanism, &message)
            }
            Mechanism::RsaPkcs => self.sign_input(key, ToSign::RsaPkcs(data)),
            Mechanism::PssHash => self.sign_input(key, ToSign::PssHash(data)),
        }
    }

    /// A [`MessageHash`] to sign with `key` on this card, fed part by part (multi-part C_Sign):
    /// the CPS3 signature key ends the hash on the card (docs/card-spec.md §4.2), so for it only the SHA
    /// state and the last block are kept; every other key signs a digest the host computes. No APDU.
    ///
    /// ```no_run
    /// # fn f(card: &mut cpx_card::Card) -> Result<(), cpx_card::CardError> {
    /// use cpx_card::{HashAlg, KeyRole, Mechanism};
    /// let mut message = card.message_hash(KeyRole::Authentication, HashAlg::Sha256);
    /// message.update(b"a long document, ");
    /// message.update(b"read in parts");
    /// let mechanism = Mechanism::Pkcs1(HashAlg::Sha256);
    /// let signature = card.sign_message(KeyRole::Authentication, mechanism, &message)?;
    /// # Ok(()) }
    /// ```
    pub fn message_hash(&self, key: KeyRole, alg: HashAlg) -> MessageHash {
        // docs/card-spec.md §4.2; the contactless interface has no signature key (docs/card-spec.md §7).
        if self.st.generation.capabilities().signature_hash_on_card
            && self.st.interface == Interface::Contact
            && key == KeyRole::Signature
        {
            MessageHash::card(alg)
        } else {
            MessageHash::host(alg)
        }
    }

    /// Sign a message hashed by a [`MessageHash`] from [`Card::message_hash`] (same key) with
    /// [`Mechanism::Pkcs1`] or [`Mechanism::Pss`] of its algorithm: the same APDUs as
    /// [`Card::sign`] of the whole message. Another mechanism, or a hash made for another key or
    /// card, is [`CardError::InvalidInput`].
    ///
    /// ```no_run
    /// # fn f(card: &mut cpx_card::Card, file: &mut impl std::io::Read) -> Result<(), Box<dyn std::error::Error>> {
    /// use cpx_card::{HashAlg, KeyRole, Mechanism};
    /// // A file of any size, signed with the signature key without holding it in memory.
    /// let mut message = card.message_hash(KeyRole::Signature, HashAlg::Sha256);
    /// let mut buf = [0u8; 65536];
    /// loop {
    ///     let n = file.read(&mut buf)?;
    ///     if n == 0 {
    ///         break;
    ///     }
    ///     message.update(&buf[..n]);
    /// }
    /// let signature = card.sign_message(KeyRole::Signature, Mechanism::Pkcs1(HashAlg::Sha256), &message)?;
    /// # Ok(()) }
    /// ```
    pub fn sign_message(
        &mut self,
        key: KeyRole,
        mechanism: Mechanism,
        message: &MessageHash,
    ) -> Result<Vec<u8>, CardError> {
        let pss = match mechanism {
            Mechanism::Pkcs1(alg) if alg == message.alg() => false,
            Mechanism::Pss(alg) if alg == message.alg() => true,
            _ => {
                return Err(CardError::InvalidInput {
                    operation: "sign a message",
                    reason: format!("{mechanism:?} does not hash with {:?}", message.alg()),
                });
            }
        };
        self.sign_input(key, ToSign::Message { pss, message })
    }

    fn sign_input(&mut self, key: KeyRole, input: ToSign<'_>) -> Result<Vec<u8>, CardError> {
        self.run(true, |io, st| {
            let signature = st.generation.driver().sign(io, st, key, input)?;
            // An RSA signature is exactly as long as the modulus: anything else is not one,
            // whatever the card's status word said.
            let expected = st.key(io, key)?.modulus_len;
            if signature.len() != expected {
                return Err(CardError::malformed(
                    "signature",
                    format!(
                        "{} bytes from the card, the modulus is {expected}",
                        signature.len()
                    ),
                ));
            }
            Ok(signature)
        })
    }

    /// Decrypt a PKCS#1 v1.5 cryptogram with the authentication key (docs/card-spec.md §4.3, §4.4). The
    /// plaintext is wiped on drop.
    pub fn decrypt(&mut self, key: KeyRole, cryptogram: &[u8]) -> Result<Zeroizing<Vec<u8>>, CardError> {
        self.run(true, |io, st| {
            st.generation.driver().decrypt(io, st, key, cryptogram)
        })
    }

    /// All certificates of the CDF, read (ODF and CDF on first use).
    pub fn certificates(&mut self) -> Result<Vec<Certificate>, CardError> {
        self.run(true, |io, st| {
            let infos = st.cdf(io)?;
            infos
                .into_iter()
                .map(|c| {
                    let der = io.read_der(&c.path.absolute(&st.app_path), &c.common.label)?;
                    Ok(Certificate {
                        label: c.common.label,
                        id: c.id,
                        authority: c.authority,
                        der,
                    })
                })
                .collect()
        })
    }

    /// The certificate of a key (matched by iD through the PrKDF).
    pub fn certificate(&mut self, key: KeyRole) -> Result<Certificate, CardError> {
        self.run(true, |io, st| {
            let id = st.key_id(io, key)?;
            let c = st
                .cdf(io)?
                .into_iter()
                .find(|c| c.id == id)
                .ok_or_else(|| CardError::ObjectNotFound(format!("certificate of the {key:?} key")))?;
            let der = io.read_der(&c.path.absolute(&st.app_path), &c.common.label)?;
            Ok(Certificate {
                label: c.common.label,
                id: c.id,
                authority: c.authority,
                der,
            })
        })
    }

    /// The business data objects (DODF, plus the CPS2ter objects of a CPS3, docs/card-spec.md §2.4).
    pub fn data_objects(&mut self) -> Result<Vec<DataObject>, CardError> {
        self.run(true, |io, st| {
            Ok(data::list(io, st)?.into_iter().map(|d| d.object).collect())
        })
    }

    /// The raw value of the data object `label`. Private objects need the PIN
    /// ([`CardError::SecurityStatusNotSatisfied`] otherwise).
    pub fn read_data_object(&mut self, label: &str) -> Result<Vec<u8>, CardError> {
        self.run(true, |io, st| {
            let object = find_data_object(io, st, label)?;
            data::read(io, &object)
        })
    }

    /// The absolute paths (3F00 first) of the files holding the data objects, by label, in one
    /// transaction: a file of the application, or of the CPS3's CPS2ter volet (docs/card-spec.md
    /// §2.4), for tools that record the card's layout (`cpx report`). Reads the DODF if not read
    /// yet; nothing else is sent.
    ///
    /// ```no_run
    /// # fn f(card: &mut cpx_card::Card) -> Result<(), cpx_card::CardError> {
    /// for (label, path) in card.data_object_paths()? {
    ///     assert_eq!(&path[..2], &[0x3F, 0x00], "{label}");
    /// }
    /// # Ok(()) }
    /// ```
    pub fn data_object_paths(&mut self) -> Result<Vec<(String, Vec<u8>)>, CardError> {
        self.run(true, |io, st| {
            Ok(data::list(io, st)?
                .into_iter()
                .map(|d| (d.object.label, d.location.path().to_vec()))
                .collect())
        })
    }

    /// EF_ACTUA (CPS3 contact; `None` when absent and on CPS4, docs/card-spec.md §5.7).
    pub fn ef_actua(&mut self) -> Result<Option<EfActua>, CardError> {
        self.run(true, |io, st| data::ef_actua(io, st.generation, st.interface))
    }

    /// Whether this session verified the PUK (C_Login(CKU_SO)) and no reset or
    /// [`Card::logout`] has happened since.
    pub fn puk_verified(&self) -> bool {
        self.st.puk_verified
    }

    /// The private keys of the PrKDF (docs/card-spec.md §1.5): labels, iDs, roles, modulus sizes and
    /// private flags. Reads the ODF and PrKDF on first use, nothing else.
    /// Keys with neither sign, decrypt nor nonRepudiation usage are left out.
    ///
    /// ```no_run
    /// # fn f(card: &mut cpx_card::Card) -> Result<(), cpx_card::CardError> {
    /// for key in card.private_keys()? {
    ///     println!("{} {:?} {} bits", key.label, key.role, key.modulus_bits);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn private_keys(&mut self) -> Result<Vec<PrivateKeyInfo>, CardError> {
        self.run(true, |io, st| {
            let keys = st.prkdf(io)?;
            Ok(keys
                .iter()
                .filter_map(|k| {
                    let role = state::role_of(k)?;
                    Some(PrivateKeyInfo {
                        label: k.common.label.clone(),
                        id: k.id.clone(),
                        role,
                        modulus_bits: k.modulus_bits,
                        private: k.common.private,
                    })
                })
                .collect())
        })
    }

    /// The CDF entries (label, iD, authority flag, path) without the certificates themselves
    /// (docs/card-spec.md §5.3); read one with [`Card::read_certificate`] when its value is needed.
    ///
    /// ```no_run
    /// # fn f(card: &mut cpx_card::Card) -> Result<(), cpx_card::CardError> {
    /// let infos = card.certificate_infos()?;
    /// if let Some(info) = infos.iter().find(|c| c.common.label.contains("Signature")) {
    ///     let cert = card.read_certificate(info)?;
    ///     println!("{} bytes of DER", cert.der.len());
    /// }
    /// # Ok(()) }
    /// ```
    pub fn certificate_infos(&mut self) -> Result<Vec<CertificateInfo>, CardError> {
        self.run(true, |io, st| st.cdf(io))
    }

    /// Read the certificate of one CDF entry (from [`Card::certificate_infos`]). The path is
    /// the one the CDF now in use gives for the entry's iD and label (the entry's own if there
    /// is none): an entry from files given at open that the card refuses is read again from
    /// the card's own CDF.
    pub fn read_certificate(&mut self, info: &CertificateInfo) -> Result<Certificate, CardError> {
        self.run(true, |io, st| {
            let current = st
                .cdf(io)?
                .into_iter()
                .find(|c| c.id == info.id && c.common.label == info.common.label);
            let path = current.map_or_else(|| info.path.clone(), |c| c.path);
            let der = io.read_der(&path.absolute(&st.app_path), &info.common.label)?;
            Ok(Certificate {
                label: info.common.label.clone(),
                id: info.id.clone(),
                authority: info.authority,
                der,
            })
        })
    }

    /// Read the certificate a listing entry names ([`Certificate::listed`], or one kept
    /// elsewhere): the CDF entry of its label and iD gives the path (reading the ODF and CDF on
    /// first use). `None` when the card's CDF lists no such certificate.
    ///
    /// # Errors
    /// As [`Card::read_certificate`]: transport errors, a file the card does not have
    /// ([`CardError::ObjectNotFound`]), malformed data.
    pub fn read_listed_certificate(&mut self, cert: &Certificate) -> Result<Option<Certificate>, CardError> {
        self.run(true, |io, st| {
            let Some(info) = st
                .cdf(io)?
                .into_iter()
                .find(|c| c.id == cert.id && c.common.label == cert.label)
            else {
                return Ok(None);
            };
            let der = io.read_der(&info.path.absolute(&st.app_path), &info.common.label)?;
            Ok(Some(Certificate {
                label: info.common.label,
                id: info.id,
                authority: info.authority,
                der,
            }))
        })
    }

    /// The policy of the PIN or PUK: the AODF entry's (min/max/stored length, padding, reference),
    /// or the defaults 4 / 8 digits when the AODF has none (docs/card-spec.md §3.1). Reads the AODF on first
    /// use. [`CardError::NoSuchPin`] on the contactless interface (docs/card-spec.md §7).
    ///
    /// ```no_run
    /// # fn f(card: &mut cpx_card::Card) -> Result<(), cpx_card::CardError> {
    /// let policy = card.pin_policy(cpx_card::PinKind::User)?;
    /// println!("PIN of {} to {} digits", policy.min_len, policy.max_len);
    /// # Ok(()) }
    /// ```
    pub fn pin_policy(&mut self, kind: PinKind) -> Result<PinPolicy, CardError> {
        self.run(true, |io, st| st.policy(io, kind).map(|(p, _)| p))
    }

    /// Drop the card's verified state of the PIN (and of the PUK when this session verified it):
    /// afterwards private operations get `6982` ([`CardError::SecurityStatusNotSatisfied`]).
    ///
    /// Sends `<CLA> 20 FF <ref>` (VERIFY with P1 `FF` and no data, ISO/IEC 7816-4:2013 §11.5.6
    /// "reset the verification status"; CLA and reference as for VERIFY, docs/card-spec.md §3.2). A card that
    /// refuses that form is reset instead (`SCARD_RESET_CARD`, which clears every security state
    /// of the card; the application is then re-selected and the serial checked, as after any
    /// reset). Nothing is sent on the contactless interface, which has no PIN (docs/card-spec.md §7).
    ///
    /// ```no_run
    /// # fn f(card: &mut cpx_card::Card) -> Result<(), cpx_card::CardError> {
    /// card.verify_pin(&cpx_card::Pin::new("1234"))?;
    /// // … sign …
    /// card.logout()?;
    /// assert!(!card.pin_verified());
    /// # Ok(()) }
    /// ```
    pub fn logout(&mut self) -> Result<(), CardError> {
        self.logout_codes(true)
    }

    /// VERIFY P1=FF of the PIN (when `pin`) and of the PUK when we verified it; a card reset when
    /// the card refuses that form.
    fn logout_codes(&mut self, pin: bool) -> Result<(), CardError> {
        self.st.pin_found_verified = false;
        if self.st.interface == Interface::Contactless {
            self.st.pin_verified = false;
            return Ok(());
        }
        let mut kinds = Vec::new();
        if pin {
            kinds.push(PinKind::User);
        }
        if self.st.puk_verified {
            kinds.push(PinKind::Puk);
        }
        if kinds.is_empty() {
            return Ok(());
        }
        let done = match self.run(false, |io, st| pinops::reset_verified(io, st, &kinds)) {
            Ok(done) => done,
            // The card was reset meanwhile (and re-attached): nothing is verified any more.
            Err(CardError::PinStateLost) => true,
            Err(e) => return Err(e),
        };
        if !done {
            log::info!(target: "cpx::card", "{}: VERIFY P1=FF refused; resetting the card to log out", self.channel.reader());
            self.channel.reconnect(true)?;
            self.reattach()?;
        }
        self.st.pin_verified = false;
        self.st.puk_verified = false;
        Ok(())
    }

    /// Undo this card's own login, and only that: the PIN if we verified it and the card did not
    /// already have it verified by another program when we did ([`Card::verify`]); after we
    /// verified the PUK, both codes. A PIN found verified is left verified (the other program's
    /// login goes on); nothing is sent when there is nothing of ours to undo. [`Card::logout`]
    /// logs the card out whoever verified it.
    ///
    /// ```no_run
    /// # fn f(card: &mut cpx_card::Card) -> Result<(), cpx_card::CardError> {
    /// card.verify_pin(&cpx_card::Pin::new("1234"))?;
    /// // … sign …
    /// card.release_login()?; // the card is as we found it
    /// assert!(!card.pin_verified());
    /// # Ok(()) }
    /// ```
    pub fn release_login(&mut self) -> Result<(), CardError> {
        let ours = self.st.pin_verified && !self.st.pin_found_verified;
        if ours || self.st.puk_verified {
            // After a PUK session (an unblock) the PIN is reset too, whoever verified it: a
            // code set with the PUK must not be left usable.
            return self.logout_codes(true);
        }
        self.st.pin_verified = false;
        self.st.pin_found_verified = false;
        Ok(())
    }

    /// Unblock the PIN and set `new` when the PUK was already verified ([`Card::verify`] with
    /// [`PinKind::Puk`], i.e. C_Login(CKU_SO) then C_InitPIN): CPS3 `00 2C 02 <ref> Lc <new>`
    /// (docs/card-spec.md §3.2, §9); CPS4 `01 2C 03 <ref|80>` then `01 24 01 <ref> Lc <new>`
    /// (docs/card-spec.md §3.2, §10.8). The PUK is not sent again. Without a verified PUK the card answers
    /// `6982` ([`CardError::SecurityStatusNotSatisfied`]). The new PIN is checked against the AODF
    /// before anything is sent ([`CardError::PinFormat`]).
    ///
    /// ```no_run
    /// # fn f(card: &mut cpx_card::Card) -> Result<(), cpx_card::CardError> {
    /// use cpx_card::{Pin, PinKind};
    /// card.verify(PinKind::Puk, &Pin::new("12345678"))?;
    /// card.unblock_pin_after_puk(&Pin::new("1234"))?;
    /// card.logout()?; // the PUK stays verified on the card until then
    /// # Ok(()) }
    /// ```
    pub fn unblock_pin_after_puk(&mut self, new: &Pin) -> Result<(), CardError> {
        self.st.pin_verified = false;
        self.run(false, |io, st| {
            st.generation.driver().unblock_verified(io, st, new)
        })
    }

    /// GET CHALLENGE `<CLA> 84 00 00 08`: 8 random bytes from the card (docs/card-spec.md §4.5).
    ///
    /// ```no_run
    /// # fn f(card: &mut cpx_card::Card) -> Result<(), cpx_card::CardError> {
    /// let challenge: [u8; 8] = card.get_challenge()?;
    /// # Ok(()) }
    /// ```
    pub fn get_challenge(&mut self) -> Result<[u8; 8], CardError> {
        self.run(true, |io, st| challenge(io, st))
    }

    /// `len` random bytes from the card ([`Card::fill_random`] into a new buffer). A length that
    /// cannot be allocated is [`CardError::InvalidInput`], nothing sent; nothing is sent for 0.
    ///
    /// ```no_run
    /// # fn f(card: &mut cpx_card::Card) -> Result<(), cpx_card::CardError> {
    /// let bytes = card.random_bytes(20)?; // three GET CHALLENGE
    /// assert_eq!(bytes.len(), 20);
    /// # Ok(()) }
    /// ```
    pub fn random_bytes(&mut self, len: usize) -> Result<Vec<u8>, CardError> {
        let mut out = Vec::new();
        out.try_reserve_exact(len).map_err(|_| CardError::InvalidInput {
            operation: "random bytes",
            reason: format!("{len} bytes cannot be allocated"),
        })?;
        out.resize(len, 0);
        self.fill_random(&mut out)?;
        Ok(out)
    }

    /// Fill `out` with random bytes from the card: GET CHALLENGE, 8 bytes each (docs/card-spec.md §4.5, the
    /// official C_GenerateRandom), written into `out` as they come. At most
    /// [`CHALLENGES_PER_TRANSACTION`] GET CHALLENGE per PC/SC transaction, the card released
    /// between batches, where the transport's turn-taking lets other programs in (a program
    /// waiting for the card gets it between two batches; one that does not take turns, after at
    /// most a second: `cpx_transport`'s turns). Nothing is sent for an
    /// empty `out`. On an error `out` holds random bytes up to some point and zeros or earlier
    /// content after it.
    ///
    /// ```no_run
    /// # fn f(card: &mut cpx_card::Card) -> Result<(), cpx_card::CardError> {
    /// let mut key = [0u8; 32];
    /// card.fill_random(&mut key)?; // four GET CHALLENGE, one transaction
    /// # Ok(()) }
    /// ```
    pub fn fill_random(&mut self, out: &mut [u8]) -> Result<(), CardError> {
        for batch in out.chunks_mut(8 * CHALLENGES_PER_TRANSACTION) {
            self.run(true, |io, st| {
                for part in batch.chunks_mut(8) {
                    let bytes = challenge(io, st)?;
                    part.copy_from_slice(&bytes[..part.len()]);
                }
                Ok(())
            })?;
        }
        Ok(())
    }

    /// The size of a data object's value from the file's FCP/FCI (CPS2ter FCI `85` on a CPS3),
    /// without reading the value (docs/card-spec.md §5.3 "a size query takes the FCI size"). It is the length
    /// [`Card::read_data_object`] returns.
    ///
    /// ```no_run
    /// # fn f(card: &mut cpx_card::Card) -> Result<(), cpx_card::CardError> {
    /// let size = card.data_object_size("CPS_DATA")?;
    /// # Ok(()) }
    /// ```
    pub fn data_object_size(&mut self, label: &str) -> Result<usize, CardError> {
        self.run(true, |io, st| {
            let object = find_data_object(io, st, label)?;
            data::size(io, &object)
        })
    }

    /// Whether writing a data object needs the PIN: its DODF entry names an authentication
    /// object (CommonObjectAttributes authId, ISO 7816-15), as the modifiable CPS_DATA does. The
    /// CPS2ter objects (never writable) answer `true`.
    pub fn data_object_write_needs_pin(&mut self, label: &str) -> Result<bool, CardError> {
        self.run(true, |io, st| {
            if let Some(d) = st.dodf(io)?.iter().find(|d| d.common.label == label) {
                return Ok(d.common.auth_id.is_some());
            }
            find_data_object(io, st, label).map(|_| true)
        })
    }

    /// Write a data object (C_SetAttributeValue(CKA_VALUE) on CPS_DATA, docs/card-spec.md §5.4): SELECT with
    /// FCP/FCI, then UPDATE BINARY of `value` zero-padded to the file size, in parts of at most
    /// 255 bytes (docs/card-spec.md §2.3). A value larger than the file gives [`CardError::InvalidInput`]
    /// with no UPDATE BINARY sent; the card's access rules decide the rest (`6982` without the PIN:
    /// [`CardError::SecurityStatusNotSatisfied`]). The PKCS#15 `modifiable` flag is not checked
    /// here (the CPS4 DODF leaves it off on a writable CPS_DATA, docs/card-spec.md §6.1): that is the
    /// caller's policy. CPS2ter objects are read-only ([`CardError::Unsupported`]).
    ///
    /// ```no_run
    /// # fn f(card: &mut cpx_card::Card) -> Result<(), cpx_card::CardError> {
    /// card.verify_pin(&cpx_card::Pin::new("1234"))?;
    /// card.write_data_object("CPS_DATA", b"new value")?;
    /// let back = card.read_data_object("CPS_DATA")?; // zero-padded to the file size
    /// assert!(back.starts_with(b"new value"));
    /// # Ok(()) }
    /// ```
    pub fn write_data_object(&mut self, label: &str, value: &[u8]) -> Result<(), CardError> {
        self.run(true, |io, st| {
            let object = find_data_object(io, st, label)?;
            data::write(io, &object, value).map(drop)
        })
    }
}

/// Letting go of a card undoes our own login ([`Card::release_login`]): the card's security state
/// is shared by every program using it, and a login we made must not outlive us (another program
/// could sign without the PIN), while a login another program made before ours is that
/// program's. The PC/SC connection itself then leaves the card as it is.
impl Drop for Card {
    fn drop(&mut self) {
        if let Err(e) = self.release_login() {
            log::debug!(target: "cpx::card", "{}: logout on close failed: {e}", self.channel.reader());
        }
    }
}

/// GET CHALLENGE per PC/SC transaction in [`Card::fill_random`]: one transaction then holds the
/// card for 4 short exchanges (5 + 8 + 2 bytes on the wire each): 0.5 ms (median) through
/// pcscd + vpcd on the CI machine kind, and an estimated 8–20 ms through a USB CCID reader at
/// 2–5 ms per short APDU (not measured on real hardware); 32 random bytes per transaction
/// covers the usual requests (a nonce, a key) in one.
///
/// ```
/// // A 32-byte key takes one transaction.
/// assert_eq!(8 * cpx_card::CHALLENGES_PER_TRANSACTION, 32);
/// ```
pub const CHALLENGES_PER_TRANSACTION: usize = 4;

/// How a code reaches the card in [`Card::verify_with`].
#[derive(Clone, Copy)]
enum Entered<'a> {
    Host(&'a Pin),
    Pad(&'a PadReader),
}

/// The refusal of a host/pad pair: a change or an unblock is done on one side.
fn mixed(operation: &'static str) -> CardError {
    CardError::InvalidInput {
        operation,
        reason: "both codes must be typed on the host, or both on the PIN pad".into(),
    }
}

/// A data object by label (DODF plus the CPS2ter objects of a CPS3, docs/card-spec.md §2.4).
fn find_data_object(io: &mut Io<'_>, st: &mut State, label: &str) -> Result<data::Located, CardError> {
    data::list(io, st)?
        .into_iter()
        .find(|o| o.object.label == label)
        .ok_or_else(|| CardError::ObjectNotFound(label.to_owned()))
}

/// One GET CHALLENGE (docs/card-spec.md §4.5).
fn challenge(io: &mut Io<'_>, st: &State) -> Result<[u8; 8], CardError> {
    let cla = st.generation.capabilities().cla;
    let data = io.ok(&crate::commands::get_challenge(cla)?, "GET CHALLENGE")?;
    <[u8; 8]>::try_from(data.as_slice())
        .map_err(|_| CardError::malformed("GET CHALLENGE", format!("{} bytes, not 8", data.len())))
}
