//! Building the CPS3 file system and objects from a [`CardImage`] (docs/card-spec.md §1.3–§1.5, §2.4).

use crate::choices::{self, fid};
use crate::common::layout::{self as p15, ContactKey, KeyEntry, key_id, modulus_bits};
use crate::crypto::{CardKey, KeyUse};
use crate::facts;
use crate::fs::{FileSystem, MF, Rules};
use crate::image::CardImage;
use crate::pin::Padding;
use crate::pkcs15::{self, PrivateKeyEntry};
use crate::variants::Knobs;

pub(crate) struct Layout {
    pub(crate) fs: FileSystem,
    pub(crate) cps2ter: FileSystem,
    pub(crate) keys: Vec<CardKey>,
    pub(crate) pins: Vec<crate::pin::Pin>,
}

/// `CPS_ACTIVITY_nn_PS` → nn.
fn activity_index(label: &str) -> Option<u16> {
    let n = label.strip_prefix("CPS_ACTIVITY_")?.strip_suffix("_PS")?;
    n.parse().ok().filter(|n| (1..=16).contains(n))
}

pub(crate) fn build(image: &CardImage, knobs: &Knobs) -> Layout {
    let fids = knobs.fids();
    let mut fs = FileSystem::new(Some(facts::AID_IAS.to_vec()));
    let cl_only = Rules::NONE;
    // MF EFs (docs/card-spec.md §1.3, §1.4; EF_ACTUA §5.7).
    fs.add_ef(
        MF,
        0x2F00,
        pkcs15::ef_dir(knobs),
        Some(choices::SFI_EF_DIR),
        Rules::PUBLIC,
        Rules::PUBLIC,
    );
    fs.add_ef(
        MF,
        0x2F01,
        facts::EF_ATR.to_vec(),
        Some(choices::SFI_EF_ATR),
        Rules::PUBLIC,
        Rules::PUBLIC,
    );
    fs.add_ef(
        MF,
        0xD003,
        image.ef_sn_icc(),
        Some(0x1C),
        Rules::PUBLIC,
        Rules::PUBLIC,
    );
    if let Some(actua) = &image.ef_actua {
        fs.add_ef(MF, 0xD010, actua.clone(), None, Rules::PUBLIC, Rules::PUBLIC);
    }

    // DF 0001: the contact PKCS#15 application (docs/card-spec.md §1.4 point 4).
    let app = fs.add_df(MF, fid::APP_CONTACT, Some(facts::AID_P15_CONTACT.to_vec()));
    let mut odf = Vec::new();
    if image.pin.is_some() {
        // The real AODF, verbatim (GH#2224): it fixes the PIN policy (`facts::cps3_pin`).
        let aodf = facts::AODF_CPS3.to_vec();
        p15::xdf(
            &mut fs,
            app,
            &mut odf,
            pkcs15::ODF_AODF,
            fids.aodf,
            aodf,
            cl_only,
            knobs,
        );
    }
    let mut keys = (Vec::new(), Vec::new());
    if let Some(k) = &image.sign {
        let entry = KeyEntry {
            reference: k.reference.unwrap_or(facts::KEY_SIG),
            object_flags: pkcs15::OBJECT_PRIVATE,
            rule_bits: &[5],
        };
        p15::contact_key(
            &mut fs,
            app,
            &mut keys,
            (ContactKey::Sign, k),
            entry,
            cl_only,
            knobs,
        );
    }
    if let Some(k) = &image.auth {
        let entry = KeyEntry {
            reference: k.reference.unwrap_or(facts::KEY_AUT),
            // 0x07 on the real card (GH#2267: "private, modifiable" + one unnamed bit).
            object_flags: 0x07,
            rule_bits: &[7, 9],
        };
        p15::contact_key(
            &mut fs,
            app,
            &mut keys,
            (ContactKey::Auth, k),
            entry,
            cl_only,
            knobs,
        );
    }
    let (prk, cdf) = keys;
    let prkdf = pkcs15::prkdf(&prk);
    p15::xdf(
        &mut fs,
        app,
        &mut odf,
        pkcs15::ODF_PRKDF,
        fids.prkdf,
        prkdf,
        cl_only,
        knobs,
    );
    p15::xdf(
        &mut fs,
        app,
        &mut odf,
        pkcs15::ODF_CDF,
        fids.cdf,
        cdf,
        cl_only,
        knobs,
    );
    let private_writable = super::PROFILE.private_writable;
    if !knobs.no_dodf {
        let dodf = p15::business_data(&mut fs, app, image, private_writable, cl_only, knobs);
        p15::xdf(
            &mut fs,
            app,
            &mut odf,
            pkcs15::ODF_DODF,
            fids.dodf,
            dodf,
            cl_only,
            knobs,
        );
    }

    // The CPS2ter twin of each situation, 3F00/40(0F+nn) (docs/card-spec.md §2.4).
    let mut cps2ter = FileSystem::new(None);
    for d in &image.data {
        if let Some(n) = activity_index(&d.label) {
            cps2ter.add_ef(
                MF,
                0x400F + n,
                d.content.clone(),
                None,
                Rules::PRIVATE,
                Rules::NONE,
            );
        }
    }
    let df7f01 = cps2ter.add_df(MF, 0x7F01, None);
    cps2ter.add_ef(
        df7f01,
        0x4000,
        image.sit_fact.clone(),
        None,
        Rules::PRIVATE,
        Rules::NONE,
    );

    // Contactless application: its xDFs in DF 0001 (71xx, inference), its own ODF/TokenInfo in 0002.
    let mut odf_cl = Vec::new();
    if let Some(k) = &image.tech {
        let cl_aid = &facts::AID_P15_CL[..];
        let entry = PrivateKeyEntry {
            label: facts::LABEL_PRIV_TECH,
            id: key_id(cl_aid, 0x01),
            aid: cl_aid,
            reference: k.reference.unwrap_or(choices::KEY_TECH),
            usage: pkcs15::USAGE_SIGN,
            object_flags: 0,
            auth_id: None,
            rule_bits: &[],
            modulus_bits: modulus_bits(k),
        };
        let prkdf_cl = pkcs15::prkdf(&[entry]);
        p15::xdf(
            &mut fs,
            app,
            &mut odf_cl,
            pkcs15::ODF_PRKDF,
            fid::PRKDF_CL,
            prkdf_cl,
            Rules::PUBLIC,
            knobs,
        );
        let cdf_cl = pkcs15::cdf_entry(
            facts::LABEL_CERT_TECH,
            &key_id(cl_aid, 0x01),
            fid::APP_CONTACT,
            fid::CERT_TECH,
            knobs,
        );
        p15::xdf(
            &mut fs,
            app,
            &mut odf_cl,
            pkcs15::ODF_CDF,
            fid::CDF_CL,
            cdf_cl,
            Rules::PUBLIC,
            knobs,
        );
        fs.add_ef(
            app,
            fid::CERT_TECH,
            k.cert.clone(),
            None,
            Rules::PUBLIC,
            Rules::PUBLIC,
        );
    }
    let odf = p15::odf_file(&mut fs, app, odf, knobs);
    fs.add_ef(app, fid::ODF, odf, None, Rules::PUBLIC, Rules::PUBLIC);
    let ti = p15::token_info(image, pkcs15::Algorithms::Cps3, knobs);
    fs.add_ef(app, fid::TOKEN_INFO, ti, None, Rules::PUBLIC, Rules::PUBLIC);

    // DF 0002 (listed in EF.DIR, real) holds the contactless application's ODF and TokenInfo
    // only when the card has its technical key (`choices::CL_APP_NEEDS_TECH_KEY`).
    let app_cl = fs.add_df(MF, fid::APP_CL, Some(facts::AID_P15_CL.to_vec()));
    if image.tech.is_some() || !choices::CL_APP_NEEDS_TECH_KEY {
        fs.add_ef(
            app_cl,
            fid::ODF,
            pkcs15::odf(&odf_cl, knobs),
            None,
            Rules::PUBLIC,
            Rules::PUBLIC,
        );
        let ti_cl = p15::token_info(image, pkcs15::Algorithms::Cps3Contactless, knobs);
        fs.add_ef(app_cl, fid::TOKEN_INFO, ti_cl, None, Rules::PUBLIC, Rules::PUBLIC);
    }

    let mut keys = Vec::new();
    let pin_key = KeyUse {
        sign: false,
        int_auth: false,
        decipher: false,
        needs_pin: true,
        contactless_only: false,
    };
    if let Some(k) = &image.sign {
        let usage = KeyUse {
            sign: true,
            ..pin_key
        };
        keys.push(CardKey {
            reference: k.reference.unwrap_or(facts::KEY_SIG),
            key: k.key.clone(),
            usage,
            home_df: fid::APP_CONTACT,
        });
    }
    if let Some(k) = &image.auth {
        let usage = KeyUse {
            int_auth: true,
            decipher: true,
            ..pin_key
        };
        keys.push(CardKey {
            reference: k.reference.unwrap_or(facts::KEY_AUT),
            key: k.key.clone(),
            usage,
            home_df: fid::APP_CONTACT,
        });
    }
    if let Some(k) = &image.tech {
        let usage = KeyUse {
            int_auth: true,
            needs_pin: false,
            contactless_only: true,
            ..pin_key
        };
        keys.push(CardKey {
            reference: k.reference.unwrap_or(choices::KEY_TECH),
            key: k.key.clone(),
            usage,
            home_df: fid::APP_CL,
        });
    }
    // Both objects are padded to 8 bytes with FF (AODF needs-padding, storedLength 8, padChar FF).
    let padding = Some(Padding {
        stored: facts::cps3_pin::STORED_LEN,
        pad_char: facts::cps3_pin::PAD_CHAR,
    });
    Layout {
        fs,
        cps2ter,
        keys,
        pins: p15::pins(image, padding),
    }
}
