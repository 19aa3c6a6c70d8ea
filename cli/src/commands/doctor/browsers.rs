//! The browser checks: Chromium's NSS database (`nss-chromium`), each Firefox profile
//! (`firefox`), and snap/Flatpak browsers (`browser-packaging`), which are confined and cannot
//! load a PKCS#11 module of the host (public reports: OpenSC#2552, firefox-snap#82,
//! flatpak#4066).

use std::path::{Path, PathBuf};

use super::host::{Host, LIBRARY, is_our_library, quoted};
use super::{Check, Verdict};

/// The name cpx's module gets in an NSS database: the one docs/clients.md and the Firefox
/// policy (packaging/mozilla) use.
const NSS_NAME: &str = "cpx";

/// What an NSS database (`pkcs11.txt`, the sql: format) says about our module.
#[derive(Debug, PartialEq, Eq)]
enum Nss {
    /// No `pkcs11.txt`.
    Missing,
    /// `library=` names our module, at this path, which exists or not, under this `name=`.
    Registered {
        library: String,
        exists: bool,
        name: Option<String>,
    },
    /// `library=` names p11-kit-proxy, which loads what p11-kit has registered.
    ViaP11Kit,
    /// Neither.
    NotRegistered,
}

/// The `library=` values of a `pkcs11.txt` (empty for NSS's internal module).
pub(super) fn nss_libraries(text: &str) -> Vec<&str> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("library="))
        .map(|v| v.trim().trim_matches('"'))
        .filter(|v| !v.is_empty())
        .collect()
}

/// The `name=` of the `pkcs11.txt` entry whose `library=` is `library` (each entry is a block of
/// `key=value` lines ended by a blank line).
fn nss_name_of<'a>(text: &'a str, library: &str) -> Option<&'a str> {
    text.split("\n\n").find_map(|block| {
        let value = |key: &str| {
            block
                .lines()
                .find_map(|l| l.trim().strip_prefix(key))
                .map(|v| v.trim().trim_matches('"'))
        };
        (value("library=") == Some(library))
            .then(|| value("name="))
            .flatten()
    })
}

fn nss_db(dir: &Path, via_p11kit: bool) -> Nss {
    let Ok(text) = std::fs::read_to_string(dir.join("pkcs11.txt")) else {
        return Nss::Missing;
    };
    let libs = nss_libraries(&text);
    if let Some(lib) = libs.iter().find(|l| is_our_library(l)) {
        // A bare name is found by the dynamic loader; only an absolute path can be checked.
        let exists = !Path::new(lib).is_absolute() || Path::new(lib).is_file();
        return Nss::Registered {
            library: (*lib).to_owned(),
            exists,
            name: nss_name_of(&text, lib).map(str::to_owned),
        };
    }
    let proxy = libs.iter().any(|l| {
        Path::new(l)
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("p11-kit-proxy"))
    });
    if proxy && via_p11kit {
        Nss::ViaP11Kit
    } else {
        Nss::NotRegistered
    }
}

fn modutil(db: &Path, library: &Path) -> String {
    format!(
        "modutil -dbdir sql:{} -add {NSS_NAME} -libfile {} -force",
        quoted(db),
        quoted(library)
    )
}

