//! Hand-computed figures for the reader clock (each test states its arithmetic).

use std::time::{Duration, Instant};

use cpx_vpcd::VirtualCard;

use super::*;
use crate::facts::{ATR_CPS3, ATR_CPS3_CL, ATR_CPS4, ATR_CPS4_T0};

fn with_sw(data_len: usize) -> Vec<u8> {
    let mut r = vec![0x5A; data_len];
    r.extend([0x90, 0x00]);
    r
}

#[test]
fn atr_parameters_of_the_cpx_cards() {
    // 3B AC 00 40 2A …: TB1 = 00, TD1 = 40 (T=0, TC2 follows), no TA1.
    let cps3 = AtrParameters::parse(&ATR_CPS3).unwrap();
    assert_eq!((cps3.fi, cps3.di, cps3.extra_guard), (372, 1, 0));
    assert!(cps3.t0 && !cps3.t1);
    // 3B 9B 18 80 01 …: TA1 = 18 (FI 1 → 372, DI 8 → 12), TD1 = 80 (T=0), TD2 = 01 (T=1, no TA3).
    let cps4 = AtrParameters::parse(&ATR_CPS4).unwrap();
    assert_eq!((cps4.fi, cps4.di, cps4.extra_guard), (372, 12, 0));
    assert!(cps4.t0 && cps4.t1);
    assert_eq!((cps4.ifsc, cps4.crc), (DEFAULT_IFSC, false));
    // 3B DC 18 FF 00 …: TA1 = 18, TC1 = FF (N = 255), TD1 = 00 (T=0 only).
    let cps4_t0 = AtrParameters::parse(&ATR_CPS4_T0).unwrap();
    assert_eq!((cps4_t0.di, cps4_t0.extra_guard, cps4_t0.t1), (12, 255, false));
    // Contactless pseudo-ATR 3B 8F 80 01 …: T=0 then T=1 announced, no TA1.
    let cl = AtrParameters::parse(&ATR_CPS3_CL).unwrap();
    assert_eq!((cl.fi, cl.di, cl.t1), (372, 1, true));
}

#[test]
fn t1_specific_bytes_give_ifsc_and_crc() {
    // T0 = 80 (TD1), TD1 = 81 (T=1, TD2), TD2 = 51 (T=1, TA3 TC3), TA3 = FE, TC3 = 01, TCK.
    let p = AtrParameters::parse(&[0x3B, 0x80, 0x81, 0x51, 0xFE, 0x01, 0x00]).unwrap();
    assert_eq!((p.ifsc, p.crc, p.t0, p.t1), (0xFE, true, false, true));
}

#[test]
fn malformed_atrs_get_precise_errors() {
    assert_eq!(AtrParameters::parse(&[]), Err(AtrError::TooShort(0)));
    assert_eq!(AtrParameters::parse(&[0x3B]), Err(AtrError::TooShort(1)));
    assert_eq!(AtrParameters::parse(&[0x00, 0x00]), Err(AtrError::BadTs(0x00)));
    // TA1 and TD1 announced, only TA1 there.
    assert_eq!(
        AtrParameters::parse(&[0x3B, 0x9B, 0x18]),
        Err(AtrError::Truncated { needed: 15, len: 3 })
    );
    // Historical bytes missing: T0 = 02 announces two.
    assert_eq!(
        AtrParameters::parse(&[0x3B, 0x02, 0x14]),
        Err(AtrError::Truncated { needed: 4, len: 3 })
    );
    // FI = 7 is reserved.
    assert_eq!(
        AtrParameters::parse(&[0x3B, 0x10, 0x71]),
        Err(AtrError::ReservedTa1(0x71))
    );
    assert!(ReaderClock::for_atr(&[0x3B, 0x10, 0x71]).is_err());
}

#[test]
fn etu_is_fi_over_di_f() {
    // 372 / 4 MHz = 93 µs (10 752 etu/s); with Di = 12: 7.75 µs.
    let cps3 = ReaderClock::for_atr(&ATR_CPS3).unwrap();
    assert_eq!(cps3.etu(), Duration::from_nanos(93_000));
    assert_eq!(cps3.protocol(), Protocol::T0);
    let cps4 = ReaderClock::for_atr(&ATR_CPS4).unwrap();
    assert_eq!(cps4.etu(), Duration::from_nanos(7_750));
    assert_eq!(cps4.protocol(), Protocol::T1);
}

