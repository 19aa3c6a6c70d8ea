//! Differential: random sequences of PIN operations (VERIFY right/wrong/malformed PIN and PUK,
//! change, unblock with the PUK, PIN status, verified-on-card, private and public reads, logout)
//! through the card layer against the emulator, in process, interleaved on the CPS3 with raw
//! SELECT and READ BINARY from "another program" sharing the card. After each step three views
//! must agree: the driver's answer, the emulator's stored state (tries, uses, value) and a small
//! model written from the rules (common/pin_model.rs: PIN tries, verified state, selected file),
//! so a driver bug the emulator shares shows.
//!
//! Input: `image ‖ operation bytes…` (each operation: kind ‖ its arguments).
#![no_main]

#[path = "common/pin_model.rs"]
mod model;

use std::sync::OnceLock;

use cpx_card::{Card, CardError, Pin, PinKind};
use cpx_emulator::{CardImage, CardKind, EmulatedCard, SharedCard, card_from_image};
use cpx_transport_virtual::VirtualChannel;
use cpx_vpcd::VirtualCard;
use libfuzzer_sys::fuzz_target;
use model::{Code, File, Files, Model, Outcome, RawOutcome, Selected};

/// Contact cards with a PIN: fresh CPS3 and CPS4, a blocked PIN, an exhausted PUK.
const STEMS: [&str; 4] = [
    "cps3-doctor",
    "cps4-doctor",
    "cps3-pin-blocked",
    "cps3-puk-blocked",
];

fn images() -> &'static [CardImage] {
    static IMAGES: OnceLock<Vec<CardImage>> = OnceLock::new();
    IMAGES.get_or_init(|| {
        STEMS
            .iter()
            .filter_map(|s| cpx_emulator::builtin_image(s).and_then(Result::ok))
            .collect()
    })
}

fn code(image: &CardImage, puk: bool) -> Code {
    let c = if puk { &image.puk } else { &image.pin };
    let c = c.as_ref().expect("contact images have a PIN and a PUK");
    Code {
        value: c.value.clone(),
        tries: c.tries_left,
        max: c.max_tries,
        uses: if puk {
            Some(c.usage_left.unwrap_or(100))
        } else {
            None
        },
        verified: Some(false),
    }
}

/// The CPS3 contact file system the model knows (common/pin_model.rs `Files`); `None` for the
/// CPS4, whose files sit behind logical channel 1 that the driver opened (docs/card-spec.md §10).
fn files(image: &CardImage) -> Option<Files> {
    if image.kind != CardKind::Cps3 {
        return None;
    }
    let mut sn = vec![0x5A, 0x0A];
    sn.extend_from_slice(&image.pan);
    let mut files = vec![
        (vec![0x3F, 0x00], File::Df),
        (vec![0x3F, 0x00, 0x00, 0x01], File::Df),
        (
            vec![0x3F, 0x00, 0xD0, 0x03],
            File::Ef {
                head: sn,
                private: false,
            },
        ),
    ];
    for d in image.data.iter().filter(|d| !d.content.is_empty()) {
        let mut path = vec![0x3F, 0x00, 0x00, 0x01];
        path.extend_from_slice(&d.fid.to_be_bytes());
        let head = d.content[..d.content.len().min(64)].to_vec();
        files.push((
            path,
            File::Ef {
                head,
                private: d.private,
            },
        ));
    }
    Some(Files {
        files,
        selected: Selected::Unknown,
    })
}

/// A path for a raw SELECT: one the model knows, or one no CPS3 has.
fn path_arg(byte: u8, files: &Files) -> Vec<u8> {
    match files.files.get(usize::from(byte) % (files.files.len() + 2)) {
        Some((p, _)) => p.clone(),
        None if byte & 1 == 0 => vec![0x3F, 0x00, 0x00, 0x01, 0x0F, 0xFF],
        None => vec![0x3F, 0x00, 0x4F, 0xFF],
    }
}

/// One raw command from another program straight to the card (not through the driver): 61xx
/// answered with GET RESPONSE, 6Cxx with the command again (T=0, ISO 7816-3 §10.3).
fn raw(card: &mut SharedCard, command: &[u8]) -> (Vec<u8>, u16) {
    let mut answer = card.transmit(command);
    let mut data = Vec::new();
    for _ in 0..64 {
        let n = answer.len();
        assert!(n >= 2, "raw {command:02X?}: answer without a status word");
        let (d, sw) = answer.split_at(n - 2);
        data.extend_from_slice(d);
        match sw[0] {
            0x61 => answer = card.transmit(&[0x00, 0xC0, 0x00, 0x00, sw[1]]),
            0x6C => {
                let mut again = command.to_vec();
                *again.last_mut().unwrap() = sw[1];
                answer = card.transmit(&again);
            }
            _ => return (data, u16::from_be_bytes([sw[0], sw[1]])),
        }
    }
    panic!("raw {command:02X?}: endless 61xx/6Cxx");
}

