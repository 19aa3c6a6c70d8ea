//! Transport behaviour: `61xx`/`9Fxx` + GET RESPONSE, T=0 `6Cxx`, command chaining (docs/card-spec.md §2.3,
//! §8.1, §9, §10.1). Modelled on piv-authenticator's request/response buffers.

use crate::apdu::{Command, sw, sw_bytes};
use crate::variants::{Knobs, Responses};

/// The transmission protocol the ATR announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// T=0: case-4 commands arrive without Le; data comes back through `61xx` + GET RESPONSE.
    T0,
    /// T=1 (or T=CL): Le is present and data comes back directly.
    T1,
}

impl Protocol {
    /// The protocol pcsc-lite picks for this ATR: T=1 when any `TDi` offers it (pcsc-lite prefers
    /// T=1, docs/card-spec.md §10.1), else T=0. A malformed ATR counts as T=0.
    pub fn from_atr(atr: &[u8]) -> Self {
        // ISO 7816-3 §8.2: T0 then TA1 TB1 TC1 TD1, each TDi announcing the next group.
        let mut i = 1;
        let mut y = match atr.get(i) {
            Some(t0) => t0 >> 4,
            None => return Protocol::T0,
        };
        loop {
            i += (y & 0x7).count_ones() as usize; // TAi, TBi, TCi present
            if y & 0x8 == 0 {
                return Protocol::T0;
            }
            i += 1;
            let Some(td) = atr.get(i) else {
                return Protocol::T0;
            };
            if td & 0x0F == 1 {
                return Protocol::T1;
            }
            y = td >> 4;
        }
    }
}

/// How a handler wants its data delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// As is (READ BINARY, GET CHALLENGE: case-2 commands that checked Le themselves).
    Direct,
    /// Through the response buffer, announced with this SW1 (`61` ISO, `9F` CPS2ter).
    Deferred(u8),
}

/// A handler's answer.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub(crate) data: Vec<u8>,
    pub(crate) sw: u16,
    pub(crate) delivery: Delivery,
}

impl Reply {
    pub(crate) fn sw(sw: u16) -> Self {
        Self {
            data: Vec::new(),
            sw,
            delivery: Delivery::Direct,
        }
    }
    pub(crate) fn ok() -> Self {
        Self::sw(sw::OK)
    }
    pub(crate) fn data(data: Vec<u8>) -> Self {
        Self {
            data,
            sw: sw::OK,
            delivery: Delivery::Deferred(0x61),
        }
    }
    pub(crate) fn direct(data: Vec<u8>, sw: u16) -> Self {
        Self {
            data,
            sw,
            delivery: Delivery::Direct,
        }
    }
}

impl From<u16> for Reply {
    fn from(sw: u16) -> Self {
        Reply::sw(sw)
    }
}

/// What to do with an incoming command.
pub(crate) enum Step {
    /// Answer at once (GET RESPONSE, a chain link, an error).
    Answer(Vec<u8>),
    /// Give this (possibly de-chained) command to the application.
    Process(Command),
}

/// Volatile link state: pending response data and a command chain in progress; and how the
/// card delivers data (the variant knobs `gr-chunk` and `resp`, [`crate::variants`]).
#[derive(Debug, Clone, Default)]
pub(crate) struct Link {
    pending: Vec<u8>,
    pending_sw1: u8,
    chain: Option<Chain>,
    /// A field card's GET RESPONSE limit (a replayed report's `[link] get_response_max`); kept
    /// across [`Link::clear`].
    get_response_max: Option<u16>,
    /// GET RESPONSE gives at most this many bytes (a variant knob), then 61xx.
    get_response_limit: Option<usize>,
    responses: Responses,
}

#[derive(Debug, Clone)]
struct Chain {
    header: [u8; 4],
    data: Vec<u8>,
}

const MAX_CHAIN: usize = 1024;

fn answer(data: &[u8], sw: u16) -> Vec<u8> {
    let mut v = data.to_vec();
    v.extend(sw_bytes(sw));
    v
}

impl Link {
    /// A link delivering data as the knobs say, whose GET RESPONSE answers at most
    /// `get_response_max` bytes (else `6700`; a replayed report's `[link]`).
    pub(crate) fn new(get_response_max: Option<u16>, knobs: &Knobs) -> Self {
        Self {
            get_response_max,
            get_response_limit: knobs.get_response_limit,
            responses: knobs.responses,
            ..Self::default()
        }
    }

    /// Forget pending data and chains (reset), keeping how data is delivered.
    pub(crate) fn clear(&mut self) {
        self.pending.clear();
        self.pending_sw1 = 0;
        self.chain = None;
    }

