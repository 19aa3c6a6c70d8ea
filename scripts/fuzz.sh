#!/usr/bin/env bash
# Coverage-guided fuzzing of every cargo-fuzz target of crates/cpx-card/fuzz (`cargo fuzz list`:
# a new target is picked up without editing this script). docs/fuzzing.md explains the targets.
#
#   ./scripts/fuzz.sh [SECONDS_PER_TARGET]           # default 60; CI runs it with 15
#   ./scripts/fuzz.sh --long [SECONDS_PER_TARGET]    # campaign, default 3600 s per target;
#                                                    # its figures are appended to docs/fuzzing.md
#   FUZZ_TARGETS="hostile_card pin_model" ./scripts/fuzz.sh ...   # only these targets
#
# What fuzzing needs is installed when missing: a nightly toolchain (`rustup toolchain install
# nightly --profile minimal`) and cargo-fuzz (`cargo install cargo-fuzz --locked`). A tool that
# cannot be installed fails the run: it never skips. Each target runs for the fixed time from its
# committed seeds (seeds/<target>, read only) and its working corpus (corpus/<target>, not
# committed), with libFuzzer's default malloc and RSS limits (2 GiB): an allocation sized by a
# card is a finding. Every target's run count and coverage is printed.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
long=0
if [ "${1:-}" = --long ]; then
  long=1
  shift
fi
seconds=${1:-$([ "$long" = 1 ] && echo 3600 || echo 60)}
case "$seconds" in '' | *[!0-9]*) echo "fuzz: seconds must be a number, got '$seconds'" >&2; exit 1 ;; esac
now() { date +%s; }
# CPU seconds (user + system) the shell's finished children have used: a campaign on a shared
# machine reports what its targets got, not only how long they waited. Sets $child_cpu_s; `times`
# must run in this shell (in a $(...) subshell it would count nothing).
cpu_file=$(mktemp)
child_cpu() {
  times >"$cpu_file"
  child_cpu_s=$(awk 'NR == 2 { split($1, u, /[ms]/); split($2, s, /[ms]/); printf "%d", u[1] * 60 + u[2] + s[1] * 60 + s[2] }' "$cpu_file")
}

# --- tools: installed when missing, checked after -------------------------------------------
t0=$(now)
if ! command -v rustup >/dev/null; then
  echo "fuzz: rustup is needed to install a nightly toolchain (https://rustup.rs)" >&2
  exit 1
fi
if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz: installing the nightly toolchain"
  # --no-self-update: installing a toolchain must not replace the machine's rustup (measured
  # here: it "updated" rustup 1.29.0 to the channel's older 1.28.2).
  rustup toolchain install nightly --profile minimal --no-self-update
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi
if ! version=$(cargo +nightly fuzz --version 2>&1); then
  echo "fuzz: cargo-fuzz does not run after installation: $version" >&2
  exit 1
fi
echo "fuzz: $version, $(rustc +nightly --version); tools ready in $(($(now) - t0)) s"

cd "$root/crates/cpx-card/fuzz"
targets=$(cargo +nightly fuzz list)
if [ -n "${FUZZ_TARGETS:-}" ]; then
  targets=$FUZZ_TARGETS
fi
if [ -z "$targets" ]; then
  echo "fuzz: no fuzz target found" >&2
  exit 1
fi

# --- one build of every target (one cargo run when all are asked; the runs find it up to date) --
t0=$(now)
blog=$(mktemp)
build_one() { cargo +nightly fuzz build "$@" >>"$blog" 2>&1 || { tail -40 "$blog" >&2; echo "fuzz: build failed" >&2; exit 1; }; }
if [ -n "${FUZZ_TARGETS:-}" ]; then
  for target in $targets; do build_one "$target"; done
else
  build_one
fi
rm -f "$blog"
echo "fuzz: targets built in $(($(now) - t0)) s"

