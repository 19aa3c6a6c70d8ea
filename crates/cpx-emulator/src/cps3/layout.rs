//! Building the CPS3 file system and objects from a [`CardImage`] (spec §1.3–§1.5, §2.4).

use crate::choices::{self, fid};
use crate::crypto::{CardKey, KeyUse};
use crate::facts;
use crate::fs::{FileSystem, MF, Rules};
use crate::image::{CardImage, KeyImage};
use crate::pin::{Padding, Pin};
use crate::pkcs15::{self, PrivateKeyEntry};

pub(crate) struct Layout {
    pub(crate) fs: FileSystem,
    pub(crate) cps2ter: FileSystem,
    pub(crate) keys: Vec<CardKey>,
    pub(crate) pins: Vec<Pin>,
}

fn key_id(aid: &[u8], n: u8) -> Vec<u8> {
    let mut id = aid.to_vec();
    id.push(n);
    id
}

fn bits(k: &KeyImage) -> u32 {
    use rsa::traits::PublicKeyParts;
    u32::try_from(k.key.size() * 8).unwrap_or(2048)
}

/// `CPS_ACTIVITY_nn_PS` → nn.
fn activity_index(label: &str) -> Option<u16> {
    let n = label.strip_prefix("CPS_ACTIVITY_")?.strip_suffix("_PS")?;
    n.parse().ok().filter(|n| (1..=16).contains(n))
}

