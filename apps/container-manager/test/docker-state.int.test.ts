import { randomBytes } from 'node:crypto';
import { networkInterfaces } from 'node:os';
import {
  type DockerRelay,
  docker,
  isInspectRequest,
  isListRequest,
  removeCreatedContainers,
  startDockerRelay,
  startSessionContainer,
  uniqueSessionId,
} from '@sandbox/test-fixtures';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningContainerManager } from '../src/server.js';
import { errorBody, eventually, type Reply, register, send, startManager, TEST_KEY } from './harness.js';

type Echo = { url: string; remoteAddress: string; port: number };

// Every Docker call of the manager goes through a counting relay, so the test counts what reaches the
// daemon's socket instead of trusting the service's own bookkeeping.
let relay: DockerRelay;
let manager: RunningContainerManager;
const networks: string[] = [];

async function createNetwork(): Promise<{ name: string; gateway: string }> {
  const name = `preview-test-${randomBytes(4).toString('hex')}`;
  await docker(['network', 'create', name]);
  networks.push(name);
  const gateway = await docker([
    'network',
    'inspect',
    name,
    '--format',
    '{{(index .IPAM.Config 0).Gateway}}',
  ]);
  return { name, gateway };
}

// A daemon started afresh may list the default bridge's subnet without its gateway: the gateway is then the
// bridge interface's own address on this host.
async function bridgeGateway(): Promise<string> {
  const listed = await docker([
    'network',
    'inspect',
    'bridge',
    '--format',
    '{{(index .IPAM.Config 0).Gateway}}',
  ]);
  if (listed !== '' && listed !== '<no value>') return listed;
  const name = await docker([
    'network',
    'inspect',
    'bridge',
    '--format',
    '{{index .Options "com.docker.network.bridge.name"}}',
  ]);
  const address = networkInterfaces()[name || 'docker0']?.find((entry) => entry.family === 'IPv4')?.address;
  if (address === undefined) throw new Error(`no IPv4 address on the bridge interface ${name}`);
  return address;
}

// A request sent in the instant before the watcher sees an address change can go out on a pooled
// connection to the old address, which the kernel then retries for minutes (no proxy timeout yet):
// such a try counts as "not yet" instead of hanging the test.
const TIMED_OUT: Reply = { status: 0, headers: {}, body: Buffer.alloc(0), json: () => ({}) as never };
const sendWithin = (sessionId: string, ms: number) =>
  Promise.race([
    send(manager.url, `/previews/${sessionId}/`),
    new Promise<Reply>((resolve) => setTimeout(() => resolve(TIMED_OUT), ms).unref()),
  ]);
const until = (sessionId: string, done: (reply: Reply) => boolean, timeoutMs = 2000) =>
  eventually(() => sendWithin(sessionId, 400), done, timeoutMs);

beforeAll(async () => {
  relay = await startDockerRelay();
  // The periodic resync (one list call) is pushed out of the test's way; the event stream does the work.
  manager = await startManager({ DOCKER_HOST: relay.dockerHost, DOCKER_RECONCILE_INTERVAL_MS: '600000' });
});

afterAll(async () => {
  await manager?.close();
  await relay?.close();
  await removeCreatedContainers();
  for (const name of networks) await docker(['network', 'rm', name]).catch(() => {});
});

describe('the hot path', () => {
  it('makes no Docker call for 500 proxied requests to a registered session', async () => {
    const box = await startSessionContainer();
    expect((await register(manager.url, box.sessionId, { port: 3000 })).status).toBe(201);
    expect((await send(manager.url, `/previews/${box.sessionId}/warm`)).status).toBe(200);
    relay.reset();
    for (let batch = 0; batch < 50; batch++) {
      const replies = await Promise.all(
        Array.from({ length: 10 }, (_, i) => send(manager.url, `/previews/${box.sessionId}/r${batch}-${i}`)),
      );
      for (const reply of replies) expect(reply.status).toBe(200);
    }
    // Other test files start containers on the same engine at the same time, and their events make the
    // watcher inspect *those*; what matters is that no request to this session cost a call.
    expect(relay.count((r) => isInspectRequest(r) && r.path.includes(box.name))).toBe(0);
    expect(relay.count(isListRequest)).toBe(0);
  });

  it('costs exactly one inspect for concurrent misses of a session never seen', async () => {
    const id = uniqueSessionId('miss');
    relay.reset();
    const replies = await Promise.all(
      Array.from({ length: 10 }, () => register(manager.url, id, { port: 3000 })),
    );
    for (const reply of replies) expect(reply.status).toBe(500);
    expect(relay.count((r) => isInspectRequest(r) && r.path.includes(`sandbox-session-${id}`))).toBe(1);
  });
});

