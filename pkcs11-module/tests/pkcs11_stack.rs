//! The built `libcpx_pkcs11.so`, loaded through `cryptoki`, against emulated CPS3, CPS4 and
//! contactless cards behind the sandbox's real pcscd.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::process::ExitCode;

use common::*;
use cpx_testkit::{Failed, Trial};
use cryptoki::error::RvError;
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use rsa::{Pkcs1v15Encrypt, Pkcs1v15Sign, Pss, RsaPublicKey};
use sha2::Digest;

fn main() -> ExitCode {
    cpx_testkit::run_tests(&common::sandbox(6), || {
        vec![
            Trial::test("cps3_token_objects_sign_decrypt", || full("cps3-doctor")),
            Trial::test("cps4_token_objects_sign_decrypt", || full("cps4-doctor")),
            Trial::test("cps3_pin_change_block_unblock", || pins("cps3-doctor")),
            Trial::test("cps4_pin_change_block_unblock", || pins("cps4-doctor")),
            Trial::test("cps3_contactless", contactless),
            Trial::test("cps4_threads_sign_concurrently", || threads("cps4-doctor")),
            Trial::test("cps3_threads_sign_concurrently", || threads("cps3-doctor")),
            Trial::test("misuse_through_cryptoki", misuse),
            Trial::test("cps3_key_lookup_reads_the_prkdf_only", || {
                lazy_objects("cps3-doctor")
            }),
            Trial::test("cps4_key_lookup_reads_the_prkdf_only", || {
                lazy_objects("cps4-doctor")
            }),
        ]
    })
}

fn pin(p: &str) -> AuthPin {
    AuthPin::from(p)
}

const ALL_ATTRIBUTES: &[AttributeType] = &[
    AttributeType::Class,
    AttributeType::Token,
    AttributeType::Private,
    AttributeType::Label,
    AttributeType::Id,
    AttributeType::Modifiable,
    AttributeType::CertificateType,
    AttributeType::Trusted,
    AttributeType::Subject,
    AttributeType::Issuer,
    AttributeType::SerialNumber,
    AttributeType::Value,
    AttributeType::KeyType,
    AttributeType::Modulus,
    AttributeType::ModulusBits,
    AttributeType::PublicExponent,
    AttributeType::Sign,
    AttributeType::Decrypt,
    AttributeType::Verify,
    AttributeType::Encrypt,
    AttributeType::Sensitive,
    AttributeType::Extractable,
    AttributeType::AlwaysSensitive,
    AttributeType::NeverExtractable,
    AttributeType::AlwaysAuthenticate,
    AttributeType::Application,
    AttributeType::PrivateExponent,
];

/// Read every attribute of every visible object; returns (class, label) pairs.
fn read_everything(s: &Session) -> Result<Vec<(ObjectClass, String)>, Failed> {
    let mut out = Vec::new();
    for o in s.find_objects(&[])? {
        let attrs = s.get_attributes(o, ALL_ATTRIBUTES)?;
        let mut class = None;
        let mut label = None;
        for a in &attrs {
            match a {
                Attribute::Class(c) => class = Some(*c),
                Attribute::Label(l) => label = Some(String::from_utf8(l.clone())?),
                _ => {}
            }
        }
        let class = class.ok_or("no CKA_CLASS")?;
        let label = label.ok_or("no CKA_LABEL")?;
        if class == ObjectClass::PRIVATE_KEY {
            assert!(!attrs.iter().any(|a| matches!(a, Attribute::PrivateExponent(_))));
            assert!(attrs.contains(&Attribute::Sensitive(true)));
            assert!(attrs.contains(&Attribute::AlwaysAuthenticate(false)));
        }
        if class == ObjectClass::CERTIFICATE {
            assert!(
                attrs
                    .iter()
                    .any(|a| matches!(a, Attribute::Subject(v) if !v.is_empty()))
            );
            assert!(
                attrs
                    .iter()
                    .any(|a| matches!(a, Attribute::SerialNumber(v) if v[0] == 0x02))
            );
        }
        out.push((class, label));
    }
    Ok(out)
}

