import {
  connectWebSocket,
  removeCreatedContainers,
  type SessionContainer,
  startSessionContainer,
} from '@sandbox/test-fixtures';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, register, send, TEST_KEY } from './harness.js';
import { type ManagerProcess, startManagerProcess } from './manager-process.js';

// The real entry point in its own process, its stdout read as the JSON lines a log shipper would read.
let manager: ManagerProcess;
let box: SessionContainer;

beforeAll(async () => {
  [manager, box] = await Promise.all([startManagerProcess({ LOG_LEVEL: 'info' }), startSessionContainer()]);
  expect((await register(manager.url, box.sessionId, { port: 3000 })).status).toBe(201);
});

afterAll(async () => {
  await manager?.stop();
  await removeCreatedContainers();
});

type Line = Record<string, unknown>;
const lines = (): Line[] =>
  manager
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Line);
const accessLine = (requestId: string) =>
  eventually(
    async () => lines().find((line) => line.msg === 'access' && line.requestId === requestId),
    (line) => line !== undefined,
    3000,
  );

describe('logs', () => {
  it('writes JSON lines with the service name and level', () => {
    const listening = lines().find((line) => String(line.msg).includes('listening on'));
    expect(listening).toMatchObject({ name: 'container-manager', level: 30, url: manager.url });
  });

  it('says at start-up which upstream engine serves, and why', () => {
    const engine = lines().find((line) => String(line.msg).startsWith('upstream engine:'));
    expect(engine).toMatchObject({ level: 30, engine: 'native', reason: 'default', node: process.version });
  });

  it('takes the request id from X-Request-Id, returns it and forwards it, and writes one access line', async () => {
    const reply = await send(manager.url, `/previews/${box.sessionId}/app/page?x=1`, {
      headers: { 'x-request-id': 'req-abc-123' },
    });
    expect(reply.status).toBe(200);
    expect(reply.headers['x-request-id']).toBe('req-abc-123');
    expect(reply.json<{ headers: Record<string, string> }>().headers['x-request-id']).toBe('req-abc-123');
    const line = await accessLine('req-abc-123');
    expect(line).toMatchObject({
      msg: 'access',
      level: 30,
      kind: 'http',
      route: '/previews',
      sessionId: box.sessionId,
      port: 3000,
      method: 'GET',
      path: `/previews/${box.sessionId}/app/page`,
      status: 200,
      aborted: false,
    });
    expect(line?.bytesOut).toBeGreaterThan(reply.body.length);
    expect(line?.bytesIn).toBe(0);
    expect(line?.error).toBeUndefined();
    expect(typeof line?.upstreamConnectMs).toBe('number');
    expect(line?.durationMs).toBeGreaterThan(0);
  });

  it('makes a request id when there is none (or a malformed one), and logs errors with their status', async () => {
    const made = await send(manager.url, '/previews/nobody-here/', {
      headers: { 'x-request-id': 'bad id\twith tab' },
    });
    expect(made.status).toBe(404);
    const id = String(made.headers['x-request-id']);
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(await accessLine(id)).toMatchObject({
      status: 404,
      route: '/previews',
      sessionId: 'nobody-here',
      error: 'PREVIEW_NOT_REGISTERED',
    });
    const body = 'x'.repeat(5000);
    const posted = await send(manager.url, `/previews/${box.sessionId}/upload`, { method: 'POST', body });
    expect(await accessLine(String(posted.headers['x-request-id']))).toMatchObject({
      method: 'POST',
      status: 200,
      bytesIn: 5000,
    });
  });

  it('writes an access line for a WebSocket when it closes', async () => {
    const ws = await connectWebSocket(`${manager.url.replace('http', 'ws')}/previews/${box.sessionId}/ws`, {
      headers: { 'x-request-id': 'ws-req-1' },
      timeoutMs: 5000,
    });
    await ws.next();
    ws.close(1000);
    await ws.ended;
    expect(await accessLine('ws-req-1')).toMatchObject({
      kind: 'websocket',
      status: 101,
      closeCode: 1000,
      route: '/previews',
      sessionId: box.sessionId,
      port: 3000,
      method: 'GET',
    });
  });

  it('logs the status an app answered an upgrade with instead of the 101, and passes it on', async () => {
    // The fixture refuses any WebSocket version but 13 with its own 426.
    const reply = await send(manager.url, `/previews/${box.sessionId}/ws`, {
      headers: {
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
        'sec-websocket-version': '8',
        'x-request-id': 'ws-req-426',
      },
    });
    expect(reply.status).toBe(426);
    expect(await accessLine('ws-req-426')).toMatchObject({ kind: 'websocket', status: 426 });
  });

  it('never logs the internal key, a cookie, a token or an authorization', async () => {
    const secrets = ['SEKRET-cookie-1', 'SEKRET-bearer-2', 'SEKRET-query-3', 'SEKRET-set-cookie-4', TEST_KEY];
    await send(manager.url, `/previews/${box.sessionId}/?token=SEKRET-query-3`, {
      headers: {
        cookie: 'session=SEKRET-cookie-1',
        authorization: 'Bearer SEKRET-bearer-2',
        'x-internal-service-key': TEST_KEY,
        'x-request-id': 'secrets-1',
      },
    });
    await send(
      manager.url,
      `/previews/${box.sessionId}/__fixture/respond?header=Set-Cookie:s%3DSEKRET-set-cookie-4`,
      { headers: { 'x-request-id': 'secrets-2' } },
    );
    // Failures too: a wrong key, a bad body, an unknown route.
    await register(manager.url, box.sessionId, { port: 'SEKRET-query-3' }, 'SEKRET-bearer-2');
    await register(manager.url, box.sessionId, { port: 3000 });
    await accessLine('secrets-1');
    await accessLine('secrets-2');
    const output = manager.output();
    for (const secret of secrets) expect(output, secret).not.toContain(secret);
  });
});

describe('ACCESS_LOG=false', () => {
  it('writes no access line; the request log keeps request ids on', async () => {
    const quiet = await startManagerProcess({ LOG_LEVEL: 'info', ACCESS_LOG: 'false' });
    try {
      expect((await register(quiet.url, box.sessionId, { port: 3000 })).status).toBe(201);
      const reply = await send(quiet.url, `/previews/${box.sessionId}/`, {
        headers: { 'x-request-id': 'kept-as-is' },
      });
      expect(reply.status).toBe(200);
      expect(reply.headers['x-request-id']).toBe('kept-as-is');
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(quiet.output()).toContain('listening on');
      expect(quiet.output()).not.toContain('"msg":"access"');
    } finally {
      await quiet.stop();
    }
  });

  it('with REQUEST_LOG_SIZE=0 too, traces nothing: no access line, no request id', async () => {
    const quiet = await startManagerProcess({
      LOG_LEVEL: 'info',
      ACCESS_LOG: 'false',
      REQUEST_LOG_SIZE: '0',
    });
    try {
      expect((await register(quiet.url, box.sessionId, { port: 3000 })).status).toBe(201);
      const reply = await send(quiet.url, `/previews/${box.sessionId}/`, {
        headers: { 'x-request-id': 'kept-as-is' },
      });
      expect(reply.status).toBe(200);
      expect(reply.headers['x-request-id']).toBeUndefined();
      // The client's own header still reaches the container, untouched.
      expect(reply.json<{ headers: Record<string, string> }>().headers['x-request-id']).toBe('kept-as-is');
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(quiet.output()).toContain('listening on');
      expect(quiet.output()).not.toContain('"msg":"access"');
    } finally {
      await quiet.stop();
    }
  });
});
