//! Rows 1430–1438: the object attributes and the listing order, against what the official
//! module (Cryptolib CPS 5.2) answers (issue 14, "small attribute differences"; the table
//! "Where it differs from the official module, on purpose" in docs/pkcs11-module.md):
//! - the order of C_FindObjects: the official one, logged in and not (1430, 1431). Failed
//!   before issue 14 (certificates first, each private key after its public key);
//! - CKA_LOCAL TRUE on private and public keys, as the official (1432; FALSE before), and not a
//!   certificate attribute (1433);
//! - CKA_ENCRYPT TRUE on the authentication public key only, CKA_VERIFY on both, CKA_WRAP and
//!   CKA_VERIFY_RECOVER FALSE (1434; the CPS4 signature public key said TRUE before), and
//!   C_EncryptInit refusing the signature public key as the official does (1435; a CPS4
//!   encrypted with it before);
//! - on purpose not the official's: CKA_OBJECT_ID of a data object empty (no appOID; the
//!   official copies 64 bytes of its in-memory OID array, 1436) and CKA_SERIAL_NUMBER the
//!   DER INTEGER PKCS#11 defines (the official gives the INTEGER's content octets, 1437).

use cryptoki_sys::*;
use x509_parser::prelude::*;

use crate::raw::{Attr, Mech};
use crate::runner::{AUTH_CERT, Ctx, Gen, Item, SIG_CERT, StepResult, ok, row, setup};

/// The technical certificate of the contactless interface (docs/card-spec.md §5.3).
const TECH_CERT: &str = "Certificat Technique CPS";

/// The card's private keys and their certificates, in PrKDF order: the emulated PrKDF lists
/// CPS_PRIV_SIG before CPS_PRIV_AUT, as the real CPS3 one (docs/card-spec.md §1.5, GH#2267).
fn keys(kind: Gen) -> &'static [(&'static str, &'static str)] {
    match kind {
        Gen::Cps3 | Gen::Cps4 => &[("CPS_PRIV_SIG", SIG_CERT), ("CPS_PRIV_AUT", AUTH_CERT)],
        Gen::Cl => &[("CPS_PRIV_TECH_AUT", TECH_CERT)],
    }
}

/// One listed object: class, label, CKA_PRIVATE.
type Listed = (CK_OBJECT_CLASS, String, bool);

fn listed(c: &Ctx) -> Result<Vec<Listed>, String> {
    let mut out = Vec::new();
    for h in c.find("a", &[])? {
        let class = c.attr("a", h, CKA_CLASS)?;
        let class = CK_ULONG::from_ne_bytes(class.try_into().map_err(|_| "CKA_CLASS size")?);
        let label = String::from_utf8_lossy(&c.attr("a", h, CKA_LABEL)?).into_owned();
        let private = c.attr("a", h, CKA_PRIVATE)? == [CK_TRUE];
        out.push((class, label, private));
    }
    Ok(out)
}

