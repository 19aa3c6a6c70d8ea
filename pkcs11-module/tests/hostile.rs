//! A hostile card behind the real pcscd against the built module (issue 9): endless `61xx`,
//! truncated and oversized answers, garbage PKCS#15, wrong status words, short signatures and
//! seeded random corruption of every answer.
//!
//! What must hold whatever the card says: every call returns (a watchdog bounds each card's run),
//! no call panics (a panic caught at the C boundary would show as CKR_GENERAL_ERROR, which is
//! refused here), and nothing wrong is ever returned as right: a certificate value the module
//! returns with CKR_OK is the card's real certificate, and a signature it returns with CKR_OK
//! verifies with the real key. The same card, honest again, then works: nothing bad was cached.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

use common::*;
use cpx_testkit::{Failed, Trial, apdu};
use cpx_vpcd::VirtualCard;
use cryptoki::error::{Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectClass};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use rsa::Pkcs1v15Sign;
use x509_parser::prelude::{FromDer, X509Certificate};

/// How long one pass over a card may take before it counts as a hang.
const WATCHDOG: Duration = Duration::from_secs(60);

type Tamper = Box<dyn FnMut(&[u8], Vec<u8>) -> Vec<u8> + Send>;

/// An emulated card whose answers go through `tamper` (command, honest answer) → answer sent.
struct Hostile {
    inner: Box<dyn VirtualCard>,
    tamper: Tamper,
}

impl VirtualCard for Hostile {
    fn atr(&self) -> Vec<u8> {
        self.inner.atr()
    }
    fn power_on(&mut self) {
        self.inner.power_on()
    }
    fn power_off(&mut self) {
        self.inner.power_off()
    }
    fn reset(&mut self) {
        self.inner.reset()
    }
    fn transmit(&mut self, command: &[u8]) -> Vec<u8> {
        let honest = self.inner.transmit(command);
        let mut answer = (self.tamper)(command, honest);
        if answer.is_empty() {
            // An empty answer would leave vpcd 0.8 waiting (see cpx-vpcd's VirtualCard::transmit).
            answer = vec![0x6F, 0x00];
        }
        answer
    }
}

fn ins(command: &[u8]) -> u8 {
    command.get(1).copied().unwrap_or(0)
}

fn sw(answer: &[u8]) -> [u8; 2] {
    let n = answer.len();
    if n < 2 {
        [0, 0]
    } else {
        [answer[n - 2], answer[n - 1]]
    }
}

fn data(answer: &[u8]) -> &[u8] {
    &answer[..answer.len().saturating_sub(2)]
}

/// A small deterministic generator (xorshift64*), so a failing seed can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn main() -> ExitCode {
    cpx_testkit::run_tests(&common::sandbox(4), || {
        let mut v = vec![
            Trial::test("endless_61xx", || {
                // Every READ BINARY and GET RESPONSE: "61 FF, more to come", forever.
                hostile("cps3-doctor", || {
                    Box::new(|c, a| {
                        if matches!(ins(c), 0xB0 | 0xC0) {
                            vec![0x61, 0xFF]
                        } else {
                            a
                        }
                    })
                })
            }),
            Trial::test("truncated_read_binary", || {
                hostile("cps3-pharmacist", || {
                    Box::new(|c, a| {
                        if ins(c) == 0xB0 && sw(&a) == [0x90, 0x00] && data(&a).len() > 4 {
                            let mut short = data(&a)[..data(&a).len() / 2].to_vec();
                            short.extend([0x90, 0x00]);
                            short
                        } else {
                            a
                        }
                    })
                })
            }),
            Trial::test("oversized_file_sizes", || {
                // Every FCP/FCI size (tag 80 or 81, two bytes) claims 65535 bytes.
                hostile("cps4-doctor", || {
                    Box::new(|c, mut a| {
                        if ins(c) == 0xA4 {
                            let n = a.len().saturating_sub(2);
                            for i in 0..n.saturating_sub(3) {
                                if matches!(a[i], 0x80 | 0x81) && a[i + 1] == 0x02 {
                                    a[i + 2] = 0xFF;
                                    a[i + 3] = 0xFF;
                                }
                            }
                        }
                        a
                    })
                })
            }),
            Trial::test("garbage_read_binary", || {
                // Same lengths, noise instead of PKCS#15 and certificates.
                hostile("cpa", || {
                    let mut rng = Rng(0xC0FF_EE00);
                    Box::new(move |c, a| {
                        if ins(c) == 0xB0 && sw(&a) == [0x90, 0x00] {
                            let mut noise: Vec<u8> = data(&a).iter().map(|_| rng.next() as u8).collect();
                            noise.extend([0x90, 0x00]);
                            noise
                        } else {
                            a
                        }
                    })
                })
            }),
            Trial::test("wrong_status_words_after_connect", || {
                hostile("cpe", || {
                    let mut n = 0;
                    Box::new(move |_, a| {
                        n += 1;
                        // The first answers identify the card; then it talks nonsense.
                        if n > 12 { vec![0x6F, 0x00] } else { a }
                    })
                })
            }),
            Trial::test("short_and_long_signatures", || {
                hostile("cps4-doctor", || {
                    let mut n = 0;
                    Box::new(move |c, a| {
                        let signing = apdu::is_private_key_operation(c) && sw(&a) == [0x90, 0x00];
                        if signing && data(&a).len() >= 128 {
                            n += 1;
                            let mut bad = if n % 2 == 1 {
                                data(&a)[..100].to_vec()
                            } else {
                                [data(&a), &[0x42; 16][..]].concat()
                            };
                            bad.extend([0x90, 0x00]);
                            bad
                        } else {
                            a
                        }
                    })
                })
            }),
        ];
        for seed in 1..=32u64 {
            let stem = if seed % 2 == 0 {
                "cps4-doctor"
            } else {
                "cps3-doctor"
            };
            v.push(Trial::test(format!("random_corruption_seed_{seed}"), move || {
                run(
                    stem,
                    move || {
                        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
                        Box::new(move |_, mut a| {
                            // One answer in eight: flip a byte, cut the answer, or swap the SW.
                            match rng.below(8) {
                                0 if !a.is_empty() => {
                                    let i = rng.below(a.len());
                                    a[i] ^= 1 << rng.below(8);
                                }
                                1 if a.len() > 2 => {
                                    a.drain(rng.below(a.len() - 2)..a.len() - 2).for_each(drop)
                                }
                                2 => {
                                    let sws: [[u8; 2]; 6] = [
                                        [0x6A, 0x82],
                                        [0x69, 0x82],
                                        [0x67, 0x00],
                                        [0x61, 0x10],
                                        [0x6C, 0x05],
                                        [0x62, 0x82],
                                    ];
                                    let n = a.len();
                                    if n >= 2 {
                                        a[n - 2..].copy_from_slice(&sws[rng.below(sws.len())]);
                                    }
                                }
                                _ => {}
                            }
                            a
                        })
                    },
                    Check::WellFormed,
                )
            }));
        }
        v
    })
}

