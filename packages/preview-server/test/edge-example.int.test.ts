// examples/edge.ts (the README's) against real parts: a Redis server, a writer publishing a real session
// container's state, and the edge serving it with no Docker client of its own.
import { readFileSync } from 'node:fs';
import type { PreviewStatePublisher, SharedPreviewState } from '@sandbox/preview-registry';
import { createRedisPreviewState } from '@sandbox/preview-state-redis';
import {
  freePort,
  type RedisServerHandle,
  removeCreatedContainers,
  startRedisServer,
  startSessionContainer,
} from '@sandbox/test-fixtures';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEdge } from '../examples/edge.js';

describe('the edge example', () => {
  let redis: RedisServerHandle;
  let writer: SharedPreviewState & PreviewStatePublisher;
  let edge: Awaited<ReturnType<typeof startEdge>> | undefined;

  beforeAll(async () => {
    redis = await startRedisServer();
    writer = createRedisPreviewState({ url: redis.url, role: 'writer' });
    await writer.ready();
  });
  afterAll(async () => {
    await edge?.close();
    await writer?.close();
    await redis?.stop();
    await removeCreatedContainers();
  });

  it('is quoted in the README exactly as it compiles', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const source = readFileSync(new URL('../examples/edge.ts', import.meta.url), 'utf8');
    expect(readme).toContain(source.trim());
  });

  it('serves what the writer publishes, and the contract errors for what it does not', async () => {
    const box = await startSessionContainer();
    await writer.registry.register(box.sessionId, 3000);
    writer.publishEngineState({ connected: true });
    writer.publishContainerState(box.sessionId, {
      state: 'running',
      ip: box.ip ?? '',
      network: 'bridge',
      containerId: box.id,
    });
    edge = await startEdge(redis.url, await freePort());
    const deadline = Date.now() + 5000;
    let response = await fetch(`${edge.url}/previews/${box.sessionId}/hi`);
    while (response.status !== 200 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      response = await fetch(`${edge.url}/previews/${box.sessionId}/hi`);
    }
    expect(response.status).toBe(200);
    expect(((await response.json()) as { url: string }).url).toBe('/hi');
    const unknown = await fetch(`${edge.url}/previews/nobody/`);
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ code: 'PREVIEW_NOT_REGISTERED' });
    // The edge mounts no internal proxy.
    expect((await fetch(`${edge.url}/internal-previews/proxy/${box.sessionId}/`)).status).toBe(404);
  });
});
