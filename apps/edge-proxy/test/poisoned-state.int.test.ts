// An edge trusts Redis for where a session's container is. Whoever can write to Redis must still not be
// able to point the edge at the host itself: its loopback, its bridge gateway (the host's own address on
// the containers' network). A bait server listens there and must never see a request. A real container
// published with its real address is served, so the refusal is the address check, not a broken edge.
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { PreviewStatePublisher, SharedPreviewState } from '@sandbox/preview-registry';
import { createRedisPreviewState } from '@sandbox/preview-state-redis';
import {
  httpRequest,
  type RedisServerHandle,
  removeCreatedContainers,
  type SessionContainer,
  startRedisServer,
  startSessionContainer,
} from '@sandbox/test-fixtures';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { type RunningEdgeProxy, startEdgeProxy } from '../src/server.js';

let redis: RedisServerHandle;
let writer: SharedPreviewState & PreviewStatePublisher;
let edge: RunningEdgeProxy;
let bait: Server;
let baitPort: number;
let baitHits = 0;
let box: SessionContainer;

beforeAll(async () => {
  redis = await startRedisServer();
  bait = createServer((_req, res) => {
    baitHits++;
    res.end('the host was reached');
  });
  // Every address of the host, the bridge gateway included.
  bait.listen(0, '0.0.0.0');
  await once(bait, 'listening');
  baitPort = (bait.address() as AddressInfo).port;
  box = await startSessionContainer();
  writer = createRedisPreviewState({ url: redis.url, role: 'writer' });
  await writer.ready();
  edge = await startEdgeProxy(
    loadConfig({ REDIS_URL: redis.url, PORT: '0', HOST: '127.0.0.1', SHUTDOWN_GRACE_MS: '500' }),
  );
  await edge.state.ready();
});
afterAll(async () => {
  await edge?.close();
  await writer?.close();
  bait?.closeAllConnections();
  bait?.close();
  await redis?.stop();
  await removeCreatedContainers();
});

/** Publishes a session as running at `ip` with `port` registered, and waits until the edge has it. */
async function publish(sessionId: string, ip: string, port: number): Promise<void> {
  await writer.registry.register(sessionId, port);
  writer.publishContainerState(sessionId, { state: 'running', ip, network: 'bridge' });
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    const state = edge.state.containerState(sessionId);
    if (
      state?.state === 'running' &&
      state.ip === ip &&
      (await edge.state.registry.lookup(sessionId)) === port
    )
      return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`the edge never saw ${sessionId} at ${ip}:${port}`);
}

it('serves a real container published with its real address', async () => {
  await publish(box.sessionId, box.ip ?? '', 3000);
  const reply = await httpRequest(edge.url, `/previews/${box.sessionId}/real`);
  expect(reply.status).toBe(200);
  expect(reply.json<{ url: string }>().url).toBe('/real');
});

it.each([
  ['loopback', '127.0.0.1'],
  ['loopback, IPv4-mapped', '::ffff:127.0.0.1'],
  ['loopback, IPv6', '::1'],
  ["the host's bridge gateway", '172.17.0.1'],
  ['unspecified (the host)', '0.0.0.0'],
])('refuses a session published at %s (%s) with CONTAINER_ADDRESS_REFUSED', async (_what, ip) => {
  const sessionId = `poisoned-${ip.replace(/[^a-z0-9]/gi, '-')}`;
  await publish(sessionId, ip, baitPort);
  const reply = await httpRequest(edge.url, `/previews/${sessionId}/steal`);
  expect(reply.status).toBe(500);
  expect(reply.json()).toEqual({
    statusCode: 500,
    error: 'Internal Server Error',
    message: `Container for session ${sessionId} has an address the proxy does not forward to`,
    code: 'CONTAINER_ADDRESS_REFUSED',
  });
  expect(baitHits).toBe(0);
});

it('the bait is reachable, so a miss above is the check and not a closed port', async () => {
  const reply = await httpRequest(`http://127.0.0.1:${baitPort}`, '/');
  expect(reply.body.toString()).toBe('the host was reached');
  baitHits = 0;
});