/// Chromium and Chrome on Linux load the modules of the user's NSS database `~/.pki/nssdb`.
pub(super) fn nss_chromium(host: &Host, library: &Path, via_p11kit: bool) -> Check {
    const ID: &str = "nss-chromium";
    let Some(home) = &host.home else {
        return Check::skip(ID, "HOME is not set");
    };
    let db = home.join(".pki/nssdb");
    let shown = db.display();
    match nss_db(&db, via_p11kit) {
        Nss::Registered {
            library: lib,
            exists: true,
            ..
        } => Check::ok(ID, format!("{shown} loads {lib}")),
        Nss::Registered {
            library: lib, name, ..
        } => Check::fail(
            ID,
            format!("{shown} names {lib}, which does not exist"),
            format!(
                "close Chromium, then: modutil -dbdir sql:{} -delete {} -force; {}",
                quoted(&db),
                // The entry's own name: a user may have followed other instructions.
                quoted(Path::new(name.as_deref().unwrap_or(NSS_NAME))),
                modutil(&db, library)
            ),
        ),
        Nss::ViaP11Kit => Check::ok(
            ID,
            format!("{shown} loads p11-kit-proxy, which loads {LIBRARY} (see p11-kit)"),
        ),
        Nss::NotRegistered => Check::fail(
            ID,
            format!("Chromium's NSS database {shown} does not load {LIBRARY}"),
            format!(
                "close Chromium, then: {} (package libnss3-tools)",
                modutil(&db, library)
            ),
        ),
        Nss::Missing => {
            let installed = CHROMIUM_BINARIES.iter().find(|b| host.sys(b).exists());
            match installed {
                Some(bin) => Check::warn(
                    ID,
                    format!("{bin} is installed but {shown} does not exist yet"),
                    format!(
                        "mkdir -p {db} && certutil -N -d sql:{db} --empty-password && {} \
                         (package libnss3-tools)",
                        modutil(&db, library),
                        db = quoted(&db)
                    ),
                ),
                None => Check::skip(
                    ID,
                    format!("no NSS database {shown}: Chromium/Chrome not used by this user"),
                ),
            }
        }
    }
}

/// Host (not snap/Flatpak) Chromium and Chrome binaries.
const CHROMIUM_BINARIES: &[&str] = &[
    "/usr/bin/chromium",
    "/usr/bin/chromium-browser",
    "/usr/bin/google-chrome",
    "/usr/bin/google-chrome-stable",
    "/opt/google/chrome/chrome",
];

/// Firefox profile directories, from a `profiles.ini`: (name, directory).
pub(super) fn ini_profiles(ini: &str, base: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let mut section: Option<(Option<String>, Option<String>, bool)> = None;
    let mut flush = |s: Option<(Option<String>, Option<String>, bool)>| {
        if let Some((name, Some(path), relative)) = s {
            let dir = if relative {
                base.join(&path)
            } else {
                PathBuf::from(&path)
            };
            out.push((name.unwrap_or(path), dir));
        }
    };
    for line in ini.lines().map(str::trim) {
        if line.starts_with('[') {
            flush(section.take());
            if line.starts_with("[Profile") {
                section = Some((None, None, true));
            }
        } else if let Some((name, path, relative)) = section.as_mut()
            && let Some((k, v)) = line.split_once('=')
        {
            match k.trim() {
                "Name" => *name = Some(v.trim().to_owned()),
                "Path" => *path = Some(v.trim().to_owned()),
                "IsRelative" => *relative = v.trim() != "0",
                _ => {}
            }
        }
    }
    flush(section);
    out
}

/// The modules a Firefox `policies.json` adds (`SecurityDevices`, either `{"Add": {name: path}}`
/// or the older `{name: path}`).
pub(super) fn policy_devices(json: &str) -> Vec<String> {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(json) else {
        return Vec::new();
    };
    let Some(devices) = v.pointer("/policies/SecurityDevices").and_then(|d| d.as_object()) else {
        return Vec::new();
    };
    let map = devices.get("Add").and_then(|a| a.as_object()).unwrap_or(devices);
    map.values()
        .filter_map(|p| p.as_str().map(str::to_owned))
        .collect()
}

/// Where Firefox reads an enterprise policy on Linux.
const POLICY_FILES: &[&str] = &[
    "/etc/firefox/policies/policies.json",
    "/usr/lib/firefox/distribution/policies.json",
    "/usr/lib/firefox-esr/distribution/policies.json",
];

