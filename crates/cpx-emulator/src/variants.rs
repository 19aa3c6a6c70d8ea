//! The variant matrix (issue 18): every choice of `CHOICES.md` and every card fact with a single
//! public source becomes a **knob** of an emulated card, and a [`Variant`] is a built-in image with
//! some knobs turned. A driver that works on the model card may have come to depend on a guess;
//! running the whole stack on every variant shows it does not.
//!
//! Each knob's values are what the sources leave open (the source is named next to each knob in
//! [`KNOBS`]); a value no real card can have (one the official module would refuse, e.g. a CPS4
//! EF.SN.ICC that is not 12 bytes, docs/card-spec.md §1.3) is not a value of the knob.
//!
//! A variant has a stable printable name, the base image and its knobs in [`KNOBS`] order:
//! `cps4-doctor+odf=reversed+rb-chunk=128`. [`Variant::parse`] reads it back, so a failing
//! variant is re-run alone (`cpx emulate --card NAME` accepts it, docs/variants.md).
//!
//! Where the card answers, the knobs act through [`Knobs`] (the file system and PKCS#15
//! directories being built, the FCP/FCI of a SELECT, READ BINARY, GET RESPONSE and the delivery of
//! response data, the SE numbers of the security conditions); the others change the
//! [`CardImage`] itself (ATR, key references, EF_ACTUA, PIN/PUK tries, absent files).

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

use crate::image::{CardImage, CardKind, ImageError};
use crate::state::EmulatedCard;
use crate::tlv::{self, tlv};
use crate::{choices, facts};

/// The bases of the matrix: the built-in images of each card model whose PIN works.
pub const BASES: &[&str] = &["cps3-doctor", "cps4-doctor"];

/// The seed of the random combinations (fixed: the same names on every run).
pub const SEED: u64 = 18;

/// How many random combinations [`all`] adds to the single-knob variants.
pub const RANDOM_COMBINATIONS: usize = 300;

/// Which FIDs the PKCS#15 directories and certificates have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FileIds {
    /// `choices::fid` (the §10 model's, docs/card-spec.md §10).
    #[default]
    Model,
    /// The CPS3 test program's file list (docs/card-spec.md §1.4 point 6) with the roles swapped:
    /// PrKDF 7006, DODF 7002, signature certificate A002, authentication certificate A001.
    Swapped,
    /// Other FIDs altogether (the CPS4 layout is not public, docs/card-spec.md §1.4 point 6):
    /// AODF 4401, PrKDF 4402, CDF 4403, DODF 4404, certificates C001 / C002.
    Other,
}

/// The FIDs a layout uses.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fids {
    pub(crate) aodf: u16,
    pub(crate) prkdf: u16,
    pub(crate) cdf: u16,
    pub(crate) dodf: u16,
    pub(crate) cert_sig: u16,
    pub(crate) cert_aut: u16,
}

impl FileIds {
    pub(crate) fn fids(self) -> Fids {
        use choices::fid;
        match self {
            FileIds::Model => Fids {
                aodf: fid::AODF,
                prkdf: fid::PRKDF,
                cdf: fid::CDF,
                dodf: fid::DODF,
                cert_sig: fid::CERT_SIG,
                cert_aut: fid::CERT_AUT,
            },
            // The AODF 7001 and CDF 7005 of a CPS3 are real (GH#2224): only the others swap.
            FileIds::Swapped => Fids {
                aodf: fid::AODF,
                prkdf: fid::DODF,
                cdf: fid::CDF,
                dodf: fid::PRKDF,
                cert_sig: fid::CERT_AUT,
                cert_aut: fid::CERT_SIG,
            },
            FileIds::Other => Fids {
                aodf: 0x4401,
                prkdf: 0x4402,
                cdf: 0x4403,
                dodf: 0x4404,
                cert_sig: 0xC001,
                cert_aut: 0xC002,
            },
        }
    }
}

/// How the FCP/FCI of a SELECT is laid out (ISO 7816-4 §5.3.3: the order of the tags is free,
/// tag 80 or 81 gives the size, proprietary tags may follow).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FcpLayout {
    /// The model's (docs/card-spec.md §1.3 real EF.SN.ICC FCP on CPS3, §10.2 on CPS4).
    #[default]
    Model,
    /// The same tags, in reverse order (the size last).
    Reversed,
    /// The size in tag 81 (total size) instead of 80 (the module reads 80 or 81, docs/card-spec.md
    /// §1.3).
    Size81,
    /// The size on the fewest bytes (`80 01 0C`).
    ShortSize,
    /// Proprietary information added first: `85` and `A5` templates.
    Proprietary,
}

/// The applet a CPS4 selects on channel 0 at power-on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DefaultApplet {
    /// The CPS2ter applet (`choices::CPS4_DEFAULT_APPLET_AID`).
    #[default]
    Model,
    /// The ChipDoc applet itself (so its select on channel 1 answers `6985`, not multiselectable).
    ChipDoc,
    /// None: channel 0 open with no applet selected.
    None,
}

/// What READ BINARY does with an Le above the card's limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverLimit {
    /// Returns the limit's worth of bytes with 9000 (fewer than asked, not at the end).
    Short,
    /// Answers `6Cxx` with xx = the limit (ISO 7816-4 "wrong Le, xx available").
    Wrong6C,
}

