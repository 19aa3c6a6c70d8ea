//! Data-driven APDU tests: `tests/vectors/*.apdu`, run in-process against the emulator.
//!
//! Format (one directive per line, `#` comments):
//! - `@card <stem>`: a fresh card from `test-vectors/cards/<stem>/card.toml`; `@reset`: power cycle.
//! - `> <bytes>`: send a command. `< <bytes>`: expect this exact response (data ‖ SW).
//!   Expected bytes may use `?` (any byte) and one `*` (any run of bytes). A trailing `>>name`
//!   appends the response data to the variable `name`.
//! - Bytes: hex pairs (spaces optional), `( … )` = length byte + content, `$rep(HH,N)` = N bytes HH,
//!   `$state(sha1|sha256,HH,N)` = intermediate hash state after N bytes HH (N multiple of 64),
//!   `$bits(N)` = 8-byte big-endian N, `$enc(key,HH,N)` = PKCS#1 v1.5 encryption of N bytes HH
//!   with the certificate of `key` (sign/auth/tech), `$var(name)` = a captured variable,
//!   `$slice(name,from,len)` = part of a variable, `$sw2()` = SW2 of the last response.
//! - `! sig <var> <key> <sha1|sha256|raw> <bytes>`: the variable is a PKCS#1 v1.5 signature of the
//!   message (for `raw`, the bytes themselves were padded as is) under the key's certificate.
//!   `! eq <var> <bytes>`: the variable equals the bytes. `! set <var> <bytes>`. `! clear <var>`.
//! - More macros: `$sha1(HH,N)`, `$sha256(HH,N)` = hash of N bytes HH.

// Test code: failing loudly is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use cpx_emulator::sha_resume::{self, HashAlg};
use cpx_emulator::{CardImage, Cps3Card};
use cpx_vpcd::VirtualCard;
use rand_chacha::rand_core::SeedableRng;
use rsa::pkcs8::DecodePublicKey;
use rsa::{Pkcs1v15Encrypt, Pkcs1v15Sign, RsaPublicKey};
use sha2::Digest;
use x509_cert::der::{Decode, Encode};

fn cards_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test-vectors/cards")
}

struct Run {
    stem: String,
    image: Option<CardImage>,
    card: Option<Cps3Card>,
    vars: HashMap<String, Vec<u8>>,
    rng: rand_chacha::ChaCha20Rng,
    last: Vec<u8>,
}

fn cert_key(image: &CardImage, which: &str) -> RsaPublicKey {
    let k = match which {
        "sign" => image.sign.as_ref(),
        "auth" => image.auth.as_ref(),
        "tech" => image.tech.as_ref(),
        other => panic!("unknown key {other}"),
    }
    .unwrap_or_else(|| panic!("no {which} key on this card"));
    let cert = x509_cert::Certificate::from_der(&k.cert).expect("certificate DER");
    let spki = cert.tbs_certificate.subject_public_key_info.to_der().unwrap();
    RsaPublicKey::from_public_key_der(&spki).expect("RSA public key")
}

fn rep(args: &[&str]) -> Vec<u8> {
    let b = u8::from_str_radix(args[0], 16).unwrap();
    vec![b; args[1].parse().unwrap()]
}

impl Run {
    fn image(&self) -> &CardImage {
        self.image.as_ref().expect("@card first")
    }

    fn macro_bytes(&mut self, name: &str, args: &[&str]) -> Vec<u8> {
        match name {
            "rep" => rep(args),
            "bits" => args[0].parse::<u64>().unwrap().to_be_bytes().to_vec(),
            "state" => {
                let alg = if args[0] == "sha1" {
                    HashAlg::Sha1
                } else {
                    HashAlg::Sha256
                };
                sha_resume::intermediate(alg, &rep(&args[1..])).expect("multiple of 64")
            }
            "enc" => {
                let key = cert_key(self.image(), args[0]);
                key.encrypt(&mut self.rng, Pkcs1v15Encrypt, &rep(&args[1..]))
                    .unwrap()
            }
            "sha1" => sha1::Sha1::digest(rep(args)).to_vec(),
            "sha256" => sha2::Sha256::digest(rep(args)).to_vec(),
            "sw2" => vec![*self.last.last().expect("a response first")],
            "var" => self.vars.get(args[0]).cloned().unwrap_or_default(),
            "slice" => {
                let v = self.vars.get(args[0]).cloned().unwrap_or_default();
                let from: usize = args[1].parse().unwrap();
                let len: usize = args[2].parse().unwrap();
                v[from..from + len].to_vec()
            }
            other => panic!("unknown macro ${other}"),
        }
    }

