#!/usr/bin/env bash
# The main job on the embedded default: a private pcscd with a virtual CPS3 and a virtual CPS4,
# what cpx sees of them, and the CPS3 listed through cpx's PKCS#11 module by OpenSC's pkcs11-tool.
# Touches no other pcscd on the machine; stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/system-packages.sh

cargo build --release --quiet -p cpx-cli -p cpx-testkit -p cpx-pkcs11
R=target/release
exec "$R/cpx-sandbox" --card cps3-doctor --card cps4-doctor -- sh -c "
  set -e
  echo '== cpx readers';  $R/cpx readers
  echo; echo '== cpx status'; $R/cpx status
  echo; echo '== pkcs11-tool --module $R/libcpx_pkcs11.so --list-slots --list-objects (CPS3)'
  pkcs11-tool --module $R/libcpx_pkcs11.so --list-slots
  pkcs11-tool --module $R/libcpx_pkcs11.so --slot-description 'cpx virtual 1 00 00' --list-objects
"
