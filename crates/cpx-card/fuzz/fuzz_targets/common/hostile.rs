//! A hostile card built around a real one: the emulator answers every command truly, and rules
//! decoded from the fuzzer's input rewrite some answers (sizes in FCPs, TLV length forms, 61xx and
//! 6Cxx chains, truncated or oversized answers, wrong status words).
//!
//! Input: a list of rules, each `step ‖ kind ‖ parameters`. A rule fires once, on the first
//! exchange numbered `step` or later that it applies to (an FCP rule waits for an answer carrying
//! an FCP/FCI), so a rule means something wherever the fuzzer puts it.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use cpx_vpcd::VirtualCard;

use super::tlv_tree::{self, Body, LengthForm, Node};

/// Reads the fuzzer's bytes; past the end, zeros (every decoder stays total).
pub struct Bytes<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Bytes<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Bytes { data, at: 0 }
    }
    pub fn is_empty(&self) -> bool {
        self.at >= self.data.len()
    }
    pub fn u8(&mut self) -> u8 {
        let b = self.data.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        b
    }
    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }
    pub fn take(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.u8()).collect()
    }
}

/// What a rule does to an answer.
#[derive(Debug, Clone)]
pub enum Rewrite {
    /// The FCP/FCI (`62`/`6F`) size gets tag `tag` (80 or 81) with this value (1–4 bytes).
    FcpSize { tag: u8, value: Vec<u8> },
    /// The `node`-th TLV (depth first, modulo their number) is written with this length form.
    LengthForm { node: usize, form: LengthForm },
    /// The status word becomes `sw`; the data is dropped when `drop_data`.
    StatusWord { sw: [u8; 2], drop_data: bool },
    /// The data comes in pieces of these sizes behind `61 announce[i]`, the rest at the end.
    Chain61 { pieces: Vec<u8>, announce: Vec<u8> },
    /// `6C xx`; the same command again (any Le) gets the true answer cut or padded to xx.
    Wrong6C { xx: u8 },
    /// Only the first `keep` bytes of the answer (the status word may go).
    Truncate { keep: u8 },
    /// `extra` bytes of `fill` inserted before the status word.
    Oversize { extra: u16, fill: u8 },
    /// Byte `at` (modulo the answer's length) XORed with `mask`.
    Flip { at: u8, mask: u8 },
    /// The whole answer replaced.
    Replace { answer: Vec<u8> },
}

/// Status words worth trying more often than 1 in 65536 (docs/card-spec.md §2.3, §3.3, ISO 7816-4 §5.6).
const SWS: [[u8; 2]; 12] = [
    [0x90, 0x00],
    [0x6A, 0x82],
    [0x69, 0x82],
    [0x69, 0x83],
    [0x63, 0xC0],
    [0x63, 0xC2],
    [0x6E, 0x00],
    [0x6A, 0x86],
    [0x68, 0x81],
    [0x62, 0x82],
    [0x6C, 0x00],
    [0x61, 0x00],
];

impl Rewrite {
    pub fn decode(b: &mut Bytes<'_>) -> Rewrite {
        match b.u8() % 9 {
            0 => {
                let tag = if b.u8() & 1 == 0 { 0x80 } else { 0x81 };
                let len = usize::from(b.u8() % 4) + 1;
                Rewrite::FcpSize {
                    tag,
                    value: b.take(len),
                }
            }
            1 => {
                let node = usize::from(b.u8());
                let form = 0x81 + b.u8() % 4;
                let claim = (b.u8() & 1 == 1).then(|| u32::from_be_bytes([b.u8(), b.u8(), b.u8(), b.u8()]));
                Rewrite::LengthForm {
                    node,
                    form: LengthForm { form, claim },
                }
            }
            2 => {
                let pick = b.u8();
                let sw = if pick < 0xC0 {
                    SWS[usize::from(pick) % SWS.len()]
                } else {
                    [b.u8(), b.u8()]
                };
                Rewrite::StatusWord {
                    sw,
                    drop_data: pick & 1 == 1,
                }
            }
            3 => {
                let n = usize::from(b.u8());
                let pieces = b.take(n);
                let announce = b.take(n);
                Rewrite::Chain61 { pieces, announce }
            }
            4 => Rewrite::Wrong6C { xx: b.u8() },
            5 => Rewrite::Truncate { keep: b.u8() },
            6 => Rewrite::Oversize {
                extra: b.u16(),
                fill: b.u8(),
            },
            7 => Rewrite::Flip {
                at: b.u8(),
                mask: b.u8(),
            },
            _ => {
                let n = usize::from(b.u8());
                Rewrite::Replace { answer: b.take(n) }
            }
        }
    }
}

/// One rule: from exchange `step` on, the first answer it applies to.
#[derive(Debug, Clone)]
pub struct Rule {
    pub step: usize,
    pub rewrite: Rewrite,
}

/// Every rule left in the input.
pub fn decode_rules(b: &mut Bytes<'_>) -> Vec<Rule> {
    let mut rules = Vec::new();
    while !b.is_empty() && rules.len() < 64 {
        let step = usize::from(b.u8());
        rules.push(Rule {
            step,
            rewrite: Rewrite::decode(b),
        });
    }
    rules
}

/// The emulator behind the rules.
pub struct Hostile {
    card: Box<dyn VirtualCard>,
    rules: Vec<Rule>,
    step: usize,
    /// Pieces of a 61xx chain still to give to GET RESPONSE.
    pending: VecDeque<Vec<u8>>,
    /// After a 6Cxx: the command and the true answer, and xx.
    six_c: Option<(Vec<u8>, Vec<u8>, u8)>,
    /// Rules that changed an answer (shared: the card itself goes into the channel).
    pub fired: Arc<AtomicUsize>,
}

