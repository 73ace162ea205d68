#!/bin/sh
# Builds the working tree and keeps the build aside as bench/results/builds/NAME (dist/, openapi.yaml,
# hsm/ and its own copy of express-openapi-validator, patched as the worktree is now), for
# bench/compare.ts to run against later builds in one run. With --unpatched, that copy is the
# validator as published (patches/ undone).
set -eu
name=$1
cd "$(dirname "$0")/.."
npm run build >/dev/null
dir=bench/results/builds/$name
rm -rf "$dir" && mkdir -p "$dir"
cp -r dist openapi.yaml hsm "$dir"/
# The build keeps express-openapi-validator as patched now (or, with --unpatched, as published):
# Node finds it before the worktree's, whose patch may change before the build is run again.
mkdir -p "$dir/node_modules"
cp -r node_modules/express-openapi-validator "$dir/node_modules/"
if [ "${2:-}" = "--unpatched" ]; then
  for patch in patches/express-openapi-validator+*.patch; do
    sed 's#node_modules/express-openapi-validator/##g' "$patch" | patch -s -R -p1 -d "$dir/node_modules/express-openapi-validator"
  done
fi
echo "$dir"
