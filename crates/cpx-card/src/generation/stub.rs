//! A test-only generation (feature `stub-generation`), never a real card: a ChipDoc-like card
//! with its own ATR, its own application AID and 6–8 digit PINs. It exists to show, and test,
//! that a generation is added here alone: this file, its line in the registry, and the feature
//! in Cargo.toml; nothing in the rest of cpx-card, the PKCS#11 module or the CLI. The emulator
//! has the matching card (`kind = "cps5-test"`, crates/cpx-emulator).
//!
//! Every value below is a test choice, not a card fact: it only has to differ from the real
//! generations where the point is to show the difference (ATR, AID, PIN format, names).

use cpx_transport::ExchangePolicy;
use zeroize::Zeroizing;

use super::{Capabilities, Driver, FileSelection, Generation, KeyReferences, KnownAtr, cps4};
use crate::atr::Interface;
use crate::crypto::{KeyRole, ToSign};
use crate::error::CardError;
use crate::io::Io;
use crate::pin::{Pin, PinKind, PinPolicy, PinStatus, PinType};
use crate::pinpad::PadReader;
use crate::state::State;

impl Generation {
    /// The test-only stub generation (feature `stub-generation`): not a real card.
    #[allow(non_upper_case_globals)]
    pub const Cps5Test: Generation = Generation(&Cps5Test);
}

/// The stub driver: the ChipDoc commands (CLA 01) behind another AID.
struct Cps5Test;

/// The stub's application AID (a test choice, in the ANS range of docs/card-spec.md §2.1).
const AID: [u8; 8] = [0x80, 0x25, 0x00, 0x00, 0x01, 0xFF, 0x05, 0x00];

/// A numeric PIN of 6 to 8 digits, sent unpadded (test choice).
const PIN: PinPolicy = PinPolicy {
    min_len: 6,
    max_len: 8,
    stored_len: 8,
    needs_padding: false,
    pad_char: 0x00,
    pin_type: PinType::AsciiNumeric,
    reference: 0x01,
};

static CAPABILITIES: Capabilities = Capabilities {
    name: "CPS5-TEST",
    model: "Test stub",
    cache_id: 0xF5,
    cache_name: "cps5test",
    // The CPS4 final ATR with historical byte 12 (the generation, 04) set to 05; TCK adjusted.
    atrs: &[KnownAtr {
        atr: &[
            0x3B, 0x9B, 0x18, 0x80, 0x01, 0x00, 0x12, 0x25, 0x00, 0x64, 0x80, 0x00, 0x05, 0x01, 0x00, 0x90,
            0x45,
        ],
        mask: None,
        interface: Interface::Contact,
    }],
    cla: 0x01,
    aid: &AID,
    select_aid_at_open: true,
    file_selection: FileSelection::IsoPathAfterMf,
    read_chunk: 256,
    exchange: ExchangePolicy {
        max_chunk: 256,
        max_response_len: 16 * 1024,
        reissue_on_6cxx: true,
    },
    reselect_on: Some(0x6881),
    serial_size_checked: true,
    der_size_from_header: false,
    fixed_contact_app_path: None,
    ef_actua: false,
    cps2ter_objects: false,
    pss: true,
    decrypt: true,
    signature_hash_on_card: false,
    keys: KeyReferences {
        signature: 0x01,
        authentication: 0x20,
        authentication_fixed: true,
    },
    user_pin: PIN,
    puk: PinPolicy {
        min_len: 8,
        max_len: 8,
        reference: 0x02,
        ..PIN
    },
};

impl Driver for Cps5Test {
    fn capabilities(&self) -> &'static Capabilities {
        &CAPABILITIES
    }

    fn select_application(&self, io: &mut Io<'_>) -> Result<(), CardError> {
        cps4::select_applet(io, CAPABILITIES.cla, CAPABILITIES.aid)
    }

    fn pin_status(
        &self,
        io: &mut Io<'_>,
        st: &mut State,
        kinds: &[PinKind],
    ) -> Result<Vec<PinStatus>, CardError> {
        cps4::pin_status(io, st, kinds)
    }

    fn verify(&self, io: &mut Io<'_>, st: &mut State, kind: PinKind, pin: &Pin) -> Result<(), CardError> {
        cps4::verify(io, st, kind, pin)
    }

    fn change(&self, io: &mut Io<'_>, st: &mut State, old: &Pin, new: &Pin) -> Result<(), CardError> {
        cps4::change(io, st, old, new)
    }

    fn unblock(&self, io: &mut Io<'_>, st: &mut State, puk: &Pin, new: &Pin) -> Result<(), CardError> {
        cps4::unblock(io, st, puk, new)
    }

    fn unblock_verified(&self, io: &mut Io<'_>, st: &mut State, new: &Pin) -> Result<(), CardError> {
        cps4::unblock_verified(io, st, new)
    }

    fn verify_pad(
        &self,
        io: &mut Io<'_>,
        st: &mut State,
        kind: PinKind,
        pad: &PadReader,
    ) -> Result<(), CardError> {
        crate::pinops::pad_verify(io, st, kind, pad, CAPABILITIES.cla)
    }

    fn change_pad(&self, io: &mut Io<'_>, st: &mut State, pad: &PadReader) -> Result<(), CardError> {
        cps4::change_pad(io, st, pad)
    }

    fn unblock_pad(&self, io: &mut Io<'_>, st: &mut State, pad: &PadReader) -> Result<(), CardError> {
        cps4::unblock_pad(io, st, pad)
    }

    fn unblock_verified_pad(
        &self,
        io: &mut Io<'_>,
        st: &mut State,
        pad: &PadReader,
    ) -> Result<(), CardError> {
        cps4::unblock_verified_pad(io, st, pad)
    }

    fn sign(
        &self,
        io: &mut Io<'_>,
        st: &mut State,
        role: KeyRole,
        input: ToSign<'_>,
    ) -> Result<Vec<u8>, CardError> {
        cps4::sign(io, st, role, input)
    }

    fn decrypt(
        &self,
        io: &mut Io<'_>,
        st: &mut State,
        role: KeyRole,
        cryptogram: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CardError> {
        cps4::decrypt(io, st, role, cryptogram)
    }
}
