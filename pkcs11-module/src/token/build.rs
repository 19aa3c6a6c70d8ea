//! Building a token's objects in three parts, each from only the files it needs (issue 15):
//!
//! 1. the private keys ([`private_key_objects`]): the PrKDF alone — a key lookup, C_SignInit
//!    or a private-key attribute needs nothing else;
//! 2. the certificates and public keys ([`key_objects`]): the CDF's entries (a public key object
//!    exists for a key with a certificate of its iD, labelled after it, docs/card-spec.md §5.3); the
//!    certificates themselves are not read (`load_cert` reads one when an attribute needs
//!    it or its public key is used);
//! 3. the data objects ([`objects`]): the DODF.
//!
//! Whatever was built first, the list is in the official module's order (`official_order`).
//! The disk cache ([`crate::cache`])
//! keeps whatever was read — the PKCS#15 files at once, the listing once the CDF is known,
//! each certificate when it is read, the data list where it is cached — and a later process
//! builds from it.

use cpx_card::{Certificate, Interface, KeyRole, PrivateKeyInfo};
use cryptoki_sys::*;

use super::Token;
use crate::cache;
use crate::error::{Error, Result, ck};
use crate::objects::{CertData, KeyData, Kind, Object, Parsed, new_object_handle, parse_cert};

/// The private keys of the card's PrKDF (no APDU once the card layer has read the PrKDF).
fn card_keys(token: &mut Token) -> Result<Vec<PrivateKeyInfo>> {
    Ok(token.card.private_keys()?)
}

/// The CDF's certificates (not read: empty DER), and whether they may go to the disk cache (no
/// private certificate).
fn card_certs(token: &mut Token) -> Result<(Vec<Certificate>, bool)> {
    let infos = token.card.certificate_infos()?;
    let certs = infos.iter().map(Certificate::listed).collect();
    let cacheable = !infos.iter().any(|c| c.common.private);
    Ok((certs, cacheable))
}

/// The data objects of the DODF (values not read); `None` when they cannot be listed (the
/// token still works without them).
fn card_data(token: &mut Token) -> Result<Option<Vec<cache::Data>>> {
    match token.card.data_objects() {
        Ok(list) => Ok(Some(list.into_iter().map(cache::Data::listed).collect())),
        Err(e) => {
            let e = Error::from(e);
            if crate::error::token_lost(&e) {
                return Err(e);
            }
            log::warn!("data objects: {e}");
            Ok(None)
        }
    }
}

/// The private key objects of `keys`, not linked to a certificate yet ([`with_certs`]).
fn private_key_objects_of(token: &Token, keys: &[PrivateKeyInfo]) -> Vec<Object> {
    let contactless = token.card.interface() == Interface::Contactless;
    keys.iter()
        .map(|k| Object {
            handle: new_object_handle(),
            label: k.label.clone(),
            id: k.id.clone(),
            // docs/card-spec.md §5.3: the contactless technical key is public (PrKDF flag).
            private: k.private,
            kind: Kind::PrivateKey(KeyData {
                entry: k.clone(),
                modulus: Vec::new(),
                exponent: Vec::new(),
                spki: Vec::new(),
                subject: Vec::new(),
                decrypt: k.role == KeyRole::Authentication && !contactless,
                // The signature key's public key does not encrypt, on either generation: the
                // official module refuses C_EncryptInit with a public key whose label contains
                // "Sign" (docs/card-spec.md §4.5), so CKA_ENCRYPT says FALSE where it would have said TRUE
                // and refused (docs/pkcs11-module.md, "Where it differs…").
                encrypt: k.role == KeyRole::Authentication,
            }),
            cert: None,
        })
        .collect()
}

/// The object list once the CDF is known: the certificates of `certs` (waiting for
/// [`load_cert`]), then each private key of `keys` preceded by its public key when a
/// certificate has its iD (docs/card-spec.md §5.3: no PuKDF on CPx cards, "Cle publique - " + the
/// certificate label) and linked to that certificate, then `rest`; [`official_order`] then
/// puts them in the official module's order.
fn with_certs(certs: &[Certificate], keys: Vec<Object>, rest: Vec<Object>) -> Vec<Object> {
    let mut out: Vec<Object> = certs
        .iter()
        .map(|c| Object {
            handle: new_object_handle(),
            label: c.label.clone(),
            id: c.id.clone(),
            private: false,
            kind: Kind::Certificate(CertData {
                authority: c.authority,
                ..CertData::default()
            }),
            cert: Some(c.clone()),
        })
        .collect();
    for mut k in keys {
        let cert = certs.iter().find(|c| c.id == k.id && !c.authority);
        match (cert, &k.kind) {
            (Some(c), Kind::PrivateKey(key)) => {
                out.push(Object {
                    handle: new_object_handle(),
                    label: format!("Cle publique - {}", c.label),
                    id: k.id.clone(),
                    private: false,
                    kind: Kind::PublicKey(key.clone()),
                    cert: Some(c.clone()),
                });
                k.cert = Some(c.clone());
            }
            _ => log::warn!("private key {:?}: no certificate with its iD", k.label),
        }
        out.push(k);
    }
    out.extend(rest);
    out
}

