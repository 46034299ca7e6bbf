import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import {
  connectWebSocket,
  type RawWebSocket,
  removeCreatedContainers,
  type SessionContainer,
  startSessionContainer,
  uniqueSessionId,
  WebSocketHandshakeError,
} from '@sandbox/test-fixtures';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningContainerManager } from '../src/server.js';
import { register, TEST_KEY } from './harness.js';

type Hello = { type: 'hello'; url: string; headers: Record<string, string>; protocol: string | null };

const ROUTES = ['/previews', '/internal-previews/proxy'] as const;
let manager: RunningContainerManager;
let box: SessionContainer;
const open: RawWebSocket[] = [];

const wsUrl = (path: string) => `${manager.url.replace('http:', 'ws:')}${path}`;

async function openSocket(path: string, options: Parameters<typeof connectWebSocket>[1] = {}) {
  const ws = await connectWebSocket(wsUrl(path), { timeoutMs: 5000, ...options });
  open.push(ws);
  return ws;
}

async function hello(ws: RawWebSocket): Promise<Hello> {
  const event = await ws.next();
  if (event.type !== 'text') throw new Error(`expected the hello, got ${event.type}`);
  return JSON.parse(event.text) as Hello;
}

async function refusal(path: string): Promise<WebSocketHandshakeError> {
  const error = await connectWebSocket(wsUrl(path), { timeoutMs: 5000 }).then(
    () => new Error('the upgrade was accepted'),
    (reason: unknown) => reason,
  );
  if (!(error instanceof WebSocketHandshakeError)) throw error;
  return error;
}

beforeAll(async () => {
  const { startManager } = await import('./harness.js');
  [manager, box] = await Promise.all([startManager(), startSessionContainer({ ports: [3000] })]);
  expect((await register(manager.url, box.sessionId, { port: 3000 })).status).toBe(201);
});

afterAll(async () => {
  for (const ws of open) ws.destroy();
  await manager?.close();
  await removeCreatedContainers();
});

describe.each(ROUTES)('WebSocket on %s/:sessionId/*', (route) => {
  it('is the very first request of a connection, with the prefix stripped and the query kept', async () => {
    const ws = await openSocket(`${route}/${box.sessionId}/socket/path?x=1&y=%20`);
    const greeting = await hello(ws);
    expect(greeting.url).toBe('/socket/path?x=1&y=%20');
    expect(greeting.headers['x-internal-service-key']).toBeUndefined();
    expect(greeting.headers['x-forwarded-prefix']).toBe(`${route}/${box.sessionId}`);
  });

  it('echoes text and a 1 MB binary message', async () => {
    const ws = await openSocket(`${route}/${box.sessionId}/echo`);
    await hello(ws);
    ws.sendText('hello through the proxy');
    expect(await ws.next()).toEqual({ type: 'text', text: 'hello through the proxy' });
    const payload = randomBytes(1024 * 1024);
    ws.sendBinary(payload);
    const echoed = await ws.next(10_000);
    expect(echoed.type).toBe('binary');
    expect(echoed.type === 'binary' && Buffer.compare(echoed.data, payload)).toBe(0);
  });

  it('passes the subprotocol and Sec-WebSocket-* headers through', async () => {
    const ws = await openSocket(`${route}/${box.sessionId}/proto`, {
      protocols: ['chat.v2', 'chat.v1'],
      headers: { 'x-internal-service-key': TEST_KEY },
    });
    expect(ws.protocol).toBe('chat.v2');
    const greeting = await hello(ws);
    expect(greeting.protocol).toBe('chat.v2');
    expect(greeting.headers['sec-websocket-protocol']).toBe('chat.v2, chat.v1');
    expect(greeting.headers['sec-websocket-version']).toBe('13');
    expect(greeting.headers['sec-websocket-key']).toBeTruthy();
    expect(greeting.headers['x-internal-service-key']).toBeUndefined();
  });

  it('passes close codes and reasons both ways', async () => {
    const fromServer = await openSocket(`${route}/${box.sessionId}/close`);
    await hello(fromServer);
    fromServer.sendText('close:4001:server says bye');
    expect(await fromServer.next()).toEqual({ type: 'close', code: 4001, reason: 'server says bye' });

    const fromClient = await openSocket(`${route}/${box.sessionId}/close`);
    await hello(fromClient);
    fromClient.close(4002, 'client says bye');
    expect(await fromClient.next()).toEqual({ type: 'close', code: 4002, reason: 'client says bye' });
    await fromClient.ended;
  });

  it('keeps an idle connection open', async () => {
    const ws = await openSocket(`${route}/${box.sessionId}/idle`);
    await hello(ws);
    await new Promise((resolve) => setTimeout(resolve, 6000));
    ws.sendText('still here');
    expect(await ws.next()).toEqual({ type: 'text', text: 'still here' });
  }, 20_000);

  it('answers 404 as an HTTP response before any upgrade for an unregistered session', async () => {
    const id = uniqueSessionId('nows');
    const refused = await refusal(`${route}/${id}/`);
    expect(refused.statusCode).toBe(404);
    expect(JSON.parse(refused.body)).toEqual({
      statusCode: 404,
      error: 'Not Found',
      message: `No preview port registered for session ${id}`,
      code: 'PREVIEW_NOT_REGISTERED',
    });
  });

  it('answers 400 for an invalid session id', async () => {
    const refused = await refusal(`${route}/-bad/`);
    expect(refused.statusCode).toBe(400);
    expect(JSON.parse(refused.body)).toMatchObject({ code: 'INVALID_SESSION_ID' });
  });
});

describe('WebSocket failures', () => {
  it('answers 502 before any upgrade when the container refuses the connection', async () => {
    const closed = await startSessionContainer();
    expect((await register(manager.url, closed.sessionId, { port: 4999 })).status).toBe(201);
    const refused = await refusal(`/previews/${closed.sessionId}/`);
    expect(refused.statusCode).toBe(502);
    expect(JSON.parse(refused.body)).toMatchObject({
      statusCode: 502,
      error: 'Bad Gateway',
      message: 'Failed to connect to preview server',
    });
  });

  it('answers 500 "not running" before any upgrade for a stopped container', async () => {
    const stopped = await startSessionContainer();
    expect((await register(manager.url, stopped.sessionId, { port: 3000 })).status).toBe(201);
    await stopped.stop();
    const refused = await refusal(`/previews/${stopped.sessionId}/`);
    expect(refused.statusCode).toBe(500);
    expect(JSON.parse(refused.body)).toMatchObject({
      message: `Container for session ${stopped.sessionId} is not running`,
    });
  });

  it('closes the client when the container is killed mid-connection', async () => {
    const doomed = await startSessionContainer();
    expect((await register(manager.url, doomed.sessionId, { port: 3000 })).status).toBe(201);
    const ws = await openSocket(`/previews/${doomed.sessionId}/`);
    await hello(ws);
    await doomed.kill();
    await ws.ended;
  });

  it('answers 404 for an upgrade outside the preview routes and 400 for a non-WebSocket upgrade', async () => {
    expect((await refusal('/elsewhere')).statusCode).toBe(404);
    const raw = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(new URL(manager.url).port), '127.0.0.1');
      let text = '';
      socket.on('data', (chunk) => {
        text += chunk.toString();
      });
      socket.on('error', reject);
      socket.on('close', () => resolve(text));
      socket.write(
        `GET /previews/${box.sessionId}/ HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n`,
      );
    });
    expect(raw).toMatch(/^HTTP\/1\.1 400 Bad Request/);
    expect(raw).toContain('"code":"UPGRADE_NOT_SUPPORTED"');
  });
});
