import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createContainerResolver, createDockerClient } from '../src/index.js';
import { failure } from './failure.js';

// Real sockets and a real dockerode client pointed where no engine answers properly; no Docker needed.
const servers: Server[] = [];
const sockets: Socket[] = [];
let tmp = '';

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'container-resolver-int-'));
});

afterAll(async () => {
  for (const socket of sockets) socket.destroy();
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

/** A server on a unix socket that accepts connections and never answers: a hung daemon. */
async function hungDaemon(): Promise<string> {
  const path = join(tmp, `hung-${servers.length}.sock`);
  const server = createServer((socket) => sockets.push(socket));
  servers.push(server);
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(path, resolve));
  return path;
}

/** A localhost TCP port that was just free, so connecting to it is refused. */
async function refusingPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  return address.port;
}

describe('createContainerResolver when Docker cannot answer', () => {
  const sessionId = 'unreachable';

  it('a refused TCP DOCKER_HOST fails with the connect error', async () => {
    const port = await refusingPort();
    const client = createDockerClient({ DOCKER_HOST: `tcp://127.0.0.1:${port}` });
    expect(await failure(createContainerResolver({ docker: client }).resolve(sessionId))).toEqual({
      code: 'CONTAINER_LOOKUP_FAILED',
      message: `Failed to validate container for session ${sessionId}: connect ECONNREFUSED 127.0.0.1:${port}`,
      status: 500,
    });
  });

  it('a missing socket fails with the connect error', async () => {
    const path = join(tmp, 'nonexistent.sock');
    const client = createDockerClient({ DOCKER_HOST: `unix://${path}` });
    expect(await failure(createContainerResolver({ docker: client }).resolve(sessionId))).toMatchObject({
      code: 'CONTAINER_LOOKUP_FAILED',
      message: `Failed to validate container for session ${sessionId}: connect ENOENT ${path}`,
    });
  });

  it('a hung daemon fails fast at the resolver deadline', async () => {
    const client = createDockerClient({ DOCKER_HOST: `unix://${await hungDaemon()}` });
    const started = Date.now();
    const result = await failure(
      createContainerResolver({ docker: client, timeoutMs: 300 }).resolve(sessionId),
    );
    expect(result).toMatchObject({
      code: 'CONTAINER_LOOKUP_FAILED',
      message: `Failed to validate container for session ${sessionId}: Docker did not answer within 300 ms`,
    });
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('the client timeout alone also fails fast, as a bare "socket hang up"', async () => {
    const client = createDockerClient({ DOCKER_HOST: `unix://${await hungDaemon()}` }, { timeoutMs: 300 });
    const started = Date.now();
    const resolver = createContainerResolver({ docker: client, timeoutMs: 10_000 });
    const result = await failure(resolver.resolve(sessionId));
    expect(result.message).toBe(`Failed to validate container for session ${sessionId}: socket hang up`);
    expect(Date.now() - started).toBeLessThan(2000);
  });
});
