//! OpenSC 0.23's own IAS-ECC CPx driver (written against real cards) on the emulated CPS3, through
//! the real pcscd + vpcd: if OpenSC works with our virtual card, the card is faithful where OpenSC
//! looks. Results are verified with openssl against the card's certificate.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Output};

use cpx_emulator::{builtin_image, card_from_image};
use cpx_testkit::{Failed, ReaderLease, Recorder, Recording, SandboxConfig, Trial, insert_card};
use cpx_vpcd::CardSlot;

const OPENSC_PKCS11: &str = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so";
/// CKA_ID of CPS_PRIV_AUT and CPS_PRIV_SIG: PKCS#15 AID ‖ 02 / 01 (docs/card-spec.md §1.5).
const AUTH_ID: &str = "e828bd080f8025000001ff001002";
const SIGN_ID: &str = "e828bd080f8025000001ff001001";

fn main() -> ExitCode {
    cpx_testkit::run_tests(&SandboxConfig::default(), || {
        vec![
            Trial::test("opensc_tool_shows_the_cps3_atr", opensc_tool_shows_the_cps3_atr),
            Trial::test(
                "pkcs11_tool_lists_certificates_and_keys",
                pkcs11_tool_lists_certificates_and_keys,
            ),
            Trial::test(
                "auth_key_signs_and_decrypts_after_login",
                auth_key_signs_and_decrypts_after_login,
            ),
            Trial::test(
                "pin_change_then_login_with_the_new_pin",
                pin_change_then_login_with_the_new_pin,
            ),
            Trial::test(
                "blocked_pin_unblock_is_refused_by_opensc_before_the_card",
                blocked_pin_unblock_is_refused_by_opensc_before_the_card,
            ),
            Trial::test(
                "signature_key_reaches_mse_dst_without_card_error",
                signature_key_reaches_mse_dst,
            ),
        ]
    })
}

struct Setup {
    lease: ReaderLease,
    _slot: CardSlot,
    log: Recording,
    dir: tempfile::TempDir,
    label: String,
}

