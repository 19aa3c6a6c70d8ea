//! The data-driven APDU test runner shared by `cps3_apdu.rs` and `cps4_apdu.rs`.
//!
//! Format (one directive per line, `#` comments):
//! - `@card <stem> [atr]`: a fresh card from `test-vectors/cards/<stem>/card.toml` (built by
//!   `card_from_image`), optionally with another ATR by name (`cps4-t0`, …); `@reset`: power cycle.
//! - `> <bytes>`: send a command. `< <bytes>`: expect this exact response (data ‖ SW).
//!   Expected bytes may use `?` (any byte) and one `*` (any run of bytes). A trailing `>>name`
//!   appends the response data to the variable `name`.
//! - Bytes: hex pairs (spaces optional), `( … )` = length byte + content, `$rep(HH,N)` = N bytes HH,
//!   `$state(sha1|sha256,HH,N)` = intermediate hash state after N bytes HH (N multiple of 64),
//!   `$bits(N)` = 8-byte big-endian N, `$enc(key,HH,N)` = PKCS#1 v1.5 encryption of N bytes HH
//!   with the certificate of `key` (sign/auth/tech), `$block1(key,sha1|sha256,HH,N)` = the PKCS#1
//!   type-1 block of the DigestInfo of N bytes HH, as long as the key's modulus, `$var(name)` = a
//!   captured variable, `$slice(name,from,len)` = part of a variable, `$sw2()` = SW2 of the last
//!   response, `$sha1(HH,N)`, `$sha256(HH,N)` = hash of N bytes HH.
//! - `! sig <var> <key> <sha1|sha256|raw|pss-sha1|pss-sha256> <bytes>`: the variable is a
//!   signature of the message under the key's certificate: PKCS#1 v1.5 (for `raw`, the bytes
//!   themselves were padded as is) or PSS (MGF1 same hash, salt = hash length).
//!   `! type2 <var> <bytes>`: the variable is a PKCS#1 type-2 block carrying the bytes.
//!   `! eq <var> <bytes>`: the variable equals the bytes. `! has <var> <bytes>`: it contains them. `! set <var> <bytes>`. `! clear <var>`.

// Test code: failing loudly is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    dead_code,
    unreachable_pub
)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use cpx_emulator::sha_resume::{self, HashAlg};
use cpx_emulator::{CardImage, EmulatedCard, card_from_image, facts};
use cpx_vpcd::VirtualCard;
use rand_chacha::rand_core::SeedableRng;
use rsa::pkcs8::DecodePublicKey;
use rsa::traits::PublicKeyParts;
use rsa::{Pkcs1v15Encrypt, Pkcs1v15Sign, Pss, RsaPublicKey};
use sha2::Digest;
use x509_cert::der::{Decode, Encode};

fn cards_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test-vectors/cards")
}

struct Run {
    stem: String,
    image: Option<CardImage>,
    card: Option<Box<dyn EmulatedCard>>,
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
            "block1" => {
                let key = cert_key(self.image(), args[0]);
                let msg = rep(&args[2..]);
                let info = match args[1] {
                    "sha1" => [
                        &hex::decode("3021300906052B0E03021A05000414").unwrap()[..],
                        &sha1::Sha1::digest(&msg),
                    ]
                    .concat(),
                    _ => [
                        &hex::decode("3031300D060960864801650304020105000420").unwrap()[..],
                        &sha2::Sha256::digest(&msg),
                    ]
                    .concat(),
                };
                let mut block = vec![0x00, 0x01];
                block.resize(key.size() - info.len() - 1, 0xFF);
                block.push(0x00);
                block.extend(info);
                block
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

pub fn run_file(name: &str) {
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
                        let mut image = CardImage::load(cards_dir().join(&run.stem).join("card.toml"))
                            .unwrap_or_else(|e| panic!("{at}: {e}"));
                        if let Some(atr) = w.next() {
                            image.atr = facts::named_atr(atr)
                                .unwrap_or_else(|| panic!("{at}: ATR {atr}"))
                                .to_vec();
                        }
                        let mut card = card_from_image(&image);
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
                            "pss-sha1" => {
                                key.verify(Pss::new::<sha1::Sha1>(), &sha1::Sha1::digest(&msg), &sig)
                            }
                            "pss-sha256" => {
                                key.verify(Pss::new::<sha2::Sha256>(), &sha2::Sha256::digest(&msg), &sig)
                            }
                            other => panic!("{at}: unknown scheme {other}"),
                        };
                        assert!(
                            ok.is_ok(),
                            "{at}: signature does not verify ({} bytes)",
                            sig.len()
                        );
                    }
                    "type2" => {
                        let block = run.vars.get(w[1]).cloned().unwrap_or_default();
                        let want = bytes(&run.parse(&w[2..].join(" ")));
                        assert!(block.len() > want.len() + 10, "{at}: block too short");
                        let sep = block.len() - want.len() - 1;
                        assert_eq!(&block[..2], [0x00, 0x02], "{at}: not a type-2 block");
                        assert!(block[2..sep].iter().all(|b| *b != 0), "{at}: zero in the padding");
                        assert_eq!(block[sep], 0x00, "{at}: no separator");
                        assert_eq!(&block[sep + 1..], want, "{at}: payload");
                    }
                    "has" => {
                        let v = run.vars.get(w[1]).cloned().unwrap_or_default();
                        let want = bytes(&run.parse(&w[2..].join(" ")));
                        assert!(
                            v.windows(want.len()).any(|x| x == want),
                            "{at}: {} not in {}",
                            hex::encode_upper(&want),
                            hex::encode_upper(&v)
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
