//! Whole `pkcs11-tool` runs as real processes (issue 15): one process per operation, cold and
//! warm, for cpx and OpenSC; per run the APDUs and bytes the card saw, the process's wall time,
//! the emulator's time inside the exchanges, and the modelled time on a real reader.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use cpx_card::{Card, KeyRole};
use cpx_testkit::{Failed, Recording};
use cpx_transport_virtual::VirtualChannel;
use rsa::{Pkcs1v15Encrypt, RsaPublicKey};

use crate::card_time::CardTime;
use crate::ops::{CardModel, MESSAGE, SECRET, Signing, sha256_digest_info};
use crate::report::{Impl, Phase};
use crate::worker::public_key;

/// Set in pkcs11-tool's environment: the emulated card's test PIN. pkcs11-tool 0.23 reads
/// `--pin env:NAME` from the environment, so the PIN is not in its argv (`/proc/*/cmdline`).
/// It is the emulator's test PIN of a virtual card in any case.
const ENV_PIN: &str = "CPX_BENCH_PIN";
/// The emulated cards' user PIN (docs/emulator.md).
const TEST_PIN: &str = "1234";

/// One kind of `pkcs11-tool` run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolRun {
    /// `-I`: start, `dlopen`, C_Initialize, C_GetInfo, C_Finalize: no card. The start-up
    /// baseline of the module-time table, not a row of the runs table.
    Info,
    ListSlots,
    ListObjects,
    LoginList,
    /// SHA256-RSA-PKCS with the signature key (1 KiB message).
    SignSha256Sig,
    /// RSA-PKCS with the authentication key (SHA-256 DigestInfo).
    SignRsaPkcsAuth,
    /// SHA256-RSA-PKCS-PSS with the authentication key (CPS4: TLS 1.3).
    SignPssAuth,
    /// RSA-PKCS decryption with the authentication key.
    Decrypt,
}

const CPS3_RUNS: &[ToolRun] = &[
    ToolRun::ListSlots,
    ToolRun::ListObjects,
    ToolRun::LoginList,
    ToolRun::SignSha256Sig,
    ToolRun::SignRsaPkcsAuth,
    ToolRun::Decrypt,
];
const CPS4_RUNS: &[ToolRun] = &[
    ToolRun::ListSlots,
    ToolRun::ListObjects,
    ToolRun::LoginList,
    ToolRun::SignSha256Sig,
    ToolRun::SignRsaPkcsAuth,
    ToolRun::SignPssAuth,
    ToolRun::Decrypt,
];

