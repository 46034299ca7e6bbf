// The apps' container images as a user runs them: built by scripts/build-images.sh (the local base made with
// docker import, passed as NODE_IMAGE), started with `docker run`, serving a preview of a real session
// container: container-manager alone, then container-manager + edge-proxy sharing a Redis.
import { execFile } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  DockerCommandError,
  docker,
  freePort,
  type RedisServerHandle,
  RUN_LABEL,
  removeCreatedContainers,
  type SessionContainer,
  startRedisServer,
  startSessionContainer,
  TEST_LABEL,
  testRunId,
} from '@sandbox/test-fixtures';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const execFileAsync = promisify(execFile);
const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const BUILD_SCRIPT = `${REPO}scripts/build-images.sh`;
const DOCKER_SOCKET = '/var/run/docker.sock';
const KEY = 'image-test-key';
const IMAGE_LABEL = 'sandbox.image-test';
const MANAGER_IMAGE = 'sandbox-container-manager:local';
const EDGE_IMAGE = 'sandbox-edge-proxy:local';
/** What must never reach a runtime image: the workspace's build and test tools, and the bundled packages. */
const DEV_ONLY =
  /^(typescript|vitest|tsx|tsup|esbuild|turbo|vite|@vitest\+|@biomejs\+|@esbuild\+|@sandbox\+)/;

/** Names of the containers this file started (besides the session containers), removed in afterAll. */
const started: string[] = [];
let nameCounter = 0;

function uniqueName(role: string): string {
  nameCounter += 1;
  return `sandbox-image-test-${role}-${process.pid.toString(36)}-${Date.now().toString(36)}${nameCounter}`;
}

/**
 * `docker run -d` with this run's labels (the global teardown removes leftovers by them); resolves with the
 * container's name.
 */
async function runContainer(role: string, args: string[], image: string): Promise<string> {
  const name = uniqueName(role);
  started.push(name);
  const labels = ['--label', `${TEST_LABEL}=1`, '--label', `${RUN_LABEL}=${testRunId()}`];
  await docker(['run', '-d', '--name', name, ...labels, '--label', `${IMAGE_LABEL}=1`, ...args, image]);
  return name;
}

/** One command in a throwaway container of the image (entrypoint node), labelled like the others. */
async function runNode(image: string, script: string): Promise<string> {
  const name = uniqueName('probe');
  started.push(name);
  const labels = ['--label', `${TEST_LABEL}=1`, '--label', `${RUN_LABEL}=${testRunId()}`];
  return docker(['run', '--rm', '--name', name, ...labels, '--entrypoint', 'node', image, '-e', script]);
}

async function logsOf(name: string): Promise<string> {
  try {
    const { stdout, stderr } = await execFileAsync('docker', ['logs', '--tail', '50', name], {
      encoding: 'utf8',
    });
    return `${stdout}${stderr}`.trim();
  } catch (error) {
    return `(no logs: ${error instanceof DockerCommandError ? error.stderr : String(error)})`;
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls a URL until it answers the status; fails with the last outcome and the container's logs. */
async function waitForStatus(url: string, status: number, container: string, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  let last = 'no attempt';
  for (;;) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      const body = await res.text();
      if (res.status === status) return;
      last = `HTTP ${res.status} ${body.slice(0, 300)}`;
    } catch (error) {
      last = error instanceof Error ? `${error.message} ${String(error.cause ?? '')}` : String(error);
    }
    if (Date.now() >= deadline) {
      throw new Error(`${url} did not answer ${status} within ${timeoutMs} ms: ${last}; logs of ${container}:
${await logsOf(container)}`);
    }
    await sleep(100);
  }
}

async function inspect(name: string): Promise<Record<string, unknown>> {
  const parsed = JSON.parse(await docker(['inspect', name])) as Record<string, unknown>[];
  const first = parsed[0];
  if (first === undefined) throw new Error(`docker inspect ${name}: nothing`);
  return first;
}

async function register(baseUrl: string, sessionId: string, port: number): Promise<Response> {
  return fetch(`${baseUrl}/api/internal/sessions/${sessionId}/previews`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-internal-service-key': KEY },
    body: JSON.stringify({ port }),
  });
}

interface Echo {
  url: string;
  port: number;
  headers: Record<string, string>;
}