/// Whether the token has a user PIN (not on the CPS3 contactless interface, docs/card-spec.md §7).
fn has_user_pin(token: &Token) -> bool {
    token.card.interface() != Interface::Contactless
}

/// Put `objects` in the order C_FindObjects returns them, the official module's (issue 14;
/// docs/pkcs11-module.md, "Objects"). It lists its object pool in insertion order, and fills
/// it (Cryptolib 5.2 `pkcs15_create_tokens`, `pkcs15_add_object`) in two passes over the
/// card's objects taken in PKCS#15 order (PrKDF, then CDF, then DODF): first, on a token with
/// a user PIN, the private objects (CKA_PRIVATE), then everything else; each private key
/// brings its certificate (same iD) and that certificate's public key right after it. So:
/// each private key, its certificate and its public key, key by key in PrKDF order; then the
/// certificates of no key; then the data objects in DODF order, the private ones before the
/// public ones when there is a PIN. The sort is stable: certificates stay in CDF order and
/// data objects in DODF order within their group.
fn official_order(objects: &mut Vec<Object>, pin: bool) {
    let pass = |private: bool| u8::from(!(pin && private));
    // The private keys in PrKDF order, with the pass that lists them.
    let keys: Vec<(Vec<u8>, u8)> = objects
        .iter()
        .filter(|o| matches!(o.kind, Kind::PrivateKey(_)))
        .map(|o| (o.id.clone(), pass(o.private)))
        .collect();
    let mut ranked: Vec<((u8, u8, usize, u8), Object)> = std::mem::take(objects)
        .into_iter()
        .map(|o| {
            let key = keys.iter().position(|(id, _)| *id == o.id);
            let rank = match (&o.kind, key) {
                (Kind::PrivateKey(_), Some(i)) => (keys[i].1, 0, i, 0),
                (Kind::Certificate(c), Some(i)) if !c.authority => (keys[i].1, 0, i, 1),
                (Kind::PublicKey(_), Some(i)) => (keys[i].1, 0, i, 2),
                (Kind::Data { .. }, _) => (pass(o.private), 2, 0, 0),
                _ => (pass(o.private), 1, 0, 0),
            };
            (rank, o)
        })
        .collect();
    ranked.sort_by_key(|(rank, _)| *rank);
    *objects = ranked.into_iter().map(|(_, o)| o).collect();
}

/// The certificate and key objects of a whole `listing` (from the disk cache): certificates
/// with a DER filled at once, the others waiting for [`load_cert`].
fn assemble_keys(token: &Token, listing: &cache::Objects) -> Vec<Object> {
    let keys = private_key_objects_of(token, &listing.keys);
    let mut out = with_certs(&listing.certs, keys, Vec::new());
    official_order(&mut out, has_user_pin(token));
    for c in &listing.certs {
        if c.der.is_empty() {
            continue;
        }
        match parse_cert(&c.der, c.authority) {
            Some(parsed) => fill_cert(&mut out, c, &parsed),
            // Left pending: read (and checked) from the card when needed.
            None => log::warn!("certificate {:?} from the disk cache: not X.509", c.label),
        }
    }
    out
}

/// The data objects of `data`, after the keys.
fn assemble_data(data: &[cache::Data]) -> Vec<Object> {
    data.iter()
        .map(|d| Object {
            handle: new_object_handle(),
            label: d.object.label.clone(),
            id: Vec::new(),
            private: d.object.private,
            kind: Kind::Data {
                entry: d.object.clone(),
                size: d.value.as_ref().map(Vec::len),
                value: d.value.clone(),
            },
            cert: None,
        })
        .collect()
}

