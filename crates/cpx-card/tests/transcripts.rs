//! Golden APDU transcripts (test-vectors/transcripts/): the exact bytes each operation sends to
//! the card, so that a change in what reaches a real card shows in review. `CPX_BLESS=1`
//! regenerates them. Also the APDU counts per operation (apdu-counts.txt).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::fmt::Write as _;
use std::path::PathBuf;

use common::*;
use cpx_card::{HashAlg, KeyRole, Mechanism, Pin, PinKind};

const PIN: &str = "1234";
const PUK: &str = "12345678";

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../test-vectors/transcripts")
}

fn render(title: &str, stem: &str, protocol: &str, wire: &[(Vec<u8>, Vec<u8>)]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# cpx-card golden transcript: {title}");
    let _ = writeln!(
        out,
        "# card: emulated {stem}, {protocol}; `>` = to the card, `<` = its reply"
    );
    let _ = writeln!(
        out,
        "# 31 32 33 34 is the TEST PIN \"1234\" and 31 32 33 34 35 36 37 38 the TEST PUK \"12345678\" (never real codes)."
    );
    let _ = writeln!(
        out,
        "# Reply data over 48 bytes is shown as its length. Regenerate: CPX_BLESS=1 cargo test -p cpx-card --test transcripts"
    );
    for (c, r) in wire {
        let _ = writeln!(out, "> {}", hex(c));
        let (data, sw) = r.split_at(r.len().saturating_sub(2));
        if data.len() > 48 {
            let _ = writeln!(out, "< <{} bytes> {}", data.len(), hex(sw));
        } else {
            let _ = writeln!(out, "< {}", hex(r));
        }
    }
    out
}

