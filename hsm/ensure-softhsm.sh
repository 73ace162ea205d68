#!/usr/bin/env bash
# Makes sure Debian's SoftHSMv2 is installed: idempotent, quiet when it already is.
#
#   hsm/ensure-softhsm.sh                          install softhsm2 if its module is missing
#   hsm/ensure-softhsm.sh --with-nss               also NSS's softoken (libnss3), the tests' second module,
#                                                  and the openssl command (the TLS tests' certificates)
#   hsm/ensure-softhsm.sh --with-chromium          also Debian's chromium, for the tests of the docs page
#   hsm/ensure-softhsm.sh --with-postgres          also Debian's postgresql (15 on bookworm), for the PostgreSQL store's
#                                                  tests (test/helpers/postgres-cluster.ts starts a
#                                                  throwaway cluster; no service is started here)
#                                                  (together: --with-nss --with-chromium --with-postgres,
#                                                  in that order)
#   hsm/ensure-softhsm.sh --init-token LABEL FILE  also initialise a token LABEL whose user PIN is
#                                                  in FILE (for running the service against SoftHSM
#                                                  as an "external" module: KMS_PKCS11_MODULE=...)
#
# The service's embedded default needs only the install: it creates its own token under its data
# directory on first start. Installing needs root (or sudo).
set -euo pipefail

MODULE=/usr/lib/softhsm/libsofthsm2.so
packages=()
[ -f "$MODULE" ] || packages+=(softhsm2)
if [ "${1:-}" = "--with-nss" ]; then
  shift
  # Debian's libnss3 puts it in the multiarch library directory.
  compgen -G '/usr/lib/*/libsoftokn3.so' >/dev/null || packages+=(libnss3)
  # The TLS tests make their CAs and certificates with the openssl command.
  command -v openssl >/dev/null 2>&1 || packages+=(openssl)
fi
if [ "${1:-}" = "--with-chromium" ]; then
  shift
  # test/api/docs.test.ts drives it headless (playwright-core never downloads a browser here).
  [ -x /usr/bin/chromium ] || packages+=(chromium)
fi
if [ "${1:-}" = "--with-postgres" ]; then
  shift
  # The tests run initdb and pg_ctl themselves; Debian's package also makes the postgres user they
  # run them as. Its own cluster (main) is left alone.
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || packages+=(postgresql)
fi

if [ ${#packages[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    as_root=()
  elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
  else
    echo "Debian packages are missing and this user cannot install them: run 'apt-get install ${packages[*]}' as root." >&2
    exit 1
  fi
  echo "Installing Debian packages: ${packages[*]}..." >&2
  "${as_root[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi
[ -f "$MODULE" ] || { echo "softhsm2 is installed but $MODULE is missing" >&2; exit 1; }

if [ "${1:-}" = "--init-token" ]; then
  label=${2:?usage: $0 --init-token LABEL PIN_FILE}
  pin_file=${3:?usage: $0 --init-token LABEL PIN_FILE}
  if softhsm2-util --show-slots 2>/dev/null | grep -Eq "Label:[[:space:]]+${label}[[:space:]]*$"; then
    echo "Token '$label' already exists." >&2
    exit 0
  fi
  pin=$(tr -d '\r\n' < "$pin_file")
  # The SO PIN is random and not kept: the service needs only the user PIN.
  so_pin=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
  softhsm2-util --init-token --free --label "$label" --so-pin "$so_pin" --pin "$pin" >/dev/null
  echo "Initialised token '$label'." >&2
fi
