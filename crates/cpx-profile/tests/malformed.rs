//! Malformed certificates give precise errors: truncated DER, wrong tags, absurd lengths,
//! non-UTF-8 names, unknown critical extensions. The certificates are real test-card DER with
//! surgical edits (lengths fixed up so that only the intended defect remains).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::vectors;
use cpx_profile::{Certificate, NameField, Profile, ProfileError, TrustStore};

fn doctor_auth() -> Vec<u8> {
    std::fs::read(vectors().join("cards/cps3-doctor/auth.der")).unwrap()
}

fn find(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).position(|w| w == needle).unwrap()
}

/// Replace `old` by `new` (same length) at its first occurrence.
fn patch(der: &[u8], old: &[u8], new: &[u8]) -> Vec<u8> {
    assert_eq!(old.len(), new.len());
    let mut out = der.to_vec();
    let at = find(&out, old);
    out[at..at + old.len()].copy_from_slice(new);
    out
}

#[test]
fn truncated_der() {
    let der = doctor_auth();
    for cut in [1, 2, 4, 100, der.len() - 1] {
        match Certificate::from_der(&der[..cut]) {
            Err(ProfileError::Truncated { declared, available }) => {
                assert_eq!(available, cut);
                assert!(declared > cut);
            }
            other => panic!("cut at {cut}: {other:?}"),
        }
    }
    assert_eq!(Certificate::from_der(&[]), Err(ProfileError::Empty));
}

#[test]
fn wrong_tags() {
    let mut der = doctor_auth();
    der[0] = 0x31;
    assert_eq!(
        Certificate::from_der(&der),
        Err(ProfileError::WrongTag {
            offset: 0,
            found: 0x31
        })
    );
    // A wrong tag inside (tbsCertificate's SEQUENCE turned into a SET): the X.509 parser says so.
    let mut der = doctor_auth();
    der[4] = 0x31;
    match Certificate::from_der(&der) {
        Err(ProfileError::Malformed(m)) => assert!(!m.is_empty()),
        other => panic!("{other:?}"),
    }
    // A PEM given where DER is expected.
    let pem = std::fs::read(vectors().join("pki/acr-fort.pem")).unwrap();
    assert_eq!(
        Certificate::from_der(&pem),
        Err(ProfileError::WrongTag {
            offset: 0,
            found: b'-'
        })
    );
}

#[test]
fn absurd_lengths() {
    let der = doctor_auth();
    // 30 84 7F FF FF FF: a 2 GiB certificate.
    let mut absurd = vec![0x30, 0x84, 0x7F, 0xFF, 0xFF, 0xFF];
    absurd.extend_from_slice(&der[4..]);
    assert!(matches!(
        Certificate::from_der(&absurd),
        Err(ProfileError::AbsurdLength { offset: 1, .. })
    ));
    // 30 89 …: nine length bytes.
    let mut long = vec![0x30, 0x89];
    long.extend([0xFF; 9]);
    assert!(matches!(
        Certificate::from_der(&long),
        Err(ProfileError::AbsurdLength { .. })
    ));
    // 30 80: indefinite length, never DER.
    let mut indefinite = der.clone();
    indefinite.splice(1..4, [0x80]);
    assert!(matches!(
        Certificate::from_der(&indefinite),
        Err(ProfileError::AbsurdLength { .. })
    ));
    // Trailing garbage.
    let mut trailing = der.clone();
    trailing.extend([0, 0, 0]);
    assert_eq!(
        Certificate::from_der(&trailing),
        Err(ProfileError::TrailingBytes { count: 3 })
    );
    // An inner length pointing past the end of the certificate (the subject's SEQUENCE length).
    let cn = find(&der, b"899700000013");
    let mut inner = der.clone();
    inner[cn - 1] = 0x7F;
    let r = Certificate::from_der(&inner);
    // x509-parser alone would silently drop the rest of the RDN here.
    assert!(
        matches!(
            r,
            Err(ProfileError::BadName {
                name: NameField::Subject,
                ..
            })
        ),
        "{r:?}"
    );
}

#[test]
fn non_utf8_names() {
    // "Médecin" is UTF-8 "4D C3 A9 …"; make it the Latin-1 "4D E9 …" (same length with one
    // byte dropped would shift lengths, so replace é by 0xE9 0x20).
    let der = patch(
        &doctor_auth(),
        "Médecin".as_bytes(),
        &[b'M', 0xE9, 0x20, b'd', b'e', b'c', b'i', b'n'],
    );
    match Certificate::from_der(&der) {
        Err(ProfileError::BadString {
            name,
            rdn,
            attribute,
            string_type,
            ..
        }) => {
            assert_eq!(
                (name, rdn, attribute.as_str(), string_type.as_str()),
                (NameField::Subject, 1, "title", "UTF8String")
            );
        }
        other => panic!("{other:?}"),
    }
    // In the issuer: "ASIP-SANTE" with a 0xFF byte.
    let der = patch(&doctor_auth(), b"ASIP-SANTE", b"ASIP-SANT\xFF");
    match Certificate::from_der(&der) {
        Err(
            e @ ProfileError::BadString {
                name: NameField::Issuer,
                ..
            },
        ) => {
            assert!(
                e.to_string()
                    .starts_with("issuer RDN #1, attribute O: UTF8String value is not valid"),
                "{e}"
            );
        }
        other => panic!("{other:?}"),
    }
    // A PrintableString with a non-ASCII byte (C=FR → C=F\xC9).
    let der = patch(
        &doctor_auth(),
        &[0x13, 0x02, b'F', b'R'],
        &[0x13, 0x02, b'F', 0xC9],
    );
    assert!(matches!(
        Certificate::from_der(&der),
        Err(ProfileError::BadString { rdn: 0, .. })
    ));
}

