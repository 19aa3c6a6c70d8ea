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
  before=$(ls artifacts/"$target" 2>/dev/null || true)
  log=$(mktemp)
  rc=0
  cargo +nightly fuzz run "$target" -- -max_total_time="$seconds" >"$log" 2>&1 || rc=$?
  grep -E "Done [0-9]+ runs|ERROR|SUMMARY" "$log" || true
  # libFuzzer leaves crash-*, oom-* (e.g. an allocation sized by a hostile length field),
  # leak-* or timeout-* for what it finds; each is a bug. slow-unit-* only says a machine was busy.
  found=$(comm -13 <(echo "$before") <(ls artifacts/"$target" 2>/dev/null || true) | grep -v '^slow-unit-' || true)
  if [ -n "$found" ] || [ "$rc" != 0 ]; then
    tail -40 "$log" >&2
    echo "fuzz: $target failed (exit $rc); new artifacts: ${found:-none}" >&2
    rm -f "$log"
    exit 1
  fi
  rm -f "$log"
done
