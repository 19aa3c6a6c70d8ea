//! Tokens: an opened CPS3/CPS4, its C_GetTokenInfo, and the PIN-counter flags; the
//! blank-padded text fields of the CK_*_INFO structures ([`pad`]).
//!
//! The official module queries both counters (PIN and PUK, up to six APDUs) on every
//! C_GetTokenInfo (docs/card-spec.md §3.2, §8.4). Here the counters are cached: refreshed when older than
//! [`PIN_STATUS_TTL`], and marked stale after every PIN operation (C_Login, C_SetPIN,
//! C_InitPIN), whose own result updates the cache at once. A PIN blocked by another program is
//! thus shown at most [`PIN_STATUS_TTL`] late.

use std::time::{Duration, Instant};

use cpx_card::{Card, CardError, Interface, Pin, PinEntry, PinKind, PinStatus};
use cryptoki_sys::*;

use crate::cache::TokenCache;
use crate::error::{Error, Result};
use crate::objects::Object;

pub mod build;
pub mod objects;

/// How long cached PIN counters are trusted.
pub const PIN_STATUS_TTL: Duration = Duration::from_secs(10);

/// Cached PIN and PUK counters.
#[derive(Debug, Default, Clone)]
pub struct PinCache {
    /// The user PIN's status.
    pub user: Option<PinStatus>,
    /// The PUK's status.
    pub puk: Option<PinStatus>,
    /// When they were read; `None` = stale.
    pub read_at: Option<Instant>,
    /// The most tries ever seen left for the PIN and the PUK on this token (see
    /// [`with_maximum`]).
    pub most_left: [Option<u8>; 2],
}

/// `s` with its maximum number of tries filled in when the card does not give it. A CPS4
/// answers its counter query with `63Cx` alone, and no public source documents a ChipDoc PIN
/// policy or SDO that would give the maximum (docs/pkcs11-module.md, "PIN-counter flags"); the
/// official module then assumes 3, right for the PIN but not for a PUK with more tries (10 on
/// the emulated card, as a CPS3's): one wrong PUK (9 left) would never show
/// CKF_SO_PIN_COUNT_LOW. The maximum is taken as the most tries this token has shown left for
/// that code, and at least 3.
pub fn with_maximum(most_left: &mut Option<u8>, mut s: PinStatus) -> PinStatus {
    if s.max_tries.is_none() {
        if let Some(left) = s.tries_left {
            *most_left = Some(most_left.map_or(left, |m| m.max(left)));
        }
        s.max_tries = Some(most_left.unwrap_or(3).max(3));
    }
    s
}

/// An opened card.
pub struct Token {
    /// The card layer.
    pub card: Card,
    /// Objects, built at first need (certificates read then).
    pub objects: Option<Vec<Object>>,
    /// PIN counters.
    pub pins: PinCache,
    /// The certificates and public keys are in [`Token::objects`] (the private keys may be
    /// built before, from the PrKDF alone).
    pub certs_listed: bool,
    /// The data objects are in [`Token::objects`] (they come after the certificates and keys,
    /// built first).
    pub data_listed: bool,
    /// ulMinPinLen / ulMaxPinLen from the AODF, once read.
    pub pin_lengths: Option<(CK_ULONG, CK_ULONG)>,
    /// The disk cache of this card's public objects; `None` when disabled or not usable.
    pub cache: Option<TokenCache>,
}

impl Token {
    /// Wrap an opened card and its disk cache ([`crate::cache`]), whose freshness was checked
    /// between the card's identification and its opening ([`TokenCache::open`]: EF_ACTUA on a
    /// CPS3 contact card, docs/card-spec.md §5.7), and whose files the card was opened with
    /// ([`TokenCache::seed`]).
    pub fn new(mut card: Card, cache: Option<TokenCache>) -> Token {
        let cache = cache.map(|mut c| {
            if !c.bind(&card) && card.seeded() {
                // The file's TokenInfo is not the one its key was made with: not a file we
                // wrote. Nothing of it is used; the card's own files are read.
                log::info!(
                    "disk cache for {}: files inconsistent with their key, ignored",
                    card.serial()
                );
                if let Err(e) = card.forget_files() {
                    log::debug!("TokenInfo: {e}");
                }
                c.bind(&card);
            }
            c
        });
        let pin_lengths = cache
            .as_ref()
            .and_then(|c| c.entry.pin_lengths)
            .map(|(min, max)| (CK_ULONG::from(min), CK_ULONG::from(max)));
        Token {
            card,
            objects: None,
            pins: PinCache::default(),
            certs_listed: false,
            data_listed: false,
            pin_lengths,
            cache,
        }
    }

