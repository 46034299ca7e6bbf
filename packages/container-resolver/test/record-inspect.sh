#!/usr/bin/env bash
# Re-records the inspect documents under test/recorded/ from the real Docker engine, so the parser's table
# tests run against what the daemon actually sends rather than hand-written guesses.
# Usage: bash test/record-inspect.sh [image]   (default: the fixtures' busybox image, built by
# fixtures/build-images.sh; any image with /bin/sh and a long-running default command will do).
set -euo pipefail

image="${1:-sandbox-fixture-busybox:latest}"
out="$(cd "$(dirname "$0")" && pwd)/recorded"
# Fixed names keep the recorded files stable between recordings; creation fails (and nothing is removed)
# if a previous run left them behind.
tag="crrec"
label="container-resolver.recording=$$"
# zeta is created (and connected) before alpha, so name order differs from creation order.
net_z="$tag-zeta"
net_a="$tag-alpha"
created_nets=()

cleanup() {
  docker ps -aq --filter "label=$label" | xargs -r docker rm -f >/dev/null
  if [ ${#created_nets[@]} -gt 0 ]; then docker network rm "${created_nets[@]}" >/dev/null; fi
}
trap cleanup EXIT

record() { docker inspect --type container "$1" | node -e '
  const [doc] = JSON.parse(require("fs").readFileSync(0, "utf8"));
  process.stdout.write(JSON.stringify(doc, null, 2) + "\n");' >"$out/$2.json"; }

run() { docker run -d --label "$label" "$@" >/dev/null; }

docker network create "$net_z" >/dev/null && created_nets+=("$net_z")
docker network create "$net_a" >/dev/null && created_nets+=("$net_a")

run --name "$tag-bridge" "$image"
record "$tag-bridge" bridge

run --name "$tag-multi" --network "$net_z" "$image"
docker network connect "$net_a" "$tag-multi"
docker network connect bridge "$tag-multi"
record "$tag-multi" multi-network

run --name "$tag-none" --network none "$image"
record "$tag-none" network-none

run --name "$tag-host" --network host "$image"
record "$tag-host" network-host

run --name "$tag-exited" "$image"
docker stop -t 0 "$tag-exited" >/dev/null
record "$tag-exited" exited

run --name "$tag-paused" "$image"
docker pause "$tag-paused" >/dev/null
record "$tag-paused" paused

docker create --label "$label" --name "$tag-created" "$image" >/dev/null
record "$tag-created" created

run --name "$tag-restarting" --restart always "$image" /bin/sh -c 'exit 1'
for _ in $(seq 1 200); do
  if [ "$(docker inspect -f '{{.State.Restarting}}' "$tag-restarting")" = true ]; then break; fi
  sleep 0.05
done
record "$tag-restarting" restarting
# The repository formats JSON with Biome; keep re-recorded files lint-clean.
npx --no-install biome format --write "$out" >/dev/null 2>&1
echo "recorded into $out"
