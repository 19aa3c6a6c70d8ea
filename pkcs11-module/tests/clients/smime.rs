//! S/MIME (CMS signed-data, what MSSanté mail carries): NSS's `cmsutil` signs with the card's
//! signature key through the module, and both NSS (`cmsutil -D`) and OpenSSL (`openssl cms
//! -verify`) verify it against the test PKI; OpenSSL (`openssl cms -sign`, pkcs11-provider and
//! the pkcs11 engine) signs and NSS verifies. The commands are those of docs/clients.md, section
//! *S/MIME*.
//!
//! `cmsutil -S` needs `-Y NONE` with a CPS: by default it adds an S/MIME encryption-key
//! preference naming a certificate fit for e-mail encryption, the signer's own if it is fit, else
//! another of the same nickname; a CPS carries none (its signature certificate has keyUsage
//! digitalSignature + nonRepudiation, its authentication certificate the EKU clientAuth +
//! smartcard logon only; docs/data-and-certs.md §2.5). NSS fails with
//! SEC_ERROR_INADEQUATE_KEY_USAGE before any signature: not a module matter.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use cpx_testkit::Failed;

use crate::openssl::{provider_conf, read_cert};
use crate::support::{CPS3, CPS4, Card, PIN, SIGN_CERT_LABEL, run, run_status, temp_dir, utf8};

/// The message every test signs.
const MESSAGE: &str = "Ordonnance du 7 décembre 2026 : amoxicilline 1 g, 2 fois par jour.\n";

/// An NSS database holding the module, the test PKI's FORT root trusted for e-mail (`,C,`) and
/// its intermediate, a PIN file, the message and the CA chain as one PEM file for OpenSSL.
struct SmimeDir {
    dir: tempfile::TempDir,
    /// `sql:<dir>`.
    db: String,
    pin: PathBuf,
    message: PathBuf,
    chain: PathBuf,
}