fn golden(name: &str, text: &str) {
    let path = dir().join(format!("{name}.txt"));
    if std::env::var_os("CPX_BLESS").is_some() || !path.exists() {
        std::fs::create_dir_all(dir()).unwrap();
        std::fs::write(&path, text).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap();
    if want != text {
        panic!(
            "{} differs from what the driver sends now (CPX_BLESS=1 to accept):\n--- golden\n{want}\n--- now\n{text}",
            path.display()
        );
    }
}

/// Run `op` on a card prepared by `setup`, record only `op`'s APDUs.
fn record(
    stem: &str,
    setup: impl FnOnce(&mut Session),
    op: impl FnOnce(&mut Session),
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut s = Session::open(stem);
    setup(&mut s);
    s.take();
    op(&mut s);
    s.take()
}

fn warm(s: &mut Session) {
    // PKCS#15 already read (keys, AODF): the warm state of a running session.
    s.card.pin_status(PinKind::User).unwrap();
    s.card.certificate(KeyRole::Signature).unwrap();
}

fn logged_in(s: &mut Session) {
    warm(s);
    s.card.verify_pin(&Pin::new(PIN)).unwrap();
}

fn puk_in(s: &mut Session) {
    warm(s);
    s.card.verify(PinKind::Puk, &Pin::new(PUK)).unwrap();
}

fn data_logged_in(s: &mut Session) {
    logged_in(s);
    s.card.data_objects().unwrap();
}

fn data_warm(s: &mut Session) {
    warm(s);
    s.card.data_objects().unwrap();
}

fn message() -> Vec<u8> {
    // docs/card-spec.md §8.6: a 1024-byte message.
    (0..1024u32).map(|i| (i % 251) as u8).collect()
}

fn di() -> Vec<u8> {
    // docs/card-spec.md §8.7: a 51-byte SHA-256 DigestInfo.
    HashAlg::Sha256.digest_info(&HashAlg::Sha256.digest(b"authenticate"))
}

fn cryptogram(s: &mut Session) -> Vec<u8> {
    let pk = public_key(&s.card.certificate(KeyRole::Authentication).unwrap().der);
    encrypt(&pk, b"0123456789abcdef0123456789abcdef")
}

type Op = (&'static str, fn(&mut Session), fn(&mut Session));
/// A count row: name, setup, operation, also on the contactless card.
type Row = (&'static str, fn(&mut Session), fn(&mut Session), bool);

fn ops(generation4: bool) -> Vec<Op> {
    let mut v: Vec<Op> = vec![
        ("pin-status", warm, |s| {
            s.card.pin_statuses(&[PinKind::User, PinKind::Puk]).unwrap();
        }),
        ("verify", warm, |s| s.card.verify_pin(&Pin::new(PIN)).unwrap()),
        ("change", warm, |s| {
            s.card.change_pin(&Pin::new(PIN), &Pin::new("5678")).unwrap()
        }),
        ("unblock", warm, |s| {
            s.card.unblock_pin(&Pin::new(PUK), &Pin::new(PIN)).unwrap()
        }),
        ("logout", logged_in, |s| s.card.logout().unwrap()),
        ("unblock-after-puk", puk_in, |s| {
            s.card.unblock_pin_after_puk(&Pin::new(PIN)).unwrap()
        }),
        ("random-16", warm, |s| {
            s.card.random_bytes(16).unwrap();
        }),
        ("data-size", data_warm, |s| {
            s.card.data_object_size("CPS_DATA").unwrap();
        }),
        ("write-data", data_logged_in, |s| {
            s.card.write_data_object("CPS_DATA", b"cpx golden").unwrap()
        }),
        ("sign-sha256", logged_in, |s| {
            s.card
                .sign(KeyRole::Signature, Mechanism::Pkcs1(HashAlg::Sha256), &message())
                .unwrap();
        }),
        ("sign-sha1-1405", logged_in, |s| {
            s.card
                .sign(KeyRole::Signature, Mechanism::Pkcs1(HashAlg::Sha1), &[b'A'; 1405])
                .unwrap();
        }),
        ("sign-hash", logged_in, |s| {
            s.card
                .sign(
                    KeyRole::Signature,
                    Mechanism::RsaPkcs,
                    &HashAlg::Sha256.digest(b"doc"),
                )
                .unwrap();
        }),
        ("authenticate", logged_in, |s| {
            s.card
                .sign(KeyRole::Authentication, Mechanism::RsaPkcs, &di())
                .unwrap();
        }),
        ("decrypt", logged_in, |s| {
            let c = cryptogram(s);
            s.take();
            s.card.decrypt(KeyRole::Authentication, &c).unwrap();
        }),
    ];
    if generation4 {
        v.push(("sign-pss-sha256", logged_in, |s| {
            s.card
                .sign(KeyRole::Signature, Mechanism::Pss(HashAlg::Sha256), &message())
                .unwrap();
        }));
        v.push(("authenticate-pss", logged_in, |s| {
            s.card
                .sign(
                    KeyRole::Authentication,
                    Mechanism::Pss(HashAlg::Sha256),
                    b"tls 1.3",
                )
                .unwrap();
        }));
    }
    v
}

#[test]
fn golden_transcripts() {
    for (stem, prefix, protocol, g4) in [
        ("cps3-doctor", "cps3", "T=0", false),
        ("cps4-doctor", "cps4", "T=1, channel 1", true),
    ] {
        for (name, setup, op) in ops(g4) {
            let wire = record(stem, setup, op);
            golden(
                &format!("{prefix}-{name}"),
                &render(&format!("{prefix} {name}"), stem, protocol, &wire),
            );
        }
    }
    let wire = record(
        "cps3-contactless",
        |s| {
            s.card.certificate(KeyRole::Authentication).unwrap();
        },
        |s| {
            s.card
                .sign(KeyRole::Authentication, Mechanism::RsaPkcs, &di())
                .unwrap();
        },
    );
    golden(
        "cps3cl-authenticate",
        &render(
            "cps3 contactless authenticate (technical key)",
            "cps3-contactless",
            "T=1",
            &wire,
        ),
    );
}

/// APDUs per operation, as the card sees them (GET RESPONSE included).
#[test]
fn apdu_counts() {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# APDUs per operation on the emulated cards (GET RESPONSE included). Regenerate: CPX_BLESS=1"
    );
    let _ = writeln!(
        out,
        "# cold = fresh session after Card::open; warm = PKCS#15 already read in this session."
    );
    let _ = writeln!(
        out,
        "# operation | cps3-doctor (T=0) | cps4-doctor (T=1) | cps3-contactless (T=1)"
    );
    let stems = ["cps3-doctor", "cps4-doctor", "cps3-contactless"];
    let count = |stem: &str, setup: fn(&mut Session), op: fn(&mut Session)| -> String {
        let mut s = Session::open(stem);
        setup(&mut s);
        s.take();
        op(&mut s);
        s.take().len().to_string()
    };
    let open = |stem: &str| {
        let s = Session::open(stem);
        s.take().len().to_string()
    };
    // A session opened with the PKCS#15 files a first session read (Card::open_with): the
    // first open, PIN status and signature of a process with a disk cache.
    let seeded = |stem: &str| {
        let mut first = Session::open(stem);
        if stem != "cps3-contactless" {
            first.card.pin_statuses(&[PinKind::User, PinKind::Puk]).unwrap();
        }
        first.card.private_keys().unwrap();
        first.card.certificate_infos().unwrap();
        first.card.data_objects().unwrap();
        Session::open_with(stem, first.card.pkcs15_files())
    };
    let seeded_open = |stem: &str| seeded(stem).count().to_string();
    // Identified::open_lazy (the PKCS#11 module's open, issue 15): nothing after the serial;
    // then what a key lookup reads (ODF + PrKDF, EF.DIR first where the path comes from it),
    // and TokenInfo when C_GetTokenInfo asks for it.
    let lazy = |stem: &str| {
        let (rec, wire, _slot) = Recorder::swappable(emulated(stem));
        let (channel, _control) =
            cpx_transport_virtual::VirtualChannel::new(format!("virtual {stem}"), Box::new(rec));
        let card = cpx_card::Card::identify(Box::new(channel))
            .unwrap()
            .open_lazy(None)
            .unwrap();
        let opened = wire.take().len();
        (card, wire, opened)
    };
    let lazy_open = |stem: &str| lazy(stem).2.to_string();
    let lazy_keys = |stem: &str| {
        let (mut card, wire, _) = lazy(stem);
        card.private_keys().unwrap();
        assert!(!card.token_info_known(), "{stem}: TokenInfo read for the keys");
        wire.take().len().to_string()
    };
    let lazy_token_info = |stem: &str| {
        let (mut card, wire, _) = lazy(stem);
        card.read_token_info().unwrap();
        assert!(card.token_label().starts_with("CPS"), "{stem}");
        wire.take().len().to_string()
    };
    let seeded_op = |stem: &str, op: fn(&mut Session)| -> String {
        if stem == "cps3-contactless" {
            return "-".into();
        }
        let mut s = seeded(stem);
        s.take();
        op(&mut s);
        s.take().len().to_string()
    };
    let pins: fn(&mut Session) = |s| {
        s.card.pin_statuses(&[PinKind::User, PinKind::Puk]).unwrap();
    };
    let sign: fn(&mut Session) = |s| {
        s.card.verify_pin(&Pin::new(PIN)).unwrap();
        s.take();
        s.card
            .sign(KeyRole::Signature, Mechanism::Pkcs1(HashAlg::Sha256), &message())
            .unwrap();
    };
    let rows: Vec<(&str, String, String, String)> = vec![
        (
            "open (ATR, EF.SN.ICC, TokenInfo)",
            open(stems[0]),
            open(stems[1]),
            open(stems[2]),
        ),
        (
            "lazy open (ATR, EF.SN.ICC: Identified::open_lazy)",
            lazy_open(stems[0]),
            lazy_open(stems[1]),
            lazy_open(stems[2]),
        ),
        (
            "private keys after a lazy open (EF.DIR where needed, ODF, PrKDF)",
            lazy_keys(stems[0]),
            lazy_keys(stems[1]),
            lazy_keys(stems[2]),
        ),
        (
            "TokenInfo after a lazy open (EF.DIR where needed, TokenInfo)",
            lazy_token_info(stems[0]),
            lazy_token_info(stems[1]),
            lazy_token_info(stems[2]),
        ),
        (
            "open with the PKCS#15 files of an earlier session",
            seeded_open(stems[0]),
            seeded_open(stems[1]),
            seeded_open(stems[2]),
        ),
        (
            "PIN + PUK status, first, session opened with the files",
            seeded_op(stems[0], pins),
            seeded_op(stems[1], pins),
            seeded_op(stems[2], pins),
        ),
        (
            "sign SHA-256 1024 bytes, first, session opened with the files",
            seeded_op(stems[0], sign),
            seeded_op(stems[1], sign),
            seeded_op(stems[2], sign),
        ),
    ];
    let table: Vec<Row> = vec![
        (
            "cold read of both certificates",
            |_| {},
            |s| {
                s.card.certificates().unwrap();
            },
            true,
        ),
        (
            "PIN status (user PIN), warm",
            warm,
            |s| {
                s.card.pin_status(PinKind::User).unwrap();
            },
            false,
        ),
        (
            "PIN + PUK status, warm",
            warm,
            |s| {
                s.card.pin_statuses(&[PinKind::User, PinKind::Puk]).unwrap();
            },
            false,
        ),
        (
            "PIN status, cold (AODF read)",
            |_| {},
            |s| {
                s.card.pin_status(PinKind::User).unwrap();
            },
            false,
        ),
        (
            "verify PIN, warm",
            warm,
            |s| s.card.verify_pin(&Pin::new(PIN)).unwrap(),
            false,
        ),
        (
            "sign SHA-256 1024 bytes, signature key, warm",
            logged_in,
            |s| {
                s.card
                    .sign(KeyRole::Signature, Mechanism::Pkcs1(HashAlg::Sha256), &message())
                    .unwrap();
            },
            false,
        ),
        (
            "sign precomputed SHA-256, warm",
            logged_in,
            |s| {
                s.card
                    .sign(
                        KeyRole::Signature,
                        Mechanism::RsaPkcs,
                        &HashAlg::Sha256.digest(b"doc"),
                    )
                    .unwrap();
            },
            false,
        ),
        (
            "authenticate (DigestInfo), warm",
            logged_in,
            |s| {
                s.card
                    .sign(KeyRole::Authentication, Mechanism::RsaPkcs, &di())
                    .unwrap();
            },
            true,
        ),
        (
            "decrypt, warm",
            logged_in,
            |s| {
                let c = cryptogram(s);
                s.take();
                s.card.decrypt(KeyRole::Authentication, &c).unwrap();
            },
            false,
        ),
        (
            "change PIN, warm",
            warm,
            |s| s.card.change_pin(&Pin::new(PIN), &Pin::new("5678")).unwrap(),
            false,
        ),
        (
            "unblock PIN, warm",
            warm,
            |s| s.card.unblock_pin(&Pin::new(PUK), &Pin::new(PIN)).unwrap(),
            false,
        ),
        (
            "logout (VERIFY P1=FF), logged in",
            logged_in,
            |s| s.card.logout().unwrap(),
            false,
        ),
        (
            "unblock with the PUK already verified",
            puk_in,
            |s| s.card.unblock_pin_after_puk(&Pin::new(PIN)).unwrap(),
            false,
        ),
        (
            "random 16 bytes (GET CHALLENGE), warm",
            warm,
            |s| {
                s.card.random_bytes(16).unwrap();
            },
            false,
        ),
        (
            "CPS_DATA size (FCP/FCI only), warm",
            data_warm,
            |s| {
                s.card.data_object_size("CPS_DATA").unwrap();
            },
            false,
        ),
        (
            "write CPS_DATA, logged in",
            data_logged_in,
            |s| s.card.write_data_object("CPS_DATA", b"cpx golden").unwrap(),
            false,
        ),
        (
            "whole run: open+verify+sign SHA-256 (cold)",
            |_| {},
            |_| {},
            false,
        ),
        (
            "whole run: open+verify+authenticate (cold)",
            |_| {},
            |_| {},
            false,
        ),
    ];
    let mut rows = rows;
    for (name, setup, op, cl) in table {
        let run = |stem: &str| -> String {
            if name.starts_with("whole run") {
                if stem == "cps3-contactless" {
                    return "-".into();
                }
                let mut s = Session::open(stem);
                s.card.verify_pin(&Pin::new(PIN)).unwrap();
                if name.contains("sign") {
                    s.card
                        .sign(KeyRole::Signature, Mechanism::Pkcs1(HashAlg::Sha256), &message())
                        .unwrap();
                } else {
                    s.card
                        .sign(KeyRole::Authentication, Mechanism::RsaPkcs, &di())
                        .unwrap();
                }
                return s.take().len().to_string();
            }
            if stem == "cps3-contactless" && !cl {
                return "-".into();
            }
            if stem == "cps3-contactless" {
                // No PIN: run the operation straight (PKCS#15 read first when warm).
                let mut s = Session::open(stem);
                if name.contains("warm") {
                    s.card.certificates().unwrap();
                    s.card
                        .sign(KeyRole::Authentication, Mechanism::RsaPkcs, &di())
                        .unwrap();
                }
                s.take();
                if name.contains("certificates") {
                    s.card.certificates().unwrap();
                } else {
                    s.card
                        .sign(KeyRole::Authentication, Mechanism::RsaPkcs, &di())
                        .unwrap();
                }
                return s.take().len().to_string();
            }
            count(stem, setup, op)
        };
        rows.push((name, run(stems[0]), run(stems[1]), run(stems[2])));
    }
    for (name, a, b, c) in &rows {
        let _ = writeln!(out, "{name} | {a} | {b} | {c}");
    }
    println!("{out}");
    golden("apdu-counts", &out);
}
