//! BER-TLV as ISO 7816-4 uses it (X.690 tag and length rules), without allocation or recursion.
//!
//! - Tags of 1 to 4 bytes (`5A`, `7F 41`, `BF 81 01`), kept as a big-endian `u32` (`0xBF8101`).
//! - Lengths in short form (`00`–`7F`) or long form `81`–`84`; the indefinite form `80` is refused,
//!   as is any length reaching past the input.
//! - `00` and `FF` bytes before, between and after elements are padding and are skipped
//!   (ISO 7816-4 §5.2.2.1); erased EF content is padded that way.
//! - No function here panics, whatever the input; nesting is walked iteratively, and at most
//!   [`MAX_DEPTH`] levels deep.
//!
//! ```
//! use cpx_apdu::tlv;
//!
//! // docs/card-spec.md §3.2: real CPS3 reply to GET DATA of the PIN counters.
//! let reply = [
//!     0x70, 0x16, 0xBF, 0x81, 0x01, 0x12, 0xA0, 0x10, 0x9A, 0x01, 0x03, 0x9B, 0x01, 0x03,
//!     0xA1, 0x08, 0x8C, 0x06, 0xF3, 0x00, 0x00, 0x13, 0xFF, 0x00,
//! ];
//! let left = tlv::find_path(&reply, &[0x70, 0xBF8101, 0xA0, 0x9B])?;
//! assert_eq!(left.map(|t| t.value), Some(&[0x03][..]));
//! assert_eq!(tlv::encode(0x9B, &[0x03]), [0x9B, 0x01, 0x03]);
//! # Ok::<(), cpx_apdu::TlvError>(())
//! ```

pub use crate::error::TlvError;

/// Deepest nesting walked by [`find_path`] and [`validate`].
pub const MAX_DEPTH: usize = 16;

/// Longest tag accepted, in bytes (it must fit the `u32` of [`Tlv::tag`]).
const MAX_TAG_LEN: usize = 4;
/// Longest long-form length field accepted, in bytes after the `8x` byte.
const MAX_LEN_BYTES: usize = 4;

/// One BER-TLV element, borrowing from the parsed input.
///
/// ```
/// use cpx_apdu::tlv::{self, Tlv};
///
/// // docs/card-notes.md §3: EF.SN.ICC.
/// let sn = [0x5A, 0x0A, 0x80, 0x25, 0x00, 0x00, 0x01, 0x99, 0x21, 0x38, 0x45, 0x0F];
/// let pan: Tlv<'_> = tlv::find(&sn, 0x5A)?.expect("tag 5A is there");
/// assert_eq!(pan.value, &sn[2..]);
/// assert_eq!(pan.raw, &sn[..]);
/// assert!(!pan.is_constructed());
/// # Ok::<(), tlv::TlvError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tlv<'a> {
    /// The tag bytes as a big-endian number: `5A` → `0x5A`, `BF 81 01` → `0xBF8101`.
    pub tag: u32,
    /// The value field.
    pub value: &'a [u8],
    /// The whole element: tag, length and value.
    pub raw: &'a [u8],
}

impl<'a> Tlv<'a> {
    /// `true` when bit 6 (`0x20`) of the first tag byte is set: the value is itself BER-TLV.
    pub fn is_constructed(&self) -> bool {
        first_tag_byte(self.tag) & 0x20 != 0
    }

