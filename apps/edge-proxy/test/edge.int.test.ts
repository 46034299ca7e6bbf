import { realpathSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  type AppProcess,
  connectWebSocket,
  DOCKER_SOCKET,
  httpRequest,
  parsePrometheusText,
  type RedisServerHandle,
  type Reply,
  removeCreatedContainers,
  type SessionContainer,
  startAppProcess,
  startRedisServer,
  startSessionContainer,
} from '@sandbox/test-fixtures';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// One container-manager and two edges sharing a real Redis, each in its own process as deployed, in front
// of real containers. The edges are given no Docker address and hold no Docker socket.
const KEY = 'edge-test-key-41c9';
const DOMAIN = 'preview.test';
let redis: RedisServerHandle;
let manager: AppProcess;
let edges: AppProcess[];

const appDir = (name: string) => fileURLToPath(new URL(`../../${name}/`, import.meta.url));
/** Each request on a connection of its own, as from independent clients. */
const send = (baseUrl: string, path: string, options: Parameters<typeof httpRequest>[2] = {}) =>
  httpRequest(baseUrl, path, { agent: false, ...options });

beforeAll(async () => {
  redis = await startRedisServer();
  const shared = { REDIS_URL: redis.url, PREVIEW_DOMAIN: DOMAIN };
  manager = await startAppProcess({
    appDir: appDir('container-manager'),
    env: { ...shared, INTERNAL_SERVICE_KEY: KEY },
  });
  // An edge gets no Docker address, and its view of the engine's socket is /dev/null.
  const edge = () =>
    startAppProcess({
      appDir: appDir('edge-proxy'),
      env: { ...shared, METRICS_PORT: '0' },
      hideDockerSocket: true,
    });
  edges = await Promise.all([edge(), edge()]);
});

afterAll(async () => {
  await Promise.all([manager?.stop(), ...(edges ?? []).map((edge) => edge.stop())]);
  await redis?.stop();
  await removeCreatedContainers();
});

function register(sessionId: string, port: number, options: { stripPrefix?: boolean } = {}): Promise<Reply> {
  return send(manager.url, `/api/internal/sessions/${sessionId}/previews`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-internal-service-key': KEY },
    body: JSON.stringify({ port, ...options }),
  });
}

