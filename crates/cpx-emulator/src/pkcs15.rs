//! PKCS#15 structures of the CPS3 (docs/card-spec.md §1.4, §1.5, §2.4, §9; ISO 7816-15 encodings).

use crate::choices;
use crate::facts;
use crate::tlv::{cons, int, named_bits, octets, seq, tlv, utf8};
use crate::variants::Knobs;

/// CommonObjectFlags bits.
const FLAG_PRIVATE: u32 = 1 << 0;
const FLAG_MODIFIABLE: u32 = 1 << 1;

/// An application record of no CPx application, first in EF.DIR with [`Knobs::extra_records`]:
/// the PKCS#15 default AID (ISO 7816-15), without a path.
fn other_dir_record(knobs: &Knobs) -> Vec<u8> {
    if !knobs.extra_records {
        return Vec::new();
    }
    let aid = [
        0xA0, 0x00, 0x00, 0x00, 0x63, 0x50, 0x4B, 0x43, 0x53, 0x2D, 0x31, 0x35,
    ];
    cons(&[0x61], &[&tlv(&[0x4F], &aid), &tlv(&[0x50], b"OTHER APP")])
}

/// EF.DIR: the two application templates; 101 bytes like the real one (docs/card-spec.md §1.4 point 1).
pub(crate) fn ef_dir(knobs: &Knobs) -> Vec<u8> {
    [other_dir_record(knobs), ef_dir_model()].concat()
}

fn ef_dir_model() -> Vec<u8> {
    let rec = |aid: &[u8], label: &str, path: &[u8]| {
        cons(
            &[0x61],
            &[
                &tlv(&[0x4F], aid),
                &tlv(&[0x50], label.as_bytes()),
                &tlv(&[0x51], path),
                // "Both DDOs carry 4F0DE828BD080F8025000001FF0010" (docs/card-notes.md §3).
                &tlv(&[0x73], &tlv(&[0x4F], &facts::AID_P15_CONTACT)),
            ],
        )
    };
    let mut v = rec(&facts::AID_P15_CONTACT, "CPX IAS", &[0x3F, 0x00, 0x00, 0x01]);
    v.extend(rec(&facts::AID_P15_CL, "CPX IAS CL", &[0x3F, 0x00, 0x00, 0x02]));
    v
}

/// EF.DIR of the CPS4: the contact application only, its path in tag 51 (docs/card-spec.md §10.3; the label
/// is not public, the CPS3 one is kept).
pub(crate) fn ef_dir_cps4(knobs: &Knobs) -> Vec<u8> {
    let model = cons(
        &[0x61],
        &[
            &tlv(&[0x4F], &facts::AID_P15_CONTACT),
            &tlv(&[0x50], b"CPX IAS"),
            &tlv(&[0x51], &[0x3F, 0x00, 0x00, 0x01]),
        ],
    );
    [other_dir_record(knobs), model].concat()
}

/// ODF: `[tag] Path` entries (absolute `3F00/<df>/<fid>`, or relative with
/// [`Knobs::relative_paths`]).
pub(crate) fn odf(entries: &[(u8, u16, u16)], knobs: &Knobs) -> Vec<u8> {
    entries
        .iter()
        .flat_map(|(tag, df, fid)| tlv(&[*tag], &knobs.path(*df, *fid)))
        .collect()
}

/// ODF choice tags.
pub(crate) const ODF_PRKDF: u8 = 0xA0;
/// PuKDF.
pub(crate) const ODF_PUKDF: u8 = 0xA1;
pub(crate) const ODF_CDF: u8 = 0xA4;
pub(crate) const ODF_DODF: u8 = 0xA7;
pub(crate) const ODF_AODF: u8 = 0xA8;

/// One supportedAlgorithms entry (docs/card-spec.md §9).
fn algorithm(reference: u32, mechanism: u32, ops_bit: u32, oid: &[u8], alg_ref: u32) -> Vec<u8> {
    algorithm_entry(reference, mechanism, 1 << ops_bit, oid, Some(alg_ref))
}

/// An AlgorithmInfo with several operations and an optional algRef (ISO 7816-15).
fn algorithm_entry(reference: u32, mechanism: u32, ops: u32, oid: &[u8], alg_ref: Option<u32>) -> Vec<u8> {
    seq(&[
        &int(reference),
        &int(mechanism),
        &[0x05, 0x00],
        &named_bits(ops),
        &tlv(&[0x06], oid),
        &alg_ref.map(int).unwrap_or_default(),
    ])
}

