#!/usr/bin/env bash
# Check the RPM (scripts/build-rpm.sh) as far as a Debian machine can: rpmlint clean, the file
# list and the dependencies as intended (nothing newer than glibc 2.28, so RHEL 8 installs it),
# and the packaged binaries — extracted, not installed — against emulated CPS3 and CPS4 cards
# behind a private pcscd.
#
#   ./scripts/rpm-check.sh [target/rpm/cpx-<version>-1.x86_64.rpm]
#
# Needs no root. CI runs it with the Debian package test (scripts/test.sh, CPX_TEST_DEB=1).
set -euo pipefail
cd "$(dirname "$0")/.."
fail() { echo "rpm-check: FAIL: $*" >&2; exit 1; }
step() { echo "rpm-check: $*"; }

rpm=${1:-$(./scripts/build-rpm.sh | tail -n 1)}
[ -f "$rpm" ] || fail "no package $rpm"

step "rpmlint $rpm"
lint=$(rpmlint -c packaging/rpm/rpmlint.toml "$rpm" 2>&1) || true
echo "$lint" | grep "0 errors, 0 warnings" >/dev/null || fail "rpmlint: $lint"

step "file list"
expected="/usr/bin/cpx
/usr/lib/udev/rules.d/60-cpx-nfc-readers.rules
/usr/lib64/mozilla
/usr/lib64/mozilla/pkcs11-modules
/usr/lib64/mozilla/pkcs11-modules/cpx.json
/usr/lib64/pkcs11
/usr/lib64/pkcs11/libcpx_pkcs11.so
/usr/share/bash-completion/completions/cpx
/usr/share/cpx
/usr/share/cpx/modprobe.d
/usr/share/cpx/modprobe.d/cpx-blacklist-nfc.conf
/usr/share/doc/cpx
/usr/share/doc/cpx/README.md
/usr/share/doc/cpx/docs
/usr/share/doc/cpx/udev
/usr/share/doc/cpx/udev/README.md
/usr/share/fish/vendor_completions.d/cpx.fish
/usr/share/licenses/cpx/COPYING
$(for c in '' -certs -completions -data -doctor -emulate -help -man -pin -readers -report -sign -status -wait; do
  echo "/usr/share/man/man1/cpx$c.1.gz"; done | sort)
/usr/share/p11-kit/modules/cpx.module
/usr/share/zsh/site-functions/_cpx"
# docs/*.md: one per file of the tree.
docs=$(cd docs && ls -- *.md | sed 's|^|/usr/share/doc/cpx/docs/|')
got=$(rpm -qpl "$rpm")
want=$(printf '%s\n%s\n' "$expected" "$docs" | sort)
[ "$(echo "$got" | sort)" = "$want" ] || fail "file list differs: $(diff <(echo "$want") <(echo "$got" | sort) || true)"

step "dependencies"
requires=$(rpm -qpR "$rpm")
echo "$requires" | grep -x 'libpcsclite.so.1()(64bit)' >/dev/null || fail "no libpcsclite requirement: $requires"
unexpected=$(echo "$requires" | grep -vE '^(/bin/sh|rpmlib\(.*|ld-linux-x86-64\.so\.2.*|lib(c|dl|pthread|m|rt|gcc_s)\.so\.[0-9]+(\(\)|\(GLIBC_[0-9.]+\)|\(GCC_[0-9.]+\))\(64bit\)|libpcsclite\.so\.1\(\)\(64bit\))$' || true)
[ -z "$unexpected" ] || fail "unexpected requirements: $unexpected"
newest=$(echo "$requires" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)
[ "$(printf '%s\n' "$newest" GLIBC_2.28 | sort -V | tail -1)" = GLIBC_2.28 ] ||
  fail "needs $newest: RHEL 8 has glibc 2.28"
[ "$(rpm -qp --recommends "$rpm" | sort | tr '\n' ' ')" = "p11-kit pcsc-lite " ] || fail "recommends"
[ "$(rpm -qp --qf '%{ARCH}' "$rpm")" = x86_64 ] || fail "architecture"

step "the packaged cpx and module against emulated cards"
work=$(mktemp -d "${TMPDIR:-/tmp}/cpx-rpm.XXXXXX")
trap 'rm -rf "$work"' EXIT
rpm_abs=$(realpath "$rpm")
(cd "$work" && rpm2cpio "$rpm_abs" | cpio -idm --quiet)
root=$work
module=$root/usr/lib64/pkcs11/libcpx_pkcs11.so
[ -f "$module" ] || fail "module not extracted"
grep -x 'module: libcpx_pkcs11.so' "$root/usr/share/p11-kit/modules/cpx.module" >/dev/null || fail "p11-kit module file"
python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); assert m["path"]=="/usr/lib64/pkcs11/libcpx_pkcs11.so", m' \
  "$root/usr/lib64/mozilla/pkcs11-modules/cpx.json" || fail "Mozilla manifest"
cargo build --quiet --locked -p cpx-testkit --bin cpx-sandbox
sandbox=${CARGO_TARGET_DIR:-target}/debug/cpx-sandbox
"$sandbox" --card cps3-doctor --card cps4-doctor -- env CPX="$root/usr/bin/cpx" MODULE="$module" WORK="$work" bash -euo pipefail -c '
  "$CPX" status --reader "cpx virtual 1 00 00" | grep 9900000001 >/dev/null
  "$CPX" status --reader "cpx virtual 1 00 01" | grep 9900000006 >/dev/null
  pkcs11-tool --module "$MODULE" -L | grep "CPS3v3-9900000001" >/dev/null
  pkcs11-tool --module "$MODULE" -L | grep "CPS4v1-9900000006" >/dev/null
  echo "rpm check signature" > "$WORK"/msg.txt
  # pkcs11-tool 0.23 picks the key to sign with by --id only.
  AUTH_ID=$(pkcs11-tool --module "$MODULE" --token-label CPS3v3-9900000001 -O --type cert |
    grep -A3 "label: *Certificat d.Authentification CPS" | sed -n "s/^ *ID: *//p")
  [ -n "$AUTH_ID" ]
  pkcs11-tool --module "$MODULE" --token-label CPS3v3-9900000001 --login --pin 1234 --sign \
    --mechanism SHA256-RSA-PKCS --id "$AUTH_ID" -i "$WORK"/msg.txt -o "$WORK"/msg.sig >/dev/null 2>&1
  pkcs11-tool --module "$MODULE" --token-label CPS3v3-9900000001 --read-object --type cert \
    --id "$AUTH_ID" -o "$WORK"/auth.der >/dev/null 2>&1
  openssl x509 -inform der -in "$WORK"/auth.der -pubkey -noout > "$WORK"/auth.pub
  openssl dgst -sha256 -verify "$WORK"/auth.pub -signature "$WORK"/msg.sig "$WORK"/msg.txt | grep "Verified OK" >/dev/null
' || fail "the packaged binaries against the emulated cards"
step "ok: rpmlint clean, files and dependencies as intended, binaries work"
