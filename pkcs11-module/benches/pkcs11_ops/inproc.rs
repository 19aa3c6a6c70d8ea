//! The same operations through the card layer alone: `cpx-card` over `VirtualChannel`, the
//! emulated card in this process (no pcscd, no vpcd, no PKCS#11 module, no disk cache).

use std::time::Instant;

use cpx_card::{Card, KeyRole, Pin, PinKind};
use cpx_testkit::{Recorder, Recording};
use cpx_transport_virtual::VirtualChannel;
use rsa::Pkcs1v15Encrypt;

use crate::ops::{CardModel, SECRET, Sample, Signing};
use crate::worker::public_key;

/// (operation id, sample) of one run of every operation on a fresh card.
pub fn run_once(card: CardModel) -> Result<Vec<(String, Sample)>, String> {
    let image = cpx_emulator::builtin_image(card.stem())
        .ok_or("no image")?
        .map_err(|e| e.to_string())?;
    let (rec, wire) = Recorder::new(cpx_emulator::card_from_image(&image));
    let (channel, _control) = VirtualChannel::new("in-process", Box::new(rec));
    let mut out = Vec::new();
    let mut measure = |op: &str, wire: &Recording, t: Instant| {
        let nanos = t.elapsed().as_nanos() as u64;
        out.push((op.to_owned(), Sample::new(&wire.take(), nanos)));
    };
    let e = |e: cpx_card::CardError| e.to_string();
    wire.take();
    let t = Instant::now();
    let mut c = Card::open(Box::new(channel)).map_err(e)?;
    measure("open", &wire, t);
    let t = Instant::now();
    c.pin_statuses(&[PinKind::User, PinKind::Puk]).map_err(e)?;
    measure("pin_status", &wire, t);
    let t = Instant::now();
    let mut certs = Vec::new();
    for info in c.certificate_infos().map_err(e)? {
        certs.push(c.read_certificate(&info).map_err(e)?);
    }
    measure("list", &wire, t);
    let t = Instant::now();
    c.verify_pin(&Pin::new("1234")).map_err(e)?;
    measure("login", &wire, t);
    let key_of = |role: KeyRole, c: &mut Card| -> Result<rsa::RsaPublicKey, String> {
        let id = c
            .private_keys()
            .map_err(e)?
            .into_iter()
            .find(|k| k.role == role)
            .ok_or("no key")?
            .id;
        let der = &certs.iter().find(|x| x.id == id).ok_or("no certificate")?.der;
        public_key(der)
    };
    for sig in Signing::all(card) {
        let public = key_of(sig.role(), &mut c)?;
        let (mech, data) = sig.card();
        wire.take();
        let t = Instant::now();
        let signature = c.sign(sig.role(), mech, &data).map_err(e)?;
        measure(sig.id(), &wire, t);
        sig.verify(&public, &signature)?;
    }
    let public = key_of(KeyRole::Authentication, &mut c)?;
    let cryptogram = public
        .encrypt(&mut rand_core::OsRng, Pkcs1v15Encrypt, SECRET)
        .map_err(|e| e.to_string())?;
    wire.take();
    let t = Instant::now();
    let plain = c.decrypt(KeyRole::Authentication, &cryptogram).map_err(e)?;
    measure("decrypt", &wire, t);
    if plain.as_slice() != SECRET {
        return Err("wrong plaintext".into());
    }
    Ok(out)
}

/// The fewest APDUs a certificate listing needs on this card: for each file the card layer
/// reads for it (ODF, CDF, certificates), one SELECT and ⌈size / 256⌉ READ BINARY (short
/// APDUs, Le = 00). Also the file sizes.
pub fn list_minimum(card: CardModel) -> Result<(usize, Vec<usize>), String> {
    files_minimum(card, |c| {
        for info in c.certificate_infos()? {
            c.read_certificate(&info)?;
        }
        Ok(())
    })
}

/// The fewest APDUs finding the private keys needs on this card (what a signature's key lookup
/// needs): one SELECT and ⌈size / 256⌉ READ BINARY of each file the card layer reads for it
/// (the ODF and the PrKDF). Also the file sizes.
pub fn keys_minimum(card: CardModel) -> Result<(usize, Vec<usize>), String> {
    files_minimum(card, |c| c.private_keys().map(drop))
}

/// SELECT + ⌈size / 256⌉ READ BINARY for each file `read` reads after the card is open.
fn files_minimum(
    card: CardModel,
    read: impl FnOnce(&mut Card) -> Result<(), cpx_card::CardError>,
) -> Result<(usize, Vec<usize>), String> {
    let image = cpx_emulator::builtin_image(card.stem())
        .ok_or("no image")?
        .map_err(|e| e.to_string())?;
    let (rec, wire) = Recorder::new(cpx_emulator::card_from_image(&image));
    let (channel, _control) = VirtualChannel::new("in-process", Box::new(rec));
    let mut c = Card::open(Box::new(channel)).map_err(|e| e.to_string())?;
    wire.take();
    read(&mut c).map_err(|e| e.to_string())?;
    let mut sizes: Vec<usize> = Vec::new();
    let mut current: Option<usize> = None;
    for (cmd, resp) in wire.take() {
        match cmd.get(1) {
            Some(0xA4) => {
                sizes.extend(current.take().filter(|n| *n > 0));
                current = Some(0);
            }
            Some(0xB0) => *current.get_or_insert(0) += resp.len().saturating_sub(2),
            _ => {}
        }
    }
    sizes.extend(current.filter(|n| *n > 0));
    let n = sizes.iter().map(|s| 1 + s.div_ceil(256)).sum();
    Ok((n, sizes))
}