fn verify(key: &RsaPublicKey, mech: &Mechanism, data: &[u8], sig: &[u8]) {
    let r = match mech {
        Mechanism::RsaPkcs => key.verify(Pkcs1v15Sign::new_unprefixed(), data, sig),
        Mechanism::Sha1RsaPkcs => {
            key.verify(Pkcs1v15Sign::new::<sha1::Sha1>(), &sha1::Sha1::digest(data), sig)
        }
        Mechanism::Sha256RsaPkcs => key.verify(
            Pkcs1v15Sign::new::<sha2::Sha256>(),
            &sha2::Sha256::digest(data),
            sig,
        ),
        Mechanism::Sha1RsaPkcsPss(_) => key.verify(
            Pss::new_with_salt::<sha1::Sha1>(20),
            &sha1::Sha1::digest(data),
            sig,
        ),
        Mechanism::Sha256RsaPkcsPss(_) => key.verify(
            Pss::new_with_salt::<sha2::Sha256>(32),
            &sha2::Sha256::digest(data),
            sig,
        ),
        Mechanism::RsaPkcsPss(p) if p.hash_alg == MechanismType::SHA256 => {
            key.verify(Pss::new_with_salt::<sha2::Sha256>(32), data, sig)
        }
        Mechanism::RsaPkcsPss(_) => key.verify(Pss::new_with_salt::<sha1::Sha1>(20), data, sig),
        other => panic!("{other:?}"),
    };
    r.unwrap_or_else(|e| panic!("{mech:?}: {e}"));
}

fn pss(h: MechanismType, mgf: PkcsMgfType, len: u64) -> PkcsPssParams {
    PkcsPssParams {
        hash_alg: h,
        mgf,
        s_len: len.into(),
    }
}

fn sha256_di(data: &[u8]) -> Vec<u8> {
    let mut v = hex_literal(b"3031300d060960864801650304020105000420");
    v.extend_from_slice(&sha2::Sha256::digest(data));
    v
}

fn hex_literal(h: &[u8]) -> Vec<u8> {
    h.chunks(2)
        .map(|c| u8::from_str_radix(std::str::from_utf8(c).unwrap(), 16).unwrap())
        .collect()
}

fn session_on(stem: &str) -> Result<(cpx_testkit::ReaderLease, cpx_vpcd::CardSlot, Slot), Failed> {
    let (lease, card) = insert(stem)?;
    let p11 = pkcs11()?;
    let slot = slot_of(p11, &lease.name)?;
    Ok((lease, card, slot))
}