/// The official module's order (Cryptolib 5.2 `pkcs15_create_tokens`: on a token with a PIN,
/// the private objects first, each private key followed by its certificate and that
/// certificate's public key; then the rest, data objects in DODF order): the keys part exactly,
/// and the data objects (the image's DODF order, the private ones first when they are shown).
fn official_order(c: &Ctx, kind: Gen, logged_in: bool) -> StepResult {
    let got = listed(c)?;
    let shown = |private: bool| !private || logged_in;
    let mut expect_keys: Vec<(CK_OBJECT_CLASS, String)> = Vec::new();
    for (key, cert) in keys(kind) {
        // The contactless technical key is not private (docs/card-spec.md §5.3).
        if shown(kind != Gen::Cl) {
            expect_keys.push((CKO_PRIVATE_KEY, (*key).into()));
        }
        expect_keys.push((CKO_CERTIFICATE, (*cert).into()));
        expect_keys.push((CKO_PUBLIC_KEY, format!("Cle publique - {cert}")));
    }
    let split = got
        .iter()
        .position(|(class, ..)| *class == CKO_DATA)
        .unwrap_or(got.len());
    let (key_part, data_part) = got.split_at(split);
    let key_part: Vec<(CK_OBJECT_CLASS, String)> = key_part
        .iter()
        .map(|(class, label, _)| (*class, label.clone()))
        .collect();
    let fail = |what: &str| {
        Err(format!(
            "{what}; listed: {:?}",
            got.iter()
                .map(|(class, label, _)| format!("{class}:{label}"))
                .collect::<Vec<_>>()
        ))
    };
    if key_part != expect_keys {
        return fail(&format!("keys and certificates: {expect_keys:?} expected"));
    }
    if data_part.iter().any(|(class, ..)| *class != CKO_DATA) {
        return fail("a key or certificate after the data objects");
    }
    // Private data objects before public ones (only visible logged in).
    if let Some(first_public) = data_part.iter().position(|(.., private)| !private)
        && data_part[first_public..].iter().any(|(.., private)| *private)
    {
        return fail("a private data object after a public one");
    }
    let image = cpx_emulator::builtin_image(kind.stem())
        .ok_or("no image")?
        .map_err(|e| e.to_string())?;
    // The image's data objects are the contact application's: the contactless one has no DODF.
    let image_data: Vec<&str> = if kind == Gen::Cl {
        Vec::new()
    } else {
        image
            .data
            .iter()
            .filter(|d| d.private && logged_in)
            .chain(image.data.iter().filter(|d| !d.private))
            .map(|d| d.label.as_str())
            .collect()
    };
    let of_image: Vec<&str> = data_part
        .iter()
        .map(|(_, label, _)| label.as_str())
        .filter(|l| image.data.iter().any(|d| d.label == *l))
        .collect();
    if of_image != image_data {
        return fail(&format!("data objects of the DODF: {image_data:?} expected"));
    }
    Ok(CKR_OK)
}

/// Every private and public key object, by label.
fn key_objects(c: &Ctx, kind: Gen) -> Result<Vec<(String, CK_OBJECT_HANDLE)>, String> {
    let mut out = Vec::new();
    for (key, cert) in keys(kind) {
        out.push(((*key).to_string(), c.by_label("a", CKO_PRIVATE_KEY, key)?));
        let public = format!("Cle publique - {cert}");
        let h = c.by_label("a", CKO_PUBLIC_KEY, &public)?;
        out.push((public, h));
    }
    Ok(out)
}

/// One boolean attribute; Err unless CKR_OK with one byte.
fn flag(c: &Ctx, o: CK_OBJECT_HANDLE, ty: CK_ATTRIBUTE_TYPE) -> Result<bool, String> {
    match c.attr("a", o, ty)?.as_slice() {
        [b] => Ok(*b == CK_TRUE),
        v => Err(format!("attribute 0x{ty:X}: {} bytes", v.len())),
    }
}

