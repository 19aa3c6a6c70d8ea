//! Building the contact PKCS#15 application (DF 0001) both cards carry: xDFs, key/certificate
//! pairs, business data objects, PIN objects (docs/card-spec.md §1.4, §1.5, §2.4, §5.3, §10.3).

use crate::choices::fid;
use crate::facts;
use crate::fs::{FileSystem, Rules};
use crate::image::{CardImage, KeyImage};
use crate::pin::{Padding, Pin};
use crate::pkcs15::{self, PrivateKeyEntry};
use crate::variants::{Extension, Knobs};

/// A key or certificate ID: the application AID ‖ n (`choices::CERT_IDS_MATCH_KEYS`).
pub(crate) fn key_id(aid: &[u8], n: u8) -> Vec<u8> {
    let mut id = aid.to_vec();
    id.push(n);
    id
}

pub(crate) fn modulus_bits(k: &KeyImage) -> u32 {
    use rsa::traits::PublicKeyParts;
    u32::try_from(k.key.size() * 8).unwrap_or(2048)
}

/// ODF entries `(tag, DF, FID)`.
pub(crate) type Odf = Vec<(u8, u16, u16)>;

/// An xDF of the contact application: its EF (public; `cl` on the contactless interface, as
/// the knobs lay it out) and its ODF entry.
#[allow(clippy::too_many_arguments)]
pub(crate) fn xdf(
    fs: &mut FileSystem,
    app: usize,
    odf: &mut Odf,
    tag: u8,
    fid: u16,
    content: Vec<u8>,
    cl: Rules,
    knobs: &Knobs,
) {
    odf.push((tag, fid::APP_CONTACT, fid));
    let content = knobs.p15_file(content, Extension::CommonAttributes);
    fs.add_ef(app, fid, content, None, Rules::PUBLIC, cl);
}

/// The ODF of the contact application (and the extra PuKDF EF it names with
/// [`Knobs::extra_records`]), as the knobs lay it out.
pub(crate) fn odf_file(fs: &mut FileSystem, app: usize, mut odf: Odf, knobs: &Knobs) -> Vec<u8> {
    if knobs.extra_records {
        // 7004 exists on real cards, content unknown (CHOICES.md): an empty PuKDF, zero padded.
        odf.push((pkcs15::ODF_PUKDF, fid::APP_CONTACT, 0x7004));
        fs.add_ef(app, 0x7004, vec![0; 16], None, Rules::PUBLIC, Rules::PUBLIC);
    }
    if knobs.odf_reversed {
        odf.reverse();
    }
    knobs.p15_file(pkcs15::odf(&odf, knobs), Extension::None)
}

/// The PrKDF and the CDF of the contact application, being built.
pub(crate) type KeyLists<'a> = (Vec<PrivateKeyEntry<'a>>, Vec<u8>);

/// The two keys of the contact application.
#[derive(Clone, Copy)]
pub(crate) enum ContactKey {
    /// CPS_PRIV_SIG, id AID ‖ 01, non-repudiation.
    Sign,
    /// CPS_PRIV_AUT, id AID ‖ 02, decrypt + sign.
    Auth,
}

/// What differs between the cards in a contact key's PrKDF entry.
pub(crate) struct KeyEntry {
    /// Key reference (MSE `84` / `91`).
    pub(crate) reference: u8,
    /// CommonObjectFlags.
    pub(crate) object_flags: u32,
    /// AccessControlRules mode bits (pso_cds 5, pso_decrypt 7, int_auth 9), with the PIN.
    pub(crate) rule_bits: &'static [u32],
}

/// A key of the contact application (docs/card-spec.md §1.5, GH#2267): its PrKDF entry, its CDF entry (same
/// ID, `choices::CERT_IDS_MATCH_KEYS`) and its certificate EF (public; `cl` on the contactless interface).
pub(crate) fn contact_key<'a>(
    fs: &mut FileSystem,
    app: usize,
    (prk, cdf): &mut KeyLists<'a>,
    (which, k): (ContactKey, &KeyImage),
    entry: KeyEntry,
    cl: Rules,
    knobs: &Knobs,
) {
    let aid = &facts::AID_P15_CONTACT[..];
    let fids = knobs.fids();
    let (n, label, usage, cert_label, cert_fid) = match which {
        ContactKey::Sign => {
            let (l, c) = (facts::LABEL_PRIV_SIG, facts::LABEL_CERT_SIG);
            (0x01, l, pkcs15::USAGE_NON_REPUDIATION, c, fids.cert_sig)
        }
        ContactKey::Auth => {
            let (l, c) = (facts::LABEL_PRIV_AUT, facts::LABEL_CERT_AUT);
            (
                0x02,
                l,
                pkcs15::USAGE_DECRYPT | pkcs15::USAGE_SIGN,
                c,
                fids.cert_aut,
            )
        }
    };
    prk.push(PrivateKeyEntry {
        label,
        id: key_id(aid, n),
        aid,
        reference: entry.reference,
        usage,
        object_flags: entry.object_flags,
        auth_id: Some(0x01),
        rule_bits: entry.rule_bits,
        modulus_bits: modulus_bits(k),
    });
    cdf.extend(pkcs15::cdf_entry(
        cert_label,
        &key_id(aid, n),
        fid::APP_CONTACT,
        cert_fid,
        knobs,
    ));
    fs.add_ef(app, cert_fid, k.cert.clone(), None, Rules::PUBLIC, cl);
}

/// The business data objects (docs/card-spec.md §5.3): one EF each in the application, whose rules follow the
/// image's `private` / `writable` (`private_writable` when both, `Profile::private_writable`).
/// Returns the DODF.
pub(crate) fn business_data(
    fs: &mut FileSystem,
    app: usize,
    image: &CardImage,
    private_writable: Rules,
    cl: Rules,
    knobs: &Knobs,
) -> Vec<u8> {
    let mut dodf = Vec::new();
    for d in &image.data {
        dodf.extend(pkcs15::dodf_entry(
            &d.label,
            d.private,
            d.modifiable,
            fid::APP_CONTACT,
            d.fid,
            knobs,
        ));
        let rules = match (d.private, d.writable) {
            (true, false) => Rules::PRIVATE,
            (true, true) => private_writable,
            (false, true) => Rules::WRITABLE,
            (false, false) => Rules::PUBLIC,
        };
        fs.add_ef(app, d.fid, d.content.clone(), None, rules, cl);
    }
    dodf
}

/// TokenInfo of the image's token, as the knobs lay it out.
pub(crate) fn token_info(image: &CardImage, algorithms: pkcs15::Algorithms, knobs: &Knobs) -> Vec<u8> {
    let ti = pkcs15::token_info(
        &image.token_serial,
        &image.token_label,
        (!knobs.no_last_update).then_some(image.last_update.as_str()),
        algorithms,
    );
    knobs.p15_file(ti, Extension::Top)
}

/// The PIN (CHV 01) and PUK (CHV 02) objects the image has.
pub(crate) fn pins(image: &CardImage, padding: Option<Padding>) -> Vec<Pin> {
    [(0x01, &image.pin), (0x02, &image.puk)]
        .into_iter()
        .filter_map(|(reference, p)| Some(Pin::new(reference, p.as_ref()?, padding)))
        .collect()
}
