//! The TLS server every client logs in to: `openssl s_server` on a free 127.0.0.1 port,
//! requiring a client certificate issued by the test PKI's CPS chain, answering `GET /` with a
//! status page that shows the client's certificate (`-www`), and tracing every handshake
//! message it sends and receives (`-trace`), so a test reads what the server itself saw.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

use cpx_testkit::Failed;

use crate::support::{Card, Proc, STEP, read_text, run, temp_dir, utf8, wait_until};

/// A TLS protocol version the server is limited to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tls {
    /// TLS 1.2: the client may sign its CertificateVerify with PKCS#1 v1.5.
    V12,
    /// TLS 1.3: RFC 8446 §4.4.3 allows only RSA-PSS for an RSA CertificateVerify.
    V13,
}

impl Tls {
    /// The s_server / s_client option that allows only this version.
    pub fn flag(self) -> &'static str {
        match self {
            Tls::V12 => "-tls1_2",
            Tls::V13 => "-tls1_3",
        }
    }

    /// `tls12` / `tls13`, for file names.
    pub fn short(self) -> &'static str {
        match self {
            Tls::V12 => "tls12",
            Tls::V13 => "tls13",
        }
    }

    /// How OpenSSL's session printout (the `-www` page, s_client) names it.
    pub fn openssl_name(self) -> &'static str {
        match self {
            Tls::V12 => "TLSv1.2",
            Tls::V13 => "TLSv1.3",
        }
    }
}

/// The CertificateVerify signature scheme a CPS3 uses over TLS 1.2: PKCS#1 v1.5, SHA-256.
pub const PKCS1_SHA256: &str = "rsa_pkcs1_sha256";
/// The one a CPS4 uses over TLS 1.3: RSA-PSS (rsaEncryption key), SHA-256.
pub const PSS_SHA256: &str = "rsa_pss_rsae_sha256";

/// Certificates made for one test in a temporary directory (nothing under test-vectors): a
/// throwaway CA and the server's certificate for 127.0.0.1 that it issued, and the test PKI's
/// chain that issues the cards' authentication certificates.
#[derive(Debug)]
pub struct ServerPki {
    dir: tempfile::TempDir,
    /// The throwaway CA the clients trust for the server.
    pub ca: PathBuf,
    /// The server's certificate and key.
    pub cert: PathBuf,
    /// The server's key (unencrypted).
    pub key: PathBuf,
    /// TEST CPX AC IGC-SANTE FORT PERSONNES and its root, which issue CPS authentication
    /// certificates (test-vectors/pki/README.md): the server's `-CAfile`.
    pub client_cas: PathBuf,
}

impl ServerPki {
    /// Generates the CA and server certificate (P-256 keys: fast to make).
    pub fn new() -> Result<Self, Failed> {
        let dir = temp_dir("pki")?;
        let p = |name: &str| dir.path().join(name);
        let (ca, ca_key, cert, key, csr, ext) = (
            p("tls-ca.pem"),
            p("tls-ca.key"),
            p("server.pem"),
            p("server.key"),
            p("server.csr"),
            p("server.ext"),
        );
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
        run(
            "openssl",
            &[
                &["req", "-x509"][..],
                &ec[..],
                &["-keyout", utf8(&ca_key), "-out", utf8(&ca)],
                &["-subj", "/CN=cpx clients test TLS CA", "-days", "2"],
            ]
            .concat(),
            &[],
        )?;
        run(
            "openssl",
            &[
                &["req"][..],
                &ec[..],
                &[
                    "-keyout",
                    utf8(&key),
                    "-out",
                    utf8(&csr),
                    "-subj",
                    "/CN=127.0.0.1",
                ],
            ]
            .concat(),
            &[],
        )?;
        // Chromium checks the IP SAN and serverAuth; a CA:FALSE leaf under a trusted CA is
        // what every browser accepts.
        std::fs::write(
            &ext,
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=critical,CA:FALSE\n",
        )?;
        run(
            "openssl",
            &[
                "x509",
                "-req",
                "-in",
                utf8(&csr),
                "-CA",
                utf8(&ca),
                "-CAkey",
                utf8(&ca_key),
                "-set_serial",
                "2",
                "-days",
                "2",
                "-extfile",
                utf8(&ext),
                "-out",
                utf8(&cert),
            ],
            &[],
        )?;
        let pki = Path::new(env!("CARGO_MANIFEST_DIR")).join("../test-vectors/pki");
        let mut chain = std::fs::read_to_string(pki.join("aci-fort-personnes.pem"))?;
        chain.push_str(&std::fs::read_to_string(pki.join("acr-fort.pem"))?);
        let client_cas = p("cps-chain.pem");
        std::fs::write(&client_cas, chain)?;
        Ok(Self {
            dir,
            ca,
            cert,
            key,
            client_cas,
        })
    }

