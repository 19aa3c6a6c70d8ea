//! Card generations: one module per generation, each with one table of facts ([`Capabilities`])
//! and one implementation of the driver trait ([`Driver`]), and the registry below listing them.
//!
//! Everything outside this directory reads what differs between the generations from the
//! [`Capabilities`] of the card's [`Generation`] (plain data: CLA, AID, chunk sizes, PIN
//! defaults, PSS, …) or calls its [`Driver`] (the commands that differ in shape, not only in
//! bytes: PIN status, VERIFY/CHANGE/unblock sequences, signature and decryption). No code
//! outside this directory matches on a generation (`scripts/check-generation-neutral.sh`).
//!
//! Adding a generation: a module here holding its table, its ATRs and its `Driver`, one line
//! in [`REGISTRY`] (with its `mod` line), and nothing else in this crate, the PKCS#11 module or
//! the CLI.
//!
//! Why a trait object (`&'static dyn Driver`) rather than an enum dispatch: a new generation
//! then adds no arm to any `match`, so it cannot be half-added (a forgotten arm of an enum
//! would silently fall into another generation's behaviour if written with `_`), and the
//! dispatch costs one indirect call per card operation, nothing next to an APDU.

use cpx_transport::ExchangePolicy;
use zeroize::Zeroizing;

use crate::atr::Interface;
use crate::crypto::{KeyRole, ToSign};
use crate::error::CardError;
use crate::io::Io;
use crate::pin::{Pin, PinKind, PinPolicy, PinStatus};
use crate::pinpad::PadReader;
use crate::state::State;

pub(crate) mod cps3;
pub(crate) mod cps4;
#[cfg(feature = "stub-generation")]
mod stub;

/// Every generation this build knows, in ATR-matching order.
const REGISTRY: &[Generation] = &[
    Generation::Cps3,
    Generation::Cps4,
    #[cfg(feature = "stub-generation")]
    Generation::Cps5Test,
];

/// A card generation (CPS3, CPS4): a handle on its [`Capabilities`] and its driver. Compare
/// generations with `==`; read what a generation can do from [`Generation::capabilities`]
/// rather than comparing it with a given generation.
///
/// ```
/// use cpx_card::Generation;
/// let caps = Generation::Cps4.capabilities();
/// assert_eq!((caps.name, caps.model, caps.pss), ("CPS4", "ChipDoc", true));
/// assert_eq!(Generation::from_cache_id(caps.cache_id), Some(Generation::Cps4));
/// ```
#[derive(Clone, Copy)]
pub struct Generation(&'static dyn Driver);

impl Generation {
    /// The table of this generation.
    pub fn capabilities(self) -> &'static Capabilities {
        self.0.capabilities()
    }

    /// The display name, e.g. "CPS3".
    pub fn name(self) -> &'static str {
        self.capabilities().name
    }

    /// The model string of docs/card-spec.md §1.2 / §5.2: "IAS ECC" or "ChipDoc".
    pub fn model(self) -> &'static str {
        self.capabilities().model
    }

    /// Every generation this build knows.
    pub fn all() -> &'static [Generation] {
        REGISTRY
    }

    /// The generation whose [`Capabilities::cache_id`] is `id` (a cache written by an earlier
    /// run), if this build knows it.
    pub fn from_cache_id(id: u8) -> Option<Generation> {
        REGISTRY.iter().copied().find(|g| g.capabilities().cache_id == id)
    }

    pub(crate) fn driver(self) -> &'static dyn Driver {
        self.0
    }
}

impl PartialEq for Generation {
    fn eq(&self, other: &Self) -> bool {
        self.capabilities().cache_id == other.capabilities().cache_id
    }
}

impl Eq for Generation {}

impl std::hash::Hash for Generation {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.capabilities().cache_id.hash(state);
    }
}

impl std::fmt::Debug for Generation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One known ATR of a generation, with a mask for the bytes real cards vary on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownAtr {
    /// The ATR.
    pub atr: &'static [u8],
    /// `None`: matches exactly; else the bits compared (same length as `atr`).
    pub mask: Option<&'static [u8]>,
    /// The interface a card with this ATR is used through.
    pub interface: Interface,
}