fn full(stem: &str) -> Result<(), Failed> {
    let g4 = stem.starts_with("cps4");
    let (_lease, _card, slot) = session_on(stem)?;
    let p11 = pkcs11()?;
    assert!(p11.get_slots_with_token()?.contains(&slot));
    let si = p11.get_slot_info(slot)?;
    assert!(si.token_present() && si.removable_device() && si.hardware_slot());
    let ti = p11.get_token_info(slot)?;
    assert!(
        ti.label().starts_with(if g4 { "CPS4v1-" } else { "CPS3v3-" }),
        "{}",
        ti.label()
    );
    // The official module's model on both generations (docs/pkcs11-module.md, "Tokens").
    assert_eq!(ti.model(), "IAS ECC");
    assert_eq!(ti.serial_number().len(), 8);
    assert!(ti.login_required() && ti.user_pin_initialized() && ti.token_initialized());
    assert!(!ti.user_pin_count_low() && !ti.user_pin_locked());
    let mechs = p11.get_mechanism_list(slot)?;
    assert_eq!(mechs.len(), if g4 { 8 } else { 5 }, "{mechs:?}");
    for m in &mechs {
        p11.get_mechanism_info(slot, *m)?;
    }

    let s = p11.open_ro_session(slot)?;
    let public = read_everything(&s)?;
    assert!(
        public.iter().all(|(c, _)| *c != ObjectClass::PRIVATE_KEY),
        "{public:?}"
    );
    for l in ["Certificat de Signature CPS", "Certificat d'Authentification CPS"] {
        find_one(&s, ObjectClass::CERTIFICATE, l)?;
        find_one(&s, ObjectClass::PUBLIC_KEY, &format!("Cle publique - {l}"))?;
    }
    let name = find_one(&s, ObjectClass::DATA, "CPS_NAME_PS")?;
    assert!(!bytes_attr(&s, name, AttributeType::Value)?.is_empty());
    assert_eq!(bytes_attr(&s, name, AttributeType::Application)?, b"CPS");
    assert!(find(&s, &[Attribute::Label(b"CPS_ACTIVITY_01_PS".to_vec())])?.is_empty());
    let auth_pub = find_one(
        &s,
        ObjectClass::PUBLIC_KEY,
        "Cle publique - Certificat d'Authentification CPS",
    )?;

    // Not logged in: private keys invisible, PIN checks.
    expect_rv(
        s.login(UserType::User, Some(&pin("12"))),
        RvError::PinIncorrect,
        "malformed PIN",
    )?;
    assert!(
        !p11.get_token_info(slot)?.user_pin_count_low(),
        "a malformed PIN reached the card"
    );
    expect_rv(
        s.login(UserType::User, Some(&pin("0000"))),
        RvError::PinIncorrect,
        "wrong PIN",
    )?;
    assert!(p11.get_token_info(slot)?.user_pin_count_low());
    s.login(UserType::User, Some(&pin("1234")))?;
    assert!(!p11.get_token_info(slot)?.user_pin_count_low());
    expect_rv(
        s.login(UserType::User, Some(&pin("1234"))),
        RvError::UserAlreadyLoggedIn,
        "twice",
    )?;

    let all = read_everything(&s)?;
    assert!(all.len() > public.len());
    let act = find_one(&s, ObjectClass::DATA, "CPS_ACTIVITY_01_PS")?;
    assert!(!bytes_attr(&s, act, AttributeType::Value)?.is_empty());
    let sig_key = find_one(&s, ObjectClass::PRIVATE_KEY, "CPS_PRIV_SIG")?;
    let auth_key = find_one(&s, ObjectClass::PRIVATE_KEY, "CPS_PRIV_AUT")?;
    let sig_id = bytes_attr(&s, sig_key, AttributeType::Id)?;
    let auth_id = bytes_attr(&s, auth_key, AttributeType::Id)?;
    assert_eq!(sig_id.last(), Some(&1));
    assert_eq!(auth_id.last(), Some(&2));
    let sig_pk = key_of(&s, &sig_id)?;
    let auth_pk = key_of(&s, &auth_id)?;

    // Every mechanism with every key, verified with the certificate's key.
    let msg = vec![b'A'; 1405];
    let mut cases: Vec<(Mechanism, Vec<u8>)> = vec![
        (Mechanism::Sha1RsaPkcs, msg.clone()),
        (Mechanism::Sha256RsaPkcs, msg.clone()),
        (Mechanism::Sha256RsaPkcs, Vec::new()),
        (Mechanism::RsaPkcs, sha256_di(b"digest info")),
    ];
    if g4 {
        cases.extend([
            (
                Mechanism::Sha1RsaPkcsPss(pss(MechanismType::SHA1, PkcsMgfType::MGF1_SHA1, 20)),
                msg.clone(),
            ),
            (
                Mechanism::Sha256RsaPkcsPss(pss(MechanismType::SHA256, PkcsMgfType::MGF1_SHA256, 32)),
                msg.clone(),
            ),
            (
                Mechanism::RsaPkcsPss(pss(MechanismType::SHA256, PkcsMgfType::MGF1_SHA256, 32)),
                sha2::Sha256::digest(b"pss").to_vec(),
            ),
        ]);
    }
    for (key, pk, name) in [
        (sig_key, &sig_pk, "signature"),
        (auth_key, &auth_pk, "authentication"),
    ] {
        for (m, data) in &cases {
            let sig = s
                .sign(m, key, data)
                .map_err(|e| format!("{name} key, {m:?}: {e}"))?;
            verify(pk, m, data, &sig);
            let public = find(
                &s,
                &[
                    Attribute::Class(ObjectClass::PUBLIC_KEY),
                    Attribute::Id(bytes_attr(&s, key, AttributeType::Id)?),
                ],
            )?;
            s.verify(m, public[0], data, &sig)?;
        }
    }
    // Raw hashes with the signature key (docs/card-spec.md §6.1 rows 636–641).
    for h in [
        sha1::Sha1::digest(b"h").to_vec(),
        sha2::Sha256::digest(b"h").to_vec(),
    ] {
        s.sign(&Mechanism::RsaPkcs, sig_key, &h)?;
    }
    // Multi-part SHA-256 (docs/card-spec.md §6.1 rows 1000–1008).
    s.sign_init(&Mechanism::Sha256RsaPkcs, sig_key)?;
    for chunk in msg.chunks(80) {
        s.sign_update(chunk)?;
    }
    let sig = s.sign_final()?;
    verify(&sig_pk, &Mechanism::Sha256RsaPkcs, &msg, &sig);
    // Wrong uses.
    expect_rv(
        s.sign(&Mechanism::Sha1RsaPkcs, auth_pub, b"x"),
        RvError::KeyTypeInconsistent,
        "sign with a public key",
    )?;
    expect_rv(
        s.sign(&Mechanism::RsaPkcs, auth_key, &[0x41; 513]),
        RvError::DataLenRange,
        "513 bytes",
    )?;
    if g4 {
        let bad = Mechanism::Sha256RsaPkcsPss(pss(MechanismType::SHA1, PkcsMgfType::MGF1_SHA1, 20));
        expect_rv(
            s.sign(&bad, auth_key, b"x"),
            RvError::MechanismParamInvalid,
            "PSS params",
        )?;
    } else {
        let p = Mechanism::Sha256RsaPkcsPss(pss(MechanismType::SHA256, PkcsMgfType::MGF1_SHA256, 32));
        expect_rv(
            s.sign(&p, auth_key, b"x"),
            RvError::MechanismInvalid,
            "PSS on CPS3",
        )?;
    }

    // Decrypt: software encryption with the module and with rsa.
    let secret = b"a 32-byte session key, for test!";
    let c1 = s.encrypt(&Mechanism::RsaPkcs, auth_pub, secret)?;
    assert_eq!(s.decrypt(&Mechanism::RsaPkcs, auth_key, &c1)?, secret);
    let c2 = auth_pk.encrypt(&mut rand_core::OsRng, Pkcs1v15Encrypt, secret)?;
    assert_eq!(s.decrypt(&Mechanism::RsaPkcs, auth_key, &c2)?, secret);
    expect_rv(
        s.decrypt(&Mechanism::RsaPkcs, sig_key, &c2),
        RvError::KeyFunctionNotPermitted,
        "decrypt with the signature key",
    )?;

    // Digests.
    assert_eq!(
        s.digest(&Mechanism::Sha256, &msg)?,
        sha2::Sha256::digest(&msg).to_vec()
    );
    assert_eq!(
        s.digest(&Mechanism::Sha1, &msg)?,
        sha1::Sha1::digest(&msg).to_vec()
    );

    s.logout()?;
    expect_rv(
        s.sign(&Mechanism::RsaPkcs, auth_key, b"x"),
        RvError::UserNotLoggedIn,
        "logged out",
    )?;
    Ok(())
}