fn insert(stem: &str) -> Setup {
    let image = builtin_image(stem).unwrap().unwrap();
    let label = image.token_label.clone();
    // Records every exchange, so tests can check what OpenSC sent and what the card answered.
    let (card, log) = Recorder::new(card_from_image(&image));
    let (lease, slot) = insert_card(Box::new(card)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // No file cache (every run reads the card); PIN unblock as docs/card-spec.md §9 says OpenSC needs; room
    // for every reader (OpenSC defaults to 16 virtual slots, several per card).
    std::fs::write(
        dir.path().join("opensc.conf"),
        "app default {\n  framework pkcs15 {\n    use_file_caching = no;\n  }\n}\n\
         app opensc-pkcs11 {\n  pkcs11 {\n    user_pin_unblock_style = set_pin_in_unlogged_session;\n    max_virtual_slots = 64;\n  }\n}\n",
    )
    .unwrap();
    Setup {
        lease,
        _slot: slot,
        log,
        dir,
        label,
    }
}

impl Setup {
    fn tool(&self, program: &str, args: &[&str]) -> Output {
        Command::new(program)
            .args(args)
            .env("OPENSC_CONF", self.dir.path().join("opensc.conf"))
            .env("HOME", self.dir.path())
            .output()
            .unwrap()
    }

    /// pkcs11-tool on this test's card, chosen by its slot (= reader) description. Not by token
    /// label: OpenSC 0.23 labels the token with the PIN label alone when "<TokenInfo label>
    /// (<PIN label>)" exceeds 32 characters, which the real 28-character PIN label of the CPS3
    /// AODF (GH#2224) always does; see `pkcs11_tool_lists_certificates_and_keys`.
    fn p11(&self, args: &[&str]) -> Output {
        let mut all = vec![
            "--module",
            OPENSC_PKCS11,
            "--slot-description",
            self.lease.name.as_str(),
        ];
        all.extend_from_slice(args);
        self.tool("pkcs11-tool", &all)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Card status words other than 9000/61xx/63Cx seen so far, with their commands, except the
    /// answers the sources prescribe for what OpenSC probes:
    /// - `6Cxx` to a READ BINARY (T=0 "exact length is xx", re-sent by the reader layer, docs/card-spec.md
    ///   §2.3; OpenSC reads EF.SN.ICC by SFI with Le C0, docs/card-spec.md §8);
    /// - an error to GET DATA of a private key's `7F48` template ("an error such as 6A80 or 6B00",
    ///   docs/card-spec.md §9, which OpenSC reads as "no public data");
    /// - `6A82` to SELECT of the contactless application's files `3F00/0002/…`, which a card
    ///   image without the technical key does not have (emulator `CL_APP_NEEDS_TECH_KEY`).
    fn card_errors(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter_map(|(c, r)| {
                let sw = &r[r.len().saturating_sub(2)..];
                let ok = matches!(sw, [0x90, 0x00] | [0x61, _] | [0x63, _]);
                let prescribed = match sw {
                    [0x6C, _] => c.get(1) == Some(&0xB0),
                    [0x6A, 0x80] => {
                        c.starts_with(&[0x00, 0xCB, 0x3F, 0xFF]) && c.ends_with(&[0x7F, 0x48, 0x80])
                    }
                    [0x6A, 0x82] => {
                        c.starts_with(&[0x00, 0xA4, 0x09]) && c.get(5..9) == Some(&[0x3F, 0x00, 0x00, 0x02])
                    }
                    _ => false,
                };
                (!ok && !prescribed).then(|| format!("{} -> {}", hex::encode(c), hex::encode(sw)))
            })
            .collect()
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn ok(out: Output) -> String {
    let t = text(&out);
    assert!(out.status.success(), "command failed:\n{t}");
    t
}

fn opensc_tool_shows_the_cps3_atr() -> Result<(), Failed> {
    let s = insert("cps3-doctor");
    let out = ok(s.tool("opensc-tool", &["--reader", &s.lease.name, "--atr"]));
    assert!(
        out.contains("3b:ac:00:40:2a:00:12:25:00:64:80:00:03:10:00:90:00"),
        "{out}"
    );
    Ok(())
}

fn pkcs11_tool_lists_certificates_and_keys() -> Result<(), Failed> {
    let s = insert("cps3-doctor");
    // The token: TokenInfo manufacturer, and the PIN label as token label (OpenSC's rule for a
    // "<label> (<PIN label>)" longer than 32 characters; the TokenInfo label is CPS3v3-<serial>).
    let out = ok(s.p11(&["--list-token-slots"]));
    assert!(s.label.starts_with("CPS3v3-"), "{}", s.label);
    for expected in ["Code porteur de la carte CPS", "ASIP SANTE"] {
        assert!(out.contains(expected), "{expected} missing:\n{out}");
    }
    let out = ok(s.p11(&["--list-objects"]));
    for expected in ["Certificat de Signature CPS", "Certificat d'Authentification CPS"] {
        assert!(out.contains(expected), "{expected} missing:\n{out}");
    }
    let out = ok(s.p11(&["--login", "--pin", "1234", "--list-objects"]));
    for expected in ["CPS_PRIV_SIG", "CPS_PRIV_AUT"] {
        assert!(out.contains(expected), "{expected} missing:\n{out}");
    }
    Ok(())
}

fn public_key_pem(s: &Setup, id: &str) -> PathBuf {
    let der = s.path(&format!("{id}.crt.der"));
    ok(s.p11(&[
        "--read-object",
        "--type",
        "cert",
        "--id",
        id,
        "--output-file",
        der.to_str().unwrap(),
    ]));
    let pem = s.path(&format!("{id}.pub.pem"));
    let out = Command::new("openssl")
        .args([
            "x509",
            "-inform",
            "der",
            "-in",
            der.to_str().unwrap(),
            "-noout",
            "-pubkey",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    std::fs::write(&pem, out.stdout).unwrap();
    pem
}

fn openssl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl").args(args).output().unwrap();
    assert!(out.status.success(), "openssl {args:?}: {}", text(&out));
    out.stdout
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn auth_key_signs_and_decrypts_after_login() -> Result<(), Failed> {
    let s = insert("cps3-doctor");
    let pubkey = public_key_pem(&s, AUTH_ID);

    // CKM_RSA_PKCS on a SHA-256 DigestInfo (what TLS 1.2 client auth signs).
    let digest_info = [
        &[
            0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
            0x00, 0x04, 0x20,
        ][..],
        &[0x5A; 32][..],
    ]
    .concat();
    std::fs::write(s.path("di.bin"), &digest_info)?;
    ok(s.p11(&[
        "--login",
        "--pin",
        "1234",
        "--sign",
        "--mechanism",
        "RSA-PKCS",
        "--id",
        AUTH_ID,
        "--input-file",
        p(&s.path("di.bin")),
        "--output-file",
        p(&s.path("sig.bin")),
    ]));
    let recovered = openssl(&[
        "pkeyutl",
        "-verifyrecover",
        "-pubin",
        "-inkey",
        p(&pubkey),
        "-in",
        p(&s.path("sig.bin")),
    ]);
    assert_eq!(
        recovered, digest_info,
        "the signature does not verify with the certificate's key"
    );

    // CKM_RSA_PKCS decryption of a message encrypted to the certificate's key.
    std::fs::write(s.path("msg.bin"), b"pre-master secret of a TLS session")?;
    openssl(&[
        "pkeyutl",
        "-encrypt",
        "-pubin",
        "-inkey",
        p(&pubkey),
        "-in",
        p(&s.path("msg.bin")),
        "-out",
        p(&s.path("ct.bin")),
    ]);
    ok(s.p11(&[
        "--login",
        "--pin",
        "1234",
        "--decrypt",
        "--mechanism",
        "RSA-PKCS",
        "--id",
        AUTH_ID,
        "--input-file",
        p(&s.path("ct.bin")),
        "--output-file",
        p(&s.path("pt.bin")),
    ]));
    assert_eq!(
        std::fs::read(s.path("pt.bin"))?,
        b"pre-master secret of a TLS session"
    );
    assert_eq!(
        s.card_errors(),
        Vec::<String>::new(),
        "card errors during sign/decrypt"
    );
    Ok(())
}

fn pin_change_then_login_with_the_new_pin() -> Result<(), Failed> {
    let s = insert("cps3-pharmacist");
    ok(s.p11(&["--login", "--pin", "1234", "--change-pin", "--new-pin", "4321"]));
    // The real AODF says needs-padding, storedLength 8, padChar FF (GH#2224): OpenSC pads.
    let sent: Vec<String> = s
        .log
        .lock()
        .unwrap()
        .iter()
        .map(|(c, _)| hex::encode(c))
        .collect();
    for padded in [
        "002000010831323334ffffffff",
        "002400011031323334ffffffff34333231ffffffff",
    ] {
        assert!(sent.iter().any(|c| c == padded), "{padded} not sent: {sent:?}");
    }
    ok(s.p11(&["--login", "--pin", "4321", "--list-objects"]));
    let out = s.p11(&["--login", "--pin", "1234", "--list-objects"]);
    assert!(!out.status.success(), "the old PIN still works");
    assert!(text(&out).contains("CKR_PIN_INCORRECT"), "{}", text(&out));
    Ok(())
}

/// OpenSC 0.23 cannot unblock a real CPS3, whatever the card answers: `sc_pkcs15_unblock_pin` looks
/// the PUK up by the PIN object's common authId (02 in the real AODF, GH#2224), but the PUK's
/// authId is 04; it then checks the 8-digit PUK against the *PIN's* policy (maxLength 4) and
/// gives up with "Invalid PIN length" (CKR_PIN_LEN_RANGE) before sending anything. The card-side
/// unblock sequence OpenSC would send (docs/card-spec.md §9) is covered by the emulator's `pin_unblock.apdu`.
fn blocked_pin_unblock_is_refused_by_opensc_before_the_card() -> Result<(), Failed> {
    let s = insert("cps3-pin-blocked");
    let out = s.p11(&["--login", "--pin", "1234", "--list-objects"]);
    assert!(text(&out).contains("CKR_PIN_LOCKED"), "{}", text(&out));
    let sent_before = s.log.lock().unwrap().len();
    let out = s.p11(&["--unlock-pin", "--puk", "12345678", "--new-pin", "1234"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("CKR_PIN_LEN_RANGE"), "{}", text(&out));
    let log = s.log.lock().unwrap();
    let reached_card = log[sent_before..]
        .iter()
        .filter(|(c, _)| c.get(1) == Some(&0x2C) || c.starts_with(&[0x00, 0x20, 0x00, 0x02]))
        .map(|(c, _)| hex::encode(c))
        .collect::<Vec<_>>();
    assert_eq!(
        reached_card,
        Vec::<String>::new(),
        "a PUK or unblock APDU was sent"
    );
    drop(log);
    let out = s.p11(&["--login", "--pin", "1234", "--list-objects"]);
    assert!(text(&out).contains("CKR_PIN_LOCKED"), "{}", text(&out));
    Ok(())
}

fn signature_key_reaches_mse_dst() -> Result<(), Failed> {
    // docs/card-spec.md §9: OpenSC 0.23 built with OpenSSL 3 cannot finish the on-card hash; the card side is
    // exercised up to MSE SET DST, which must not fail.
    let s = insert("cps3-doctor");
    std::fs::write(s.path("doc.txt"), vec![b'A'; 1405])?;
    let _ = s.p11(&[
        "--login",
        "--pin",
        "1234",
        "--sign",
        "--mechanism",
        "SHA256-RSA-PKCS",
        "--id",
        SIGN_ID,
        "--input-file",
        p(&s.path("doc.txt")),
        "--output-file",
        p(&s.path("sig.bin")),
    ]);
    let log = s.log.lock().unwrap();
    let dst = log
        .iter()
        .find(|(c, _)| c.starts_with(&[0x00, 0x22, 0x41, 0xB6]))
        .expect("OpenSC sent MSE SET DST");
    assert_eq!(
        &dst.1[dst.1.len() - 2..],
        &[0x90, 0x00],
        "MSE SET DST refused: {}",
        hex::encode(&dst.0)
    );
    drop(log);
    assert_eq!(s.card_errors(), Vec::<String>::new());
    Ok(())
}
