#!/usr/bin/env bash
# Build the Debian package of cpx: target/debian/cpx_<version>_<arch>.deb.
#
#   ./scripts/build-deb.sh            # release build, then the package
#   CPX_DEB_OUT=DIR ./scripts/build-deb.sh
#   CPX_ARCH=arm64 ./scripts/build-deb.sh     # cross-built for arm64 (scripts/build-release.sh);
#                                             # its cpx runs under qemu-aarch64 for the man pages
#
# Plain dpkg-deb rather than cargo-deb: nothing to install beyond dpkg-dev, and every path below is
# spelled out. The package holds the PKCS#11 module in the multiarch pkcs11 directory, its p11-kit
# module file and Mozilla native manifest, `cpx` with its man pages and completions, the udev rule
# for contactless readers and, inactive until an administrator links it into /etc/modprobe.d, the
# modprobe blacklist (udev/README.md), and the docs. lintian is clean on it (the remaining
# informational tags are overridden, each with its reason, in packaging/debian/lintian-overrides).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/system-packages.sh
source scripts/system-packages.sh
command -v dpkg-shlibdeps >/dev/null || {
  echo "cpx: dpkg-shlibdeps is missing (Debian package dpkg-dev)" >&2
  exit 1
}

# Portable binaries (glibc 2.28), the same the RPM ships: scripts/build-release.sh.
release=$(scripts/build-release.sh)
target=${CARGO_TARGET_DIR:-target}
version=$(cargo metadata --no-deps --format-version 1 |
  python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"]=="cpx-cli"))')
arch=${CPX_ARCH:-$(dpkg --print-architecture)}
multiarch=$(dpkg-architecture -a"$arch" -qDEB_HOST_MULTIARCH 2>/dev/null)
# The packaged cpx writes its own man pages and completions: through qemu-user when cross-built.
run=()
strip=strip
if [ "$arch" != "$(dpkg --print-architecture)" ]; then
  run=("qemu-${multiarch%%-*}")
  strip=${multiarch}-strip
fi
pkcs11_dir=/usr/lib/$multiarch/pkcs11
out=${CPX_DEB_OUT:-$target/debian}
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
chmod 755 "$root"

# A shared library is not executable (Debian policy 8.1; lintian executable-in-usr-lib).
# shellcheck source=scripts/stage-files.sh
source scripts/stage-files.sh
stage_files "$root" "$release" "$pkcs11_dir" 644 /usr/lib/mozilla/pkcs11-modules \
  /usr/share/zsh/vendor-completions "$strip" "${run[@]}"
install -Dm644 packaging/debian/lintian-overrides "$root/usr/share/lintian/overrides/cpx"
doc=$root/usr/share/doc/cpx
cat >"$doc/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: cpx
Files: *
Copyright: 2026 cpx developers
License: LGPL-2.1-or-later
 On Debian systems, the full text of the GNU Lesser General Public License version 2.1 can be
 found in /usr/share/common-licenses/LGPL-2.1.
EOF
printf 'cpx (%s) unstable; urgency=medium\n\n  * Built from the cpx source tree.\n\n -- cpx developers <cpx@example.invalid>  %s\n' \
  "$version" "$(date -R -d @"${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}")" |
  gzip -9n >"$doc/changelog.gz" # a native package: changelog.gz, not changelog.Debian.gz

# Dependencies from the libraries the binaries link (dpkg-shlibdeps wants a debian/control).
shlib=$(mktemp -d)
mkdir "$shlib/debian"
printf 'Source: cpx\n\nPackage: cpx\nArchitecture: any\n' >"$shlib/debian/control"
depends=$(cd "$shlib" && DEB_HOST_ARCH=$arch dpkg-shlibdeps -O "$root/usr/bin/cpx" "$root$pkcs11_dir/libcpx_pkcs11.so" 2>/dev/null |
  sed -n 's/^shlibs:Depends=//p')
rm -rf "$shlib"
[ -n "$depends" ] || { echo "cpx: dpkg-shlibdeps found no dependencies for $arch" >&2; exit 1; }

mkdir -p "$root/DEBIAN"
install -m755 packaging/debian/postrm "$root/DEBIAN/postrm"
cat >"$root/DEBIAN/control" <<EOF
Package: cpx
Version: $version
Architecture: $arch
Maintainer: cpx developers <cpx@example.invalid>
Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)
Depends: $depends
Recommends: pcscd, p11-kit
Suggests: opensc, libnss3-tools
Section: utils
Priority: optional
Homepage: https://example.invalid/cpx
Description: middleware for French health-professional smart cards (CPS3, CPS4)
 cpx talks to the CPx cards issued by the ANS (CPS, CPF, CPE, CPA, CDE/CDA)
 in contact and contactless readers through pcscd. It provides a PKCS#11
 module (libcpx_pkcs11.so), registered with p11-kit, that browsers, OpenSSL,
 GnuTLS and other software load to authenticate and sign with the card, and
 the cpx command to inspect cards, certificates and PINs and diagnose a
 workstation.
EOF
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) >"$root/DEBIAN/md5sums"

mkdir -p "$out"
deb="$out/cpx_${version}_${arch}.deb"
dpkg-deb --root-owner-group --build "$root" "$deb" >/dev/null
echo "$deb"
