//! Minimal BER-TLV reading and DER writing for the card side.

/// One parsed TLV: raw tag bytes and value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tlv<'a> {
    pub(crate) tag: &'a [u8],
    pub(crate) value: &'a [u8],
}

/// Read one BER-TLV at the start of `input`; returns it and the rest. `None` on malformed input.
pub(crate) fn read(input: &[u8]) -> Option<(Tlv<'_>, &[u8])> {
    let first = *input.first()?;
    let mut tag_len = 1;
    if first & 0x1F == 0x1F {
        loop {
            let b = *input.get(tag_len)?;
            tag_len += 1;
            if b & 0x80 == 0 {
                break;
            }
            if tag_len > 4 {
                return None;
            }
        }
    }
    let tag = &input[..tag_len];
    let l0 = *input.get(tag_len)?;
    let (len, hdr) = match l0 {
        0..=0x7F => (usize::from(l0), tag_len + 1),
        0x81 => (usize::from(*input.get(tag_len + 1)?), tag_len + 2),
        0x82 => {
            let hi = usize::from(*input.get(tag_len + 1)?);
            let lo = usize::from(*input.get(tag_len + 2)?);
            ((hi << 8) | lo, tag_len + 3)
        }
        _ => return None,
    };
    let end = hdr.checked_add(len)?;
    let value = input.get(hdr..end)?;
    Some((Tlv { tag, value }, &input[end..]))
}

/// Read all TLVs of `input`; `None` if any is malformed.
pub(crate) fn read_all(mut input: &[u8]) -> Option<Vec<Tlv<'_>>> {
    let mut out = Vec::new();
    while !input.is_empty() {
        let (t, rest) = read(input)?;
        out.push(t);
        input = rest;
    }
    Some(out)
}

/// Find the first TLV with exactly this tag.
pub(crate) fn find<'a>(tlvs: &[Tlv<'a>], tag: &[u8]) -> Option<&'a [u8]> {
    tlvs.iter().find(|t| t.tag == tag).map(|t| t.value)
}

/// DER length bytes.
pub(crate) fn len_bytes(n: usize) -> Vec<u8> {
    match n {
        0..=0x7F => vec![n as u8],
        0x80..=0xFF => vec![0x81, n as u8],
        _ => vec![0x82, (n >> 8) as u8, n as u8],
    }
}

/// Encode one TLV (tag bytes given raw).
pub(crate) fn tlv(tag: &[u8], value: &[u8]) -> Vec<u8> {
    let mut out = tag.to_vec();
    out.extend(len_bytes(value.len()));
    out.extend_from_slice(value);
    out
}

/// Encode one TLV whose value is the concatenation of `parts`.
pub(crate) fn cons(tag: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    tlv(tag, &parts.concat())
}

/// DER SEQUENCE of `parts`.
pub(crate) fn seq(parts: &[&[u8]]) -> Vec<u8> {
    cons(&[0x30], parts)
}

/// DER UTF8String.
pub(crate) fn utf8(s: &str) -> Vec<u8> {
    tlv(&[0x0C], s.as_bytes())
}

/// DER OCTET STRING.
pub(crate) fn octets(v: &[u8]) -> Vec<u8> {
    tlv(&[0x04], v)
}

/// DER INTEGER of a non-negative value.
pub(crate) fn int(v: u32) -> Vec<u8> {
    let mut bytes: Vec<u8> = v.to_be_bytes().into_iter().skip_while(|b| *b == 0).collect();
    if bytes.first().is_none_or(|b| b & 0x80 != 0) {
        bytes.insert(0, 0);
    }
    tlv(&[0x02], &bytes)
}

/// DER BIT STRING of a named-bit list: bit `i` set when `bits & (1 << i)`, minimal length
/// (X.690 §11.2.2: trailing zero bits removed).
pub(crate) fn named_bits(bits: u32) -> Vec<u8> {
    if bits == 0 {
        return vec![0x03, 0x01, 0x00];
    }
    let highest = 31 - bits.leading_zeros() as usize; // index of the last set bit
    let nbytes = highest / 8 + 1;
    let mut content = vec![0u8; nbytes];
    for i in 0..=highest {
        if bits & (1 << i) != 0 {
            content[i / 8] |= 0x80 >> (i % 8);
        }
    }
    let unused = (7 - highest % 8) as u8;
    let mut v = vec![unused];
    v.extend(content);
    tlv(&[0x03], &v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_bits_match_known_encodings() {
        assert_eq!(named_bits(1 << 1), [0x03, 0x02, 0x06, 0x40]); // compute_signature (docs/card-spec.md §9)
        assert_eq!(named_bits(1 << 9), [0x03, 0x03, 0x06, 0x00, 0x40]); // nonRepudiation
        assert_eq!(named_bits(0b1101), [0x03, 0x02, 0x04, 0xB0]); // accessFlags 0x0D
        assert_eq!(named_bits(0b11), [0x03, 0x02, 0x06, 0xC0]);
    }

    #[test]
    fn reads_multibyte_tags_and_long_lengths() {
        let (t, rest) = read(&[0xBF, 0x81, 0x01, 0x02, 0xA0, 0x80, 0xFF]).unwrap();
        assert_eq!(
            (t.tag, t.value, rest),
            (&[0xBF, 0x81, 0x01][..], &[0xA0, 0x80][..], &[0xFF][..])
        );
        let long = tlv(&[0x04], &[7; 300]);
        assert_eq!(read(&long).unwrap().0.value.len(), 300);
        assert!(read(&[0x04, 0x05, 1]).is_none());
        assert_eq!(int(0x81), [0x02, 0x02, 0x00, 0x81]);
        assert_eq!(int(2048), [0x02, 0x02, 0x08, 0x00]);
        assert_eq!(int(0), [0x02, 0x01, 0x00]);
    }
}
