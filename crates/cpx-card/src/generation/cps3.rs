//! The CPS3 (Oberthur IAS-ECC) generation: its table of facts, its ATRs, and its driver (PIN
//! commands and cryptography, docs/card-spec.md §3, §4.2, §4.3, §7, §8, §9).

use cpx_apdu::tlv;
use cpx_transport::ExchangePolicy;
use zeroize::Zeroizing;

use super::{Capabilities, Driver, FileSelection, Generation, KeyReferences, KnownAtr};
use crate::atr::Interface;
use crate::commands as cmd;
use crate::crypto::{KeyRole, ToSign, hash_input, host_digest};
use crate::error::CardError;
use crate::hash::HashAlg;
use crate::io::Io;
use crate::pin::{Pin, PinKind, PinPolicy, PinStatus, PinType};
use crate::pinops;
use crate::pinpad::{self, Modify, PadReader};
use crate::state::State;
use cpx_transport::ControlCode;

impl Generation {
    /// CPS3: Oberthur IAS-ECC.
    #[allow(non_upper_case_globals)]
    pub const Cps3: Generation = Generation(&Cps3);
}

/// The CPS3 driver.
struct Cps3;

/// The CPS3's facts, each with its source.
static CAPABILITIES: Capabilities = Capabilities {
    // docs/card-spec.md §5.2: the names the official module shows.
    name: "CPS3",
    model: "IAS ECC",
    // Cache numbering of the module's disk cache (was the generation number).
    cache_id: 3,
    cache_name: "cps3",
    atrs: ATRS,
    // docs/card-spec.md §2.3: basic channel.
    cla: cmd::CLA_CPS3,
    // docs/card-spec.md §2.1: the IAS application.
    aid: &cmd::AID_CPS,
    // docs/card-spec.md §2.3: the CPS3 needs no selection at open (default application).
    select_aid_at_open: false,
    // docs/card-spec.md §2.2 CPS3 column.
    file_selection: FileSelection::IasPathFromMf,
    // docs/card-spec.md §2.3, §8.1: `max_recv_size` 0xE7.
    read_chunk: 0xE7,
    // docs/card-spec.md §2.3, §8.1: GET RESPONSE of at most 0xE7 bytes.
    exchange: ExchangePolicy {
        max_chunk: 0xE7,
        max_response_len: 16 * 1024,
        reissue_on_6cxx: true,
    },
    // docs/card-spec.md §2.3: `6Exx` and `6A86` only.
    reselect_on: None,
    // docs/card-spec.md §1.3: `00 A4 09 0C` + `00 B0 00 00 0C`; the content check covers the size.
    serial_size_checked: false,
    // One GET RESPONSE less on T=0: the DER header gives the size (docs/card-spec.md §8.1).
    der_size_from_header: true,
    // docs/card-spec.md §1.4 point 4 (real trace): 3F00/0001.
    fixed_contact_app_path: Some(&[0x3F, 0x00, 0x00, 0x01]),
    // docs/card-spec.md §5.7.
    ef_actua: true,
    // docs/card-spec.md §2.4, §8.8.
    cps2ter_objects: true,
    // docs/card-spec.md §4.1 Tableau 2: PKCS#1 v1.5 only.
    pss: false,
    // docs/card-spec.md §4.3: the contact authentication key deciphers.
    decrypt: true,
    // docs/card-spec.md §4.2: PSO HASH finishes the hash on the card.
    signature_hash_on_card: true,
    // docs/card-spec.md §1.5: defaults 81 / 82.
    keys: KeyReferences {
        signature: 0x81,
        authentication: 0x82,
        authentication_fixed: false,
    },
    // docs/card-spec.md §3.1 defaults (docs/card-notes.md §4): 4-digit PIN, 8-digit PUK, references 01/02,
    // unpadded.
    user_pin: PinPolicy {
        min_len: 4,
        max_len: 4,
        stored_len: 4,
        needs_padding: false,
        pad_char: 0x00,
        pin_type: PinType::AsciiNumeric,
        reference: 0x01,
    },
    puk: PinPolicy {
        min_len: 8,
        max_len: 8,
        stored_len: 8,
        needs_padding: false,
        pad_char: 0x00,
        pin_type: PinType::AsciiNumeric,
        reference: 0x02,
    },
};

