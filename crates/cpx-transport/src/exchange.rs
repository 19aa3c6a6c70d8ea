//! One command in, one complete response out: the GET RESPONSE (`61xx`, `9Fxx`) and `6Cxx` rules
//! of docs/card-spec.md §2.3, independent of PC/SC so they can be tested against scripted cards.

use cpx_apdu::{Case, Command, Response};

use crate::{ExchangePolicy, Protocol, TransportError, trace};

/// The lowest layer: send these bytes, return the card's bytes. No retries, no interpretation.
pub trait RawTransmit {
    /// Send one command APDU and return the response APDU (data‖SW1SW2) exactly as received.
    fn transmit_raw(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError>;
    /// The protocol in use (T=0 changes how case-4 commands go out).
    fn protocol(&self) -> Protocol;
    /// The reader name, for errors and traces.
    fn reader(&self) -> &str;
}

/// Guard against a card that answers `61xx` forever with nothing in it.
const MAX_ROUNDS: usize = 512;

/// Send `command` and collect its complete response.
///
/// - On T=0 a case-4 command goes out without Le (docs/card-spec.md §2.3, §8.1); the card answers `61xx`.
/// - `61xx`: `GET RESPONSE` on the command's logical channel with Le = min(xx, `max_chunk`),
///   repeated until the card stops announcing data (docs/card-spec.md §2.3: a 256-byte signature on CPS3 is
///   `61 00` → `C0 E7` → `61 19` → `C0 19`).
/// - `9Fxx` (CPS2ter volet): the same with CLA `A0` (docs/card-spec.md §2.2).
/// - `6Cxx` before any data: the command is re-sent once with Le = xx.
///
/// The status word of the result is the last one received. Responses that are not APDUs, or that
/// announce more than `policy.max_response_len` bytes, are errors.
pub fn exchange(
    raw: &mut dyn RawTransmit,
    command: &Command,
    policy: &ExchangePolicy,
) -> Result<Response, TransportError> {
    let first = if raw.protocol() == Protocol::T0 && command.case() == Case::Case4 {
        command.without_le()
    } else {
        command.clone()
    };
    let mut response = send(raw, &first)?;
    if policy.reissue_on_6cxx && response.sw().0 == 0x6C && response.data().is_empty() {
        let exact = if response.sw().1 == 0 {
            256
        } else {
            u16::from(response.sw().1)
        };
        let again = command
            .clone()
            .with_le(exact)
            .map_err(TransportError::InvalidCommand)?;
        response = send(raw, &again)?;
    }

    let mut data: Vec<u8> = Vec::new();
    for _ in 0..MAX_ROUNDS {
        let sw = response.sw();
        let get_response_cla = match sw.0 {
            // Keep the logical channel (CPS4 works on channel 1, docs/card-spec.md §1.3); drop chaining bits.
            0x61 => command.cla() & 0x03,
            0x9F => 0xA0,
            _ => {
                data.extend_from_slice(response.data());
                return Ok(Response::new(data, sw));
            }
        };
        data.extend_from_slice(response.data());
        let available = if sw.1 == 0 { 256 } else { u16::from(sw.1) };
        if data.len() + usize::from(available) > policy.max_response_len {
            return Err(TransportError::ResponseTooLong {
                reader: raw.reader().to_owned(),
                limit: policy.max_response_len,
            });
        }
        let le = available.min(policy.max_chunk.clamp(1, 256));
        let get_response = Command::new(get_response_cla, 0xC0, 0x00, 0x00)
            .with_le(le)
            .map_err(TransportError::InvalidCommand)?;
        response = send(raw, &get_response)?;
    }
    Err(TransportError::ResponseTooLong {
        reader: raw.reader().to_owned(),
        limit: policy.max_response_len,
    })
}

fn send(raw: &mut dyn RawTransmit, command: &Command) -> Result<Response, TransportError> {
    trace::command(raw.reader(), command);
    let bytes = raw.transmit_raw(&command.to_bytes())?;
    trace::response(raw.reader(), command, &bytes);
    Response::from_bytes(&bytes).map_err(|source| TransportError::MalformedResponse {
        reader: raw.reader().to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use cpx_apdu::StatusWord;
    use hex_literal::hex;
    use std::collections::VecDeque;

    /// A card that must receive exactly the expected commands, in order.
    struct Script {
        protocol: Protocol,
        steps: VecDeque<(Vec<u8>, Vec<u8>)>,
    }

    impl Script {
        fn new(protocol: Protocol, steps: &[(&[u8], &[u8])]) -> Self {
            Self {
                protocol,
                steps: steps.iter().map(|(c, r)| (c.to_vec(), r.to_vec())).collect(),
            }
        }
        fn done(&self) -> bool {
            self.steps.is_empty()
        }
    }

    impl RawTransmit for Script {
        fn transmit_raw(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
            let (expected, reply) = self.steps.pop_front().expect("unexpected extra command");
            assert_eq!(hex::encode(command), hex::encode(&expected), "command sent");
            Ok(reply)
        }
        fn protocol(&self) -> Protocol {
            self.protocol
        }
        fn reader(&self) -> &str {
            "script"
        }
    }

    fn with(data: &[u8], sw: [u8; 2]) -> Vec<u8> {
        let mut v = data.to_vec();
        v.extend_from_slice(&sw);
        v
    }

    #[test]
    fn cps3_signature_comes_back_in_e7_chunks() {
        // docs/card-spec.md §2.3 / §8.1: 61 00 → C0 E7 → 61 19 → C0 19
        let sig: Vec<u8> = (0..=255u8).collect();
        let mut card = Script::new(
            Protocol::T0,
            &[
                (&hex!("00 2A 9E 9A 00"), &hex!("61 00")),
                (&hex!("00 C0 00 00 E7"), &with(&sig[..0xE7], [0x61, 0x19])),
                (&hex!("00 C0 00 00 19"), &with(&sig[0xE7..], [0x90, 0x00])),
            ],
        );
        let cmd = Command::new(0x00, 0x2A, 0x9E, 0x9A).with_le(256).unwrap();
        let r = exchange(&mut card, &cmd, &ExchangePolicy::GENERIC).unwrap();
        assert_eq!(r.data(), &sig[..]);
        assert!(r.is_success());
        assert!(card.done());
    }

    #[test]
    fn t0_case4_goes_out_without_le_and_t1_keeps_it() {
        // docs/card-spec.md §8.1: INTERNAL AUTHENTICATE without Le on T=0
        let cmd = Command::new(0x00, 0x88, 0x00, 0x00)
            .with_data(vec![0xAA; 3])
            .unwrap()
            .with_le(256)
            .unwrap();
        let mut t0 = Script::new(
            Protocol::T0,
            &[
                (&hex!("00 88 00 00 03 AA AA AA"), &hex!("61 02")),
                (&hex!("00 C0 00 00 02"), &hex!("01 02 90 00")),
            ],
        );
        assert_eq!(
            exchange(&mut t0, &cmd, &ExchangePolicy::GENERIC).unwrap().data(),
            &[1, 2]
        );
        let mut t1 = Script::new(
            Protocol::T1,
            &[(&hex!("00 88 00 00 03 AA AA AA 00"), &hex!("01 02 90 00"))],
        );
        assert_eq!(
            exchange(
                &mut t1,
                &cmd,
                &ExchangePolicy {
                    max_chunk: 256,
                    ..ExchangePolicy::GENERIC
                }
            )
            .unwrap()
            .data(),
            &[1, 2]
        );
    }

    #[test]
    fn get_response_keeps_the_logical_channel_and_cps2ter_uses_a0() {
        let mut card = Script::new(
            Protocol::T0,
            &[
                (&hex!("01 B0 00 00 05"), &hex!("61 05")),
                (&hex!("01 C0 00 00 05"), &hex!("01 02 03 04 05 90 00")),
            ],
        );
        let cmd = Command::new(0x01, 0xB0, 0, 0).with_le(5).unwrap();
        assert_eq!(
            exchange(
                &mut card,
                &cmd,
                &ExchangePolicy {
                    max_chunk: 256,
                    ..ExchangePolicy::GENERIC
                }
            )
            .unwrap()
            .data()
            .len(),
            5
        );

        // docs/card-spec.md §2.2: CPS2ter volet, 9Fxx → GET RESPONSE with CLA A0
        let mut card = Script::new(
            Protocol::T0,
            &[
                (&hex!("A0 A4 00 00 02 40 10"), &hex!("9F 0A")),
                (&hex!("A0 C0 00 00 0A"), &with(&[0x85; 10], [0x90, 0])),
            ],
        );
        let cmd = Command::new(0xA0, 0xA4, 0, 0)
            .with_data(vec![0x40, 0x10])
            .unwrap();
        assert_eq!(
            exchange(&mut card, &cmd, &ExchangePolicy::GENERIC)
                .unwrap()
                .data(),
            &[0x85; 10]
        );
    }

    #[test]
    fn wrong_le_is_reissued_once_with_the_exact_length() {
        let mut card = Script::new(
            Protocol::T1,
            &[
                (&hex!("00 B0 00 00 00"), &hex!("6C 0C")),
                (
                    &hex!("00 B0 00 00 0C"),
                    &with(&hex!("5A 0A 80 25 00 00 01 99 21 38 45 0F"), [0x90, 0]),
                ),
            ],
        );
        let cmd = Command::new(0, 0xB0, 0, 0).with_le(256).unwrap();
        assert_eq!(
            exchange(&mut card, &cmd, &ExchangePolicy::GENERIC)
                .unwrap()
                .data()
                .len(),
            12
        );

        // a card that keeps saying 6Cxx gets one re-issue, then its answer is returned as is
        let mut card = Script::new(
            Protocol::T1,
            &[
                (&hex!("00 B0 00 00 00"), &hex!("6C 0C")),
                (&hex!("00 B0 00 00 0C"), &hex!("6C 0D")),
            ],
        );
        let r = exchange(&mut card, &cmd, &ExchangePolicy::GENERIC).unwrap();
        assert_eq!(r.sw(), StatusWord(0x6C, 0x0D));
    }

    #[test]
    fn status_words_other_than_61_end_the_exchange() {
        let mut card = Script::new(Protocol::T0, &[(&hex!("00 20 00 01"), &hex!("63 C2"))]);
        let r = exchange(&mut card, &Command::new(0, 0x20, 0, 1), &ExchangePolicy::GENERIC).unwrap();
        assert_eq!(r.sw(), StatusWord(0x63, 0xC2));
    }

    /// A hostile card: endless 61xx.
    struct Endless;
    impl RawTransmit for Endless {
        fn transmit_raw(&mut self, _: &[u8]) -> Result<Vec<u8>, TransportError> {
            Ok(with(&[0u8; 0xE7], [0x61, 0x00]))
        }
        fn protocol(&self) -> Protocol {
            Protocol::T0
        }
        fn reader(&self) -> &str {
            "hostile"
        }
    }

    #[test]
    fn endless_get_response_is_cut_off() {
        let err = exchange(
            &mut Endless,
            &Command::new(0, 0xB0, 0, 0),
            &ExchangePolicy::GENERIC,
        )
        .unwrap_err();
        assert!(matches!(err, TransportError::ResponseTooLong { .. }), "{err}");
    }

    /// Hostile replies: empty, one byte, oversized.
    struct Replies(Vec<u8>);
    impl RawTransmit for Replies {
        fn transmit_raw(&mut self, _: &[u8]) -> Result<Vec<u8>, TransportError> {
            Ok(self.0.clone())
        }
        fn protocol(&self) -> Protocol {
            Protocol::T1
        }
        fn reader(&self) -> &str {
            "hostile"
        }
    }

    #[test]
    fn malformed_replies_are_errors_not_panics() {
        for reply in [vec![], vec![0x90], vec![0x00; 259], vec![0x61]] {
            let err = exchange(
                &mut Replies(reply.clone()),
                &Command::new(0, 0xB0, 0, 0),
                &ExchangePolicy::GENERIC,
            )
            .unwrap_err();
            assert!(
                matches!(err, TransportError::MalformedResponse { .. }),
                "{reply:?}: {err}"
            );
        }
    }
}
