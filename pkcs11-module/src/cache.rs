//! The on-disk cache of a card's public objects (issue 6 "Speed").
//!
//! Listing a card's objects costs dozens of APDUs (ODF, CDF, PrKDF, DODF, then every
//! certificate in 231-byte READ BINARY chunks on a CPS3). The official module keeps a disk cache
//! for that (docs/card-spec.md §5.6); this is ours.
//!
//! # Where
//! `$CPX_PKCS11_CACHE` when it is an absolute directory (`off` disables the cache), else
//! `$XDG_CACHE_HOME/cpx/pkcs11/`, else `$HOME/.cache/cpx/pkcs11/`; no cache when none of them
//! is set (or they are relative paths). The directory is created `0700` and must be owned by
//! the process's user and writable by nobody else; files are `0600`, owned by the user, regular
//! files (never followed symlinks) of at most [`MAX_FILE_SIZE`]. Read once at C_Initialize.
//!
//! # One file per card: `<cps3|cps4>-<contact|contactless>-<serial>.cache`
//! [`MAGIC`], the [`FORMAT_VERSION`], a SHA-256 of the content, then the content: the [`Key`]
//! first, then the [`Entry`]. Written to a temporary file in the same directory, then renamed
//! over the old one (readers see the old or the new file, never a mix; concurrent
//! writers: the last rename wins, and each writer first merges what is on disk). On read, any
//! mismatch (size, magic, version, hash, parse, key) ignores the file ([`Miss`], logged at
//! debug level): the objects are read from the card and the file is rewritten. Never fatal.
//!
//! # What is cached, and what keys it
//! Only what a card gives anyone without the PIN: the certificates (DER), the PrKDF description
//! of the keys (label, iD, role, size, private flag), the DODF description of the data objects,
//! the values of public, non-modifiable data objects, the PIN length limits of the AODF, and
//! the raw PKCS#15 directory files the card layer read ([`Entry::files`]: EF.DIR, TokenInfo,
//! ODF, AODF, PrKDF, CDF, DODF, docs/card-spec.md §1.4; the official module caches the same files, §5.6).
//! The value of an object that needs the PIN (activities, CPS_SIT_FACT) is never cached, nor
//! CPS_DATA (the holder can rewrite it through any middleware without EF_ACTUA changing).
//!
//! The files are given back to the card layer when the card is opened again
//! ([`TokenCache::seed`]): a warm process reads EF.SN.ICC (and EF_ACTUA on a CPS3 contact
//! card) and nothing else to open the token, list its objects, read the PIN counters (the
//! references come from the AODF) and sign (the key references come from the PrKDF). The card
//! layer uses them only for the card whose serial it has just read, and reads from the card
//! whatever turns out inconsistent (see `cpx_card::Pkcs15Files`).
//!
//! The key is the generation, the interface, the serial (EF.SN.ICC, read from the card at each
//! open, docs/card-spec.md §1.3), the TokenInfo label and manufacturer, and:
//! - **CPS3 contact**: the raw EF_ACTUA (`3F00/D010`, docs/card-spec.md §5.7), or its absence. A card
//!   update (situations) writes EF_ACTUA, so any update invalidates the entry. It is read once
//!   per card insertion (when the token is opened), after the serial and before anything
//!   cacheable is read or seeded: 1 APDU when absent (`6A82`), 3 on T=0 when present. An
//!   EF_ACTUA that cannot be read or parsed turns the cache off for that token (the official
//!   module fails with CKR_ASIP_BAD_EF_ACTUA; we only stop trusting the disk).
//! - **CPS4 and CPS3 contactless**: no EF_ACTUA (docs/card-spec.md §5.7, §7, §10.4) and no other update
//!   marker is known. What is cached there relies on one fact: certificates and keys are
//!   written at personalisation, for the card's own key pairs, and a renewed card is a new card
//!   with a new serial (the serial is the card number the certificates carry in their token id
//!   1.2.250.1.71.1.2.3, data-and-certs notes). Business data may be updated on a card (the
//!   situations), so on these cards the data objects' values are never cached, and their list
//!   is built at each process from the DODF. The DODF itself (the list of data files) is kept
//!   with the other directory files: a value is always read from the card, an object the DODF
//!   no longer lists is found missing by the card (the files are then read again); an object
//!   an update would add to the DODF shows once the entry is rewritten (another card state, or
//!   the file removed).
//!
//! The TokenInfo label and manufacturer are checked once the card knows them
//! ([`TokenCache::bind`]): with the entry's own files they come from the entry, so a file
//! whose TokenInfo disagrees with its key was not written by us and is ignored as a whole. An
//! entry written before any process read TokenInfo (TokenInfo is read only for
//! C_GetTokenInfo) has them empty, and gets them when a process reads it.
//!
//! An entry holds whatever the processes read, no more: the files an operation needed, the
//! listing once the CDF was read, each certificate once read. A process writing the entry
//! takes from the file what another process added meanwhile ([`Entry::fill_from`]).

