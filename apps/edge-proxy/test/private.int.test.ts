// Private previews on the edges: one manager and two edges as processes (the edges with no Docker socket),
// one Redis, a real container. The edges need the token secret, not the internal key; a revocation on the
// manager reaches both within a second.
import { fileURLToPath } from 'node:url';
import {
  type AppProcess,
  connectWebSocket,
  httpRequest,
  type RedisServerHandle,
  type Reply,
  removeCreatedContainers,
  type SessionContainer,
  startAppProcess,
  startRedisServer,
  startSessionContainer,
  type WebSocketHandshakeError,
} from '@sandbox/test-fixtures';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const KEY = 'edge-private-test-key-5d21';
const SECRET = 'edge-private-test-secret-0123456789abcdef';
let redis: RedisServerHandle;
let manager: AppProcess;
let edges: AppProcess[];
let box: SessionContainer;

const appDir = (name: string) => fileURLToPath(new URL(`../../${name}/`, import.meta.url));
const send = (baseUrl: string, path: string, options: Parameters<typeof httpRequest>[2] = {}) =>
  httpRequest(baseUrl, path, { agent: false, ...options });
const api = (path: string, method = 'GET', body?: unknown) =>
  send(manager.url, `/api/internal${path}`, {
    method,
    headers: { 'content-type': 'application/json', 'x-internal-service-key': KEY },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });

beforeAll(async () => {
  redis = await startRedisServer();
  [manager, box] = await Promise.all([
    startAppProcess({
      appDir: appDir('container-manager'),
      env: { REDIS_URL: redis.url, INTERNAL_SERVICE_KEY: KEY, PREVIEW_TOKEN_SECRET: SECRET },
    }),
    startSessionContainer(),
  ]);
  const edge = () =>
    startAppProcess({
      appDir: appDir('edge-proxy'),
      env: { REDIS_URL: redis.url, PREVIEW_TOKEN_SECRET: SECRET },
      hideDockerSocket: true,
    });
  edges = await Promise.all([edge(), edge()]);
  expect(
    (await api(`/sessions/${box.sessionId}/previews`, 'POST', { port: 3000, visibility: 'private' })).status,
  ).toBe(201);
});

afterAll(async () => {
  await Promise.all([manager?.stop(), ...(edges ?? []).map((edge) => edge.stop())]);
  await redis?.stop();
  await removeCreatedContainers();
});

/** Polls every edge until `done` holds for its reply; resolves with the ms it took for all. */
async function untilEveryEdge(
  headers: Record<string, string>,
  done: (reply: Reply) => boolean,
): Promise<number> {
  const started = performance.now();
  await Promise.all(
    edges.map(async (edge) => {
      for (;;) {
        const reply = await send(edge.url, `/previews/${box.sessionId}/`, { headers });
        if (done(reply)) return;
        if (performance.now() - started > 5000)
          throw new Error(`edge ${edge.url}: ${reply.status} ${reply.body}`);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    }),
  );
  return performance.now() - started;
}

describe('a private port on two edges', () => {
  it('is refused without a token, HTTP and WebSocket, and served with one the manager issued', async () => {
    await untilEveryEdge({}, (reply) => reply.status === 401);
    for (const edge of edges) {
      const refused = await connectWebSocket(
        `${edge.url.replace('http', 'ws')}/previews/${box.sessionId}/ws`,
      ).catch((error: unknown) => error);
      expect((refused as WebSocketHandshakeError).statusCode).toBe(401);
    }
    const issued = await api(`/sessions/${box.sessionId}/previews/3000/tokens`, 'POST', { ttlSeconds: 120 });
    const { token } = issued.json<{ token: string }>();
    await untilEveryEdge({ 'x-preview-token': token }, (reply) => reply.status === 200);
    for (const edge of edges) {
      // The prefix is stripped as for any port registered without stripPrefix: false.
      const reply = await send(edge.url, `/previews/${box.sessionId}/deep?x=1`, {
        headers: { 'x-preview-token': token },
      });
      expect(reply.json<{ url: string; headers: Record<string, string> }>()).toMatchObject({
        url: '/deep?x=1',
      });
      expect(reply.json<{ headers: Record<string, string> }>().headers['x-preview-token']).toBeUndefined();
    }
    for (const edge of edges) {
      const ws = await connectWebSocket(`${edge.url.replace('http', 'ws')}/previews/${box.sessionId}/ws`, {
        headers: { 'x-preview-token': token },
      });
      expect((await ws.next()).type).toBe('text');
      ws.destroy();
    }
  });

  it('stops serving a revoked token on both edges within a second', async () => {
    const { token } = (await api(`/sessions/${box.sessionId}/previews/3000/tokens`, 'POST')).json<{
      token: string;
    }>();
    await untilEveryEdge({ 'x-preview-token': token }, (reply) => reply.status === 200);
    const revokedAt = performance.now();
    expect((await api(`/sessions/${box.sessionId}/previews/3000/tokens`, 'DELETE')).status).toBe(200);
    await untilEveryEdge({ 'x-preview-token': token }, (reply) => reply.status === 403);
    const ms = performance.now() - revokedAt;
    console.log(`revocation seen by both edges after ${Math.round(ms)} ms`);
    expect(ms).toBeLessThan(1000);
  });

  it('an edge without the secret cannot check tokens: it refuses, saying so', async () => {
    const blind = await startAppProcess({
      appDir: appDir('edge-proxy'),
      env: { REDIS_URL: redis.url },
      hideDockerSocket: true,
    });
    try {
      const { token } = (await api(`/sessions/${box.sessionId}/previews/3000/tokens`, 'POST')).json<{
        token: string;
      }>();
      let reply = await send(blind.url, `/previews/${box.sessionId}/`, {
        headers: { 'x-preview-token': token },
      });
      for (let i = 0; i < 100 && reply.status === 404; i++) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        reply = await send(blind.url, `/previews/${box.sessionId}/`, {
          headers: { 'x-preview-token': token },
        });
      }
      expect(reply.status).toBe(403);
      expect(reply.json<{ message: string }>().message).toMatch(/no PREVIEW_TOKEN_SECRET/);
    } finally {
      await blind.stop();
    }
  });
});
