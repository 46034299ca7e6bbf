#!/usr/bin/env bash
# Makes this machine ready for `pnpm test`: a running Docker engine, the fixture images, redis-server (the
# tests start their own, on free loopback ports) and Chromium (for tests/browser). On Debian as root it
# installs what is missing (docker.io, busybox-static, redis-server, chromium, wrk, slowhttptest) and starts
# dockerd; elsewhere it says what to do. Idempotent and quick when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '[test-env] %s\n' "$*"; }

# The packages support Node 22, 24 and 26; the suites use what those lines have (a global WebSocket, the
# parser the native client needs...).
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 22 ]; then
  log "node $(node --version) is too old: the project supports Node 22, 24 and 26. Node's binaries are on npm:"
  log "  npm install --prefix ~/.local/node24 node@24 && export PATH=~/.local/node24/node_modules/node/bin:\$PATH"
  exit 1
fi

missing=()
command -v docker >/dev/null || missing+=(docker.io)
command -v dockerd >/dev/null || [ -S /var/run/docker.sock ] || [ -n "${DOCKER_HOST:-}" ] || missing+=(docker.io)
[ -x /bin/busybox ] || missing+=(busybox-static)
command -v chromium >/dev/null || missing+=(chromium)
command -v redis-server >/dev/null || missing+=(redis-server)
# The edge tests run edge-proxy in a mount namespace of its own where the Docker socket is /dev/null.
command -v unshare >/dev/null || missing+=(util-linux)
# The load test (tests/load) drives 256 connections with wrk.
command -v wrk >/dev/null || missing+=(wrk)
# And the slow-client attacks (tests/load/test/slowhttp.int.test.ts) with slowhttptest.
command -v slowhttptest >/dev/null || missing+=(slowhttptest)
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    log "missing: ${missing[*]}; install them (Debian: apt-get install -y ${missing[*]}) and run again"
    exit 1
  fi
  log "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(printf '%s\n' "${missing[@]}" | sort -u) >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  if [ -n "${DOCKER_HOST:-}" ] || [ "$(id -u)" != 0 ]; then
    log "the Docker engine at ${DOCKER_HOST:-unix:///var/run/docker.sock} does not answer; start it and run again"
    exit 1
  fi
  log "starting dockerd"
  nohup dockerd >/tmp/sandbox-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  if ! docker info >/dev/null 2>&1; then
    log "dockerd did not come up; its log:"
    tail -n 40 /tmp/sandbox-dockerd.log
    exit 1
  fi
fi
log "docker engine $(docker version --format '{{.Server.Version}}') is up"

bash fixtures/build-images.sh
bash fixtures/build-vite-image.sh
