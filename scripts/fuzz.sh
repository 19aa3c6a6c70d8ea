#!/usr/bin/env bash
# Coverage-guided fuzzing of every cargo-fuzz target (crates/cpx-card/fuzz): the PKCS#15 and
# card-response parsers, the card layer against a hostile card, certificates and business data,
# APDUs and BER-TLV.
#
#   ./scripts/fuzz.sh [SECONDS_PER_TARGET]      # default 60
#
# Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`). Where there is none,
# the property tests of `cargo test` (cpx-apdu, cpx-card, cpx-profile, cpx-emulator, and the
# module's tests/hostile.rs) cover the same parsers with mutated real inputs.
set -euo pipefail
cd "$(dirname "$0")/../crates/cpx-card/fuzz"
seconds=${1:-60}
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "fuzz: no nightly toolchain with cargo-fuzz here; the property tests cover the parsers" >&2
  exit 2
fi
for target in $(cargo +nightly fuzz list); do
  echo "== fuzz $target (${seconds} s)"
  cargo +nightly fuzz run "$target" -- -max_total_time="$seconds" 2>&1 | grep -E "Done [0-9]+ runs|ERROR|SUMMARY" || true
  # cargo fuzz exits non-zero and leaves an artifact when it finds a crash.
  if ls artifacts/"$target"/crash-* >/dev/null 2>&1; then
    echo "fuzz: $target found a crash: $(ls artifacts/"$target"/crash-*)" >&2
    exit 1
  fi
done
