//! Building the CPS4 (ChipDoc) file system and objects from a [`CardImage`] (docs/card-spec.md §1.3, §1.4,
//! §2.4, §10). File IDs are the §10 model's (not public): see `choices::fid`.

use rsa::RsaPrivateKey;

use crate::choices::{self, fid};
use crate::common::layout::{self as p15, ContactKey, KeyEntry};
use crate::facts;
use crate::fs::{FileSystem, MF, Rules};
use crate::image::CardImage;
use crate::pin::Pin;
use crate::pkcs15;
use crate::variants::Knobs;

/// A CPS4 private key and what it may do (docs/card-spec.md §4.4, §10.9–§10.11).
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
    /// The signature key (CPS_PRIV_SIG): a signature with it ends the PIN's validity when the
    /// card wants a fresh VERIFY per signature.
    pub(super) signature_key: bool,
}

pub(super) struct Layout {
    pub(super) fs: FileSystem,
    pub(super) keys: Vec<Cps4Key>,
    pub(super) pins: Vec<Pin>,
}

pub(super) fn build(image: &CardImage, knobs: &Knobs) -> Layout {
    let fids = knobs.fids();
    // The ChipDoc applet's root: its DF name is the applet AID (docs/card-spec.md §2.1).
    let mut fs = FileSystem::new(Some(super::chipdoc_aid(image.kind).to_vec()));
    let none = Rules::NONE; // no contactless interface on CPS4 (docs/card-spec.md §7)
    fs.add_ef(
        MF,
        0x2F00,
        pkcs15::ef_dir_cps4(knobs),
        Some(choices::SFI_EF_DIR),
        Rules::PUBLIC,
        none,
    );
    // EF.SN.ICC: `5A 0A` + PAN, 12 bytes (docs/card-spec.md §1.3, choices::CPS4_EF_SN_ICC_AS_CPS3).
    fs.add_ef(MF, 0xD003, image.ef_sn_icc(), Some(0x1C), Rules::PUBLIC, none);

    let app = fs.add_df(MF, fid::APP_CONTACT, Some(facts::AID_P15_CONTACT.to_vec()));
    let mut odf = Vec::new();
    if let Some(pin) = &image.pin {
        let aodf = pkcs15::aodf(
            (pin.min_len, pin.max_len),
            image.puk.as_ref().map(|p| (p.min_len, p.max_len)),
            knobs,
        );
        p15::xdf(
            &mut fs,
            app,
            &mut odf,
            pkcs15::ODF_AODF,
            fids.aodf,
            aodf,
            none,
            knobs,
        );
    }
    let mut lists = (Vec::new(), Vec::new());
    let mut keys = Vec::new();
    if let Some(k) = &image.sign {
        let entry = KeyEntry {
            reference: k.reference.unwrap_or(choices::CPS4_KEY_SIG),
            object_flags: pkcs15::OBJECT_PRIVATE,
            rule_bits: &[5],
        };
        p15::contact_key(
            &mut fs,
            app,
            &mut lists,
            (ContactKey::Sign, k),
            entry,
            none,
            knobs,
        );
        // PSS on the signature key too (docs/card-spec.md §10.10).
        keys.push(Cps4Key {
            reference: k.reference.unwrap_or(choices::CPS4_KEY_SIG),
            key: k.key.clone(),
            pkcs1: true,
            pss: true,
            decipher: false,
            signature_key: true,
        });
    }
    if let Some(k) = &image.auth {
        let entry = KeyEntry {
            reference: knobs
                .prkdf_auth_reference
                .or(k.reference)
                .unwrap_or(facts::cps4::KEY_AUT),
            object_flags: pkcs15::OBJECT_PRIVATE,
            rule_bits: &[5, 7],
        };
        p15::contact_key(
            &mut fs,
            app,
            &mut lists,
            (ContactKey::Auth, k),
            entry,
            none,
            knobs,
        );
        keys.push(Cps4Key {
            reference: k.reference.unwrap_or(facts::cps4::KEY_AUT),
            key: k.key.clone(),
            pkcs1: choices::CPS4_AUTH_KEY_PKCS1_CDS,
            pss: true,
            decipher: true,
            signature_key: false,
        });
    }
    let (prk, cdf) = lists;
    let prkdf = pkcs15::prkdf(&prk);
    p15::xdf(
        &mut fs,
        app,
        &mut odf,
        pkcs15::ODF_PRKDF,
        fids.prkdf,
        prkdf,
        none,
        knobs,
    );
    p15::xdf(
        &mut fs,
        app,
        &mut odf,
        pkcs15::ODF_CDF,
        fids.cdf,
        cdf,
        none,
        knobs,
    );
    // Every business object is physical, CPS2TER_* included; nothing synthesised (docs/card-spec.md §2.4,
    // §10.14).
    let private_writable = super::PROFILE.private_writable;
    if !knobs.no_dodf {
        let dodf = p15::business_data(&mut fs, app, image, private_writable, none, knobs);
        p15::xdf(
            &mut fs,
            app,
            &mut odf,
            pkcs15::ODF_DODF,
            fids.dodf,
            dodf,
            none,
            knobs,
        );
    }
    let odf = p15::odf_file(&mut fs, app, odf, knobs);
    fs.add_ef(app, fid::ODF, odf, None, Rules::PUBLIC, none);
    let ti = p15::token_info(image, pkcs15::Algorithms::Cps4, knobs);
    fs.add_ef(app, fid::TOKEN_INFO, ti, None, Rules::PUBLIC, none);
    Layout {
        fs,
        keys,
        pins: p15::pins(image, None),
    }
}