describe('container lifecycle', () => {
  it('docker stop: 500 "not running" within 100 ms; docker start: the new address within 1 s', async () => {
    const box = await startSessionContainer();
    expect((await register(manager.url, box.sessionId, { port: 3000 })).status).toBe(201);
    await docker(['stop', '-t', '1', box.name]);
    const stoppedAt = Date.now();
    const stopped = await until(box.sessionId, (r) => r.status === 500, 100);
    expect(Date.now() - stoppedAt).toBeLessThanOrEqual(100);
    expect(stopped.json()).toMatchObject(
      errorBody(500, 'Internal Server Error', `Container for session ${box.sessionId} is not running`),
    );

    await docker(['start', box.name]);
    const startedAt = Date.now();
    const served = await until(box.sessionId, (r) => r.status === 200, 1000);
    expect(served.status).toBe(200);
    expect(Date.now() - startedAt).toBeLessThanOrEqual(1000);
  });

  it('docker rm -f: 404 within 500 ms', async () => {
    const box = await startSessionContainer();
    expect((await register(manager.url, box.sessionId, { port: 3000 })).status).toBe(201);
    await docker(['rm', '-f', box.name]);
    const removedAt = Date.now();
    const reply = await until(box.sessionId, (r) => r.status === 404, 500);
    expect(reply.status).toBe(404);
    expect(Date.now() - removedAt).toBeLessThanOrEqual(500);
  });

  it('docker kill: 500 "not running"; docker restart: served again', async () => {
    const box = await startSessionContainer();
    expect((await register(manager.url, box.sessionId, { port: 3000 })).status).toBe(201);
    await docker(['kill', box.name]);
    expect((await until(box.sessionId, (r) => r.status === 500)).status).toBe(500);
    await docker(['restart', '-t', '1', box.name]);
    expect((await until(box.sessionId, (r) => r.status === 200)).status).toBe(200);
    await docker(['restart', '-t', '1', box.name]);
    expect((await until(box.sessionId, (r) => r.status === 200)).status).toBe(200);
  });

  it('docker pause: 500 "not running"; docker unpause: served again', async () => {
    const box = await startSessionContainer();
    expect((await register(manager.url, box.sessionId, { port: 3000 })).status).toBe(201);
    await box.pause();
    const paused = await until(box.sessionId, (r) => r.status === 500);
    expect(paused.json()).toMatchObject({ message: `Container for session ${box.sessionId} is not running` });
    await box.unpause();
    expect((await until(box.sessionId, (r) => r.status === 200)).status).toBe(200);
  });

  it('network disconnect and connect move the preview to the address that remains', async () => {
    const extra = await createNetwork();
    const box = await startSessionContainer();
    await docker(['network', 'connect', extra.name, box.name]);
    expect((await register(manager.url, box.sessionId, { port: 3000 })).status).toBe(201);
    // Without PREVIEW_NETWORK the first network by name is used: "bridge" sorts before "preview-test-*".
    const gatewayOf = (reply: Reply) =>
      reply.status === 200 ? reply.json<Echo>().remoteAddress : reply.status;
    expect(gatewayOf(await send(manager.url, `/previews/${box.sessionId}/`))).toBe(await bridgeGateway());
    await docker(['network', 'disconnect', 'bridge', box.name]);
    expect(gatewayOf(await until(box.sessionId, (r) => gatewayOf(r) === extra.gateway, 5000))).toBe(
      extra.gateway,
    );
    await docker(['network', 'disconnect', extra.name, box.name]);
    const none = await until(box.sessionId, (r) => r.status === 500, 5000);
    expect(none.json()).toMatchObject({
      message: `Container for session ${box.sessionId} has no IP address`,
    });
    await docker(['network', 'connect', 'bridge', box.name]);
    expect(gatewayOf(await until(box.sessionId, (r) => r.status === 200, 5000))).toBe(await bridgeGateway());
  });
});

