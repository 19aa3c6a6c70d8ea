//! Status-word handling shared by the PIN commands of both generations (docs/card-spec.md §3.2, §3.3).

use cpx_apdu::StatusWord;

use crate::error::CardError;
use crate::pin::PinKind;

/// Result of VERIFY / CHANGE: `63Cx` is a wrong code with x tries left (x = 0: blocked, as
/// `63C0` on CPS4, docs/card-spec.md §3.3), `6983`/`6984` blocked. Never retried.
pub(crate) fn check(kind: PinKind, operation: &'static str, sw: StatusWord) -> Result<(), CardError> {
    match (sw.0, sw.1) {
        (0x90, 0x00) => Ok(()),
        (0x63, 0xC0) | (0x69, 0x83) | (0x69, 0x84) => Err(CardError::PinBlocked { kind }),
        (0x63, x) if x & 0xF0 == 0xC0 => Err(CardError::WrongPin {
            kind,
            tries_left: x & 0x0F,
        }),
        _ => Err(CardError::from_sw(operation, sw)),
    }
}

/// `<cla> 20 FF <ref>` for each code (ISO/IEC 7816-4 §11.5.6: VERIFY P1 FF without data resets
/// the verified state; docs/card-spec.md §3.2 VERIFY forms and CLA). The PIN object's path is selected first,
/// as for VERIFY (docs/card-spec.md §3.1). `Ok(false)` when the card refuses the form (the caller then resets
/// the card).
pub(crate) fn reset_verified(
    io: &mut crate::io::Io<'_>,
    st: &mut crate::state::State,
    kinds: &[PinKind],
) -> Result<bool, CardError> {
    let cla = st.generation.capabilities().cla;
    for kind in kinds {
        let (policy, path) = st.policy(io, *kind)?;
        if let Some(p) = path {
            io.select(&p.absolute(&st.app_path), "select PIN object")?;
        }
        let r = io.transmit(&crate::commands::verify_reset(cla, policy.reference))?;
        if !r.is_success() {
            log::debug!(target: "cpx::card", "VERIFY P1=FF of the {kind}: {}", r.sw());
            return Ok(false);
        }
    }
    Ok(true)
}

/// Whether the card has the code verified now: VERIFY without data (`<cla> 20 00 <ref>`, case 1)
/// answers `9000` when it is, `63Cx` (or `6983`/`6984`, blocked) when not, and never spends a
/// try (ISO/IEC 7816-4 §11.5.6; the CPS4's PIN status query, docs/card-spec.md §3.2, §10.6; what OpenSC's
/// driver sends to a CPS3, docs/card-spec.md §8). The PIN object's path is selected first, as for VERIFY.
/// `None` for any other answer (the caller then knows nothing).
pub(crate) fn verified_now(
    io: &mut crate::io::Io<'_>,
    st: &mut crate::state::State,
    kind: PinKind,
) -> Result<Option<bool>, CardError> {
    let cla = st.generation.capabilities().cla;
    let (policy, path) = st.policy(io, kind)?;
    if let Some(p) = path {
        io.select(&p.absolute(&st.app_path), "select PIN object")?;
    }
    let r = io.transmit(&crate::commands::verify_status(cla, policy.reference))?;
    Ok(match (r.sw().0, r.sw().1) {
        (0x90, 0x00) => Some(true),
        (0x63, x) if x & 0xF0 == 0xC0 => Some(false),
        (0x69, 0x83 | 0x84) => Some(false),
        _ => {
            log::debug!(target: "cpx::card", "VERIFY without data of the {kind}: {}", r.sw());
            None
        }
    })
}

/// The pad format of the code `kind` and its policy and path, checked before anything is sent.
pub(crate) fn pad_format(
    io: &mut crate::io::Io<'_>,
    st: &mut crate::state::State,
    kind: PinKind,
    pad: &crate::pinpad::PadReader,
    shared: bool,
    operation: &'static str,
) -> Result<
    (
        crate::pinpad::PadFormat,
        crate::pin::PinPolicy,
        Option<crate::Path>,
    ),
    CardError,
> {
    let (policy, path) = st.policy(io, kind)?;
    let format = crate::pinpad::format_for(io, &policy, pad, kind, shared, operation)?;
    Ok((format, policy, path))
}

/// `<cla> 20 00 <ref> Lc <code>` with the code entered on the pad: the same command as a host
/// VERIFY of the same digits (the block from the same policy, crate::pinpad), the PIN object's
/// path selected first as for VERIFY (docs/card-spec.md §3.1, §3.2). Never retried.
pub(crate) fn pad_verify(
    io: &mut crate::io::Io<'_>,
    st: &mut crate::state::State,
    kind: PinKind,
    pad: &crate::pinpad::PadReader,
    cla: u8,
) -> Result<(), CardError> {
    let (format, policy, path) = pad_format(io, st, kind, pad, false, "verify")?;
    let structure = crate::pinpad::verify_structure([cla, 0x20, 0x00, policy.reference], format);
    if let Some(p) = path {
        io.select(&p.absolute(&st.app_path), "select PIN object")?;
    }
    let sw = io.pad_control(pad.verify, &structure, "verify")?;
    check(kind, "verify", sw)
}
