//! Characters and elementary time units (etu) an exchange takes on the contact link, T=0 or T=1
//! (ISO/IEC 7816-3:2006 §7.2, §8.3, §10, §11; summary and sources in docs/reader-timing.md).

use super::atr::AtrParameters;
use crate::link::Protocol;

/// Minimum character duration, leading edge to leading edge: start bit, 8 data bits, parity and
/// 2 guard etu (§7.2; "GT = 12 etu + R·N/f", §8.3).
const CHARACTER_ETU: u64 = 12;
/// T=0: minimum delay between leading edges of two characters in opposite directions (16 etu;
/// docs/reader-timing.md: the section number of the non-public standard is not checked).
const T0_TURNAROUND_ETU: u64 = 16;
/// T=1 block guard time BGT: the same, between blocks in opposite directions (§11.2).
const T1_BGT_ETU: u64 = 22;
/// T=1 information field size the reader announces for itself (IFSD), by `S(IFS request)` at
/// the start of the session: 254, the maximum, which is what CCID readers declare in
/// `dwMaxIFSD` and libccid requests (an assumption, docs/reader-timing.md).
pub const IFSD: usize = 254;
/// T=1 prologue: NAD, PCB, LEN (§11.3.1).
const T1_PROLOGUE: u64 = 3;

/// Etu one command/response pair takes on the wire, both directions, turnarounds included.
pub(super) fn exchange_etu(atr: &AtrParameters, protocol: Protocol, command: &[u8], response: &[u8]) -> u64 {
    match protocol {
        Protocol::T0 => t0_etu(atr, command, response),
        Protocol::T1 => t1_etu(atr, command, response),
    }
}

/// Data bytes a command sends after its header: Lc bytes for a short case 3/4 command (the
/// T=0 transport of a case-4 APDU drops Le, ISO 7816-3 §12.2), whatever follows the header otherwise.
fn command_data(command: &[u8]) -> u64 {
    let after_header = command.len().saturating_sub(5) as u64;
    match command.get(4) {
        Some(&lc) if lc != 0 && after_header >= u64::from(lc) => u64::from(lc),
        _ => after_header,
    }
}

/// T=0 (§10): the reader sends the 5-byte header (`P3 = 00` for a 4-byte case 1 command); the
/// card answers a procedure byte (ACK = INS) before each data transfer, then SW1 SW2. Data
/// waiting behind `61xx` comes through a separate GET RESPONSE exchange. The reader's
/// characters carry the extra guard time N (TC1), the card's do not (§8.3: "except under T=1,
/// the card transmits with a guard time of 12 etu irrespective of N"); N = 255 means 12 etu.
fn t0_etu(atr: &AtrParameters, command: &[u8], response: &[u8]) -> u64 {
    let reader_char = CHARACTER_ETU
        + match atr.extra_guard {
            255 => 0,
            n => u64::from(n),
        };
    let data_out = command_data(command);
    let data_in = response.len().saturating_sub(2) as u64;
    let sw = response.len().min(2) as u64;
    let acks = u64::from(data_out > 0) + u64::from(data_in > 0);
    let reader_chars = 5 + data_out;
    let card_chars = acks + data_in + sw;
    // Header → card; with outgoing data: ACK → data → card again.
    let turnarounds = if data_out > 0 { 3 } else { 1 };
    reader_chars * reader_char
        + card_chars * CHARACTER_ETU
        + turnarounds * (T0_TURNAROUND_ETU - CHARACTER_ETU)
}

/// T=1 (§11): the APDU (Le included) travels in I-blocks of at most IFSC bytes of information
/// (the card acknowledges each chained block with a 3-byte+EDC R-block), the response in
/// I-blocks of at most [`IFSD`] bytes (the reader acknowledges each). Each block is prologue +
/// information + epilogue (LRC 1 byte, or CRC 2). Characters take CGT = 12 etu + N (11 etu when
/// N = 255) in both directions; a change of direction takes BGT = 22 etu.
fn t1_etu(atr: &AtrParameters, command: &[u8], response: &[u8]) -> u64 {
    let cgt = match atr.extra_guard {
        255 => CHARACTER_ETU - 1,
        n => CHARACTER_ETU + u64::from(n),
    };
    let frame = T1_PROLOGUE + if atr.crc { 2 } else { 1 };
    let ifsc = u64::from(atr.ifsc.max(1));
    let sent = command.len() as u64;
    let received = response.len() as u64;
    let blocks_out = sent.div_ceil(ifsc).max(1);
    let blocks_in = received.div_ceil(IFSD as u64).max(1);
    // Each chained block but the last is acknowledged by an R-block from the other side.
    let chars = sent
        + blocks_out * frame
        + (blocks_out - 1) * frame
        + received
        + blocks_in * frame
        + (blocks_in - 1) * frame;
    let blocks = 2 * blocks_out - 1 + 2 * blocks_in - 1;
    let turnarounds = blocks - 1;
    chars * cgt + turnarounds * T1_BGT_ETU.saturating_sub(cgt)
}
