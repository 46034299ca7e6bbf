#!/usr/bin/env bash
# Builds the apps' container images on a machine that can pull no base image and whose `docker build` steps
# reach no npm registry (this project's machines and CI):
#   sandbox-node-base:local           the host's node binary and its libraries, a non-root user `node`
#                                     (uid 1000), /tmp: made with `docker import`
#   sandbox-container-manager:local   apps/container-manager/Dockerfile, target `prebuilt`
#   sandbox-edge-proxy:local          apps/edge-proxy/Dockerfile, target `prebuilt`
# Each app is bundled (tsup) and deployed with its production dependencies only (`pnpm deploy --prod`) on the
# host; the deployed directory is the build context, and the base above is passed as NODE_IMAGE. With
# registry access, build the Dockerfiles' default target from the repository root instead (see the
# Dockerfiles' headers).
#
# Idempotent: each image carries a label with a hash of its inputs, and is rebuilt only when they change.
# Needs: a Docker engine, node, pnpm and an installed workspace (pnpm install).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
self="$here/build-images.sh"
base_image=sandbox-node-base:local
inputs_label=sandbox.image.inputs
apps=(container-manager edge-proxy)

die() {
  echo "build-images.sh: $*" >&2
  exit 1
}
log() { echo "build-images.sh: $*"; }
started=$SECONDS

if ! info_err="$(docker info 2>&1 >/dev/null)"; then
  die "Docker engine unreachable (docker info failed: ${info_err##*$'\n'}). Start dockerd (or run bash .ci/run, which starts it) and retry."
fi
command -v pnpm >/dev/null || die "pnpm not found (npm install -g pnpm@12.4.2)"
node_bin="$(readlink -f "$(command -v node)")" || die "node not found on PATH"
[[ -x "$node_bin" ]] || die "node binary $node_bin is not executable"
[[ -d "$repo/node_modules" ]] || die "the workspace is not installed: run pnpm install in $repo"

# Two runs may start at once (a test run and a developer, say): one at a time, each sees the other's images.
exec 9>"${TMPDIR:-/tmp}/sandbox-app-images.lock"
flock 9

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The inputs hash an image was built from ('' when there is no such image).
image_inputs() {
  docker image inspect --format "{{ index .Config.Labels \"$inputs_label\" }}" "$1" 2>/dev/null || true
}

image_id() {
  docker image inspect --format '{{.Id}}' "$1" 2>/dev/null || true
}

# Removes an image that a rebuild left untagged (best effort: one a container still uses stays).
drop_if_dangling() {
  local old="$1" new="$2"
  [[ -n "$old" && "$old" != "$new" ]] || return 0
  [[ -z "$(docker image inspect --format '{{join .RepoTags ""}}' "$old" 2>/dev/null)" ]] || return 0
  docker rmi "$old" >/dev/null 2>&1 || true
}

# --- the base: what fixtures/build-images.sh puts in sandbox-fixture-node, less busybox and the test server,
# plus the accounts a `USER node` needs ---------------------------------------------------------------------

# Every shared library a binary needs, as ldd names it (the dynamic loader included); nothing for a static one.
libs_of() {
  ldd "$1" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u || true
}

# Copies a file into the root at the same path, following symlinks so the image holds the real bytes.
add_file() {
  local root="$1" path="$2"
  mkdir -p "$root$(dirname "$path")"
  cp -L "$path" "$root$path"
}

node_libs="$(libs_of "$node_bin")"
# The lines of this script that make the base: editing the app part below does not rebuild it.
base_recipe="$(sed -n '/^# --- the base/,/^# --- end of the base/p' "$self")"
base_hash="$(
  {
    echo "node $("$node_bin" --version) $node_bin $(stat -c '%s %Y' "$node_bin")"
    echo "$node_libs"
    echo "$base_recipe"
  } | sha256sum | cut -c1-16
)"
if [[ "$(image_inputs "$base_image")" == "$base_hash" ]]; then
  log "$base_image up to date ($base_hash)"