    /// The elements inside a constructed element; nothing for a primitive one.
    ///
    /// Error offsets are relative to [`Tlv::value`].
    pub fn children(&self) -> TlvIter<'a> {
        let input: &'a [u8] = if self.is_constructed() { self.value } else { &[] };
        TlvIter::new(input)
    }

    /// The first child with tag `tag` (see [`find`]); `None` for a primitive element.
    ///
    /// # Errors
    /// The first [`TlvError`] met in the children before the match.
    pub fn find(&self, tag: u32) -> Result<Option<Tlv<'a>>, TlvError> {
        first_with_tag(self.children(), tag).map(|found| found.map(|(_, tlv)| tlv))
    }

    /// The value as a non-negative INTEGER (X.690 §8.3) that fits a `u32`; leading zero bytes
    /// are accepted (BER).
    ///
    /// ```
    /// use cpx_apdu::{TlvError, tlv};
    ///
    /// let t = |b: &'static [u8]| tlv::parse_all(b).unwrap()[0];
    /// assert_eq!(t(&[0x02, 0x02, 0x08, 0x00]).uint(), Ok(2048));
    /// assert_eq!(t(&[0x02, 0x02, 0x00, 0x81]).uint(), Ok(0x81));
    /// assert_eq!(t(&[0x02, 0x01, 0x80]).uint(), Err(TlvError::NotUnsigned));
    /// assert_eq!(t(&[0x02, 0x05, 1, 2, 3, 4, 5]).uint(), Err(TlvError::IntegerTooLarge));
    /// ```
    ///
    /// # Errors
    /// [`TlvError::NotUnsigned`] for an empty or negative value, [`TlvError::IntegerTooLarge`]
    /// past 32 bits.
    pub fn uint(&self) -> Result<u32, TlvError> {
        match self.value.first() {
            Some(first) if first & 0x80 == 0 => {}
            _ => return Err(TlvError::NotUnsigned),
        }
        let start = self
            .value
            .iter()
            .position(|b| *b != 0)
            .unwrap_or(self.value.len());
        let digits = &self.value[start..];
        if digits.len() > 4 {
            return Err(TlvError::IntegerTooLarge);
        }
        Ok(digits.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b)))
    }

    /// The value as a BIT STRING's first 32 bits (X.690 §8.6), numbered as PKCS#15 and ISO 7816-15
    /// number flags: bit 0 is the most significant bit of the first content byte.
    ///
    /// Tolerant, never an error: an "unused bits" byte above 7 or with no content byte after it
    /// (the real CPS3's non-DER `03 01 08` and `03 02 08 00`, OpenSC GH#2224) is read as "no
    /// unused bits", an empty value as no bit set, and bits past 32 are ignored.
    ///
    /// ```
    /// use cpx_apdu::tlv;
    ///
    /// let t = |b: &'static [u8]| tlv::parse_all(b).unwrap()[0];
    /// assert_eq!(t(&[0x03, 0x02, 0x06, 0xC0]).bit_flags(), 0b11);
    /// assert_eq!(t(&[0x03, 0x03, 0x04, 0x0C, 0x10]).bit_flags(), (1 << 4) | (1 << 5) | (1 << 11));
    /// assert_eq!(t(&[0x03, 0x02, 0x08, 0x00]).bit_flags(), 0); // CPS3
    /// ```
    pub fn bit_flags(&self) -> u32 {
        let Some((&unused, content)) = self.value.split_first() else {
            return 0;
        };
        let unused = if unused > 7 { 0 } else { unused };
        let mut out = 0u32;
        for (i, byte) in content.iter().enumerate().take(4) {
            let mut b = *byte;
            if i + 1 == content.len() {
                b &= 0xFFu8 << unused;
            }
            for bit in 0..8 {
                if b & (0x80 >> bit) != 0 {
                    out |= 1 << (i * 8 + bit);
                }
            }
        }
        out
    }
}

/// Iterator over the consecutive elements of a byte slice, skipping `00`/`FF` padding.
///
/// Yields `Err` once, for the first malformed element, then stops.
///
/// ```
/// use cpx_apdu::tlv::TlvIter;
///
/// let tags: Vec<u32> = TlvIter::new(&[0x9A, 0x01, 0x03, 0x00, 0x9B, 0x01, 0x03, 0xFF])
///     .map(|t| t.map(|t| t.tag))
///     .collect::<Result<_, _>>()?;
/// assert_eq!(tags, [0x9A, 0x9B]);
/// # Ok::<(), cpx_apdu::TlvError>(())
/// ```
#[derive(Clone, Debug)]
pub struct TlvIter<'a> {
    input: &'a [u8],
    pos: usize,
    /// Added to every error offset (position of `input` in the caller's buffer).
    base: usize,
    done: bool,
}