impl SmimeDir {
    fn new(so: &Path) -> Result<Self, Failed> {
        let dir = temp_dir("smime")?;
        let p = |n: &str| dir.path().join(n);
        let db = format!("sql:{}", utf8(dir.path()));
        run("certutil", &["-N", "-d", &db, "--empty-password"], &[])?;
        // -force: no "press Enter" prompt (stdin is not a terminal).
        run(
            "modutil",
            &["-dbdir", &db, "-add", "cpx", "-libfile", utf8(so), "-force"],
            &[],
        )?;
        let pki = Path::new(env!("CARGO_MANIFEST_DIR")).join("../test-vectors/pki");
        let (root, aci) = (pki.join("acr-fort.pem"), pki.join("aci-fort-personnes.pem"));
        let add = |nick: &str, trust: &str, file: &Path| {
            run(
                "certutil",
                &["-A", "-d", &db, "-n", nick, "-t", trust, "-i", utf8(file)],
                &[],
            )
        };
        add("TEST CPX AC RACINE IGC-SANTE FORT", ",C,", &root)?;
        add("TEST CPX AC IGC-SANTE FORT PERSONNES", ",,", &aci)?;
        let pin = p("pin.txt");
        std::fs::write(&pin, format!("{PIN}\n"))?;
        std::fs::set_permissions(&pin, std::fs::Permissions::from_mode(0o600))?;
        let message = p("message.txt");
        std::fs::write(&message, MESSAGE)?;
        let chain = p("igc-sante-fort.pem");
        let mut text = std::fs::read_to_string(&aci)?;
        text.push_str(&std::fs::read_to_string(&root)?);
        std::fs::write(&chain, text)?;
        Ok(Self {
            dir,
            db,
            pin,
            message,
            chain,
        })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `cmsutil -S` with the card's signature certificate (nickname `<token>:<label>`);
    /// `extra` are more options. Whether it succeeded, and its output.
    fn cmsutil_sign(&self, card: &Card, extra: &[&str], out: &Path) -> Result<(bool, String), Failed> {
        let nick = format!("{}:{SIGN_CERT_LABEL}", card.token);
        let args = [
            &["-S", "-d", &self.db, "-f", utf8(&self.pin), "-N", &nick][..],
            extra,
            &["-i", utf8(&self.message), "-o", utf8(out)],
        ]
        .concat();
        run_status("cmsutil", &args, &[])
    }

    /// Both verifiers accept `p7m` (DER), give back the message, and name `card`'s signature
    /// certificate as the signer; the signature is PKCS#1 v1.5 over SHA-256 (what a CPS3 can
    /// make; docs/card-spec.md §4.1). Then a copy with one content bit flipped is refused by both.
    fn verify_both(&self, card: &Card, p7m: &Path) -> Result<(), Failed> {
        let name = p7m.file_stem().and_then(|s| s.to_str()).unwrap_or("m");
        let (from_nss, from_openssl, signer) = (
            self.path(&format!("{name}.nss.txt")),
            self.path(&format!("{name}.openssl.txt")),
            self.path(&format!("{name}.signer.pem")),
        );
        run(
            "cmsutil",
            &["-D", "-d", &self.db, "-i", utf8(p7m), "-o", utf8(&from_nss)],
            &[],
        )?;
        assert_eq!(std::fs::read_to_string(&from_nss)?, MESSAGE, "cmsutil -D");
        // Checked for S/MIME signing: the signature certificate has no EKU, so it is fit.
        let verified = run(
            "openssl",
            &[
                "cms",
                "-verify",
                "-inform",
                "der",
                "-in",
                utf8(p7m),
                "-CAfile",
                utf8(&self.chain),
                "-purpose",
                "smimesign",
                "-signer",
                utf8(&signer),
                "-out",
                utf8(&from_openssl),
            ],
            &[],
        )?;
        assert!(verified.contains("Verification successful"), "{verified}");
        assert_eq!(std::fs::read_to_string(&from_openssl)?, MESSAGE, "openssl cms");
        let expected = run(
            "openssl",
            &["x509", "-inform", "der", "-in", utf8(&card.sign_der())],
            &[],
        )?;
        let got = run("openssl", &["x509", "-in", utf8(&signer)], &[])?;
        assert_eq!(
            got, expected,
            "the signer is not the card's signature certificate"
        );
        let printed = run(
            "openssl",
            &["cms", "-cmsout", "-print", "-inform", "der", "-in", utf8(p7m)],
            &[],
        )?;
        // The line after `digestAlgorithm:` / `signatureAlgorithm:` in the SignerInfo.
        let after = |field: &str| {
            printed
                .lines()
                .skip_while(|l| l.trim() != format!("{field}:"))
                .nth(1)
                .map(str::trim)
                .unwrap_or("")
                .to_string()
        };
        assert!(
            after("digestAlgorithm").starts_with("algorithm: sha256 "),
            "{printed}"
        );
        assert!(
            after("signatureAlgorithm").starts_with("algorithm: rsaEncryption ")
                || after("signatureAlgorithm").starts_with("algorithm: sha256WithRSAEncryption "),
            "{printed}"
        );

        let mut bytes = std::fs::read(p7m)?;
        let at = bytes
            .windows(10)
            .position(|w| w == b"Ordonnance")
            .ok_or("the signed message does not carry its content")?;
        bytes[at] ^= 1;
        let tampered = self.path(&format!("{name}.tampered.p7m"));
        std::fs::write(&tampered, bytes)?;
        let (ok, out) = run_status("cmsutil", &["-D", "-d", &self.db, "-i", utf8(&tampered)], &[])?;
        // BadSignature, or DigestMismatch where OpenSSL signed a messageDigest attribute.
        assert!(
            !ok && out.contains("SEC_ERROR_PKCS7_BAD_SIGNATURE"),
            "cmsutil -D on a tampered message:\n{out}"
        );
        let (ok, out) = run_status(
            "openssl",
            &[
                "cms",
                "-verify",
                "-inform",
                "der",
                "-in",
                utf8(&tampered),
                "-CAfile",
                utf8(&self.chain),
                "-out",
                "/dev/null",
            ],
            &[],
        )?;
        assert!(
            !ok && out.contains("Verification failure"),
            "openssl cms on a tampered message:\n{out}"
        );
        Ok(())
    }
}

/// NSS `cmsutil -S`: without `-Y NONE` it stops on the missing encryption certificate, with it
/// it signs with the card; NSS and OpenSSL verify.
pub fn nss_signs(so: &Path, card: Card) -> Result<(), Failed> {
    let d = SmimeDir::new(so)?;
    let refused = d.path("default.p7m");
    let (ok, out) = d.cmsutil_sign(&card, &[], &refused)?;
    assert!(
        !ok && out.contains("SEC_ERROR_INADEQUATE_KEY_USAGE"),
        "cmsutil -S without -Y: expected NSS to find no e-mail encryption certificate:\n{out}"
    );
    let signed = d.path(&format!("nss-{}.p7m", card.generation()));
    let (ok, out) = d.cmsutil_sign(&card, &["-Y", "NONE"], &signed)?;
    assert!(ok, "cmsutil -S -Y NONE failed:\n{out}");
    d.verify_both(&card, &signed)
}

/// `openssl cms -sign` with the signature key as a `pkcs11:` URI, through pkcs11-provider
/// (OPENSSL_CONF) and through the pkcs11 engine, each with the PIN as `?pin-value=` and as
/// `;pin-value=` (both forms work with both); NSS and OpenSSL verify every message.
pub fn openssl_signs(so: &Path) -> Result<(), Failed> {
    let d = SmimeDir::new(so)?;
    let conf = provider_conf(so, d.dir.path())?;
    for card in [CPS3, CPS4] {
        let der = d.path(&format!("{}-sign.der", card.generation()));
        read_cert(so, &card, SIGN_CERT_LABEL, &der)?;
        assert_eq!(
            std::fs::read(&der)?,
            std::fs::read(card.sign_der())?,
            "{}",
            card.token
        );
        let pem = d.path(&format!("{}-sign.pem", card.generation()));
        run(
            "openssl",
            &["x509", "-inform", "der", "-in", utf8(&der), "-out", utf8(&pem)],
            &[],
        )?;
        let key = format!("pkcs11:token={};object=CPS_PRIV_SIG;type=private", card.token);
        for (via, pin_sep) in [
            ("provider", '?'),
            ("provider", ';'),
            ("engine", ';'),
            ("engine", '?'),
        ] {
            let uri = format!("{key}{pin_sep}pin-value={PIN}");
            let p7m = d.path(&format!(
                "openssl-{via}-{}-{}.p7m",
                card.generation(),
                if pin_sep == '?' { "query" } else { "path" }
            ));
            let engine: &[&str] = if via == "engine" {
                &["-engine", "pkcs11", "-keyform", "engine"]
            } else {
                &[]
            };
            let args = [
                &["cms", "-sign", "-nodetach", "-binary", "-md", "sha256"][..],
                engine,
                &["-signer", utf8(&pem), "-inkey", &uri],
                &["-in", utf8(&d.message), "-outform", "DER", "-out", utf8(&p7m)],
            ]
            .concat();
            let env = if via == "engine" {
                [("PKCS11_MODULE_PATH", utf8(so))]
            } else {
                [("OPENSSL_CONF", utf8(&conf))]
            };
            run("openssl", &args, &env)
                .map_err(|e| format!("{via}, PIN after '{pin_sep}': {}", e.message().unwrap_or("?")))?;
            d.verify_both(&card, &p7m)?;
        }
    }
    Ok(())
}
