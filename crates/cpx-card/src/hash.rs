//! Host-side hashing: full digests, the intermediate SHA state the CPS3 finishes on the card
//! (docs/card-spec.md §4.2), DigestInfo and PKCS#1 v1.5 block handling (docs/card-spec.md §4.4).

use sha1::digest::generic_array::GenericArray;
use sha2::Digest;
use zeroize::Zeroizing;

/// The hash algorithms of the CPx cards (docs/card-spec.md §4.1).
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

/// A bare 20/32-byte hash, or a SHA-1/SHA-256 DigestInfo stripped to its hash (docs/card-spec.md §4.2).
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
/// 64; docs/card-spec.md §4.2, §8.6). `None` for an empty message. The one-shot form of
/// [`MessageHash`]'s card form.
pub fn partial_hash(alg: HashAlg, message: &[u8]) -> Option<(Vec<u8>, u64, &[u8])> {
    let mut hash = MessageHash::card(alg);
    hash.update(message);
    let (state, bits, tail) = hash.card_parts()?;
    let kept = tail.len();
    Some((state, bits, &message[message.len() - kept..]))
}

/// A message hashed part by part for a signature (multi-part C_Sign): only what the signature
/// needs at the end is kept, never the message, whatever its length.
///
/// Made by [`Card::message_hash`](crate::Card::message_hash) for one key of one card, which
/// decides its form: for the CPS3 signature key the card ends the hash (docs/card-spec.md §4.2), so the host
/// keeps the SHA state after the whole 64-byte blocks, their bit count and the last 1..=64 bytes
/// (wiped on drop); for every other key the host hashes the whole message (docs/card-spec.md §4.3, §4.4).
/// Signed with [`Card::sign_message`](crate::Card::sign_message).
///
/// ```no_run
/// # fn f(card: &mut cpx_card::Card) -> Result<(), cpx_card::CardError> {
/// use cpx_card::{HashAlg, KeyRole, Mechanism};
/// let mut message = card.message_hash(KeyRole::Signature, HashAlg::Sha256);
/// for part in [&b"first part, "[..], b"second part"] {
///     message.update(part);
/// }
/// let signature = card.sign_message(KeyRole::Signature, Mechanism::Pkcs1(HashAlg::Sha256), &message)?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct MessageHash {
    alg: HashAlg,
    form: Form,
}

#[derive(Clone)]
enum Form {
    /// The host hashes the whole message.
    Host(HostDigest),
    /// The card ends the hash (docs/card-spec.md §4.2).
    Card(Resumable),
}

#[derive(Clone)]
enum HostDigest {
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
}

/// SHA state after `blocks` whole blocks, and the bytes after them (1..=64 once any byte came:
/// a full block is kept rather than hashed, since the card needs a non-empty last block).
#[derive(Clone)]
struct Resumable {
    state: State,
    blocks: u64,
    tail: Zeroizing<[u8; 64]>,
    tail_len: usize,
}

#[derive(Clone)]
enum State {
    Sha1([u32; 5]),
    Sha256([u32; 8]),
}

/// Initial hash values (FIPS 180-4 §5.3.1, §5.3.3).
const SHA1_IV: [u32; 5] = [0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0];
const SHA256_IV: [u32; 8] = [
    0x6A09_E667,
    0xBB67_AE85,
    0x3C6E_F372,
    0xA54F_F53A,
    0x510E_527F,
    0x9B05_688C,
    0x1F83_D9AB,
    0x5BE0_CD19,
];

impl std::fmt::Debug for MessageHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let form = match self.form {
            Form::Host(_) => "host",
            Form::Card(_) => "card",
        };
        f.debug_struct("MessageHash")
            .field("alg", &self.alg)
            .field("ends_on", &form)
            .finish_non_exhaustive()
    }
}

