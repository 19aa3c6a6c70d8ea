//! PIN and PUK objects (CHV SDOs `BF 81 0r`): counters, verification state, replies (docs/card-spec.md §3).

use crate::apdu::sw;
use crate::choices;
use crate::image::PinImage;

/// How a padded object's value travels and is stored: `stored` bytes, the value followed by
/// `pad_char` (AODF needs-padding, storedLength, padChar; the CPS3, [`crate::facts::AODF_CPS3`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Padding {
    pub(crate) stored: u8,
    pub(crate) pad_char: u8,
}

/// One CHV object. Counters are non-volatile; `verified` is volatile.
///
/// `value` is the secret itself (unpadded digits, as in `card.toml` and the saved state); a padded
/// object compares the padded reference data, so every block it is given must be exactly
/// `stored` bytes long.
#[derive(Debug, Clone)]
pub(crate) struct Pin {
    pub(crate) reference: u8,
    pub(crate) value: Vec<u8>,
    pub(crate) max_tries: u8,
    pub(crate) tries_left: u8,
    pub(crate) usage_left: Option<u16>,
    pub(crate) min_len: u8,
    pub(crate) max_len: u8,
    pub(crate) padding: Option<Padding>,
    pub(crate) verified: bool,
}

impl Pin {
    pub(crate) fn new(reference: u8, image: &PinImage, padding: Option<Padding>) -> Self {
        Self {
            reference,
            value: image.value.clone(),
            max_tries: image.max_tries,
            tries_left: image.tries_left,
            usage_left: image.usage_left,
            min_len: image.min_len,
            max_len: image.max_len,
            padding,
            verified: false,
        }
    }

    /// The reference data the card compares: the value, padded when the object is padded.
    fn reference_data(&self) -> Vec<u8> {
        let mut v = self.value.clone();
        if let Some(p) = self.padding {
            v.resize(usize::from(p.stored).max(v.len()), p.pad_char);
        }
        v
    }

    /// Length of one value block in a command: the stored length for a padded object, else the
    /// current value's length (how an unpadded `old ‖ new` is split).
    pub(crate) fn block_len(&self) -> usize {
        match self.padding {
            Some(p) => usize::from(p.stored),
            None => self.value.len(),
        }
    }

    /// Blocked: no try left, or (PUK) no use left (the Cryptolib reads 9D = 0 as blocked, §3.2).
    pub(crate) fn blocked(&self) -> bool {
        self.tries_left == 0 || self.usage_left == Some(0)
    }

    /// The status of an empty VERIFY: 9000 when verified, 6983 when blocked, else 63Cx.
    pub(crate) fn status(&self) -> u16 {
        if self.blocked() {
            sw::BLOCKED
        } else if self.verified {
            sw::OK
        } else {
            0x63C0 | u16::from(self.tries_left)
        }
    }

    /// Compare a candidate; updates the counter. Blocked objects answer 6983 and do not compare;
    /// a padded object given a block that is not its stored length answers
    /// [`choices::PIN_WRONG_LENGTH_SW`] without touching the counter.
    pub(crate) fn verify(&mut self, candidate: &[u8]) -> u16 {
        if self.blocked() {
            return sw::BLOCKED;
        }
        if self
            .padding
            .is_some_and(|p| candidate.len() != usize::from(p.stored))
        {
            return choices::PIN_WRONG_LENGTH_SW;
        }
        if candidate == self.reference_data().as_slice() {
            self.tries_left = self.max_tries;
            self.verified = true;
            sw::OK
        } else {
            self.verified = false;
            self.tries_left = self.tries_left.saturating_sub(1);
            // The last wrong try answers 63C0; the next command sees 6983 (IAS-ECC practice).
            0x63C0 | u16::from(self.tries_left)
        }
    }

    /// Whether `value` (unpadded) is an acceptable value: length within [min, max]; for a padded
    /// (CPS3) object also ASCII digits without the pad byte (asciiNumeric,
    /// [`choices::NEW_PIN_DIGITS_ONLY`]).
    pub(crate) fn acceptable(&self, value: &[u8]) -> bool {
        let len_ok = (usize::from(self.min_len)..=usize::from(self.max_len)).contains(&value.len());
        let digits_ok =
            self.padding.is_none() || !choices::NEW_PIN_DIGITS_ONLY || value.iter().all(u8::is_ascii_digit);
        len_ok && digits_ok
    }

    /// A new value as given in CHANGE REFERENCE DATA / RESET RETRY COUNTER: for a padded object a
    /// block of exactly the stored length, the value then pad bytes only; the value must be
    /// [`acceptable`](Self::acceptable). `None` = refuse (6A80, no try consumed).
    pub(crate) fn new_value(&self, block: &[u8]) -> Option<Vec<u8>> {
        let value = match self.padding {
            Some(p) => {
                if block.len() != usize::from(p.stored) {
                    return None;
                }
                let end = block.iter().position(|b| *b == p.pad_char).unwrap_or(block.len());
                let (value, pad) = block.split_at(end);
                if !pad.iter().all(|b| *b == p.pad_char) {
                    return None;
                }
                value
            }
            None => block,
        };
        self.acceptable(value).then(|| value.to_vec())
    }