/// How files are selected by path inside the application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileSelection {
    /// IAS-ECC `00 A4 09 {04|0C}` with the whole path, 3F00 first; `P2=0C` selects without FCP
    /// ([`crate::commands::cps3_select_path`]).
    IasPathFromMf,
    /// ISO `<cla> A4 08 00` with the path after 3F00, always case 3 or 4 (no "no FCI" form;
    /// [`crate::commands::cps4_select_path`]).
    IsoPathAfterMf,
}

/// The default key references of a generation, used where the PrKDF gives none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyReferences {
    /// The signature (nonRepudiation) key.
    pub signature: u8,
    /// The authentication key.
    pub authentication: u8,
    /// The authentication key's reference is fixed by the card, whatever the PrKDF says.
    pub authentication_fixed: bool,
}

/// What a card generation is and can do, as plain data: the module and the CLI read it instead
/// of matching on the generation. One value per generation, in its module, each field citing
/// its source. "Contact" fields are false on the contactless interface whatever they say.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// Display name, e.g. "CPS3".
    pub name: &'static str,
    /// The model string (C_GetTokenInfo model, docs/card-spec.md §5.2).
    pub model: &'static str,
    /// A stable number naming the generation in caches on disk (never reused).
    pub cache_id: u8,
    /// A stable lower-case name for file names, e.g. "cps3".
    pub cache_name: &'static str,
    /// The ATRs of the generation.
    pub atrs: &'static [KnownAtr],
    /// CLA of the application's commands.
    pub cla: u8,
    /// AID of the application holding the PKCS#15 files and keys.
    pub aid: &'static [u8],
    /// The application is selected by AID as soon as the card is identified, and after a reset.
    pub select_aid_at_open: bool,
    /// How files are selected by path.
    pub file_selection: FileSelection,
    /// READ BINARY chunk (Le).
    pub read_chunk: usize,
    /// GET RESPONSE sizing and limits for the transport.
    pub exchange: ExchangePolicy,
    /// A status word besides `6Exx` and `6A86` after which the application is selected again
    /// and the command resent once.
    pub reselect_on: Option<u16>,
    /// EF.SN.ICC is selected with FCP/FCI and its size checked (12) before it is read.
    pub serial_size_checked: bool,
    /// A certificate's size comes from its DER header in the first chunk (no FCP asked).
    pub der_size_from_header: bool,
    /// The application path on the contact interface when it is fixed (EF.DIR not read).
    pub fixed_contact_app_path: Option<&'static [u8]>,
    /// EF_ACTUA (3F00/D010) exists on the contact interface.
    pub ef_actua: bool,
    /// The CPS2ter data objects are added to the DODF's on the contact interface.
    pub cps2ter_objects: bool,
    /// RSA-PSS signatures (CKM_*RSA_PKCS_PSS).
    pub pss: bool,
    /// The authentication key deciphers PKCS#1 v1.5 cryptograms.
    pub decrypt: bool,
    /// The signature key finishes the hash on the card (contact interface): the host keeps
    /// only the SHA state and the last block.
    pub signature_hash_on_card: bool,
    /// Default key references.
    pub keys: KeyReferences,
    /// The user PIN's policy when the AODF gives none.
    pub user_pin: PinPolicy,
    /// The PUK's policy when the AODF gives none.
    pub puk: PinPolicy,
}

impl Capabilities {
    /// The default policy of a code.
    pub fn default_policy(&self, kind: PinKind) -> &PinPolicy {
        match kind {
            PinKind::User => &self.user_pin,
            PinKind::Puk => &self.puk,
        }
    }
}

/// The commands whose shape differs between generations. Implemented once per generation;
/// everything else is driven by [`Capabilities`].
pub(crate) trait Driver: Sync {
    /// The generation's table.
    fn capabilities(&self) -> &'static Capabilities;

