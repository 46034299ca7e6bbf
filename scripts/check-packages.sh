#!/usr/bin/env bash
# Checks one publishable package the way npm will see it. Run from packages/<name> (its `check-package`
# script), or pass the package folder. Inside the repo the manifest's `exports` point at ./src for the
# workspace; pnpm swaps in `publishConfig` only when it packs, so every check here runs on the tarball that
# `pnpm pack` makes, never on the folder. Any finding fails, suggestions included.
set -euo pipefail

bin="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/node_modules/.bin"
cd "${1:-.}"
fail() {
  echo "check-package: $(basename "$PWD"): $*" >&2
  exit 1
}

# Build when dist is missing or older than its inputs: turbo builds first, a bare run must not check stale files.
if [[ ! -f dist/index.mjs || -n $(find src package.json tsup.config.ts -newer dist/index.mjs -print -quit) ]]; then
  pnpm run build
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pnpm pack --pack-destination "$tmp" >/dev/null
tarball=$(echo "$tmp"/*.tgz)

# 1. Contents: the bundles, their declarations and sourcemaps, the docs and the manifest; nothing else
# (no src, no tests, no stray files).
files=$(tar -tzf "$tarball" | sort)
echo "$files"
extra=$(grep -Ev '^package/(dist/[^/]+\.(mjs|cjs|d\.mts|d\.cts|mjs\.map|cjs\.map)|package\.json|README\.md|LICENSE|CHANGELOG\.md)$' <<<"$files" || true)
[[ -z $extra ]] || fail "unexpected files in the tarball: $extra"
if grep -q '\.test\.' <<<"$files"; then fail 'test code in the tarball'; fi
for f in LICENSE README.md dist/index.mjs dist/index.cjs dist/index.d.mts dist/index.d.cts; do
  grep -qx "package/$f" <<<"$files" || fail "missing from the tarball: $f"
done

# 2. The packed manifest: dist entry points (publishConfig applied), no workspace: protocol left, and the
# metadata npm shows.
tar -xzf "$tarball" -C "$tmp" package/package.json
node - "$tmp/package/package.json" "packages/$(basename "$PWD")" <<'EOF' || fail 'the packed package.json is wrong (see above)'
const [file, directory] = process.argv.slice(2);
const m = require(file);
const want = {
  license: 'MIT',
  sideEffects: false,
  engines: { node: '^22.15 || ^24 || >=26' },
  exports: {
    '.': {
      import: { types: './dist/index.d.mts', default: './dist/index.mjs' },
      require: { types: './dist/index.d.cts', default: './dist/index.cjs' },
    },
    './package.json': './package.json',
  },
  main: './dist/index.cjs',
  module: './dist/index.mjs',
  types: './dist/index.d.cts',
};
const problems = Object.keys(want)
  .filter((k) => JSON.stringify(m[k]) !== JSON.stringify(want[k]))
  .map((k) => `${k} is ${JSON.stringify(m[k])}`);
if (!m.description || !m.keywords?.length) problems.push('description or keywords missing');
if (m.repository?.directory !== directory) problems.push(`repository.directory is not ${directory}`);
const deps = { ...m.dependencies, ...m.peerDependencies, ...m.optionalDependencies };
for (const [name, range] of Object.entries(deps)) {
  if (/^(workspace|link|file):/.test(range)) problems.push(`dependency ${name} is ${range}`);
}
for (const problem of problems) console.error(`packed package.json: ${problem}`);
process.exitCode = problems.length ? 1 : 0;
EOF

# 3. publint on the tarball: --strict makes warnings errors; suggestions do not change its exit code, so
# anything but its "All good!" (printed only when it found nothing at all) fails too.
"$bin/publint" run "$tarball" --strict --level suggestion | tee "$tmp/publint.log"
grep -q 'All good!' "$tmp/publint.log" || fail 'publint reported problems'

# 4. Are the types wrong? The strict profile resolves with node10 (main/types), node16 from CJS and from
# ESM, and bundler; any problem exits non-zero. (attw exits 0 for a package without types: step 1 checks
# the declarations are there.)
"$bin/attw" "$tarball" --profile strict --format table-flipped --no-color
