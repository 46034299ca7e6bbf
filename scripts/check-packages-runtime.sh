#!/usr/bin/env bash
# Runs the published builds of the packages under plain Node, as consumers get them, with
# --throw-deprecation --pending-deprecation: any deprecation warning fails the check.
# Inside the repo node_modules/@sandbox/* link to the workspace folders, whose `exports` point at
# ./src/index.ts, so a built dist there would load its sibling packages' TypeScript sources and fail under
# Node. What counts is the published manifest: pack every package (pnpm applies publishConfig), npm-install
# the tarballs into temp projects outside the workspace, then use them there:
#   1. a consumer of every package: require (CJS) and import (ESM) each, and proxy HTTP, a streamed body and
#      a WebSocket through preview-core and through preview-routes;
#   2. a proxy-only consumer (preview-routes + preview-registry, its own resolver): none of dockerode, ssh2,
#      cpu-features, express, ioredis, pino or prom-client in its tree, undici never loaded on the native
#      engine, and `esbuild --bundle --platform=node` of it runs on its own, without node_modules.
# Prints the proxy-only consumer's install and bundle sizes.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/tarballs" "$tmp/app" "$tmp/proxy-only"
node_flags=(--throw-deprecation --pending-deprecation)
echo "check-packages-runtime: node $(node --version)"

for dir in "$root"/packages/*/; do
  cd "$dir"
  # Build when dist is missing or older than its inputs (the same rule as check-packages.sh).
  if [[ ! -f dist/index.mjs || -n $(find src package.json tsup.config.ts -newer dist/index.mjs -print -quit) ]]; then
    pnpm run build
  fi
  pnpm pack --pack-destination "$tmp/tarballs" >/dev/null
done

# A consumer project depending on the named tarballs (all when none are named); the overrides make the
# packages' own @sandbox/* ranges resolve to the tarballs too, so npm never asks the registry for them.
make_consumer() {
  local dir="$1"
  shift
  (cd "$dir" && node - "$@" <<'EOF'
const fs = require('node:fs');
const wanted = process.argv.slice(2);
const all = {};
for (const file of fs.readdirSync('../tarballs')) {
  all[`@sandbox/${file.replace(/^sandbox-(.+)-\d+\.\d+\.\d+.*\.tgz$/, '$1')}`] = `file:../tarballs/${file}`;
}
const names = wanted.length === 0 ? Object.keys(all) : wanted.map((name) => `@sandbox/${name}`);
const dependencies = Object.fromEntries(names.map((name) => [name, all[name]]));
const overrides = Object.fromEntries(Object.keys(all).map((name) => [name, all[name]]));
fs.writeFileSync('package.json', JSON.stringify({ name: 'consumer', private: true, dependencies, overrides }, null, 2));
EOF
  )
  (cd "$dir" && npm install --no-audit --no-fund --prefer-offline --loglevel=error)
}

# 1. Every package, both formats.
make_consumer "$tmp/app"
cd "$tmp/app"
smoke="$root/scripts/check-packages-smoke.cjs"
node "${node_flags[@]}" -e "require('$smoke')('cjs', require, (name) => import(name))"
node "${node_flags[@]}" --input-type=module -e "
  import { createRequire } from 'node:module';
  import smoke from '$smoke';
  await smoke('esm', (name) => import(name), createRequire(process.cwd() + '/'));
"

# The command line, as npm links it into a consumer: it runs, knows its version, and says in one line
# (exit 1) that a manager cannot be reached.
bin="$tmp/app/node_modules/.bin/sandbox-preview"
cli_version=$(node -p "require('$root/packages/preview-cli/package.json').version")
[[ $("$bin" --version) == "$cli_version" ]] || { echo "check-packages-runtime: sandbox-preview --version is not $cli_version" >&2; exit 1; }
set +e
unreachable=$(SANDBOX_MANAGER_KEY=k "$bin" ls --url http://127.0.0.1:9 2>&1)
code=$?
set -e
if [[ $code -ne 1 || $unreachable != "sandbox-preview: cannot reach the manager at http://127.0.0.1:9: "* ]]; then
  echo "check-packages-runtime: sandbox-preview ls against nothing exited $code: $unreachable" >&2
  exit 1
fi
echo "check-packages-runtime: sandbox-preview $cli_version runs from the installed tarball"

# 2. The proxy-only consumer.
make_consumer "$tmp/proxy-only" preview-routes preview-registry error-contract
cd "$tmp/proxy-only"
forbidden='dockerode|ssh2|cpu-features|express|ioredis|pino|prom-client'
tree=$(npm ls --omit=dev --all --parseable)
if found=$(grep -E "/node_modules/($forbidden)$" <<<"$tree"); then
  echo "check-packages-runtime: the proxy-only consumer installs what it does not use:" >&2
  echo "$found" >&2
  exit 1
fi
cp "$root/scripts/check-routes-smoke.cjs" smoke.cjs
node "${node_flags[@]}" -e "require('./smoke.cjs')('cjs, installed').then(() => {
  const undici = Object.keys(require.cache).filter((file) => file.includes('/node_modules/undici/'));
  if (undici.length > 0) throw new Error('undici was loaded though the native engine served: ' + undici[0]);
})"
"$root/node_modules/.bin/esbuild" smoke.cjs --bundle --platform=node --log-level=warning --outfile="$tmp/bundle/smoke.cjs"
# Run from a folder with no node_modules: the bundle must hold everything it loads.
(cd "$tmp/bundle" && node "${node_flags[@]}" -e "require('./smoke.cjs')('cjs, bundled by esbuild')")

packages=$(grep -c /node_modules/ <<<"$tree" || true)
install_kib=$(du -sk node_modules | cut -f1)
bundle_bytes=$(wc -c <"$tmp/bundle/smoke.cjs")
echo "proxy-only consumer: $packages packages, node_modules $((install_kib / 1024)) MiB ($install_kib KiB), esbuild bundle $((bundle_bytes / 1024)) KiB"