const ATRS: &[KnownAtr] = &[
    // docs/card-spec.md §1.1 row 1; with the declared mask it also matches the docs/card-notes.md §2 variant
    // 3B AC 00 40 2A 00 12 25 00 64 80 82 02 12 00 90 00.
    KnownAtr {
        atr: &[
            0x3B, 0xAC, 0x00, 0x40, 0x2A, 0x00, 0x12, 0x25, 0x00, 0x64, 0x80, 0x00, 0x03, 0x10, 0x00, 0x90,
            0x00,
        ],
        mask: Some(&[
            0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0xFF, 0xFF,
            0xFF,
        ]),
        interface: Interface::Contact,
    },
    // docs/card-spec.md §1.1 row 2; the mask also matches the registry/minidriver form 3B 8F … 00 00 EC C0 …
    // (docs/card-spec.md §1.1 Windows registry, docs/card-notes.md §2).
    KnownAtr {
        atr: &[
            0x3B, 0x8F, 0x80, 0x01, 0x00, 0x31, 0xB8, 0x64, 0x04, 0xB0, 0xEC, 0xC1, 0x73, 0x94, 0x01, 0x80,
            0x82, 0x90, 0x00, 0x0E,
        ],
        mask: Some(&[
            0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0xFF, 0xC0, 0xFF, 0xFF, 0xFF, 0xFF,
            0xFF, 0xFF, 0xFF, 0xFF,
        ]),
        interface: Interface::Contactless,
    },
];

impl Driver for Cps3 {
    fn capabilities(&self) -> &'static Capabilities {
        &CAPABILITIES
    }

    /// `00 A4 04 04 08 <AID>` (docs/card-spec.md §2.3).
    fn select_application(&self, io: &mut Io<'_>) -> Result<(), CardError> {
        let r = io.transmit_once(&cmd::cps3_select_cps_aid()?)?;
        if !r.is_success() {
            return Err(CardError::from_sw("select the IAS application", r.sw()));
        }
        Ok(())
    }

    fn pin_status(
        &self,
        io: &mut Io<'_>,
        st: &mut State,
        kinds: &[PinKind],
    ) -> Result<Vec<PinStatus>, CardError> {
        pin_status(io, st, kinds)
    }

    fn verify(&self, io: &mut Io<'_>, st: &mut State, kind: PinKind, pin: &Pin) -> Result<(), CardError> {
        verify(io, st, kind, pin)
    }

    fn change(&self, io: &mut Io<'_>, st: &mut State, old: &Pin, new: &Pin) -> Result<(), CardError> {
        change(io, st, old, new)
    }

    fn unblock(&self, io: &mut Io<'_>, st: &mut State, puk: &Pin, new: &Pin) -> Result<(), CardError> {
        unblock(io, st, puk, new)
    }

    fn unblock_verified(&self, io: &mut Io<'_>, st: &mut State, new: &Pin) -> Result<(), CardError> {
        unblock_verified(io, st, new)
    }

    fn verify_pad(
        &self,
        io: &mut Io<'_>,
        st: &mut State,
        kind: PinKind,
        pad: &PadReader,
    ) -> Result<(), CardError> {
        pinops::pad_verify(io, st, kind, pad, cmd::CLA_CPS3)
    }

    fn change_pad(&self, io: &mut Io<'_>, st: &mut State, pad: &PadReader) -> Result<(), CardError> {
        change_pad(io, st, pad)
    }

    fn unblock_pad(&self, io: &mut Io<'_>, st: &mut State, pad: &PadReader) -> Result<(), CardError> {
        // The new PIN's structure is checked before the PUK is asked (and a try spent).
        unblock_structure(io, st, pad)?;
        pinops::pad_verify(io, st, PinKind::Puk, pad, cmd::CLA_CPS3)?;
        unblock_verified_pad(io, st, pad)
    }

    fn unblock_verified_pad(
        &self,
        io: &mut Io<'_>,
        st: &mut State,
        pad: &PadReader,
    ) -> Result<(), CardError> {
        unblock_verified_pad(io, st, pad)
    }

    fn sign(
        &self,
        io: &mut Io<'_>,
        st: &mut State,
        role: KeyRole,
        input: ToSign<'_>,
    ) -> Result<Vec<u8>, CardError> {
        sign(io, st, role, input)
    }

    fn decrypt(
        &self,
        io: &mut Io<'_>,
        st: &mut State,
        role: KeyRole,
        cryptogram: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CardError> {
        decrypt(io, st, role, cryptogram)
    }
}