const OID_SHA1: [u8; 5] = [0x2B, 0x0E, 0x03, 0x02, 0x1A];
const OID_SHA256: [u8; 9] = [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
const OID_RSA: [u8; 9] = [0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01];
const OID_SHA1_RSA: [u8; 9] = [0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x05];
const OID_SHA256_RSA: [u8; 9] = [0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x0B];
const OID_RSASSA_PSS: [u8; 9] = [0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x0A];
// Operations bits: compute_signature 1, decipher 5, hash 6.
const OP_SIGN: u32 = 1;
const OP_DECIPHER: u32 = 5;
const OP_HASH: u32 = 6;

/// Which card's supportedAlgorithms a TokenInfo carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Algorithms {
    /// CPS3 contact: the six entries of docs/card-spec.md §9.
    Cps3,
    /// CPS3 contactless: RSA-PKCS only (docs/card-spec.md §4.1, §7).
    Cps3Contactless,
    /// CPS4: the four MSE `91` algorithms of docs/card-spec.md §4.4 and raw RSA (see `choices`).
    Cps4,
}

/// The AlgorithmInfo list of a TokenInfo.
fn algorithms(which: Algorithms) -> Vec<u8> {
    match which {
        Algorithms::Cps3Contactless => return algorithm(1, 0x01, OP_SIGN, &OID_RSA, 0x02),
        Algorithms::Cps4 => {
            use crate::facts::cps4::*;
            // PKCS#11 mechanisms: SHA1_RSA_PKCS 06, SHA256_RSA_PKCS 40, SHA1_RSA_PKCS_PSS 0E,
            // SHA256_RSA_PKCS_PSS 43, RSA_X_509 03 (raw: MSE CT carries no algorithm, docs/card-spec.md
            // §4.4).
            return [
                algorithm(1, 0x06, OP_SIGN, &OID_SHA1_RSA, u32::from(ALG_SHA1_PKCS1)),
                algorithm(2, 0x40, OP_SIGN, &OID_SHA256_RSA, u32::from(ALG_SHA256_PKCS1)),
                algorithm(3, 0x0E, OP_SIGN, &OID_RSASSA_PSS, u32::from(ALG_SHA1_PSS)),
                algorithm(4, 0x43, OP_SIGN, &OID_RSASSA_PSS, u32::from(ALG_SHA256_PSS)),
                algorithm_entry(5, 0x03, (1 << OP_SIGN) | (1 << OP_DECIPHER), &OID_RSA, None),
            ]
            .concat();
        }
        Algorithms::Cps3 => {}
    }
    [
        algorithm(1, 0x220, OP_HASH, &OID_SHA1, 0x10),
        algorithm(2, 0x250, OP_HASH, &OID_SHA256, 0x40),
        algorithm(3, 0x06, OP_SIGN, &OID_SHA1_RSA, 0x12),
        algorithm(4, 0x40, OP_SIGN, &OID_SHA256_RSA, 0x42),
        algorithm(5, 0x01, OP_SIGN, &OID_RSA, 0x02),
        algorithm(6, 0x01, OP_DECIPHER, &OID_RSA, 0x1A),
    ]
    .concat()
}

/// Digits as packed BCD (odd length padded with F).
fn bcd(digits: &str) -> Vec<u8> {
    let mut nibbles: Vec<u8> = digits.bytes().map(|b| b.wrapping_sub(b'0') & 0x0F).collect();
    if nibbles.len() % 2 == 1 {
        nibbles.push(0x0F);
    }
    nibbles
        .chunks(2)
        .map(|c| (c[0] << 4) | c.get(1).copied().unwrap_or(0x0F))
        .collect()
}

/// TokenInfo (docs/card-spec.md §1.4 point 5, §9): version, serial, "ASIP SANTE", label, read-only +
/// login-required flags, supportedAlgorithms `[2]`, lastUpdate `[5]`.
pub(crate) fn token_info(serial: &str, label: &str, last_update: Option<&str>, algs: Algorithms) -> Vec<u8> {
    // tokenflags: readOnly(0), loginRequired(1); no PIN on the contactless application (§7).
    let flags = if algs == Algorithms::Cps3Contactless {
        named_bits(1 << 0)
    } else {
        named_bits(0b11)
    };
    seq(&[
        &int(0),
        &octets(&bcd(serial)),
        &utf8(facts::MANUFACTURER),
        &tlv(&[0x80], label.as_bytes()),
        &flags,
        &tlv(&[0xA2], &algorithms(algs)),
        &last_update
            .map(|u| tlv(&[0xA5], &tlv(&[0x18], u.as_bytes())))
            .unwrap_or_default(),
    ])
}

/// CommonObjectAttributes. `flags = None` writes the non-DER empty BIT STRING of the real AODF
/// (`03 01 08`, GH#2224).
fn common(label: &str, flags: Option<u32>, auth_id: Option<u8>, rules: &[u8]) -> Vec<u8> {
    let flags = match flags {
        Some(f) => named_bits(f),
        None => facts::AODF_COMMON_FLAGS.to_vec(),
    };
    let auth = auth_id.map(|a| octets(&[a])).unwrap_or_default();
    let rules = if rules.is_empty() {
        Vec::new()
    } else {
        seq(&[rules])
    };
    seq(&[&utf8(label), &flags, &auth, &rules])
}