#[test]
fn t0_case_1_2_3_on_the_cps3() {
    let clock = ReaderClock::for_atr(&ATR_CPS3).unwrap();
    // Case 1, VERIFY status: header 5 × 12 + SW 2 × 12 + 1 turnaround × 4 = 88 etu.
    let status = [0x00, 0x20, 0x00, 0x01];
    assert_eq!(
        clock.transmission(&status, &[0x63, 0xC3]),
        Duration::from_nanos(88 * 93_000)
    );
    // Case 2, READ BINARY 223: 60 + (ACK + 223 + SW) 226 × 12 + 4 = 2776 etu.
    let read = [0x00, 0xB0, 0x00, 0x00, 0xDF];
    assert_eq!(
        clock.transmission(&read, &with_sw(223)),
        Duration::from_nanos(2776 * 93_000)
    );
    // Case 3, VERIFY with 8 bytes: (5 + 8) × 12 + (ACK + SW) 3 × 12 + 3 turnarounds × 4 = 204.
    let mut verify = vec![0x00, 0x20, 0x00, 0x01, 0x08];
    verify.extend([0x31; 8]);
    assert_eq!(
        clock.transmission(&verify, &[0x90, 0x00]),
        Duration::from_nanos(204 * 93_000)
    );
    // + VERIFY's 20 ms and 1 ms of USB: 18.972 + 21 ms.
    assert_eq!(
        clock.exchange(&verify, &[0x90, 0x00]),
        Duration::from_micros(39_972)
    );
    // Case 4 under T=0: Le is not sent, the answer is 61xx.
    let mut case4 = verify.clone();
    case4.push(0x00);
    assert_eq!(
        clock.transmission(&case4, &[0x61, 0x10]),
        clock.transmission(&verify, &[0x61, 0x10])
    );
}

#[test]
fn one_apdu_at_372_1_and_at_372_12() {
    // The same T=0 exchange, GET CHALLENGE of 8 bytes: header 5 + (ACK + 8 + SW) 11 characters
    // × 12 etu + 1 turnaround × 4 = 196 etu. TA1 absent (372/1): 196 × 93 µs = 18.228 ms;
    // TA1 = 18 (372/12), T=0 only: 196 × 7.75 µs = 1.519 ms, exactly 12 times less. Card
    // processing and USB do not scale: 2 ms (CPS3 figures for the first ATR, an unknown card)
    // or 1 ms (CPS4) of dispatch, + 1 ms of USB.
    let challenge = [0x00, 0x84, 0x00, 0x00, 0x08];
    let answer = with_sw(8);
    let slow = ReaderClock::for_atr(&ATR_CPS3).unwrap();
    let fast = ReaderClock::for_atr(&ATR_CPS4_T0).unwrap();
    assert_eq!(
        slow.transmission(&challenge, &answer),
        Duration::from_micros(18_228)
    );
    assert_eq!(
        fast.transmission(&challenge, &answer),
        Duration::from_nanos(1_519_000)
    );
    assert_eq!(
        slow.transmission(&challenge, &answer),
        fast.transmission(&challenge, &answer) * 12
    );
    assert_eq!(slow.exchange(&challenge, &answer), Duration::from_micros(21_228));
    assert_eq!(fast.exchange(&challenge, &answer), Duration::from_micros(3_519));
}

#[test]
fn t0_extra_guard_time_applies_to_the_reader_only() {
    // N = 255 under T=0 is 12 etu: the CPS4 T=0 ATR times like N = 0 at Di 12.
    let clock = ReaderClock::for_atr(&ATR_CPS4_T0).unwrap();
    assert_eq!(clock.protocol(), Protocol::T0);
    let read = [0x00, 0xB0, 0x00, 0x00, 0xDF];
    assert_eq!(
        clock.transmission(&read, &with_sw(223)),
        Duration::from_nanos(2776 * 7_750)
    );
    // N = 2 (TC1 = 02, T=0 only): the reader's 5 characters take 14 etu, the card's 12.
    let clock = ReaderClock::for_atr(&[0x3B, 0x40, 0x02]).unwrap();
    assert_eq!(
        clock.transmission(&read, &with_sw(223)),
        Duration::from_nanos((70 + 2712 + 4) * 93_000)
    );
}

#[test]
fn t1_blocks_chaining_and_acknowledgements_on_the_cps4() {
    let clock = ReaderClock::for_atr(&ATR_CPS4).unwrap();
    // READ BINARY 256: one 9-character I-block out; 258 bytes back in two I-blocks (254 + 4,
    // 4 framing characters each) with one 4-character R-block between: 279 characters × 12 etu,
    // 4 blocks → 3 turnarounds × (22 − 12) = 3378 etu.
    let read = [0x00, 0xB0, 0x00, 0x00, 0x00];
    assert_eq!(
        clock.transmission(&read, &with_sw(256)),
        Duration::from_nanos(3378 * 7_750)
    );
    // A 101-byte PSO CDS at IFSC 32: 4 I-blocks (117 characters) + 3 R-blocks from the card (12);
    // 258 bytes back as above (270): 399 × 12 + 9 turnarounds × 10 = 4878 etu = 37.8045 ms.
    let mut cds = vec![0x00, 0x2A, 0x9E, 0x9A, 0x5F];
    cds.extend([0x11; 0x5F]);
    cds.push(0x00);
    assert_eq!(cds.len(), 101);
    assert_eq!(
        clock.transmission(&cds, &with_sw(256)),
        Duration::from_nanos(4878 * 7_750)
    );
    // + the CPS4's RSA-2048 (150 ms) + 1 ms USB.
    assert_eq!(
        clock.exchange(&cds, &with_sw(256)),
        Duration::from_nanos(4878 * 7_750) + Duration::from_millis(151)
    );
}

