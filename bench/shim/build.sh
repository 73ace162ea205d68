#!/bin/sh
# Builds the latency- and fault-injecting PKCS#11 shim (bench/shim/delay-shim.c) against the
# OASIS PKCS#11 headers that pkcs11js ships. Run by npm at install time; the benchmark's network-HSM
# run and the fault tests use bench/shim/build/libkms-delay-shim.so.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
mkdir -p "$here/build"
# Built beside, then renamed: a test file building it while another loads it sees a whole library.
${CC:-cc} -O2 -Wall -Wextra -shared -fPIC \
  -I "$root/node_modules/pkcs11js/includes/pkcs11" \
  -o "$here/build/libkms-delay-shim.so.$$" "$here/delay-shim.c" -ldl -lpthread
mv "$here/build/libkms-delay-shim.so.$$" "$here/build/libkms-delay-shim.so"
