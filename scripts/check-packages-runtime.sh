#!/usr/bin/env bash
# Runs the published builds of the five packages under plain Node, as a consumer gets them.
# Inside the repo node_modules/@sandbox/* link to the workspace folders, whose `exports` point at
# ./src/index.ts, so a built dist there would load its sibling packages' TypeScript sources and fail under
# Node. What counts is the published manifest: pack every package (pnpm applies publishConfig), npm-install
# the tarballs into a temp project outside the workspace, then require (CJS) and import (ESM) them there.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/tarballs" "$tmp/app"

for dir in "$root"/packages/*/; do
  cd "$dir"
  # Build when dist is missing or older than its inputs (the same rule as check-packages.sh).
  if [[ ! -f dist/index.mjs || -n $(find src package.json tsup.config.ts -newer dist/index.mjs -print -quit) ]]; then
    pnpm run build
  fi
  pnpm pack --pack-destination "$tmp/tarballs" >/dev/null
done

# The consumer depends on every tarball; the overrides make the packages' own @sandbox/* ranges resolve to
# those tarballs too, so npm never asks the registry for them.
cd "$tmp/app"
node -e '
  const deps = {};
  for (const file of require("node:fs").readdirSync("../tarballs")) {
    deps[`@sandbox/${file.replace(/^sandbox-(.+)-\d+\.\d+\.\d+.*\.tgz$/, "$1")}`] = `file:../tarballs/${file}`;
  }
  const overrides = Object.fromEntries(Object.keys(deps).map((name) => [name, `$${name}`]));
  const manifest = { name: "consumer", private: true, dependencies: deps, overrides };
  require("node:fs").writeFileSync("package.json", JSON.stringify(manifest, null, 2));
'
npm install --no-audit --no-fund --prefer-offline --loglevel=error

smoke="$root/scripts/check-packages-smoke.cjs"
node -e "require('$smoke')('cjs', require, (name) => import(name))"
node --input-type=module -e "
  import { createRequire } from 'node:module';
  import smoke from '$smoke';
  await smoke('esm', (name) => import(name), createRequire(process.cwd() + '/'));
"
