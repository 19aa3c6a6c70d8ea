#!/usr/bin/env bash
# The release binaries the packages ship (libcpx_pkcs11.so and cpx), built once for both the .deb
# and the .rpm, against glibc 2.28 so that one build runs on RHEL/Rocky/Alma 8 and 9, Fedora,
# Debian 11+ and Ubuntu 20.04+. Prints the directory holding them.
#
#   ./scripts/build-release.sh                 # for this machine (x86_64 or aarch64)
#   CPX_ARCH=arm64 ./scripts/build-release.sh  # cross-built for arm64 (Debian's architecture name)
#   ./scripts/build-release.sh --example NAME  # a pkcs11-module example, same target and flags;
#                                              # prints its path (scripts/arm64-check.sh)
#
# A cross build links against the target's libpcsclite from Debian's multiarch package
# (`libpcsclite-dev:arm64`, scripts/system-packages.sh) and needs `rustup target add`.
#
# cargo-zigbuild links with zig's glibc 2.28 stubs (Debian 12's own glibc is 2.36, and a plain
# `cargo build` there asks for GLIBC_2.34 symbols, which RHEL 8 lacks). Both tools are installed
# when missing, pinned: zig from PyPI (the `ziglang` wheel) in a virtualenv under target/, and
# cargo-zigbuild with `cargo install --locked`. The result is checked: no symbol newer than
# GLIBC_2.28, and no test backend compiled in.
set -euo pipefail
cd "$(dirname "$0")/.."
example=
if [ "${1:-}" = --example ]; then
  example=${2:?--example needs a name}
fi
ZIGLANG_VERSION=0.17.1
ZIGBUILD_VERSION=0.24.1
GLIBC=2.28
host=$(rustc -vV | sed -n 's/^host: //p')
case "$host" in
  *-unknown-linux-gnu) ;;
  *) echo "cpx: build-release.sh builds on a Linux glibc host, not $host" >&2; exit 1 ;;
esac
case "${CPX_ARCH:-}" in
  "") triple=$host ;;
  amd64) triple=x86_64-unknown-linux-gnu ;;
  arm64) triple=aarch64-unknown-linux-gnu ;;
  *) echo "cpx: CPX_ARCH is amd64 or arm64, not $CPX_ARCH" >&2; exit 1 ;;
esac
multiarch=${triple%%-*}-linux-gnu
target=${CARGO_TARGET_DIR:-target}
if [ "$triple" != "$host" ]; then
  rustup target list --installed | grep -x "$triple" >/dev/null || rustup target add "$triple" >&2
  [ -e "/usr/lib/$multiarch/libpcsclite.so" ] || {
    echo "cpx: /usr/lib/$multiarch/libpcsclite.so is missing (Debian: dpkg --add-architecture ${CPX_ARCH}; apt install libpcsclite-dev:${CPX_ARCH})" >&2
    exit 1
  }
fi

venv=$target/zig-venv
if ! "$venv/bin/python3" -m ziglang version 2>/dev/null | grep -x "$ZIGLANG_VERSION" >/dev/null; then
  echo "cpx: installing zig $ZIGLANG_VERSION (PyPI ziglang) in $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "ziglang==$ZIGLANG_VERSION" >&2
fi
if ! cargo zigbuild --help >/dev/null 2>&1 ||
  ! cargo install --list | grep "^cargo-zigbuild v$ZIGBUILD_VERSION:" >/dev/null; then
  echo "cpx: installing cargo-zigbuild $ZIGBUILD_VERSION" >&2
  cargo install -q --locked cargo-zigbuild --version "$ZIGBUILD_VERSION" >&2
fi

# cargo-zigbuild runs `python3 -m ziglang` when there is no `zig`: the venv's python first.
# --allow-shlib-undefined: the build machine's libpcsclite.so (which RHEL replaces with its own)
# names glibc 2.33 symbols that the 2.28 stubs do not have; only our own objects are held to 2.28.
# The target's libpcsclite: its multiarch directory, and pkg-config told where its .pc file is.
zigbuild() {
  PATH="$PWD/$venv/bin:$PATH" \
    RUSTFLAGS="-C link-arg=-Wl,--allow-shlib-undefined -L /usr/lib/$multiarch" \
    PKG_CONFIG_ALLOW_CROSS=1 PKG_CONFIG_LIBDIR="/usr/lib/$multiarch/pkgconfig:/usr/share/pkgconfig" \
    cargo zigbuild --release --locked --quiet --target "$triple.$GLIBC" "$@" >&2
}
out=$target/$triple/release
if [ -n "$example" ]; then
  # An example is built with the dev-dependencies' features (the test backend among them): it
  # goes to examples/, and the packaged library is not taken from this build.
  zigbuild -p cpx-pkcs11 --example "$example"
  echo "$out/examples/$example"
  exit 0
fi
zigbuild -p cpx-pkcs11 -p cpx-cli

for f in "$out/libcpx_pkcs11.so" "$out/cpx"; do
  # readelf reads any architecture's ELF (this machine's objdump only its own).
  newest=$(readelf --dyn-syms -W "$f" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)
  if [ "$(printf '%s\n' "$newest" "GLIBC_$GLIBC" | sort -V | tail -1)" != "GLIBC_$GLIBC" ]; then
    echo "cpx: $f needs $newest, newer than glibc $GLIBC" >&2
    exit 1
  fi
done
# The module's `virtual-readers` feature (in-process emulated readers, for tests and fuzzing) is
# never in a release build: a library built with it exports this marker.
if readelf --dyn-syms -W "$out/libcpx_pkcs11.so" | awk '$7 != "UND" { print $8 }' |
  grep cpx_pkcs11_test_backend_virtual_readers >/dev/null; then
  echo "cpx: libcpx_pkcs11.so was built with the virtual-readers test backend" >&2
  exit 1
fi
echo "$out"
