#!/usr/bin/env bash
# Install the Debian package, use cpx only from the installed paths against emulated CPS3 and CPS4
# cards behind a private pcscd, then remove and purge it and check nothing is left.
#
#   sudo ./scripts/deb-smoke-test.sh [target/debian/cpx_<version>_<arch>.deb]
#
# It changes the system (dpkg -i / -P): CI runs it (.ci/run); on a workstation run it in a
# throw-away machine. The private pcscd and the emulated cards come from the source tree's test
# harness (cpx-sandbox); everything under test comes from the package.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "deb-smoke-test: run as root (it installs the package)" >&2; exit 1; }

deb=${1:-$(./scripts/build-deb.sh | tail -n 1)}
cargo build --quiet --locked -p cpx-testkit --bin cpx-sandbox
sandbox=${CARGO_TARGET_DIR:-target}/debug/cpx-sandbox
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
module=/usr/lib/$multiarch/pkcs11/libcpx_pkcs11.so

# No `cmd | grep -q` below: grep -q stops reading at the first match, the writer then fails on
# the closed pipe and pipefail reports that. grep >/dev/null reads everything.
fail() { echo "deb-smoke-test: FAIL: $*" >&2; exit 1; }
step() { echo "deb-smoke-test: $*"; }

if dpkg-query -W -f='${Status}' cpx 2>/dev/null | grep "install ok installed" >/dev/null; then
  fail "a cpx package is already installed; this test installs and purges its own"
fi
files=(
  "$module" /usr/bin/cpx /usr/share/p11-kit/modules/cpx.module
  /usr/lib/mozilla/pkcs11-modules/cpx.json /usr/lib/udev/rules.d/60-cpx-nfc-readers.rules
  /usr/share/cpx/modprobe.d/cpx-blacklist-nfc.conf /usr/share/man/man1/cpx.1.gz
  /usr/share/man/man1/cpx-status.1.gz /usr/share/bash-completion/completions/cpx
  /usr/share/zsh/vendor-completions/_cpx /usr/share/fish/vendor_completions.d/cpx.fish
  /usr/share/doc/cpx/copyright /usr/share/doc/cpx/udev/README.md /usr/share/lintian/overrides/cpx
)
blacklist=/etc/modprobe.d/cpx-blacklist-nfc.conf

# lintian: no error, no warning; informational tags only where packaging/debian/lintian-overrides
# gives the reason (the overrides ship in the package, so lintian applies them).
step "lintian $deb"
tags=$(lintian --info --display-info --pedantic "$deb" 2>&1 | grep -E '^[EWIPX]: ' || true)
[ -z "$tags" ] || fail "lintian: $tags"
[ -e "$blacklist" ] && fail "$blacklist exists before the test; it checks that the package does not create it"

# Scratch files of this run only (a fixed /tmp name could be another run's, or a planted link).
work=$(mktemp -d "${TMPDIR:-/tmp}/cpx-smoke.XXXXXX")

step "dpkg -i $deb"
# A failure below must not leave the package installed (the next run would refuse to start).
trap 'dpkg -P cpx >/dev/null 2>&1 || true; rm -f "$blacklist"; rm -rf "$work"' EXIT
dpkg -i "$deb"
for f in "${files[@]}"; do [ -f "$f" ] || fail "$f not installed"; done
dpkg -L cpx | grep "^$module\$" >/dev/null || fail "dpkg -L does not list the module"
/usr/bin/cpx --version | grep "^cpx " >/dev/null || fail "cpx --version"
bash -n /usr/share/bash-completion/completions/cpx || fail "bash completion does not parse"
zcat /usr/share/man/man1/cpx.1.gz | grep '^\.TH' >/dev/null || fail "cpx.1 is not a man page"
python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); assert m["type"]=="pkcs11" and m["path"]==sys.argv[2], m' \
  /usr/lib/mozilla/pkcs11-modules/cpx.json "$module" || fail "Mozilla manifest"
