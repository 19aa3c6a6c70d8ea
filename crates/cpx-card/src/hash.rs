//! Host-side hashing: full digests, the intermediate SHA state the CPS3 finishes on the card
//! (spec §4.2), DigestInfo and PKCS#1 v1.5 block handling (spec §4.4).

use sha1::digest::generic_array::GenericArray;
use sha2::Digest;
use zeroize::Zeroizing;

/// The hash algorithms of the CPx cards (spec §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlg {
    /// SHA-1 (20 bytes).
    Sha1,
    /// SHA-256 (32 bytes).
    Sha256,
}

/// DER DigestInfo prefixes (RFC 8017 §9.2 note 1).
const SHA1_PREFIX: [u8; 15] = [
    0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2B, 0x0E, 0x03, 0x02, 0x1A, 0x05, 0x00, 0x04, 0x14,
];
const SHA256_PREFIX: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00,
    0x04, 0x20,
];

impl HashAlg {
    /// Digest length in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            HashAlg::Sha1 => 20,
            HashAlg::Sha256 => 32,
        }
    }

    /// The algorithm whose digests have this length.
    pub fn from_len(len: usize) -> Option<HashAlg> {
        match len {
            20 => Some(HashAlg::Sha1),
            32 => Some(HashAlg::Sha256),
            _ => None,
        }
    }

    /// Hash `data` entirely on the host.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            HashAlg::Sha1 => sha1::Sha1::digest(data).to_vec(),
            HashAlg::Sha256 => sha2::Sha256::digest(data).to_vec(),
        }
    }

    fn prefix(self) -> &'static [u8] {
        match self {
            HashAlg::Sha1 => &SHA1_PREFIX,
            HashAlg::Sha256 => &SHA256_PREFIX,
        }
    }

    /// DigestInfo DER of `hash`.
    pub fn digest_info(self, hash: &[u8]) -> Vec<u8> {
        let mut v = self.prefix().to_vec();
        v.extend_from_slice(hash);
        v
    }
}

/// A bare 20/32-byte hash, or a SHA-1/SHA-256 DigestInfo stripped to its hash (spec §4.2).
/// `None` for anything else.
pub fn strip_digest_info(input: &[u8]) -> Option<(HashAlg, &[u8])> {
    if let Some(alg) = HashAlg::from_len(input.len()) {
        return Some((alg, input));
    }
    [HashAlg::Sha1, HashAlg::Sha256].into_iter().find_map(|alg| {
        let rest = input.strip_prefix(alg.prefix())?;
        (rest.len() == alg.digest_len()).then_some((alg, rest))
    })
}

/// What PSO HASH needs: the raw state after the whole 64-byte blocks of the prefix, the prefix
/// length in bits, and the last 1..=64 bytes (a full block kept when the length is a multiple of
/// 64; spec §4.2, §8.6). `None` for an empty message.
pub fn partial_hash(alg: HashAlg, message: &[u8]) -> Option<(Vec<u8>, u64, &[u8])> {
    if message.is_empty() {
        return None;
    }
    let prefix_len = (message.len() - 1) / 64 * 64;
    let (prefix, tail) = message.split_at(prefix_len);
    let blocks: Vec<_> = prefix
        .chunks_exact(64)
        .map(GenericArray::clone_from_slice)
        .collect();
    let state: Vec<u8> = match alg {
        HashAlg::Sha1 => {
            let mut h: [u32; 5] = [0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0];
            sha1::compress(&mut h, &blocks);
            h.iter().flat_map(|w| w.to_be_bytes()).collect()
        }
        HashAlg::Sha256 => {
            let mut h: [u32; 8] = [
                0x6A09_E667,
                0xBB67_AE85,
                0x3C6E_F372,
                0xA54F_F53A,
                0x510E_527F,
                0x9B05_688C,
                0x1F83_D9AB,
                0x5BE0_CD19,
            ];
            sha2::compress256(&mut h, &blocks);
            h.iter().flat_map(|w| w.to_be_bytes()).collect()
        }
    };
    Some((state, (prefix_len as u64) * 8, tail))
}

/// PKCS#1 v1.5 type-1 block of `k` bytes around `data` (RFC 8017 §9.2), built on the host for the
/// CPS4 raw-RSA authentication (spec §4.4, §10.11). `None` when `data` is longer than `k - 11`.
pub fn pkcs1_type1(data: &[u8], k: usize) -> Option<Vec<u8>> {
    if data.len() + 11 > k {
        return None;
    }
    let mut block = vec![0x00, 0x01];
    block.resize(k - data.len() - 1, 0xFF);
    block.push(0x00);
    block.extend_from_slice(data);
    Some(block)
}

/// Removes PKCS#1 v1.5 type-2 padding from a raw RSA result (CPS4 decipher, spec §4.4).
pub fn pkcs1_type2_unpad(block: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let rest = block.strip_prefix(&[0x00, 0x02])?;
    let sep = rest.iter().position(|&b| b == 0)?;
    if sep < 8 {
        return None;
    }
    Some(Zeroizing::new(rest[sep + 1..].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_matches_spec_examples() {
        // spec §4.2 test case: 1405 bytes → 1344-byte prefix (0x2A00 bits), 61-byte tail.
        let msg = vec![b'A'; 1405];
        let (state, bits, tail) = partial_hash(HashAlg::Sha1, &msg).unwrap();
        assert_eq!((state.len(), bits, tail.len()), (20, 0x2A00, 61));
        // spec §8.6: 1024 bytes → a full block kept, prefix 960 bytes = 0x1E00 bits.
        let msg = vec![0u8; 1024];
        let (state, bits, tail) = partial_hash(HashAlg::Sha256, &msg).unwrap();
        assert_eq!((state.len(), bits, tail.len()), (32, 0x1E00, 64));
        let (_, bits, tail) = partial_hash(HashAlg::Sha256, &[1; 64]).unwrap();
        assert_eq!((bits, tail.len()), (0, 64));
        assert!(partial_hash(HashAlg::Sha1, &[]).is_none());
    }

    #[test]
    fn digest_info_round_trip() {
        let h = HashAlg::Sha256.digest(b"abc");
        let di = HashAlg::Sha256.digest_info(&h);
        assert_eq!(di.len(), 51);
        assert_eq!(strip_digest_info(&di), Some((HashAlg::Sha256, &h[..])));
        assert_eq!(strip_digest_info(&h), Some((HashAlg::Sha256, &h[..])));
        assert_eq!(strip_digest_info(&di[1..]), None);
        assert_eq!(strip_digest_info(&[0; 21]), None);
    }

    #[test]
    fn pkcs1_blocks() {
        let b = pkcs1_type1(&[1, 2, 3], 16).unwrap();
        assert_eq!(
            b,
            [
                0, 1, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0, 1, 2, 3
            ]
        );
        assert!(pkcs1_type1(&[0; 6], 16).is_none());
        let mut t2 = vec![0, 2, 9, 9, 9, 9, 9, 9, 9, 9, 0];
        t2.extend_from_slice(b"key");
        assert_eq!(&pkcs1_type2_unpad(&t2).unwrap()[..], b"key");
        assert!(pkcs1_type2_unpad(&[0, 2, 9, 0, 1]).is_none());
        assert!(pkcs1_type2_unpad(&[0, 1, 9]).is_none());
    }
}
