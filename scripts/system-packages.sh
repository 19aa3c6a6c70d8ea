#!/usr/bin/env bash
# Install the Debian packages cpx's build, demo and tests need, only those missing.
# Sourced or run by scripts/demo.sh and scripts/test.sh; needs root or sudo when something is missing.
set -euo pipefail

CPX_DEB_PACKAGES=(
  pcscd libpcsclite-dev pkg-config   # PC/SC daemon and the library the pcsc crate links
  vsmartcard-vpcd                    # virtual readers our emulated cards plug into
  pcsc-tools                         # pcsc_scan, scriptor: manual checks
  opensc opensc-pkcs11               # the peer driver and pkcs11-tool (tests compare against it)
  util-linux                         # unshare: private pcscd in its own mount namespace
  openssl                            # certificate checks in the test-PKI tests
  libnss3-tools                      # modutil, certutil: the module in an NSS database (browsers)
  gnutls-bin p11-kit                 # p11tool and p11-kit: the module through GnuTLS and p11-kit
  libengine-pkcs11-openssl           # OpenSSL's pkcs11 engine: signatures with pkcs11: URIs
  dpkg-dev                           # dpkg-shlibdeps, dpkg-architecture: scripts/build-deb.sh
)

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
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  else
    echo "cpx: no Rust toolchain: install one with rustup (https://rustup.rs), Rust 1.88 or later" >&2
    exit 1
  fi
fi