p11-kit list-modules | grep "^cpx: libcpx_pkcs11.so" >/dev/null || fail "p11-kit does not list cpx"
[ ! -e "$blacklist" ] || fail "the package turned the NFC blacklist on; it is opt-in"
[ "$(stat -c %a "$module")" = 644 ] || fail "$module is executable"

step "installed cpx and module against emulated cards"
# PATH keeps /usr/bin first: the cpx under test is the installed one.
# cpx-sandbox starts the command once PC/SC shows both cards.
"$sandbox" --card cps3-doctor --card cps4-doctor -- env PATH=/usr/bin:/bin MODULE="$module" WORK="$work" bash -euo pipefail -c '
  [ "$(command -v cpx)" = /usr/bin/cpx ]
  cpx readers --json | python3 -c "import json,sys; d=json.load(sys.stdin); assert sum(1 for r in d[\"readers\"] if r[\"state\"] == \"card_present\") == 2, d"
  cpx status --reader "cpx virtual 1 00 00" | grep 9900000001 >/dev/null
  pkcs11-tool --module "$MODULE" -L | grep "CPS3v3-9900000001" >/dev/null
  pkcs11-tool --module "$MODULE" -L | grep "CPS4v1-9900000006" >/dev/null
  # Through p11-kit and the installed module file only (no --provider).
  p11tool --list-tokens | grep "Label: CPS4v1-9900000006" >/dev/null
  GNUTLS_PIN=1234 p11tool --login --list-privkeys "pkcs11:token=CPS3v3-9900000001" | grep "object=CPS_PRIV_AUT" >/dev/null
  echo "smoke test signature" > "$WORK"/smoke.txt
  # pkcs11-tool 0.23 picks the key to sign with by --id only (it ignores --label).
  AUTH_ID=$(pkcs11-tool --module "$MODULE" --token-label CPS4v1-9900000006 -O --type cert |
    grep -A3 "label: *Certificat d.Authentification CPS" | sed -n "s/^ *ID: *//p")
  [ -n "$AUTH_ID" ]
  pkcs11-tool --module "$MODULE" --token-label CPS4v1-9900000006 --login --pin 1234 --sign \
    --mechanism SHA256-RSA-PKCS-PSS --id "$AUTH_ID" -i "$WORK"/smoke.txt -o "$WORK"/smoke.sig
  pkcs11-tool --module "$MODULE" --token-label CPS4v1-9900000006 --read-object --type cert \
    --id "$AUTH_ID" -o "$WORK"/smoke.der
  openssl x509 -inform der -in "$WORK"/smoke.der -pubkey -noout > "$WORK"/smoke.pub
  openssl dgst -sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32 \
    -verify "$WORK"/smoke.pub -signature "$WORK"/smoke.sig "$WORK"/smoke.txt | grep "Verified OK" >/dev/null
' || fail "installed cpx against the emulated cards"

step "NFC blacklist turned on as udev/README.md says, then dpkg -r cpx"
# kmod creates /etc/modprobe.d on a real system; a container may lack it.
[ -d /etc/modprobe.d ] || { mkdir /etc/modprobe.d && made_modprobe_d=1; }
ln -s /usr/share/cpx/modprobe.d/cpx-blacklist-nfc.conf /etc/modprobe.d/
grep "^blacklist pn533_usb" "$blacklist" >/dev/null || fail "the linked blacklist"
dpkg -r cpx
for f in "${files[@]}"; do
  [ ! -e "$f" ] || fail "$f left after dpkg -r"
done
[ ! -L "$blacklist" ] || fail "dpkg -r left the blacklist link (it would dangle)"
step "a copied blacklist, then dpkg -i and dpkg -P cpx"
dpkg -i "$deb" >/dev/null
cp /usr/share/cpx/modprobe.d/cpx-blacklist-nfc.conf "$blacklist"
dpkg -P cpx
[ ! -e "$blacklist" ] || fail "$blacklist left after purge"
[ -z "${made_modprobe_d:-}" ] || rmdir /etc/modprobe.d
p11-kit list-modules | grep "^cpx:" >/dev/null && fail "p11-kit still lists cpx"
trap 'rm -rf "$work"' EXIT
step "ok: installed, used from the installed paths, removed and purged cleanly"