    /// Write the disk cache if it changed, with the PKCS#15 files the card layer read so far.
    /// A failure is logged and turns the cache off for this token (never an error for the
    /// caller).
    pub fn persist_cache(&mut self) {
        if let Some(c) = &mut self.cache {
            c.take_files(self.card.pkcs15_files());
        }
        if let Some(c) = &mut self.cache
            && let Err(e) = c.persist()
        {
            log::debug!("disk cache not written ({}): {e}", c.store.dir().display());
            self.cache = None;
        }
    }

    /// After a card operation: when the card layer read PKCS#15 files the written entry lacks
    /// (a file not cached yet, or files it found inconsistent and read again), write them, so
    /// that the next process does not read them either — whatever the operation, a key lookup
    /// alone included (the entry keeps whatever was read, issue 15). Also writes what the call
    /// added to the entry (a certificate read, the object list).
    pub fn note_files(&mut self) {
        let Some(c) = &mut self.cache else { return };
        let files = self.card.pkcs15_files();
        if !files.is_empty() && c.take_files(files) {
            log::debug!("disk cache: new PKCS#15 files read from the card");
        }
        if c.is_dirty() {
            self.persist_cache();
        }
    }

    /// Whether the token has a user PIN (none on CPS3 contactless, docs/card-spec.md §7).
    pub fn has_pin(&self) -> bool {
        self.card.interface() == Interface::Contact
    }

    /// Whether the token has a protected authentication path (CKF_PROTECTED_AUTHENTICATION_PATH):
    /// a user PIN, and a reader whose PIN pad cpx uses (`cpx_card::Card::pin_pad`: the reader
    /// has FEATURE_VERIFY_PIN_DIRECT and `CPX_PINPAD` / `CPX_PINPAD_IGNORE` do not turn it off;
    /// asked once per card, no APDU).
    pub fn protected_path(&mut self) -> Result<bool> {
        Ok(self.has_pin() && self.card.pin_pad()?.is_some())
    }

    /// How a PIN argument of C_Login, C_InitPIN or C_SetPIN reaches the card: a PIN given is
    /// typed on the host (on any token: clients that always prompt keep working); no PIN
    /// (NULL, or an empty one) on a token with a protected authentication path is entered on the
    /// reader's PIN pad; a NULL PIN elsewhere is CKR_ARGUMENTS_BAD (an empty one goes to the
    /// card layer's policy check: CKR_PIN_INCORRECT, nothing sent).
    pub fn entry(&mut self, pin: Option<&[u8]>) -> Result<PinEntry> {
        match pin {
            Some(p) if !p.is_empty() => Ok(PinEntry::Host(Pin::from_bytes(p))),
            _ if self.protected_path()? => Ok(PinEntry::PinPad),
            Some(p) => Ok(PinEntry::Host(Pin::from_bytes(p))),
            None => Err(Error::Ck(CKR_ARGUMENTS_BAD)),
        }
    }

    /// Mark the counters stale (after a PIN operation).
    pub fn pins_changed(&mut self) {
        self.pins.read_at = None;
    }

    fn refresh_pins(&mut self) {
        if !self.has_pin() {
            return;
        }
        if self.pins.read_at.is_some_and(|t| t.elapsed() < PIN_STATUS_TTL) {
            return;
        }
        match self.card.pin_statuses(&[PinKind::User, PinKind::Puk]) {
            Ok(s) => {
                let [user_most, puk_most] = &mut self.pins.most_left;
                self.pins.user = s.first().map(|p| with_maximum(user_most, *p));
                self.pins.puk = s.get(1).map(|p| with_maximum(puk_most, *p));
                self.pins.read_at = Some(Instant::now());
            }
            Err(e) => log::debug!("PIN counters: {e}"),
        }
    }

