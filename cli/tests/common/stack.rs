//! The PKCS#11 side of a whole-stack check (the built module loaded by `cryptoki`): every object
//! the token shows before and after login, and every signature each private key makes, verified
//! with the certificate of its id. Used by tests/variants.rs, tests/replay.rs and tests/traces.rs
//! (each includes it with `#[path = "common/stack.rs"] mod stack;`).
#![allow(
    dead_code,
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used
)]

use cpx_testkit::Failed;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use rsa::pkcs8::DecodePublicKey;
use rsa::{Pkcs1v15Sign, Pss, RsaPublicKey};
use sha2::Digest;

use super::{PIN, PUK, SEEN, module_path};

/// One C_Initialize … C_Finalize at a time: the module is one per process, the trials parallel.
static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The DER prefix of a SHA-256 DigestInfo (PKCS#1 v2.2 §9.2 note 1).
const SHA256_DIGEST_INFO: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00,
    0x04, 0x20,
];

/// The module's view of the token in `reader`, logging in with the test PIN: the token label,
/// every object (class, label, private, key size, value length when public) before and after
/// login, sorted; then one line per signature (`<key>: <mechanism> signature of N bytes,
/// verified <bool>`), every mechanism of the token that signs with a private key.
pub fn module_view(reader: &str) -> Result<Vec<String>, Failed> {
    with_module(|p11| view(p11, reader))
}

/// `f` with the module loaded and initialized (C_Initialize … C_Finalize), one caller at a time.
pub fn with_module<T>(f: impl FnOnce(&Pkcs11) -> Result<T, Failed>) -> Result<T, Failed> {
    let _one = ONE.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let p11 = Pkcs11::new(module_path()?)?;
    p11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))?;
    let result = f(&p11);
    p11.finalize()?;
    result
}

/// After login with the test PIN in `reader`: one line per private key (`<key>: signature of N
/// bytes, verified <bool>`), its CKM_RSA_PKCS signature verified with the certificate of its id.
pub fn signed(reader: &str) -> Result<Vec<String>, Failed> {
    with_module(|p11| {
        let s = p11.open_ro_session(slot_of(p11, reader)?)?;
        s.login(UserType::User, Some(&AuthPin::from(PIN.to_owned())))?;
        let out = signatures(&s, Sign::RsaPkcs)?;
        s.logout()?;
        Ok(out)
    })
}

/// Block the PIN in `reader` with `tries` wrong logins (the token then says locked), unblock it
/// with C_Login(CKU_SO, PUK) and C_InitPIN, and log in with the test PIN again: the PIN and PUK
/// objects found, their counters and the unblock sequence work on this card.
pub fn block_and_unblock(reader: &str, tries: u64) -> Result<(), Failed> {
    with_module(|p11| {
        let slot = slot_of(p11, reader)?;
        let rw = p11.open_rw_session(slot)?;
        for i in 1..=tries {
            if p11.get_token_info(slot)?.user_pin_locked() {
                return Err(format!("PIN locked after {} wrong tries of {tries}", i - 1).into());
            }
            let wrong = rw.login(UserType::User, Some(&AuthPin::from("0000".to_owned())));
            assert!(wrong.is_err(), "wrong PIN {i} accepted");
        }
        if !p11.get_token_info(slot)?.user_pin_locked() {
            return Err(format!("PIN not locked after {tries} wrong tries").into());
        }
        rw.login(UserType::So, Some(&AuthPin::from(PUK.to_owned())))
            .map_err(|e| format!("C_Login(CKU_SO): {e}"))?;
        rw.init_pin(&AuthPin::from(PIN.to_owned()))
            .map_err(|e| format!("C_InitPIN: {e}"))?;
        rw.logout()?;
        if p11.get_token_info(slot)?.user_pin_locked() {
            return Err("PIN still locked after C_InitPIN".into());
        }
        rw.login(UserType::User, Some(&AuthPin::from(PIN.to_owned())))
            .map_err(|e| format!("login after unblock: {e}"))?;
        rw.logout()?;
        Ok(())
    })
}