/** Polls every edge until `done` holds for its reply to `path`; resolves with the ms it took for all. */
async function untilEveryEdge(
  path: string,
  done: (reply: Reply) => boolean,
  timeoutMs: number,
  headers: Record<string, string> = {},
): Promise<number> {
  const started = performance.now();
  await Promise.all(
    edges.map(async (edge) => {
      for (;;) {
        const reply = await send(edge.url, path, { headers });
        if (done(reply)) return;
        if (performance.now() - started > timeoutMs)
          throw new Error(
            `${edge.url}${path}: still ${reply.status} ${reply.body.toString()} after ${timeoutMs} ms`,
          );
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    }),
  );
  return performance.now() - started;
}

const ok = (reply: Reply) => reply.status === 200;

/** One value of an edge's /metrics (its own port, never the public one). */
async function metric(edge: AppProcess, name: string): Promise<number | undefined> {
  const url = edge.metricsUrl();
  if (url === undefined) throw new Error(`no metrics URL in:\n${edge.output()}`);
  return parsePrometheusText(await (await fetch(url)).text()).get(name);
}

describe('one manager, two edges, one Redis', () => {
  let box: SessionContainer;
  beforeAll(async () => {
    box = await startSessionContainer();
  });

  it('serves a registration made on the manager from both edges within 100 ms', async () => {
    expect((await register(box.sessionId, 3000)).status).toBe(201);
    await untilEveryEdge(`/previews/${box.sessionId}/__fixture/ready`, ok, 1000);
    // Each new registration moves the path route to the other port; the time until both edges serve it
    // includes this test's own polling (a fresh connection per request), so take the median of several.
    const two = await startSessionContainer({ ports: [3000, 4000] });
    const timings: number[] = [];
    for (const port of [3000, 4000, 3000, 4000, 3000, 4000, 3000]) {
      expect((await register(two.sessionId, port)).status).toBe(201);
      timings.push(
        await untilEveryEdge(
          `/previews/${two.sessionId}/`,
          (reply) => reply.status === 200 && reply.json<{ port: number }>().port === port,
          2000,
        ),
      );
    }
    timings.sort((a, b) => a - b);
    const median = timings[Math.floor(timings.length / 2)] ?? Number.NaN;
    console.info(
      `registration served by both edges after ${timings.map((ms) => ms.toFixed(1)).join(', ')} ms (median ${median.toFixed(1)})`,
    );
    expect(median).toBeLessThan(100);
  });

  it('answers docker stop with the 500 on both edges within 500 ms, and docker start resumes within 1 s', async () => {
    const path = `/previews/${box.sessionId}/__fixture/ready`;
    await untilEveryEdge(path, ok, 2000);
    await box.stop();
    const stoppedMs = await untilEveryEdge(
      path,
      (reply) =>
        reply.status === 500 &&
        reply.json<{ message: string }>().message === `Container for session ${box.sessionId} is not running`,
      500,
    );
    expect(stoppedMs).toBeLessThan(500);
    await box.start();
    const resumedMs = await untilEveryEdge(path, ok, 1000);
    console.info(
      `docker stop -> 500 on both edges after ${stoppedMs.toFixed(1)} ms; start -> 200 after ${resumedMs.toFixed(1)} ms`,
    );
    expect(resumedMs).toBeLessThan(1000);
  });

  it('gives the same contract errors as the manager', async () => {
    const unknown = await send(edges[0]?.url ?? '', '/previews/nobody-here/');
    expect(unknown.status).toBe(404);
    expect(unknown.json()).toMatchObject({ message: 'No preview port registered for session nobody-here' });
    const bad = await send(edges[1]?.url ?? '', '/previews/-bad/');
    expect(bad.json()).toMatchObject({ statusCode: 400, code: 'INVALID_SESSION_ID' });
  });

  it('has no internal API, no internal proxy and no Docker socket', async () => {
    // /var/run is a symlink to /run: resolved here, or /proc/<pid>/root would follow it in our namespace.
    const socketPath = realpathSync(DOCKER_SOCKET);
    for (const edge of edges) {
      const api = await send(edge.url, `/api/internal/sessions/${box.sessionId}/previews`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-internal-service-key': KEY },
        body: JSON.stringify({ port: 3000 }),
      });
      expect(api.status).toBe(404);
      expect(api.json()).toMatchObject({ code: 'ROUTE_NOT_FOUND' });
      const internal = await send(edge.url, `/internal-previews/proxy/${box.sessionId}/`);
      expect(internal.status).toBe(404);
      // What the edge sees at the socket's path (through its own mount namespace) is /dev/null.
      expect(statSync(`/proc/${edge.pid}/root${socketPath}`).isCharacterDevice()).toBe(true);
      expect(edge.output()).not.toMatch(/docker/i);
    }
    // The manager, for contrast, sees the engine's socket.
    expect(statSync(`/proc/${manager.pid}/root${socketPath}`).isSocket()).toBe(true);
  });

  it('routes hosts and paths to many ports, over HTTP and WebSocket', async () => {
    const two = await startSessionContainer({ ports: [3000, 4000] });
    await register(two.sessionId, 3000);
    await register(two.sessionId, 4000);
    const port = (reply: Reply) =>
      reply.status === 200 ? reply.json<{ port: number }>().port : reply.status;
    await untilEveryEdge(`/previews/${two.sessionId}/`, (reply) => port(reply) === 4000, 1000);
    for (const edge of [manager, ...edges]) {
      expect(port(await send(edge.url, '/', { headers: { host: `3000-${two.sessionId}.${DOMAIN}` } }))).toBe(
        3000,
      );
      expect(
        port(await send(edge.url, '/', { headers: { host: `4000-${two.sessionId}.${DOMAIN}:443` } })),
      ).toBe(4000);
      const missing = await send(edge.url, '/', { headers: { host: `5000-${two.sessionId}.${DOMAIN}` } });
      expect(missing.status).toBe(404);
      expect(missing.json()).toMatchObject({
        message: `No preview port registered for session ${two.sessionId}`,
      });
      for (const wsPort of [3000, 4000]) {
        const ws = await connectWebSocket(`${edge.url.replace('http', 'ws')}/socket`, {
          headers: { host: `${wsPort}-${two.sessionId}.${DOMAIN}` },
          timeoutMs: 5000,
        });
        const hello = await ws.next();
        expect(hello.type === 'text' && JSON.parse(hello.text).port).toBe(wsPort);
        ws.destroy();
      }
      const viaPath = await connectWebSocket(
        `${edge.url.replace('http', 'ws')}/previews/${two.sessionId}/socket`,
        {
          timeoutMs: 5000,
        },
      );
      const hello = await viaPath.next();
      expect(hello.type === 'text' && JSON.parse(hello.text).port).toBe(4000);
      viaPath.destroy();
    }
    // Removing the active port on the manager moves every edge's path route back to the other one.
    const removed = await send(manager.url, `/api/internal/sessions/${two.sessionId}/previews/4000`, {
      method: 'DELETE',
      headers: { 'x-internal-service-key': KEY },
    });
    expect(removed.status).toBe(200);
    await untilEveryEdge(`/previews/${two.sessionId}/`, (reply) => port(reply) === 3000, 1000);
    await untilEveryEdge('/', (reply) => reply.status === 404, 1000, {
      host: `4000-${two.sessionId}.${DOMAIN}`,
    });
  });

  it('forwards the whole path to a port registered with stripPrefix: false, over HTTP and WebSocket', async () => {
    const box = await startSessionContainer({ ports: [3000] });
    expect((await register(box.sessionId, 3000, { stripPrefix: false })).status).toBe(201);
    const path = `/previews/${box.sessionId}/app?x=1`;
    const url = (reply: Reply) => (reply.status === 200 ? reply.json<{ url: string }>().url : reply.status);
    await untilEveryEdge(path, (reply) => url(reply) === path, 1000);
    for (const edge of edges) {
      const ws = await connectWebSocket(`${edge.url.replace('http', 'ws')}${path}`, { timeoutMs: 5000 });
      const hello = await ws.next();
      expect(hello.type === 'text' && JSON.parse(hello.text).url).toBe(path);
      ws.destroy();
    }
    // Registered again with the default, the edges strip the prefix again.
    await register(box.sessionId, 3000);
    await untilEveryEdge(path, (reply) => url(reply) === '/app?x=1', 1000);
  });

  it('keeps serving while Redis is down, and converges within 5 s after it returns empty', async () => {
    const path = `/previews/${box.sessionId}/__fixture/ready`;
    await untilEveryEdge(path, ok, 2000);
    const later = await startSessionContainer();
    await redis.kill();
    // Down: known previews are still served, readiness says why not ready.
    await untilEveryEdge('/readyz', (reply) => reply.status === 503, 5000);
    for (const edge of edges) expect(await metric(edge, 'preview_redis_synced')).toBe(0);
    await untilEveryEdge(path, ok, 1000);
    // A registration made while Redis is down is accepted by the manager and not lost.
    expect((await register(later.sessionId, 3000)).status).toBe(201);
    await redis.start();
    const convergedMs = await untilEveryEdge(`/previews/${later.sessionId}/__fixture/ready`, ok, 5000);
    console.info(
      `Redis back (empty): both edges serve the registration made meanwhile after ${convergedMs.toFixed(1)} ms`,
    );
    expect(convergedMs).toBeLessThan(5000);
    await untilEveryEdge(path, ok, 1000);
    await untilEveryEdge('/readyz', ok, 5000);
    for (const edge of edges) {
      expect(await metric(edge, 'preview_redis_synced')).toBe(1);
      expect(
        await metric(edge, 'preview_http_requests_total{route="/previews",method="GET",status_class="2xx"}'),
      ).toBeGreaterThan(5);
      expect((await send(edge.url, '/metrics')).status).toBe(404);
    }
    expect(edges[0]?.output()).toMatch(/redis/i);
  });
});