/// Hash whole 64-byte blocks into `state`, counting them. The crates' compression functions,
/// block by block on the caller's bytes (no copy of the message).
fn compress(state: &mut State, count: &mut u64, blocks: &[u8]) {
    for block in blocks.chunks_exact(64) {
        let block = std::slice::from_ref(GenericArray::from_slice(block));
        match state {
            State::Sha1(h) => sha1::compress(h, block),
            State::Sha256(h) => sha2::compress256(h, block),
        }
        *count = count.wrapping_add(1);
    }
}

impl Resumable {
    fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if self.tail_len == 64 {
                // More is coming: the kept block is not the last one.
                compress(&mut self.state, &mut self.blocks, &self.tail[..]);
                self.tail_len = 0;
            }
            if self.tail_len == 0 && data.len() > 64 {
                // Hash all but the last 1..=64 bytes straight from the caller's buffer.
                let whole = (data.len() - 1) / 64 * 64;
                compress(&mut self.state, &mut self.blocks, &data[..whole]);
                data = &data[whole..];
                continue;
            }
            let n = (64 - self.tail_len).min(data.len());
            self.tail[self.tail_len..self.tail_len + n].copy_from_slice(&data[..n]);
            self.tail_len += n;
            data = &data[n..];
        }
    }
}

impl MessageHash {
    /// The host hashes the whole message.
    pub(crate) fn host(alg: HashAlg) -> Self {
        let digest = match alg {
            HashAlg::Sha1 => HostDigest::Sha1(sha1::Sha1::new()),
            HashAlg::Sha256 => HostDigest::Sha256(sha2::Sha256::new()),
        };
        MessageHash {
            alg,
            form: Form::Host(digest),
        }
    }

    /// The card ends the hash (docs/card-spec.md §4.2).
    pub(crate) fn card(alg: HashAlg) -> Self {
        let state = match alg {
            HashAlg::Sha1 => State::Sha1(SHA1_IV),
            HashAlg::Sha256 => State::Sha256(SHA256_IV),
        };
        MessageHash {
            alg,
            form: Form::Card(Resumable {
                state,
                blocks: 0,
                tail: Zeroizing::new([0; 64]),
                tail_len: 0,
            }),
        }
    }

    /// The hash algorithm.
    pub fn alg(&self) -> HashAlg {
        self.alg
    }

    /// Hash the next part of the message.
    pub fn update(&mut self, part: &[u8]) {
        match &mut self.form {
            Form::Host(HostDigest::Sha1(d)) => d.update(part),
            Form::Host(HostDigest::Sha256(d)) => d.update(part),
            Form::Card(r) => r.update(part),
        }
    }

    /// The whole digest, when the host can give it: the host form, or an empty message (the CPS3
    /// then signs the hash, docs/card-spec.md §4.2 "precomputed"). `None` for a message the card must end.
    pub(crate) fn host_digest(&self) -> Option<Vec<u8>> {
        match &self.form {
            Form::Host(HostDigest::Sha1(d)) => Some(d.clone().finalize().to_vec()),
            Form::Host(HostDigest::Sha256(d)) => Some(d.clone().finalize().to_vec()),
            Form::Card(r) if r.tail_len == 0 => Some(self.alg.digest(&[])),
            Form::Card(_) => None,
        }
    }

    /// PSO HASH's input (docs/card-spec.md §4.2, §8.6): the state after the whole blocks (big-endian words),
    /// their length in bits, and the last 1..=64 bytes. `None` for the host form or an empty
    /// message.
    pub(crate) fn card_parts(&self) -> Option<(Vec<u8>, u64, &[u8])> {
        let Form::Card(r) = &self.form else {
            return None;
        };
        if r.tail_len == 0 {
            return None;
        }
        let state: Vec<u8> = match &r.state {
            State::Sha1(h) => h.iter().flat_map(|w| w.to_be_bytes()).collect(),
            State::Sha256(h) => h.iter().flat_map(|w| w.to_be_bytes()).collect(),
        };
        // SHA counts the length in bits modulo 2^64 (FIPS 180-4 §5.1.1).
        Some((state, r.blocks.wrapping_mul(512), &r.tail[..r.tail_len]))
    }
}