use std::ffi::OsString;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use cpx_card::{Certificate, DataObject, Generation, Identified, Interface, Pkcs15Files, PrivateKeyInfo};

/// The environment variable: `off`, or an absolute directory.
pub const ENV: &str = "CPX_PKCS11_CACHE";
/// The format version; files of another version are ignored (and rewritten).
pub const FORMAT_VERSION: u32 = 2;
/// Larger files are ignored without being read.
pub const MAX_FILE_SIZE: u64 = 1 << 20;
/// The first bytes of every cache file.
pub const MAGIC: [u8; 8] = *b"cpx-p11c";

/// A cache directory.
///
/// ```
/// use cpx_pkcs11::cache::Store;
/// use std::ffi::OsString;
///
/// let xdg = Store::resolve(None, Some(OsString::from("/tmp/xdg")), Some(OsString::from("/home/a")));
/// assert_eq!(xdg.unwrap().dir(), std::path::Path::new("/tmp/xdg/cpx/pkcs11"));
/// assert!(Store::resolve(Some(OsString::from("off")), None, Some(OsString::from("/home/a"))).is_none());
/// assert!(Store::resolve(None, None, None).is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Store {
    dir: PathBuf,
}

/// Why a cache file was not used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Miss {
    /// There is no file (or no directory) yet.
    NoFile,
    /// Not trusted: not a regular file, another owner, writable by others, unusable serial.
    Unsafe(String),
    /// Reading failed.
    Io(String),
    /// Larger than [`MAX_FILE_SIZE`].
    TooLarge(u64),
    /// Not a cache file, truncated, or content that does not parse.
    Format(&'static str),
    /// Another format version.
    Version(u32),
    /// The SHA-256 does not match the content.
    Hash,
    /// A file for another card state (EF_ACTUA changed, other label…).
    OtherKey,
}

impl std::fmt::Display for Miss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Miss::NoFile => write!(f, "no cache file"),
            Miss::Unsafe(why) => write!(f, "not trusted: {why}"),
            Miss::Io(e) => write!(f, "read error: {e}"),
            Miss::TooLarge(n) => write!(f, "{n} bytes, over {MAX_FILE_SIZE}"),
            Miss::Format(why) => write!(f, "bad format: {why}"),
            Miss::Version(v) => write!(f, "format version {v}, not {FORMAT_VERSION}"),
            Miss::Hash => write!(f, "SHA-256 mismatch"),
            Miss::OtherKey => write!(f, "for another card state (EF_ACTUA or TokenInfo changed)"),
        }
    }
}

/// What an entry is valid for (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    /// CPS3 or CPS4.
    pub generation: Generation,
    /// Contact or contactless (the two show different applications of the same card).
    pub interface: Interface,
    /// The serial from EF.SN.ICC (docs/card-spec.md §1.3).
    pub serial: String,
    /// TokenInfo label.
    pub label: String,
    /// TokenInfo manufacturerID.
    pub manufacturer: String,
    /// EF_ACTUA's raw content on a CPS3 contact card; `None` when absent or not applicable.
    pub ef_actua: Option<Vec<u8>>,
}