/// Fill every object that waits for the certificate `cert` lists from its parsed form.
fn fill_cert(objects: &mut [Object], cert: &Certificate, p: &Parsed) {
    let label = &cert.label;
    for o in objects.iter_mut().filter(|o| o.waits_for(cert)) {
        o.cert = None;
        match &mut o.kind {
            Kind::Certificate(cd) => *cd = p.cert.clone(),
            Kind::PublicKey(k) | Kind::PrivateKey(k) => {
                k.subject = p.cert.subject.clone();
                match &p.rsa {
                    Some((m, e, spki)) => {
                        k.modulus = m.clone();
                        k.exponent = e.clone();
                        k.spki = spki.clone();
                    }
                    None => log::warn!("certificate {label:?}: not an RSA key"),
                }
            }
            _ => {}
        }
    }
}

/// Read the certificate `cert` lists from the card, fill every object that waits for it and
/// keep its DER in the disk cache's entry (written after the call, [`Token::note_files`]); its
/// DER. The card layer finds it from the listing entry (the CDF entry of its label and iD: the
/// disk cache's CDF, no APDU).
pub(crate) fn load_cert(token: &mut Token, cert: &Certificate) -> Result<Vec<u8>> {
    let (label, id) = (&cert.label, &cert.id);
    let Some(c) = token.card.read_listed_certificate(cert)? else {
        log::warn!("certificate {label:?}: not in the card's CDF");
        return ck(CKR_DEVICE_ERROR);
    };
    let Some(parsed) = parse_cert(&c.der, c.authority) else {
        // Whatever the card sent is not a certificate (a broken or hostile card): served as
        // CKA_VALUE it would be a wrong answer given as right. The objects stay unread.
        log::warn!(
            "certificate {:?}: the card's data is not an X.509 certificate",
            c.label
        );
        return ck(CKR_DEVICE_ERROR);
    };
    if let Some(objects) = token.objects.as_mut() {
        fill_cert(objects, cert, &parsed);
    }
    if let Some(cache) = &mut token.cache
        && let Some(cert) = cache
            .entry
            .objects
            .as_mut()
            .and_then(|o| o.certs.iter_mut().find(|x| x.label == *label && x.id == *id))
        && cert.der.is_empty()
    {
        cert.der = c.der.clone();
        cache.changed();
    }
    Ok(c.der)
}

/// The private key objects at least, building them on first use: from the disk cache's entry
/// when it lists the objects (then the certificates and public keys too, at no cost), else
/// from the PrKDF alone (a key lookup, C_SignInit or a private-key attribute needs nothing
/// else). The list returned may hold more than private keys: callers filter by class.
pub fn private_key_objects(token: &mut Token) -> Result<&mut Vec<Object>> {
    if token.objects.is_none() {
        let cached = token.cache.as_ref().and_then(|c| c.entry.objects.clone());
        let objects = match cached {
            Some(listing) => {
                log::debug!("certificates and keys from the disk cache");
                token.certs_listed = true;
                assemble_keys(token, &listing)
            }
            None => {
                let keys = card_keys(token)?;
                private_key_objects_of(token, &keys)
            }
        };
        token.objects = Some(objects);
    }
    token.objects.as_mut().ok_or(Error::Ck(CKR_GENERAL_ERROR))
}

/// The certificate and key objects, building what is missing: the private keys
/// ([`private_key_objects`]), then the certificates and public keys from the CDF (its entries
/// only: a certificate is read when an attribute needs it, `load_cert`). The listing then
/// goes to the disk cache's entry.
pub fn key_objects(token: &mut Token) -> Result<&mut Vec<Object>> {
    private_key_objects(token)?;
    if !token.certs_listed {
        let (certs, cacheable) = card_certs(token)?;
        // No APDU: the PrKDF was read for the private keys.
        let keys = card_keys(token)?;
        let (private, rest): (Vec<Object>, Vec<Object>) = token
            .objects
            .take()
            .unwrap_or_default()
            .into_iter()
            .partition(|o| matches!(o.kind, Kind::PrivateKey(_)));
        let mut listed = with_certs(&certs, private, rest);
        official_order(&mut listed, has_user_pin(token));
        token.objects = Some(listed);
        token.certs_listed = true;
        if cacheable && let Some(c) = &mut token.cache {
            c.entry.objects = Some(cache::Objects {
                certs,
                keys,
                data: None,
            });
            c.changed();
        }
    }
    token.objects.as_mut().ok_or(Error::Ck(CKR_GENERAL_ERROR))
}

