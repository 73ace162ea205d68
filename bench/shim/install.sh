#!/bin/sh
# npm's postinstall: builds the PKCS#11 test shim (build.sh). A machine without a C compiler still
# installs: only the network-HSM benchmark and the fault tests need the shim, and they say so.
# A script of its own because npm prints the postinstall command before running it: a message
# inline in package.json would be printed on every install, the shim built or not.
if ! sh "$(dirname "$0")/build.sh"; then
  echo "warning: the PKCS#11 test shim (bench/shim) was not built: the network-HSM benchmark and fault tests need a C compiler" >&2
fi