impl Hostile {
    pub fn new(card: Box<dyn VirtualCard>, rules: Vec<Rule>) -> Self {
        Hostile {
            card,
            rules,
            step: 0,
            pending: VecDeque::new(),
            six_c: None,
            fired: Arc::new(AtomicUsize::new(0)),
        }
    }
}

fn split_sw(answer: &[u8]) -> (&[u8], [u8; 2]) {
    match answer.len() {
        n if n >= 2 => (&answer[..n - 2], [answer[n - 2], answer[n - 1]]),
        _ => (&[], [0x6F, 0x00]),
    }
}

fn join(data: &[u8], sw: [u8; 2]) -> Vec<u8> {
    let mut v = data.to_vec();
    v.extend_from_slice(&sw);
    v
}

/// The FCP/FCI size rewritten, or `None` when the answer carries no FCP/FCI.
fn fcp_size(answer: &[u8], tag: u8, value: &[u8]) -> Option<Vec<u8>> {
    let (data, sw) = split_sw(answer);
    let mut nodes = tlv_tree::parse(data)?;
    let top = nodes.iter_mut().find(|n| n.tag == [0x62] || n.tag == [0x6F])?;
    let kids = match &mut top.body {
        Body::Children(k) => k,
        Body::Value(_) => return None,
    };
    kids.retain(|k| k.tag != [0x80] && k.tag != [0x81]);
    kids.insert(
        0,
        Node {
            tag: vec![tag],
            body: Body::Value(value.to_vec()),
        },
    );
    let minimal = LengthForm { form: 0, claim: None };
    Some(join(&tlv_tree::write(&nodes, usize::MAX, minimal), sw))
}

fn length_form(answer: &[u8], node: usize, form: LengthForm) -> Option<Vec<u8>> {
    let (data, sw) = split_sw(answer);
    let nodes = tlv_tree::parse(data)?;
    let n = tlv_tree::count(&nodes);
    (n > 0).then(|| join(&tlv_tree::write(&nodes, node % n, form), sw))
}

impl Hostile {
    /// `rewrite` applied to `answer` for `command`, or `None` when it does not apply.
    fn apply(&mut self, rewrite: &Rewrite, command: &[u8], answer: &[u8]) -> Option<Vec<u8>> {
        let (data, sw) = split_sw(answer);
        Some(match rewrite {
            Rewrite::FcpSize { tag, value } => fcp_size(answer, *tag, value)?,
            Rewrite::LengthForm { node, form } => length_form(answer, *node, *form)?,
            Rewrite::StatusWord { sw, drop_data } => join(if *drop_data { &[] } else { data }, *sw),
            Rewrite::Chain61 { pieces, announce } => {
                let mut rest = data;
                let mut chunks = Vec::new();
                for (p, a) in pieces.iter().zip(announce) {
                    let cut = usize::from(*p).min(rest.len());
                    chunks.push(join(&rest[..cut], [0x61, *a]));
                    rest = &rest[cut..];
                }
                chunks.push(join(rest, sw));
                let first = chunks.remove(0);
                self.pending = chunks.into();
                first
            }
            Rewrite::Wrong6C { xx } => {
                self.six_c = Some((command.to_vec(), answer.to_vec(), *xx));
                vec![0x6C, *xx]
            }
            Rewrite::Truncate { keep } => answer[..usize::from(*keep) % answer.len().max(1)].to_vec(),
            Rewrite::Oversize { extra, fill } => {
                let mut v = data.to_vec();
                v.resize(v.len() + usize::from(*extra), *fill);
                join(&v, sw)
            }
            Rewrite::Flip { at, mask } => {
                let mut v = answer.to_vec();
                let len = v.len();
                if let Some(b) = v.get_mut(usize::from(*at) % len.max(1)) {
                    *b ^= mask;
                }
                v
            }
            Rewrite::Replace { answer } => answer.clone(),
        })
    }
}

/// The same command apart from its last byte (Le), when both are long enough to have one.
fn same_but_le(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.len() >= 5 && a[..a.len() - 1] == b[..b.len() - 1]
        || a.len() == 4 && b.len() == 5 && a[..] == b[..4]
}

impl VirtualCard for Hostile {
    fn atr(&self) -> Vec<u8> {
        self.card.atr()
    }
    fn power_on(&mut self) {
        self.card.power_on()
    }
    fn power_off(&mut self) {
        self.card.power_off()
    }
    fn reset(&mut self) {
        self.pending.clear();
        self.six_c = None;
        self.card.reset()
    }

    fn transmit(&mut self, command: &[u8]) -> Vec<u8> {
        self.step += 1;
        if command.get(1) == Some(&0xC0)
            && let Some(next) = self.pending.pop_front()
        {
            return next;
        }
        self.pending.clear();
        if let Some((previous, answer, xx)) = self.six_c.take()
            && same_but_le(&previous, command)
        {
            let (data, sw) = split_sw(&answer);
            let want = if xx == 0 { 256 } else { usize::from(xx) };
            let mut d = data.to_vec();
            d.resize(want, 0);
            return join(&d, sw);
        }
        let answer = self.card.transmit(command);
        let step = self.step;
        let mut out = answer;
        let mut i = 0;
        while i < self.rules.len() {
            if self.rules[i].step <= step {
                let rewrite = self.rules[i].rewrite.clone();
                if let Some(changed) = self.apply(&rewrite, command, &out) {
                    self.rules.remove(i);
                    if changed != out || !self.pending.is_empty() {
                        self.fired.fetch_add(1, Ordering::Relaxed);
                    }
                    out = changed;
                    // One rule per answer: the next ones wait for later exchanges.
                    break;
                }
            }
            i += 1;
        }
        out
    }
}