const MF: [u8; 2] = [0x3F, 0x00];

/// MSE algorithm references (docs/card-spec.md §4.2, §4.3, §9).
const ALG_HT_SHA1: u8 = 0x10;
const ALG_HT_SHA256: u8 = 0x40;
const ALG_DST_SHA1: u8 = 0x12;
const ALG_DST_SHA256: u8 = 0x42;
const ALG_AT_PKCS1: u8 = 0x02;
const ALG_CT_PKCS1: u8 = 0x1A;
/// CRT tags of MSE SET.
const CRT_DST: u8 = 0xB6;
const CRT_AT: u8 = 0xA4;
const CRT_CT: u8 = 0xB8;

/// Parse the GET DATA reply `70 { BF 81 <ref> { A0 { 9A max, 9B left, 9D usage } } }` (docs/card-spec.md
/// §3.2): usage 0 forces tries left to 0.
pub fn parse_pin_data(data: &[u8], reference: u8) -> Result<PinStatus, CardError> {
    let bad = |r: String| CardError::malformed(format!("PIN SDO {reference:02X}"), r);
    let find = |tag: u32| -> Result<Option<&[u8]>, CardError> {
        tlv::find_path(data, &[0x70, 0xBF8100 | u32::from(reference), 0xA0, tag])
            .map(|t| t.map(|t| t.value))
            .map_err(|e| bad(e.to_string()))
    };
    let byte = |v: Option<&[u8]>| v.and_then(|v| v.last().copied());
    let max = byte(find(0x9A)?);
    let mut left = byte(find(0x9B)?).ok_or_else(|| bad("no tries-left tag 9B".into()))?;
    let usage = find(0x9D)?.map(|v| v.iter().fold(0u16, |a, b| (a << 8) | u16::from(*b)));
    if usage == Some(0) {
        left = 0;
    }
    Ok(PinStatus {
        tries_left: Some(left),
        max_tries: max,
        blocked: left == 0,
        verified: None,
        usage_left: usage,
    })
}

/// `SELECT 3F00` once, then GET DATA per code (docs/card-spec.md §3.2, §8.4).
pub(crate) fn pin_status(
    io: &mut Io<'_>,
    st: &mut State,
    kinds: &[PinKind],
) -> Result<Vec<PinStatus>, CardError> {
    let mut refs = Vec::new();
    for kind in kinds {
        refs.push(st.policy(io, *kind)?.0.reference);
    }
    io.select(&MF, "select MF")?;
    refs.into_iter()
        .map(|r| {
            let data = io.ok(&cmd::cps3_get_pin_data(r)?, "PIN status")?;
            parse_pin_data(&data, r)
        })
        .collect()
}

/// VERIFY with the AODF's format (docs/card-spec.md §3.1, §8.5); the PIN object's path selected first if any.
pub(crate) fn verify(io: &mut Io<'_>, st: &mut State, kind: PinKind, pin: &Pin) -> Result<(), CardError> {
    let (policy, path) = st.policy(io, kind)?;
    let value = policy.format(kind, pin)?;
    if let Some(p) = path {
        io.select(&p.absolute(&st.app_path), "select PIN object")?;
    }
    let r = io.transmit(&cmd::verify(cmd::CLA_CPS3, policy.reference, &value)?)?;
    pinops::check(kind, "verify", r.sw())
}