else
  old_base="$(image_id "$base_image")"
  root="$work/base"
  mkdir -p "$root/etc" "$root/tmp" "$root/proc" "$root/sys" "$root/dev" "$root/root" "$root/home"
  # The binary itself at /usr/bin/node, wherever the host keeps it (nvm, /usr/local, CI's cache under
  # ~/.cache...), so CMD ["node", ...] finds it on PATH. Not a link to the host's path: that path may be under
  # /root, which is 700 here, and the apps run as `node`, for whom such a link leads nowhere.
  mkdir -p "$root/usr/bin"
  cp -L "$node_bin" "$root/usr/bin/node"
  for lib in $node_libs; do add_file "$root" "$lib"; done
  chmod 1777 "$root/tmp"
  chmod 700 "$root/root"
  # The official Node images have the same user: `node`, uid and gid 1000, home /home/node.
  printf '%s\n' 'root:x:0:0:root:/root:/usr/sbin/nologin' 'node:x:1000:1000::/home/node:/usr/sbin/nologin' \
    >"$root/etc/passwd"
  printf '%s\n' 'root:x:0:' 'node:x:1000:' >"$root/etc/group"
  printf '%s\n' 'passwd: files' 'group: files' 'hosts: files dns' >"$root/etc/nsswitch.conf"
  # Everything root's, except /home/node (appended to the archive as uid 1000), without needing root here.
  home="$work/home"
  mkdir -p "$home/home/node"
  chmod 755 "$home/home/node"
  tar -C "$root" --numeric-owner --owner=0 --group=0 -cf "$work/base.tar" .
  tar -C "$home" --numeric-owner --owner=1000 --group=1000 -rf "$work/base.tar" ./home/node
  docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change "LABEL $inputs_label=$base_hash" \
    --change 'CMD ["node"]' \
    --message "sandbox node base: node $("$node_bin" --version) from the host, user node (1000)" \
    "$work/base.tar" "$base_image" >/dev/null
  rm -f "$work/base.tar"
  drop_if_dangling "$old_base" "$(image_id "$base_image")"
  log "$base_image built ($base_hash)"
fi
# --- end of the base ----------------------------------------------------------------------------------------

base_id="$(image_id "$base_image")"

# Fails when the bundle imports an npm package the app's package.json does not list in `dependencies` (the
# image would not start); warns about listed ones the bundle does not import.
check_dependencies() {
  local app="$1" bundle="$2" manifest="$3"
  node --input-type=module - "$app" "$bundle" "$manifest" <<'EOF'
import { readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
const [app, bundle, manifest] = process.argv.slice(2);
const code = readFileSync(bundle, 'utf8');
const specifiers = new Set();
const patterns = [
  /^\s*(?:import|export)\s[^'"]*?\sfrom\s*['"]([^'"]+)['"]/gm,
  /^\s*import\s*['"]([^'"]+)['"]/gm,
  /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g,
  /\brequire\(\s*['"]([^'"]+)['"]\s*\)/g,
];
for (const pattern of patterns) for (const match of code.matchAll(pattern)) specifiers.add(match[1]);
const builtins = new Set(builtinModules);
const imported = new Set();
for (const spec of specifiers) {
  if (spec.startsWith('.') || spec.startsWith('/') || spec.startsWith('node:') || builtins.has(spec)) continue;
  if (builtins.has(spec.split('/')[0])) continue;
  const parts = spec.split('/');
  imported.add(spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]);
}
const listed = new Set(Object.keys(JSON.parse(readFileSync(manifest, 'utf8')).dependencies ?? {}));
const missing = [...imported].filter((name) => !listed.has(name)).sort();
const unused = [...listed].filter((name) => !imported.has(name)).sort();
if (unused.length > 0) {
  console.error(`build-images.sh: warning: apps/${app}/package.json lists dependencies its bundle does not import: ${unused.join(', ')}`);
}
if (missing.length > 0) {
  console.error(`build-images.sh: apps/${app}/dist/main.js imports ${missing.join(', ')}, missing from the dependencies of apps/${app}/package.json: add them (and run pnpm install), or the image cannot start`);
  process.exit(1);
}
EOF
}

