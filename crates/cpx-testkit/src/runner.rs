//! Putting a test binary, or any command, inside a sandbox.

use std::process::{Command, ExitCode};

use crate::module::ENV_MODULE;
use crate::{ENV_READERS, Sandbox, SandboxConfig, Trial};

/// Set to skip real-stack tests explicitly (e.g. on a machine without pcscd); they then report as
/// ignored, never as passed.
pub const ENV_SKIP: &str = "CPX_SKIP_PCSC_TESTS";

/// The `main` of a real-stack test binary (`harness = false`).
///
/// Outside a sandbox it starts one and runs this binary again inside it; inside, it runs the
/// trials with libtest's command line and output (filters, `--list`, `--test-threads` all work).
pub fn run_tests(config: &SandboxConfig, trials: impl FnOnce() -> Vec<Trial>) -> ExitCode {
    let args = libtest_mimic::Arguments::from_args();
    // RUST_LOG=cpx::apdu=trace shows the APDUs (PINs masked).
    let _ = env_logger::builder().is_test(true).try_init();
    let inside = std::env::var_os(ENV_READERS).is_some();
    if inside || args.list {
        return libtest_mimic::run(&args, trials()).exit_code();
    }
    if std::env::var_os(ENV_SKIP).is_some() {
        eprintln!("{ENV_SKIP} is set: real-stack tests ignored");
        let ignored = trials().into_iter().map(|t| t.with_ignored_flag(true)).collect();
        return libtest_mimic::run(&args, ignored).exit_code();
    }
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("cpx-testkit: cannot find the test binary: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut extra = Vec::new();
    if config.prebuild_module {
        // Before any sandbox or timing window: a link takes minutes of both cores on CI.
        match crate::module::prebuild() {
            Ok(so) => extra.push((ENV_MODULE.to_owned(), so.display().to_string())),
            // The tests that load it build it again, and report the error themselves.
            Err(e) => eprintln!("cpx-testkit: the PKCS#11 module could not be built first: {e}"),
        }
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    run_in_sandbox(config, exe.as_os_str(), &args, &extra)
}

/// Start a sandbox, run `program args…` with its environment, stop the sandbox, return the
/// program's exit code. Failure to start the sandbox is reported on stderr and fails.
pub fn run_command(config: &SandboxConfig, program: &std::ffi::OsStr, args: &[String]) -> ExitCode {
    run_in_sandbox(config, program, args, &[])
}

/// [`run_command`], with `extra` environment variables for the program.
fn run_in_sandbox(
    config: &SandboxConfig,
    program: &std::ffi::OsStr,
    args: &[String],
    extra: &[(String, String)],
) -> ExitCode {
    let sandbox = match Sandbox::start(config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cpx-testkit: {e}");
            return ExitCode::FAILURE;
        }
    };
    let status = Command::new(program)
        .args(args)
        .envs(sandbox.env())
        .envs(extra.iter().map(|(k, v)| (k, v)))
        .status();
    let log = sandbox.log_path();
    sandbox.stop();
    match status {
        Ok(s) if s.success() => ExitCode::SUCCESS,
        Ok(s) => {
            if std::env::var_os("CPX_PCSCD_DEBUG").is_some() {
                eprintln!("cpx-testkit: pcscd log was {}", log.display());
            }
            ExitCode::from(u8::try_from(s.code().unwrap_or(1)).unwrap_or(1))
        }
        Err(e) => {
            eprintln!("cpx-testkit: cannot run {}: {e}", program.to_string_lossy());
            ExitCode::FAILURE
        }
    }
}