/// `00 24 00 <ref> Lc old ‖ new`, both formatted by the AODF (docs/card-spec.md §3.2, §9).
pub(crate) fn change(io: &mut Io<'_>, st: &mut State, old: &Pin, new: &Pin) -> Result<(), CardError> {
    let (policy, _) = st.policy(io, PinKind::User)?;
    let (old, new) = (
        policy.format(PinKind::User, old)?,
        policy.format(PinKind::User, new)?,
    );
    // Exact capacity: growing the buffer would leave an unwiped copy of the old PIN behind.
    let mut data = Zeroizing::new(Vec::with_capacity(old.len() + new.len()));
    data.extend_from_slice(&old);
    data.extend_from_slice(&new);
    let r = io.transmit(&cmd::change_reference_data(
        cmd::CLA_CPS3,
        0x00,
        policy.reference,
        &data,
    )?)?;
    pinops::check(PinKind::User, "change PIN", r.sw())
}

/// VERIFY of the PUK, then `00 2C 02 <ref> Lc <new>` (docs/card-spec.md §3.2 C_Login(SO) + C_InitPIN, §9).
pub(crate) fn unblock(io: &mut Io<'_>, st: &mut State, puk: &Pin, new: &Pin) -> Result<(), CardError> {
    // A malformed new PIN is refused before the PUK try is spent.
    st.policy(io, PinKind::User)?.0.format(PinKind::User, new)?;
    verify(io, st, PinKind::Puk, puk)?;
    unblock_verified(io, st, new)
}

/// `00 2C 02 <ref> Lc <new>` with the PUK already verified (docs/card-spec.md §3.2 C_InitPIN, §9).
pub(crate) fn unblock_verified(io: &mut Io<'_>, st: &mut State, new: &Pin) -> Result<(), CardError> {
    let (user, _) = st.policy(io, PinKind::User)?;
    let new_value = user.format(PinKind::User, new)?;
    reset_retry_counter(io, user.reference, &new_value)
}

/// `00 24 00 <ref> Lc old ‖ new` through the pad's MODIFY: current PIN, new PIN and its
/// confirmation typed on the pad, each in a block of the AODF's format (docs/card-spec.md §3.2,
/// §8.5), so the card receives what [`change`] sends for the same digits.
fn change_pad(io: &mut Io<'_>, st: &mut State, pad: &PadReader) -> Result<(), CardError> {
    let modify = pinpad::need_modify(pad, io.reader(), "change PIN")?;
    let (format, policy, _) = pinops::pad_format(io, st, PinKind::User, pad, true, "change PIN")?;
    let structure = pinpad::modify_structure(
        [cmd::CLA_CPS3, 0x24, 0x00, policy.reference],
        format,
        Modify::OldAndNew,
    );
    let sw = io.pad_control(modify, &structure, "change PIN")?;
    pinops::check(PinKind::User, "change PIN", sw)
}

/// The MODIFY structure of `00 2C 02 <ref> Lc <new>` (docs/card-spec.md §3.2, §9): the new PIN
/// typed and confirmed on the pad, in the AODF's format.
fn unblock_structure(
    io: &mut Io<'_>,
    st: &mut State,
    pad: &PadReader,
) -> Result<(ControlCode, Vec<u8>), CardError> {
    let modify = pinpad::need_modify(pad, io.reader(), "unblock PIN")?;
    let (format, policy, _) = pinops::pad_format(io, st, PinKind::User, pad, false, "unblock PIN")?;
    let structure = pinpad::modify_structure(
        [cmd::CLA_CPS3, 0x2C, 0x02, policy.reference],
        format,
        Modify::NewConfirmed,
    );
    Ok((modify, structure))
}

/// `00 2C 02 <ref> Lc <new>` with the new PIN from the pad, the PUK already verified.
fn unblock_verified_pad(io: &mut Io<'_>, st: &mut State, pad: &PadReader) -> Result<(), CardError> {
    let (modify, structure) = unblock_structure(io, st, pad)?;
    let sw = io.pad_control(modify, &structure, "unblock PIN")?;
    reset_retry_counter_sw(sw)
}

