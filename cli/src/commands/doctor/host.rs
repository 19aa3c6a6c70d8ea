//! Where the workstation checks look: system paths (under `CPX_DOCTOR_ROOT` in tests) and the
//! user's directories.

use std::path::{Path, PathBuf};

/// Test hook: read system paths under this directory instead of `/` (see the module docs).
pub(super) const ENV_ROOT: &str = "CPX_DOCTOR_ROOT";

/// The file name of our PKCS#11 module.
pub(super) const LIBRARY: &str = "libcpx_pkcs11.so";

/// The machine and the user, as the checks see them.
#[derive(Debug, Clone)]
pub(super) struct Host {
    root: PathBuf,
    /// `$HOME`; `None` when unset (then the per-user checks are skipped).
    pub(super) home: Option<PathBuf>,
    /// `$XDG_CONFIG_HOME`, else `~/.config`.
    pub(super) config_home: Option<PathBuf>,
    /// `$XDG_DATA_HOME`, else `~/.local/share`.
    pub(super) data_home: Option<PathBuf>,
}

impl Host {
    pub(super) fn from_env() -> Host {
        let var = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
        };
        let home = var("HOME");
        Host {
            root: var(ENV_ROOT).unwrap_or_else(|| PathBuf::from("/")),
            config_home: var("XDG_CONFIG_HOME").or_else(|| home.as_ref().map(|h| h.join(".config"))),
            data_home: var("XDG_DATA_HOME").or_else(|| home.as_ref().map(|h| h.join(".local/share"))),
            home,
        }
    }

    /// The system path `abs` (e.g. `/proc/modules`) on this host.
    pub(super) fn sys(&self, abs: impl AsRef<Path>) -> PathBuf {
        let abs = abs.as_ref();
        self.root.join(abs.strip_prefix("/").unwrap_or(abs))
    }
}

/// Debian's multiarch triplet of this build, e.g. `x86_64-linux-gnu` (where packages put
/// libraries: `/usr/lib/<triplet>/`).
pub(super) fn multiarch() -> &'static str {
    match std::env::consts::ARCH {
        "x86" => "i386-linux-gnu",
        "arm" => "arm-linux-gnueabihf",
        "aarch64" => "aarch64-linux-gnu",
        "riscv64" => "riscv64-linux-gnu",
        "powerpc64" if cfg!(target_endian = "little") => "powerpc64le-linux-gnu",
        "s390x" => "s390x-linux-gnu",
        "loongarch64" => "loongarch64-linux-gnu",
        _ => "x86_64-linux-gnu",
    }
}

/// Whether `path` names our module (`libcpx_pkcs11.so`, possibly versioned), by file name.
pub(super) fn is_our_library(path: &str) -> bool {
    Path::new(path.trim())
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with(LIBRARY))
}

/// `sh` quoting for a path in a fix command, only when needed.
pub(super) fn quoted(path: &Path) -> String {
    let s = path.display().to_string();
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+:@%,=".contains(c))
    {
        s
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_library_by_file_name() {
        assert!(is_our_library(
            "/usr/lib/x86_64-linux-gnu/pkcs11/libcpx_pkcs11.so"
        ));
        assert!(is_our_library("libcpx_pkcs11.so"));
        assert!(is_our_library(" /opt/cpx/libcpx_pkcs11.so.0 "));
        assert!(!is_our_library(
            "/usr/lib/x86_64-linux-gnu/pkcs11/opensc-pkcs11.so"
        ));
        assert!(!is_our_library("/usr/lib/libcpx_pkcs11.so/other.so"));
        assert!(!is_our_library(""));
    }

    #[test]
    fn quoting() {
        assert_eq!(quoted(Path::new("/home/a/.pki/nssdb")), "/home/a/.pki/nssdb");
        assert_eq!(quoted(Path::new("/home/a b/x")), "'/home/a b/x'");
        assert_eq!(quoted(Path::new("/x/it's")), r"'/x/it'\''s'");
    }
}
