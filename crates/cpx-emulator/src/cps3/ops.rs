//! MSE SET, PSO HASH / CDS / DECIPHER, INTERNAL AUTHENTICATE (docs/card-spec.md §4.2, §4.3, §8.6, §8.7, §9).
//! GET CHALLENGE is shared with the CPS4 (`common`).

use super::{Cps3Card, Interface};
use crate::apdu::{Command, sw};
use crate::choices;
use crate::crypto::CardKey;
use crate::facts::alg;
use crate::link::Reply;
use crate::sha_resume::{self, HashAlg};
use crate::tlv;

/// Which operation a key is asked for.
#[derive(Clone, Copy)]
enum Op {
    Sign,
    IntAuth,
    Decipher,
}

impl Cps3Card {
    /// MSE SET (`00 22 41 <CRT> …`, TLVs in any order) and MSE RESTORE (`00 22 F3 <SE>`).
    pub(super) fn manage_security_environment(&mut self, cmd: &Command) -> Reply {
        match cmd.p1 {
            0x41 => {}
            0xF3 if cmd.data.is_empty() && (1..=3).contains(&cmd.p2) => {
                self.session.se = Default::default();
                return Reply::ok();
            }
            0xF3 => return sw::DATA_NOT_FOUND.into(),
            _ => return sw::WRONG_P1P2.into(),
        }
        let Some(tlvs) = tlv::read_all(&cmd.data) else {
            return sw::WRONG_DATA.into();
        };
        if choices::MSE_STRICT_TAGS && tlvs.iter().any(|t| t.tag != [0x80] && t.tag != [0x84]) {
            return sw::WRONG_DATA.into();
        }
        let one = |tag: u8| match tlv::find(&tlvs, &[tag]) {
            Some([b]) => Ok(Some(*b)),
            Some(_) => Err(sw::WRONG_DATA),
            None => Ok(None),
        };
        let (algo, key_ref) = match (one(0x80), one(0x84)) {
            (Ok(a), Ok(k)) => (a, k),
            _ => return sw::WRONG_DATA.into(),
        };
        let se = &mut self.session.se;
        if cmd.p2 == 0xAA {
            se.ht = match (algo, key_ref) {
                (Some(alg::HASH_SHA1), None) => Some(HashAlg::Sha1),
                (Some(alg::HASH_SHA256), None) => Some(HashAlg::Sha256),
                _ => return sw::WRONG_DATA.into(),
            };
            se.hash = None;
            return Reply::ok();
        }
        let (Some(algo), Some(key_ref)) = (algo, key_ref) else {
            return sw::WRONG_DATA.into();
        };
        if !self.keys.iter().any(|k| k.reference == key_ref) {
            return sw::DATA_NOT_FOUND.into();
        }
        let se = &mut self.session.se;
        match (cmd.p2, algo) {
            (0xB6, alg::SIG_SHA1 | alg::SIG_SHA256) => se.dst = Some((key_ref, algo)),
            (0xA4, alg::AUTH_PKCS1) => se.at = Some((key_ref, algo)),
            (0xB8, alg::DECIPHER_PKCS1) => se.ct = Some((key_ref, algo)),
            (0xB6 | 0xA4 | 0xB8, _) => return sw::WRONG_DATA.into(),
            _ => return sw::WRONG_P1P2.into(),
        }
        Reply::ok()
    }

    /// The key of a CRT, checked for the operation, the interface and the PIN.
    fn usable_key(&self, crt: Option<(u8, u8)>, op: Op) -> Result<&CardKey, u16> {
        let (key_ref, _) = crt.ok_or(sw::CONDITIONS_NOT_SATISFIED)?;
        let key = self.key(key_ref).ok_or(sw::CONDITIONS_NOT_SATISFIED)?;
        let u = key.usage;
        let allowed = match op {
            Op::Sign => u.sign,
            Op::IntAuth => u.int_auth,
            Op::Decipher => u.decipher,
        };
        // Signature is not allowed over the contactless interface (docs/card-notes.md §5.1), nor are the
        // contact keys; the technical key is a contactless key.
        let interface_ok = match self.core.interface {
            Interface::Contact => !u.contactless_only,
            Interface::Contactless => u.contactless_only,
        };
        if !allowed || !interface_ok {
            return Err(choices::KEY_USE_FORBIDDEN_SW);
        }
        if u.needs_pin && !self.core.user_verified() {
            return Err(sw::SECURITY_NOT_SATISFIED);
        }
        Ok(key)
    }