/// The raw answer must be what the model says; a private read teaches the model the verified
/// state when it did not know it.
fn check_raw(step: &str, (data, sw): (Vec<u8>, u16), want: RawOutcome, m: &mut Model) {
    match want {
        RawOutcome::Ok(head) => {
            assert_eq!(sw, 0x9000, "{step}: raw SW {sw:04X}, the model says 9000");
            assert!(
                data.starts_with(&head),
                "{step}: raw data {data:02X?} is not {head:02X?}"
            );
        }
        RawOutcome::NotFound => assert_eq!(sw, 0x6A82, "{step}: raw SW {sw:04X}, the model says 6A82"),
        RawOutcome::Denied => assert_eq!(sw, 0x6982, "{step}: raw SW {sw:04X}, the model says 6982"),
        RawOutcome::NotOk => assert_ne!(sw, 0x9000, "{step}: raw READ BINARY of a DF answered 9000"),
        RawOutcome::Unknown => match sw {
            0x9000 if m.pin.verified.is_none() => m.pin.verified = Some(true),
            0x6982 if m.pin.verified.is_none() => m.pin.verified = Some(false),
            _ => {}
        },
    }
}

/// A PIN argument: the current one, a wrong well-formed one, another well-formed one, malformed.
fn pin_arg(byte: u8, current: &[u8]) -> Vec<u8> {
    const OTHERS: [&[u8]; 4] = [b"0000", b"1111", b"5678", b"4321"];
    match byte % 8 {
        0..=3 => current.to_vec(),
        4 | 5 => OTHERS
            .iter()
            .find(|o| **o != current)
            .map_or(b"9999".to_vec(), |o| o.to_vec()),
        6 => OTHERS[usize::from(byte >> 4) % 4].to_vec(),
        _ => [&b"12"[..], b"12a4", b"123456789", b""][usize::from(byte >> 4) % 4].to_vec(),
    }
}

fn puk_arg(byte: u8, current: &[u8]) -> Vec<u8> {
    match byte % 4 {
        0 | 1 => current.to_vec(),
        2 => if current == b"00000000" {
            b"11111111"
        } else {
            b"00000000"
        }
        .to_vec(),
        _ => b"1234".to_vec(),
    }
}

/// The driver's answer must be what the model says.
fn check(step: &str, r: &Result<(), CardError>, want: Outcome, kind: PinKind) {
    let fine = match (want, r) {
        (Outcome::Ok, Ok(())) => true,
        (Outcome::Format, Err(CardError::PinFormat { kind: k, .. })) => *k == kind,
        (Outcome::Wrong(n), Err(CardError::WrongPin { kind: k, tries_left })) => {
            *k == kind && *tries_left == n
        }
        (Outcome::Wrong(0) | Outcome::Blocked, Err(CardError::PinBlocked { kind: k })) => *k == kind,
        _ => false,
    };
    assert!(fine, "{step}: driver said {r:?}, the rules say {want:?}");
}

/// The emulator's stored state must be the model's.
fn check_card(step: &str, card: &SharedCard, m: &Model) {
    let state = card.state();
    for (reference, c) in [(1u8, &m.pin), (2, &m.puk)] {
        let p = state
            .pins
            .iter()
            .find(|p| p.reference == reference)
            .expect("PIN objects");
        let value: String = c.value.iter().map(|b| format!("{b:02X}")).collect();
        assert!(
            p.value.eq_ignore_ascii_case(&value),
            "{step}: card code {reference} value differs from the model"
        );
        assert_eq!(p.tries_left, c.tries, "{step}: card code {reference} tries");
        if let Some(u) = c.uses {
            assert_eq!(p.usage_left, Some(u), "{step}: card PUK uses");
        }
    }
}

