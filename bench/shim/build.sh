#!/bin/sh
# Builds the latency- and fault-injecting PKCS#11 shim (bench/shim/delay-shim.c) against the
# OASIS PKCS#11 headers that pkcs11js ships, twice. Run by npm at install time.
#   build/libkms-delay-shim.so  SoftHSM as it is, unless the environment asks for more: the
#                               benchmark's network-HSM run and the fault tests use it.
#   build/libkms-fips-shim.so   the same source with other defaults: a FIPS-style HSM that makes
#                               the GCM IV itself and writes it into the caller's parameters, takes
#                               only the CK_GCM_PARAMS layout with ulIvBits, answers a bad tag with
#                               CKR_ENCRYPTED_DATA_INVALID and calls itself "KMS test FIPS-style HSM".
#                               For loading by path where the environment cannot be set (a Jest
#                               project); the KMS_SHIM_* variables still override these defaults.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
mkdir -p "$here/build"

# build NAME [CFLAGS...]: built beside, then renamed, so that a test file building it while
# another loads it sees a whole library.
build() {
  name=$1
  shift
  ${CC:-cc} -O2 -Wall -Wextra -shared -fPIC "$@" \
    -I "$root/node_modules/pkcs11js/includes/pkcs11" \
    -o "$here/build/$name.$$" "$here/delay-shim.c" -ldl -lpthread
  mv "$here/build/$name.$$" "$here/build/$name"
}

build libkms-delay-shim.so
build libkms-fips-shim.so \
  -DKMS_SHIM_DEFAULT_GCM_IV='"token-params"' \
  -DKMS_SHIM_DEFAULT_GCM_PARAMS='"v240"' \
  -DKMS_SHIM_DEFAULT_MANUFACTURER='"KMS test FIPS-style HSM"' \
  -DKMS_SHIM_DEFAULT_BAD_TAG_RV=0x40 \
  -DKMS_SHIM_DEFAULT_MAX_SESSIONS=0
