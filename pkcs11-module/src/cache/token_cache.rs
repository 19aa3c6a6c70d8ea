//! A token's disk cache in the module: looked up by the card's identity before its PKCS#15
//! files are read, its files given to the card layer, completed and written as the card is
//! used (see [`crate::cache`]).

use std::io;

use cpx_card::{Card, Identified, Pkcs15Files};

use super::{Entry, Key, Miss, Store};

/// A token's cache: the directory, the entry in memory, whether it changed since written.
#[derive(Debug)]
pub struct TokenCache {
    /// Where.
    pub store: Store,
    /// What (its key is the card's).
    pub entry: Entry,
    dirty: bool,
    /// The entry came from the file (not started empty).
    loaded: bool,
}

impl TokenCache {
    /// The cache of an identified card, before its PKCS#15 files are read: its key (EF_ACTUA
    /// read on a CPS3 contact card), and the file's entry when it is for this card in this
    /// state, else an empty one. `None` when the cache cannot be used for it. Then open the
    /// card with [`TokenCache::seed`] and [`TokenCache::bind`] it.
    pub fn open(store: Store, card: &mut Identified) -> Option<TokenCache> {
        match store.check_dir() {
            Ok(()) | Err(Miss::NoFile) => {}
            Err(miss) => {
                // Unusable: do not read certificates ahead for a file that cannot be written.
                log::debug!("disk cache {}: {miss}", store.dir().display());
                return None;
            }
        }
        let key = Key::of(card)?;
        store.file(&key)?;
        let (entry, loaded) = match store.load_card(&key) {
            Ok(e) => {
                log::debug!("disk cache: {} used", store.file(&key)?.display());
                (e, true)
            }
            Err(miss) => {
                log::debug!("disk cache for {}: {miss}", key.serial);
                (Entry::new(key), false)
            }
        };
        Some(TokenCache {
            store,
            entry,
            dirty: false,
            loaded,
        })
    }

    /// The PKCS#15 files to open the card with, if the entry has any. The card layer uses them
    /// only for the card they were read from (serial, generation, interface) and drops them if
    /// they turn out inconsistent with it.
    pub fn seed(&self) -> Option<&Pkcs15Files> {
        Some(&self.entry.files).filter(|f| !f.is_empty())
    }

    /// Complete the key with the card's TokenInfo label and manufacturer, once the card knows
    /// them (given at open from the entry's own files, or read from the card when C_GetTokenInfo
    /// first asks): an entry written before TokenInfo was read has them empty, and takes them
    /// now. An entry made for another TokenInfo is dropped ([`Miss::OtherKey`]); `false` then.
    /// Nothing to check while the card has not read TokenInfo (`true`), unless the entry claims
    /// one it does not hold.
    ///
    /// A card opened with the entry's own files whose TokenInfo disagrees with the entry's key
    /// has been given a file we did not write (ours are consistent by construction): the
    /// caller makes the card forget those files ([`Card::forget_files`]) and binds again.
    pub fn bind(&mut self, card: &Card) -> bool {
        let (label, manufacturer) = if card.token_info_known() {
            (card.token_label(), card.manufacturer())
        } else {
            ("", "")
        };
        let key = &self.entry.key;
        if (key.label.as_str(), key.manufacturer.as_str()) == (label, manufacturer) {
            return true;
        }
        if key.label.is_empty() && key.manufacturer.is_empty() {
            // Written before TokenInfo was read: the key is completed, and written so.
            self.entry.key.label = label.to_owned();
            self.entry.key.manufacturer = manufacturer.to_owned();
            self.dirty = true;
            return true;
        }
        let key = Key {
            label: label.to_owned(),
            manufacturer: manufacturer.to_owned(),
            ..self.entry.key.clone()
        };
        if self.loaded {
            log::debug!("disk cache for {}: {}", key.serial, Miss::OtherKey);
        }
        self.entry = Entry::new(key);
        self.loaded = false;
        false
    }

    /// Take the card layer's files into the entry; whether they differed.
    pub fn take_files(&mut self, files: &Pkcs15Files) -> bool {
        if self.entry.files == *files {
            return false;
        }
        self.entry.files = files.clone();
        self.dirty = true;
        true
    }

    /// Whether the entry changed since it was last written.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// The entry changed: [`TokenCache::persist`] writes it.
    pub fn changed(&mut self) {
        self.dirty = true;
    }

    /// Write the entry if it changed, first taking what another process cached meanwhile.
    pub fn persist(&mut self) -> io::Result<()> {
        if !self.dirty {
            return Ok(());
        }
        if let Ok(disk) = self.store.load_card(&self.entry.key) {
            self.entry.fill_from(disk);
        }
        let path = self.store.save(&self.entry)?;
        log::debug!("disk cache: {} written", path.display());
        self.dirty = false;
        Ok(())
    }
}