/// Each Firefox profile loads the module (its own `pkcs11.txt`, or an enterprise policy); snap
/// and Flatpak profiles cannot load a host module whatever they say.
pub(super) fn firefox(host: &Host, library: &Path) -> Check {
    const ID: &str = "firefox";
    let Some(home) = &host.home else {
        return Check::skip(ID, "HOME is not set");
    };
    let policy = POLICY_FILES.iter().map(|f| host.sys(f)).find(|f| {
        std::fs::read_to_string(f).is_ok_and(|text| policy_devices(&text).iter().any(|d| is_our_library(d)))
    });
    let roots = [
        (home.join(".mozilla/firefox"), None),
        (home.join("snap/firefox/common/.mozilla/firefox"), Some("snap")),
        (
            home.join(".var/app/org.mozilla.firefox/.mozilla/firefox"),
            Some("Flatpak"),
        ),
    ];
    let mut details = Vec::new();
    let mut missing: Vec<(String, PathBuf)> = Vec::new();
    let mut confined: Vec<String> = Vec::new();
    let mut good = 0;
    for (root, packaging) in &roots {
        let Ok(ini) = std::fs::read_to_string(root.join("profiles.ini")) else {
            continue;
        };
        for (name, dir) in ini_profiles(&ini, root) {
            let state = nss_db(&dir, false);
            if let Some(kind) = packaging {
                details.push(format!(
                    "{name} ({}): {kind} Firefox, cannot load a host module",
                    dir.display()
                ));
                confined.push(format!("{name} ({kind})"));
                continue;
            }
            let line = match (&state, &policy) {
                (Nss::Registered { exists: true, .. }, _) => {
                    good += 1;
                    format!("loads {LIBRARY}")
                }
                (_, Some(p)) => {
                    good += 1;
                    format!("loads {LIBRARY} by policy ({})", p.display())
                }
                (Nss::Registered { library, .. }, None) => {
                    missing.push((name.clone(), dir.clone()));
                    format!("names {library}, which does not exist")
                }
                _ => {
                    missing.push((name.clone(), dir.clone()));
                    format!("does not load {LIBRARY}")
                }
            };
            details.push(format!("{name} ({}): {line}", dir.display()));
        }
    }
    if let Some((_, dir)) = missing.first() {
        let names: Vec<&str> = missing.iter().map(|(n, _)| n.as_str()).collect();
        return Check::fail(
            ID,
            format!("Firefox profile(s) without {LIBRARY}: {}", names.join(", ")),
            format!(
                "close Firefox, then for each: {} (package libnss3-tools); or in Firefox: \
                 Settings > Privacy & Security > Security Devices > Load; or for every profile: \
                 the SecurityDevices policy in /etc/firefox/policies/policies.json",
                modutil(dir, library)
            ),
        )
        .details(details);
    }
    if !confined.is_empty() {
        return Check::warn(
            ID,
            format!(
                "confined Firefox profile(s): {}: a snap or Flatpak Firefox cannot load a host \
                 PKCS#11 module",
                confined.join(", ")
            ),
            "use a Firefox from packages (Debian: sudo apt install firefox-esr; Ubuntu: \
             Mozilla's APT repository), then register the module in its profile",
        )
        .details(details);
    }
    match (good, &policy) {
        (0, Some(p)) => Check::ok(
            ID,
            format!(
                "no Firefox profile yet; the policy {} loads {LIBRARY}",
                p.display()
            ),
        ),
        (0, None) => Check::skip(ID, "no Firefox profile found: Firefox not used by this user"),
        (n, _) => Check::new(
            ID,
            Verdict::Ok,
            format!(
                "{n} Firefox profile{} load{} {LIBRARY}",
                if n == 1 { "" } else { "s" },
                if n == 1 { "s" } else { "" }
            ),
            None,
        )
        .details(details),
    }
}