#[test]
fn processing_by_command_and_outcome() {
    let cps3 = CardTimings::CPS3;
    let ok = [0x90, 0x00];
    // RSA only for the last command of a chain, and only when it succeeded.
    assert_eq!(
        cps3.processing(&[0x00, 0x2A, 0x80, 0x86, 0x01, 0x00], &ok),
        cps3.rsa_private
    );
    assert_eq!(
        cps3.processing(&[0x10, 0x2A, 0x80, 0x86, 0x01, 0x00], &ok),
        cps3.dispatch
    );
    assert_eq!(
        cps3.processing(&[0x00, 0x88, 0x00, 0x00, 0x01, 0x00], &[0x61, 0x00]),
        cps3.rsa_private
    );
    assert_eq!(
        cps3.processing(&[0x00, 0x88, 0x00, 0x00, 0x01, 0x00], &[0x69, 0x82]),
        cps3.dispatch
    );
    // PSO HASH is not an RSA operation.
    assert_eq!(
        cps3.processing(&[0x00, 0x2A, 0x90, 0xA0, 0x01, 0x00], &ok),
        cps3.dispatch
    );
    // VERIFY with a PIN costs its counter writes, right or wrong; without data it is a query.
    let verify = [0x00, 0x20, 0x00, 0x01, 0x01, 0x31];
    assert_eq!(cps3.processing(&verify, &ok), cps3.verify);
    assert_eq!(cps3.processing(&verify, &[0x63, 0xC2]), cps3.verify);
    assert_eq!(
        cps3.processing(&[0x00, 0x20, 0x00, 0x01], &[0x63, 0xC3]),
        cps3.dispatch
    );
    // UPDATE BINARY of 130 bytes: 3 started 64-byte pages: 2 + 3 × 5 ms.
    let mut update = vec![0x00, 0xD6, 0x00, 0x00, 130];
    update.extend([0; 130]);
    assert_eq!(cps3.processing(&update, &ok), Duration::from_millis(17));
    assert_eq!(
        cps3.processing(&[0x00, 0xA4, 0x00, 0x0C, 0x02, 0x3F, 0x00], &ok),
        cps3.select
    );
    assert_eq!(cps3.processing(&[], &[]), cps3.dispatch);
    // The generation comes from the ATR.
    assert_eq!(CardTimings::for_atr(&ATR_CPS4), CardTimings::CPS4);
    assert_eq!(CardTimings::for_atr(&ATR_CPS4_T0), CardTimings::CPS4);
    assert_eq!(CardTimings::for_atr(&ATR_CPS3), CardTimings::CPS3);
}

#[test]
fn session_figures_add_up() {
    let clock = ReaderClock::for_atr(&ATR_CPS3).unwrap();
    let read = [0x00, 0xB0, 0x00, 0x00, 0xDF];
    let response = with_sw(223);
    let figures = clock.session([(&read[..], &response[..]), (&read[..], &response[..])]);
    assert_eq!((figures.apdus, figures.bytes), (2, 2 * (5 + 225)));
    assert_eq!(figures.total(), clock.exchange(&read, &response) * 2);
    assert_eq!(figures.usb, USB_ROUND_TRIP * 2);
}

/// A card that answers at once, with a fixed ATR.
struct Instantaneous(Vec<u8>);

impl VirtualCard for Instantaneous {
    fn atr(&self) -> Vec<u8> {
        self.0.clone()
    }
    fn transmit(&mut self, _command: &[u8]) -> Vec<u8> {
        with_sw(223)
    }
}

#[test]
fn paced_cards_answer_no_sooner_than_the_model() {
    let mut card = Paced::new(Instantaneous(ATR_CPS3.to_vec())).unwrap();
    let read = [0x00, 0xB0, 0x00, 0x00, 0xDF];
    let started = Instant::now();
    let response = card.transmit(&read);
    // 258.168 ms on the wire + 2 ms + 1 ms: a lower bound only (the scheduler may add more).
    assert!(started.elapsed() >= Duration::from_micros(261_168));
    assert_eq!(response, with_sw(223));
    assert!(matches!(
        Paced::new(Instantaneous(vec![0x00, 0x00])),
        Err(AtrError::BadTs(0))
    ));
}