fn status(step: &str, card: &mut Card, kind: PinKind, c: &mut Code) {
    let s = card
        .pin_status(kind)
        .unwrap_or_else(|e| panic!("{step}: status of the {kind}: {e}"));
    assert_eq!(
        s.blocked,
        c.blocked(),
        "{step}: {kind} blocked? {s:?} vs model {c:?}"
    );
    if let Some(t) = s.tries_left {
        // CPS3 9D = 0 forces 0 tries left (docs/card-spec.md §3.2).
        let want = if c.uses == Some(0) { 0 } else { c.tries };
        assert_eq!(t, want, "{step}: {kind} tries left");
    }
    match (s.verified, c.verified) {
        (Some(v), Some(m)) => assert_eq!(v, m, "{step}: {kind} verified"),
        (Some(v), None) => c.verified = Some(v),
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, ops)) = data.split_first() else {
        return;
    };
    let image = &images()[usize::from(which) % images().len()];
    let emulated = SharedCard::new(card_from_image(image));
    let (channel, _control) = VirtualChannel::new("differential", Box::new(emulated.clone()));
    let mut card = Card::open(Box::new(channel)).expect("the emulator opens");
    let mut m = Model {
        pin: code(image, false),
        puk: code(image, true),
    };
    let mut files = files(image);
    let private = "CPS_ACTIVITY_01_PS";
    let mut it = ops.iter().copied().take(48);
    let mut n = 0;
    while let Some(op) = it.next() {
        n += 1;
        let mut arg = || it.next().unwrap_or(0);
        let step = format!("step {n} (op {op:02X}) on {}", image.token_serial);
        if op % 12 < 10 {
            // The driver selects what it needs: which file it leaves selected is its business.
            if let Some(f) = &mut files {
                f.selected = Selected::Unknown;
            }
        }
        match op % 12 {
            0 | 1 => {
                let given = pin_arg(arg(), &m.pin.value);
                let want = m.verify(false, &given);
                let r = card.verify_pin(&Pin::from_bytes(&given));
                check(&step, &r, want, PinKind::User);
                assert_eq!(card.pin_verified(), r.is_ok(), "{step}: pin_verified()");
            }
            2 => {
                let given = puk_arg(arg(), &m.puk.value);
                let want = m.verify(true, &given);
                check(
                    &step,
                    &card.verify(PinKind::Puk, &Pin::from_bytes(&given)),
                    want,
                    PinKind::Puk,
                );
            }
            3 => {
                let (a, b) = (arg(), arg());
                let (old, new) = (pin_arg(a, &m.pin.value), pin_arg(b, &m.pin.value));
                let want = m.change(&old, &new);
                let r = card.change_pin(&Pin::from_bytes(&old), &Pin::from_bytes(&new));
                check(&step, &r, want, PinKind::User);
            }
            4 => {
                let (a, b) = (arg(), arg());
                let (puk, new) = (puk_arg(a, &m.puk.value), pin_arg(b, &m.pin.value));
                let want = m.unblock(&puk, &new);
                let r = card.unblock_pin(&Pin::from_bytes(&puk), &Pin::from_bytes(&new));
                // A wrong PUK is the PUK's error; a malformed new PIN the PIN's. With both
                // malformed, which one is reported first is not said: either is right.
                let (puk_ok, new_ok) = (model::well_formed(&puk, true), model::well_formed(&new, false));
                let kind = match want {
                    Outcome::Format if puk_ok => PinKind::User,
                    Outcome::Format if !new_ok => match &r {
                        Err(CardError::PinFormat {
                            kind: PinKind::User, ..
                        }) => PinKind::User,
                        _ => PinKind::Puk,
                    },
                    _ => PinKind::Puk,
                };
                check(&step, &r, want, kind);
                assert!(!card.pin_verified(), "{step}: PIN verified after an unblock");
            }
            5 => status(&step, &mut card, PinKind::User, &mut m.pin),
            6 => status(&step, &mut card, PinKind::Puk, &mut m.puk),
            7 => {
                let now = card
                    .pin_verified_on_card()
                    .unwrap_or_else(|e| panic!("{step}: {e}"));
                match (now, m.pin.verified) {
                    (Some(v), Some(want)) => assert_eq!(v, want, "{step}: verified on card"),
                    (Some(v), None) => m.pin.verified = Some(v),
                    (None, _) => {}
                }
            }
            8 => {
                let private_read = arg() & 1 == 0;
                let r = card.read_data_object(if private_read { private } else { "CPS_NAME_PS" });
                match (&r, private_read, m.pin.verified) {
                    (Ok(_), false, _) => {}
                    (Ok(_), true, Some(v)) => assert!(v, "{step}: private object read without the PIN"),
                    (Ok(_), true, None) => m.pin.verified = Some(true),
                    (Err(CardError::SecurityStatusNotSatisfied { .. }), true, Some(v)) => {
                        assert!(!v, "{step}: PIN verified but the private read refused")
                    }
                    (Err(CardError::SecurityStatusNotSatisfied { .. }), true, None) => {
                        m.pin.verified = Some(false)
                    }
                    _ => panic!("{step}: read: {r:?}"),
                }
            }
            10 => {
                let byte = arg();
                if let Some(f) = &mut files {
                    let path = path_arg(byte, f);
                    let want = f.select(&path);
                    let mut c = vec![0x00, 0xA4, 0x09, 0x0C, path.len() as u8];
                    c.extend_from_slice(&path);
                    check_raw(&step, raw(&mut emulated.clone(), &c), want, &mut m);
                }
            }
            11 => {
                if let Some(f) = &files {
                    let le = match &f.selected {
                        Selected::File(File::Ef { head, .. }) => head.len() as u8,
                        _ => 0x10,
                    };
                    let want = f.read(m.pin.verified);
                    let private_unknown = want == RawOutcome::Unknown
                        && matches!(f.selected, Selected::File(File::Ef { private: true, .. }));
                    let got = raw(&mut emulated.clone(), &[0x00, 0xB0, 0x00, 0x00, le]);
                    if private_unknown {
                        check_raw(&step, got, RawOutcome::Unknown, &mut m);
                    } else {
                        check_raw(&step, got, want, &mut m.clone());
                    }
                }
            }
            _ => {
                card.logout().unwrap_or_else(|e| panic!("{step}: logout: {e}"));
                m.logout();
                assert!(!card.pin_verified(), "{step}: pin_verified() after logout");
            }
        }
        check_card(&step, &emulated, &m);
    }
});