/// One AccessControlRule: access mode bits + authId, or "always" (NULL).
fn rule(mode_bit: u32, auth_id: Option<u8>) -> Vec<u8> {
    let cond = match auth_id {
        Some(a) => octets(&[a]),
        None => vec![0x05, 0x00],
    };
    seq(&[&named_bits(1 << mode_bit), &cond])
}

/// A generated AODF PIN entry (CPS4; the CPS3 AODF is the real one, [`facts::AODF_CPS3`]):
/// unpadded (docs/card-spec.md §10), so no needs-padding flag, storedLength = maxLength.
#[allow(clippy::too_many_arguments)]
fn pin_entry(
    label: &str,
    auth_id: u8,
    protected_by: Option<u8>,
    flags: u32,
    min: u8,
    stored: u8,
    max: u8,
) -> Vec<u8> {
    // Rules: read always, update (change) with the object itself, execute always.
    let rules = [rule(0, None), rule(1, Some(auth_id)), rule(2, None)].concat();
    let attrs = seq(&[
        &named_bits(flags),
        &[0x0A, 0x01, 0x01], // pinType asciiNumeric
        &int(u32::from(min)),
        &int(u32::from(stored)),
        &int(u32::from(max)),
        &tlv(&[0x80], &[auth_id]), // pinReference [0]
        &octets(&[0xFF]),          // padChar (unused: no needs-padding flag)
    ]);
    seq(&[
        &common(label, None, protected_by, &rules),
        &seq(&[&octets(&[auth_id])]),
        &tlv(&[0xA1], &attrs),
    ])
}

/// The CPS4 AODF (generated, `choices::CPS4_P15_AS_CPS3`): user PIN (ref 01, protected by the
/// PUK 02) and PUK (ref 02), the real CPS3 labels and common flags.
pub(crate) fn aodf(pin: (u8, u8), puk: Option<(u8, u8)>, knobs: &Knobs) -> Vec<u8> {
    // pinFlags: initialized(4); PUK adds unblockingPin(6) (+ soPin(7), see choices).
    let mut v = pin_entry(
        facts::PIN_LABEL,
        0x01,
        puk.map(|_| 0x02),
        1 << 4,
        pin.0,
        pin.1,
        pin.1,
    );
    if let Some((min, max)) = puk {
        let (so, unblocking) = knobs.puk_flags.unwrap_or((choices::PUK_IS_SO_PIN, true));
        let so = if so { 1 << 7 } else { 0 };
        let unblocking = if unblocking { 1 << 6 } else { 0 };
        v.extend(pin_entry(
            facts::PUK_LABEL,
            0x02,
            None,
            (1 << 4) | unblocking | so,
            min,
            max,
            max,
        ));
    }
    v
}

/// A private RSA key entry as in the real PrKDF (docs/card-spec.md §1.5, GH#2267).
pub(crate) struct PrivateKeyEntry<'a> {
    pub(crate) label: &'a str,
    pub(crate) id: Vec<u8>,
    pub(crate) aid: &'a [u8],
    pub(crate) reference: u8,
    pub(crate) usage: u32,
    pub(crate) object_flags: u32,
    pub(crate) auth_id: Option<u8>,
    /// AccessControlRules mode bits: pso_cds 5, pso_decrypt 7, int_auth 9.
    pub(crate) rule_bits: &'a [u32],
    pub(crate) modulus_bits: u32,
}

/// Key usage bits.
pub(crate) const USAGE_DECRYPT: u32 = 1 << 1;
pub(crate) const USAGE_SIGN: u32 = 1 << 2;
pub(crate) const USAGE_NON_REPUDIATION: u32 = 1 << 9;