impl Key {
    /// The key of an identified card, before its PKCS#15 files are known: reads EF_ACTUA on a
    /// CPS3 contact card (docs/card-spec.md §5.7); label and manufacturer are left empty (TokenInfo is read
    /// or seeded afterwards, see [`TokenCache::bind`]). `None` when EF_ACTUA cannot be read or
    /// is malformed: the cache is not used for this card.
    pub fn of(card: &mut Identified) -> Option<Key> {
        let ef_actua = match card.ef_actua() {
            Ok(a) => a.map(|a| a.raw),
            Err(e) => {
                log::info!("EF_ACTUA: {e}; disk cache not used for this card");
                return None;
            }
        };
        Some(Key {
            generation: card.generation(),
            interface: card.interface(),
            serial: card.serial().to_owned(),
            label: String::new(),
            manufacturer: String::new(),
            ef_actua,
        })
    }

    /// The same card in the same state (generation, interface, serial, EF_ACTUA), whatever
    /// the TokenInfo fields: what can be checked before TokenInfo is known.
    pub fn same_card_state(&self, other: &Key) -> bool {
        (self.generation, self.interface, &self.serial, &self.ef_actua)
            == (other.generation, other.interface, &other.serial, &other.ef_actua)
    }

    /// Whether data objects are cached for this card: only where EF_ACTUA tells updates apart
    /// (CPS3 contact, docs/card-spec.md §5.7).
    pub fn caches_data(&self) -> bool {
        self.generation.capabilities().ef_actua && self.interface == Interface::Contact
    }

    fn file_name(&self) -> Option<String> {
        let s = &self.serial;
        if s.is_empty() || s.len() > 32 || !s.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return None;
        }
        let g = self.generation.capabilities().cache_name;
        let i = match self.interface {
            Interface::Contact => "contact",
            Interface::Contactless => "contactless",
        };
        Some(format!("{g}-{i}-{s}.cache"))
    }
}

/// A data object of the listing: the card layer's entry, with its value when cached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Data {
    /// The DODF's description, as the card lists it.
    pub object: DataObject,
    /// The value, only for [`Data::value_cacheable`] objects.
    pub value: Option<Vec<u8>>,
}

impl Data {
    /// A listed data object, value not read.
    pub fn listed(object: DataObject) -> Data {
        Data { object, value: None }
    }

    /// Public and never rewritten: not private, not modifiable, not CPS_DATA (writable with the
    /// PIN even where the DODF does not flag it modifiable, docs/card-spec.md §5.4, §6.1).
    pub fn value_cacheable(&self) -> bool {
        let o = &self.object;
        !o.private && !o.modifiable && o.label != "CPS_DATA"
    }
}

/// What the object list is built from: the card layer's listing entries themselves, the same
/// values the objects hold ([`crate::objects::Object`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Objects {
    /// Certificates, in CDF order (the DER empty while not read).
    pub certs: Vec<Certificate>,
    /// Private keys, in PrKDF order.
    pub keys: Vec<PrivateKeyInfo>,
    /// Data objects; `None` when not cached ([`Key::caches_data`]) or not listed.
    pub data: Option<Vec<Data>>,
}

/// One card's cache file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// What it is valid for.
    pub key: Key,
    /// ulMinPinLen / ulMaxPinLen from the AODF.
    pub pin_lengths: Option<(u32, u32)>,
    /// The certificates and keys as far as known (a certificate not read yet has an empty
    /// DER, and is read from the card when needed, its path from the CDF in [`Entry::files`]),
    /// and the data objects once listed where they are cached ([`Key::caches_data`]).
    pub objects: Option<Objects>,
    /// The card's PKCS#15 directory files as the card layer read them (EF.DIR, TokenInfo, ODF,
    /// AODF, PrKDF, CDF, DODF: public, docs/card-spec.md §1.4), given back to it at the next open
    /// ([`cpx_card::Identified::open`]): TokenInfo, the PIN references and the key references
    /// are then not read again. Their identity is the key's.
    pub files: Pkcs15Files,
}

impl Entry {
    /// An empty entry.
    pub fn new(key: Key) -> Entry {
        Entry {
            files: Pkcs15Files::new(key.generation, key.interface, key.serial.clone()),
            key,
            pin_lengths: None,
            objects: None,
        }
    }