    /// First stage: GET RESPONSE and chaining. `chainable(ins)` says which INS may be chained;
    /// `get_response_cla(cla)` which classes may fetch the pending data.
    pub(crate) fn before(
        &mut self,
        protocol: Protocol,
        mut cmd: Command,
        chainable: impl Fn(u8) -> bool,
        get_response_cla: impl Fn(u8) -> bool,
    ) -> Step {
        if cmd.ins == 0xC0 && get_response_cla(cmd.cla) {
            self.chain = None;
            return Step::Answer(self.get_response(protocol, &cmd));
        }
        self.pending.clear();
        // Chaining is an interindustry-class feature (ISO 7816-4 §5.4.1); A0 and FF are not.
        let interindustry = cmd.cla & 0x80 == 0;
        let header = [
            if interindustry { cmd.cla & !0x10 } else { cmd.cla },
            cmd.ins,
            cmd.p1,
            cmd.p2,
        ];
        if self.chain.as_ref().is_some_and(|c| c.header != header) {
            self.chain = None;
            return Step::Answer(answer(&[], sw::LAST_OF_CHAIN_EXPECTED));
        }
        if interindustry && cmd.cla & 0x10 != 0 {
            if !chainable(cmd.ins) {
                return Step::Answer(answer(&[], sw::CHAINING_NOT_SUPPORTED));
            }
            let chain = self.chain.get_or_insert(Chain {
                header,
                data: Vec::new(),
            });
            chain.data.extend_from_slice(&cmd.data);
            if chain.data.len() > MAX_CHAIN {
                self.chain = None;
                return Step::Answer(answer(&[], sw::WRONG_LENGTH));
            }
            return Step::Answer(answer(&[], sw::OK));
        }
        if let Some(mut chain) = self.chain.take() {
            chain.data.extend_from_slice(&cmd.data);
            cmd.data = chain.data;
        }
        Step::Process(cmd)
    }

    fn get_response(&mut self, protocol: Protocol, cmd: &Command) -> Vec<u8> {
        if cmd.p1 != 0 || cmd.p2 != 0 {
            return answer(&[], sw::WRONG_P1P2);
        }
        if self.pending.is_empty() {
            return answer(&[], crate::choices::NOTHING_PENDING_SW);
        }
        let Some(ne) = cmd.ne() else {
            return answer(&[], sw::WRONG_LENGTH);
        };
        if self.get_response_max.is_some_and(|max| ne > usize::from(max)) {
            return answer(&[], sw::WRONG_LENGTH);
        }
        if ne > self.pending.len() && protocol == Protocol::T0 {
            // ISO 7816-3 T=0: wrong Le, SW2 = the exact number available.
            return answer(&[], 0x6C00 | (self.pending.len() as u16 & 0xFF));
        }
        let n = ne
            .min(self.pending.len())
            .min(self.get_response_limit.unwrap_or(usize::MAX));
        let out: Vec<u8> = self.pending.drain(..n).collect();
        let sw = self.more_sw();
        answer(&out, sw)
    }

    fn more_sw(&self) -> u16 {
        match self.pending.len() {
            0 => sw::OK,
            n => (u16::from(self.pending_sw1) << 8) | (n.min(256) as u16 & 0xFF),
        }
    }

    /// Second stage: deliver a handler's reply according to the protocol.
    pub(crate) fn after(&mut self, protocol: Protocol, cmd: &Command, reply: Reply) -> Vec<u8> {
        if reply.data.is_empty() {
            return answer(&[], reply.sw);
        }
        match reply.delivery {
            Delivery::Direct => answer(&reply.data, reply.sw),
            Delivery::Deferred(sw1) => {
                self.pending = reply.data;
                self.pending_sw1 = sw1;
                let direct = match self.responses {
                    Responses::Model => protocol == Protocol::T1,
                    Responses::Always61 => false,
                    Responses::Strict => true,
                };
                match (direct, cmd.ne()) {
                    (true, Some(ne)) => {
                        let n = ne.min(self.pending.len());
                        let out: Vec<u8> = self.pending.drain(..n).collect();
                        let sw = if self.pending.is_empty() {
                            reply.sw
                        } else {
                            self.more_sw()
                        };
                        answer(&out, sw)
                    }
                    _ => answer(&[], self.more_sw()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts;

    #[test]
    fn protocol_follows_the_atr() {
        assert_eq!(Protocol::from_atr(&facts::ATR_CPS4), Protocol::T1);
        assert_eq!(Protocol::from_atr(&facts::ATR_CPS4_RC), Protocol::T1);
        assert_eq!(Protocol::from_atr(&facts::ATR_CPS4_T0), Protocol::T0);
        assert_eq!(Protocol::from_atr(&facts::ATR_CPS3), Protocol::T0);
        assert_eq!(Protocol::from_atr(&[]), Protocol::T0);
        assert_eq!(Protocol::from_atr(&[0x3B, 0x80]), Protocol::T0);
    }
}