    /// Select the application (after identification, a reset, or a `6Exx`).
    fn select_application(&self, io: &mut Io<'_>) -> Result<(), CardError>;

    /// The status of each code of `kinds`.
    fn pin_status(
        &self,
        io: &mut Io<'_>,
        st: &mut State,
        kinds: &[PinKind],
    ) -> Result<Vec<PinStatus>, CardError>;

    /// VERIFY a code typed on the host.
    fn verify(&self, io: &mut Io<'_>, st: &mut State, kind: PinKind, pin: &Pin) -> Result<(), CardError>;

    /// Change the user PIN.
    fn change(&self, io: &mut Io<'_>, st: &mut State, old: &Pin, new: &Pin) -> Result<(), CardError>;

    /// Verify the PUK, unblock the PIN and set `new`.
    fn unblock(&self, io: &mut Io<'_>, st: &mut State, puk: &Pin, new: &Pin) -> Result<(), CardError>;

    /// Unblock the PIN and set `new`, the PUK already verified.
    fn unblock_verified(&self, io: &mut Io<'_>, st: &mut State, new: &Pin) -> Result<(), CardError>;

    /// VERIFY the code `kind` entered on the reader's PIN pad `pad` (PC/SC part 10
    /// VERIFY_PIN_DIRECT, the structure from the code's policy, crate::pinpad).
    fn verify_pad(
        &self,
        io: &mut Io<'_>,
        st: &mut State,
        kind: PinKind,
        pad: &PadReader,
    ) -> Result<(), CardError>;

    /// Change the user PIN, the current PIN, the new one and its confirmation entered on the
    /// pad. Everything the pad cannot do is refused before any command is sent.
    fn change_pad(&self, io: &mut Io<'_>, st: &mut State, pad: &PadReader) -> Result<(), CardError>;

    /// Verify the PUK and set a new PIN, both entered on the pad (the new PIN confirmed).
    fn unblock_pad(&self, io: &mut Io<'_>, st: &mut State, pad: &PadReader) -> Result<(), CardError>;

    /// Unblock the PIN and set a new PIN entered (and confirmed) on the pad, the PUK already
    /// verified.
    fn unblock_verified_pad(&self, io: &mut Io<'_>, st: &mut State, pad: &PadReader)
    -> Result<(), CardError>;

    /// Sign with the key of `role`.
    fn sign(
        &self,
        io: &mut Io<'_>,
        st: &mut State,
        role: KeyRole,
        input: ToSign<'_>,
    ) -> Result<Vec<u8>, CardError>;

    /// Decipher with the key of `role`.
    fn decrypt(
        &self,
        io: &mut Io<'_>,
        st: &mut State,
        role: KeyRole,
        cryptogram: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CardError>;
}

/// The generation and interface of an ATR among every registered generation's: exact ATRs
/// first, then masked ones.
pub(crate) fn find_atr(atr: &[u8]) -> Option<(Generation, Interface)> {
    let all = || {
        REGISTRY
            .iter()
            .flat_map(|g| g.capabilities().atrs.iter().map(move |k| (*g, k)))
    };
    let exact = all().find(|(_, k)| k.atr == atr);
    let masked = || {
        all().find(|(_, k)| {
            k.mask.is_some_and(|m| {
                k.atr.len() == atr.len() && k.atr.iter().zip(m).zip(atr).all(|((a, m), b)| a & m == b & m)
            })
        })
    };
    exact.or_else(masked).map(|(g, k)| (g, k.interface))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_ids_names_and_atrs_are_unique() {
        let mut ids: Vec<u8> = REGISTRY.iter().map(|g| g.capabilities().cache_id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), REGISTRY.len());
        let names: std::collections::HashSet<_> =
            REGISTRY.iter().map(|g| g.capabilities().cache_name).collect();
        assert_eq!(names.len(), REGISTRY.len());
        for g in REGISTRY {
            assert_eq!(Generation::from_cache_id(g.capabilities().cache_id), Some(*g));
            for k in g.capabilities().atrs {
                assert_eq!(find_atr(k.atr), Some((*g, k.interface)), "{:?}", k.atr);
                assert!(k.mask.is_none_or(|m| m.len() == k.atr.len()));
            }
        }
    }
}