pub(crate) fn prkdf(keys: &[PrivateKeyEntry<'_>]) -> Vec<u8> {
    keys.iter()
        .flat_map(|k| {
            let rules: Vec<u8> = k
                .rule_bits
                .iter()
                .flat_map(|b| rule(*b, k.auth_id.or(Some(0x01))))
                .collect();
            let rules = if k.auth_id.is_none() { Vec::new() } else { rules };
            // accessFlags sensitive, alwaysSensitive, neverExtractable = 0x0D (GH#2267).
            let class = seq(&[
                &octets(&k.id),
                &named_bits(k.usage),
                &named_bits(0x0D),
                &int(u32::from(k.reference)),
            ]);
            // Path: empty octet string + the AID (`aid::` in OpenSC, docs/card-spec.md §1.5).
            let p = seq(&[&octets(&[]), &tlv(&[0x4F], k.aid)]);
            let type_attrs = tlv(&[0xA1], &seq(&[&p, &int(k.modulus_bits)]));
            seq(&[
                &common(k.label, Some(k.object_flags), k.auth_id, &rules),
                &class,
                &type_attrs,
            ])
        })
        .collect()
}

/// A CDF entry: the real common part (label, flags `03 02 08 00`, rules {read always; update with
/// authId 01}, GH#2224), ID, path to the certificate EF. The real entry's path is not in the dump
/// (its length, 0x52 in all, leaves 10 bytes for typeAttributes, i.e. a 2-byte FID; the FID is
/// unknown): ours is absolute `3F00/<df>/<fid>`.
pub(crate) fn cdf_entry(label: &str, id: &[u8], df: u16, fid: u16, knobs: &Knobs) -> Vec<u8> {
    seq(&[
        &seq(&[&utf8(label), &facts::CDF_COMMON_AFTER_LABEL]),
        &seq(&[&octets(id)]),
        &tlv(&[0xA1], &seq(&[&knobs.path(df, fid)])),
    ])
}

/// A DODF opaque data object entry, application name "CPS" (docs/card-spec.md §5.3).
pub(crate) fn dodf_entry(
    label: &str,
    private: bool,
    modifiable: bool,
    df: u16,
    fid: u16,
    knobs: &Knobs,
) -> Vec<u8> {
    let mut flags = 0;
    if private {
        flags |= FLAG_PRIVATE;
    }
    if modifiable {
        flags |= FLAG_MODIFIABLE;
    }
    let auth = (private || modifiable).then_some(0x01);
    let com = seq(&[
        &utf8(label),
        &if flags == 0 { Vec::new() } else { named_bits(flags) },
        &auth.map(|a| octets(&[a])).unwrap_or_default(),
    ]);
    seq(&[&com, &seq(&[&utf8("CPS")]), &tlv(&[0xA1], &knobs.path(df, fid))])
}

pub(crate) const OBJECT_PRIVATE: u32 = FLAG_PRIVATE;
pub(crate) const OBJECT_MODIFIABLE: u32 = FLAG_MODIFIABLE;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ef_dir_has_the_real_size() {
        assert_eq!(ef_dir(&Knobs::default()).len(), 0x65);
    }

    #[test]
    fn sha256_rsa_algorithm_entry_matches_spec_9() {
        assert_eq!(
            hex::encode_upper(algorithm(4, 0x40, OP_SIGN, &OID_SHA256_RSA, 0x42)),
            "301A02010402014005000302064006092A864886F70D01010B020142"
        );
    }

    #[test]
    fn cps4_pin_entry_common_part_is_the_real_one() {
        let e = aodf((4, 8), Some((8, 8)), &Knobs::default());
        let (outer, _) = crate::tlv::read(&e).unwrap();
        let (com, _) = crate::tlv::read(outer.value).unwrap();
        assert_eq!(com.value.len(), 63);
        // label, then the real non-DER flags and the PUK's authId (GH#2224)
        assert_eq!(&com.value[..33], &facts::AODF_CPS3[4..37]);
        assert_eq!(&com.value[30..36], [0x03, 0x01, 0x08, 0x04, 0x01, 0x02]);
    }

    #[test]
    fn real_aodf_is_two_well_formed_objects() {
        let (pin, rest) = crate::tlv::read(&facts::AODF_CPS3).unwrap();
        let (puk, rest) = crate::tlv::read(rest).unwrap();
        assert!(rest.is_empty());
        assert_eq!((pin.value.len(), puk.value.len()), (0x61, 0x58));
        let (label, _) = crate::tlv::read(crate::tlv::read(puk.value).unwrap().0.value).unwrap();
        assert_eq!(label.value, facts::PUK_LABEL.as_bytes());
    }

    #[test]
    fn cdf_entry_starts_as_the_real_one() {
        // GH#2224: `30 52 30 34 0C 1B "Certificat de Signature CPS" 03 02 08 00 30 11 … 30 10 04 0E`
        let mut id = facts::AID_P15_CONTACT.to_vec();
        id.push(0x01);
        let e = cdf_entry(facts::LABEL_CERT_SIG, &id, 0x0001, 0xA001, &Knobs::default());
        let real_head = concat!(
            "3034 0C1B 436572746966696361742064652053",
            "69676E617475726520435053",
            " 03020800 30113006030207800500300703020640040101",
            " 3010040E E828BD080F8025000001FF001001"
        );
        let real_head: String = real_head.split_whitespace().collect();
        assert!(
            hex::encode_upper(&e[2..]).starts_with(&real_head),
            "{}",
            hex::encode_upper(&e)
        );
    }
}
