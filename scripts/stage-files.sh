# shellcheck shell=bash
# Sourced by scripts/build-deb.sh and scripts/build-rpm.sh: the files both packages ship, staged
# under a root directory with the layout each distribution family wants.
#
#   stage_files ROOT RELEASE PKCS11_DIR LIB_MODE MOZILLA_DIR ZSH_DIR STRIP [RUNNER...]
#
# RELEASE holds the release binaries (scripts/build-release.sh); PKCS11_DIR is where the module
# goes (p11-kit's module directory); LIB_MODE its mode (Debian: 644, Red Hat: 755);
# MOZILLA_DIR the directory of Mozilla's pkcs11-modules manifests; ZSH_DIR zsh's completion
# directory; STRIP the strip of the binaries' architecture; RUNNER what runs the packaged `cpx`
# (qemu-user for a cross build) to write its own man pages and completions.
stage_files() {
  local root=$1 release=$2 pkcs11_dir=$3 lib_mode=$4 mozilla_dir=$5 zsh_dir=$6 strip=$7
  shift 7
  local run=("$@")
  install -Dm"$lib_mode" "$release/libcpx_pkcs11.so" "$root$pkcs11_dir/libcpx_pkcs11.so"
  install -Dm755 "$release/cpx" "$root/usr/bin/cpx"
  # As dh_strip does: debug symbols and the compiler's .comment/.note sections out.
  "$strip" --remove-section=.comment --remove-section=.note --strip-unneeded \
    "$root$pkcs11_dir/libcpx_pkcs11.so" "$root/usr/bin/cpx"
  install -Dm644 packaging/p11-kit/cpx.module "$root/usr/share/p11-kit/modules/cpx.module"
  sed "s|@PKCS11_DIR@|$pkcs11_dir|" packaging/mozilla/cpx.json |
    install -Dm644 /dev/stdin "$root$mozilla_dir/cpx.json"
  install -Dm644 udev/60-cpx-nfc-readers.rules "$root/usr/lib/udev/rules.d/60-cpx-nfc-readers.rules"
  # Not in /etc/modprobe.d: blacklisting the kernel's NFC driver is the administrator's choice
  # (it takes the reader from neard); udev/README.md says how to turn it on, and removing the
  # package removes the link.
  install -Dm644 udev/cpx-blacklist-nfc.conf "$root/usr/share/cpx/modprobe.d/cpx-blacklist-nfc.conf"

  mkdir -p "$root/usr/share/man/man1"
  "${run[@]}" "$root/usr/bin/cpx" man --dir "$root/usr/share/man/man1"
  gzip -9n "$root"/usr/share/man/man1/*.1
  "${run[@]}" "$root/usr/bin/cpx" completions bash |
    install -Dm644 /dev/stdin "$root/usr/share/bash-completion/completions/cpx"
  "${run[@]}" "$root/usr/bin/cpx" completions zsh | install -Dm644 /dev/stdin "$root$zsh_dir/_cpx"
  "${run[@]}" "$root/usr/bin/cpx" completions fish |
    install -Dm644 /dev/stdin "$root/usr/share/fish/vendor_completions.d/cpx.fish"

  local doc=$root/usr/share/doc/cpx f
  install -Dm644 README.md "$doc/README.md"
  install -Dm644 udev/README.md "$doc/udev/README.md"
  for f in docs/*.md; do install -Dm644 "$f" "$doc/$f"; done
}
