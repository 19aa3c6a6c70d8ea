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

# shellcheck source=scripts/stage-files.sh
source scripts/stage-files.sh
stage_files "$root" "$release" "$pkcs11_dir" 755 /usr/lib64/mozilla/pkcs11-modules \
  /usr/share/zsh/site-functions strip
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