/// How data comes back (ISO 7816-4 §5.1.3, ISO 7816-3 T=0 case 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Responses {
    /// The model's (CHOICES.md "Commands and transport"; CPS4 "Link").
    #[default]
    Model,
    /// Every data-returning command answers `61xx`, Le or not (T=1 too).
    Always61,
    /// A command with Le gets its data with 9000 at once (T=0: the case-2 PSO CDS too); one
    /// without Le gets no data.
    Strict,
}

/// The knobs a card model reads while it is built and while it answers. `Knobs::default()` is
/// the model card.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Knobs {
    /// The ODF lists the directories in reverse order.
    pub odf_reversed: bool,
    /// The FIDs of the directories and certificates.
    pub fids: FileIds,
    /// ODF, CDF and DODF paths are 2-byte FIDs relative to the application DF, not absolute.
    pub relative_paths: bool,
    /// The PKCS#15 EFs (ODF, TokenInfo, xDFs) are longer than their content, padded with this byte.
    pub pad: Option<u8>,
    /// Extra records: a PuKDF entry in the ODF (7004 exists on real cards, CHOICES.md "File
    /// system"), an unknown application record first in EF.DIR.
    pub extra_records: bool,
    /// An unknown trailing element in TokenInfo and in every directory entry (ASN.1 extensibility).
    pub extra_tags: bool,
    /// The FCP/FCI layout.
    pub fcp: FcpLayout,
    /// READ BINARY returns at most this many bytes.
    pub read_limit: Option<(usize, OverLimit)>,
    /// GET RESPONSE returns at most this many bytes (`61xx` for the rest).
    pub get_response_limit: Option<usize>,
    /// How data comes back.
    pub responses: Responses,
    /// The security environment of the user PIN (SCB `1n`, SE #n holds its AT CRT); model 2.
    pub user_se: Option<u8>,
    /// CPS4: the authentication key reference the PrKDF gives, while the key stays 0x20 (the
    /// module fixes it whatever the PrKDF says, docs/card-spec.md §1.5).
    pub prkdf_auth_reference: Option<u8>,
    /// READ BINARY past the end on T=0: the bytes left with `6282` instead of `6Cxx`.
    pub read_past_end_6282: bool,
    /// CPS4: the applet selected on channel 0 at power-on.
    pub default_applet: DefaultApplet,
    /// No DODF and no business data files (the ODF lists no DODF).
    pub no_dodf: bool,
    /// TokenInfo without lastUpdate.
    pub no_last_update: bool,
    /// CPS3: the PUK's usage counter (tag 9D) on one byte instead of two.
    pub usage_one_byte: bool,
    /// CPS4: the PUK's AODF flags `(soPin, unblockingPin)` when not the model's (both,
    /// `choices::PUK_IS_SO_PIN`).
    pub puk_flags: Option<(bool, bool)>,
}

impl Knobs {
    pub(crate) fn fids(&self) -> Fids {
        self.fids.fids()
    }

    /// A PKCS#15 path to `fid` in application DF `df`: absolute, or relative.
    pub(crate) fn path(&self, df: u16, fid: u16) -> Vec<u8> {
        let mut p = Vec::new();
        if !self.relative_paths {
            p.extend([0x3F, 0x00]);
            p.extend(df.to_be_bytes());
        }
        p.extend(fid.to_be_bytes());
        tlv(&[0x30], &tlv(&[0x04], &p))
    }

    /// A PKCS#15 EF's content as the knobs make it: an unknown trailing element in each entry
    /// (`entries`), padding.
    pub(crate) fn p15_file(&self, content: Vec<u8>, at: Extension) -> Vec<u8> {
        let mut content = match at {
            _ if !self.extra_tags => content,
            Extension::None => content,
            Extension::Top => with_trailing_element(&content),
            Extension::CommonAttributes => content_with_common_extension(&content),
        };
        if let Some(b) = self.pad {
            content.resize(content.len() + PAD_LEN, b);
        }
        content
    }

    /// The SCB of "user PIN" (IAS-ECC `1n`).
    pub(crate) fn scb_user_pin(&self) -> u8 {
        match self.user_se {
            Some(n) => 0x10 | n,
            None => choices::SCB_USER_PIN,
        }
    }

    /// An FCP/FCI (`62`/`6F` template) laid out per [`Knobs::fcp`]; the SCBs of "user PIN" name the
    /// user SE. Anything that does not parse is left as is.
    pub(crate) fn fcp(&self, fcp: Vec<u8>) -> Vec<u8> {
        if self.fcp == FcpLayout::Model && self.user_se.is_none() {
            return fcp;
        }
        let Some((outer, [])) = tlv::read(&fcp) else {
            return fcp;
        };
        let Some(items) = tlv::read_all(outer.value) else {
            return fcp;
        };
        let mut items: Vec<(Vec<u8>, Vec<u8>)> =
            items.iter().map(|t| (t.tag.to_vec(), t.value.to_vec())).collect();
        if self.user_se.is_some() {
            for (tag, value) in &mut items {
                if tag.as_slice() == [0xA1] {
                    *value = self.rules(value);
                }
            }
        }
        match self.fcp {
            FcpLayout::Model => {}
            FcpLayout::Reversed => items.reverse(),
            FcpLayout::Size81 => {
                for (tag, _) in &mut items {
                    if tag.as_slice() == [0x80] {
                        *tag = vec![0x81];
                    }
                }
            }
            FcpLayout::ShortSize => {
                for (tag, value) in &mut items {
                    if tag.as_slice() == [0x80] {
                        let skip = value.iter().take_while(|b| **b == 0).count();
                        let keep = value.len().saturating_sub(skip).max(1);
                        *value = value[value.len() - keep..].to_vec();
                    }
                }
            }
            FcpLayout::Proprietary => {
                items.insert(0, (vec![0xA5], tlv(&[0xC0], &[0x01])));
                items.insert(0, (vec![0x85], vec![0x00, 0x01]));
            }
        }
        let inner: Vec<u8> = items.iter().flat_map(|(t, v)| tlv(t, v)).collect();
        tlv(outer.tag, &inner)
    }