/// Snap and Flatpak browsers: confined, they cannot load a host PKCS#11 module.
pub(super) fn packaging(host: &Host) -> Check {
    const ID: &str = "browser-packaging";
    const FLATPAKS: &[&str] = &[
        "org.mozilla.firefox",
        "org.chromium.Chromium",
        "com.google.Chrome",
        "com.brave.Browser",
        "com.microsoft.Edge",
        "io.github.ungoogled_software.ungoogled_chromium",
    ];
    let mut found = Vec::new();
    for snap in ["firefox", "chromium"] {
        let bin = host.sys(format!("/snap/bin/{snap}"));
        if bin.exists() {
            found.push(format!("snap {snap} ({})", bin.display()));
        }
    }
    let mut flatpak_dirs = vec![host.sys("/var/lib/flatpak/app")];
    if let Some(d) = &host.data_home {
        flatpak_dirs.push(d.join("flatpak/app"));
    }
    for dir in &flatpak_dirs {
        for app in FLATPAKS {
            let p = dir.join(app);
            if p.exists() {
                found.push(format!("Flatpak {app} ({})", p.display()));
            }
        }
    }
    if found.is_empty() {
        return Check::ok(ID, "no snap or Flatpak browser");
    }
    let n = found.len();
    Check::warn(
        ID,
        format!(
            "{n} confined browser{}: snap and Flatpak browsers cannot load a host PKCS#11 module",
            if n == 1 { "" } else { "s" }
        ),
        "use browsers from packages for CPx sites (Debian: sudo apt install firefox-esr chromium; \
         Ubuntu: Mozilla's APT repository or Google's .deb)",
    )
    .details(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nss_library_lines() {
        let text = "library=\nname=NSS Internal PKCS #11 Module\nparameters=configdir='sql:/x'\n\n\
                    library=/usr/lib/x86_64-linux-gnu/pkcs11/libcpx_pkcs11.so\nname=CPx\n\
                    library=\"p11-kit-proxy.so\"\n";
        assert_eq!(
            nss_libraries(text),
            [
                "/usr/lib/x86_64-linux-gnu/pkcs11/libcpx_pkcs11.so",
                "p11-kit-proxy.so"
            ]
        );
    }

    #[test]
    fn nss_entry_names() {
        let text = "library=\nname=NSS Internal PKCS #11 Module\n\n\
                    library=/opt/libcpx_pkcs11.so\nname=CPx card\nNSS=slotParams=x\n\n\
                    name=other\nlibrary=/x.so\n";
        assert_eq!(nss_name_of(text, "/opt/libcpx_pkcs11.so"), Some("CPx card"));
        assert_eq!(nss_name_of(text, "/x.so"), Some("other"));
        assert_eq!(nss_name_of(text, "/y.so"), None);
    }

    #[test]
    fn profiles_ini() {
        let ini = "[General]\nStartWithLastProfile=1\n\n[Profile1]\nName=work\nIsRelative=0\n\
                   Path=/data/ff/work\n\n[Profile0]\nName=default-release\nIsRelative=1\n\
                   Path=abcd.default-release\nDefault=1\n\n[Install4F96D1932A9F858E]\n\
                   Default=abcd.default-release\n";
        let base = Path::new("/home/a/.mozilla/firefox");
        assert_eq!(
            ini_profiles(ini, base),
            [
                ("work".to_owned(), PathBuf::from("/data/ff/work")),
                ("default-release".to_owned(), base.join("abcd.default-release")),
            ]
        );
    }

    #[test]
    fn policies() {
        let new = r#"{"policies": {"SecurityDevices": {"Add": {"CPx": "/usr/lib/libcpx_pkcs11.so"}}}}"#;
        assert_eq!(policy_devices(new), ["/usr/lib/libcpx_pkcs11.so"]);
        let old = r#"{"policies": {"SecurityDevices": {"CPx": "/opt/libcpx_pkcs11.so"}}}"#;
        assert_eq!(policy_devices(old), ["/opt/libcpx_pkcs11.so"]);
        assert!(policy_devices("{").is_empty());
        assert!(policy_devices(r#"{"policies": {}}"#).is_empty());
    }
}