    /// Take from `other` (same card state, and the same TokenInfo fields unless one of the two
    /// entries was written before TokenInfo was read) what this entry lacks: another process
    /// may have cached more meanwhile — certificates, the data list, data values. The PKCS#15
    /// files are not taken: ours are what this process's card layer trusts (it may have dropped
    /// files found inconsistent with the card).
    pub fn fill_from(&mut self, other: Entry) {
        let unknown = |k: &Key| k.label.is_empty() && k.manufacturer.is_empty();
        let same_token_info =
            (&self.key.label, &self.key.manufacturer) == (&other.key.label, &other.key.manufacturer);
        if !self.key.same_card_state(&other.key)
            || !(same_token_info || unknown(&self.key) || unknown(&other.key))
        {
            return;
        }
        self.pin_lengths = self.pin_lengths.or(other.pin_lengths);
        match (&mut self.objects, other.objects) {
            (None, theirs) => self.objects = theirs,
            (Some(ours), Some(theirs)) => {
                if (&ours.certs.len(), &ours.keys) != (&theirs.certs.len(), &theirs.keys) {
                    return;
                }
                for (c, t) in ours.certs.iter_mut().zip(theirs.certs) {
                    if c.der.is_empty() && (&c.label, &c.id) == (&t.label, &t.id) {
                        c.der = t.der;
                    }
                }
                let data = match (&mut ours.data, theirs.data) {
                    (None, their_data) => {
                        ours.data = their_data;
                        return;
                    }
                    (Some(data), Some(their_data)) => (data, their_data),
                    (Some(_), None) => return,
                };
                let (data, their_data) = data;
                for d in data
                    .iter_mut()
                    .filter(|d| d.value.is_none() && d.value_cacheable())
                {
                    if let Some(t) = their_data.iter().find(|t| t.object.label == d.object.label) {
                        d.value = t.value.clone();
                    }
                }
            }
            (Some(_), None) => {}
        }
    }
}