    /// `A1 { 8C …, 9C … }` with the user-PIN SCBs moved to the user SE.
    fn rules(&self, value: &[u8]) -> Vec<u8> {
        let Some(rules) = tlv::read_all(value) else {
            return value.to_vec();
        };
        rules
            .iter()
            .flat_map(|r| {
                let v: Vec<u8> = r
                    .value
                    .iter()
                    .enumerate()
                    .map(|(i, b)| {
                        if i > 0 && *b == choices::SCB_USER_PIN {
                            self.scb_user_pin()
                        } else {
                            *b
                        }
                    })
                    .collect();
                tlv(r.tag, &v)
            })
            .collect()
    }
}

/// How many pad bytes [`Knobs::pad`] adds: enough to cross a READ BINARY chunk on a small file.
const PAD_LEN: usize = 48;

/// The unknown element appended (context class, number 30: no ISO 7816-15 type uses it).
const UNKNOWN_ELEMENT: [u8; 3] = [0x9E, 0x01, 0x00];

/// Where [`Knobs::extra_tags`] adds its unknown element in a PKCS#15 EF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Extension {
    /// Nowhere (ODF: its entries are CHOICEs of a path).
    None,
    /// At the end of the top-level SEQUENCE (TokenInfo, extensible).
    Top,
    /// At the end of each entry's CommonObjectAttributes (extensible, ISO 7816-15).
    CommonAttributes,
}

/// Each top-level entry of `content` with [`UNKNOWN_ELEMENT`] appended to its first element.
fn content_with_common_extension(content: &[u8]) -> Vec<u8> {
    let Some(entries) = tlv::read_all(content) else {
        return content.to_vec();
    };
    entries
        .iter()
        .flat_map(|e| match tlv::read(e.value) {
            Some((first, rest)) => {
                let first = tlv(first.tag, &[first.value, &UNKNOWN_ELEMENT].concat());
                tlv(e.tag, &[first.as_slice(), rest].concat())
            }
            None => tlv(e.tag, e.value),
        })
        .collect()
}

/// Every top-level TLV of `content` with [`UNKNOWN_ELEMENT`] appended to its value.
fn with_trailing_element(content: &[u8]) -> Vec<u8> {
    let Some(items) = tlv::read_all(content) else {
        return content.to_vec();
    };
    items
        .iter()
        .flat_map(|t| tlv(t.tag, &[t.value, &UNKNOWN_ELEMENT].concat()))
        .collect()
}

/// One knob: its name in a variant's name, the card models it applies to, its values (the
/// model's first, not listed in names), and its source.
#[derive(Debug, Clone, Copy)]
pub struct Knob {
    /// Name in a variant's name, e.g. `rb-chunk`.
    pub name: &'static str,
    /// The values on a CPS3 base (empty: not a CPS3 knob); the first is the model's.
    pub cps3: &'static [&'static str],
    /// The values on a CPS4 base; the first is the model's.
    pub cps4: &'static [&'static str],
    /// Where the model's value comes from and why the others are possible.
    pub source: &'static str,
}