/// The card's real certificate DERs.
fn real_certs(stem: &str) -> Vec<Vec<u8>> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../test-vectors/cards");
    ["auth.der", "sign.der"]
        .iter()
        .map(|f| std::fs::read(format!("{dir}/{stem}/{f}")).unwrap())
        .collect()
}

/// Insert `stem` behind the tamperer, drive the module over it under a watchdog, check what it
/// returned; then the same card, honest, must work fully.
fn hostile(stem: &'static str, tamper: impl Fn() -> Tamper) -> Result<(), Failed> {
    run(stem, tamper, Check::Strict)
}

/// What a value returned with CKR_OK must be.
#[derive(Clone, Copy)]
enum Check {
    /// The card's own: certificates equal to the real ones, signatures that verify. For
    /// corruptions the module can see (lengths, encodings, status words).
    Strict,
    /// Well-formed: a certificate that parses as X.509, a signature as long as the modulus. For
    /// random bit flips, which can turn a certificate or a signature into another well-formed
    /// one that nothing on the card's side can tell from the real one (the relying party's
    /// verification catches those).
    WellFormed,
}

fn run(stem: &'static str, tamper: impl Fn() -> Tamper, check: Check) -> Result<(), Failed> {
    let real = real_certs(stem);
    {
        let card = Hostile {
            inner: cpx_testkit::emulated(stem)?,
            tamper: tamper(),
        };
        let (lease, _slot) = cpx_testkit::insert_card(Box::new(card))?;
        let report = watched(lease.name.clone(), real.clone(), check)?;
        eprintln!("{stem}, hostile: {report}");
    }
    let (lease, _slot) = insert(stem)?;
    let report = watched(lease.name.clone(), real, Check::Strict)?;
    if report.contains("ERR") {
        return Err(format!("the honest card fails after the hostile one: {report}").into());
    }
    Ok(())
}

/// `exercise` on its own thread, bounded by the watchdog.
fn watched(reader: String, real: Vec<Vec<u8>>, check: Check) -> Result<String, Failed> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(exercise(&reader, &real, check).map_err(|e| format!("{e:?}"))));
    match rx.recv_timeout(WATCHDOG) {
        Ok(r) => Ok(r?),
        Err(_) => Err(format!("the module did not return within {WATCHDOG:?}: a hang").into()),
    }
}