#[test]
fn unknown_critical_extension() {
    // Turn the non-critical cpxTokenId extension (1.2.250.1.71.1.2.3) into another, unknown OID
    // and make the (critical) keyUsage flag appear on it: first the OID's last arc 3 → 9.
    let der = doctor_auth();
    let token_oid = [0x06, 0x08, 0x2A, 0x81, 0x7A, 0x01, 0x47, 0x01, 0x02, 0x03];
    let mut unknown = token_oid;
    unknown[9] = 0x09;
    let renamed = patch(&der, &token_oid, &unknown);
    // Non-critical unknown extensions are fine and listed.
    let c = Certificate::from_der(&renamed).unwrap();
    assert!(
        c.extensions
            .list
            .iter()
            .any(|e| e.oid == "1.2.250.1.71.1.2.9" && e.name.is_none())
    );
    // Critical: insert BOOLEAN TRUE after the OID, fixing the three enclosing lengths.
    let critical = insert_critical(&renamed, find(&renamed, &unknown));
    assert_eq!(
        Certificate::from_der(&critical),
        Err(ProfileError::UnknownCriticalExtension {
            oid: "1.2.250.1.71.1.2.9".into()
        })
    );
    // A known critical extension with a malformed value is a precise error too: keyUsage's BIT
    // STRING tag 03 → 04.
    let ku = [
        0x06, 0x03, 0x55, 0x1D, 0x0F, 0x01, 0x01, 0xFF, 0x04, 0x04, 0x03, 0x02,
    ];
    let mut bad_ku = ku;
    bad_ku[10] = 0x04;
    match Certificate::from_der(&patch(&der, &ku, &bad_ku)) {
        Err(ProfileError::BadExtension { oid, name, .. }) => {
            assert_eq!((oid.as_str(), name.as_str()), ("2.5.29.15", "keyUsage"))
        }
        other => panic!("{other:?}"),
    }
}

/// Insert `01 01 FF` after the extnID at `oid_at`, growing the Extension SEQUENCE, the
/// Extensions SEQUENCE, the [3] wrapper, tbsCertificate and Certificate lengths by 3.
fn insert_critical(der: &[u8], oid_at: usize) -> Vec<u8> {
    let oid_len = usize::from(der[oid_at + 1]) + 2;
    let mut out = der.to_vec();
    out.splice(oid_at + oid_len..oid_at + oid_len, [0x01, 0x01, 0xFF]);
    // Fix every enclosing definite length: walk from the start, growing any element containing
    // the insertion point. The lengths here are short form (Extension) or 82 xx xx.
    grow_enclosing(&mut out, 0, oid_at, 3);
    out
}

fn grow_enclosing(der: &mut [u8], start: usize, point: usize, by: usize) {
    let mut pos = start;
    let end_of = |der: &[u8], pos: usize| -> (usize, usize, usize) {
        let l0 = der[pos + 1];
        if l0 < 0x80 {
            (2, usize::from(l0), 1)
        } else {
            let n = usize::from(l0 & 0x7F);
            let len = der[pos + 2..pos + 2 + n]
                .iter()
                .fold(0, |a, b| (a << 8) | usize::from(*b));
            (2 + n, len, n)
        }
    };
    loop {
        let (hdr, len, nbytes) = end_of(der, pos);
        let value_start = pos + hdr;
        if point >= value_start && point < value_start + len {
            // Grow this element's length in place (no form change needed for +3 here).
            let new = len + by;
            if nbytes == 1 && der[pos + 1] < 0x80 {
                der[pos + 1] = u8::try_from(new).unwrap();
            } else {
                for i in 0..nbytes {
                    der[pos + 1 + nbytes - i] = u8::try_from((new >> (8 * i)) & 0xFF).unwrap();
                }
            }
            if der[pos] & 0x20 == 0 {
                return;
            }
            pos = value_start;
            if pos == point {
                return;
            }
            continue;
        }
        pos = value_start + len;
        if pos > point {
            return;
        }
    }
}

#[test]
fn bad_certificates_do_not_stop_a_profile() {
    let der = doctor_auth();
    let p = Profile::builder()
        .certificate_from("garbage", &[0x30, 0x03, 0x02, 0x01])
        .certificate_from("auth", &der)
        .build(&TrustStore::new(), common::at());
    assert_eq!(p.certificate_errors.len(), 1);
    assert_eq!(p.certificate_errors[0].index, 0);
    assert!(
        p.certificate_errors[0].error.contains("truncated"),
        "{:?}",
        p.certificate_errors
    );
    assert_eq!(p.identity_certificate, Some(0));
    assert_eq!(p.certificates[0].index, 1);
    assert_eq!(p.holder.given_name.as_deref(), Some("ALICE"));
    // An empty store: the chain is incomplete, nothing is invented.
    assert_eq!(
        p.certificates[0].chain.status,
        cpx_profile::ChainStatus::Incomplete
    );
}

#[test]
fn trust_store_skips_non_certificates() {
    let mut store = TrustStore::new();
    let report = store.load_dir(vectors().join("pki")).unwrap();
    assert_eq!(report.loaded.len(), 9);
    // The .pem twins are duplicates of the .der files; the private keys are not certificates.
    assert_eq!(report.skipped.len(), 18, "{report:?}");
    assert!(
        report
            .skipped
            .iter()
            .any(|(n, why)| n.ends_with(".key.der") && why.contains("malformed"))
    );
    assert!(matches!(
        store.load_dir("/nonexistent/cpx"),
        Err(ProfileError::Io { .. })
    ));
}