/// Every knob, in the order of variant names. docs/variants.md shows the same table.
pub const KNOBS: &[Knob] = &[
    Knob {
        name: "atr",
        cps3: &["cps3", "cps3-variant"],
        cps4: &["cps4", "cps4-rc", "cps4-t0"],
        source: "docs/card-spec.md §1.1 (five ATRs, the module compares exactly), docs/card-notes.md §2 (CPS3 variant); CPS4 T=0-only form §10.1",
    },
    Knob {
        name: "odf",
        cps3: &["model", "reversed"],
        cps4: &["model", "reversed"],
        source: "ODF order not public (docs/card-spec.md §1.4 point 6, CHOICES.md File system)",
    },
    Knob {
        name: "fids",
        cps3: &["model", "swapped"],
        cps4: &["model", "swapped", "other"],
        source: "xDF and certificate FIDs not public (docs/card-spec.md §1.4 point 6); CPS3 AODF 7001 / CDF 7005 real (GH#2224)",
    },
    Knob {
        name: "paths",
        cps3: &["absolute", "relative"],
        cps4: &["absolute", "relative"],
        source: "CHOICES.md File system: ODF paths absolute by choice; the real CDF entry's 0x52 bytes leave room for a 2-byte FID",
    },
    Knob {
        name: "pad",
        cps3: &["none", "00", "FF"],
        cps4: &["none", "00", "FF"],
        source: "file sizes of the PKCS#15 EFs not public (only contents were dumped, GH#2224, GH#2267)",
    },
    Knob {
        name: "extra-records",
        cps3: &["no", "yes"],
        cps4: &["no", "yes"],
        source: "CHOICES.md File system: 7004 (PuKDF) exists on real cards, content unknown; EF.DIR records beyond the CPx ones",
    },
    Knob {
        name: "extra-tags",
        cps3: &["no", "yes"],
        cps4: &["no", "yes"],
        source: "ISO 7816-15 types are extensible; only part of the real entries is public (GH#2224, GH#2267)",
    },
    Knob {
        name: "fcp",
        cps3: &["model", "reversed", "size81", "short-size", "proprietary"],
        cps4: &["model", "reversed", "size81", "short-size", "proprietary"],
        source: "one real FCP (EF.SN.ICC, docs/card-spec.md §1.3); CPS4 FCI content not public (§10.2)",
    },
    Knob {
        name: "rb-chunk",
        cps3: &["none", "128", "64", "128-6c"],
        cps4: &["none", "128", "64", "128-6c"],
        source: "card buffer sizes not public (EF.ATR gives 256, docs/card-spec.md §1.3); CHOICES.md chunk sizes",
    },
    Knob {
        name: "gr-chunk",
        cps3: &["none", "128", "64"],
        cps4: &["none", "128", "64"],
        source: "GET RESPONSE size not public (CHOICES.md Commands and transport)",
    },
    Knob {
        name: "resp",
        cps3: &["model", "strict"],
        cps4: &["model", "61xx", "strict"],
        source: "CHOICES.md Commands and transport (T=0 61xx) and CPS4 Link (T=1 data without Le); ISO 7816-4 allows 61xx on T=1",
    },
    Knob {
        name: "sig-ref",
        cps3: &["81", "83", "85"],
        cps4: &["01", "02", "11"],
        source: "CPS3 81 from one dump (GH#2267, docs/card-spec.md §1.5); CPS4 not public (CHOICES.md CPS4_KEY_SIG)",
    },
    Knob {
        name: "auth-ref",
        cps3: &["82", "84"],
        cps4: &["20", "02"],
        source: "CPS3 82 from one dump (GH#2267); CPS4: the module fixes the key at 0x20 whatever the PrKDF says (docs/card-spec.md §1.5)",
    },
    Knob {
        name: "ef-actua",
        cps3: &["absent", "valid"],
        cps4: &["absent", "valid"],
        source: "docs/card-spec.md §5.7 (absent on the GH#2275 card; valid when an update happened), §10.4 (never read on CPS4)",
    },
    Knob {
        name: "se",
        cps3: &["2", "1", "4"],
        cps4: &[],
        source: "CHOICES.md Security: SCB 12 = user authentication in SE #2 (model); SE #3 is the PUK's (docs/card-spec.md §9)",
    },
    Knob {
        name: "past-end",
        cps3: &["6c", "6282"],
        cps4: &["6c", "6282"],
        source: "CHOICES.md Commands and transport: READ BINARY past the end on T=0, 6Cxx chosen (ISO 7816-4 also allows data + 6282)",
    },
    Knob {
        name: "applet0",
        cps3: &[],
        cps4: &["cps2ter", "chipdoc", "none"],
        source: "CHOICES.md CPS4 Channels: the CPS2ter applet as default applet on channel 0 is a choice (docs/card-spec.md §1.3, §10.15)",
    },
    Knob {
        name: "fresh-verify",
        cps3: &["no", "yes"],
        cps4: &["no", "yes"],
        source: "CHOICES.md Security: no fresh VERIFY per signature (the real PrKDF has no userConsent, GH#2267; docs/card-spec.md §4.5)",
    },
    Knob {
        name: "last-update",
        cps3: &["present", "absent"],
        cps4: &["present", "absent"],
        source: "TokenInfo lastUpdate 20100316110000Z from one card (GH#2267, docs/card-spec.md §9); optional in ISO 7816-15",
    },
    Knob {
        name: "usage-len",
        cps3: &["2", "1"],
        cps4: &[],
        source: "PUK usage counter 9D on 2 bytes in the one public reply (docs/card-spec.md §8.4, §9); the module reads 1 or 2 bytes (§3.2)",
    },
    Knob {
        name: "puk-flags",
        cps3: &[],
        cps4: &["so+unblocking", "so", "unblocking"],
        source: "CHOICES.md PUK_IS_SO_PIN: the CPS4 AODF is generated (not public); the real CPS3 PUK has soPin without unblockingPin (GH#2224)",
    },
    Knob {
        name: "puk-tries",
        cps3: &["10", "3", "5", "15"],
        cps4: &["10", "3", "5", "15"],
        source: "PUK maximum 10 from one reply (docs/card-spec.md §9 real PUK DOCP)",
    },
    Knob {
        name: "pin-tries",
        cps3: &["3", "5"],
        cps4: &["3", "5"],
        source: "PIN maximum 3 from one reply (docs/card-spec.md §3.2, GH#2275); CPS4 module's constant 3 (§10.6)",
    },
    Knob {
        name: "absent",
        cps3: &["none", "ef-atr", "ef-dir", "dodf"],
        cps4: &["none", "dodf"],
        source: "optional files: EF.ATR (read by OpenSC only, docs/card-spec.md §1.3), CPS3 EF.DIR (the application path is fixed, §1.4 point 4), the DODF and business data (none on the contactless application, §7); a CPS4 needs its EF.DIR and tag 51 (§10.3)",
    },
];

impl Knob {
    /// The values of this knob on a base of `kind` (the model's first; empty: not a knob there).
    pub fn values(&self, kind: CardKind) -> &'static [&'static str] {
        match kind {
            CardKind::Cps3 => self.cps3,
            CardKind::Cps4 => self.cps4,
            CardKind::Cps3Contactless | CardKind::Cps5Test => &[],
        }
    }
}

