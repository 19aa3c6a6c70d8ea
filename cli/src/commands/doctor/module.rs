//! The `module` check: load our PKCS#11 module as an application would, and find the card's
//! token in it.

use std::path::{Path, PathBuf};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};

use super::Check;
use super::host::{Host, LIBRARY, multiarch, quoted};

/// Where the package installs the module, in order: p11-kit's module directory, then the
/// library directory (README, packaging/p11-kit/cpx.module).
pub(super) fn installed_paths() -> [PathBuf; 2] {
    let arch = multiarch();
    [
        PathBuf::from(format!("/usr/lib/{arch}/pkcs11/{LIBRARY}")),
        PathBuf::from(format!("/usr/lib/{arch}/{LIBRARY}")),
    ]
}

/// The module to check: `--module`, else an installed one, else the one next to `cpx` (a build
/// tree: target/debug holds both).
fn locate(host: &Host, given: Option<&Path>) -> Result<PathBuf, Check> {
    if let Some(p) = given {
        return if p.is_file() {
            Ok(p.to_path_buf())
        } else {
            Err(Check::fail(
                "module",
                format!("--module {}: no such file", p.display()),
                "give the path of libcpx_pkcs11.so, or omit --module to use the installed one",
            ))
        };
    }
    let mut looked = Vec::new();
    for p in installed_paths() {
        let p = host.sys(&p);
        if p.is_file() {
            return Ok(p);
        }
        looked.push(p);
    }
    if let Some(p) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join(LIBRARY)))
    {
        if p.is_file() {
            return Ok(p);
        }
        looked.push(p);
    }
    let looked: Vec<String> = looked.iter().map(|p| p.display().to_string()).collect();
    Err(Check::fail(
        "module",
        format!("{LIBRARY} not found"),
        "install the cpx package, or give the module's path with --module PATH",
    )
    .details(looked.into_iter().map(|p| format!("not at {p}")).collect()))
}

/// Load, C_Initialize, look for the token of `card` (reader, token label), C_Finalize. Returns
/// the check and the module's path when it was found.
pub(super) fn check(
    host: &Host,
    given: Option<&Path>,
    card: Option<(&str, &str)>,
) -> (Check, Option<PathBuf>) {
    let path = match locate(host, given) {
        Ok(p) => p,
        Err(check) => return (check, None),
    };
    (load(&path, card), Some(path))
}

fn load(path: &Path, card: Option<(&str, &str)>) -> Check {
    let shown = path.display();
    let p11 = match Pkcs11::new(path) {
        Ok(p) => p,
        Err(e) => {
            return Check::fail(
                "module",
                format!("cannot load {shown}: {e}"),
                format!(
                    "check its dependencies (ldd {}) and reinstall the cpx package",
                    quoted(path)
                ),
            );
        }
    };
    if let Err(e) = p11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        return Check::fail(
            "module",
            format!("{shown}: C_Initialize failed: {e}"),
            "run again with CPX_PKCS11_LOG=debug and report the output",
        );
    }
    let mut details = vec![format!("module {shown}")];
    if let Ok(info) = p11.get_library_info() {
        details.push(format!(
            "{}, library version {}",
            info.library_description().trim_end(),
            info.library_version()
        ));
    }
    // A slot description is the reader name cut to 64 bytes (PKCS#11 CK_SLOT_INFO).
    let same_reader =
        |slot: &str, reader: &str| slot == reader || (!slot.is_empty() && reader.starts_with(slot));
    // C_GetSlotList and C_GetSlotInfo send no APDU; C_GetTokenInfo opens the card, so only our
    // reader's token is asked for: the other readers' cards are none of the doctor's business.
    let listed = p11.get_slots_with_token().map(|slots| {
        let described: Vec<(cryptoki::slot::Slot, String)> = slots
            .into_iter()
            .map(|s| {
                let d = p11
                    .get_slot_info(s)
                    .map(|i| i.slot_description().trim_end().to_owned())
                    .unwrap_or_else(|e| format!("slot {}: {e}", s.id()));
                (s, d)
            })
            .collect();
        let ours = card.and_then(|(reader, _)| {
            described
                .iter()
                .find(|(_, d)| same_reader(d, reader))
                .map(|(s, _)| {
                    p11.get_token_info(*s)
                        .map(|t| t.label().trim_end().to_owned())
                        .map_err(|e| e.to_string())
                })
        });
        (described, ours)
    });
    let finalized = p11.finalize();
    let (slots, ours) = match listed {
        Ok(l) => l,
        Err(e) => {
            return Check::fail(
                "module",
                format!("{shown}: C_GetSlotList failed: {e}"),
                "run again with CPX_PKCS11_LOG=debug and report the output",
            )
            .details(details);
        }
    };
    details.extend(slots.iter().map(|(_, d)| format!("token present in slot {d:?}")));
    if let Err(e) = finalized {
        return Check::fail(
            "module",
            format!("{shown}: C_Finalize failed: {e}"),
            "run again with CPX_PKCS11_LOG=debug and report the output",
        )
        .details(details);
    }
    let Some((reader, label)) = card else {
        return Check::ok(
            "module",
            format!("{shown} loads and initialises (no CPx card to look for its token)"),
        )
        .details(details);
    };
    const AGAIN: &str = "close the applications using the card and run cpx doctor again; if it \
                         persists, run with CPX_PKCS11_LOG=debug and report the output";
    match ours {
        Some(Ok(l)) if l == label => Check::ok(
            "module",
            format!("{shown} loads and shows the token \"{label}\" (reader {reader})"),
        ),
        Some(Ok(l)) => Check::fail(
            "module",
            format!("{shown} shows the token \"{l}\" in {reader}, not the card's \"{label}\""),
            AGAIN,
        ),
        Some(Err(e)) => Check::fail(
            "module",
            format!("{shown} loads but cannot read the card's token in {reader}: {e}"),
            AGAIN,
        ),
        None => Check::fail(
            "module",
            format!("{shown} loads but shows no token in {reader}"),
            AGAIN,
        ),
    }
    .details(details)
}