fn reset_retry_counter(io: &mut Io<'_>, reference: u8, new_value: &[u8]) -> Result<(), CardError> {
    let r = io.transmit(&cmd::cps3_reset_retry_counter(reference, new_value)?)?;
    reset_retry_counter_sw(r.sw())
}

fn reset_retry_counter_sw(sw: cpx_apdu::StatusWord) -> Result<(), CardError> {
    match sw.to_u16() {
        0x9000 => Ok(()),
        // docs/card-spec.md §3.3: during unblock, NOT_ALLOWED means the PUK is blocked.
        0x6984..=0x6986 | 0x6900 | 0x6983 => Err(CardError::PinBlocked { kind: PinKind::Puk }),
        _ => Err(CardError::from_sw("unblock PIN", sw)),
    }
}

fn hash_refs(alg: HashAlg) -> (u8, u8) {
    match alg {
        HashAlg::Sha1 => (ALG_HT_SHA1, ALG_DST_SHA1),
        HashAlg::Sha256 => (ALG_HT_SHA256, ALG_DST_SHA256),
    }
}

/// Signature or authentication (docs/card-spec.md §4.2, §4.3, §7). One SELECT of the application DF, then the
/// MSE and PSO of the spec; no duplicate SELECT.
pub(crate) fn sign(
    io: &mut Io<'_>,
    st: &mut State,
    role: KeyRole,
    input: ToSign<'_>,
) -> Result<Vec<u8>, CardError> {
    if matches!(input, ToSign::PssHash(_) | ToSign::Message { pss: true, .. }) {
        return Err(CardError::Unsupported {
            operation: "PSS signature",
            reason: "the CPS3 has no PSS (docs/card-spec.md §4.1)",
        });
    }
    if st.interface == Interface::Contactless && role == KeyRole::Signature {
        return Err(CardError::Unsupported {
            operation: "signature",
            reason: "no signature over the contactless interface (docs/card-spec.md §7)",
        });
    }
    let key = st.key(io, role)?;
    match (role, input) {
        (KeyRole::Signature, ToSign::Message { message, .. }) => {
            let alg = message.alg();
            let Some((state, bits, tail)) = message.card_parts() else {
                // An empty message: hash on the host, sign the hash (docs/card-spec.md §4.2 "precomputed").
                return sign_hash(io, st, key.reference, alg, &host_digest(message)?);
            };
            let (ht, dst) = hash_refs(alg);
            io.select(&st.app_path, "select application")?;
            io.ok(&cmd::cps3_mse_hash(ht)?, "MSE SET HT")?;
            let state = (bits > 0).then_some((&state[..], bits));
            io.ok(&cmd::cps3_pso_hash(state, tail)?, "PSO HASH")?;
            io.ok(&cmd::cps3_mse(CRT_DST, dst, key.reference)?, "MSE SET DST")?;
            io.ok(
                &cmd::pso_cds(cmd::CLA_CPS3, None)?,
                "PSO COMPUTE DIGITAL SIGNATURE",
            )
        }
        (KeyRole::Signature, ToSign::RsaPkcs(data) | ToSign::PssHash(data)) => {
            let (alg, h) = hash_input("sign a hash", data)?;
            sign_hash(io, st, key.reference, alg, h)
        }
        (KeyRole::Authentication, ToSign::Message { message, .. }) => {
            let di = message.alg().digest_info(&host_digest(message)?);
            internal_authenticate(io, st, key.reference, key.modulus_len, &di)
        }
        (KeyRole::Authentication, ToSign::RsaPkcs(data) | ToSign::PssHash(data)) => {
            internal_authenticate(io, st, key.reference, key.modulus_len, data)
        }
    }
}

/// MSE DST 12/42 + `00 2A 9E 9A Lc <hash> 00` (docs/card-spec.md §4.2 "signing a precomputed hash").
fn sign_hash(io: &mut Io<'_>, st: &State, key: u8, alg: HashAlg, hash: &[u8]) -> Result<Vec<u8>, CardError> {
    io.select(&st.app_path, "select application")?;
    io.ok(&cmd::cps3_mse(CRT_DST, hash_refs(alg).1, key)?, "MSE SET DST")?;
    io.ok(
        &cmd::pso_cds(cmd::CLA_CPS3, Some(hash))?,
        "PSO COMPUTE DIGITAL SIGNATURE",
    )
}

