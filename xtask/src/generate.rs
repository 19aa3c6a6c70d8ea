//! `gen-test-pki`: builds every file in memory, then writes them under the output directory.
//!
//! Layout (relative to `test-vectors/`):
//! - `pki/<ca>.der`, `pki/<ca>.pem`, `pki/<ca>.TEST-ONLY.key.der` for the 3 roots and 6
//!   intermediates;
//! - `cards/<stem>/{auth,sign}.der` + `{auth,sign}.TEST-ONLY.key.der` (or `tech.*` for the
//!   contactless card), `cards/<stem>/holder.toml` and the emulator image `cards/<stem>/card.toml`.

use std::fs;
use std::path::{Path, PathBuf};

use x509_cert::der::pem::LineEnding;
use x509_cert::der::{Encode, EncodePem};

use crate::Result;
use crate::cards::{CARDS, Card};
use crate::holder;
use crate::images;
use crate::pki::{Hierarchy, Level};
use crate::profile;

/// One generated file: path relative to the output directory, and contents.
pub(crate) type GeneratedFile = (PathBuf, Vec<u8>);

/// Builds the files of the CAs of `levels` and of `cards` (whose levels must be included).
pub(crate) fn build(levels: &[Level], cards: &[Card]) -> Result<Vec<GeneratedFile>> {
    let pki = Hierarchy::generate_levels(levels)?;
    let mut files = Vec::new();
    for ca in &pki.cas {
        let dir = Path::new("pki");
        files.push((dir.join(format!("{}.der", ca.file_stem)), ca.cert.to_der()?));
        files.push((
            dir.join(format!("{}.pem", ca.file_stem)),
            ca.cert.to_pem(LineEnding::LF)?.into_bytes(),
        ));
        files.push((
            dir.join(format!("{}.TEST-ONLY.key.der", ca.file_stem)),
            ca.key.pkcs8_der()?,
        ));
    }
    for card in cards {
        let dir = Path::new("cards").join(card.stem);
        let mut certs = Vec::new();
        for &role in card.roles {
            let (key, cert) = profile::issue(&pki, card, role)?;
            files.push((dir.join(format!("{}.der", role.stem())), cert.to_der()?));
            files.push((
                dir.join(format!("{}.TEST-ONLY.key.der", role.stem())),
                key.pkcs8_der()?,
            ));
            certs.push((role, cert));
        }
        let refs: Vec<_> = certs.iter().map(|(role, cert)| (*role, cert)).collect();
        let toml = holder::render(card, profile::issuer(&pki, card)?, &refs)?;
        files.push((dir.join("holder.toml"), toml.into_bytes()));
        files.push((dir.join("card.toml"), images::render(card)?.into_bytes()));
    }
    Ok(files)
}

/// Writes `files` under `out`, creating directories; files whose contents are unchanged are left
/// alone so their modification times stay put.
pub(crate) fn write(out: &Path, files: &[GeneratedFile]) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for (rel, contents) in files {
        let path = out.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|e| format!("creating {}: {e}", parent.display()))?;
        }
        if fs::read(&path).ok().as_deref() != Some(contents.as_slice()) {
            fs::write(&path, contents).map_err(|e| format!("writing {}: {e}", path.display()))?;
        }
        written.push(path);
    }
    Ok(written)
}

/// Regenerates the whole test PKI and every card (certificates, keys, holder.toml, card.toml)
/// under `out`.
pub(crate) fn generate(out: &Path) -> Result<Vec<PathBuf>> {
    write(out, &build(&Level::ALL, CARDS)?)
}