    /// The user PIN's min/max length from the AODF (docs/card-spec.md §3.1), read once; the defaults 4 / 8
    /// when there is no PIN (contactless) or the AODF cannot be read.
    fn pin_lengths(&mut self) -> (CK_ULONG, CK_ULONG) {
        if let Some(l) = self.pin_lengths {
            return l;
        }
        const DEFAULT: (CK_ULONG, CK_ULONG) = (4, 8);
        if !self.has_pin() {
            return DEFAULT;
        }
        match self.card.pin_policy(PinKind::User) {
            Ok(p) => {
                let l = (p.min_len as CK_ULONG, p.max_len as CK_ULONG);
                self.pin_lengths = Some(l);
                if let (Some(c), Ok(min), Ok(max)) = (
                    &mut self.cache,
                    u32::try_from(p.min_len),
                    u32::try_from(p.max_len),
                ) {
                    c.entry.pin_lengths = Some((min, max));
                    c.changed();
                    self.persist_cache();
                }
                l
            }
            Err(e) => {
                log::debug!("PIN policy: {e}");
                DEFAULT
            }
        }
    }

    /// Read TokenInfo if the card has not yet (its label and manufacturer: docs/card-spec.md §1.4 point 5),
    /// and complete the disk cache's key with them ([`TokenCache::bind`]).
    fn read_token_info(&mut self) -> std::result::Result<(), CardError> {
        if self.card.token_info_known() {
            return Ok(());
        }
        self.card.read_token_info()?;
        if let Some(c) = &mut self.cache
            && !c.bind(&self.card)
        {
            log::debug!(
                "disk cache for {}: made for another TokenInfo",
                self.card.serial()
            );
        }
        self.persist_cache();
        Ok(())
    }

    /// C_GetTokenInfo. `sessions` and `rw_sessions` are the slot's session counts. The first
    /// call reads TokenInfo (label, manufacturer) when the disk cache did not give it; a card
    /// whose TokenInfo cannot be read is not a token we recognise (as at open, docs/card-spec.md §1.4).
    pub fn info(&mut self, sessions: usize, rw_sessions: usize) -> Result<CK_TOKEN_INFO> {
        self.read_token_info().map_err(|e| {
            let e = Error::from(e);
            if crate::error::token_lost(&e) {
                e
            } else {
                log::info!(
                    "{}: TokenInfo: {e}; not recognised as a CPx token",
                    self.card.reader()
                );
                Error::Ck(CKR_TOKEN_NOT_RECOGNIZED)
            }
        })?;
        self.refresh_pins();
        // CKF_RNG: C_GenerateRandom asks the card (GET CHALLENGE, docs/card-spec.md §4.5, §5.2).
        let mut flags = CKF_TOKEN_INITIALIZED | CKF_RNG;
        if self.has_pin() {
            flags |= CKF_LOGIN_REQUIRED | CKF_USER_PIN_INITIALIZED;
            // A PIN-pad reader: clients ask no PIN and call C_Login with NULL (docs/pkcs11-module.md).
            if self.protected_path()? {
                flags |= CKF_PROTECTED_AUTHENTICATION_PATH;
            }
            flags |= counter_flags(
                self.pins.user.as_ref(),
                CKF_USER_PIN_COUNT_LOW,
                CKF_USER_PIN_FINAL_TRY,
                CKF_USER_PIN_LOCKED,
            );
            flags |= counter_flags(
                self.pins.puk.as_ref(),
                CKF_SO_PIN_COUNT_LOW,
                CKF_SO_PIN_FINAL_TRY,
                CKF_SO_PIN_LOCKED,
            );
        }
        let (min, max) = self.pin_lengths();
        let serial = self.card.serial();
        let serial = &serial[serial.len().saturating_sub(16)..];
        Ok(CK_TOKEN_INFO {
            label: pad::<32>(self.card.token_label()),
            manufacturerID: pad::<32>(self.card.manufacturer()),
            // The official module's model for both generations ("IAS ECC" for a CPS4 too,
            // observed on the wire; docs/pkcs11-module.md, "Tokens").
            model: pad::<16>(TOKEN_MODEL),
            serialNumber: pad::<16>(serial),
            flags,
            ulMaxSessionCount: CK_EFFECTIVELY_INFINITE,
            ulSessionCount: sessions as CK_ULONG,
            ulMaxRwSessionCount: CK_EFFECTIVELY_INFINITE,
            ulRwSessionCount: rw_sessions as CK_ULONG,
            ulMaxPinLen: max,
            ulMinPinLen: min,
            ulTotalPublicMemory: CK_UNAVAILABLE_INFORMATION,
            ulFreePublicMemory: CK_UNAVAILABLE_INFORMATION,
            ulTotalPrivateMemory: CK_UNAVAILABLE_INFORMATION,
            ulFreePrivateMemory: CK_UNAVAILABLE_INFORMATION,
            hardwareVersion: CK_VERSION { major: 0, minor: 0 },
            firmwareVersion: CK_VERSION { major: 0, minor: 0 },
            utcTime: [b' '; 16],
        })
    }
}