for app in "${apps[@]}"; do
  pkg="@sandbox/$app"
  image="sandbox-$app:local"
  dockerfile="$repo/apps/$app/Dockerfile"
  ctx="$work/$app"
  # Production dependencies only, from the workspace's store (no devDependencies: the workspace packages
  # are bundled, so they are dev dependencies of the app). Not `deploy --legacy`: in pnpm 12.4.2 it writes
  # its own state over the workspace's node_modules/.pnpm-workspace-state-v1.json (one project, no dev
  # dependencies), and the next `pnpm run`/`exec` in the workspace then re-installs it without its
  # devDependencies. pnpm 12 deploys without injectWorkspacePackages, so the default implementation works.
  pnpm --dir "$repo" --filter "$pkg" deploy --prod "$ctx" >"$work/$app-deploy.log" 2>&1 ||
    die "pnpm deploy of $pkg failed: $(tail -n 20 "$work/$app-deploy.log")"
  # The context holds what the image runs and nothing else: package.json, dist/, node_modules/ (deploy also
  # copies the app's sources and writes a lockfile). The
  # shims in node_modules/.bin name the deploy directory's absolute path (wrong in the image, and they
  # would make every run's context differ), and .modules.yaml and .pnpm-workspace-state-v1.json are install
  # state with timestamps.
  find "$ctx" -mindepth 1 -maxdepth 1 ! -name package.json ! -name node_modules -exec rm -rf {} +
  find "$ctx/node_modules" -name .bin -type d -prune -exec rm -rf {} +
  rm -f "$ctx/node_modules/.modules.yaml" "$ctx/node_modules/.pnpm-workspace-state-v1.json"
  # pnpm 12 writes the deployed package.json's dependencies in no stable order: sort them, so that the same
  # inputs make the same context (and hash).
  node -e '
    const fs = require("node:fs");
    const file = process.argv[1];
    const manifest = JSON.parse(fs.readFileSync(file, "utf8"));
    for (const field of ["dependencies", "optionalDependencies", "devDependencies"]) {
      if (manifest[field]) manifest[field] = Object.fromEntries(Object.entries(manifest[field]).sort(([a], [b]) => (a < b ? -1 : 1)));
    }
    fs.writeFileSync(file, `${JSON.stringify(manifest, null, 2)}\n`);
  ' "$ctx/package.json"
  # Bundled into the context rather than apps/$app/dist, which the working tree's other users (the bench,
  # a developer's pnpm build) own. Same tsup.config.ts as `pnpm --filter $pkg build`; tsup called directly,
  # as `pnpm exec` may first re-install a workspace it finds out of date.
  (cd "$repo/apps/$app" && "$repo/node_modules/.bin/tsup" --out-dir "$ctx/dist" >"$work/$app-build.log" 2>&1) ||
    die "tsup build of $pkg failed: $(tail -n 20 "$work/$app-build.log")"
  check_dependencies "$app" "$ctx/dist/main.js" "$repo/apps/$app/package.json"

  hash="$(
    {
      echo "base $base_id"
      sha256sum "$dockerfile" | cut -d' ' -f1
      tar -C "$ctx" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf - . 2>/dev/null | sha256sum
    } | sha256sum | cut -c1-16
  )"
  if [[ "$(image_inputs "$image")" == "$hash" ]]; then
    log "$image up to date ($hash)"
    continue
  fi
  old="$(image_id "$image")"
  # --force-rm: the legacy builder otherwise leaves a failed step's container behind.
  docker build \
    --force-rm \
    --file "$dockerfile" \
    --target prebuilt \
    --build-arg "NODE_IMAGE=$base_image" \
    --label "$inputs_label=$hash" \
    --tag "$image" \
    "$ctx" >"$work/$app-docker.log" 2>&1 ||
    die "docker build of $image failed: $(tail -n 30 "$work/$app-docker.log")"
  drop_if_dangling "$old" "$(image_id "$image")"
  log "$image built ($hash)"
done
log "done in $((SECONDS - started)) s"
