#!/usr/bin/env bash
# The main job on the embedded default: a private pcscd with a virtual card, and what cpx sees.
# Touches no other pcscd on the machine; stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/system-packages.sh

cargo build --release --quiet -p cpx-cli -p cpx-testkit --bins
exec target/release/cpx-sandbox --test-card -- target/release/cpx readers "$@"
