#!/usr/bin/env bash
# Install the Debian packages cpx's build, demo and tests need, only those missing.
# Sourced or run by scripts/demo.sh, scripts/build-deb.sh and scripts/test.sh; needs root or sudo
# when something is missing. The peer programs only the tests use (browsers, OpenSSL/GnuTLS
# clients…) are installed when CPX_PACKAGES=test (scripts/test.sh sets it), not for the demo.
set -euo pipefail

CPX_DEB_PACKAGES=(
  pcscd libpcsclite-dev pkg-config   # PC/SC daemon and the library the pcsc crate links
  vsmartcard-vpcd                    # virtual readers our emulated cards plug into
  pcsc-tools                         # pcsc_scan, scriptor: manual checks
  opensc opensc-pkcs11               # the peer driver and pkcs11-tool (tests compare against it)
  util-linux                         # unshare: private pcscd in its own mount namespace
  openssl                            # certificate checks in the test-PKI tests
  dpkg-dev                           # dpkg-shlibdeps, dpkg-architecture: scripts/build-deb.sh
  binutils python3-venv              # scripts/build-release.sh: objdump/nm checks; zig from PyPI in a venv
)
CPX_TEST_PACKAGES=(
  libnss3-tools                      # modutil, certutil, cmsutil: the module in an NSS database
                                     # (browsers), S/MIME signing and verifying (clients test)
  gnutls-bin p11-kit                 # p11tool and p11-kit: the module through GnuTLS and p11-kit
  libengine-pkcs11-openssl           # OpenSSL's pkcs11 engine: signatures with pkcs11: URIs
  curl                               # clients test: curl --cert/--key pkcs11: URIs (OpenSSL engine)
  chromium                           # browser test: TLS client authentication through NSS
  firefox-esr                        # browser test: the module from policies.json and the native manifest
  xvfb                               # browser test: a display for the browsers' PIN dialog
  xdotool                            # browser test: types the PIN into that dialog
  x11-apps                           # browser test: xwd, the screenshot kept as a CI artefact
  imagemagick                        # browser test: convert, the screenshot to PNG
  zip                                # browser test: packs the WebExtension that installs the module
  gdb                                # cli pin_memory test: core dump of cpx at exit, searched for the PIN
  default-jdk-headless               # java test: javac, java, keytool and SunPKCS11 (OpenJDK 17 on
                                     # bookworm; the JDK without its desktop parts)
  pkcs11-provider                    # clients test: OpenSSL 3 provider for pkcs11: URIs (bookworm: from
                                     # bookworm-backports, added below; later releases: main)
)

# The package tests (scripts/test.sh with CPX_TEST_DEB=1, as CI runs it) build and check the
# .deb, the RPM and the arm64 .deb; only they add arm64 to dpkg's architectures.
CPX_PACKAGE_TEST_PACKAGES=(
  lintian                            # the .debs have no lintian error or warning
  rpm rpmlint rpm2cpio cpio          # scripts/rpm-check.sh: rpmbuild, rpmlint, extraction
  qemu-user file                     # scripts/arm64-check.sh: the arm64 binaries run here
  binutils-aarch64-linux-gnu         # the arm64 .deb: its strip
  libpcsclite-dev:arm64              # the arm64 .deb: the library the cross-built binaries link
                                     # (multiarch; pulls libc6:arm64, whose loader qemu-aarch64 uses)
)

if [ "${CPX_PACKAGES:-}" = test ]; then
  CPX_DEB_PACKAGES+=("${CPX_TEST_PACKAGES[@]}")
  if [ "${CPX_TEST_DEB:-0}" = 1 ] && [ "$(dpkg --print-architecture)" = amd64 ]; then
    CPX_DEB_PACKAGES+=("${CPX_PACKAGE_TEST_PACKAGES[@]}")
  fi
fi
missing=()
for p in "${CPX_DEB_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "cpx: installing Debian packages: ${missing[*]}" >&2
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "cpx: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
    SUDO="sudo"
  fi
  export DEBIAN_FRONTEND=noninteractive
  release="$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"
  main=("${missing[@]}")
  backports=()
  if [ "$release" = bookworm ]; then
    main=()
    for p in "${missing[@]}"; do
      if [ "$p" = pkcs11-provider ]; then backports+=("$p"); else main+=("$p"); fi
    done
  fi
  # Add bookworm-backports once (Debian pins backports at priority 100: nothing else is taken from
  # it unless asked for with -t).
  if [ ${#backports[@]} -gt 0 ] && ! grep -rqs --include='*.list' --include='*.sources' \
      'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    printf '%s\n' 'Types: deb' 'URIs: http://deb.debian.org/debian' 'Suites: bookworm-backports' \
      'Components: main' 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' |
      $SUDO tee /etc/apt/sources.list.d/bookworm-backports.sources >/dev/null
  fi
  # A package of another architecture (libpcsclite-dev:arm64) needs it added to dpkg first.
  for p in "${missing[@]}"; do
    case "$p" in
      *:*) foreign=${p##*:}
        dpkg --print-foreign-architectures | grep -x "$foreign" >/dev/null ||
          $SUDO dpkg --add-architecture "$foreign" ;;
    esac
  done
  $SUDO apt-get update -qq
  if [ ${#main[@]} -gt 0 ]; then
    $SUDO apt-get install -y -qq --no-install-recommends "${main[@]}" >/dev/null
  fi
  if [ ${#backports[@]} -gt 0 ]; then
    $SUDO apt-get install -y -qq --no-install-recommends -t bookworm-backports "${backports[@]}" >/dev/null
  fi
fi

if ! command -v cargo >/dev/null; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  else
    echo "cpx: no Rust toolchain: install one with rustup (https://rustup.rs), Rust 1.88 or later" >&2
    exit 1
  fi
fi