fn pins(stem: &str) -> Result<(), Failed> {
    let (_lease, _card, slot) = session_on(stem)?;
    let p11 = pkcs11()?;
    let ro = p11.open_ro_session(slot)?;
    let rw = p11.open_rw_session(slot)?;
    // Change and change back.
    expect_rv(
        ro.set_pin(&pin("1234"), &pin("4321")),
        RvError::SessionReadOnly,
        "RO set_pin",
    )?;
    rw.set_pin(&pin("1234"), &pin("4321"))?;
    expect_rv(
        rw.set_pin(&pin("4321"), &pin("12")),
        RvError::PinLenRange,
        "short new PIN",
    )?;
    rw.login(UserType::User, Some(&pin("4321")))?;
    rw.logout()?;
    rw.set_pin(&pin("4321"), &pin("1234"))?;
    // Block the PIN on purpose.
    for _ in 0..2 {
        expect_rv(
            rw.login(UserType::User, Some(&pin("0000"))),
            RvError::PinIncorrect,
            "wrong",
        )?;
    }
    assert!(p11.get_token_info(slot)?.user_pin_final_try());
    let third = rw.login(UserType::User, Some(&pin("0000")));
    assert!(
        matches!(&third, Err(e) if is_rv(e, RvError::PinIncorrect) || is_rv(e, RvError::PinLocked)),
        "{third:?}"
    );
    assert!(p11.get_token_info(slot)?.user_pin_locked());
    expect_rv(
        rw.login(UserType::User, Some(&pin("1234"))),
        RvError::PinLocked,
        "blocked",
    )?;
    // SO login needs no read-only session.
    expect_rv(
        rw.login(UserType::So, Some(&pin("12345678"))),
        RvError::SessionReadOnlyExists,
        "SO with RO session",
    )?;
    drop(ro);
    expect_rv(
        rw.init_pin(&pin("1234")),
        RvError::UserNotLoggedIn,
        "InitPIN without SO",
    )?;
    // One wrong PUK shows as SO_PIN_COUNT_LOW on both generations (a CPS4 does not give the
    // PUK's maximum: the module takes the most tries it has seen left, issue 14).
    assert!(!p11.get_token_info(slot)?.so_pin_count_low(), "no wrong PUK yet");
    expect_rv(
        rw.login(UserType::So, Some(&pin("87654321"))),
        RvError::PinIncorrect,
        "wrong PUK",
    )?;
    assert!(
        p11.get_token_info(slot)?.so_pin_count_low(),
        "one wrong PUK: SO_PIN_COUNT_LOW"
    );
    rw.login(UserType::So, Some(&pin("12345678")))?;
    expect_rv(
        rw.login(UserType::User, Some(&pin("1234"))),
        RvError::UserAnotherAlreadyLoggedIn,
        "user while SO",
    )?;
    rw.init_pin(&pin("1234"))?;
    rw.logout()?;
    assert!(!p11.get_token_info(slot)?.user_pin_locked());
    rw.login(UserType::User, Some(&pin("1234")))?;
    Ok(())
}