    pub(super) fn perform_security_operation(&mut self, cmd: &Command) -> Reply {
        match (cmd.p1, cmd.p2) {
            (0x90, 0xA0) => self.pso_hash(cmd),
            (0x9E, 0x9A) => self.pso_cds(cmd),
            (0x80, 0x86) => self.pso_decipher(cmd),
            _ => sw::WRONG_P1P2.into(),
        }
    }

    /// PSO HASH: `90 { H ‖ 8-byte bit count | empty } 80 { last bytes }`; the card finishes the hash.
    fn pso_hash(&mut self, cmd: &Command) -> Reply {
        let Some(ht) = self.session.se.ht else {
            return sw::CONDITIONS_NOT_SATISFIED.into();
        };
        let Some(tlvs) = tlv::read_all(&cmd.data) else {
            return sw::WRONG_DATA.into();
        };
        if tlvs.iter().any(|t| t.tag != [0x90] && t.tag != [0x80]) {
            return sw::WRONG_DATA.into();
        }
        let state = tlv::find(&tlvs, &[0x90]).unwrap_or(&[]);
        let hash = match tlv::find(&tlvs, &[0x80]) {
            // A complete hash given in 90 alone (ISO 7816-8 "hash code").
            None if state.len() == ht.digest_len() => Some(state.to_vec()),
            None => None,
            Some(tail) if tail.len() > choices::PSO_HASH_MAX_TAIL => None,
            Some(tail) if state.is_empty() => sha_resume::finish(ht, &[], 0, tail),
            Some(tail) if state.len() == ht.digest_len() + 8 => {
                let (h, count) = state.split_at(ht.digest_len());
                let bits = count.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
                sha_resume::finish(ht, h, bits, tail)
            }
            Some(_) => None,
        };
        match hash {
            Some(h) => {
                self.session.se.hash = Some((ht, h));
                Reply::ok()
            }
            None => sw::WRONG_DATA.into(),
        }
    }

    /// PSO COMPUTE DIGITAL SIGNATURE: data-less after PSO HASH, or with a 20/32-byte hash.
    fn pso_cds(&mut self, cmd: &Command) -> Reply {
        let dst = self.session.se.dst;
        let key = match self.usable_key(dst, Op::Sign) {
            Ok(k) => k,
            Err(e) => return e.into(),
        };
        let want = match dst {
            Some((_, alg::SIG_SHA1)) => HashAlg::Sha1,
            _ => HashAlg::Sha256,
        };
        let signature = if cmd.data.is_empty() {
            match &self.session.se.hash {
                Some((h, value)) if *h == want => key.sign_hash(want, value),
                _ => return sw::CONDITIONS_NOT_SATISFIED.into(),
            }
        } else if cmd.data.len() == want.digest_len() {
            key.sign_hash(want, &cmd.data)
        } else {
            return sw::WRONG_DATA.into();
        };
        let Some(signature) = signature else {
            return sw::WRONG_DATA.into();
        };
        self.session.se.hash = None;
        self.core.signed();
        Reply::data(signature)
    }

    /// PSO DECIPHER: `81` padding indicator ‖ cryptogram (chained); returns the unpadded plaintext.
    fn pso_decipher(&mut self, cmd: &Command) -> Reply {
        let key = match self.usable_key(self.session.se.ct, Op::Decipher) {
            Ok(k) => k,
            Err(e) => return e.into(),
        };
        let Some((&indicator, cryptogram)) = cmd.data.split_first() else {
            return sw::WRONG_LENGTH.into();
        };
        if indicator != 0x81 {
            return sw::WRONG_DATA.into();
        }
        if cryptogram.len() != key.modulus_len() {
            return sw::WRONG_LENGTH.into();
        }
        match key.decrypt(cryptogram) {
            Some(plain) => Reply::data(plain),
            None => sw::WRONG_DATA.into(),
        }
    }

    /// INTERNAL AUTHENTICATE: the card pads (PKCS#1 type 1) and signs; input ≤ 40 % of the modulus.
    pub(super) fn internal_authenticate(&mut self, cmd: &Command) -> Reply {
        if cmd.p1 != 0 || cmd.p2 != 0 {
            return sw::WRONG_P1P2.into();
        }
        let key = match self.usable_key(self.session.se.at, Op::IntAuth) {
            Ok(k) => k,
            Err(e) => return e.into(),
        };
        let max = key.modulus_len() * choices::INT_AUTH_MAX_PERCENT / 100;
        if cmd.data.is_empty() || cmd.data.len() > max {
            return sw::WRONG_LENGTH.into();
        }
        match key.sign_raw(&cmd.data) {
            Some(s) => Reply::data(s),
            None => sw::WRONG_DATA.into(),
        }
    }
}
