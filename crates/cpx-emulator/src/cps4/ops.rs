//! ChipDoc MSE SET, PSO COMPUTE DIGITAL SIGNATURE (PKCS#1 v1.5 / PSS), raw PSO DECIPHER (docs/card-spec.md
//! §4.4, §10.9–§10.11). No on-card hashing, no INTERNAL AUTHENTICATE. GET CHALLENGE (docs/card-spec.md §4.5)
//! is shared with the CPS3 (`common`).

use rsa::traits::PublicKeyParts;

use super::Cps4Card;
use super::layout::Cps4Key;
use crate::apdu::{Command, sw};
use crate::choices;
use crate::crypto;
use crate::facts::cps4::{ALG_SHA1_PKCS1, ALG_SHA1_PSS, ALG_SHA256_PKCS1, ALG_SHA256_PSS};
use crate::link::Reply;
use crate::sha_resume::HashAlg;
use crate::tlv;

impl Cps4Card {
    fn key4(&self, reference: u8) -> Option<&Cps4Key> {
        self.keys.iter().find(|k| k.reference == reference)
    }

    /// MSE SET: DST `01 22 81 B6 04 91 02 <alg> <ref|80>` and CT `01 22 41 B8 03 83 01 <ref>`
    /// (docs/card-spec.md §4.4). Anything else (HT, AT, RESTORE) is not a ChipDoc form here: 6A86.
    pub(super) fn manage_security_environment(&mut self, cmd: &Command) -> Reply {
        let Some(tlvs) = tlv::read_all(&cmd.data) else {
            return sw::WRONG_DATA.into();
        };
        match (cmd.p1, cmd.p2) {
            // P1 81 is what the module sends; 41 (ISO "for computation") is accepted too.
            (0x81 | 0x41, 0xB6) => {
                let [t] = &tlvs[..] else {
                    return sw::WRONG_DATA.into();
                };
                let (true, &[alg, key]) = (t.tag == [0x91], t.value) else {
                    return sw::WRONG_DATA.into();
                };
                if key & 0x80 == 0
                    || !matches!(
                        alg,
                        ALG_SHA1_PKCS1 | ALG_SHA256_PKCS1 | ALG_SHA1_PSS | ALG_SHA256_PSS
                    )
                {
                    return sw::WRONG_DATA.into();
                }
                if self.key4(key & 0x7F).is_none() {
                    return sw::DATA_NOT_FOUND.into();
                }
                self.session.se.dst = Some((key & 0x7F, alg));
                Reply::ok()
            }
            (0x41, 0xB8) => {
                let [t] = &tlvs[..] else {
                    return sw::WRONG_DATA.into();
                };
                let (true, &[key]) = (t.tag == [0x83] || t.tag == [0x84], t.value) else {
                    return sw::WRONG_DATA.into();
                };
                if self.key4(key & 0x7F).is_none() {
                    return sw::DATA_NOT_FOUND.into();
                }
                self.session.se.ct = Some(key & 0x7F);
                Reply::ok()
            }
            _ => sw::WRONG_P1P2.into(),
        }
    }

    pub(super) fn perform_security_operation(&mut self, cmd: &Command) -> Reply {
        match (cmd.p1, cmd.p2) {
            (0x9E, 0x9A) => self.pso_cds(cmd),
            (0x80, 0x86) => self.pso_decipher(cmd),
            // PSO HASH (90 A0) included: the host hashes everything (docs/card-spec.md §10.9).
            _ => sw::WRONG_P1P2.into(),
        }
    }

    /// PSO CDS `01 2A 9E 9A Lc <hash 20|32> 00`: PKCS#1 v1.5 (the card adds the DigestInfo) or
    /// PSS with MGF1 of the same hash and a salt as long as the hash (docs/card-spec.md §10.10).
    fn pso_cds(&mut self, cmd: &Command) -> Reply {
        let Some((reference, alg)) = self.session.se.dst else {
            return sw::CONDITIONS_NOT_SATISFIED.into();
        };
        let Some(key) = self.key4(reference) else {
            return sw::CONDITIONS_NOT_SATISFIED.into();
        };
        let (hash, pss) = match alg {
            ALG_SHA1_PKCS1 => (HashAlg::Sha1, false),
            ALG_SHA256_PKCS1 => (HashAlg::Sha256, false),
            ALG_SHA1_PSS => (HashAlg::Sha1, true),
            _ => (HashAlg::Sha256, true),
        };
        if !(if pss { key.pss } else { key.pkcs1 }) {
            return choices::KEY_USE_FORBIDDEN_SW.into();
        }
        if !self.core.user_verified() {
            return sw::SECURITY_NOT_SATISFIED.into();
        }
        if cmd.data.len() != hash.digest_len() {
            return sw::WRONG_DATA.into();
        }
        let signature = if pss {
            let seed = [&self.core.pan[..], &[reference], &cmd.data].concat();
            crypto::pss_sign(&key.key, hash, &cmd.data, &seed)
        } else {
            crypto::pkcs1_sign(&key.key, hash, &cmd.data)
        };
        let Some(signature) = signature else {
            return sw::WRONG_DATA.into();
        };
        if key.signature_key {
            self.core.signed();
        }
        Reply::data(signature)
    }

    /// PSO DECIPHER of the bare block (no `81` indicator, chained): the raw RSA result, used for
    /// host-padded PKCS#1 type-1 signatures and for decryption (the host strips type 2), docs/card-spec.md
    /// §4.4.
    fn pso_decipher(&mut self, cmd: &Command) -> Reply {
        let Some(key) = self.session.se.ct.and_then(|r| self.key4(r)) else {
            return sw::CONDITIONS_NOT_SATISFIED.into();
        };
        if !key.decipher {
            return choices::KEY_USE_FORBIDDEN_SW.into();
        }
        if !self.core.user_verified() {
            return sw::SECURITY_NOT_SATISFIED.into();
        }
        if cmd.data.len() != key.key.size() {
            return sw::WRONG_LENGTH.into();
        }
        match crypto::raw_private(&key.key, &cmd.data) {
            Some(out) => Reply::data(out),
            None => sw::WRONG_DATA.into(),
        }
    }
}
