//! The CPS4 (NXP ChipDoc) generation: its table of facts, its ATRs, and its driver, CLA 01
//! (docs/card-spec.md §3.2 CPS4 column, §4.4, §10).

use cpx_transport::ExchangePolicy;
use zeroize::Zeroizing;

use super::{Capabilities, Driver, FileSelection, Generation, KeyReferences, KnownAtr};
use crate::atr::Interface;
use crate::commands::{self as cmd, AID_CPS, AID_CPS2TER, AID_ISD, CLA_CPS3, CLA_CPS4};
use crate::crypto::{KeyRole, ToSign, hash_input, host_digest};
use crate::error::CardError;
use crate::hash::{self, HashAlg};
use crate::io::Io;
use crate::pin::{Pin, PinKind, PinPolicy, PinStatus, PinType};
use crate::pinops;
use crate::pinpad::{self, Modify, PadReader};
use crate::state::State;
use cpx_transport::ControlCode;

impl Generation {
    /// CPS4: NXP ChipDoc, logical channel 1.
    #[allow(non_upper_case_globals)]
    pub const Cps4: Generation = Generation(&Cps4);
}

/// The CPS4 driver.
struct Cps4;

/// The CPS4's facts, each with its source.
static CAPABILITIES: Capabilities = Capabilities {
    // docs/card-spec.md §5.2: the names the official module shows.
    name: "CPS4",
    model: "ChipDoc",
    // Cache numbering of the module's disk cache (was the generation number).
    cache_id: 4,
    cache_name: "cps4",
    atrs: ATRS,
    // docs/card-spec.md §1.3: logical channel 1.
    cla: CLA_CPS4,
    // docs/card-spec.md §2.1: the ChipDoc applet.
    aid: &AID_CPS,
    // docs/card-spec.md §1.3: ChipDoc on channel 1, no MANAGE CHANNEL.
    select_aid_at_open: true,
    // docs/card-spec.md §2.2 CPS4 column, §10.2.
    file_selection: FileSelection::IsoPathAfterMf,
    // docs/card-spec.md §2.3, §10.13: 256-byte chunks.
    read_chunk: 256,
    // docs/card-spec.md §2.3, §10.13.
    exchange: ExchangePolicy {
        max_chunk: 256,
        max_response_len: 16 * 1024,
        reissue_on_6cxx: true,
    },
    // docs/card-spec.md §3.2: `6881` (channel not open) also asks for the applet again.
    reselect_on: Some(0x6881),
    // docs/card-spec.md §1.3: the module's `01 A4 08 00 02 D003 00`, whose FCI must give size 12.
    serial_size_checked: true,
    // The FCI costs nothing on T=1: certificates are sized from it.
    der_size_from_header: false,
    // docs/card-spec.md §10.3: the path comes from EF.DIR.
    fixed_contact_app_path: None,
    // docs/card-spec.md §5.7, §10.4: no EF_ACTUA.
    ef_actua: false,
    // docs/card-spec.md §10.14: nothing added.
    cps2ter_objects: false,
    // docs/card-spec.md §4.4: PSS with SHA-1 and SHA-256.
    pss: true,
    // docs/card-spec.md §4.4: raw decipher, padding removed on the host.
    decrypt: true,
    // docs/card-spec.md §4.4: hashes on the host.
    signature_hash_on_card: false,
    // docs/card-spec.md §1.5: the authentication key is 0x20, fixed by the module; signature default 01.
    keys: KeyReferences {
        signature: 0x01,
        authentication: 0x20,
        authentication_fixed: true,
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

/// docs/card-spec.md §1.1 rows 3–5: CPS4 release candidate, final, RC T=0 only (exact).
const ATRS: &[KnownAtr] = &[
    KnownAtr {
        atr: &[
            0x3B, 0x9B, 0x18, 0x80, 0x01, 0x00, 0x12, 0x25, 0x00, 0x64, 0x80, 0x00, 0x04, 0x01, 0x00, 0x90,
            0x44,
        ],
        mask: None,
        interface: Interface::Contact,
    },
    KnownAtr {
        atr: &[
            0x3B, 0x9B, 0x18, 0x80, 0x01, 0x00, 0x12, 0x25, 0x00, 0x64, 0x80, 0x04, 0x01, 0x00, 0x00, 0x90,
            0x44,
        ],
        mask: None,
        interface: Interface::Contact,
    },
    KnownAtr {
        atr: &[
            0x3B, 0xDC, 0x18, 0xFF, 0x00, 0x00, 0x12, 0x25, 0x00, 0x64, 0x80, 0x00, 0x04, 0x01, 0x00, 0x90,
            0x00,
        ],
        mask: None,
        interface: Interface::Contact,
    },
];

impl Driver for Cps4 {
    fn capabilities(&self) -> &'static Capabilities {
        &CAPABILITIES
    }

    /// The ChipDoc AID on channel 1, and on failure the fix-1722 sequence ISD, CPS2ter on
    /// channel 0, ChipDoc (docs/card-spec.md §1.3, §10.15; the first two status words are ignored).
    fn select_application(&self, io: &mut Io<'_>) -> Result<(), CardError> {
        select_applet(io, CAPABILITIES.cla, CAPABILITIES.aid)
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
        pinops::pad_verify(io, st, kind, pad, CLA_CPS4)
    }

    fn change_pad(&self, io: &mut Io<'_>, st: &mut State, pad: &PadReader) -> Result<(), CardError> {
        change_pad(io, st, pad)
    }

    fn unblock_pad(&self, io: &mut Io<'_>, st: &mut State, pad: &PadReader) -> Result<(), CardError> {
        unblock_pad(io, st, pad)
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

/// Select a Java Card applet on the channel of `cla`, and on failure the fix-1722 sequence
/// ISD, CPS2ter on channel 0, the applet again (docs/card-spec.md §1.3, §10.15; the first two status words
/// are ignored). Also used by generations built on the ChipDoc applet.
pub(crate) fn select_applet(io: &mut Io<'_>, cla: u8, aid: &[u8]) -> Result<(), CardError> {
    let select = cmd::select_aid(cla, aid)?;
    if io.transmit_once(&select)?.is_success() {
        return Ok(());
    }
    io.transmit_once(&cmd::select_aid(cla, &AID_ISD)?)?;
    io.transmit_once(&cmd::select_aid(CLA_CPS3, &AID_CPS2TER)?)?;
    let r = io.transmit_once(&select)?;
    if !r.is_success() {
        return Err(CardError::from_sw("select the ChipDoc applet", r.sw()));
    }
    Ok(())
}

/// MSE `91` algorithms (docs/card-spec.md §4.4).
fn alg(pss: bool, h: HashAlg) -> u8 {
    match (pss, h) {
        (false, HashAlg::Sha1) => 0x0A,
        (false, HashAlg::Sha256) => 0x28,
        (true, HashAlg::Sha1) => 0x15,
        (true, HashAlg::Sha256) => 0x2C,
    }
}

/// `01 20 00 <ref>`: `63Cx`, `9000` (verified), `6983` (blocked) (docs/card-spec.md §3.2, §10.6).
pub(crate) fn pin_status(
    io: &mut Io<'_>,
    st: &mut State,
    kinds: &[PinKind],
) -> Result<Vec<PinStatus>, CardError> {
    let mut out = Vec::new();
    for kind in kinds {
        let reference = st.policy(io, *kind)?.0.reference;
        let r = io.transmit(&cmd::verify_status(CLA_CPS4, reference))?;
        let blank = PinStatus {
            tries_left: None,
            max_tries: None,
            blocked: false,
            verified: None,
            usage_left: None,
        };
        out.push(match (r.sw().0, r.sw().1) {
            (0x90, 0x00) => PinStatus {
                verified: Some(true),
                ..blank
            },
            (0x63, x) if x & 0xF0 == 0xC0 => PinStatus {
                tries_left: Some(x & 0x0F),
                blocked: x & 0x0F == 0,
                verified: Some(false),
                ..blank
            },
            (0x69, 0x83) => PinStatus {
                tries_left: Some(0),
                blocked: true,
                verified: Some(false),
                ..blank
            },
            _ => return Err(CardError::from_sw("PIN status", r.sw())),
        });
    }
    Ok(out)
}

/// `01 20 00 <ref> Lc <code>` (docs/card-spec.md §3.2).
pub(crate) fn verify(io: &mut Io<'_>, st: &mut State, kind: PinKind, pin: &Pin) -> Result<(), CardError> {
    let (policy, path) = st.policy(io, kind)?;
    let value = policy.format(kind, pin)?;
    if let Some(p) = path {
        io.select(&p.absolute(&st.app_path), "select PIN object")?;
    }
    let r = io.transmit(&cmd::verify(CLA_CPS4, policy.reference, &value)?)?;
    pinops::check(kind, "verify", r.sw())
}

fn set_pin(io: &mut Io<'_>, reference: u8, value: &[u8]) -> Result<(), CardError> {
    let r = io.transmit(&cmd::change_reference_data(CLA_CPS4, 0x01, reference, value)?)?;
    pinops::check(PinKind::User, "set PIN", r.sw())
}

/// VERIFY old, then `01 24 01 <ref> Lc <new>` (docs/card-spec.md §10.7).
pub(crate) fn change(io: &mut Io<'_>, st: &mut State, old: &Pin, new: &Pin) -> Result<(), CardError> {
    let (policy, _) = st.policy(io, PinKind::User)?;
    let new_value = policy.format(PinKind::User, new)?;
    verify(io, st, PinKind::User, old)?;
    set_pin(io, policy.reference, &new_value)
}

/// VERIFY PUK, `01 2C 03 <ref|80>`, `01 24 01 <ref> Lc <new>` (docs/card-spec.md §10.8).
pub(crate) fn unblock(io: &mut Io<'_>, st: &mut State, puk: &Pin, new: &Pin) -> Result<(), CardError> {
    // A malformed new PIN is refused before the PUK try is spent.
    st.policy(io, PinKind::User)?.0.format(PinKind::User, new)?;
    verify(io, st, PinKind::Puk, puk)?;
    unblock_verified(io, st, new)
}

/// `01 2C 03 <ref|80>`, `01 24 01 <ref> Lc <new>` with the PUK already verified (docs/card-spec.md §3.2
/// C_InitPIN, §10.8).
pub(crate) fn unblock_verified(io: &mut Io<'_>, st: &mut State, new: &Pin) -> Result<(), CardError> {
    let (policy, _) = st.policy(io, PinKind::User)?;
    let new_value = policy.format(PinKind::User, new)?;
    reset_and_set(io, policy.reference, &new_value)
}

fn reset_and_set(io: &mut Io<'_>, reference: u8, new_value: &[u8]) -> Result<(), CardError> {
    let r = io.transmit(&cmd::cps4_reset_retry_counter(reference))?;
    if !r.is_success() {
        return Err(match r.sw().to_u16() {
            0x6983..=0x6986 | 0x6900 => CardError::PinBlocked { kind: PinKind::Puk },
            _ => CardError::from_sw("unblock PIN", r.sw()),
        });
    }
    set_pin(io, reference, new_value)
}

/// The MODIFY structure of `01 24 01 <ref> Lc <new>` (docs/card-spec.md §10.7, §10.8): the new
/// PIN typed and confirmed on the pad, appended unpadded as the AODF says (Lc from the digits).
pub(crate) fn set_pin_structure(
    io: &mut Io<'_>,
    st: &mut State,
    pad: &PadReader,
    operation: &'static str,
) -> Result<(ControlCode, Vec<u8>), CardError> {
    let modify = pinpad::need_modify(pad, io.reader(), operation)?;
    let (format, policy, _) = pinops::pad_format(io, st, PinKind::User, pad, false, operation)?;
    let structure = pinpad::modify_structure(
        [CLA_CPS4, 0x24, 0x01, policy.reference],
        format,
        Modify::NewConfirmed,
    );
    Ok((modify, structure))
}

/// VERIFY of the current PIN on the pad, then `01 24 01 <ref> Lc <new>` with the new PIN typed
/// and confirmed on the pad (docs/card-spec.md §10.7): the commands [`change`] sends. Both
/// structures are checked before the first is sent.
pub(crate) fn change_pad(io: &mut Io<'_>, st: &mut State, pad: &PadReader) -> Result<(), CardError> {
    let (modify, structure) = set_pin_structure(io, st, pad, "change PIN")?;
    pinops::pad_format(io, st, PinKind::User, pad, false, "change PIN")?;
    pinops::pad_verify(io, st, PinKind::User, pad, CLA_CPS4)?;
    let sw = io.pad_control(modify, &structure, "change PIN")?;
    pinops::check(PinKind::User, "set PIN", sw)
}

/// VERIFY of the PUK on the pad, `01 2C 03 <ref|80>`, then the new PIN on the pad
/// (docs/card-spec.md §10.8).
pub(crate) fn unblock_pad(io: &mut Io<'_>, st: &mut State, pad: &PadReader) -> Result<(), CardError> {
    // Everything the pad must do is checked before the PUK is asked (and a try spent).
    set_pin_structure(io, st, pad, "unblock PIN")?;
    pinops::pad_format(io, st, PinKind::Puk, pad, false, "unblock PIN")?;
    pinops::pad_verify(io, st, PinKind::Puk, pad, CLA_CPS4)?;
    unblock_verified_pad(io, st, pad)
}

/// `01 2C 03 <ref|80>`, then `01 24 01 <ref> Lc <new>` with the new PIN typed and confirmed on
/// the pad, the PUK already verified (docs/card-spec.md §3.2 C_InitPIN, §10.8). A cancel at the
/// new PIN leaves the PIN unblocked with its old value, as a refused `24 01` does on the host
/// path.
pub(crate) fn unblock_verified_pad(
    io: &mut Io<'_>,
    st: &mut State,
    pad: &PadReader,
) -> Result<(), CardError> {
    let (modify, structure) = set_pin_structure(io, st, pad, "unblock PIN")?;
    let (policy, _) = st.policy(io, PinKind::User)?;
    let r = io.transmit(&cmd::cps4_reset_retry_counter(policy.reference))?;
    if !r.is_success() {
        return Err(match r.sw().to_u16() {
            0x6983..=0x6986 | 0x6900 => CardError::PinBlocked { kind: PinKind::Puk },
            _ => CardError::from_sw("unblock PIN", r.sw()),
        });
    }
    let sw = io.pad_control(modify, &structure, "unblock PIN")?;
    pinops::check(PinKind::User, "set PIN", sw)
}

/// Signature (docs/card-spec.md §4.4, §10.9–§10.12): hashes on the host; PKCS#1 v1.5 with the authentication
/// key through a host-built type-1 block and raw RSA.
pub(crate) fn sign(
    io: &mut Io<'_>,
    st: &mut State,
    role: KeyRole,
    input: ToSign<'_>,
) -> Result<Vec<u8>, CardError> {
    let key = st.key(io, role)?;
    let (pss, h, hash_value) = match input {
        ToSign::Message { pss, message } => (pss, message.alg(), host_digest(message)?),
        ToSign::PssHash(data) => {
            let h = HashAlg::from_len(data.len()).ok_or_else(|| CardError::InvalidInput {
                operation: "PSS signature",
                reason: format!("{} bytes is not a SHA-1/SHA-256 hash", data.len()),
            })?;
            (true, h, data.to_vec())
        }
        ToSign::RsaPkcs(data) if role == KeyRole::Signature => {
            let (h, v) = hash_input("sign a hash", data)?;
            (false, h, v.to_vec())
        }
        ToSign::RsaPkcs(data) => return raw_pkcs1(io, st, key.reference, key.modulus_len, data),
    };
    if role == KeyRole::Authentication && !pss {
        // docs/card-spec.md §10.11/§10.12: PKCS#1 v1.5 with this key only through raw RSA.
        let di = h.digest_info(&hash_value);
        return raw_pkcs1(io, st, key.reference, key.modulus_len, &di);
    }
    io.select(&st.app_path, "select application")?;
    io.ok(&cmd::cps4_mse_dst(alg(pss, h), key.reference)?, "MSE SET DST")?;
    io.ok(
        &cmd::pso_cds(CLA_CPS4, Some(&hash_value))?,
        "PSO COMPUTE DIGITAL SIGNATURE",
    )
}

/// Host PKCS#1 type-1 block + MSE CT `83 01 20` + chained raw decipher (docs/card-spec.md §4.4, §10.11).
fn raw_pkcs1(
    io: &mut Io<'_>,
    st: &State,
    key: u8,
    modulus: usize,
    data: &[u8],
) -> Result<Vec<u8>, CardError> {
    let block = hash::pkcs1_type1(data, modulus).ok_or_else(|| CardError::InvalidInput {
        operation: "authentication signature",
        reason: format!(
            "{} bytes; at most {} fit a PKCS#1 block",
            data.len(),
            modulus.saturating_sub(11)
        ),
    })?;
    raw_rsa(io, st, key, &block).map(|r| r.to_vec())
}

fn raw_rsa(io: &mut Io<'_>, st: &State, key: u8, block: &[u8]) -> Result<Zeroizing<Vec<u8>>, CardError> {
    io.select(&st.app_path, "select application")?;
    io.ok(&cmd::cps4_mse_ct(key)?, "MSE SET CT")?;
    io.chain(&cmd::pso_decipher(CLA_CPS4, block)?, "PSO DECIPHER")
        .map(Zeroizing::new)
}

/// Raw decipher of the bare cryptogram; the host removes the type-2 padding (docs/card-spec.md §4.4).
pub(crate) fn decrypt(
    io: &mut Io<'_>,
    st: &mut State,
    role: KeyRole,
    cryptogram: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CardError> {
    if role != KeyRole::Authentication {
        return Err(CardError::Unsupported {
            operation: "decrypt",
            reason: "only the authentication key deciphers (docs/card-spec.md §4.4)",
        });
    }
    let key = st.key(io, role)?;
    if cryptogram.len() != key.modulus_len {
        return Err(CardError::InvalidInput {
            operation: "decrypt",
            reason: format!("{} bytes, the modulus is {}", cryptogram.len(), key.modulus_len),
        });
    }
    let block = raw_rsa(io, st, key.reference, cryptogram)?;
    hash::pkcs1_type2_unpad(&block).ok_or_else(|| CardError::InvalidInput {
        operation: "decrypt",
        reason: "the deciphered block has no valid PKCS#1 type-2 padding".into(),
    })
}