impl ToolRun {
    /// The rows of a card's table.
    pub fn all(card: CardModel) -> &'static [ToolRun] {
        match card {
            CardModel::Cps3 => CPS3_RUNS,
            CardModel::Cps4 => CPS4_RUNS,
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            ToolRun::Info => "`-I` (no card: start-up)",
            ToolRun::ListSlots => "`-L`",
            ToolRun::ListObjects => "`-O`",
            ToolRun::LoginList => "`--login -O`",
            ToolRun::SignSha256Sig => "`--sign -m SHA256-RSA-PKCS`, signature key",
            ToolRun::SignRsaPkcsAuth => "`--sign -m RSA-PKCS`, authentication key",
            ToolRun::SignPssAuth => "`--sign -m SHA256-RSA-PKCS-PSS`, authentication key",
            ToolRun::Decrypt => "`--decrypt -m RSA-PKCS`, authentication key",
        }
    }

    /// The official module's APDUs (cold, warm), measured by the reporter on Cryptolib
    /// 5.2.2 with the same emulated cards (issue 15's table); not re-measurable here.
    pub fn official(self, card: CardModel) -> Option<(u32, u32)> {
        match (card, self) {
            (CardModel::Cps3, ToolRun::ListSlots) => Some((47, 18)),
            (CardModel::Cps3, ToolRun::ListObjects) => Some((63, 12)),
            (CardModel::Cps3, ToolRun::LoginList) => Some((70, 19)),
            (CardModel::Cps3, ToolRun::SignSha256Sig) => Some((61, 32)),
            (CardModel::Cps3, ToolRun::SignRsaPkcsAuth) => Some((59, 30)),
            (CardModel::Cps4, ToolRun::ListSlots) => Some((27, 8)),
            (CardModel::Cps4, ToolRun::LoginList) => Some((46, 9)),
            (CardModel::Cps4, ToolRun::SignSha256Sig) => Some((33, 14)),
            (CardModel::Cps4, ToolRun::SignPssAuth) => Some((42, 14)),
            _ => None,
        }
    }

    fn role(self) -> Option<KeyRole> {
        match self {
            ToolRun::SignSha256Sig => Some(KeyRole::Signature),
            ToolRun::SignRsaPkcsAuth | ToolRun::SignPssAuth | ToolRun::Decrypt => {
                Some(KeyRole::Authentication)
            }
            _ => None,
        }
    }

    /// The signature this run makes, checked with [`Signing::verify`].
    fn signing(self) -> Option<Signing> {
        match self {
            ToolRun::SignSha256Sig => Some(Signing::Sha256Sig),
            ToolRun::SignRsaPkcsAuth => Some(Signing::RsaPkcsAuth),
            ToolRun::SignPssAuth => Some(Signing::Sha256PssAuth),
            _ => None,
        }
    }

    /// pkcs11-tool's arguments after `--module`.
    fn args(self, keys: &Keys, files: &Files) -> Vec<OsString> {
        let login = ["--login", "--pin", &format!("env:{ENV_PIN}")].map(OsString::from);
        let mut a: Vec<OsString> = Vec::new();
        let key = |role| keys.selector(role);
        match self {
            ToolRun::Info => a.push("-I".into()),
            ToolRun::ListSlots => a.push("-L".into()),
            ToolRun::ListObjects => a.push("-O".into()),
            ToolRun::LoginList => {
                a.extend(login);
                a.push("-O".into());
            }
            ToolRun::SignSha256Sig | ToolRun::SignRsaPkcsAuth | ToolRun::SignPssAuth => {
                a.extend(login);
                let (mech, input) = match self {
                    ToolRun::SignSha256Sig => ("SHA256-RSA-PKCS", &files.message),
                    ToolRun::SignRsaPkcsAuth => ("RSA-PKCS", &files.digest_info),
                    _ => ("SHA256-RSA-PKCS-PSS", &files.message),
                };
                a.extend(["--sign", "-m", mech].map(OsString::from));
                if self == ToolRun::SignPssAuth {
                    a.extend(["--mgf", "MGF1-SHA256", "--salt-len", "32"].map(OsString::from));
                }
                a.extend(key(self.role().unwrap_or(KeyRole::Signature)));
                a.extend([
                    "-i".into(),
                    input.into(),
                    "-o".into(),
                    files.output.clone().into(),
                ]);
            }
            ToolRun::Decrypt => {
                a.extend(login);
                a.extend(["--decrypt", "-m", "RSA-PKCS"].map(OsString::from));
                a.extend(key(KeyRole::Authentication));
                a.extend([
                    "-i".into(),
                    files.cryptogram.clone().into(),
                    "-o".into(),
                    files.output.clone().into(),
                ]);
            }
        }
        a
    }

    /// Whether the run did its job: a signature that verifies, the right plaintext, the
    /// expected objects listed. A benchmark of wrong answers is worthless.
    fn check(self, keys: &Keys, files: &Files, stdout: &str) -> Result<(), String> {
        let listed = |what: &str| {
            if stdout.contains(what) {
                Ok(())
            } else {
                Err(format!("no {what:?} in the output"))
            }
        };
        match self {
            ToolRun::Info => listed("Cryptoki version"),
            ToolRun::ListSlots => listed("token label"),
            ToolRun::ListObjects => listed("Certificate Object"),
            ToolRun::LoginList => listed("Private Key Object"),
            ToolRun::Decrypt => {
                let plain = std::fs::read(&files.output).map_err(|e| e.to_string())?;
                if plain == SECRET {
                    Ok(())
                } else {
                    Err("wrong plaintext".into())
                }
            }
            _ => {
                let sig = self.signing().ok_or("no signature")?;
                let signature = std::fs::read(&files.output).map_err(|e| e.to_string())?;
                sig.verify(keys.public(sig.role())?, &signature)
            }
        }
    }
}

/// The input and output files of the runs.
pub struct Files {
    message: PathBuf,
    digest_info: PathBuf,
    cryptogram: PathBuf,
    output: PathBuf,
}

/// The card's keys: how pkcs11-tool selects each (CKA_ID, the same for every module: the
/// PrKDF's identifier) and its certificate's public key, read once through the card layer.
pub struct Keys {
    keys: Vec<(KeyRole, Vec<u8>, RsaPublicKey)>,
}

impl Keys {
    /// The keys of the emulated image of `card`, read in-process (no module involved).
    pub fn read(card: CardModel) -> Result<Keys, String> {
        let image = cpx_emulator::builtin_image(card.stem())
            .ok_or("no image")?
            .map_err(|e| e.to_string())?;
        let (channel, _control) = VirtualChannel::new("keys", cpx_emulator::card_from_image(&image));
        let e = |e: cpx_card::CardError| e.to_string();
        let mut c = Card::open(Box::new(channel)).map_err(e)?;
        let mut certs = Vec::new();
        for info in c.certificate_infos().map_err(e)? {
            certs.push(c.read_certificate(&info).map_err(e)?);
        }
        let mut keys = Vec::new();
        for k in c.private_keys().map_err(e)? {
            let cert = certs.iter().find(|x| x.id == k.id).ok_or("no certificate")?;
            keys.push((k.role, k.id.clone(), public_key(&cert.der)?));
        }
        Ok(Keys { keys })
    }

