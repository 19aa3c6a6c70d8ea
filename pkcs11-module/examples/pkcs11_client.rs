//! A minimal PKCS#11 client of the module, through the `cryptoki` crate: what an application does
//! to log in and sign with a CPx card. scripts/arm64-check.sh cross-builds it and runs it under
//! qemu-user, so that the arm64 module is loaded by an arm64 client.
//!
//! ```sh
//! cargo run --example pkcs11_client -- MODULE TOKEN_LABEL OUT_DIR < pin
//! ```
//!
//! It lists the tokens, logs in to `TOKEN_LABEL` with the PIN read from stdin (never from the
//! command line), signs a fixed message with CKM_SHA256_RSA_PKCS and the authentication key
//! (CPS_PRIV_AUT), and writes `message`, `signature` and `certificate.der` (the authentication
//! certificate) into `OUT_DIR`, for `openssl dgst -verify` to check on any machine.

use std::error::Error;
use std::io::Read;
use std::path::PathBuf;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectClass};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;

const MESSAGE: &[u8] = b"cpx pkcs11_client example\n";

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [module, label, out] = args.as_slice() else {
        return Err("usage: pkcs11_client MODULE TOKEN_LABEL OUT_DIR < pin".into());
    };
    let out = PathBuf::from(out);
    let mut pin = String::new();
    std::io::stdin().read_to_string(&mut pin)?;
    let pin = AuthPin::new(pin.trim_end_matches(['\r', '\n']).into());

    let pkcs11 = Pkcs11::new(module)?;
    pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))?;
    let info = pkcs11.get_library_info()?;
    println!(
        "library: {} ({})",
        info.library_description(),
        info.manufacturer_id()
    );
    let mut slot = None;
    for s in pkcs11.get_slots_with_token()? {
        let token = pkcs11.get_token_info(s)?;
        println!("token: {} (model {})", token.label(), token.model());
        if token.label() == label {
            slot = Some(s);
        }
    }
    let slot = slot.ok_or_else(|| format!("no token labelled {label}"))?;

    let session = pkcs11.open_ro_session(slot)?;
    session.login(UserType::User, Some(&pin))?;
    let key = *session
        .find_objects(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Label(b"CPS_PRIV_AUT".to_vec()),
        ])?
        .first()
        .ok_or("no CPS_PRIV_AUT")?;
    let signature = session.sign(&Mechanism::Sha256RsaPkcs, key, MESSAGE)?;
    let cert = *session
        .find_objects(&[
            Attribute::Class(ObjectClass::CERTIFICATE),
            Attribute::Label(b"Certificat d'Authentification CPS".to_vec()),
        ])?
        .first()
        .ok_or("no authentication certificate")?;
    let value = session
        .get_attributes(cert, &[AttributeType::Value])?
        .into_iter()
        .find_map(|a| match a {
            Attribute::Value(v) => Some(v),
            _ => None,
        })
        .ok_or("certificate without CKA_VALUE")?;
    session.logout()?;

    std::fs::write(out.join("message"), MESSAGE)?;
    std::fs::write(out.join("signature"), &signature)?;
    std::fs::write(out.join("certificate.der"), value)?;
    println!(
        "signed {} bytes: {}-byte signature",
        MESSAGE.len(),
        signature.len()
    );
    Ok(())
}