/// The rows.
pub fn rows(kind: Gen) -> Vec<Item> {
    let mut v = vec![
        setup("C_Initialize(NULL)", |c| Ok(c.p11.initialize(None))),
        setup("C_OpenSession read-only", |c| c.open("a", false)),
        row(
            1430,
            "C_FindObjects, empty template: the official module's order (not logged in)",
            CKR_OK,
            move |c| official_order(c, kind, false),
        ),
    ];
    if kind != Gen::Cl {
        v.extend([
            setup("C_Login", |c| {
                c.login("a")?;
                Ok(CKR_OK)
            }),
            row(
                1431,
                "C_FindObjects, empty template: the official module's order (logged in)",
                CKR_OK,
                move |c| official_order(c, kind, true),
            ),
        ]);
    }
    v.extend([
        row(1432, "CKA_LOCAL of the private and public keys: TRUE", CKR_OK, move |c| {
            for (label, h) in key_objects(c, kind)? {
                if !flag(c, h, CKA_LOCAL)? {
                    return Err(format!("{label}: CKA_LOCAL FALSE"));
                }
            }
            Ok(CKR_OK)
        }),
        row(
            1433,
            "CKA_LOCAL of a certificate",
            CKR_ATTRIBUTE_TYPE_INVALID,
            move |c| {
                let cert = c.by_label("a", CKO_CERTIFICATE, keys(kind)[0].1)?;
                let mut q = [Attr::size_of(CKA_LOCAL)];
                Ok(c.p11.get_attribute_value(c.s("a")?, cert, &mut q))
            },
        ),
        row(
            1434,
            "Public keys: CKA_ENCRYPT only on the authentication key, CKA_VERIFY on all, no WRAP or VERIFY_RECOVER",
            CKR_OK,
            move |c| {
                for (_, cert) in keys(kind) {
                    let label = format!("Cle publique - {cert}");
                    let h = c.by_label("a", CKO_PUBLIC_KEY, &label)?;
                    let got = [CKA_ENCRYPT, CKA_VERIFY, CKA_WRAP, CKA_VERIFY_RECOVER]
                        .map(|t| flag(c, h, t));
                    let want = [*cert != SIG_CERT, true, false, false];
                    if got.iter().zip(want).any(|(g, w)| g.as_ref().ok() != Some(&w)) {
                        return Err(format!(
                            "{label}: ENCRYPT, VERIFY, WRAP, VERIFY_RECOVER = {got:?}, {want:?} expected"
                        ));
                    }
                }
                Ok(CKR_OK)
            },
        ),
    ]);
    if kind != Gen::Cl {
        // The official module refuses a public key whose label contains "Sign" (docs/card-spec.md §4.5),
        // CPS4 included, whatever its CKA_ENCRYPT said.
        v.push(row(
            1435,
            "C_EncryptInit CKM_RSA_PKCS with the signature public key",
            CKR_KEY_TYPE_INCONSISTENT,
            |c| {
                let h = c.by_label("a", CKO_PUBLIC_KEY, &format!("Cle publique - {SIG_CERT}"))?;
                Ok(c.p11.encrypt_init(c.s("a")?, Some(Mech::of(CKM_RSA_PKCS)), h))
            },
        ));
    }
    if kind != Gen::Cl {
        v.push(row(
            1436,
            "CKA_OBJECT_ID of every data object: empty (no appOID in the DODF)",
            CKR_OK,
            |c| {
                let data = c.find("a", &[Attr::ulong(CKA_CLASS, CKO_DATA)])?;
                if data.is_empty() {
                    return Err("no data object".into());
                }
                for h in data {
                    let mut q = [Attr::size_of(CKA_OBJECT_ID)];
                    ok(
                        c.p11.get_attribute_value(c.s("a")?, h, &mut q),
                        "C_GetAttributeValue(CKA_OBJECT_ID)",
                    )?;
                    if q[0].len != 0 {
                        return Err(format!("object {h}: CKA_OBJECT_ID of {} bytes", q[0].len));
                    }
                }
                Ok(CKR_OK)
            },
        ));
    }
    v.extend([
        row(
            1437,
            "CKA_SERIAL_NUMBER of each certificate: the DER INTEGER of its serial",
            CKR_OK,
            move |c| {
                for (_, label) in keys(kind) {
                    let h = c.by_label("a", CKO_CERTIFICATE, label)?;
                    let der = c.attr("a", h, CKA_VALUE)?;
                    let (_, cert) = X509Certificate::from_der(&der).map_err(|e| e.to_string())?;
                    let raw = cert.tbs_certificate.raw_serial();
                    let mut want = vec![0x02, u8::try_from(raw.len()).map_err(|_| "serial length")?];
                    want.extend_from_slice(raw);
                    let got = c.attr("a", h, CKA_SERIAL_NUMBER)?;
                    if got != want {
                        return Err(format!("{label}: {got:02X?}, {want:02X?} expected"));
                    }
                }
                Ok(CKR_OK)
            },
        ),
        setup("C_CloseAllSessions, C_Finalize", |c| {
            c.close_all()?;
            c.finalize()?;
            Ok(CKR_OK)
        }),
    ]);
    v
}