impl<'a> TlvIter<'a> {
    /// Iterates over the elements of `input`.
    pub fn new(input: &'a [u8]) -> Self {
        Self::with_base(input, 0)
    }

    fn with_base(input: &'a [u8], base: usize) -> Self {
        TlvIter {
            input,
            pos: 0,
            base,
            done: false,
        }
    }

    /// The next element with its offset in the caller's buffer.
    fn next_at(&mut self) -> Option<Result<(usize, Tlv<'a>), TlvError>> {
        if self.done {
            return None;
        }
        while matches!(self.input.get(self.pos), Some(0x00 | 0xFF)) {
            self.pos += 1;
        }
        if self.pos >= self.input.len() {
            self.done = true;
            return None;
        }
        let start = self.pos;
        match parse_one(self.input, start) {
            Ok((tlv, end)) => {
                self.pos = end;
                Some(Ok((self.base + start, tlv)))
            }
            Err(err) => {
                self.done = true;
                Some(Err(err.shifted(self.base)))
            }
        }
    }
}

impl<'a> Iterator for TlvIter<'a> {
    type Item = Result<Tlv<'a>, TlvError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_at().map(|item| item.map(|(_, tlv)| tlv))
    }
}

impl std::iter::FusedIterator for TlvIter<'_> {}

/// Parses every top-level element of `input`.
///
/// # Errors
/// The first [`TlvError`] met.
pub fn parse_all(input: &[u8]) -> Result<Vec<Tlv<'_>>, TlvError> {
    TlvIter::new(input).collect()
}

/// The first top-level element of `input` with tag `tag`; elements after it are not parsed.
///
/// # Errors
/// The first [`TlvError`] met before the match.
pub fn find(input: &[u8], tag: u32) -> Result<Option<Tlv<'_>>, TlvError> {
    first_with_tag(TlvIter::new(input), tag).map(|found| found.map(|(_, tlv)| tlv))
}

/// Follows `path` down constructed elements: `path[0]` among the top-level elements of `input`,
/// `path[1]` among its children, and so on. `None` when a step is missing or when a step other
/// than the last is primitive; `None` for an empty path.
///
/// # Errors
/// [`TlvError::TooDeep`] for a path longer than [`MAX_DEPTH`]; otherwise the first [`TlvError`]
/// met on the way, with its offset in `input`.
pub fn find_path<'a>(input: &'a [u8], path: &[u32]) -> Result<Option<Tlv<'a>>, TlvError> {
    if path.len() > MAX_DEPTH {
        return Err(TlvError::TooDeep);
    }
    let mut scope = TlvIter::new(input);
    let mut found = None;
    for &tag in path {
        if let Some(parent) = found.take() {
            let (start, parent): (usize, Tlv<'a>) = parent;
            if !parent.is_constructed() {
                return Ok(None);
            }
            scope = TlvIter::with_base(parent.value, value_offset(start, &parent));
        }
        match first_with_tag(scope.clone(), tag)? {
            Some(hit) => found = Some(hit),
            None => return Ok(None),
        }
    }
    Ok(found.map(|(_, tlv)| tlv))
}