/// The codes PKCS#11 2.40 (§5.5–§5.12) lets each call return for a card that misbehaves
/// (argument, state and memory errors cannot happen in this sequence).
fn allowed(what: &str) -> &'static [RvError] {
    use RvError::*;
    match what {
        "token" | "session" => &[
            DeviceError,
            DeviceRemoved,
            TokenNotPresent,
            TokenNotRecognized,
            FunctionFailed,
        ],
        "find" => &[
            DeviceError,
            DeviceRemoved,
            SessionHandleInvalid,
            SessionClosed,
            FunctionFailed,
        ],
        "cert" => &[
            DeviceError,
            DeviceRemoved,
            SessionHandleInvalid,
            SessionClosed,
            FunctionFailed,
        ],
        "login" => &[
            DeviceError,
            DeviceRemoved,
            PinIncorrect,
            PinLocked,
            UserPinNotInitialized,
            SessionHandleInvalid,
            SessionClosed,
            FunctionFailed,
        ],
        "keys" => &[
            DeviceError,
            DeviceRemoved,
            SessionHandleInvalid,
            SessionClosed,
            FunctionFailed,
        ],
        "sign" => &[
            KeyHandleInvalid,
            DeviceError,
            DeviceRemoved,
            UserNotLoggedIn,
            KeyFunctionNotPermitted,
            KeyTypeInconsistent,
            DataLenRange,
            SessionHandleInvalid,
            SessionClosed,
            FunctionFailed,
        ],
        _ => &[],
    }
}

/// Everything a client does with a token; each failure must be a precise code, each success
/// right. Returns a one-line summary of the outcomes.
fn exercise(reader: &str, real: &[Vec<u8>], check: Check) -> Result<String, Failed> {
    let p11 = pkcs11()?;
    let mut log = Vec::new();
    let mut note = |what: &str, r: Result<(), Error>| -> Result<bool, Failed> {
        match r {
            Ok(()) => {
                log.push(format!("{what}:ok"));
                Ok(true)
            }
            Err(Error::Pkcs11(RvError::GeneralError, f)) => {
                Err(format!("{what}: CKR_GENERAL_ERROR from {f:?} (a panic or an unmapped error)").into())
            }
            Err(Error::Pkcs11(rv, f)) if !allowed(what).contains(&rv) => {
                Err(format!("{what}: {rv:?} from {f:?}, not a code PKCS#11 2.40 allows there").into())
            }
            Err(e) => {
                log.push(format!("{what}:ERR({e})"));
                Ok(false)
            }
        }
    };
    let slot = slot_of(p11, reader)?;
    if !note("token", p11.get_token_info(slot).map(drop))? {
        return Ok(log.join(" "));
    }
    let session = match p11.open_ro_session(slot) {
        Ok(s) => s,
        Err(e) => {
            note("session", Err(e))?;
            return Ok(log.join(" "));
        }
    };
    let certs = session.find_objects(&[Attribute::Class(ObjectClass::CERTIFICATE)]);
    let found: Vec<_> = certs.as_ref().map(|v| v.clone()).unwrap_or_default();
    for cert in found {
        let value = session.get_attributes(cert, &[AttributeType::Value]);
        if let Ok(attrs) = &value
            && let Some(Attribute::Value(der)) = attrs.first()
        {
            let parses = matches!(X509Certificate::from_der(der), Ok((rest, _)) if rest.is_empty());
            match check {
                Check::Strict if !real.contains(der) => {
                    return Err("a certificate value that is not the card's, returned with CKR_OK".into());
                }
                Check::WellFormed if !parses => {
                    return Err("a certificate value that is not X.509 DER, returned with CKR_OK".into());
                }
                _ => {}
            }
        }
        note("cert", value.map(drop))?;
    }
    note("find", certs.map(drop))?;
    if !note(
        "login",
        session.login(UserType::User, Some(&AuthPin::from("1234"))),
    )? {
        return Ok(log.join(" "));
    }
    let keys = session.find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY)]);
    let found: Vec<_> = keys.as_ref().map(|v| v.clone()).unwrap_or_default();
    for key in found {
        let id = session.get_attributes(key, &[AttributeType::Id]);
        let sig = session.sign(&Mechanism::Sha256RsaPkcs, key, b"hostile card");
        if let Ok(sig) = &sig {
            // Right only if it verifies with one of the real certificates' keys.
            let digest = <sha2::Sha256 as sha2::Digest>::digest(b"hostile card");
            let valid = real.iter().any(|der| {
                cert_key(der)
                    .verify(Pkcs1v15Sign::new::<sha2::Sha256>(), &digest, sig)
                    .is_ok()
            });
            match check {
                Check::Strict if !valid => {
                    return Err(format!("a wrong signature returned with CKR_OK (key {id:?})").into());
                }
                Check::WellFormed if sig.len() != 256 => {
                    return Err(format!("a {}-byte signature returned with CKR_OK", sig.len()).into());
                }
                _ => {}
            }
        }
        note("sign", sig.map(drop))?;
    }
    note("keys", keys.map(drop))?;
    let _ = session.logout();
    Ok(log.join(" "))
}