    /// Parse bytes; `None` entries are wildcards (`?`), `Some(vec![])` marks `*`.
    fn parse(&mut self, text: &str) -> Vec<Tok> {
        let mut out: Vec<Tok> = Vec::new();
        let mut stack: Vec<usize> = Vec::new();
        let chars: Vec<char> = text.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            match c {
                ' ' | '\t' => i += 1,
                '(' => {
                    stack.push(out.len());
                    out.push(Tok::Byte(0));
                    i += 1;
                }
                ')' => {
                    let at = stack.pop().expect("unbalanced )");
                    let n = out.len() - at - 1;
                    assert!(n < 0x80, "group too long for a one-byte length");
                    out[at] = Tok::Byte(n as u8);
                    i += 1;
                }
                '?' => {
                    out.push(Tok::Any);
                    i += 1;
                }
                '*' => {
                    out.push(Tok::Star);
                    i += 1;
                }
                '$' => {
                    let open = text[i..].find('(').unwrap() + i;
                    let close = text[open..].find(')').unwrap() + open;
                    let name: String = chars[i + 1..open].iter().collect();
                    let args_s: String = chars[open + 1..close].iter().collect();
                    let args: Vec<&str> = args_s.split(',').map(str::trim).collect();
                    let bytes = self.macro_bytes(&name, &args);
                    out.extend(bytes.into_iter().map(Tok::Byte));
                    i = close + 1;
                }
                _ => {
                    let pair: String = chars[i..i + 2].iter().collect();
                    out.push(Tok::Byte(
                        u8::from_str_radix(&pair, 16).unwrap_or_else(|_| panic!("bad hex {pair}")),
                    ));
                    i += 2;
                }
            }
        }
        assert!(stack.is_empty(), "unbalanced (");
        out
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Tok {
    Byte(u8),
    Any,
    Star,
}

fn matches(expected: &[Tok], got: &[u8]) -> bool {
    let eq = |t: &Tok, b: &u8| matches!(t, Tok::Any) || *t == Tok::Byte(*b);
    match expected.iter().position(|t| *t == Tok::Star) {
        None => expected.len() == got.len() && expected.iter().zip(got).all(|(t, b)| eq(t, b)),
        Some(s) => {
            let (pre, post) = (&expected[..s], &expected[s + 1..]);
            got.len() >= pre.len() + post.len()
                && pre.iter().zip(got).all(|(t, b)| eq(t, b))
                && post
                    .iter()
                    .zip(&got[got.len() - post.len()..])
                    .all(|(t, b)| eq(t, b))
        }
    }
}

fn bytes(toks: &[Tok]) -> Vec<u8> {
    toks.iter()
        .map(|t| match t {
            Tok::Byte(b) => *b,
            _ => panic!("wildcard in a command"),
        })
        .collect()
}

fn run_file(name: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut run = Run {
        stem: String::new(),
        image: None,
        card: None,
        vars: HashMap::new(),
        rng: rand_chacha::ChaCha20Rng::seed_from_u64(7),
        last: Vec::new(),
    };
    let mut last_cmd = String::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let at = format!("{name}:{}", n + 1);
        let (head, rest) = line.split_at(1);
        let rest = rest.trim();
        match head {
            "@" => {
                let mut w = rest.split_whitespace();
                match w.next() {
                    Some("card") => {
                        run.stem = w.next().unwrap().to_owned();
                        let image = CardImage::load(cards_dir().join(&run.stem).join("card.toml"))
                            .unwrap_or_else(|e| panic!("{at}: {e}"));
                        let mut card = Cps3Card::new(&image);
                        card.power_on();
                        run.card = Some(card);
                        run.image = Some(image);
                        run.vars.clear();
                    }
                    Some("reset") => {
                        let c = run.card.as_mut().unwrap();
                        c.power_off();
                        c.power_on();
                    }
                    other => panic!("{at}: unknown @{other:?}"),
                }
            }
            ">" => {
                let toks = run.parse(rest);
                let cmd = bytes(&toks);
                run.last = run.card.as_mut().expect("@card first").transmit(&cmd);
                last_cmd = hex::encode_upper(&cmd);
            }
            "<" => {
                let (exp, capture) = match rest.split_once(">>") {
                    Some((e, v)) => (e, Some(v.trim().to_owned())),
                    None => (rest, None),
                };
                let toks = run.parse(exp);
                assert!(
                    matches(&toks, &run.last),
                    "{at} [{}]: command {last_cmd}\n  expected {exp}\n  got      {}",
                    run.stem,
                    hex::encode_upper(&run.last)
                );
                if let Some(v) = capture {
                    let data = &run.last[..run.last.len() - 2];
                    run.vars.entry(v).or_default().extend_from_slice(data);
                }
            }
            "!" => {
                let w: Vec<&str> = rest.split_whitespace().collect();
                match w[0] {
                    "sig" => {
                        let sig = run.vars.get(w[1]).cloned().unwrap_or_default();
                        let key = cert_key(run.image(), w[2]);
                        let msg = bytes(&run.parse(&w[4..].join(" ")));
                        let ok = match w[3] {
                            "sha1" => {
                                key.verify(Pkcs1v15Sign::new::<sha1::Sha1>(), &sha1::Sha1::digest(&msg), &sig)
                            }
                            "sha256" => key.verify(
                                Pkcs1v15Sign::new::<sha2::Sha256>(),
                                &sha2::Sha256::digest(&msg),
                                &sig,
                            ),
                            "raw" => key.verify(Pkcs1v15Sign::new_unprefixed(), &msg, &sig),
                            other => panic!("{at}: unknown scheme {other}"),
                        };
                        assert!(
                            ok.is_ok(),
                            "{at}: signature does not verify ({} bytes)",
                            sig.len()
                        );
                    }
                    "set" => {
                        let v = bytes(&run.parse(&w[2..].join(" ")));
                        run.vars.insert(w[1].to_owned(), v);
                    }
                    "eq" => {
                        let want = bytes(&run.parse(&w[2..].join(" ")));
                        assert_eq!(run.vars.get(w[1]).cloned().unwrap_or_default(), want, "{at}");
                    }
                    "clear" => {
                        run.vars.remove(w[1]);
                    }
                    other => panic!("{at}: unknown check {other}"),
                }
            }
            _ => panic!("{at}: cannot parse {line:?}"),
        }
    }
}

macro_rules! vector_tests {
    ($($name:ident),* $(,)?) => {
        $(#[test] fn $name() { run_file(concat!(stringify!($name), ".apdu")); })*
    };
}

vector_tests!(
    connect_official,
    select_forms,
    read_update,
    foreign_probes,
    pin_verify_change,
    pin_unblock,
    blocked_cards,
    sign_on_card_hash,
    sign_hash_given,
    auth_internal_authenticate,
    decipher_chained,
    opensc_sdo_queries,
    business_data,
    cps2ter_volet,
    transport_t0,
    contactless,
);