/// Why a variant name does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VariantError {
    /// The base is not one of [`BASES`].
    #[error("unknown variant base {0:?} (bases: {bases})", bases = BASES.join(", "))]
    Base(String),
    /// `knob=value` expected.
    #[error("{0:?}: expected knob=value")]
    Syntax(String),
    /// No such knob, or not on this card model.
    #[error("unknown knob {0:?} for this card")]
    Knob(String),
    /// Not a value of that knob.
    #[error("{knob}: unknown value {value:?} (values: {values})")]
    Value {
        /// The knob.
        knob: String,
        /// The value given.
        value: String,
        /// Its values.
        values: String,
    },
    /// The same knob twice.
    #[error("knob {0} given twice")]
    Twice(String),
}

/// A base image with knobs turned.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Variant {
    /// The built-in image, one of [`BASES`].
    pub base: &'static str,
    /// `(knob, value)` in [`KNOBS`] order, no model value.
    pub knobs: Vec<(&'static str, &'static str)>,
}

fn base_kind(base: &str) -> CardKind {
    if base.starts_with("cps4") {
        CardKind::Cps4
    } else {
        CardKind::Cps3
    }
}

impl Variant {
    /// The base image unchanged.
    pub fn base(base: &'static str) -> Variant {
        Variant {
            base,
            knobs: Vec::new(),
        }
    }

    /// The card model of the base.
    pub fn kind(&self) -> CardKind {
        base_kind(self.base)
    }

    /// The stable name: `base+knob=value+…`.
    pub fn name(&self) -> String {
        let mut s = self.base.to_owned();
        for (k, v) in &self.knobs {
            s.push('+');
            s.push_str(k);
            s.push('=');
            s.push_str(v);
        }
        s
    }

    /// The value of a knob (the model's when not turned).
    pub fn value(&self, knob: &str) -> Option<&'static str> {
        if let Some((_, v)) = self.knobs.iter().find(|(k, _)| *k == knob) {
            return Some(v);
        }
        KNOBS
            .iter()
            .find(|k| k.name == knob)
            .and_then(|k| k.values(self.kind()).first().copied())
    }

    /// Read a name written by [`Variant::name`] (knobs in any order; a model value is dropped).
    pub fn parse(name: &str) -> Result<Variant, VariantError> {
        let mut parts = name.split('+');
        let base = parts.next().unwrap_or_default();
        let base = *BASES
            .iter()
            .find(|b| **b == base)
            .ok_or_else(|| VariantError::Base(base.to_owned()))?;
        let kind = base_kind(base);
        let mut knobs: Vec<(&'static str, &'static str)> = Vec::new();
        for part in parts {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| VariantError::Syntax(part.to_owned()))?;
            let knob = KNOBS
                .iter()
                .find(|x| x.name == k && !x.values(kind).is_empty())
                .ok_or_else(|| VariantError::Knob(k.to_owned()))?;
            let values = knob.values(kind);
            let value = *values
                .iter()
                .find(|x| **x == v)
                .ok_or_else(|| VariantError::Value {
                    knob: k.to_owned(),
                    value: v.to_owned(),
                    values: values.join(", "),
                })?;
            if knobs.iter().any(|(n, _)| *n == knob.name) {
                return Err(VariantError::Twice(k.to_owned()));
            }
            if value != values[0] {
                knobs.push((knob.name, value));
            }
        }
        knobs.sort_by_key(|(k, _)| KNOBS.iter().position(|x| x.name == *k));
        Ok(Variant { base, knobs })
    }

    /// The card-side knobs.
    pub fn card_knobs(&self) -> Knobs {
        let v = |k| self.value(k).unwrap_or_default();
        Knobs {
            odf_reversed: v("odf") == "reversed",
            fids: match v("fids") {
                "swapped" => FileIds::Swapped,
                "other" => FileIds::Other,
                _ => FileIds::Model,
            },
            relative_paths: v("paths") == "relative",
            pad: match v("pad") {
                "00" => Some(0x00),
                "FF" => Some(0xFF),
                _ => None,
            },
            extra_records: v("extra-records") == "yes",
            extra_tags: v("extra-tags") == "yes",
            fcp: match v("fcp") {
                "reversed" => FcpLayout::Reversed,
                "size81" => FcpLayout::Size81,
                "short-size" => FcpLayout::ShortSize,
                "proprietary" => FcpLayout::Proprietary,
                _ => FcpLayout::Model,
            },
            read_limit: match v("rb-chunk") {
                "128" => Some((128, OverLimit::Short)),
                "64" => Some((64, OverLimit::Short)),
                "128-6c" => Some((128, OverLimit::Wrong6C)),
                _ => None,
            },
            get_response_limit: v("gr-chunk").parse().ok(),
            responses: match v("resp") {
                "61xx" => Responses::Always61,
                "strict" => Responses::Strict,
                _ => Responses::Model,
            },
            user_se: match self.kind() {
                CardKind::Cps3 => v("se").parse().ok().filter(|n| *n != 2),
                _ => None,
            },
            read_past_end_6282: v("past-end") == "6282",
            default_applet: match v("applet0") {
                "chipdoc" => DefaultApplet::ChipDoc,
                "none" => DefaultApplet::None,
                _ => DefaultApplet::Model,
            },
            no_dodf: v("absent") == "dodf",
            no_last_update: v("last-update") == "absent",
            usage_one_byte: v("usage-len") == "1",
            puk_flags: match v("puk-flags") {
                "so" => Some((true, false)),
                "unblocking" => Some((false, true)),
                _ => None,
            },
            prkdf_auth_reference: match self.kind() {
                CardKind::Cps4 => u8::from_str_radix(v("auth-ref"), 16)
                    .ok()
                    .filter(|r| *r != facts::cps4::KEY_AUT),
                _ => None,
            },
        }
    }

    /// The base image with the image-level knobs applied (ATR, key references, EF_ACTUA, tries,
    /// absent files).
    pub fn image(&self) -> Result<CardImage, ImageError> {
        let mut image = crate::builtin_image(self.base).ok_or_else(|| ImageError::Value {
            field: "variant".into(),
            reason: format!("no built-in image {}", self.base),
        })??;
        let hex_byte = |s: &str| u8::from_str_radix(s, 16).ok();
        for (k, v) in &self.knobs {
            match *k {
                "atr" => {
                    if let Some(atr) = facts::named_atr(v) {
                        image.atr = atr.to_vec();
                    }
                }
                "sig-ref" => {
                    if let Some(key) = image.sign.as_mut() {
                        key.reference = hex_byte(v);
                    }
                }
                // CPS4: only the PrKDF changes (`Knobs::prkdf_auth_reference`).
                "auth-ref" if image.kind == CardKind::Cps3 => {
                    if let Some(key) = image.auth.as_mut() {
                        key.reference = hex_byte(v);
                    }
                }
                "ef-actua" => {
                    // EC { 81 start, 82 end }, BCD YYYYMMDDhhmmss (docs/card-spec.md §5.7).
                    let start = tlv(&[0x81], &[0x20, 0x24, 0x01, 0x01, 0x00, 0x00, 0x00]);
                    let end = tlv(&[0x82], &[0x20, 0x34, 0x01, 0x01, 0x00, 0x00, 0x00]);
                    image.ef_actua = Some(tlv(&[0xEC], &[start, end].concat()));
                }
                "fresh-verify" => image.sig_key_fresh_verify = *v == "yes",
                "puk-tries" | "pin-tries" => {
                    let pin = if *k == "puk-tries" {
                        image.puk.as_mut()
                    } else {
                        image.pin.as_mut()
                    };
                    if let (Some(p), Ok(n)) = (pin, v.parse::<u8>()) {
                        p.max_tries = n;
                        p.tries_left = n;
                    }
                }
                "absent" => match *v {
                    "ef-atr" => image.absent.push(vec![0x3F00, 0x2F01]),
                    "ef-dir" => image.absent.push(vec![0x3F00, 0x2F00]),
                    _ => {}
                },
                _ => {}
            }
        }
        Ok(image)
    }

    /// The card: the image built with the card-side knobs.
    pub fn card(&self) -> Result<Box<dyn EmulatedCard>, ImageError> {
        let image = self.image()?;
        let knobs = self.card_knobs();
        Ok(match image.kind {
            CardKind::Cps4 | CardKind::Cps5Test => Box::new(crate::Cps4Card::with_knobs(&image, knobs)),
            CardKind::Cps3 | CardKind::Cps3Contactless => {
                Box::new(crate::Cps3Card::with_knobs(&image, knobs))
            }
        })
    }
}