fn contactless() -> Result<(), Failed> {
    let (_lease, _card, slot) = session_on("cps3-contactless")?;
    let p11 = pkcs11()?;
    let ti = p11.get_token_info(slot)?;
    assert!(!ti.login_required() && !ti.user_pin_initialized());
    assert_eq!(
        p11.get_mechanism_list(slot)?,
        vec![
            MechanismType::RSA_PKCS,
            MechanismType::SHA1,
            MechanismType::SHA256
        ]
    );
    let s = p11.open_ro_session(slot)?;
    expect_rv(
        s.login(UserType::User, Some(&pin("1234"))),
        RvError::UserPinNotInitialized,
        "CL login",
    )?;
    read_everything(&s)?;
    let cert = find_one(&s, ObjectClass::CERTIFICATE, "Certificat Technique CPS")?;
    let key = find_one(&s, ObjectClass::PRIVATE_KEY, "CPS_PRIV_TECH_AUT")?;
    let pk = cert_key(&bytes_attr(&s, cert, AttributeType::Value)?);
    let di = sha256_di(b"badge");
    let sig = s.sign(&Mechanism::RsaPkcs, key, &di)?;
    verify(&pk, &Mechanism::RsaPkcs, &di, &sig);
    expect_rv(
        s.sign(&Mechanism::Sha256RsaPkcs, key, b"x"),
        RvError::MechanismInvalid,
        "CL SHA-256",
    )?;
    Ok(())
}

