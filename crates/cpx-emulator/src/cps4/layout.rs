//! Building the CPS4 (ChipDoc) file system and objects from a [`CardImage`] (spec §1.3, §1.4, §2.4,
//! §10). File IDs are the §10 model's (not public): see `choices::fid`.

use rsa::RsaPrivateKey;

use crate::choices::{self, fid};
use crate::facts;
use crate::fs::{FileSystem, MF, Rules};
use crate::image::{CardImage, KeyImage};
use crate::pin::Pin;
use crate::pkcs15::{self, PrivateKeyEntry};

/// A CPS4 private key and what it may do (spec §4.4, §10.9–§10.11).
#[derive(Debug, Clone)]
pub(super) struct Cps4Key {
    /// Reference in the PrKDF (MSE `91` sends it with bit 8 set).
    pub(super) reference: u8,
    pub(super) key: RsaPrivateKey,
    /// PSO CDS with PKCS#1 v1.5 (algorithms 0A / 28).
    pub(super) pkcs1: bool,
    /// PSO CDS with PSS (algorithms 15 / 2C).
    pub(super) pss: bool,
    /// Raw PSO DECIPHER.
    pub(super) decipher: bool,
}

pub(super) struct Layout {
    pub(super) fs: FileSystem,
    pub(super) keys: Vec<Cps4Key>,
    pub(super) pins: Vec<Pin>,
}

fn key_id(n: u8) -> Vec<u8> {
    let mut id = facts::AID_P15_CONTACT.to_vec();
    id.push(n);
    id
}

fn bits(k: &KeyImage) -> u32 {
    use rsa::traits::PublicKeyParts;
    u32::try_from(k.key.size() * 8).unwrap_or(2048)
}

pub(super) fn build(image: &CardImage) -> Layout {
    // The ChipDoc applet's root: its DF name is the applet AID (spec §2.1).
    let mut fs = FileSystem::new(Some(facts::cps4::AID_CHIPDOC.to_vec()));
    let none = Rules::NONE; // no contactless interface on CPS4 (spec §7)
    fs.add_ef(
        MF,
        0x2F00,
        pkcs15::ef_dir_cps4(),
        Some(choices::SFI_EF_DIR),
        Rules::PUBLIC,
        none,
    );
    // EF.SN.ICC: `5A 0A` + PAN, 12 bytes (spec §1.3, choices::CPS4_EF_SN_ICC_AS_CPS3).
    fs.add_ef(MF, 0xD003, image.ef_sn_icc(), Some(0x1C), Rules::PUBLIC, none);

    let app = fs.add_df(MF, fid::APP_CONTACT, Some(facts::AID_P15_CONTACT.to_vec()));
    let aid = &facts::AID_P15_CONTACT[..];
    let mut odf = Vec::new();
    if let Some(pin) = &image.pin {
        odf.push((pkcs15::ODF_AODF, fid::APP_CONTACT, fid::AODF));
        let aodf = pkcs15::aodf(
            (pin.min_len, pin.max_len),
            image.puk.as_ref().map(|p| (p.min_len, p.max_len)),
        );
        fs.add_ef(app, fid::AODF, aodf, None, Rules::PUBLIC, none);
    }
    let mut prk = Vec::new();
    let mut cdf = Vec::new();
    let mut keys = Vec::new();
    if let Some(k) = &image.sign {
        prk.push(PrivateKeyEntry {
            label: facts::LABEL_PRIV_SIG,
            id: key_id(0x01),
            aid,
            reference: choices::CPS4_KEY_SIG,
            usage: pkcs15::USAGE_NON_REPUDIATION,
            object_flags: pkcs15::OBJECT_PRIVATE,
            auth_id: Some(0x01),
            rule_bits: &[5],
            modulus_bits: bits(k),
        });
        cdf.extend(pkcs15::cdf_entry(
            facts::LABEL_CERT_SIG,
            &key_id(0x01),
            fid::APP_CONTACT,
            fid::CERT_SIG,
        ));
        fs.add_ef(app, fid::CERT_SIG, k.cert.clone(), None, Rules::PUBLIC, none);
        // PSS on the signature key too (spec §10.10).
        keys.push(Cps4Key {
            reference: choices::CPS4_KEY_SIG,
            key: k.key.clone(),
            pkcs1: true,
            pss: true,
            decipher: false,
        });
    }
    if let Some(k) = &image.auth {
        prk.push(PrivateKeyEntry {
            label: facts::LABEL_PRIV_AUT,
            id: key_id(0x02),
            aid,
            reference: facts::cps4::KEY_AUT,
            usage: pkcs15::USAGE_DECRYPT | pkcs15::USAGE_SIGN,
            object_flags: pkcs15::OBJECT_PRIVATE,
            auth_id: Some(0x01),
            rule_bits: &[5, 7],
            modulus_bits: bits(k),
        });
        cdf.extend(pkcs15::cdf_entry(
            facts::LABEL_CERT_AUT,
            &key_id(0x02),
            fid::APP_CONTACT,
            fid::CERT_AUT,
        ));
        fs.add_ef(app, fid::CERT_AUT, k.cert.clone(), None, Rules::PUBLIC, none);
        keys.push(Cps4Key {
            reference: facts::cps4::KEY_AUT,
            key: k.key.clone(),
            pkcs1: choices::CPS4_AUTH_KEY_PKCS1_CDS,
            pss: true,
            decipher: true,
        });
    }
    odf.push((pkcs15::ODF_PRKDF, fid::APP_CONTACT, fid::PRKDF));
    fs.add_ef(app, fid::PRKDF, pkcs15::prkdf(&prk), None, Rules::PUBLIC, none);
    odf.push((pkcs15::ODF_CDF, fid::APP_CONTACT, fid::CDF));
    fs.add_ef(app, fid::CDF, cdf, None, Rules::PUBLIC, none);

    // Every business object is physical, CPS2TER_* included; nothing synthesised (spec §2.4, §10.14).
    let mut dodf = Vec::new();
    for d in &image.data {
        dodf.extend(pkcs15::dodf_entry(
            &d.label,
            d.private,
            d.modifiable,
            fid::APP_CONTACT,
            d.fid,
        ));
        let rules = match (d.private, d.writable) {
            (true, false) => Rules::PRIVATE,
            (true, true) => Rules {
                read: crate::fs::Access::Pin,
                update: crate::fs::Access::Pin,
            },
            (false, true) => Rules::WRITABLE,
            (false, false) => Rules::PUBLIC,
        };
        fs.add_ef(app, d.fid, d.content.clone(), None, rules, none);
    }
    odf.push((pkcs15::ODF_DODF, fid::APP_CONTACT, fid::DODF));
    fs.add_ef(app, fid::DODF, dodf, None, Rules::PUBLIC, none);
    fs.add_ef(app, fid::ODF, pkcs15::odf(&odf), None, Rules::PUBLIC, none);
    let ti = pkcs15::token_info(
        &image.token_serial,
        &image.token_label,
        &image.last_update,
        pkcs15::Algorithms::Cps4,
    );
    fs.add_ef(app, fid::TOKEN_INFO, ti, None, Rules::PUBLIC, none);

    let mut pins = Vec::new();
    if let Some(p) = &image.pin {
        pins.push(Pin::new(0x01, p, None));
    }
    if let Some(p) = &image.puk {
        pins.push(Pin::new(0x02, p, None));
    }
    Layout { fs, keys, pins }
}