/// The card `cpx emulate --card NAME` plugs in: a variant name (`base+knob=value…`, not a file),
/// else the image [`crate::find_image`] finds, as built by [`crate::card_from_image`].
///
/// ```
/// let card = cpx_emulator::find_card("cps4-doctor+atr=cps4-t0+rb-chunk=64")?;
/// assert_eq!(card.atr()[1], 0xDC); // the T=0-only ATR (docs/card-spec.md §1.1 row 5)
/// assert!(cpx_emulator::find_card("cps4-doctor+rb-chunk=7").is_err());
/// # Ok::<(), cpx_emulator::ImageError>(())
/// ```
pub fn find_card(name: &str) -> Result<Box<dyn EmulatedCard>, ImageError> {
    if name.contains('+') && !std::path::Path::new(name).exists() {
        let variant = Variant::parse(name).map_err(|e| ImageError::Value {
            field: "variant".into(),
            reason: e.to_string(),
        })?;
        return variant.card();
    }
    Ok(crate::card_from_image(&crate::find_image(name)?))
}

/// Every variant of `base` with one knob turned, each value in turn.
pub fn singles(base: &'static str) -> Vec<Variant> {
    let kind = base_kind(base);
    KNOBS
        .iter()
        .flat_map(|k| {
            k.values(kind).iter().skip(1).map(move |v| Variant {
                base,
                knobs: vec![(k.name, *v)],
            })
        })
        .collect()
}

