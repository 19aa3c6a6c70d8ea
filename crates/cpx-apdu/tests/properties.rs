//! Property tests: parsers never panic, encoders and parsers agree, chaining loses nothing.

use cpx_apdu::tlv::{self, Tlv};
use cpx_apdu::{ApduError, CLA_CHAINING, Case, Command, Response, chain};
use proptest::prelude::*;

/// A well-formed tag of 1 to 4 bytes, as `Tlv::tag` holds it, with the given constructed bit.
/// Built without filters; the first byte is never `00` or `FF` (padding, ISO 7816-4 §5.2.2.1).
fn tag_with(constructed: bool) -> impl Strategy<Value = u32> {
    let cons = if constructed { 0x20u8 } else { 0 };
    let single =
        (0u8..4, 1u8..=0x1E).prop_map(move |(class, number)| u32::from((class << 6) | cons | number));
    let multi = (0u8..4, prop::collection::vec(0x80u8..=0xFF, 0..=2), 0x00u8..=0x7F).prop_map(
        move |(class, middle, last)| {
            // Class 3 constructed would start with FF; use class 2 instead.
            let class = if class == 3 && constructed { 2 } else { class };
            let mut tag = u32::from((class << 6) | cons | 0x1F);
            for b in middle.into_iter().chain([last]) {
                tag = (tag << 8) | u32::from(b);
            }
            tag
        },
    );
    prop_oneof![single, multi]
}

fn tag() -> impl Strategy<Value = u32> {
    any::<bool>().prop_flat_map(tag_with)
}

fn is_constructed(tag: u32) -> bool {
    let first = tag.to_be_bytes().into_iter().find(|&b| b != 0).unwrap_or(0);
    first & 0x20 != 0
}

