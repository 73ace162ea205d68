#!/bin/sh
# Builds the working tree and keeps the build aside as bench/results/builds/NAME (dist/, openapi.yaml,
# hsm/), for bench/compare.ts to run against later builds in one run. With --unpatched, the build
# also gets express-openapi-validator as published (patches/ undone in a copy of its own), which
# Node finds before the worktree's patched one.
set -eu
name=$1
cd "$(dirname "$0")/.."
npm run build >/dev/null
dir=bench/results/builds/$name
rm -rf "$dir" && mkdir -p "$dir"
cp -r dist openapi.yaml hsm "$dir"/
if [ "${2:-}" = "--unpatched" ]; then
  mkdir -p "$dir/node_modules"
  cp -r node_modules/express-openapi-validator "$dir/node_modules/"
  for patch in patches/express-openapi-validator+*.patch; do
    sed 's#node_modules/express-openapi-validator/##g' "$patch" | patch -s -R -p1 -d "$dir/node_modules/express-openapi-validator"
  done
fi
echo "$dir"