/// CK_TOKEN_INFO.model on every card: what the official module shows (docs/pkcs11-module.md,
/// "Tokens"); the card layer's [`cpx_card::Card::model`] names the applet.
pub const TOKEN_MODEL: &str = "IAS ECC";

/// COUNT_LOW (0 < left < max), FINAL_TRY (left 1), LOCKED (left 0 or blocked) (docs/card-spec.md §3.2).
pub fn counter_flags(
    s: Option<&PinStatus>,
    low: CK_FLAGS,
    final_try: CK_FLAGS,
    locked: CK_FLAGS,
) -> CK_FLAGS {
    let Some(s) = s else { return 0 };
    if s.blocked || s.tries_left == Some(0) {
        return locked;
    }
    let mut f = 0;
    if let Some(left) = s.tries_left {
        if left == 1 {
            f |= final_try;
        }
        // Filled in by `with_maximum` when the card does not give it.
        let max = s.max_tries.unwrap_or(3);
        if left < max {
            f |= low;
        }
    }
    f
}

/// Copy `s` into a blank-padded fixed field (truncated at a character boundary), controls
/// replaced by U+FFFD ([`cpx_card::text::display_safe`]; card text is already made safe where
/// it is parsed: this is the last guard of every CK_*_INFO field).
pub fn pad<const N: usize>(s: &str) -> [CK_UTF8CHAR; N] {
    let mut out = [b' '; N];
    let mut n = 0;
    for c in cpx_card::text::display_safe(s).chars() {
        let mut buf = [0u8; 4];
        let b = c.encode_utf8(&mut buf).as_bytes();
        if n + b.len() > N {
            break;
        }
        out[n..n + b.len()].copy_from_slice(b);
        n += b.len();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(left: Option<u8>, blocked: bool) -> PinStatus {
        PinStatus {
            tries_left: left,
            max_tries: Some(3),
            blocked,
            verified: None,
            usage_left: None,
        }
    }

    #[test]
    fn a_maximum_the_card_does_not_give_is_the_most_tries_seen() {
        let cps4 = |left| PinStatus {
            tries_left: Some(left),
            max_tries: None,
            blocked: false,
            verified: None,
            usage_left: None,
        };
        let mut most = None;
        let low = |s: PinStatus| counter_flags(Some(&s), 1, 2, 4) & 1 != 0;
        assert!(
            !low(with_maximum(&mut most, cps4(10))),
            "a PUK with all its 10 tries"
        );
        assert!(low(with_maximum(&mut most, cps4(9))), "one wrong PUK");
        let mut pin = None;
        assert!(!low(with_maximum(&mut pin, cps4(3))));
        assert!(low(with_maximum(&mut pin, cps4(2))));
        // A card that gives its maximum keeps it.
        assert_eq!(with_maximum(&mut None, st(Some(1), false)).max_tries, Some(3));
    }

    #[test]
    fn pin_count_flags() {
        let f = |s| counter_flags(Some(&s), 1, 2, 4);
        assert_eq!(f(st(Some(3), false)), 0);
        assert_eq!(f(st(Some(2), false)), 1);
        assert_eq!(f(st(Some(1), false)), 1 | 2);
        assert_eq!(f(st(Some(0), false)), 4);
        assert_eq!(f(st(None, true)), 4);
        assert_eq!(f(st(None, false)), 0);
    }
}