    /// The temporary directory (for the clients' own files).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// A running `openssl s_server`; dropping it kills it.
#[derive(Debug)]
pub struct TlsServer {
    proc: Proc,
    log: PathBuf,
    /// The port it accepts on, on 127.0.0.1.
    pub port: u16,
    /// The version it is limited to; for a server that offers both, the one logins are expected
    /// to use (TLS 1.3 from [`TlsServer::start_dual`]: what a client that does not cap its
    /// version gets).
    pub tls: Tls,
    /// Whether it offers TLS 1.2 and 1.3 alike, as most servers do ([`TlsServer::start_dual`]).
    pub dual: bool,
}

impl TlsServer {
    /// Starts the server limited to `tls`, on a port the system picks (`-accept
    /// 127.0.0.1:0`; the server prints it), and waits until it accepts. Several servers may run
    /// with one PKI (each its own port, so its own origin for a browser), each with its own log.
    pub fn start(pki: &ServerPki, tls: Tls) -> Result<Self, Failed> {
        Self::start_with(pki, tls, false)
    }

    /// Starts a server that offers TLS 1.2 and TLS 1.3 (and nothing older), as most servers
    /// do: the client's highest version wins, so a client that does not cap its version gets
    /// TLS 1.3.
    pub fn start_dual(pki: &ServerPki) -> Result<Self, Failed> {
        Self::start_with(pki, Tls::V13, true)
    }

    /// A server offering TLS 1.2 and 1.3 whose logins are expected to use `expect` (a client
    /// capped at 1.2 gets 1.2).
    pub fn start_tls12_and_13(pki: &ServerPki, expect: Tls) -> Result<Self, Failed> {
        Self::start_with(pki, expect, true)
    }