/// PKCS#1 v1.5 type-1 block of `k` bytes around `data` (RFC 8017 §9.2), built on the host for the
/// CPS4 raw-RSA authentication (docs/card-spec.md §4.4, §10.11). `None` when `data` is longer than `k - 11`.
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

/// Removes PKCS#1 v1.5 type-2 padding from a raw RSA result (CPS4 decipher, docs/card-spec.md §4.4).
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
        // docs/card-spec.md §4.2 test case: 1405 bytes → 1344-byte prefix (0x2A00 bits), 61-byte tail.
        let msg = vec![b'A'; 1405];
        let (state, bits, tail) = partial_hash(HashAlg::Sha1, &msg).unwrap();
        assert_eq!((state.len(), bits, tail.len()), (20, 0x2A00, 61));
        // docs/card-spec.md §8.6: 1024 bytes → a full block kept, prefix 960 bytes = 0x1E00 bits.
        let msg = vec![0u8; 1024];
        let (state, bits, tail) = partial_hash(HashAlg::Sha256, &msg).unwrap();
        assert_eq!((state.len(), bits, tail.len()), (32, 0x1E00, 64));
        let (_, bits, tail) = partial_hash(HashAlg::Sha256, &[1; 64]).unwrap();
        assert_eq!((bits, tail.len()), (0, 64));
        assert!(partial_hash(HashAlg::Sha1, &[]).is_none());
    }

    /// The one-shot computation as it was before streaming: the reference for the wire bytes.
    fn reference(alg: HashAlg, message: &[u8]) -> Option<(Vec<u8>, u64, Vec<u8>)> {
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
                let mut h = SHA1_IV;
                sha1::compress(&mut h, &blocks);
                h.iter().flat_map(|w| w.to_be_bytes()).collect()
            }
            HashAlg::Sha256 => {
                let mut h = SHA256_IV;
                sha2::compress256(&mut h, &blocks);
                h.iter().flat_map(|w| w.to_be_bytes()).collect()
            }
        };
        Some((state, prefix_len as u64 * 8, tail.to_vec()))
    }

    #[test]
    fn streamed_parts_equal_the_one_shot_split() {
        let message: Vec<u8> = (0..1100u32).map(|i| (i * 7 + i / 13) as u8).collect();
        for alg in [HashAlg::Sha1, HashAlg::Sha256] {
            for len in (0..=300).chain([1024, 1087, 1088, 1089, 1100]) {
                let m = &message[..len];
                let want = reference(alg, m);
                let whole = partial_hash(alg, m).map(|(s, b, t)| (s, b, t.to_vec()));
                assert_eq!(whole, want, "{alg:?} {len}");
                // The same message in parts of every shape: byte by byte, around 64, uneven.
                for step in [1, 3, 63, 64, 65, 128, 200] {
                    let mut h = MessageHash::card(alg);
                    for part in m.chunks(step) {
                        h.update(part);
                        h.update(&[]);
                    }
                    let got = h.card_parts().map(|(s, b, t)| (s, b, t.to_vec()));
                    assert_eq!(got, want, "{alg:?} {len} in parts of {step}");
                    let host = h.host_digest();
                    assert_eq!(host, m.is_empty().then(|| alg.digest(&[])));
                }
            }
        }
    }

    #[test]
    fn host_form_digests_the_whole_message() {
        let message = vec![0x5Au8; 5000];
        for alg in [HashAlg::Sha1, HashAlg::Sha256] {
            let mut h = MessageHash::host(alg);
            for part in message.chunks(777) {
                h.update(part);
            }
            assert!(h.card_parts().is_none());
            assert_eq!(h.host_digest(), Some(alg.digest(&message)));
            // Finishing does not consume: a retried signature gets the same digest.
            assert_eq!(h.host_digest(), Some(alg.digest(&message)));
        }
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