/// Every object, building what is missing: the certificates and keys ([`key_objects`]), then
/// the data objects (the disk cache's list where it keeps one, [`cache::Key::caches_data`];
/// else the DODF, whose list is then kept there).
pub fn objects(token: &mut Token) -> Result<&mut Vec<Object>> {
    key_objects(token)?;
    if !token.data_listed {
        let cached = token
            .cache
            .as_ref()
            .and_then(|c| c.entry.objects.as_ref())
            .and_then(|o| o.data.clone());
        let data = match cached {
            Some(d) => Some(d),
            None => {
                let data = card_data(token)?;
                if let (Some(list), Some(c)) = (&data, &mut token.cache)
                    && c.entry.key.caches_data()
                    && let Some(o) = c.entry.objects.as_mut()
                {
                    o.data = Some(list.clone());
                    c.changed();
                }
                data
            }
        };
        let data = assemble_data(data.as_deref().unwrap_or_default());
        log::debug!("{} data objects", data.len());
        let pin = has_user_pin(token);
        if let Some(objects) = token.objects.as_mut() {
            objects.extend(data);
            official_order(objects, pin);
        }
        token.data_listed = true;
    }
    token.objects.as_mut().ok_or(Error::Ck(CKR_GENERAL_ERROR))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(handle: CK_OBJECT_HANDLE, label: &str, id: &[u8], private: bool, kind: Kind) -> Object {
        Object {
            handle,
            label: label.into(),
            id: id.to_vec(),
            private,
            kind,
            cert: None,
        }
    }

    fn key(private: bool) -> Kind {
        let k = KeyData {
            entry: PrivateKeyInfo {
                label: "key".into(),
                id: Vec::new(),
                role: KeyRole::Authentication,
                modulus_bits: 2048,
                private,
            },
            modulus: Vec::new(),
            exponent: Vec::new(),
            spki: Vec::new(),
            subject: Vec::new(),
            decrypt: false,
            encrypt: false,
        };
        if private {
            Kind::PrivateKey(k)
        } else {
            Kind::PublicKey(k)
        }
    }

    fn cert(authority: bool) -> Kind {
        Kind::Certificate(CertData {
            authority,
            ..CertData::default()
        })
    }

    fn data(modifiable: bool) -> Kind {
        Kind::Data {
            entry: cpx_card::DataObject {
                label: "data".into(),
                application: Some("CPS".into()),
                private: false,
                modifiable,
            },
            value: None,
            size: None,
        }
    }

    /// As `with_certs` and `objects` build it: certificates (CDF order), each private key after
    /// its public key (PrKDF order), then data objects (DODF order).
    fn built(key_private: bool) -> Vec<Object> {
        vec![
            object(1, "cert sig", &[1], false, cert(false)),
            object(2, "ca", &[0], false, cert(true)),
            object(3, "cert aut", &[2], false, cert(false)),
            object(4, "pub sig", &[1], false, key(false)),
            object(5, "sig", &[1], key_private, key(true)),
            object(6, "pub aut", &[2], false, key(false)),
            object(7, "aut", &[2], key_private, key(true)),
            object(8, "public 1", &[], false, data(false)),
            object(9, "private 1", &[], true, data(false)),
            object(10, "public 2", &[], false, data(true)),
            object(11, "private 2", &[], true, data(false)),
        ]
    }

    fn labels(v: &[Object]) -> Vec<&str> {
        v.iter().map(|o| o.label.as_str()).collect()
    }

    #[test]
    fn the_official_modules_order() {
        // A token with a PIN: its private objects first, each key with its certificate and
        // public key; then a certificate of no key, then the public data objects.
        let mut v = built(true);
        official_order(&mut v, true);
        assert_eq!(
            labels(&v),
            [
                "sig",
                "cert sig",
                "pub sig",
                "aut",
                "cert aut",
                "pub aut",
                "private 1",
                "private 2",
                "ca",
                "public 1",
                "public 2"
            ]
        );
        // No PIN (contactless): one pass, data objects in DODF order whatever their flag.
        let mut v = built(false);
        official_order(&mut v, false);
        assert_eq!(
            labels(&v),
            [
                "sig",
                "cert sig",
                "pub sig",
                "aut",
                "cert aut",
                "pub aut",
                "ca",
                "public 1",
                "private 1",
                "public 2",
                "private 2"
            ]
        );
        // Sorting again changes nothing (the list is re-sorted as parts are added).
        let before = labels(&v).join(",");
        official_order(&mut v, false);
        assert_eq!(labels(&v).join(","), before);
    }
}