    fn start_with(pki: &ServerPki, tls: Tls, dual: bool) -> Result<Self, Failed> {
        let name = if dual { "tls12-13" } else { tls.short() };
        let versions: &[&str] = if dual {
            &["-no_ssl3", "-no_tls1", "-no_tls1_1"]
        } else {
            &[tls.flag()]
        };
        let (log, out) = (1..100)
            .map(|n| pki.dir().join(format!("s_server-{name}-{n}.log")))
            .find_map(|log| File::create_new(&log).ok().map(|out| (log, out)))
            .ok_or("no free s_server log name")?;
        // stdbuf: the trace goes through stdio, which would otherwise hold it in a buffer
        // until the server exits.
        let mut cmd = Command::new("stdbuf");
        cmd.args(["-oL", "openssl", "s_server", "-accept", "127.0.0.1:0"])
            .args(["-cert", utf8(&pki.cert), "-key", utf8(&pki.key)])
            .args(["-CAfile", utf8(&pki.client_cas)])
            .args(["-Verify", "1", "-verify_return_error", "-www", "-trace"])
            .args(versions)
            .stdin(std::process::Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        let proc = Proc::spawn("openssl s_server", &mut cmd)?;
        let mut port = None;
        wait_until("s_server to accept", cpx_testkit::DEADLINE, || {
            port = read_text(&log)
                .lines()
                .find_map(|l| l.strip_prefix("ACCEPT 127.0.0.1:"))
                .and_then(|p| p.trim().parse().ok());
            Ok(port.is_some())
        })?;
        Ok(Self {
            proc,
            log,
            port: port.ok_or("no port")?,
            tls,
            dual,
        })
    }

    /// `https://127.0.0.1:<port>`.
    pub fn origin(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// Everything the server printed so far.
    pub fn log(&self) -> String {
        read_text(&self.log)
    }

    /// The handshakes the server traced so far.
    pub fn handshakes(&self) -> Vec<Handshake> {
        Handshake::parse(&self.log())
    }

    /// Waits until the server has received `card`'s authentication certificate and answered
    /// on that connection, then checks the version and the client's signature scheme, and
    /// that the server verified the certificate (its `depth=0` line names the card's CN).
    pub fn expect_login(&self, card: &Card, signature: &str) -> Result<Handshake, Failed> {
        self.expect_login_over(card, signature, self.tls)
    }

    /// [`TlsServer::expect_login`] over `tls`, for a server that offers both versions.
    pub fn expect_login_over(&self, card: &Card, signature: &str, tls: Tls) -> Result<Handshake, Failed> {
        let pem = card.auth_pem()?;
        let mut seen = None;
        wait_until(
            &format!("the server to answer {} over {}", card.token, tls.openssl_name()),
            STEP,
            || {
                seen = self
                    .handshakes()
                    .into_iter()
                    .find(|h| h.client_certs.first().is_some_and(|c| c.trim() == pem.trim()) && h.answered);
                Ok(seen.is_some())
            },
        )
        .map_err(|e| format!("{}\nserver log:\n{}", e.message().unwrap_or("?"), self.log()))?;
        let h = seen.ok_or("no handshake")?;
        let cn = card.auth_cn()?;
        let log = self.log();
        assert_eq!(h.version, Some(tls), "{h:?}");
        assert_eq!(h.client_signature.as_deref(), Some(signature), "{h:?}");
        assert!(
            log.lines()
                .any(|l| l.starts_with("depth=0 ") && l.contains(&format!("CN = {cn} "))),
            "the server's verification does not name CN {cn}:\n{log}"
        );
        assert!(!log.contains("verify error"), "{log}");
        Ok(h)
    }

    /// Whether any handshake so far carried a client certificate (for the refusals).
    pub fn any_client_certificate(&self) -> bool {
        self.handshakes().iter().any(|h| !h.client_certs.is_empty())
    }
}

/// What one handshake looked like from the server's side, read from its `-trace` output.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Handshake {
    /// The version the server chose (its ServerHello).
    pub version: Option<Tls>,
    /// The client's Certificate message, leaf first, as PEM.
    pub client_certs: Vec<String>,
    /// The scheme of the client's CertificateVerify (e.g. `rsa_pss_rsae_sha256`).
    pub client_signature: Option<String>,
    /// Whether the server sent application data (the page) on this connection.
    pub answered: bool,
}

impl Handshake {
    /// Splits the trace into records (`Sent Record` / `Received Record` headers); a received
    /// ClientHello starts a new handshake.
    pub fn parse(log: &str) -> Vec<Handshake> {
        let mut out: Vec<Handshake> = Vec::new();
        let mut records: Vec<(bool, Vec<&str>)> = Vec::new();
        for line in log.lines() {
            match line {
                "Sent Record" => records.push((false, Vec::new())),
                "Received Record" => records.push((true, Vec::new())),
                _ => {
                    if let Some((_, lines)) = records.last_mut() {
                        lines.push(line);
                    }
                }
            }
        }
        for (received, lines) in records {
            let message = |name: &str| {
                let head = format!("    {name}, Length=");
                lines.iter().any(|l| l.starts_with(&head))
            };
            // TLS 1.3 wraps everything in ApplicationData; the inner type is the real one.
            let content = lines
                .iter()
                .find_map(|l| l.strip_prefix("  Inner Content Type = "))
                .or_else(|| lines.iter().find_map(|l| l.strip_prefix("  Content Type = ")))
                .unwrap_or("");
            if received && message("ClientHello") {
                out.push(Handshake::default());
            }
            let Some(h) = out.last_mut() else { continue };
            if !received && message("ServerHello") {
                // The supported_versions extension of a TLS 1.3 ServerHello lists 1.3 only;
                // a TLS 1.2 ServerHello has none and says server_version=0x303.
                h.version = if lines.iter().any(|l| l.trim() == "TLS 1.3 (772)") {
                    Some(Tls::V13)
                } else if lines.iter().any(|l| l.trim() == "server_version=0x303 (TLS 1.2)") {
                    Some(Tls::V12)
                } else {
                    None
                };
            }
            if received && message("Certificate") {
                h.client_certs = pem_blocks(&lines);
            }
            if received && message("CertificateVerify") {
                // One record may carry the Certificate too, whose printout has its own
                // "Signature Algorithm:" lines: read the first one after CertificateVerify.
                h.client_signature = lines
                    .iter()
                    .skip_while(|l| !l.starts_with("    CertificateVerify, Length="))
                    .find_map(|l| l.trim().strip_prefix("Signature Algorithm: "))
                    .and_then(|s| s.split_whitespace().next())
                    .map(str::to_string);
            }
            if !received && content.starts_with("ApplicationData") {
                h.answered = true;
            }
        }
        out
    }
}

/// The PEM certificates printed in a record, in order.
fn pem_blocks(lines: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in lines {
        if *line == "-----BEGIN CERTIFICATE-----" {
            current = Some(String::new());
        }
        if let Some(pem) = current.as_mut() {
            pem.push_str(line);
            pem.push('\n');
        }
        if *line == "-----END CERTIFICATE-----" {
            out.extend(current.take());
        }
    }
    out
}
