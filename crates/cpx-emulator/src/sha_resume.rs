//! Finishing a SHA-1 / SHA-256 computation from an intermediate state (IAS PSO HASH, docs/card-spec.md §4.2).
//!
//! The host hashes a multiple-of-64-byte prefix and sends the raw chaining value H (big-endian
//! words), the bit count of that prefix (8 bytes, big-endian) and the remaining 0..n bytes; the card
//! runs the last compression rounds with the FIPS 180-4 padding.

use sha1::digest::generic_array::GenericArray;

/// The two hash functions the CPS3 can finish on card (algorithm references 10 / 40, docs/card-spec.md §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlg {
    /// SHA-1 (MSE HT algorithm reference 0x10).
    Sha1,
    /// SHA-256 (MSE HT algorithm reference 0x40).
    Sha256,
}

impl HashAlg {
    /// Digest length in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            HashAlg::Sha1 => 20,
            HashAlg::Sha256 => 32,
        }
    }
}

const SHA1_IV: [u32; 5] = [0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0];
const SHA256_IV: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// Finish a hash. `state` is the intermediate H (empty = initial value, i.e. nothing pre-hashed),
/// `prefix_bits` the bit count already hashed (must be a multiple of 512), `tail` the rest of the
/// message. Returns `None` if the state length or bit count is inconsistent.
pub fn finish(alg: HashAlg, state: &[u8], prefix_bits: u64, tail: &[u8]) -> Option<Vec<u8>> {
    if !prefix_bits.is_multiple_of(512) || (state.is_empty() && prefix_bits != 0) {
        return None;
    }
    if !state.is_empty() && state.len() != alg.digest_len() {
        return None;
    }
    let total_bits = prefix_bits.checked_add((tail.len() as u64).checked_mul(8)?)?;
    let mut msg = tail.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&total_bits.to_be_bytes());
    let blocks: Vec<_> = msg.chunks_exact(64).map(GenericArray::clone_from_slice).collect();
    match alg {
        HashAlg::Sha1 => {
            let mut h = SHA1_IV;
            if !state.is_empty() {
                words(state, &mut h);
            }
            sha1::compress(&mut h, &blocks);
            Some(h.iter().flat_map(|w| w.to_be_bytes()).collect())
        }
        HashAlg::Sha256 => {
            let mut h = SHA256_IV;
            if !state.is_empty() {
                words(state, &mut h);
            }
            sha2::compress256(&mut h, &blocks);
            Some(h.iter().flat_map(|w| w.to_be_bytes()).collect())
        }
    }
}

fn words(bytes: &[u8], out: &mut [u32]) {
    for (w, c) in out.iter_mut().zip(bytes.chunks_exact(4)) {
        *w = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
    }
}

/// Intermediate state after hashing `prefix` (a multiple of 64 bytes): the host side of PSO HASH,
/// used by tests to build vectors.
pub fn intermediate(alg: HashAlg, prefix: &[u8]) -> Option<Vec<u8>> {
    if !prefix.len().is_multiple_of(64) {
        return None;
    }
    let blocks: Vec<_> = prefix
        .chunks_exact(64)
        .map(GenericArray::clone_from_slice)
        .collect();
    Some(match alg {
        HashAlg::Sha1 => {
            let mut h = SHA1_IV;
            sha1::compress(&mut h, &blocks);
            h.iter().flat_map(|w| w.to_be_bytes()).collect()
        }
        HashAlg::Sha256 => {
            let mut h = SHA256_IV;
            sha2::compress256(&mut h, &blocks);
            h.iter().flat_map(|w| w.to_be_bytes()).collect()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;

    fn split(alg: HashAlg, msg: &[u8]) -> Vec<u8> {
        // Host rule of docs/card-spec.md §4.2: keep the last 1..64 bytes.
        let keep = if msg.is_empty() {
            0
        } else {
            (msg.len() - 1) % 64 + 1
        };
        let (prefix, tail) = msg.split_at(msg.len() - keep);
        let state = if prefix.is_empty() {
            Vec::new()
        } else {
            intermediate(alg, prefix).unwrap()
        };
        finish(alg, &state, prefix.len() as u64 * 8, tail).unwrap()
    }

    #[test]
    fn matches_one_shot_hashes_for_all_lengths() {
        for n in [0usize, 1, 55, 56, 63, 64, 65, 127, 128, 1024, 1405] {
            let msg: Vec<u8> = (0..n).map(|i| (i * 7) as u8).collect();
            assert_eq!(
                split(HashAlg::Sha1, &msg),
                sha1::Sha1::digest(&msg).to_vec(),
                "sha1 {n}"
            );
            assert_eq!(
                split(HashAlg::Sha256, &msg),
                sha2::Sha256::digest(&msg).to_vec(),
                "sha256 {n}"
            );
        }
    }

    #[test]
    fn rejects_inconsistent_inputs() {
        assert!(finish(HashAlg::Sha1, &[0; 20], 100, b"x").is_none());
        assert!(finish(HashAlg::Sha256, &[0; 20], 512, b"x").is_none());
        assert!(finish(HashAlg::Sha1, &[], 512, b"x").is_none());
    }
}