nice=()
# A campaign yields the machine: nice 19, in a session of its own whose autogroup is niced too.
# With the kernel's autogroup scheduling (the default on desktop kernels), `nice` only ranks
# processes within one session: measured here, seven `nice -n 19` campaigns started with setsid
# still took ~1.4 of 2 cores from the builds running beside them until their autogroups were niced.
[ "$long" = 1 ] && nice=(setsid --wait sh -c 'echo 19 >/proc/self/autogroup 2>/dev/null; exec nice -n 19 "$@"' sh)
results=$(mktemp)
trap 'rm -f "$results" "$cpu_file"' EXIT
failed=0
t_all=$(now)
started=$(date -u +%Y-%m-%dT%H:%MZ)
for target in $targets; do
  mkdir -p "corpus/$target" "artifacts/$target"
  seeds=()
  [ -d "seeds/$target" ] && seeds=("seeds/$target")
  before=$(ls "artifacts/$target")
  log=$(mktemp)
  rc=0
  # A campaign runs at the lowest priority: the machine stays usable. CI runs at normal priority.
  # pkcs11_calls decodes a sequence of C_* calls from its input: longer inputs, longer
  # sequences (its seeds/ entry links to pkcs11-module/tests/c_abi_fuzz/seeds, which the stable
  # test replays too).
  extra=()
  [ "$target" = pkcs11_calls ] && extra=(-max_len=1024)
  child_cpu
  cpu0=$child_cpu_s
  "${nice[@]}" cargo +nightly fuzz run "$target" "corpus/$target" "${seeds[@]}" -- \
    -max_total_time="$seconds" -print_final_stats=1 "${extra[@]}" >"$log" 2>&1 || rc=$?
  child_cpu
  cpu=$((child_cpu_s - cpu0))
  runs=$(grep -oE "Done [0-9]+ runs" "$log" | grep -oE "[0-9]+" | tail -1 || true)
  # Stopped by a finding: no "Done" line; the executed units, or the last status line, say it.
  [ -n "$runs" ] || runs=$(grep -oE "stat::number_of_executed_units: [0-9]+" "$log" | grep -oE "[0-9]+$" | tail -1 || true)
  [ -n "$runs" ] || runs=$(grep -oE "^#[0-9]+" "$log" | tr -d '#' | tail -1 || true)
  stat=$(grep -E "^#[0-9]+.*cov: " "$log" | tail -1 || true)
  cov=$(grep -oE "cov: [0-9]+" <<<"$stat" | grep -oE "[0-9]+" || true)
  ft=$(grep -oE "ft: [0-9]+" <<<"$stat" | grep -oE "[0-9]+" || true)
  corpus=$(grep -oE "corp: [0-9]+" <<<"$stat" | grep -oE "[0-9]+" || true)
  # libFuzzer leaves crash-*, oom-* (e.g. an allocation sized by a hostile length field),
  # leak-* or timeout-* for what it finds; each is a bug. slow-unit-* only says a machine was busy.
  found=$(comm -13 <(echo "$before") <(ls "artifacts/$target") | grep -v '^slow-unit-' || true)
  echo "fuzz: $target: ${runs:-?} runs in ${seconds} s (${cpu} s of CPU), cov ${cov:-?}, ft ${ft:-?}, corpus ${corpus:-?}, findings: ${found:-none}"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$target" "$seconds" "$cpu" "${runs:-?}" "${cov:-?}" "${ft:-?}" \
    "${corpus:-?}" "$(echo ${found:-none})" >>"$results"
  if [ -n "$found" ] || [ "$rc" != 0 ] || [ -z "$runs" ]; then
    grep -E "ERROR|SUMMARY|panicked|==[0-9]+==" "$log" | head -20 >&2 || true
    tail -30 "$log" >&2
    echo "fuzz: $target failed (exit $rc); new artifacts: ${found:-none}" >&2
    failed=1
  fi
  rm -f "$log"
done
echo "fuzz: runs took $(($(now) - t_all)) s"

if [ "$long" = 1 ]; then
  doc="$root/docs/fuzzing.md"
  {
    echo
    echo "Campaign started $started, $(nproc) cores (load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)), ${seconds} s per target, commit $(git -C "$root" rev-parse --short HEAD):"
    echo
    echo "| target | seconds | CPU s | runs | cov | ft | corpus | findings |"
    echo "|---|---|---|---|---|---|---|---|"
    while IFS=$'\t' read -r t s u r c f n x; do
      echo "| $t | $s | $u | $r | $c | $f | $n | $x |"
    done <"$results"
  } >>"$doc"
  echo "fuzz: figures appended to $doc"
fi
exit "$failed"