/// MSE AT 02 + INTERNAL AUTHENTICATE; input ≤ 40 % of the modulus (docs/card-spec.md §4.3, INT §8.2.4).
fn internal_authenticate(
    io: &mut Io<'_>,
    st: &State,
    key: u8,
    modulus: usize,
    data: &[u8],
) -> Result<Vec<u8>, CardError> {
    let max = modulus * 40 / 100;
    if data.is_empty() || data.len() > max {
        return Err(CardError::InvalidInput {
            operation: "authentication signature",
            reason: format!(
                "{} bytes; the card takes 1 to {max} (40 % of the modulus)",
                data.len()
            ),
        });
    }
    io.select(&st.app_path, "select application")?;
    io.ok(&cmd::cps3_mse(CRT_AT, ALG_AT_PKCS1, key)?, "MSE SET AT")?;
    io.ok(&cmd::cps3_internal_authenticate(data)?, "INTERNAL AUTHENTICATE")
}

/// MSE CT 1A + chained PSO DECIPHER of `81 ‖ cryptogram`; the card removes the padding (docs/card-spec.md
/// §4.3).
pub(crate) fn decrypt(
    io: &mut Io<'_>,
    st: &mut State,
    role: KeyRole,
    cryptogram: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CardError> {
    if role != KeyRole::Authentication || st.interface == Interface::Contactless {
        return Err(CardError::Unsupported {
            operation: "decrypt",
            reason: "only the contact authentication key deciphers (docs/card-spec.md §4.3, §7)",
        });
    }
    let key = st.key(io, role)?;
    if cryptogram.len() != key.modulus_len {
        return Err(CardError::InvalidInput {
            operation: "decrypt",
            reason: format!("{} bytes, the modulus is {}", cryptogram.len(), key.modulus_len),
        });
    }
    let mut data = Vec::with_capacity(cryptogram.len() + 1);
    data.push(0x81);
    data.extend_from_slice(cryptogram);
    io.select(&st.app_path, "select application")?;
    io.ok(&cmd::cps3_mse(CRT_CT, ALG_CT_PKCS1, key.reference)?, "MSE SET CT")?;
    io.chain(&cmd::pso_decipher(cmd::CLA_CPS3, &data)?, "PSO DECIPHER")
        .map(Zeroizing::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_pin_counter_replies() {
        // docs/card-spec.md §3.2 real reply (GH#2275).
        let pin = [
            0x70, 0x16, 0xBF, 0x81, 0x01, 0x12, 0xA0, 0x10, 0x9A, 0x01, 0x03, 0x9B, 0x01, 0x03, 0xA1, 0x08,
            0x8C, 0x06, 0xF3, 0x00, 0x00, 0x13, 0xFF, 0x00,
        ];
        let s = parse_pin_data(&pin, 1).unwrap();
        assert_eq!(
            (s.tries_left, s.max_tries, s.blocked, s.usage_left),
            (Some(3), Some(3), false, None)
        );
        // docs/card-spec.md §9 PUK reply: 9D 02 00 64.
        let puk = [
            0x70, 0x1A, 0xBF, 0x81, 0x02, 0x16, 0xA0, 0x14, 0x9A, 0x01, 0x0A, 0x9B, 0x01, 0x0A, 0x9D, 0x02,
            0x00, 0x64, 0xA1, 0x08, 0x8C, 0x06, 0xF3, 0x00, 0x00, 0x13, 0xFF, 0x00,
        ];
        let s = parse_pin_data(&puk, 2).unwrap();
        assert_eq!(
            (s.tries_left, s.max_tries, s.usage_left),
            (Some(10), Some(10), Some(100))
        );
        let mut spent = puk;
        spent[17] = 0;
        assert!(parse_pin_data(&spent, 2).unwrap().blocked);
        assert!(parse_pin_data(&pin, 2).is_err());
        assert!(parse_pin_data(&pin[..10], 1).is_err());
    }
}