/** Asserts that the preview of the session answers 200 from the fixture server's echo, prefix stripped. */
async function expectPreview(baseUrl: string, session: SessionContainer): Promise<void> {
  const res = await fetch(`${baseUrl}/previews/${session.sessionId}/`);
  const body = await res.text();
  expect(res.status, body).toBe(200);
  expect(res.headers.get('x-fixture')).toBe('echo');
  const echo = JSON.parse(body) as Echo;
  expect(echo.url).toBe('/');
  expect(echo.port).toBe(3000);
  expect(echo.headers['x-forwarded-prefix']).toBe(`/previews/${session.sessionId}`);
}

/** What the app directory of an image holds, read by the image's own node. */
interface ImageContents {
  uid: number;
  gid: number;
  app: string[];
  modules: string[];
  store: string[];
  manifest: { dependencies?: Record<string, string>; devDependencies?: Record<string, string> };
}

const CONTENTS_SCRIPT = `
const fs = require('node:fs');
const list = (dir) => fs.readdirSync(dir).sort();
console.log(JSON.stringify({
  uid: process.getuid(),
  gid: process.getgid(),
  app: list('/app'),
  modules: list('/app/node_modules').filter((name) => !name.startsWith('.')),
  store: list('/app/node_modules/.pnpm'),
  manifest: JSON.parse(fs.readFileSync('/app/package.json', 'utf8')),
}));
`;

/** The uid and gid the container's main process (pid 1) runs as, from /proc/1/status. */
async function pid1Ids(name: string): Promise<{ uid: number; gid: number }> {
  const out = await docker([
    'exec',
    name,
    'node',
    '-e',
    `const s = require('node:fs').readFileSync('/proc/1/status', 'utf8');
     const id = (field) => Number(s.match(new RegExp('^' + field + ':\\\\s+(\\\\d+)', 'm'))[1]);
     console.log(JSON.stringify({ uid: id('Uid'), gid: id('Gid') }));`,
  ]);
  return JSON.parse(out) as { uid: number; gid: number };
}

function declaredDependencies(app: string): string[] {
  const manifest = JSON.parse(readFileSync(`${REPO}apps/${app}/package.json`, 'utf8')) as {
    dependencies?: Record<string, string>;
  };
  return Object.keys(manifest.dependencies ?? {}).sort();
}

let socketGid: number;

beforeAll(async () => {
  try {
    await execFileAsync('bash', [BUILD_SCRIPT], { encoding: 'utf8', timeout: 10 * 60_000 });
  } catch (error) {
    const failure = error as { stdout?: unknown; stderr?: unknown };
    throw new Error(
      `scripts/build-images.sh failed: ${String(failure.stdout ?? '')}${String(failure.stderr ?? error)}`,
      {
        cause: error,
      },
    );
  }
  // The images run as `node`, not root: the socket must be usable by its group, added with --group-add.
  const socket = statSync(DOCKER_SOCKET);
  if (!socket.isSocket())
    throw new Error(`${DOCKER_SOCKET} is not a socket; these tests need the local engine`);
  socketGid = socket.gid;
});

afterAll(async () => {
  await Promise.all([
    removeCreatedContainers(),
    ...started.map((name) => docker(['rm', '-f', name]).catch(() => {})),
  ]);
});

describe.each([
  { app: 'container-manager', image: MANAGER_IMAGE, port: '4002/tcp' },
  { app: 'edge-proxy', image: EDGE_IMAGE, port: '4003/tcp' },
])('image $image', ({ app, image, port }) => {
  it('runs as the non-root user node, production settings, node dist/main.js', async () => {
    const config = (await inspect(image)).Config as {
      User?: string;
      Cmd?: string[];
      Env?: string[];
      ExposedPorts?: Record<string, unknown>;
      WorkingDir?: string;
    };
    expect(config.User).toBe('node');
    expect(config.Cmd).toEqual(['node', 'dist/main.js']);
    expect(config.Env).toContain('NODE_ENV=production');
    expect(Object.keys(config.ExposedPorts ?? {})).toEqual([port]);
    expect(config.WorkingDir).toBe('/app');
  });

  it('holds the bundle and the production dependencies only', async () => {
    const contents = JSON.parse(await runNode(image, CONTENTS_SCRIPT)) as ImageContents;
    expect(contents.uid).toBe(1000);
    expect(contents.gid).toBe(1000);
    expect(contents.app).toEqual(['dist', 'node_modules', 'package.json']);
    // Exactly the npm packages the app's package.json lists (the ones its bundle imports), nothing else.
    expect(contents.modules).toEqual(declaredDependencies(app));
    expect(Object.keys(contents.manifest.devDependencies ?? {})).toEqual([]);
    expect(contents.store.filter((entry) => DEV_ONLY.test(entry))).toEqual([]);
    expect(contents.store.some((entry) => entry.startsWith('express@'))).toBe(true);
    // Docker is the manager's alone: the edge holds no Docker client, not even as a transitive dependency.
    const docker = contents.store.filter((entry) =>
      /^(dockerode|docker-modem|ssh2|cpu-features)@/.test(entry),
    );
    if (app === 'edge-proxy') expect(docker).toEqual([]);
    else expect(docker.some((entry) => entry.startsWith('dockerode@'))).toBe(true);
  });
});

