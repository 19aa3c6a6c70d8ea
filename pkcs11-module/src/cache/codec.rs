//! The cache file format: [`MAGIC`], [`FORMAT_VERSION`] (u32 big-endian), the SHA-256 of the
//! content, then the content: fields in a fixed order, byte strings and lists prefixed with a
//! u32 big-endian length, options with a 0/1 byte. Decoding checks everything and reads the
//! content to its last byte.
//!
//! Content, version 2: the key, the PIN lengths, the objects, then the seven PKCS#15 files
//! (EF.DIR, TokenInfo, ODF, AODF, PrKDF, CDF, DODF), each optional. Version 1 had no files.

use cpx_card::{Certificate, DataObject, Generation, Interface, KeyRole, Pkcs15Files, PrivateKeyInfo};
use sha2::{Digest, Sha256};

use super::{Data, Entry, FORMAT_VERSION, Key, MAGIC, Miss, Objects};

const HEADER: usize = MAGIC.len() + 4 + 32;

/// The file bytes of an entry.
pub fn encode(entry: &Entry) -> Vec<u8> {
    let mut w = W(Vec::new());
    let k = &entry.key;
    w.u8(k.generation.capabilities().cache_id);
    w.u8(u8::from(k.interface == Interface::Contactless));
    w.str(&k.serial);
    w.str(&k.label);
    w.str(&k.manufacturer);
    w.opt(k.ef_actua.as_deref(), W::bytes);
    w.opt(entry.pin_lengths.as_ref(), |w, (a, b)| {
        w.u32(*a);
        w.u32(*b);
    });
    w.opt(entry.objects.as_ref(), |w, o| {
        w.list(&o.certs, |w, c| {
            w.str(&c.label);
            w.bytes(&c.id);
            w.u8(u8::from(c.authority));
            w.bytes(&c.der);
        });
        w.list(&o.keys, |w, k| {
            w.str(&k.label);
            w.bytes(&k.id);
            w.u8(u8::from(k.role == KeyRole::Authentication));
            w.u32(k.modulus_bits);
            w.u8(u8::from(k.private));
        });
        w.opt(o.data.as_ref(), |w, d| {
            w.list(d, |w, d| {
                let o = &d.object;
                w.str(&o.label);
                w.opt(o.application.as_deref(), W::str);
                w.u8(u8::from(o.private));
                w.u8(u8::from(o.modifiable));
                w.opt(d.value.as_deref().filter(|_| d.value_cacheable()), W::bytes);
            });
        });
    });
    let f = &entry.files;
    for file in [
        &f.ef_dir,
        &f.token_info,
        &f.odf,
        &f.aodf,
        &f.prkdf,
        &f.cdf,
        &f.dodf,
    ] {
        w.opt(file.as_deref(), W::bytes);
    }
    let mut out = Vec::with_capacity(HEADER + w.0.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
    out.extend_from_slice(&Sha256::digest(&w.0));
    out.extend_from_slice(&w.0);
    out
}

/// Parse file bytes (magic, version, hash, then a content read to its last byte).
pub fn decode(bytes: &[u8]) -> Result<Entry, Miss> {
    if bytes.len() < HEADER || bytes[..MAGIC.len()] != MAGIC {
        return Err(Miss::Format("not a cpx cache file"));
    }
    let mut version = [0u8; 4];
    version.copy_from_slice(&bytes[8..12]);
    let version = u32::from_be_bytes(version);
    if version != FORMAT_VERSION {
        return Err(Miss::Version(version));
    }
    let body = &bytes[HEADER..];
    if Sha256::digest(body).as_slice() != &bytes[12..HEADER] {
        return Err(Miss::Hash);
    }
    let mut r = R(body);
    let entry = read_entry(&mut r).ok_or(Miss::Format("content does not parse"))?;
    if !r.0.is_empty() {
        return Err(Miss::Format("trailing bytes"));
    }
    Ok(entry)
}

fn read_entry(r: &mut R<'_>) -> Option<Entry> {
    let generation = Generation::from_cache_id(r.u8()?)?;
    let interface = match r.u8()? {
        0 => Interface::Contact,
        1 => Interface::Contactless,
        _ => return None,
    };
    let key = Key {
        generation,
        interface,
        serial: r.str()?,
        label: r.str()?,
        manufacturer: r.str()?,
        ef_actua: r.opt(R::bytes)?,
    };
    let pin_lengths = r.opt(|r| Some((r.u32()?, r.u32()?)))?;
    let objects = r.opt(|r| {
        let certs = r.list(|r| {
            Some(Certificate {
                label: r.str()?,
                id: r.bytes()?,
                authority: r.bool()?,
                der: r.bytes()?,
            })
        })?;
        let keys = r.list(|r| {
            Some(PrivateKeyInfo {
                label: r.str()?,
                id: r.bytes()?,
                role: if r.bool()? {
                    KeyRole::Authentication
                } else {
                    KeyRole::Signature
                },
                modulus_bits: r.u32()?,
                private: r.bool()?,
            })
        })?;
        let data = r.opt(|r| {
            r.list(|r| {
                Some(Data {
                    object: DataObject {
                        label: r.str()?,
                        application: r.opt(R::str)?,
                        private: r.bool()?,
                        modifiable: r.bool()?,
                    },
                    value: r.opt(R::bytes)?,
                })
            })
        })?;
        Some(Objects { certs, keys, data })
    })?;
    let mut files = Pkcs15Files::new(key.generation, key.interface, key.serial.clone());
    for file in [
        &mut files.ef_dir,
        &mut files.token_info,
        &mut files.odf,
        &mut files.aodf,
        &mut files.prkdf,
        &mut files.cdf,
        &mut files.dodf,
    ] {
        *file = r.opt(R::bytes)?;
    }
    Some(Entry {
        key,
        pin_lengths,
        objects,
        files,
    })
}

/// Content writer: u32 big-endian lengths and counts.
struct W(Vec<u8>);

impl W {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn len(&mut self, n: usize) {
        self.u32(u32::try_from(n).unwrap_or(u32::MAX));
    }
    fn bytes(&mut self, v: &[u8]) {
        self.len(v.len());
        self.0.extend_from_slice(v);
    }
    fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }
    fn opt<T: ?Sized>(&mut self, v: Option<&T>, f: impl FnOnce(&mut W, &T)) {
        self.u8(u8::from(v.is_some()));
        if let Some(v) = v {
            f(self, v);
        }
    }
    fn list<T>(&mut self, items: &[T], f: impl Fn(&mut W, &T)) {
        self.len(items.len());
        for i in items {
            f(self, i);
        }
    }
}

/// Content reader: every read is bounded by what is left (no allocation from a bad length).
struct R<'a>(&'a [u8]);

impl R<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if n > self.0.len() {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn bool(&mut self) -> Option<bool> {
        match self.u8()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }
    fn u32(&mut self) -> Option<u32> {
        let b = self.take(4)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn bytes(&mut self) -> Option<Vec<u8>> {
        let n = usize::try_from(self.u32()?).ok()?;
        self.take(n).map(<[u8]>::to_vec)
    }
    fn str(&mut self) -> Option<String> {
        String::from_utf8(self.bytes()?).ok()
    }
    fn opt<T>(&mut self, f: impl FnOnce(&mut Self) -> Option<T>) -> Option<Option<T>> {
        if self.bool()? {
            f(self).map(Some)
        } else {
            Some(None)
        }
    }
    fn list<T>(&mut self, f: impl Fn(&mut Self) -> Option<T>) -> Option<Vec<T>> {
        let n = usize::try_from(self.u32()?).ok()?;
        // Every item takes at least one byte: a larger count is a corrupt file.
        if n > self.0.len() {
            return None;
        }
        (0..n).map(|_| f(self)).collect()
    }
}