/// `n` random combinations over [`BASES`] from `seed`: each knob turned with probability 1/3 to
/// one of its other values; duplicates and single-knob ones are drawn again. A knob value of
/// `alone` (e.g. one a driver documents as unsupported) is never drawn.
pub fn combinations(n: usize, seed: u64, alone: &[(&str, &str)]) -> Vec<Variant> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut out: Vec<Variant> = Vec::new();
    let mut draws = 0;
    while out.len() < n && draws < n * 100 {
        draws += 1;
        let base = BASES[rng.next_u32() as usize % BASES.len()];
        let kind = base_kind(base);
        let mut knobs = Vec::new();
        for k in KNOBS {
            let values = k.values(kind);
            if values.len() > 1 && rng.next_u32() % 3 == 0 {
                let v = values[1 + rng.next_u32() as usize % (values.len() - 1)];
                if !alone.contains(&(k.name, v)) {
                    knobs.push((k.name, v));
                }
            }
        }
        let v = Variant { base, knobs };
        if v.knobs.len() > 1 && !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

/// The whole matrix: each base as is, every single-knob variant, then [`RANDOM_COMBINATIONS`]
/// combinations from [`SEED`], in which the knob values of `alone` never appear (they are
/// tried alone only).
pub fn matrix(alone: &[(&str, &str)]) -> Vec<Variant> {
    let mut out: Vec<Variant> = BASES.iter().map(|b| Variant::base(b)).collect();
    for b in BASES {
        out.extend(singles(b));
    }
    out.extend(combinations(RANDOM_COMBINATIONS, SEED, alone));
    out
}

/// [`matrix`] with every knob value in the combinations.
pub fn all() -> Vec<Variant> {
    matrix(&[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_and_are_stable() {
        let all = all();
        for v in &all {
            assert_eq!(Variant::parse(&v.name()).as_ref(), Ok(v), "{}", v.name());
        }
        let mut names: Vec<String> = all.iter().map(Variant::name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), all.len(), "duplicate variants");
        // The fixed seed gives the same combinations on every run.
        assert_eq!(combinations(5, SEED, &[]), combinations(5, SEED, &[]));
        assert_ne!(combinations(5, SEED, &[]), combinations(5, SEED + 1, &[]));
        let alone = [("fresh-verify", "yes")];
        assert!(
            matrix(&alone)
                .iter()
                .all(|v| v.knobs.len() < 2 || v.value("fresh-verify") == Some("no"))
        );
    }

    /// docs/variants.md lists every knob with its values, and the matrix's size.
    #[test]
    fn the_documentation_gives_every_knob_and_the_counts() {
        let doc = include_str!("../../../docs/variants.md");
        for k in KNOBS {
            let row = doc
                .lines()
                .find(|l| l.starts_with(&format!("| `{}` |", k.name)))
                .unwrap_or_else(|| panic!("docs/variants.md: no row for knob {}", k.name));
            for v in k.cps3.iter().chain(k.cps4) {
                assert!(
                    row.contains(v),
                    "docs/variants.md: knob {} lacks value {v}",
                    k.name
                );
            }
        }
        let singles: usize = BASES.iter().map(|b| singles(b).len()).sum();
        let total = matrix(&[("fresh-verify", "yes")]).len();
        assert!(
            doc.contains(&format!("**{total} variants:")),
            "docs/variants.md: total {total}"
        );
        assert!(
            doc.contains(&format!("({singles} variants)")),
            "docs/variants.md: singles {singles}"
        );
    }

    #[test]
    fn bad_names_are_refused_precisely() {
        assert_eq!(
            Variant::parse("cps4-doctor+rb-chunk=7"),
            Err(VariantError::Value {
                knob: "rb-chunk".into(),
                value: "7".into(),
                values: "none, 128, 64, 128-6c".into()
            })
        );
        assert_eq!(
            Variant::parse("cps4-doctor+se=1"),
            Err(VariantError::Knob("se".into()))
        );
        assert!(matches!(
            Variant::parse("cpa+odf=reversed"),
            Err(VariantError::Base(_))
        ));
        assert!(matches!(
            Variant::parse("cps3-doctor+odf"),
            Err(VariantError::Syntax(_))
        ));
        assert!(matches!(
            Variant::parse("cps3-doctor+odf=reversed+odf=reversed"),
            Err(VariantError::Twice(_))
        ));
        // Order-insensitive, model values dropped.
        assert_eq!(
            Variant::parse("cps3-doctor+rb-chunk=64+odf=reversed+pad=none")
                .unwrap()
                .name(),
            "cps3-doctor+odf=reversed+rb-chunk=64"
        );
    }

    #[test]
    fn every_variant_builds_a_card_that_answers() {
        for v in all() {
            let mut card = v.card().unwrap_or_else(|e| panic!("{}: {e}", v.name()));
            card.power_on();
            assert!(!card.atr().is_empty());
        }
    }

    #[test]
    fn fcp_layouts() {
        let fcp = facts::FCP_EF_SN_ICC.to_vec();
        let k = |fcp| Knobs {
            fcp,
            ..Knobs::default()
        };
        assert_eq!(k(FcpLayout::Model).fcp(fcp.clone()), fcp);
        let short = k(FcpLayout::ShortSize).fcp(fcp.clone());
        assert_eq!(&short[..5], [0x62, 0x24, 0x80, 0x01, 0x0C]);
        let s81 = k(FcpLayout::Size81).fcp(fcp.clone());
        assert_eq!(&s81[..4], [0x62, 0x25, 0x81, 0x02]);
        let rev = k(FcpLayout::Reversed).fcp(fcp.clone());
        assert_eq!(&rev[rev.len() - 4..], [0x80, 0x02, 0x00, 0x0C]);
        let se = Knobs {
            user_se: Some(4),
            ..Knobs::default()
        };
        let rules = se.fcp(tlv(&[0x62], &tlv(&[0xA1], &tlv(&[0x8C], &[0x7B, 0x12, 0x00]))));
        assert_eq!(rules, [0x62, 0x07, 0xA1, 0x05, 0x8C, 0x03, 0x7B, 0x14, 0x00]);
    }

    fn card(name: &str) -> Box<dyn EmulatedCard> {
        let mut card = Variant::parse(name).unwrap().card().unwrap();
        card.power_on();
        card
    }

    fn send(card: &mut Box<dyn EmulatedCard>, apdu: &str) -> Vec<u8> {
        card.transmit(&hex::decode(apdu.replace(' ', "")).unwrap())
    }

    /// A transparent EF read whole the T=0 way (`6Cxx` answered with the exact Le).
    fn read_t0(card: &mut Box<dyn EmulatedCard>) -> Vec<u8> {
        let r = send(card, "00 B0 0000 E7");
        match r[..] {
            [0x6C, le] => send(card, &format!("00B00000{le:02X}")),
            _ => r,
        }
    }

    #[test]
    fn knobs_change_what_the_card_answers() {
        // rb-chunk: fewer bytes than asked with 9000, or 6Cxx with the limit.
        let ti = "00 A4 09 0C 06 3F00 0001 5032";
        let mut c = card("cps3-doctor+rb-chunk=64");
        assert_eq!(send(&mut c, ti), [0x90, 0x00]);
        let r = send(&mut c, "00 B0 0000 E7");
        assert_eq!((r.len(), &r[64..]), (66, &[0x90, 0x00][..]));
        let mut c = card("cps3-doctor+rb-chunk=128-6c");
        send(&mut c, ti);
        assert_eq!(send(&mut c, "00 B0 0000 E7"), [0x6C, 0x80]);

        // paths: the ODF names the directories by FID alone.
        let odf = "00 A4 09 0C 06 3F00 0001 5031";
        let mut c = card("cps3-doctor+paths=relative+odf=reversed+extra-records=yes");
        send(&mut c, odf);
        let content = read_t0(&mut c);
        assert_eq!(&content[..8], [0xA1, 0x06, 0x30, 0x04, 0x04, 0x02, 0x70, 0x04]);
        let mut c = card("cps3-doctor");
        send(&mut c, odf);
        assert_eq!(
            &read_t0(&mut c)[..10],
            [0xA8, 0x0A, 0x30, 0x08, 0x04, 0x06, 0x3F, 0x00, 0x00, 0x01]
        );

        // pad and extra-tags: the PrKDF entries carry the unknown element, the EF is longer.
        let mut c = card("cps3-doctor+fids=swapped+pad=FF+extra-tags=yes");
        send(&mut c, "00 A4 09 0C 06 3F00 0001 7006");
        let prkdf = read_t0(&mut c);
        assert!(
            prkdf.windows(3).any(|w| w == UNKNOWN_ELEMENT),
            "{}",
            hex::encode(&prkdf)
        );
        let fcp = send(&mut c, "00 A4 09 04 06 3F00 0001 7006");
        let fcp = send(&mut c, &format!("00C00000{:02X}", fcp[1]));
        let size = usize::from(u16::from_be_bytes([fcp[4], fcp[5]]));
        let tail = send(&mut c, &format!("00B0{:04X}{PAD_LEN:02X}", size - PAD_LEN));
        assert_eq!(tail, [vec![0xFF; PAD_LEN], vec![0x90, 0x00]].concat());

        // fcp: the size in tag 81.
        let mut c = card("cps3-doctor+fcp=size81");
        assert_eq!(send(&mut c, "00 A4 09 04 04 3F00 D003"), [0x61, 0x27]);
        assert_eq!(
            &send(&mut c, "00 C0 0000 27")[..6],
            [0x62, 0x25, 0x81, 0x02, 0x00, 0x0C]
        );

        // resp on T=1: 61xx even with Le; strict: no data without Le.
        let chipdoc = "01 A4 04 00 08 8025000001FF0100";
        let mut c = card("cps4-doctor+resp=61xx");
        assert_eq!(send(&mut c, &format!("{chipdoc} 00"))[0], 0x61);
        let mut c = card("cps4-doctor+resp=strict");
        assert_eq!(send(&mut c, chipdoc), [0x90, 0x00]);
        let mut c = card("cps4-doctor");
        assert_eq!(send(&mut c, chipdoc)[0], 0x6F);

        // se: the key SDO's SCBs name SE #4, whose CRT is served there and no longer in #2.
        let mut c = card("cps3-doctor+se=4");
        assert_eq!(send(&mut c, "00 A4 09 0C 02 3F00"), [0x90, 0x00]);
        let se = |n: u8| format!("00 CB 3F FF 0A 4D 08 70 06 BF FB {n:02X} 02 7B 80");
        assert_eq!(send(&mut c, &se(2)), [0x6A, 0x88]);
        assert_eq!(send(&mut c, &se(4))[0], 0x61);
    }

    #[test]
    fn get_response_limit() {
        use crate::apdu::Command;
        use crate::link::{Link, Protocol, Reply, Step};
        let knobs = Knobs {
            get_response_limit: Some(64),
            ..Knobs::default()
        };
        let mut link = Link::new(None, &knobs);
        let cmd = Command::parse(&[0x00, 0xCB, 0x3F, 0xFF, 0x01, 0x00]).unwrap();
        assert_eq!(
            link.after(Protocol::T0, &cmd, Reply::data(vec![7; 200])),
            [0x61, 200]
        );
        let gr = Command::parse(&[0x00, 0xC0, 0x00, 0x00, 0xC8]).unwrap();
        let Step::Answer(r) = link.before(Protocol::T0, gr, |_| false, |c| c == 0) else {
            panic!("GET RESPONSE not answered by the link");
        };
        assert_eq!((r.len(), &r[64..]), (66, &[0x61, 136][..]));
    }
}
