#!/usr/bin/env bash
# Every test: unit, in-process and real-stack (private pcscd + vpcd + virtual cards), plus the
# lint gates CI enforces (rustfmt, clippy with warnings as errors, rustdoc without warnings).
set -euo pipefail
cd "$(dirname "$0")/.."
CPX_PACKAGES=test source scripts/system-packages.sh

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
echo "== rustfmt"
cargo fmt --all -- --check
echo "== card-fact citations"
bash scripts/check-citations.sh
echo "== generation-neutral code"
bash scripts/check-generation-neutral.sh --self-test
bash scripts/check-generation-neutral.sh
echo "== clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "== rustdoc"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet
echo "== tests"
# The PKCS#11 module first: `cargo test` does not build the cdylib, and the real-stack tests
# would otherwise link it from inside a running sandbox, loading both cores of a CI machine
# while their timing windows are open. (The binaries they run, cpx and cpx-sandbox, are
# built by `cargo test` itself before any test starts.)
# The test PIN-pad reader driver likewise (pcscd loads it in the PIN-pad suites:
# crates/cpx-card/tests/pinpad_stack.rs, pkcs11-module/tests/pinpad.rs; they also build it if
# missing, in their parent process).
cargo build --quiet -p cpx-pkcs11 -p cpx-ifd-pinpad --lib
# --no-fail-fast: one failing test binary must not hide the others' verdicts in a CI log.
cargo test --workspace --all-targets --no-fail-fast
cargo test --workspace --doc
# The test-only stub generation (cpx-card feature `stub-generation`): recognised by the card layer
# and listed by the module linked in (real stack). Only cpx-card and the module's rlib are built
# again with the feature.
cargo test -p cpx-card --features stub-generation --test stub_generation

# The Debian package: built, installed, used from the installed paths, removed and purged. It
# changes the system, so it runs only when asked (CI sets CPX_TEST_DEB=1; needs root). Then the
# RPM, built from the same release binaries and checked without installing it.
if [ "${CPX_TEST_DEB:-0}" = 1 ]; then
  echo "== Debian package"
  bash scripts/deb-smoke-test.sh
  # The RPM for RHEL/Fedora, from the same portable release build (it installs nothing).
  echo "== RPM"
  bash scripts/rpm-check.sh
  # The arm64 .deb, cross-built; its binaries run under qemu-user against the emulated cards.
  if [ "$(dpkg --print-architecture)" = amd64 ]; then
    echo "== arm64 package"
    bash scripts/arm64-check.sh
  fi
fi

# A short coverage-guided fuzz run of every cargo-fuzz target, when asked (CI sets
# CPX_FUZZ_SECONDS, the time per target). scripts/fuzz.sh installs the nightly toolchain and
# cargo-fuzz when they are missing; a tool it cannot install fails the run, never skips.
if [ -n "${CPX_FUZZ_SECONDS:-}" ]; then
  echo "== fuzz"
  bash scripts/fuzz.sh "$CPX_FUZZ_SECONDS"
fi
