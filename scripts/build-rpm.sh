#!/usr/bin/env bash
# Build the RPM of cpx for RHEL/Rocky/Alma 8 and 9 and Fedora (x86_64):
# target/rpm/cpx-<version>-1.x86_64.rpm. Prints its path.
#
#   ./scripts/build-rpm.sh
#   CPX_RPM_OUT=DIR ./scripts/build-rpm.sh
#
# Built on Debian with its `rpm` package (rpmbuild), from the portable release binaries of
# scripts/build-release.sh (glibc 2.28, the same as the .deb's) and packaging/rpm/cpx.spec. The
# paths are the Red Hat family's: the module in /usr/lib64/pkcs11 (p11-kit's module directory
# there), Mozilla's manifest in /usr/lib64/mozilla/pkcs11-modules, zsh completions in
# site-functions. scripts/rpm-check.sh checks the result (rpmlint, file list, dependencies, the
# packaged binaries against emulated cards).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v rpmbuild >/dev/null || { echo "cpx: rpmbuild is missing (Debian package rpm)" >&2; exit 1; }

release=$(scripts/build-release.sh)
target=${CARGO_TARGET_DIR:-target}
version=$(cargo metadata --no-deps --format-version 1 |
  python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"]=="cpx-cli"))')
out=${CPX_RPM_OUT:-$target/rpm}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/stage
pkcs11_dir=/usr/lib64/pkcs11

install -Dm755 "$release/libcpx_pkcs11.so" "$root$pkcs11_dir/libcpx_pkcs11.so"
install -Dm755 "$release/cpx" "$root/usr/bin/cpx"
strip --remove-section=.comment --remove-section=.note --strip-unneeded \
  "$root$pkcs11_dir/libcpx_pkcs11.so" "$root/usr/bin/cpx"
install -Dm644 packaging/p11-kit/cpx.module "$root/usr/share/p11-kit/modules/cpx.module"
sed "s|@PKCS11_DIR@|$pkcs11_dir|" packaging/mozilla/cpx.json |
  install -Dm644 /dev/stdin "$root/usr/lib64/mozilla/pkcs11-modules/cpx.json"
install -Dm644 udev/60-cpx-nfc-readers.rules "$root/usr/lib/udev/rules.d/60-cpx-nfc-readers.rules"
install -Dm644 udev/cpx-blacklist-nfc.conf "$root/usr/share/cpx/modprobe.d/cpx-blacklist-nfc.conf"
mkdir -p "$root/usr/share/man/man1"
"$root/usr/bin/cpx" man --dir "$root/usr/share/man/man1"
gzip -9n "$root"/usr/share/man/man1/*.1
"$root/usr/bin/cpx" completions bash | install -Dm644 /dev/stdin "$root/usr/share/bash-completion/completions/cpx"
"$root/usr/bin/cpx" completions zsh | install -Dm644 /dev/stdin "$root/usr/share/zsh/site-functions/_cpx"
"$root/usr/bin/cpx" completions fish | install -Dm644 /dev/stdin "$root/usr/share/fish/vendor_completions.d/cpx.fish"
doc=$root/usr/share/doc/cpx
install -Dm644 README.md "$doc/README.md"
install -Dm644 udev/README.md "$doc/udev/README.md"
for f in docs/*.md; do install -Dm644 "$f" "$doc/$f"; done
# The licence text, from Debian's base-files (LGPL-2.1; "or later" is the Cargo.toml licence).
install -Dm644 /usr/share/common-licenses/LGPL-2.1 "$root/usr/share/licenses/cpx/COPYING"

mkdir -p "$work/top" "$out"
# The changelog date: the last commit's, so that two builds of one commit are the same.
date=$(LC_ALL=C date -u -d @"${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}" '+%a %b %d %Y')
sed -e "s|@VERSION@|$version|g" -e "s|@SRC@|$root|" -e "s|@DATE@|$date|" packaging/rpm/cpx.spec >"$work/cpx.spec"
rpmbuild -bb --quiet --target x86_64-redhat-linux \
  --define "_topdir $work/top" --define "_rpmdir $work/rpms" \
  --define "_build_id_links none" "$work/cpx.spec" >&2
rpm=$(find "$work/rpms" -name "cpx-$version-1*.x86_64.rpm" | head -1)
[ -n "$rpm" ] || { echo "cpx: rpmbuild produced no package" >&2; exit 1; }
cp "$rpm" "$out/"
echo "$out/$(basename "$rpm")"
