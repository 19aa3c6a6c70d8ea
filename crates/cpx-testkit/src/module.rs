//! The built PKCS#11 module, for tests that load it (through cryptoki or a peer tool).

use std::path::{Path, PathBuf};
use std::process::Command;

/// Environment variable: the module the parent process built before it started the sandbox
/// (see [`SandboxConfig::prebuild_module`](crate::SandboxConfig::prebuild_module)).
pub(crate) const ENV_MODULE: &str = "CPX_TESTKIT_MODULE";

/// `libcpx_pkcs11.so` in the cargo profile directory `profile_dir` (`target/debug`), brought
/// up to date first when running under cargo.
///
/// `cargo test` builds a library crate as an rlib only, and other crates' tests do not build it
/// at all, so when `CARGO` is set (the test runs under cargo) this runs `cargo build -p
/// cpx-pkcs11 --lib` for the same profile and target directory, with the workspace manifest
/// `manifest`. Run directly, the test uses whatever .so is there.
///
/// When the test binary's parent process already built it before starting the sandbox
/// ([`SandboxConfig::prebuild_module`](crate::SandboxConfig::prebuild_module)), that .so is
/// used as it is: no cargo run, no link, inside a running sandbox.
///
/// ```no_run
/// let exe = std::env::current_exe().unwrap();
/// let profile_dir = exe.parent().unwrap().parent().unwrap(); // target/debug/deps/… → target/debug
/// let so = cpx_testkit::built_module(profile_dir, "Cargo.toml".as_ref()).unwrap();
/// assert!(so.ends_with("libcpx_pkcs11.so"));
/// ```
pub fn built_module(profile_dir: &Path, manifest: &Path) -> Result<PathBuf, String> {
    let so = profile_dir.join("libcpx_pkcs11.so");
    let prebuilt = std::env::var_os(ENV_MODULE).is_some_and(|p| Path::new(&p) == so);
    built(&so, !prebuilt, manifest, &["-p", "cpx-pkcs11", "--lib"])
}

/// The `cpx` command in the cargo profile directory `profile_dir`, built first when running
/// under cargo and outside a sandbox (a test binary re-run inside its sandbox finds the one its
/// parent built): for tests of other crates than `cpx-cli`, which have no `CARGO_BIN_EXE_cpx`.
///
/// ```no_run
/// let exe = std::env::current_exe().unwrap();
/// let profile_dir = exe.parent().unwrap().parent().unwrap();
/// let cpx = cpx_testkit::built_cpx(profile_dir, "Cargo.toml".as_ref()).unwrap();
/// assert!(cpx.ends_with("cpx"));
/// ```
pub fn built_cpx(profile_dir: &Path, manifest: &Path) -> Result<PathBuf, String> {
    let in_sandbox = std::env::var_os(crate::ENV_READERS).is_some();
    built(
        &profile_dir.join("cpx"),
        !in_sandbox,
        manifest,
        &["-p", "cpx-cli", "--bin", "cpx"],
    )
}

/// The test PIN-pad reader driver (`crates/cpx-ifd-pinpad`, docs/pinpad-reader.md) for
/// [`SandboxConfig::pinpad`](crate::SandboxConfig::pinpad): `libcpx_ifd_pinpad.so` in the cargo
/// profile directory of the running test binary (`target/<profile>/deps/<test>`), built first
/// (`cargo build -p cpx-ifd-pinpad --lib`, same profile and target directory, this testkit's
/// workspace) when running under cargo and outside a sandbox: call it where the sandbox is
/// configured, in the parent process, before the sandbox starts.
///
/// ```no_run
/// let config = cpx_testkit::SandboxConfig {
///     pinpad: Some(cpx_testkit::built_pinpad_driver().unwrap()),
///     ..cpx_testkit::SandboxConfig::default()
/// };
/// ```
pub fn built_pinpad_driver() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the test binary: {e}"))?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or("cannot locate the target directory")?;
    let in_sandbox = std::env::var_os(crate::ENV_READERS).is_some();
    built(
        &profile_dir.join("libcpx_ifd_pinpad.so"),
        !in_sandbox,
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.toml").as_ref(),
        &["-p", "cpx-ifd-pinpad", "--lib"],
    )
}

/// `artifact`, after `cargo build <what>` for the same profile and target directory when
/// `build` and running under cargo.
fn built(artifact: &Path, build: bool, manifest: &Path, what: &[&str]) -> Result<PathBuf, String> {
    let profile_dir = artifact.parent().ok_or("no profile directory")?;
    if build && let (Ok(cargo), Some(target_dir)) = (std::env::var("CARGO"), profile_dir.parent()) {
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--quiet"])
            .args(what)
            .arg("--manifest-path")
            .arg(manifest)
            .arg("--target-dir")
            .arg(target_dir);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let status = cmd.status().map_err(|e| format!("cannot run cargo: {e}"))?;
        if !status.success() {
            return Err(format!("cargo build {} failed: {status}", what.join(" ")));
        }
    }
    if artifact.exists() {
        Ok(artifact.to_owned())
    } else {
        Err(format!(
            "{} is missing: run cargo build {} first",
            artifact.display(),
            what.join(" ")
        ))
    }
}

/// Build the module for the running test binary (`target/<profile>/deps/<test>`), with the
/// workspace this testkit was compiled from; the parent side of
/// [`SandboxConfig::prebuild_module`](crate::SandboxConfig::prebuild_module).
pub(crate) fn prebuild() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the test binary: {e}"))?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or("cannot locate the target directory")?;
    built_module(
        profile_dir,
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.toml").as_ref(),
    )
}