/// Checks that `input` is well-formed BER-TLV, the contents of every constructed element included,
/// at most [`MAX_DEPTH`] levels deep.
///
/// # Errors
/// The first [`TlvError`] met (offsets in `input`), or [`TlvError::TooDeep`].
pub fn validate(input: &[u8]) -> Result<(), TlvError> {
    // Explicit stack instead of recursion: depth is bounded whatever the input.
    let mut stack = vec![TlvIter::new(input)];
    while let Some(iter) = stack.last_mut() {
        match iter.next_at() {
            None => {
                stack.pop();
            }
            Some(Err(err)) => return Err(err),
            Some(Ok((start, tlv))) => {
                if tlv.is_constructed() {
                    if stack.len() >= MAX_DEPTH {
                        return Err(TlvError::TooDeep);
                    }
                    stack.push(TlvIter::with_base(tlv.value, value_offset(start, &tlv)));
                }
            }
        }
    }
    Ok(())
}

/// Encodes one element with the shortest length form. The tag is written as its big-endian bytes
/// without leading zero bytes (`0x7F41` → `7F 41`), so it must be a well-formed tag.
///
/// ```
/// use cpx_apdu::tlv;
///
/// assert_eq!(tlv::encode(0x7F41, &[]), [0x7F, 0x41, 0x00]);
/// assert_eq!(&tlv::encode(0x5F2D, &[0x66; 200])[..4], &[0x5F, 0x2D, 0x81, 0xC8]);
/// ```
pub fn encode(tag: u32, value: &[u8]) -> Vec<u8> {
    let tag_bytes = tag.to_be_bytes();
    let tag_len = tag_bytes.iter().skip_while(|&&b| b == 0).count().max(1);
    let len_bytes = value.len().to_be_bytes();
    let len_len = len_bytes.iter().skip_while(|&&b| b == 0).count();
    let mut out = Vec::with_capacity(tag_len + 1 + len_len + value.len());
    out.extend(tag_bytes.iter().skip(tag_bytes.len() - tag_len));
    if value.len() < 0x80 {
        out.extend(len_bytes.last());
    } else {
        // len_len ≤ size_of::<usize>() ≤ 8, so this fits the low 7 bits.
        out.push(0x80 | len_len as u8);
        out.extend(len_bytes.iter().skip(len_bytes.len() - len_len));
    }
    out.extend_from_slice(value);
    out
}

fn first_tag_byte(tag: u32) -> u8 {
    tag.to_be_bytes().into_iter().find(|&b| b != 0).unwrap_or(0)
}

/// Offset of `tlv.value` in the caller's buffer, `start` being the offset of `tlv.raw`.
fn value_offset(start: usize, tlv: &Tlv<'_>) -> usize {
    start + (tlv.raw.len() - tlv.value.len())
}

fn first_with_tag<'a>(mut iter: TlvIter<'a>, tag: u32) -> Result<Option<(usize, Tlv<'a>)>, TlvError> {
    while let Some(item) = iter.next_at() {
        let (start, tlv) = item?;
        if tlv.tag == tag {
            return Ok(Some((start, tlv)));
        }
    }
    Ok(None)
}

/// Parses the element starting at `input[start]`; returns it and the offset just past it.
/// Error offsets are relative to `input`.
fn parse_one(input: &[u8], start: usize) -> Result<(Tlv<'_>, usize), TlvError> {
    let truncated = TlvError::Truncated { offset: start };
    let mut pos = start;
    let next_byte = |pos: &mut usize| {
        let byte = input.get(*pos).copied();
        *pos += 1;
        byte.ok_or(truncated.clone())
    };

    // Tag (X.690 §8.1.2): low 5 bits all set = more bytes follow, each with bit 8 set but the last.
    let first = next_byte(&mut pos)?;
    let mut tag = u32::from(first);
    if first & 0x1F == 0x1F {
        loop {
            if pos - start == MAX_TAG_LEN {
                return Err(TlvError::TagTooLong { offset: start });
            }
            let byte = next_byte(&mut pos)?;
            tag = (tag << 8) | u32::from(byte);
            if byte & 0x80 == 0 {
                break;
            }
        }
    }

    // Length (X.690 §8.1.3): short form, or 8n followed by n bytes.
    let len_offset = pos;
    let len = match next_byte(&mut pos)? {
        short @ 0x00..=0x7F => usize::from(short),
        0x80 => return Err(TlvError::IndefiniteLength { offset: len_offset }),
        long => {
            let count = usize::from(long & 0x7F);
            if count > MAX_LEN_BYTES {
                return Err(TlvError::LengthTooLarge { offset: len_offset });
            }
            let bytes = input.get(pos..pos + count).ok_or(truncated.clone())?;
            pos += count;
            let len = bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
            usize::try_from(len).map_err(|_| TlvError::LengthTooLarge { offset: len_offset })?
        }
    };

    let end = pos.checked_add(len).ok_or(truncated.clone())?;
    let value = input.get(pos..end).ok_or(truncated.clone())?;
    let raw = input.get(start..end).ok_or(truncated)?;
    Ok((Tlv { tag, value, raw }, end))
}

