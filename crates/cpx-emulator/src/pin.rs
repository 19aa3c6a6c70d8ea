//! PIN and PUK objects (CHV SDOs `BF 81 0r`): counters, verification state, replies (spec §3).

use crate::apdu::sw;
use crate::image::PinImage;

/// One CHV object. Counters are non-volatile; `verified` is volatile.
#[derive(Debug, Clone)]
pub(crate) struct Pin {
    pub(crate) reference: u8,
    pub(crate) value: Vec<u8>,
    pub(crate) max_tries: u8,
    pub(crate) tries_left: u8,
    pub(crate) usage_left: Option<u16>,
    pub(crate) min_len: u8,
    pub(crate) max_len: u8,
    pub(crate) verified: bool,
}

impl Pin {
    pub(crate) fn new(reference: u8, image: &PinImage) -> Self {
        Self {
            reference,
            value: image.value.clone(),
            max_tries: image.max_tries,
            tries_left: image.tries_left,
            usage_left: image.usage_left,
            min_len: image.min_len,
            max_len: image.max_len,
            verified: false,
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

    /// Compare a candidate; updates the counter. Blocked objects answer 6983 and do not compare.
    pub(crate) fn verify(&mut self, candidate: &[u8]) -> u16 {
        if self.blocked() {
            return sw::BLOCKED;
        }
        if candidate == self.value.as_slice() {
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

    /// Whether `new` is an acceptable new value (length within the policy).
    pub(crate) fn acceptable(&self, new: &[u8]) -> bool {
        (usize::from(self.min_len)..=usize::from(self.max_len)).contains(&new.len())
    }

    /// Set a new value and reset the try counter (after CHANGE or RESET RETRY COUNTER).
    pub(crate) fn set(&mut self, new: &[u8]) {
        self.value = new.to_vec();
        self.tries_left = self.max_tries;
    }

    /// The DOCP reply body `A0 { 9A max, 9B left, [9D usage], A1 { 8C … } }` (spec §3.2, §9).
    pub(crate) fn docp(&self, acl: &[u8]) -> Vec<u8> {
        let mut inner = vec![0x9A, 0x01, self.max_tries, 0x9B, 0x01, self.tries_left];
        if let Some(u) = self.usage_left {
            inner.extend([0x9D, 0x02]);
            inner.extend(u.to_be_bytes());
        }
        inner.extend(crate::tlv::tlv(&[0xA1], acl));
        crate::tlv::tlv(&[0xA0], &inner)
    }

    /// The policy reply body `7F41 { 80 max, 81 min }` (spec §9).
    pub(crate) fn policy(&self) -> Vec<u8> {
        crate::tlv::tlv(
            &[0x7F, 0x41],
            &[0x80, 0x01, self.max_len, 0x81, 0x01, self.min_len],
        )
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
        )
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
        let d = p.docp(&crate::facts::PIN_SDO_ACL);
        body.extend(crate::tlv::len_bytes(d.len()));
        body.extend(d);
        let reply = crate::tlv::tlv(&[0x70], &body);
        assert_eq!(
            hex::encode_upper(reply),
            "7016BF810112A0109A01039B0103A1088C06F3000013FF00"
        );
    }
}