impl Store {
    /// A cache in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Store {
        Store { dir: dir.into() }
    }

    /// The cache the environment asks for ([`Store::resolve`] of `CPX_PKCS11_CACHE`,
    /// `XDG_CACHE_HOME`, `HOME`).
    pub fn from_env() -> Option<Store> {
        Store::resolve(
            std::env::var_os(ENV),
            std::env::var_os("XDG_CACHE_HOME"),
            std::env::var_os("HOME"),
        )
    }

    /// `setting` (`CPX_PKCS11_CACHE`): `off` = no cache, an absolute path = that directory;
    /// else `<xdg>/cpx/pkcs11` (XDG Base Directory: only an absolute `XDG_CACHE_HOME` counts),
    /// else `<home>/.cache/cpx/pkcs11`, else no cache.
    pub fn resolve(
        setting: Option<OsString>,
        xdg: Option<OsString>,
        home: Option<OsString>,
    ) -> Option<Store> {
        let absolute = |v: Option<OsString>| v.map(PathBuf::from).filter(|p| p.is_absolute());
        if let Some(s) = setting.filter(|s| !s.is_empty()) {
            if s == "off" {
                return None;
            }
            let dir = absolute(Some(s.clone()));
            if dir.is_none() {
                log::warn!(
                    "{ENV}={}: not \"off\" nor an absolute path; no disk cache",
                    s.to_string_lossy()
                );
            }
            return dir.map(Store::new);
        }
        if let Some(x) = absolute(xdg) {
            return Some(Store::new(x.join("cpx").join("pkcs11")));
        }
        absolute(home).map(|h| Store::new(h.join(".cache").join("cpx").join("pkcs11")))
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of a key; `None` when the serial is not a plain alphanumeric string.
    pub fn file(&self, key: &Key) -> Option<PathBuf> {
        key.file_name().map(|n| self.dir.join(n))
    }

    /// The directory is ours and nobody else can write in it.
    fn check_dir(&self) -> Result<(), Miss> {
        let m = match fs::metadata(&self.dir) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(Miss::NoFile),
            Err(e) => return Err(Miss::Io(e.to_string())),
        };
        if !m.is_dir() {
            return Err(Miss::Unsafe(format!("{} is not a directory", self.dir.display())));
        }
        trusted(&m, &self.dir)
    }

    /// The entry for `key`, if a valid file holds it.
    pub fn load(&self, key: &Key) -> Result<Entry, Miss> {
        self.load_matching(key, |k| k == key)
    }

    /// The entry of `key`'s file, if valid and its key is `accept`ed.
    fn load_matching(&self, key: &Key, accept: impl Fn(&Key) -> bool) -> Result<Entry, Miss> {
        let path = self
            .file(key)
            .ok_or_else(|| Miss::Unsafe(format!("serial {:?} is not a file name", key.serial)))?;
        self.check_dir()?;
        let meta = match fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(Miss::NoFile),
            Err(e) => return Err(Miss::Io(e.to_string())),
        };
        if !meta.file_type().is_file() {
            return Err(Miss::Unsafe(format!("{} is not a regular file", path.display())));
        }
        trusted(&meta, &path)?;
        if meta.len() > MAX_FILE_SIZE {
            return Err(Miss::TooLarge(meta.len()));
        }
        let mut bytes = Vec::new();
        File::open(&path)
            .and_then(|f| f.take(MAX_FILE_SIZE + 1).read_to_end(&mut bytes))
            .map_err(|e| Miss::Io(e.to_string()))?;
        if bytes.len() as u64 > MAX_FILE_SIZE {
            return Err(Miss::TooLarge(bytes.len() as u64));
        }
        let entry = decode(&bytes)?;
        if !accept(&entry.key) {
            return Err(Miss::OtherKey);
        }
        Ok(entry)
    }

    /// The entry of the card of `key` in the same state ([`Key::same_card_state`]): the
    /// TokenInfo label and manufacturer are not compared (not known yet when the card is
    /// opened with the entry's files, [`TokenCache::open`]); the entry keeps its own key.
    pub fn load_card(&self, key: &Key) -> Result<Entry, Miss> {
        self.load_matching(key, |k| k.same_card_state(key))
    }

    /// Write `entry` atomically (temporary file, rename). Creates the directory (0700).
    ///
    /// Not fsync'ed: the file is a cache, and every read checks it whole (size, magic, version,
    /// SHA-256, key), so what a system crash can leave — the old file, none, or a new one
    /// truncated or zero-filled — is at worst a [`Miss`]: the card is read again. The fsyncs
    /// of the file and its directory cost a cold `pkcs11-tool` run ~20 ms on this machine's
    /// disk (two per save, up to three saves), more than all its card exchanges (issue 15).
    pub fn save(&self, entry: &Entry) -> io::Result<PathBuf> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let name = entry
            .key
            .file_name()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "serial is not a file name"))?;
        DirBuilder::new().recursive(true).mode(0o700).create(&self.dir)?;
        self.check_dir()
            .map_err(|m| io::Error::new(io::ErrorKind::PermissionDenied, m.to_string()))?;
        let bytes = encode(entry);
        if bytes.len() as u64 > MAX_FILE_SIZE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "entry over the size limit",
            ));
        }
        let path = self.dir.join(&name);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let tmp = self.dir.join(format!(
            ".{name}.{}.{}.{nanos}.tmp",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let written = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .and_then(|mut f| f.write_all(&bytes))
            .and_then(|()| fs::rename(&tmp, &path));
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        Ok(path)
    }
}

/// Owned by this process's user and not writable by group or others.
fn trusted(m: &fs::Metadata, path: &Path) -> Result<(), Miss> {
    if m.uid() != rustix::process::geteuid().as_raw() {
        return Err(Miss::Unsafe(format!(
            "{} belongs to uid {}",
            path.display(),
            m.uid()
        )));
    }
    if m.mode() & 0o022 != 0 {
        return Err(Miss::Unsafe(format!(
            "{} is writable by others (mode {:o})",
            path.display(),
            m.mode() & 0o777
        )));
    }
    Ok(())
}

mod codec;
mod token_cache;

pub use codec::{decode, encode};
pub use token_cache::TokenCache;

#[cfg(test)]
mod tests;
