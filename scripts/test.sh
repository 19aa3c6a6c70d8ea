#!/usr/bin/env bash
# Every test: unit, in-process and real-stack (private pcscd + vpcd + virtual cards), plus the
# lint gates CI enforces (rustfmt, clippy with warnings as errors, rustdoc without warnings).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/system-packages.sh

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
echo "== rustfmt"
cargo fmt --all -- --check
echo "== clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "== rustdoc"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet
echo "== tests"
cargo test --workspace --all-targets
cargo test --workspace --doc