describe('networks', () => {
  it('reaches a container on two networks on the PREVIEW_NETWORK one, unless its label says otherwise', async () => {
    const preferred = await createNetwork();
    const other = await createNetwork();
    const onPreferred = await startManager({ PREVIEW_NETWORK: preferred.name });
    try {
      const plain = await startSessionContainer();
      const labelled = await startSessionContainer({ labels: { 'sandbox.preview.network': other.name } });
      for (const box of [plain, labelled]) {
        await docker(['network', 'connect', preferred.name, box.name]);
        await docker(['network', 'connect', other.name, box.name]);
        expect((await register(onPreferred.url, box.sessionId, { port: 3000 })).status).toBe(201);
      }
      const via = async (sessionId: string) =>
        (await send(onPreferred.url, `/previews/${sessionId}/`)).json<Echo>().remoteAddress;
      expect(await via(plain.sessionId)).toBe(preferred.gateway);
      expect(await via(labelled.sessionId)).toBe(other.gateway);
    } finally {
      await onPreferred.close();
    }
  });
});

describe('declarative registration', () => {
  it('serves a container labelled sandbox.preview.port without any API call, also after a service restart', async () => {
    const box = await startSessionContainer({
      ports: [3000, 3001],
      labels: { 'sandbox.preview.port': '3001' },
    });
    const served = await until(box.sessionId, (r) => r.status === 200);
    expect(served.json<Echo>().port).toBe(3001);

    const restarted = await startManager({ DOCKER_HOST: relay.dockerHost });
    try {
      const reply = await eventually(
        () => send(restarted.url, `/previews/${box.sessionId}/`),
        (r) => r.status === 200,
      );
      expect(reply.json<Echo>().port).toBe(3001);
    } finally {
      await restarted.close();
    }
  });

  it('keeps the path prefix for a container labelled sandbox.preview.strip-prefix=false', async () => {
    const box = await startSessionContainer({
      labels: { 'sandbox.preview.port': '3000', 'sandbox.preview.strip-prefix': 'false' },
    });
    const served = await until(box.sessionId, (r) => r.status === 200);
    expect(served.json<Echo>().url).toBe(`/previews/${box.sessionId}/`);
    const listed = await send(manager.url, `/api/internal/sessions/${box.sessionId}/previews`, {
      headers: { 'x-internal-service-key': TEST_KEY },
    });
    expect(listed.json()).toMatchObject({ previews: [{ port: 3000, stripPrefix: false, active: true }] });
  });

  it('lets an API registration override the label until the container starts again', async () => {
    const box = await startSessionContainer({
      ports: [3000, 3001],
      labels: { 'sandbox.preview.port': '3001' },
    });
    await until(box.sessionId, (r) => r.status === 200);
    expect((await register(manager.url, box.sessionId, { port: 3000 })).status).toBe(201);
    expect((await send(manager.url, `/previews/${box.sessionId}/`)).json<Echo>().port).toBe(3000);
    await docker(['restart', '-t', '1', box.name]);
    const again = await until(box.sessionId, (r) => r.status === 200 && r.json<Echo>().port === 3001);
    expect(again.json<Echo>().port).toBe(3001);
  });

  it('ignores an invalid port label', async () => {
    const box = await startSessionContainer({ labels: { 'sandbox.preview.port': '80' } });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect((await send(manager.url, `/previews/${box.sessionId}/`)).status).toBe(404);
  });
});