fn threads(stem: &str) -> Result<(), Failed> {
    let (_lease, _card, slot) = session_on(stem)?;
    let p11 = pkcs11()?;
    let login = p11.open_ro_session(slot)?;
    login.login(UserType::User, Some(&pin("1234")))?;
    let sig_key = find_one(&login, ObjectClass::PRIVATE_KEY, "CPS_PRIV_SIG")?;
    let auth_key = find_one(&login, ObjectClass::PRIVATE_KEY, "CPS_PRIV_AUT")?;
    let sig_pk = key_of(&login, &bytes_attr(&login, sig_key, AttributeType::Id)?)?;
    let auth_pk = key_of(&login, &bytes_attr(&login, auth_key, AttributeType::Id)?)?;
    std::thread::scope(|scope| -> Result<(), Failed> {
        let mut handles = Vec::new();
        for t in 0..4u8 {
            let (sig_pk, auth_pk) = (&sig_pk, &auth_pk);
            handles.push(scope.spawn(move || -> Result<(), String> {
                let s = p11.open_ro_session(slot).map_err(|e| e.to_string())?;
                for i in 0..4u8 {
                    let msg = vec![t, i, 0x55];
                    let (key, pk, m, data): (ObjectHandle, &RsaPublicKey, Mechanism, Vec<u8>) =
                        if (t + i) % 2 == 0 {
                            (sig_key, sig_pk, Mechanism::Sha256RsaPkcs, msg)
                        } else {
                            (auth_key, auth_pk, Mechanism::RsaPkcs, sha256_di(&msg))
                        };
                    let sig = s.sign(&m, key, &data).map_err(|e| e.to_string())?;
                    verify(pk, &m, &data, &sig);
                }
                Ok(())
            }));
        }
        for h in handles {
            h.join().map_err(|_| "thread panicked")??;
        }
        Ok(())
    })?;
    Ok(())
}

fn misuse() -> Result<(), Failed> {
    let (_lease, _card, slot) = session_on("cps3-doctor")?;
    let p11 = pkcs11()?;
    expect_rv(
        p11.initialize(cryptoki::context::CInitializeArgs::new(
            cryptoki::context::CInitializeFlags::OS_LOCKING_OK,
        )),
        RvError::CryptokiAlreadyInitialized,
        "second C_Initialize",
    )?;
    let s = p11.open_ro_session(slot)?;
    let cert = find_one(&s, ObjectClass::CERTIFICATE, "Certificat de Signature CPS")?;
    expect_rv(
        s.sign(&Mechanism::RsaPkcs, cert, b"x"),
        RvError::KeyTypeInconsistent,
        "cert as key",
    )?;
    expect_rv(
        s.sign_update(b"x"),
        RvError::OperationNotInitialized,
        "update without init",
    )?;
    expect_rv(
        s.sign_final(),
        RvError::OperationNotInitialized,
        "final without init",
    )?;
    expect_rv(
        s.sign(&Mechanism::Sha384RsaPkcs, cert, b"x"),
        RvError::MechanismInvalid,
        "unknown mechanism",
    )?;
    let pub_key = find_one(
        &s,
        ObjectClass::PUBLIC_KEY,
        "Cle publique - Certificat d'Authentification CPS",
    )?;
    assert!(
        s.get_attributes(pub_key, &[AttributeType::PrivateExponent])?
            .is_empty()
    );
    // Verify fails on a wrong signature and ends the operation (docs/card-spec.md §6.1 rows 714–715).
    expect_rv(
        s.verify(&Mechanism::Sha256RsaPkcs, pub_key, b"data", &[0u8; 256]),
        RvError::SignatureInvalid,
        "bad signature",
    )?;
    expect_rv(
        s.verify_final(&[0u8; 256]),
        RvError::OperationNotInitialized,
        "after a failed verify",
    )?;
    expect_rv(
        s.verify(&Mechanism::Sha256RsaPkcs, pub_key, b"data", &[0u8; 10]),
        RvError::SignatureLenRange,
        "short signature",
    )?;
    // Events: the non-blocking form answers at once.
    let _ = p11.get_slot_event()?;
    Ok(())
}