/// The slot whose reader is `reader`, once the token shows.
pub fn slot_of(p11: &Pkcs11, reader: &str) -> Result<cryptoki::slot::Slot, Failed> {
    let deadline = std::time::Instant::now() + SEEN;
    loop {
        for s in p11.get_slots_with_token()? {
            if p11.get_slot_info(s)?.slot_description().trim_end() == reader {
                return Ok(s);
            }
        }
        if std::time::Instant::now() >= deadline {
            return Err(format!("no token in {reader}").into());
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn view(p11: &Pkcs11, reader: &str) -> Result<Vec<String>, Failed> {
    let slot = slot_of(p11, reader)?;
    let token = p11.get_token_info(slot)?;
    let mechanisms = p11.get_mechanism_list(slot)?;
    let mut out = vec![format!("token {:?}", token.label().trim_end())];
    let s = p11.open_ro_session(slot)?;
    out.extend(listing(&s, "public", Values::Hashed)?);
    s.login(UserType::User, Some(&AuthPin::from(PIN.to_owned())))?;
    out.extend(listing(&s, "logged in", Values::Hashed)?);
    out.extend(signatures(&s, Sign::Every(&mechanisms))?);
    s.logout()?;
    Ok(out)
}

/// Which signatures [`signatures`] makes with every private key.
#[derive(Clone, Copy, Debug)]
pub enum Sign<'a> {
    /// CKM_RSA_PKCS (a SHA-256 DigestInfo), CKM_SHA256_RSA_PKCS and, when the token's mechanisms
    /// have it, CKM_SHA256_RSA_PKCS_PSS; a refusal is recorded. Lines `<key>: <mechanism>
    /// signature of N bytes, verified <bool>` or `<key>: <mechanism> refused (<rv>)`.
    Every(&'a [MechanismType]),
    /// CKM_RSA_PKCS over a SHA-256 DigestInfo only, what every key signs (the contactless
    /// technical key included: it takes no on-card hash); any error fails. Lines `<key>:
    /// signature of N bytes, verified <bool>`.
    RsaPkcs,
}

/// Every private key the session sees signs as `sign` says; each signature is verified with the
/// certificate of the key's id. With [`Sign::Every`], a mechanism the key refuses with
/// CKR_KEY_TYPE_INCONSISTENT or CKR_KEY_FUNCTION_NOT_PERMITTED (e.g. the CPS3 authentication key
/// with an on-card hash, docs/card-spec.md §4.3) is recorded as refused: the listing of refusals
/// is compared with the base card's too.
pub fn signatures(s: &Session, sign: Sign<'_>) -> Result<Vec<String>, Failed> {
    let mut out = Vec::new();
    let message = b"variant matrix";
    let hash = sha2::Sha256::digest(message);
    for key in s.find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY)])? {
        let label = text_attr(s, key, AttributeType::Label)?;
        let id = bytes_attr(s, key, AttributeType::Id)?;
        let certs = s.find_objects(&[Attribute::Class(ObjectClass::CERTIFICATE), Attribute::Id(id)])?;
        let cert = certs.first().ok_or_else(|| format!("{label}: no certificate"))?;
        let der = bytes_attr(s, *cert, AttributeType::Value)?;
        let (_, x509) = x509_parser::parse_x509_certificate(&der).map_err(|e| format!("{label}: {e}"))?;
        let public = RsaPublicKey::from_public_key_der(x509.public_key().raw)?;
        let mut digest_info = SHA256_DIGEST_INFO.to_vec();
        digest_info.extend_from_slice(&hash);
        let pss = PkcsPssParams {
            hash_alg: MechanismType::SHA256,
            mgf: PkcsMgfType::MGF1_SHA256,
            s_len: 32.into(),
        };
        let mut tries: Vec<(&str, Mechanism, &[u8])> = vec![("RSA-PKCS", Mechanism::RsaPkcs, &digest_info)];
        if let Sign::Every(mechanisms) = sign {
            tries.push(("SHA256-RSA-PKCS", Mechanism::Sha256RsaPkcs, message));
            if mechanisms.contains(&MechanismType::SHA256_RSA_PKCS_PSS) {
                tries.push(("SHA256-RSA-PKCS-PSS", Mechanism::Sha256RsaPkcsPss(pss), message));
            }
        }
        for (name, mechanism, input) in tries {
            let every = matches!(sign, Sign::Every(_));
            let sig = match s.sign(&mechanism, key, input) {
                Ok(sig) => sig,
                Err(e) if !every => return Err(e.into()),
                Err(cryptoki::error::Error::Pkcs11(rv, _))
                    if matches!(
                        rv,
                        cryptoki::error::RvError::KeyTypeInconsistent
                            | cryptoki::error::RvError::KeyFunctionNotPermitted
                            | cryptoki::error::RvError::MechanismInvalid
                    ) =>
                {
                    out.push(format!("{label}: {name} refused ({rv})"));
                    continue;
                }
                // The return value's name, which a documented unsupported variant names.
                Err(cryptoki::error::Error::Pkcs11(rv, f)) => {
                    return Err(format!("{label}: {name}: {f}: {rv:?}").into());
                }
                Err(e) => return Err(format!("{label}: {name}: {e}").into()),
            };
            let verified = if name.ends_with("PSS") {
                public.verify(Pss::new::<sha2::Sha256>(), &hash, &sig).is_ok()
            } else {
                public
                    .verify(Pkcs1v15Sign::new::<sha2::Sha256>(), &hash, &sig)
                    .is_ok()
            };
            let what = if every { format!("{name} ") } else { String::new() };
            out.push(format!(
                "{label}: {what}signature of {} bytes, verified {verified}",
                sig.len()
            ));
        }
    }
    Ok(out)
}