describe('container-manager image alone', () => {
  it('serves a session container preview registered through its API, as a non-root process', async () => {
    const hostPort = await freePort();
    const manager = await runContainer(
      'manager',
      [
        '-v',
        `${DOCKER_SOCKET}:${DOCKER_SOCKET}`,
        '--group-add',
        String(socketGid),
        '-e',
        `INTERNAL_SERVICE_KEY=${KEY}`,
        '-p',
        `127.0.0.1:${hostPort}:4002`,
        // The image's HEALTHCHECK, every second instead of every 30 s, to see it pass.
        '--health-interval',
        '1s',
      ],
      MANAGER_IMAGE,
    );
    const baseUrl = `http://127.0.0.1:${hostPort}`;
    await waitForStatus(`${baseUrl}/healthz`, 200, manager);
    // Ready means Docker's event stream is live: the non-root process can use the socket.
    await waitForStatus(`${baseUrl}/readyz`, 200, manager);

    const session = await startSessionContainer();
    const res = await register(baseUrl, session.sessionId, 3000);
    expect(res.status, await res.clone().text()).toBe(201);
    expect(await res.json()).toEqual({ sessionId: session.sessionId, port: 3000, registered: true });
    await expectPreview(baseUrl, session);

    const ids = await pid1Ids(manager);
    expect(ids.uid).not.toBe(0);
    expect(ids.uid).toBe(1000);

    const deadline = Date.now() + 15_000;
    let health = '';
    while (Date.now() < deadline) {
      const state = (await inspect(manager)).State as { Health?: { Status?: string } };
      health = state.Health?.Status ?? 'none';
      if (health === 'healthy') break;
      await sleep(250);
    }
    expect(health).toBe('healthy');
  });
});

describe('container-manager and edge-proxy images with Redis', () => {
  let redis: RedisServerHandle | undefined;

  afterAll(async () => {
    await redis?.stop();
  });

  it('the edge, with no Docker socket, serves a preview registered on the manager', async () => {
    // redis-server listens on 127.0.0.1 only: both apps share the host's network namespace, on loopback.
    redis = await startRedisServer();
    const managerPort = await freePort();
    const edgePort = await freePort();
    const onLoopback = (port: number) => ['--network', 'host', '-e', 'HOST=127.0.0.1', '-e', `PORT=${port}`];
    const manager = await runContainer(
      'manager-redis',
      [
        ...onLoopback(managerPort),
        '-v',
        `${DOCKER_SOCKET}:${DOCKER_SOCKET}`,
        '--group-add',
        String(socketGid),
        '-e',
        `INTERNAL_SERVICE_KEY=${KEY}`,
        '-e',
        `REDIS_URL=${redis.url}`,
      ],
      MANAGER_IMAGE,
    );
    const edge = await runContainer(
      'edge',
      [...onLoopback(edgePort), '-e', `REDIS_URL=${redis.url}`],
      EDGE_IMAGE,
    );
    const managerUrl = `http://127.0.0.1:${managerPort}`;
    const edgeUrl = `http://127.0.0.1:${edgePort}`;
    await waitForStatus(`${managerUrl}/readyz`, 200, manager);
    await waitForStatus(`${edgeUrl}/readyz`, 200, edge);

    const edgeInspect = await inspect(edge);
    expect(edgeInspect.Mounts).toEqual([]);
    expect((await pid1Ids(edge)).uid).toBe(1000);

    const session = await startSessionContainer();
    // Not registered yet: the edge answers the contract's 404.
    const before = await fetch(`${edgeUrl}/previews/${session.sessionId}/`);
    expect(before.status).toBe(404);

    const res = await register(managerUrl, session.sessionId, 3000);
    expect(res.status, await res.clone().text()).toBe(201);
    // The registration reaches the edge through Redis within moments.
    await waitForStatus(`${edgeUrl}/previews/${session.sessionId}/`, 200, edge, 10_000);
    await expectPreview(edgeUrl, session);
    await expectPreview(managerUrl, session);
  });
});
