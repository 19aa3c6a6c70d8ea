#!/usr/bin/env bash
# Outside cpx-card's generation modules (crates/cpx-card/src/generation/), no code names a card
# generation to decide behaviour: it reads the generation's capabilities
# (`cpx_card::Capabilities`) instead, so that adding a generation touches no other file (issue 16).
#
# Fails when a non-comment line of production code in the scanned trees names a generation:
# `Generation::Cps3`-style constants, `Cps3`/`Cps4`/`Cps5…` identifiers (not `Cps2ter`, the CPS3's CPS2ter volet), or
# `ExchangePolicy::CPS…`. Test code is not scanned: files named tests.rs, tests/ directories,
# and everything after a file's first `#[cfg(test)]`.
#
# Usage: scripts/check-generation-neutral.sh [ROOT]   (ROOT: the repository, default: this one)
#        scripts/check-generation-neutral.sh --self-test   (checks that the lint can fail)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"

if [ "${1:-}" = "--self-test" ]; then
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  for d in pkcs11-module/src cli/src crates/cpx-card/src/generation crates/cpx-transport/src; do
    mkdir -p "$tmp/$d"
  done
  cat > "$tmp/cli/src/ok.rs" <<'EOF'
// A comment may name Generation::Cps3.
fn pss(card: &Card) -> bool {
    card.generation().capabilities().pss
}
#[cfg(test)]
mod tests {
    const G: Generation = Generation::Cps4;
}
EOF
  echo 'pub const Cps9: Generation = Generation(&Cps9);' > "$tmp/crates/cpx-card/src/generation/cps9.rs"
  if ! "$here/check-generation-neutral.sh" "$tmp" > /dev/null; then
    echo "self-test: the lint refused generation-neutral code" >&2
    exit 1
  fi
  for bad in 'if g == Generation::Cps4 {' 'Cps3 => 0xE7,' 'channel.set_policy(ExchangePolicy::CPS3);'; do
    printf 'fn f() {\n    %s\n}\n' "$bad" > "$tmp/pkcs11-module/src/bad.rs"
    if "$here/check-generation-neutral.sh" "$tmp" > /dev/null 2>&1; then
      echo "self-test: the lint accepted \`$bad\`" >&2
      exit 1
    fi
  done
  rm "$tmp/pkcs11-module/src/bad.rs"
  echo "check-generation-neutral self-test: ok"
  exit 0
fi

root="${1:-$here/..}"
cd "$root"
found=0
while IFS= read -r -d '' f; do
  case "$f" in
    crates/cpx-card/src/generation/* | */tests/* | */tests.rs) continue ;;
  esac
  hits="$(awk '
    /^[[:space:]]*#\[cfg\(test\)\]/ { exit }
    /^[[:space:]]*\/\// { next }
    /Generation::[A-Z]|(^|[^A-Za-z0-9_])Cps([3-9]|[1-9][0-9])|ExchangePolicy::CPS/ { printf "%s:%d: %s\n", FILENAME, FNR, $0 }
  ' "$f")"
  if [ -n "$hits" ]; then
    printf '%s\n' "$hits"
    found=1
  fi
done < <(find pkcs11-module/src cli/src crates/cpx-card/src crates/cpx-transport/src -name '*.rs' -print0 2> /dev/null)

if [ "$found" = 1 ]; then
  echo "check-generation-neutral: the lines above name a card generation outside" \
    "crates/cpx-card/src/generation/; read Generation::capabilities() instead" >&2
  exit 1
fi
echo "check-generation-neutral: ok"