impl TlvError {
    /// The same error with its offset moved by `base`.
    fn shifted(self, base: usize) -> Self {
        match self {
            TlvError::Truncated { offset } => TlvError::Truncated {
                offset: offset + base,
            },
            TlvError::IndefiniteLength { offset } => TlvError::IndefiniteLength {
                offset: offset + base,
            },
            TlvError::LengthTooLarge { offset } => TlvError::LengthTooLarge {
                offset: offset + base,
            },
            TlvError::TagTooLong { offset } => TlvError::TagTooLong {
                offset: offset + base,
            },
            e @ (TlvError::TooDeep | TlvError::NotUnsigned | TlvError::IntegerTooLarge) => e,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hex_literal::hex;

    const PIN_REPLY: [u8; 24] =
        hex!("70 16 BF 81 01 12 A0 10 9A 01 03 9B 01 03 A1 08 8C 06 F3 00 00 13 FF 00");
    const EF_SN_ICC: [u8; 12] = hex!("5A 0A 80 25 00 00 01 99 21 38 45 0F");

    #[test]
    fn real_pin_counter_reply() {
        let left = find_path(&PIN_REPLY, &[0x70, 0xBF8101, 0xA0, 0x9B])
            .unwrap()
            .unwrap();
        assert_eq!(left.tag, 0x9B);
        assert_eq!(left.value, &[0x03]);
        assert_eq!(left.raw, &hex!("9B 01 03"));
        let max = find_path(&PIN_REPLY, &[0x70, 0xBF8101, 0xA0, 0x9A])
            .unwrap()
            .unwrap();
        assert_eq!(max.value, &[0x03]);
        let acl = find_path(&PIN_REPLY, &[0x70, 0xBF8101, 0xA0, 0xA1, 0x8C])
            .unwrap()
            .unwrap();
        assert_eq!(acl.value, &hex!("F3 00 00 13 FF 00"));
        // The FF 00 inside 8C is value, not padding.
        assert_eq!(
            find_path(&PIN_REPLY, &[0x70, 0xBF8101, 0xA0, 0x9D]).unwrap(),
            None
        );

        let top = parse_all(&PIN_REPLY).unwrap();
        assert_eq!(top.len(), 1);
        assert!(top[0].is_constructed());
        let sdo = top[0].find(0xBF8101).unwrap().unwrap();
        assert!(sdo.is_constructed());
        assert_eq!(sdo.value.len(), 0x12);
        let a0: Vec<u32> = sdo
            .find(0xA0)
            .unwrap()
            .unwrap()
            .children()
            .map(|t| t.unwrap().tag)
            .collect();
        assert_eq!(a0, [0x9A, 0x9B, 0xA1]);
        validate(&PIN_REPLY).unwrap();
    }

    #[test]
    fn ef_sn_icc() {
        let pan = find(&EF_SN_ICC, 0x5A).unwrap().unwrap();
        assert_eq!(pan.value, &hex!("80 25 00 00 01 99 21 38 45 0F"));
        assert!(!pan.is_constructed());
        assert_eq!(pan.children().count(), 0);
        assert_eq!(pan.find(0x80).unwrap(), None);
        assert_eq!(find(&EF_SN_ICC, 0x5B).unwrap(), None);
        // A primitive step in the middle of a path finds nothing.
        assert_eq!(find_path(&EF_SN_ICC, &[0x5A, 0x80]).unwrap(), None);
    }

    #[test]
    fn multi_byte_tags() {
        let data = hex!("7F 41 06 80 01 08 81 01 04 5F 2D 02 66 72 BF 90 01 00");
        let all = parse_all(&data).unwrap();
        let tags: Vec<u32> = all.iter().map(|t| t.tag).collect();
        assert_eq!(tags, [0x7F41, 0x5F2D, 0xBF9001]);
        assert!(all[0].is_constructed());
        assert!(!all[1].is_constructed());
        assert!(all[2].is_constructed());
        assert_eq!(all[1].value, b"fr");
        assert_eq!(find_path(&data, &[0x7F41, 0x81]).unwrap().unwrap().value, &[0x04]);
        // 4-byte tag is the longest accepted.
        assert_eq!(parse_all(&hex!("DF 81 82 03 01 AA")).unwrap()[0].tag, 0xDF818203);
        assert_eq!(
            parse_all(&hex!("DF 81 82 83 04 01 AA")),
            Err(TlvError::TagTooLong { offset: 0 })
        );
    }

    #[test]
    fn long_form_lengths() {
        for (len, header) in [
            (0x7F_usize, &hex!("04 7F")[..]),
            (0x80, &hex!("04 81 80")),
            (0xFF, &hex!("04 81 FF")),
            (0x100, &hex!("04 82 01 00")),
            (0xFFFF, &hex!("04 82 FF FF")),
            (0x10000, &hex!("04 83 01 00 00")),
        ] {
            let value = vec![0xA5; len];
            let encoded = encode(0x04, &value);
            assert_eq!(&encoded[..header.len()], header, "len {len}");
            let parsed = parse_all(&encoded).unwrap();
            assert_eq!(parsed.len(), 1);
            assert_eq!(parsed[0].value.len(), len);
            assert_eq!(parsed[0].raw, &encoded[..]);
        }
        // Non-minimal long forms are accepted (BER, not DER).
        assert_eq!(parse_all(&hex!("04 81 01 AA")).unwrap()[0].value, &[0xAA]);
        assert_eq!(
            parse_all(&hex!("04 84 00 00 00 01 AA")).unwrap()[0].value,
            &[0xAA]
        );
    }

    #[test]
    fn malformed_inputs() {
        assert_eq!(
            parse_all(&hex!("5A 0A 80 25")),
            Err(TlvError::Truncated { offset: 0 })
        );
        assert_eq!(
            parse_all(&hex!("9A 01 03 5A")),
            Err(TlvError::Truncated { offset: 3 })
        );
        assert_eq!(
            parse_all(&hex!("9A 01 03 7F")),
            Err(TlvError::Truncated { offset: 3 })
        );
        assert_eq!(
            parse_all(&hex!("9A 01 03 7F 41")),
            Err(TlvError::Truncated { offset: 3 })
        );
        assert_eq!(
            parse_all(&hex!("04 82 01")),
            Err(TlvError::Truncated { offset: 0 })
        );
        assert_eq!(
            parse_all(&hex!("30 80 04 00 00 00")),
            Err(TlvError::IndefiniteLength { offset: 1 })
        );
        assert_eq!(
            parse_all(&hex!("9A 01 03 04 85 00 00 00 00 01")),
            Err(TlvError::LengthTooLarge { offset: 4 })
        );
        assert_eq!(
            parse_all(&hex!("04 FF")),
            Err(TlvError::LengthTooLarge { offset: 1 })
        );
        assert_eq!(
            parse_all(&hex!("04 84 FF FF FF FF")),
            Err(TlvError::Truncated { offset: 0 })
        );
    }

    #[test]
    fn iterator_stops_after_first_error() {
        let mut iter = TlvIter::new(&hex!("9A 01 03 5A 05 01 9B 01 03"));
        assert_eq!(iter.next().map(|r| r.map(|t| t.tag)), Some(Ok(0x9A)));
        assert_eq!(
            iter.next().map(|r| r.map(|t| t.tag)),
            Some(Err(TlvError::Truncated { offset: 3 }))
        );
        assert_eq!(iter.next(), None);
        assert_eq!(iter.next(), None);
    }

    #[test]
    fn find_reports_errors_before_the_match_only() {
        assert_eq!(
            find(&hex!("9A 01 03 9B 05"), 0x9A).unwrap().map(|t| t.value),
            Some(&[3u8][..])
        );
        assert_eq!(
            find(&hex!("9B 05 9A 01 03"), 0x9A),
            Err(TlvError::Truncated { offset: 0 })
        );
    }

    #[test]
    fn nested_error_offsets_are_absolute() {
        // 70 { A0 { 9A 05 <truncated> } }
        let data = hex!("70 05 A0 03 9A 05 01");
        assert_eq!(
            find_path(&data, &[0x70, 0xA0, 0x9A]),
            Err(TlvError::Truncated { offset: 4 })
        );
        assert_eq!(validate(&data), Err(TlvError::Truncated { offset: 4 }));
        // Via children() the offset is relative to the parent's value.
        let a0 = find_path(&data, &[0x70, 0xA0]).unwrap().unwrap();
        assert_eq!(a0.children().next(), Some(Err(TlvError::Truncated { offset: 0 })));
    }

    #[test]
    fn padding_is_skipped() {
        let data = hex!("00 00 9A 01 03 FF FF 9B 01 02 00 FF 00");
        let tags: Vec<u32> = parse_all(&data).unwrap().iter().map(|t| t.tag).collect();
        assert_eq!(tags, [0x9A, 0x9B]);
        assert_eq!(parse_all(&[0xFF; 32]).unwrap(), []);
        assert_eq!(parse_all(&[]).unwrap(), []);
    }

    #[test]
    fn path_limits() {
        assert_eq!(find_path(&PIN_REPLY, &[]).unwrap(), None);
        assert_eq!(
            find_path(&PIN_REPLY, &[0x70; MAX_DEPTH + 1]),
            Err(TlvError::TooDeep)
        );
        // MAX_DEPTH nested A0s are fine, one more is too deep for validate().
        let mut deep = encode(0x80, &[1]);
        for _ in 0..MAX_DEPTH - 1 {
            deep = encode(0xA0, &deep);
        }
        validate(&deep).unwrap();
        let path: Vec<u32> = std::iter::repeat_n(0xA0, MAX_DEPTH - 1).chain([0x80]).collect();
        assert_eq!(find_path(&deep, &path).unwrap().unwrap().value, &[1]);
        assert_eq!(validate(&encode(0xA0, &deep)), Err(TlvError::TooDeep));
    }

    #[test]
    fn encode_tags() {
        assert_eq!(encode(0x9B, &[3]), hex!("9B 01 03"));
        assert_eq!(encode(0x7F41, &[]), hex!("7F 41 00"));
        assert_eq!(encode(0xBF8101, &hex!("A0 00")), hex!("BF 81 01 02 A0 00"));
        assert_eq!(encode(0xDF818203, &[]), hex!("DF 81 82 03 00"));
        assert_eq!(encode(0, &[]), hex!("00 00"));
        let nested = encode(0x70, &encode(0xBF8101, &encode(0xA0, &encode(0x9B, &[3]))));
        assert_eq!(nested, hex!("70 09 BF 81 01 05 A0 03 9B 01 03"));
    }
}
