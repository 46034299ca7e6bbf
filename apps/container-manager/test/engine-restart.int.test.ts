import { type IsolatedDockerEngine, startIsolatedDockerEngine } from '@sandbox/test-fixtures';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { RunningContainerManager } from '../src/server.js';
import { eventually, register, send, startManager } from './harness.js';

// A private dockerd, so stopping it does not disturb the engine the other test files use concurrently.
// It runs with live-restore: the container keeps running while the daemon is down, as in production.
let engine: IsolatedDockerEngine;
let manager: RunningContainerManager;

beforeAll(async () => {
  engine = await startIsolatedDockerEngine();
  manager = await startManager({ DOCKER_HOST: engine.dockerHost, PREVIEW_NETWORK: engine.network });
}, 180_000);

afterAll(async () => {
  await manager?.close();
  await engine?.destroy();
}, 180_000);

it('answers 500 with the reason while dockerd is down, and resumes by itself within 5 s of its return', async () => {
  const box = await engine.startSessionContainer();
  expect((await register(manager.url, box.sessionId, { port: 3000 })).status).toBe(201);
  expect((await send(manager.url, `/previews/${box.sessionId}/`)).status).toBe(200);
  const ready = await send(manager.url, '/readyz');
  expect(ready.status).toBe(200);
  expect(ready.json()).toEqual({ status: 'ready', checks: { docker: { ready: true } } });

  await engine.stop();
  const down = await eventually(
    () => send(manager.url, `/previews/${box.sessionId}/`),
    (r) => r.status === 500,
    5_000,
  );
  expect(down.status).toBe(500);
  expect(down.json<{ message: string }>().message).toMatch(
    new RegExp(`^Failed to validate container for session ${box.sessionId}: .+`),
  );
  // Not ready while the engine is away (the process itself is healthy), and it says why.
  const notReady = await eventually(
    () => send(manager.url, '/readyz'),
    (r) => r.status === 503,
    5_000,
  );
  expect(notReady.json()).toMatchObject({ status: 'not ready', checks: { docker: { ready: false } } });
  expect(notReady.json<{ checks: { docker: { reason: string } } }>().checks.docker.reason).not.toBe('');
  expect((await send(manager.url, '/healthz')).status).toBe(200);

  await engine.start();
  const backAt = Date.now();
  const up = await eventually(
    () => send(manager.url, `/previews/${box.sessionId}/again`),
    (r) => r.status === 200,
    5_000,
  );
  expect(up.status).toBe(200);
  const recoveredMs = Date.now() - backAt;
  console.info(
    `engine down: "${down.json<{ message: string }>().message}"; routing resumed ${recoveredMs} ms after dockerd answered`,
  );
  expect(recoveredMs).toBeLessThanOrEqual(5_000);
  expect(
    (
      await eventually(
        () => send(manager.url, '/readyz'),
        (r) => r.status === 200,
        5_000,
      )
    ).status,
  ).toBe(200);
}, 120_000);