/// What [`listing`] says of the value of a certificate or data object.
#[derive(Clone, Copy, Debug)]
pub enum Values {
    /// Every one's length and the start of its SHA-256.
    Hashed,
    /// The length of the public ones only (a redacted report keeps lengths, and a private data
    /// object it could not read replays with a stand-in value).
    PublicLengths,
}

/// Every object the session sees, one sorted line each: `<when>: <class> <label> private=<bool>`,
/// the key size of a key, the value of a certificate or data object as `values` says.
pub fn listing(s: &Session, when: &str, values: Values) -> Result<Vec<String>, Failed> {
    let mut out = Vec::new();
    for o in s.find_objects(&[])? {
        let class = match s.get_attributes(o, &[AttributeType::Class])?.first() {
            Some(Attribute::Class(c)) => *c,
            _ => return Err("no CKA_CLASS".into()),
        };
        let label = text_attr(s, o, AttributeType::Label)?;
        let private = matches!(
            s.get_attributes(o, &[AttributeType::Private])?.first(),
            Some(Attribute::Private(true))
        );
        let mut line = format!("{when}: {class} {label:?} private={private}");
        if class == ObjectClass::PRIVATE_KEY || class == ObjectClass::PUBLIC_KEY {
            match s.get_attributes(o, &[AttributeType::ModulusBits])?.first() {
                Some(Attribute::ModulusBits(bits)) => line.push_str(&format!(" bits={bits}")),
                other => return Err(format!("{label}: CKA_MODULUS_BITS {other:?}").into()),
            }
        }
        if class == ObjectClass::CERTIFICATE || class == ObjectClass::DATA {
            match values {
                Values::Hashed => {
                    let value = bytes_attr(s, o, AttributeType::Value)?;
                    line.push_str(&format!(" value={} bytes sha256={}", value.len(), {
                        let h = sha2::Sha256::digest(&value);
                        h[..6].iter().map(|b| format!("{b:02x}")).collect::<String>()
                    }));
                }
                Values::PublicLengths if !private => line.push_str(&format!(
                    " value={} bytes",
                    bytes_attr(s, o, AttributeType::Value)?.len()
                )),
                Values::PublicLengths => {}
            }
        }
        out.push(line);
    }
    out.sort();
    Ok(out)
}

fn bytes_attr(s: &Session, o: ObjectHandle, t: AttributeType) -> Result<Vec<u8>, Failed> {
    Ok(match s.get_attributes(o, &[t])?.into_iter().next() {
        Some(Attribute::Value(v) | Attribute::Id(v) | Attribute::Label(v)) => v,
        other => return Err(format!("{t:?}: {other:?}").into()),
    })
}

fn text_attr(s: &Session, o: ObjectHandle, t: AttributeType) -> Result<String, Failed> {
    Ok(String::from_utf8_lossy(&bytes_attr(s, o, t)?).into_owned())
}