pub(crate) fn build(image: &CardImage) -> Layout {
    let mut fs = FileSystem::new(Some(facts::AID_IAS.to_vec()));
    let cl_only = Rules::NONE;
    // MF EFs (spec §1.3, §1.4; EF_ACTUA §5.7).
    fs.add_ef(
        MF,
        0x2F00,
        pkcs15::ef_dir(),
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

    // DF 0001: the contact PKCS#15 application (spec §1.4 point 4).
    let app = fs.add_df(MF, fid::APP_CONTACT, Some(facts::AID_P15_CONTACT.to_vec()));
    let aid = &facts::AID_P15_CONTACT[..];
    let mut odf = Vec::new();
    if image.pin.is_some() {
        // The real AODF, verbatim (GH#2224): it fixes the PIN policy (`facts::cps3_pin`).
        odf.push((pkcs15::ODF_AODF, fid::APP_CONTACT, fid::AODF));
        fs.add_ef(
            app,
            fid::AODF,
            facts::AODF_CPS3.to_vec(),
            None,
            Rules::PUBLIC,
            cl_only,
        );
    }
    let mut prk = Vec::new();
    let mut cdf = Vec::new();
    if let Some(k) = &image.sign {
        prk.push(PrivateKeyEntry {
            label: facts::LABEL_PRIV_SIG,
            id: key_id(aid, 0x01),
            aid,
            reference: facts::KEY_SIG,
            usage: pkcs15::USAGE_NON_REPUDIATION,
            object_flags: pkcs15::OBJECT_PRIVATE,
            auth_id: Some(0x01),
            rule_bits: &[5],
            modulus_bits: bits(k),
        });
        cdf.extend(pkcs15::cdf_entry(
            facts::LABEL_CERT_SIG,
            &key_id(aid, 0x01),
            fid::APP_CONTACT,
            fid::CERT_SIG,
        ));
        fs.add_ef(app, fid::CERT_SIG, k.cert.clone(), None, Rules::PUBLIC, cl_only);
    }
    if let Some(k) = &image.auth {
        prk.push(PrivateKeyEntry {
            label: facts::LABEL_PRIV_AUT,
            id: key_id(aid, 0x02),
            aid,
            reference: facts::KEY_AUT,
            usage: pkcs15::USAGE_DECRYPT | pkcs15::USAGE_SIGN,
            // 0x07 on the real card (GH#2267: "private, modifiable" + one unnamed bit).
            object_flags: 0x07,
            auth_id: Some(0x01),
            rule_bits: &[7, 9],
            modulus_bits: bits(k),
        });
        cdf.extend(pkcs15::cdf_entry(
            facts::LABEL_CERT_AUT,
            &key_id(aid, 0x02),
            fid::APP_CONTACT,
            fid::CERT_AUT,
        ));
        fs.add_ef(app, fid::CERT_AUT, k.cert.clone(), None, Rules::PUBLIC, cl_only);
    }
    odf.push((pkcs15::ODF_PRKDF, fid::APP_CONTACT, fid::PRKDF));
    fs.add_ef(app, fid::PRKDF, pkcs15::prkdf(&prk), None, Rules::PUBLIC, cl_only);
    odf.push((pkcs15::ODF_CDF, fid::APP_CONTACT, fid::CDF));
    fs.add_ef(app, fid::CDF, cdf, None, Rules::PUBLIC, cl_only);

    let mut dodf = Vec::new();
    let mut cps2ter = FileSystem::new(None);
    for d in &image.data {
        dodf.extend(pkcs15::dodf_entry(
            &d.label,
            d.private,
            d.modifiable,
            fid::APP_CONTACT,
            d.fid,
        ));
        let rules = match (d.private, d.writable) {
            (true, _) => Rules::PRIVATE,
            (false, true) => Rules::WRITABLE,
            (false, false) => Rules::PUBLIC,
        };
        fs.add_ef(app, d.fid, d.content.clone(), None, rules, cl_only);
        // The CPS2ter twin of each situation, 3F00/40(0F+nn) (spec §2.4).
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
    odf.push((pkcs15::ODF_DODF, fid::APP_CONTACT, fid::DODF));
    fs.add_ef(app, fid::DODF, dodf, None, Rules::PUBLIC, cl_only);
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
            reference: choices::KEY_TECH,
            usage: pkcs15::USAGE_SIGN,
            object_flags: 0,
            auth_id: None,
            rule_bits: &[],
            modulus_bits: bits(k),
        };
        fs.add_ef(
            app,
            fid::PRKDF_CL,
            pkcs15::prkdf(&[entry]),
            None,
            Rules::PUBLIC,
            Rules::PUBLIC,
        );
        let cdf_cl = pkcs15::cdf_entry(
            facts::LABEL_CERT_TECH,
            &key_id(cl_aid, 0x01),
            fid::APP_CONTACT,
            fid::CERT_TECH,
        );
        fs.add_ef(app, fid::CDF_CL, cdf_cl, None, Rules::PUBLIC, Rules::PUBLIC);
        fs.add_ef(
            app,
            fid::CERT_TECH,
            k.cert.clone(),
            None,
            Rules::PUBLIC,
            Rules::PUBLIC,
        );
        odf_cl.push((pkcs15::ODF_PRKDF, fid::APP_CONTACT, fid::PRKDF_CL));
        odf_cl.push((pkcs15::ODF_CDF, fid::APP_CONTACT, fid::CDF_CL));
    }
    fs.add_ef(
        app,
        fid::ODF,
        pkcs15::odf(&odf),
        None,
        Rules::PUBLIC,
        Rules::PUBLIC,
    );
    let ti = pkcs15::token_info(
        &image.token_serial,
        &image.token_label,
        &image.last_update,
        pkcs15::Algorithms::Cps3,
    );
    fs.add_ef(app, fid::TOKEN_INFO, ti, None, Rules::PUBLIC, Rules::PUBLIC);

    // DF 0002 (listed in EF.DIR, real) holds the contactless application's ODF and TokenInfo
    // only when the card has its technical key (`choices::CL_APP_NEEDS_TECH_KEY`).
    let app_cl = fs.add_df(MF, fid::APP_CL, Some(facts::AID_P15_CL.to_vec()));
    if image.tech.is_some() || !choices::CL_APP_NEEDS_TECH_KEY {
        fs.add_ef(
            app_cl,
            fid::ODF,
            pkcs15::odf(&odf_cl),
            None,
            Rules::PUBLIC,
            Rules::PUBLIC,
        );
        let ti_cl = pkcs15::token_info(
            &image.token_serial,
            &image.token_label,
            &image.last_update,
            pkcs15::Algorithms::Cps3Contactless,
        );
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
            reference: facts::KEY_SIG,
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
            reference: facts::KEY_AUT,
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
            reference: choices::KEY_TECH,
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
    let mut pins = Vec::new();
    if let Some(p) = &image.pin {
        pins.push(Pin::new(0x01, p, padding));
    }
    if let Some(p) = &image.puk {
        pins.push(Pin::new(0x02, p, padding));
    }
    Layout {
        fs,
        cps2ter,
        keys,
        pins,
    }
}