proptest! {
    #[test]
    fn response_from_bytes_never_panics(raw in prop::collection::vec(any::<u8>(), 0..600)) {
        match Response::from_bytes(&raw) {
            Ok(rsp) => {
                prop_assert!((2..=258).contains(&raw.len()));
                prop_assert_eq!(rsp.to_bytes().to_vec(), raw.clone());
                prop_assert_eq!(rsp.data(), &raw[..raw.len() - 2]);
            }
            Err(ApduError::ResponseTooShort(n)) => prop_assert!(n < 2 && n == raw.len()),
            Err(ApduError::ResponseTooLong(n)) => prop_assert!(n > 258 && n == raw.len()),
            Err(other) => prop_assert!(false, "unexpected {other:?}"),
        }
    }

    #[test]
    fn command_from_bytes_never_panics(raw in prop::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(cmd) = Command::from_bytes(&raw) {
            prop_assert_eq!(cmd.to_bytes().to_vec(), raw.clone());
        }
    }

    #[test]
    fn command_round_trip(
        header in any::<[u8; 4]>(),
        data in prop::collection::vec(any::<u8>(), 0..=255),
        le in prop::option::of(1u16..=256),
    ) {
        let [cla, ins, p1, p2] = header;
        let mut cmd = Command::new(cla, ins, p1, p2).with_data(data.clone()).unwrap();
        if let Some(le) = le {
            cmd = cmd.with_le(le).unwrap();
        }
        let raw = cmd.to_bytes();
        let expected_len = 4 + if data.is_empty() { 0 } else { 1 + data.len() } + usize::from(le.is_some());
        prop_assert_eq!(raw.len(), expected_len);
        let back = Command::from_bytes(&raw).unwrap();
        prop_assert_eq!(&back, &cmd);
        prop_assert_eq!(back.data(), &data[..]);
        prop_assert_eq!(back.le(), le);
        let case = match (data.is_empty(), le.is_some()) {
            (true, false) => Case::Case1,
            (true, true) => Case::Case2,
            (false, false) => Case::Case3,
            (false, true) => Case::Case4,
        };
        prop_assert_eq!(cmd.case(), case);
    }

    #[test]
    fn sensitive_data_never_traced(
        ins in prop::sample::select(vec![0x20u8, 0x24, 0x2C]),
        pin in prop::collection::vec(0x30u8..=0x39, 4..=16),
    ) {
        let cmd = Command::new(0x00, ins, 0x00, 0x01).with_data(pin.clone()).unwrap();
        let trace = cmd.trace();
        prop_assert_eq!(trace.matches("**").count(), pin.len());
        let pin_hex: Vec<String> = pin.iter().map(|b| format!("{b:02X}")).collect();
        let debug = format!("{cmd:?}");
        prop_assert!(!debug.contains(&pin_hex.concat()));
        prop_assert!(!trace.contains(&pin_hex.join(" ")));
    }

    #[test]
    fn chain_reassembles(
        header in any::<[u8; 4]>(),
        data in prop::collection::vec(any::<u8>(), 0..1200),
        le in prop::option::of(1u16..=256),
        chunk in 1usize..=255,
    ) {
        let [cla, ins, p1, p2] = header;
        let cmds = chain(cla, ins, p1, p2, &data, le, chunk).unwrap();
        prop_assert_eq!(cmds.len(), data.len().div_ceil(chunk).max(1));
        let joined: Vec<u8> = cmds.iter().flat_map(|c| c.data().to_vec()).collect();
        prop_assert_eq!(&joined, &data);
        let (last, rest) = cmds.split_last().unwrap();
        prop_assert_eq!(last.cla(), cla);
        prop_assert_eq!(last.le(), le);
        prop_assert!(!last.data().is_empty() || data.is_empty());
        for cmd in rest {
            prop_assert_eq!(cmd.cla(), cla | CLA_CHAINING);
            prop_assert_eq!(cmd.data().len(), chunk);
            prop_assert_eq!(cmd.le(), None);
            prop_assert_eq!((cmd.ins(), cmd.p1(), cmd.p2()), (ins, p1, p2));
        }
    }

    #[test]
    fn tlv_functions_never_panic(
        raw in prop::collection::vec(any::<u8>(), 0..512),
        wanted in any::<u32>(),
        path in prop::collection::vec(any::<u32>(), 0..20),
    ) {
        let all = tlv::parse_all(&raw);
        let _ = tlv::find(&raw, wanted);
        let _ = tlv::find_path(&raw, &path);
        let _ = tlv::validate(&raw);
        // Iterating element by element agrees with parse_all, and every child walk terminates.
        let mut seen = Vec::new();
        for item in tlv::TlvIter::new(&raw) {
            match item {
                Ok(t) => {
                    prop_assert!(t.raw.ends_with(t.value));
                    for child in t.children().flatten() {
                        let _ = child.children().count();
                    }
                    seen.push(t);
                }
                Err(e) => {
                    prop_assert_eq!(&all, &Err(e));
                    return Ok(());
                }
            }
        }
        prop_assert_eq!(all, Ok(seen));
    }

    #[test]
    fn tlv_structured_garbage_never_panics(
        parts in prop::collection::vec(
            prop_oneof![
                Just(vec![0x70u8]), Just(vec![0xBF, 0x81, 0x01]), Just(vec![0x80]), Just(vec![0x81]),
                Just(vec![0x82, 0xFF]), Just(vec![0x84, 0xFF, 0xFF, 0xFF, 0xFF]), Just(vec![0x1F]),
                any::<u8>().prop_map(|b| vec![b]),
            ],
            0..64,
        ),
    ) {
        let raw: Vec<u8> = parts.concat();
        let _ = tlv::parse_all(&raw);
        let _ = tlv::validate(&raw);
        let _ = tlv::find_path(&raw, &[0x70, 0xBF8101, 0xA0, 0x9B]);
    }

    #[test]
    fn tlv_encode_parse_round_trip(tag in tag(), value in prop::collection::vec(any::<u8>(), 0..70_000)) {
        prop_assert_eq!(tlv::Tlv { tag, value: &[], raw: &[] }.is_constructed(), is_constructed(tag));
        let encoded = tlv::encode(tag, &value);
        let parsed = tlv::parse_all(&encoded).unwrap();
        prop_assert_eq!(parsed.len(), 1);
        let Tlv { tag: t, value: v, raw } = parsed[0];
        prop_assert_eq!(t, tag);
        prop_assert_eq!(v, &value[..]);
        prop_assert_eq!(raw, &encoded[..]);
        prop_assert_eq!(tlv::find(&encoded, tag).unwrap().map(|t| t.value), Some(&value[..]));
    }

    #[test]
    fn tlv_nested_round_trip(
        outer in tag_with(true),
        inner in prop::collection::vec((tag_with(false), prop::collection::vec(any::<u8>(), 0..300)), 1..6),
    ) {
        let body: Vec<u8> = inner.iter().flat_map(|(t, v)| tlv::encode(*t, v)).collect();
        let encoded = tlv::encode(outer, &body);
        tlv::validate(&encoded).unwrap();
        let children: Vec<(u32, Vec<u8>)> = tlv::find(&encoded, outer)
            .unwrap()
            .unwrap()
            .children()
            .map(|c| c.map(|c| (c.tag, c.value.to_vec())))
            .collect::<Result<_, _>>()
            .unwrap();
        prop_assert_eq!(&children, &inner);
        let (first_tag, first_value) = &inner[0];
        let hit = tlv::find_path(&encoded, &[outer, *first_tag]).unwrap().unwrap();
        prop_assert_eq!(hit.value, &first_value[..]);
    }
}
