//! `cpx sign`: a raw RSA signature of a file, verifiable with
//! `openssl dgst -sha256 -verify pub.pem -signature FILE.sig FILE` (add
//! `-sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32` for `--pss`).

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use cpx_card::{HashAlg, KeyRole, Mechanism};

use crate::error::CliError;
use crate::output::{self, Format, outln};
use crate::secrets::{SecretArgs, Secrets};
use crate::session::{ReaderArg, Session};
use crate::view::sign::Signed;

/// JSON schema version of `cpx sign --json` (docs/cli-json.md).
const VERSION: u32 = 1;

/// Which key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum KeyArg {
    /// The authentication key (the technical key on a contactless CPS3).
    Auth,
    /// The signature (non-repudiation) key.
    Sign,
}

/// Which hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum HashArg {
    Sha256,
    Sha1,
}

/// Arguments of `cpx sign`.
#[derive(Debug, Args)]
pub(crate) struct SignArgs {
    #[command(flatten)]
    reader: ReaderArg,
    /// The key to sign with.
    #[arg(long)]
    key: KeyArg,
    /// The hash of the file.
    #[arg(long, default_value = "sha256")]
    hash: HashArg,
    /// RSA-PSS (MGF1 with the same hash, salt length = hash length); CPS4 only. Default: PKCS#1 v1.5.
    #[arg(long)]
    pss: bool,
    /// The file to sign.
    file: PathBuf,
    /// Where to write the signature (raw bytes, modulus length); default FILE.sig.
    #[arg(short = 'o', long = "output", value_name = "SIG")]
    output: Option<PathBuf>,
    /// Secrets: the PIN, one line.
    #[command(flatten)]
    secrets: SecretArgs,
}

pub(crate) fn run(args: SignArgs, format: Format) -> Result<(), CliError> {
    let data = std::fs::read(&args.file)
        .map_err(|e| CliError::Io(format!("cannot read {}: {e}", args.file.display())))?;
    let output = args.output.clone().unwrap_or_else(|| {
        let mut name = args.file.clone().into_os_string();
        name.push(".sig");
        PathBuf::from(name)
    });
    let (hash, hash_name) = match args.hash {
        HashArg::Sha256 => (HashAlg::Sha256, "sha256"),
        HashArg::Sha1 => (HashAlg::Sha1, "sha1"),
    };
    let mut secrets = Secrets::new(&args.secrets, "the PIN")?;
    let mut session = Session::open(&args.reader)?;
    if args.pss && !session.card.generation().capabilities().pss {
        return Err(CliError::Card(cpx_card::CardError::Unsupported {
            operation: "RSA-PSS",
            reason: "only a CPS4 signs with PSS; this card does not (use PKCS#1 v1.5)",
        }));
    }
    session.login(&mut secrets)?;
    let key = match args.key {
        KeyArg::Auth => KeyRole::Authentication,
        KeyArg::Sign => KeyRole::Signature,
    };
    let mechanism = if args.pss {
        Mechanism::Pss(hash)
    } else {
        Mechanism::Pkcs1(hash)
    };
    let signature = session.card.sign(key, mechanism, &data)?;
    std::fs::write(&output, &signature)
        .map_err(|e| CliError::Io(format!("cannot write {}: {e}", output.display())))?;
    let report = Signed {
        reader: session.reader(),
        key: match args.key {
            KeyArg::Auth => "auth",
            KeyArg::Sign => "sign",
        },
        padding: if args.pss { "pss" } else { "pkcs1v15" },
        hash: hash_name,
        salt_length: args.pss.then(|| hash.digest_len()),
        input: args.file.display().to_string(),
        signature_file: output.display().to_string(),
        signature_length: signature.len(),
    };
    match format {
        Format::Json => output::print_json("sign", VERSION, &report),
        Format::Text => {
            outln!(
                "Signed {} with the {} key ({}, {}): {} ({} bytes)",
                report.input,
                report.key,
                if args.pss { "RSA-PSS" } else { "RSA PKCS#1 v1.5" },
                hash_name.to_uppercase(),
                report.signature_file,
                report.signature_length
            );
            let pss = match report.salt_length {
                Some(n) => format!(" -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:{n}"),
                None => String::new(),
            };
            outln!(
                "Check: cpx certs export --role {} -o cert.pem && openssl x509 -in cert.pem -pubkey -noout > pub.pem && openssl dgst -{hash_name} -verify pub.pem{pss} -signature {} {}",
                report.key,
                report.signature_file,
                report.input
            );
            Ok(())
        }
    }
}
