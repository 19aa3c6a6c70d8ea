//! The `p11-kit` check: is the module registered for p11-kit users (GnuTLS, p11tool, GLib,
//! NSS through p11-kit-proxy)? Follows p11-kit 0.24's rules (pkcs11.conf(5), and what
//! `P11_KIT_DEBUG=conf p11-kit list-modules` shows): module files `*.module` in the user
//! directory `~/.config/pkcs11/modules`, then `/etc/pkcs11/modules`, then
//! `/usr/share/p11-kit/modules`; the user directory is skipped for a process running as root,
//! with `P11_KIT_NO_USER_CONFIG` set, or with `user-config: none`; `user-config: only` skips
//! the system directories.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::Check;
use super::host::{Host, LIBRARY, is_our_library, multiarch, quoted};

/// The value of `key:` in a p11-kit configuration or module file.
pub(super) fn conf_value<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        (k.trim() == key).then(|| v.trim())
    })
}

/// Why p11-kit would not read the user's module directory, if it would not.
fn user_dir_ignored(host: &Host) -> Option<String> {
    // /proc/self belongs to the process's effective uid.
    if std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0) {
        return Some("p11-kit reads no user configuration in a process running as root".into());
    }
    if std::env::var_os("P11_KIT_NO_USER_CONFIG").is_some() {
        return Some("P11_KIT_NO_USER_CONFIG is set".into());
    }
    let system = std::fs::read_to_string(host.sys("/etc/pkcs11/pkcs11.conf")).unwrap_or_default();
    let mode = conf_value(&system, "user-config").unwrap_or("merge").to_owned();
    let user = host
        .config_home
        .as_ref()
        .and_then(|c| std::fs::read_to_string(c.join("pkcs11/pkcs11.conf")).ok())
        .unwrap_or_default();
    if mode == "none" || conf_value(&user, "user-config") == Some("none") {
        return Some("user-config: none in pkcs11.conf".into());
    }
    None
}

/// `user-config: only` (or `override`): p11-kit reads the user directory alone.
fn user_only(host: &Host) -> bool {
    let user = host
        .config_home
        .as_ref()
        .and_then(|c| std::fs::read_to_string(c.join("pkcs11/pkcs11.conf")).ok())
        .unwrap_or_default();
    let system = std::fs::read_to_string(host.sys("/etc/pkcs11/pkcs11.conf")).unwrap_or_default();
    let mode = conf_value(&user, "user-config").or_else(|| conf_value(&system, "user-config"));
    matches!(mode, Some("only" | "override"))
}

/// A module file naming our library: (file, `module:` value, the library it resolves to).
struct Registration {
    file: PathBuf,
    module: String,
    target: PathBuf,
}

/// The `*.module` files of `dir`, sorted by name (none when it cannot be read).
fn module_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "module"))
        .collect();
    files.sort();
    files
}

fn registrations(host: &Host, dir: &Path) -> Vec<Registration> {
    module_files(dir)
        .into_iter()
        .filter_map(|file| {
            let text = std::fs::read_to_string(&file).ok()?;
            let module = conf_value(&text, "module")
                .filter(|m| is_our_library(m))?
                .to_owned();
            // A bare name is looked up in p11-kit's module directory.
            let target = if Path::new(&module).is_absolute() {
                PathBuf::from(&module)
            } else {
                host.sys(format!("/usr/lib/{}/pkcs11/{module}", multiarch()))
            };
            Some(Registration { file, module, target })
        })
        .collect()
}

/// The user's module directory (`~/.config/pkcs11/modules`), if there is a home.
pub(super) fn user_modules_dir(host: &Host) -> Option<PathBuf> {
    host.config_home.as_ref().map(|c| c.join("pkcs11/modules"))
}

/// The module directories p11-kit reads here, highest priority first, and why it skips the
/// user's directory when it does.
pub(super) fn module_dirs(host: &Host) -> (Vec<PathBuf>, Option<String>) {
    let ignored = user_dir_ignored(host);
    let mut dirs: Vec<PathBuf> = Vec::new();
    if ignored.is_none()
        && let Some(d) = user_modules_dir(host)
    {
        dirs.push(d);
    }
    if !user_only(host) || ignored.is_some() {
        dirs.push(host.sys("/etc/pkcs11/modules"));
        dirs.push(host.sys("/usr/share/p11-kit/modules"));
    }
    (dirs, ignored)
}

