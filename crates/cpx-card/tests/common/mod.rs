//! Shared test helpers: emulated cards with a wire recorder, signature checks with the `rsa`
//! crate against the card's own certificate.
#![allow(
    dead_code,
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

pub mod suite;

use cpx_card::{Card, HashAlg};
use cpx_transport_virtual::{VirtualChannel, VirtualControl};
use cpx_vpcd::VirtualCard;
use rsa::pkcs8::DecodePublicKey;
use rsa::{Pkcs1v15Encrypt, Pkcs1v15Sign, Pss, RsaPublicKey};
use sha2::Digest;
use x509_cert::der::{Decode, Encode};

pub use cpx_testkit::Recorder;

/// Every APDU that reached the card, with its raw response.
pub type Wire = cpx_testkit::Recording;

/// Handle to swap the card behind a [`Recorder`].
pub type Slot = cpx_testkit::SharedCard;

pub fn emulated(stem: &str) -> Box<dyn VirtualCard> {
    cpx_testkit::emulated(stem).unwrap()
}

/// Whether the emulator knows this image (CPS4 arrives later).
pub fn has_image(stem: &str) -> bool {
    cpx_emulator::builtin_image(stem).is_some()
}

pub struct Session {
    pub card: Card,
    pub control: VirtualControl,
    pub wire: Wire,
    pub slot: Slot,
}

impl Session {
    pub fn open(stem: &str) -> Session {
        let (rec, wire, slot) = Recorder::swappable(emulated(stem));
        let (channel, control) = VirtualChannel::new(format!("virtual {stem}"), Box::new(rec));
        let card = Card::open(Box::new(channel)).unwrap();
        Session {
            card,
            control,
            wire,
            slot,
        }
    }

    /// [`Session::open`] with the PKCS#15 files of an earlier session (`Card::open_with`).
    pub fn open_with(stem: &str, files: &cpx_card::Pkcs15Files) -> Session {
        let (rec, wire, slot) = Recorder::swappable(emulated(stem));
        let (channel, control) = VirtualChannel::new(format!("virtual {stem}"), Box::new(rec));
        let card = Card::open_with(Box::new(channel), files).unwrap();
        Session {
            card,
            control,
            wire,
            slot,
        }
    }

    /// Number of APDUs since the last call, and clear.
    pub fn take(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.wire.take()
    }

    pub fn count(&self) -> usize {
        self.take().len()
    }
}

pub fn public_key(cert_der: &[u8]) -> RsaPublicKey {
    let cert = x509_cert::Certificate::from_der(cert_der).expect("certificate DER");
    let spki = cert.tbs_certificate.subject_public_key_info.to_der().unwrap();
    RsaPublicKey::from_public_key_der(&spki).expect("RSA key")
}

pub fn verify_pkcs1(key: &RsaPublicKey, alg: HashAlg, message: &[u8], sig: &[u8]) {
    match alg {
        HashAlg::Sha1 => key
            .verify(
                Pkcs1v15Sign::new::<sha1::Sha1>(),
                &sha1::Sha1::digest(message),
                sig,
            )
            .expect("SHA-1 PKCS#1 signature verifies"),
        HashAlg::Sha256 => key
            .verify(
                Pkcs1v15Sign::new::<sha2::Sha256>(),
                &sha2::Sha256::digest(message),
                sig,
            )
            .expect("SHA-256 PKCS#1 signature verifies"),
    }
}

/// A PKCS#1 v1.5 signature whose padded content is `data` itself (CKM_RSA_PKCS).
pub fn verify_raw_pkcs1(key: &RsaPublicKey, data: &[u8], sig: &[u8]) {
    key.verify(Pkcs1v15Sign::new_unprefixed(), data, sig)
        .expect("raw PKCS#1 signature verifies");
}

pub fn verify_pss(key: &RsaPublicKey, alg: HashAlg, message: &[u8], sig: &[u8]) {
    match alg {
        HashAlg::Sha1 => key
            .verify(
                Pss::new_with_salt::<sha1::Sha1>(20),
                &sha1::Sha1::digest(message),
                sig,
            )
            .expect("SHA-1 PSS signature verifies"),
        HashAlg::Sha256 => key
            .verify(
                Pss::new_with_salt::<sha2::Sha256>(32),
                &sha2::Sha256::digest(message),
                sig,
            )
            .expect("SHA-256 PSS signature verifies"),
    }
}

pub fn encrypt(key: &RsaPublicKey, plain: &[u8]) -> Vec<u8> {
    use rand_chacha::rand_core::SeedableRng;
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
    key.encrypt(&mut rng, Pkcs1v15Encrypt, plain).unwrap()
}

/// Hex of an APDU, spaced.
pub fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Another program sends raw APDUs to the card (between our transactions); returns the SWs.
pub fn other_program(control: &VirtualControl, apdus: &[&[u8]]) -> Vec<Vec<u8>> {
    control.with_card(|c| apdus.iter().map(|a| c.transmit(a)).collect())
}
