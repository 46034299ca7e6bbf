import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInMemoryRegistry } from '@sandbox/preview-core';
import {
  connectWebSocket,
  removeCreatedContainers,
  startSessionContainer,
  uniqueSessionId,
} from '@sandbox/test-fixtures';
import { afterAll, describe, expect, it } from 'vitest';
import { errorBody, register, send, startManager, TEST_KEY } from './harness.js';

const APP_DIR = new URL('..', import.meta.url).pathname;

/** Runs the real entry point (`pnpm start` runs the same file) with the given environment. */
function spawnMain(env: Record<string, string>): { child: ChildProcess; output: () => string } {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: APP_DIR,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  return { child, output: () => output };
}

async function listeningUrl(output: () => string, child: ChildProcess): Promise<string> {
  for (let waited = 0; waited < 20_000; waited += 50) {
    const match = /listening on (http:\/\/[^\s"]+)/.exec(output());
    if (match?.[1]) return match[1];
    if (child.exitCode !== null) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`container-manager did not start:\n${output()}`);
}

afterAll(async () => {
  await removeCreatedContainers();
});

describe('start-up', () => {
  it.each([
    [{}, /INTERNAL_SERVICE_KEY is required/],
    [{ INTERNAL_SERVICE_KEY: '' }, /INTERNAL_SERVICE_KEY must not be empty/],
    [{ INTERNAL_SERVICE_KEY: 'k', PORT: 'http' }, /PORT/],
    [{ INTERNAL_SERVICE_KEY: 'k', DOCKER_HOST: 'ftp://nowhere' }, /DOCKER_HOST/],
  ])('stops with a message naming the variable for %j', async (env, message) => {
    const { child, output } = spawnMain(env);
    const [code] = (await once(child, 'exit')) as [number];
    expect(code).toBe(1);
    expect(output()).toMatch(message);
  });

  it('starts even when the Docker engine is unreachable; requests then get the 500 with the reason', async () => {
    const { child, output } = spawnMain({
      INTERNAL_SERVICE_KEY: TEST_KEY,
      PORT: '0',
      HOST: '127.0.0.1',
      DOCKER_HOST: 'unix:///tmp/sandbox-no-such-docker.sock',
    });
    try {
      const url = await listeningUrl(output, child);
      const id = uniqueSessionId('nodocker');
      const reply = await register(url, id, { port: 3000 });
      expect(reply.status).toBe(500);
      expect(reply.json()).toMatchObject(
        errorBody(
          500,
          'Internal Server Error',
          `Failed to validate container for session ${id}: connect ENOENT /tmp/sandbox-no-such-docker.sock`,
        ),
      );
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('answers the proxy route with the 500 and the reason while the engine is unreachable', async () => {
    const id = uniqueSessionId('nodocker');
    const registry = createInMemoryRegistry({ initial: [{ sessionId: id, port: 3000 }] });
    const manager = await startManager({ DOCKER_HOST: 'tcp://127.0.0.1:1' }, { registry });
    try {
      const reply = await send(manager.url, `/previews/${id}/`);
      expect(reply.status).toBe(500);
      expect(reply.json()).toMatchObject(
        errorBody(
          500,
          'Internal Server Error',
          `Failed to validate container for session ${id}: connect ECONNREFUSED 127.0.0.1:1`,
        ),
      );
    } finally {
      await manager.close();
    }
  });
});

describe('shutdown', () => {
  it.each(['SIGTERM', 'SIGINT'] as const)(
    'on %s closes WebSockets with 1001, lets an in-flight request finish, then exits 0',
    async (signal) => {
      const box = await startSessionContainer();
      const { child, output } = spawnMain({ INTERNAL_SERVICE_KEY: TEST_KEY, PORT: '0', HOST: '127.0.0.1' });
      const url = await listeningUrl(output, child);
      expect((await register(url, box.sessionId, { port: 3000 })).status).toBe(201);

      const inFlight = send(url, `/previews/${box.sessionId}/__fixture/slow/1500`);
      const ws = await connectWebSocket(`${url.replace('http', 'ws')}/previews/${box.sessionId}/ws`, {
        timeoutMs: 5000,
      });
      await ws.next();
      await new Promise((resolve) => setTimeout(resolve, 300));
      const exited = once(child, 'exit');
      child.kill(signal);

      // The WebSocket is told at once that the service is going away; the slow request still completes.
      const closing = await ws.next(3000);
      expect(closing).toEqual({ type: 'close', code: 1001, reason: '' });
      const reply = await inFlight;
      expect(reply.status).toBe(200);
      expect(reply.body.toString()).toBe('slow\n');
      const [code] = (await exited) as [number];
      expect(code).toBe(0);
      expect(output()).toContain(`${signal} received`);
    },
  );
});
