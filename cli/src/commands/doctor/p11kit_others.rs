//! The `p11-kit-others` check: does p11-kit also load another module that drives CPx cards?
//!
//! Debian's `opensc-pkcs11` package registers OpenSC's module with p11-kit, and OpenSC's IAS-ECC
//! driver exposes a CPS3 (docs/emulator.md, "OpenSC and the official module"). With cpx
//! registered too, every p11-kit client (GnuTLS, curl, p11tool, GLib, NSS through p11-kit-proxy)
//! sees the card twice, as two tokens with different labels, and may pick OpenSC's. The fix
//! hides the other module from p11-kit only, with a same-named module file holding `enable-in:`
//! and no value (pkcs11.conf(5)): programs that load OpenSC's module by its path keep it.

use std::path::Path;

use super::Check;
use super::host::{Host, is_our_library, quoted};
use super::p11kit::{ModuleConfig, effective_modules, module_dirs, user_modules_dir};

/// Modules known to drive CPx cards, by library file name, and whose they are.
const CPX_DRIVERS: &[(&str, &str)] = &[
    ("opensc-pkcs11.so", "OpenSC"),
    ("onepin-opensc-pkcs11.so", "OpenSC (one-PIN)"),
    // The official middleware's Linux module (docs/pkcs11-module.md).
    ("libcps3_pkcs11_lux.so", "Cryptolib CPS"),
];

/// Whose module `library` is, when it drives CPx cards.
fn cpx_driver(library: &str) -> Option<&'static str> {
    let name = Path::new(library.trim()).file_name()?.to_str()?;
    CPX_DRIVERS
        .iter()
        .find(|(file, _)| *file == name)
        .map(|(_, who)| *who)
}

/// `enable-in:` with no value: p11-kit loads the module in no program.
fn disabled(m: &ModuleConfig) -> bool {
    m.value("enable-in").is_some_and(str::is_empty)
}

/// Where a module is restricted to some programs, in words for the details.
fn scope(m: &ModuleConfig) -> String {
    match (m.value("enable-in"), m.value("disable-in")) {
        (Some(only), _) => format!(", only in: {only}"),
        (None, Some(not)) if !not.is_empty() => format!(", not in: {not}"),
        _ => String::new(),
    }
}

/// The fix hiding `m` from p11-kit: a same-named file with `enable-in:` in the highest directory
/// p11-kit reads that can override it (a file of the user's overrides the system's).
fn hide(host: &Host, m: &ModuleConfig) -> String {
    let system = host.sys("/etc/pkcs11/modules");
    let (dirs, _) = module_dirs(host);
    let user = user_modules_dir(host).filter(|d| dirs.contains(d));
    let in_user = user
        .as_ref()
        .is_some_and(|d| m.files.iter().any(|(f, _)| f.starts_with(d)));
    let for_user = user.map(|d| {
        format!(
            "mkdir -p {d} && printf 'enable-in:\\n' > {f}",
            d = quoted(&d),
            f = quoted(&d.join(format!("{}.module", m.name)))
        )
    });
    let for_everyone = format!(
        "sudo mkdir -p {d} && printf 'enable-in:\\n' | sudo tee {f} >/dev/null",
        d = quoted(&system),
        f = quoted(&system.join(format!("{}.module", m.name)))
    );
    match (for_user, in_user) {
        (Some(u), true) => format!("for this user: {u}"),
        (Some(u), false) => format!("for everyone: {for_everyone}; for this user only: {u}"),
        (None, _) => format!("for everyone: {for_everyone}"),
    }
}

/// `cpx_registered`: the `p11-kit` check found our module registered.
pub(super) fn check(host: &Host, cpx_registered: bool) -> Check {
    const ID: &str = "p11-kit-others";
    let mut details = Vec::new();
    let mut active: Vec<(ModuleConfig, &str)> = Vec::new();
    for m in effective_modules(host) {
        let Some(library) = m.value("module").map(str::to_owned) else {
            continue;
        };
        if is_our_library(&library) {
            continue;
        }
        let Some(who) = cpx_driver(&library) else {
            continue;
        };
        let files: Vec<String> = m.files.iter().map(|(f, _)| f.display().to_string()).collect();
        let files = files.join(" over ");
        if disabled(&m) {
            details.push(format!(
                "{files}: module: {library} ({who}), hidden from p11-kit (enable-in: with no value)"
            ));
        } else {
            details.push(format!("{files}: module: {library} ({who}{})", scope(&m)));
            active.push((m, who));
        }
    }
    let Some((first, who)) = active.first() else {
        return Check::ok(ID, "no other module p11-kit loads drives CPx cards").details(details);
    };
    // The highest file of the module's configuration: the one a user would look at.
    let shown = first
        .files
        .first()
        .map(|(f, _)| f.display().to_string())
        .unwrap_or_default();
    let twice = "its clients (GnuTLS, curl, p11tool, NSS through p11-kit-proxy) see a CPS3 \
                 twice, as two tokens, and may pick the other one";
    let finding = if cpx_registered {
        format!("p11-kit also loads {who}'s module ({}): {twice}", shown)
    } else {
        format!(
            "p11-kit loads {who}'s module ({}): once cpx is registered (see p11-kit), {twice}",
            shown
        )
    };
    let fixes: Vec<String> = active
        .iter()
        .map(|(m, _)| format!("hide {} from p11-kit clients, {}", m.name, hide(host, m)))
        .collect();
    Check::warn(
        ID,
        finding,
        format!("{} (programs given its path keep it)", fixes.join("; then ")),
    )
    .details(details)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn drivers_by_file_name() {
        assert_eq!(cpx_driver("opensc-pkcs11.so"), Some("OpenSC"));
        assert_eq!(
            cpx_driver(" /usr/lib/x86_64-linux-gnu/opensc-pkcs11.so "),
            Some("OpenSC")
        );
        assert_eq!(cpx_driver("/opt/x/libcps3_pkcs11_lux.so"), Some("Cryptolib CPS"));
        assert_eq!(cpx_driver("p11-kit-trust.so"), None);
        assert_eq!(cpx_driver(""), None);
    }

    fn config(texts: &[&str]) -> ModuleConfig {
        ModuleConfig {
            name: "opensc-pkcs11".into(),
            files: texts
                .iter()
                .map(|t| (PathBuf::from("/x.module"), (*t).to_owned()))
                .collect(),
        }
    }

    #[test]
    fn enable_in_without_value_disables() {
        assert!(disabled(&config(&["enable-in:\n"])));
        assert!(disabled(&config(&[
            "enable-in:  \n",
            "module: opensc-pkcs11.so\n"
        ])));
        assert!(!disabled(&config(&["module: opensc-pkcs11.so\n"])));
        assert!(!disabled(&config(&["enable-in: firefox\n", "enable-in:\n"])));
        assert_eq!(
            scope(&config(&["disable-in: p11-kit-proxy\n"])),
            ", not in: p11-kit-proxy"
        );
        assert_eq!(
            scope(&config(&["enable-in: gnutls-cli\n"])),
            ", only in: gnutls-cli"
        );
    }
}