/// A module as p11-kit configures it: every file of that name (the file name without
/// `.module`), highest priority first.
pub(super) struct ModuleConfig {
    pub(super) name: String,
    pub(super) files: Vec<(PathBuf, String)>,
}

impl ModuleConfig {
    /// A setting as p11-kit sees it: a key in a higher file overrides the same key below
    /// (`/etc/pkcs11/modules/x.module` holding only `enable-in:` keeps the package's `module:`).
    pub(super) fn value(&self, key: &str) -> Option<&str> {
        self.files.iter().find_map(|(_, text)| conf_value(text, key))
    }
}

/// Every module p11-kit configures here, merged per name across its directories in priority
/// order (checked against p11-kit 0.24 itself in cli/tests/doctor.rs).
pub(super) fn effective_modules(host: &Host) -> Vec<ModuleConfig> {
    let mut modules: Vec<ModuleConfig> = Vec::new();
    for dir in module_dirs(host).0 {
        for file in module_files(&dir) {
            let Some(name) = file.file_stem().and_then(|n| n.to_str()).map(str::to_owned) else {
                continue;
            };
            let Ok(text) = std::fs::read_to_string(&file) else {
                continue;
            };
            match modules.iter_mut().find(|m| m.name == name) {
                Some(m) => m.files.push((file, text)),
                None => modules.push(ModuleConfig {
                    name,
                    files: vec![(file, text)],
                }),
            }
        }
    }
    modules
}

pub(super) fn check(host: &Host, library: &Path) -> Check {
    const ID: &str = "p11-kit";
    let user_dir = user_modules_dir(host);
    let (dirs, ignored) = module_dirs(host);
    let found: Vec<Registration> = dirs.iter().flat_map(|d| registrations(host, d)).collect();
    let mut details: Vec<String> = found
        .iter()
        .map(|r| format!("{}: module: {}", r.file.display(), r.module))
        .collect();
    if let Some(r) = found.iter().find(|r| r.target.is_file()) {
        return Check::ok(
            ID,
            format!("registered in {} ({})", r.file.display(), r.target.display()),
        )
        .details(details);
    }
    if let Some(r) = found.first() {
        return Check::fail(
            ID,
            format!(
                "{} names {}, which does not exist",
                r.file.display(),
                r.target.display()
            ),
            format!(
                "reinstall the cpx package, or point the module: line of {} at {}",
                r.file.display(),
                library.display()
            ),
        )
        .details(details);
    }
    let everyone = format!(
        "sudo mkdir -p /etc/pkcs11/modules && printf 'module: %s\\n' {} | sudo tee \
         /etc/pkcs11/modules/cpx.module >/dev/null (the cpx package installs \
         /usr/share/p11-kit/modules/cpx.module instead)",
        quoted(library)
    );
    // Registered only where p11-kit will not look: say why.
    if let (Some(why), Some(dir)) = (&ignored, &user_dir)
        && let Some(r) = registrations(host, dir).first()
    {
        details.push(format!("{}: module: {}", r.file.display(), r.module));
        return Check::fail(
            ID,
            format!(
                "registered only in {}, which p11-kit ignores here: {why}",
                r.file.display()
            ),
            format!("register it for everyone: {everyone}"),
        )
        .details(details);
    }
    details.extend(dirs.iter().map(|d| format!("looked in {}", d.display())));
    if let (Some(why), Some(dir)) = (&ignored, &user_dir) {
        details.push(format!("not read: {} ({why})", dir.display()));
    }
    let fix = match (&ignored, &user_dir) {
        (None, Some(dir)) => format!(
            "for this user: mkdir -p {d} && printf 'module: %s\\n' {lib} > {d}/cpx.module; \
             for everyone: {everyone}",
            d = quoted(dir),
            lib = quoted(library)
        ),
        _ => format!("for everyone: {everyone}"),
    };
    Check::fail(ID, format!("no p11-kit module file names {LIBRARY}"), fix).details(details)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        let text = "# comment\ncritical: no\nmodule: libcpx_pkcs11.so\n";
        assert_eq!(conf_value(text, "module"), Some("libcpx_pkcs11.so"));
        assert_eq!(conf_value("module:/a/b.so", "module"), Some("/a/b.so"));
        assert_eq!(conf_value("user-config: none\n", "user-config"), Some("none"));
        assert_eq!(conf_value("remote: |x\n", "module"), None);
    }
}