    /// Set a new value and reset the try counter (after CHANGE or RESET RETRY COUNTER).
    pub(crate) fn set(&mut self, new: &[u8]) {
        self.value = new.to_vec();
        self.tries_left = self.max_tries;
    }

    /// The DOCP reply body `A0 { 9A max, 9B left, [9D usage], A1 { 8C … } }` (docs/card-spec.md §3.2, §9).
    pub(crate) fn docp(&self, acl: &[u8], usage_one_byte: bool) -> Vec<u8> {
        let mut inner = vec![0x9A, 0x01, self.max_tries, 0x9B, 0x01, self.tries_left];
        match (self.usage_left, u8::try_from(self.usage_left.unwrap_or(0))) {
            // "usage counter, 1 or 2 bytes" (docs/card-spec.md §3.2): one byte when it fits and the
            // variant matrix's `usage-len=1` asks.
            (Some(_), Ok(u)) if usage_one_byte => inner.extend([0x9D, 0x01, u]),
            (Some(u), _) => {
                inner.extend([0x9D, 0x02]);
                inner.extend(u.to_be_bytes());
            }
            (None, _) => {}
        }
        inner.extend(crate::tlv::tlv(&[0xA1], acl));
        crate::tlv::tlv(&[0xA0], &inner)
    }

    /// The policy reply body `7F41 { 80 max, 81 min }` (docs/card-spec.md §9). `80` is the length of the
    /// reference data the card receives: the stored length of a padded object
    /// ([`choices::PIN_POLICY_MAX_IS_STORED_LEN`]).
    pub(crate) fn policy(&self) -> Vec<u8> {
        let max = match self.padding {
            Some(p) if choices::PIN_POLICY_MAX_IS_STORED_LEN => p.stored,
            _ => self.max_len,
        };
        crate::tlv::tlv(&[0x7F, 0x41], &[0x80, 0x01, max, 0x81, 0x01, self.min_len])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pin() -> Pin {
        Pin::new(
            1,
            &PinImage {
                value: b"1234".to_vec(),
                max_tries: 3,
                tries_left: 3,
                usage_left: None,
                min_len: 4,
                max_len: 8,
            },
            None,
        )
    }

    fn padded() -> Pin {
        let mut p = pin();
        p.max_len = 4;
        p.padding = Some(Padding {
            stored: 8,
            pad_char: 0xFF,
        });
        p
    }

    #[test]
    fn padded_pin_compares_the_padded_block_and_refuses_other_lengths() {
        let mut p = padded();
        assert_eq!(p.verify(b"1234"), 0x6700);
        assert_eq!(p.tries_left, 3);
        assert_eq!(p.verify(b"1234\0\0\0\0"), 0x63C2);
        assert_eq!(p.verify(b"1234\xFF\xFF\xFF\xFF"), 0x9000);
        assert_eq!(p.new_value(b"4321\xFF\xFF\xFF\xFF"), Some(b"4321".to_vec()));
        assert_eq!(p.new_value(b"4321"), None);
        assert_eq!(p.new_value(b"432\xFF\xFF\xFF\xFF\xFF"), None);
        assert_eq!(p.new_value(b"43210\xFF\xFF\xFF"), None);
        assert_eq!(p.new_value(b"43\xFF1\xFF\xFF\xFF\xFF"), None);
        assert_eq!(p.new_value(b"43a1\xFF\xFF\xFF\xFF"), None);
        assert_eq!(
            hex::encode_upper(p.policy()),
            "7F4106800108810104",
            "policy max = stored length"
        );
    }

    #[test]
    fn counts_down_blocks_and_stays_blocked() {
        let mut p = pin();
        assert_eq!(p.status(), 0x63C3);
        assert_eq!(p.verify(b"0000"), 0x63C2);
        assert_eq!(p.verify(b"1234"), 0x9000);
        assert_eq!(p.status(), 0x9000);
        assert_eq!(p.verify(b"0000"), 0x63C2);
        assert_eq!(p.verify(b"0000"), 0x63C1);
        assert_eq!(p.verify(b"0000"), 0x63C0);
        assert_eq!(p.verify(b"1234"), 0x6983);
        assert_eq!(p.status(), 0x6983);
    }

    #[test]
    fn replies_match_the_real_card() {
        let p = pin();
        let mut body = vec![0xBF, 0x81, 0x01];
        let d = p.docp(&crate::facts::PIN_SDO_ACL, false);
        body.extend(crate::tlv::len_bytes(d.len()));
        body.extend(d);
        let reply = crate::tlv::tlv(&[0x70], &body);
        assert_eq!(
            hex::encode_upper(reply),
            "7016BF810112A0109A01039B0103A1088C06F3000013FF00"
        );
    }
}