/// Issue 15: a private key found by class and iD after login costs the PrKDF alone (one file:
/// one READ BINARY, no certificate); an attribute only the certificate holds then brings in
/// the CDF and that certificate, and the listing that follows has the order and the handle of a
/// list built at once.
fn lazy_objects(stem: &str) -> Result<(), Failed> {
    let image = cpx_emulator::builtin_image(stem).ok_or("no image")??;
    let sign_cert = image.sign.as_ref().ok_or("no signature key")?.cert.clone();
    let (lease, _card, wire) = cpx_testkit::insert_image(stem)?;
    let p11 = pkcs11()?;
    let slot = slot_of(p11, &lease.name)?;
    let s = p11.open_ro_session(slot)?;
    s.login(UserType::User, Some(&pin("1234")))?;
    wire.take();
    let id = hex_literal(b"E828BD080F8025000001FF001001");
    let found = find(
        &s,
        &[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Id(id.clone()),
        ],
    )?;
    let [key] = found.as_slice() else {
        return Err(format!("{stem}: {} private keys with the signature iD", found.len()).into());
    };
    let lookup = wire.take();
    let reads = lookup.iter().filter(|(c, _)| c[1] == 0xB0).count();
    assert_eq!(
        reads, 1,
        "{stem}: the key lookup read more than the PrKDF: {lookup:02X?}"
    );

    // CKA_MODULUS of the private key: only the certificate holds it.
    let modulus = bytes_attr(&s, *key, AttributeType::Modulus)?;
    let want = cert_key(&sign_cert);
    assert_eq!(
        modulus,
        rsa::traits::PublicKeyParts::n(&want).to_bytes_be(),
        "{stem}"
    );
    assert!(
        wire.take().len() > 2,
        "{stem}: the certificate was read for CKA_MODULUS"
    );

    let all = s.find_objects(&[])?;
    let classes: Vec<ObjectClass> = all
        .iter()
        .map(|h| {
            s.get_attributes(*h, &[AttributeType::Class])
                .map(|a| match a.first() {
                    Some(Attribute::Class(c)) => *c,
                    _ => ObjectClass::DATA,
                })
        })
        .collect::<Result<_, _>>()?;
    let keys: Vec<ObjectClass> = classes
        .iter()
        .copied()
        .filter(|c| *c != ObjectClass::DATA)
        .collect();
    // The official module's order: each private key, then its certificate and public key
    // (docs/pkcs11-module.md, "Objects"; conformance row 1431).
    assert_eq!(
        keys,
        [
            ObjectClass::PRIVATE_KEY,
            ObjectClass::CERTIFICATE,
            ObjectClass::PUBLIC_KEY,
            ObjectClass::PRIVATE_KEY,
            ObjectClass::CERTIFICATE,
            ObjectClass::PUBLIC_KEY
        ],
        "{stem}"
    );
    assert_eq!(
        all.iter().filter(|h| *h == key).count(),
        1,
        "{stem}: the key's handle kept"
    );
    let sig = s.sign(&Mechanism::Sha256RsaPkcs, *key, b"lazy")?;
    verify(&want, &Mechanism::Sha256RsaPkcs, b"lazy", &sig);
    Ok(())
}
