#!/usr/bin/env bash
# The arm64 Debian package, cross-built on amd64 (CPX_ARCH=arm64 scripts/build-deb.sh), checked
# as far as an amd64 machine can: lintian clean, and its binaries — extracted, run under
# qemu-user — against emulated CPS3 and CPS4 cards behind this machine's pcscd: the arm64 `cpx`
# reads both cards, and the arm64 module, loaded by an arm64 PKCS#11 client (the cryptoki example
# pkcs11-module/examples/pkcs11_client.rs), lists the tokens, logs in and signs; openssl verifies
# each signature with the card's certificate. pcsc-lite's client protocol is the same on both
# 64-bit little-endian ABIs, so the arm64 libpcsclite talks to the amd64 pcscd.
#
#   ./scripts/arm64-check.sh [target/debian/cpx_<version>_arm64.deb]
#
# Needs no root. CI runs it with the package tests (scripts/test.sh, CPX_TEST_DEB=1).
set -euo pipefail
cd "$(dirname "$0")/.."
fail() { echo "arm64-check: FAIL: $*" >&2; exit 1; }
step() { echo "arm64-check: $*"; }

deb=${1:-$(CPX_ARCH=arm64 ./scripts/build-deb.sh | tail -n 1)}
[ "$(dpkg-deb -f "$deb" Architecture)" = arm64 ] || fail "$deb is not an arm64 package"
step "lintian $deb"
tags=$(lintian --info --display-info --pedantic "$deb" 2>&1 | grep -E '^[EWIPX]: ' || true)
[ -z "$tags" ] || fail "lintian: $tags"

step "the arm64 PKCS#11 client (cryptoki)"
client=$(CPX_ARCH=arm64 scripts/build-release.sh --example pkcs11_client)
target=${CARGO_TARGET_DIR:-target}

work=$(mktemp -d "${TMPDIR:-/tmp}/cpx-arm64.XXXXXX")
trap 'rm -rf "$work"' EXIT
dpkg-deb -x "$deb" "$work/root"
module=$work/root/usr/lib/aarch64-linux-gnu/pkcs11/libcpx_pkcs11.so
cpx=$work/root/usr/bin/cpx
file -b "$module" | grep "ARM aarch64" >/dev/null || fail "the packaged module is not arm64"
qemu-aarch64 "$cpx" --version | grep "^cpx " >/dev/null || fail "the arm64 cpx does not run under qemu-aarch64"

step "the packaged arm64 cpx and module against emulated cards (qemu-aarch64)"
cargo build --quiet --locked -p cpx-testkit --bin cpx-sandbox
sandbox=$target/debug/cpx-sandbox
"$sandbox" --card cps3-doctor --card cps4-doctor -- \
  env CPX="$cpx" MODULE="$module" CLIENT="$client" WORK="$work" bash -euo pipefail -c '
  qemu-aarch64 "$CPX" status --reader "cpx virtual 1 00 00" | grep 9900000001 >/dev/null
  qemu-aarch64 "$CPX" status --reader "cpx virtual 1 00 01" | grep 9900000006 >/dev/null
  for token in CPS3v3-9900000001 CPS4v1-9900000006; do
    mkdir "$WORK/$token"
    echo 1234 | qemu-aarch64 "$CLIENT" "$MODULE" "$token" "$WORK/$token" >"$WORK/$token/out"
    grep -x "token: CPS3v3-9900000001 (model IAS ECC)" "$WORK/$token/out" >/dev/null
    grep -x "token: CPS4v1-9900000006 (model IAS ECC)" "$WORK/$token/out" >/dev/null
    openssl x509 -inform der -in "$WORK/$token/certificate.der" -pubkey -noout >"$WORK/$token/pub"
    openssl dgst -sha256 -verify "$WORK/$token/pub" -signature "$WORK/$token/signature" \
      "$WORK/$token/message" | grep "Verified OK" >/dev/null
  done
' || fail "the arm64 binaries against the emulated cards"
step "ok: lintian clean; arm64 cpx and module work under qemu-aarch64"