    fn public(&self, role: KeyRole) -> Result<&RsaPublicKey, String> {
        self.keys
            .iter()
            .find(|k| k.0 == role)
            .map(|k| &k.2)
            .ok_or_else(|| format!("no {role:?} key"))
    }

    fn selector(&self, role: KeyRole) -> Vec<OsString> {
        let id = self
            .keys
            .iter()
            .find(|k| k.0 == role)
            .map_or(Vec::new(), |k| k.1.clone());
        let hex: String = id.iter().map(|b| format!("{b:02X}")).collect();
        vec!["--id".into(), hex.into()]
    }

    /// The run's input files in `dir`.
    pub fn files(&self, dir: &Path) -> Result<Files, Failed> {
        let f = Files {
            message: dir.join("message"),
            digest_info: dir.join("digest-info"),
            cryptogram: dir.join("cryptogram"),
            output: dir.join("output"),
        };
        std::fs::write(&f.message, MESSAGE)?;
        std::fs::write(&f.digest_info, sha256_digest_info())?;
        let cryptogram =
            self.public(KeyRole::Authentication)?
                .encrypt(&mut rand_core::OsRng, Pkcs1v15Encrypt, SECRET)?;
        std::fs::write(&f.cryptogram, cryptogram)?;
        Ok(f)
    }
}

/// One run's figures.
#[derive(Debug, Clone, Copy)]
pub struct RunSample {
    pub apdus: usize,
    /// Commands + responses, status words included.
    pub bytes: usize,
    /// The process, spawn to exit, as the parent sees it.
    pub wall: Duration,
    /// The emulator's own time inside the exchanges.
    pub card: Duration,
    /// The exchanges' time on a modelled real reader (`cpx_emulator::timing::ReaderClock`).
    pub modelled: Option<Duration>,
    /// Wall time of a `pkcs11-tool -I` with the same module run right after this one (warm cpx
    /// runs): the start-up this run's *beyond* is computed against, under the same load.
    pub startup: Option<Duration>,
}

/// A run's outcome in one process.
#[derive(Debug, Clone)]
pub struct ToolRecord {
    pub card: CardModel,
    pub imp: Impl,
    pub phase: Phase,
    pub run: ToolRun,
    pub result: Result<RunSample, String>,
}

/// What the runs need of the card under test.
pub struct Bench<'a> {
    pub card: CardModel,
    pub wire: &'a Recording,
    pub card_time: &'a CardTime,
    pub atr: Vec<u8>,
    pub keys: &'a Keys,
    pub files: &'a Files,
}

impl Bench<'_> {
    /// One `pkcs11-tool` process with `module` and the environment `env`.
    pub fn run(
        &self,
        imp: Impl,
        module: &Path,
        env: &[(String, String)],
        run: ToolRun,
    ) -> Result<RunSample, String> {
        let _ = std::fs::remove_file(&self.files.output);
        self.wire.take();
        self.card_time.take();
        let mut cmd = Command::new("pkcs11-tool");
        cmd.arg("--module")
            .arg(module)
            .args(run.args(self.keys, self.files))
            .env(ENV_PIN, TEST_PIN)
            .env_remove("XDG_CACHE_HOME")
            .envs(env.iter().map(|(k, v)| (k, v)));
        let t = Instant::now();
        let out = cmd
            .output()
            .map_err(|e| format!("pkcs11-tool: {e} (install opensc)"))?;
        let wall = t.elapsed();
        let wire = self.wire.take();
        let card = self.card_time.take().iter().sum();
        let stdout = String::from_utf8_lossy(&out.stdout);
        crate::trace(self.card, imp, run.title(), &wire);
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let mut lines = stderr.lines().chain(stdout.lines());
            let why = lines
                .clone()
                .find(|l| l.to_lowercase().contains("error"))
                .or_else(|| lines.next_back())
                .unwrap_or("")
                .trim();
            return Err(format!("{} ({why})", out.status));
        }
        run.check(self.keys, self.files, &stdout)?;
        Ok(RunSample {
            apdus: wire.len(),
            bytes: wire.iter().map(|(c, r)| c.len() + r.len()).sum(),
            wall,
            card,
            modelled: crate::modelled::exchanges(&self.atr, &wire),
            startup: None,
        })
    }
}
