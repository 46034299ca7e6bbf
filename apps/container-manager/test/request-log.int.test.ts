import { once } from 'node:events';
import { type IncomingMessage, request } from 'node:http';
import type { RequestLogEntry } from '@sandbox/preview-core';
import {
  connectWebSocket,
  removeCreatedContainers,
  type SessionContainer,
  startSessionContainer,
} from '@sandbox/test-fixtures';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningContainerManager } from '../src/server.js';
import { eventually, register, send, startManager, TEST_KEY } from './harness.js';

// Each preview's request log, read back and followed live, on a real manager against a real container.

type Entry = RequestLogEntry;

let manager: RunningContainerManager;
let box: SessionContainer;

beforeAll(async () => {
  [manager, box] = await Promise.all([startManager({ MAX_BODY_BYTES: '100000' }), startSessionContainer()]);
  expect((await register(manager.url, box.sessionId, { port: 3000 })).status).toBe(201);
});

afterAll(async () => {
  await manager?.close();
  await removeCreatedContainers();
});

const key = { 'x-internal-service-key': TEST_KEY };
const logPath = (sessionId: string, query = '') => `/api/internal/sessions/${sessionId}/previews/log${query}`;

async function readLog(base: string, sessionId: string, query = '') {
  const reply = await send(base, logPath(sessionId, query), { headers: key });
  expect(reply.status).toBe(200);
  return {
    text: reply.body.toString('utf8'),
    ...reply.json<{ sessionId: string; perSession: number; entries: Entry[] }>(),
  };
}

/** The entry of a request, once its response is over (the record is written when the exchange closes). */
async function entryOf(base: string, sessionId: string, requestId: string): Promise<Entry | undefined> {
  const { entries } = await eventually(
    () => readLog(base, sessionId),
    (log) => log.entries.some((entry) => entry.requestId === requestId),
    3000,
  );
  return entries.find((entry) => entry.requestId === requestId);
}

interface SseEvent {
  id?: string;
  event: string;
  data: string;
}

/** A live `text/event-stream` reader: each event as it arrives, and the raw text seen. */
async function follow(base: string, path: string, headers: Record<string, string> = {}) {
  const req = request(`${base}${path}`, { headers: { ...key, ...headers }, agent: false });
  req.end();
  const [res] = (await once(req, 'response')) as [IncomingMessage];
  const events: SseEvent[] = [];
  let raw = '';
  let pending = '';
  let ended = false;
  res.setEncoding('utf8');
  res.on('data', (chunk: string) => {
    raw += chunk;
    pending += chunk;
    for (let end = pending.indexOf('\n\n'); end !== -1; end = pending.indexOf('\n\n')) {
      const block = pending.slice(0, end);
      pending = pending.slice(end + 2);
      const event: SseEvent = { event: 'message', data: '' };
      let isEvent = false;
      for (const line of block.split('\n')) {
        const [field, ...rest] = line.split(': ');
        const value = rest.join(': ');
        if (field === 'id') event.id = value;
        if (field === 'event') event.event = value;
        if (field === 'data') {
          event.data = value;
          isEvent = true;
        }
      }
      if (isEvent) events.push(event);
    }
  });
  // 'close' comes whether the stream ended (complete) or was cut (by close() here, or the server).
  res.on('error', () => {});
  const done = new Promise<void>((resolve) =>
    res.once('close', () => {
      ended = res.complete;
      resolve();
    }),
  );
  return {
    res,
    events,
    raw: () => raw,
    ended: () => ended,
    done,
    entries: () =>
      events.filter((event) => event.event === 'message').map((event) => JSON.parse(event.data) as Entry),
    close: () => req.destroy(),
  };
}

describe('the request log of a preview', () => {
  it('keeps each request: method, path without query, status, bytes, duration, its id', async () => {
    const got = await send(manager.url, `/previews/${box.sessionId}/app/page?x=1`, {
      headers: { 'x-request-id': 'log-get-1' },
    });
    expect(got.status).toBe(200);
    const posted = await send(manager.url, `/previews/${box.sessionId}/upload`, {
      method: 'POST',
      body: 'y'.repeat(5000),
      headers: { 'x-request-id': 'log-post-1' },
    });
    expect(posted.status).toBe(200);
    const entry = await entryOf(manager.url, box.sessionId, 'log-get-1');
    expect(entry).toMatchObject({
      kind: 'http',
      route: '/previews',
      port: 3000,
      method: 'GET',
      path: `/previews/${box.sessionId}/app/page`,
      status: 200,
      bytesIn: 0,
      aborted: false,
    });
    expect(entry?.bytesOut).toBeGreaterThan(got.body.length);
    expect(entry?.durationMs).toBeGreaterThan(0);
    expect(Date.parse(entry?.time ?? '')).toBeGreaterThan(Date.now() - 60_000);
    expect(await entryOf(manager.url, box.sessionId, 'log-post-1')).toMatchObject({
      method: 'POST',
      status: 200,
      bytesIn: 5000,
    });
    const { entries, perSession, sessionId } = await readLog(manager.url, box.sessionId);
    expect({ perSession, sessionId }).toEqual({ perSession: 100, sessionId: box.sessionId });
    // In order, numbered from the session's first.
    const seqs = entries.map((each) => each.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(seqs[0]).toBe(1);
  });

  it('keeps a WebSocket with its close code', async () => {
    const ws = await connectWebSocket(`${manager.url.replace('http', 'ws')}/previews/${box.sessionId}/ws`, {
      headers: { 'x-request-id': 'log-ws-1' },
      timeoutMs: 5000,
    });
    await ws.next();
    ws.close(4001);
    await ws.ended;
    expect(await entryOf(manager.url, box.sessionId, 'log-ws-1')).toMatchObject({
      kind: 'websocket',
      status: 101,
      closeCode: 4001,
      port: 3000,
      path: `/previews/${box.sessionId}/ws`,
    });
  });

  it('keeps the errors answered instead of the app, with their contract codes', async () => {
    const tooLarge = await send(manager.url, `/previews/${box.sessionId}/upload`, {
      method: 'POST',
      body: 'z'.repeat(200_000),
      headers: { 'x-request-id': 'log-413' },
    });
    expect(tooLarge.status).toBe(413);
    expect(await entryOf(manager.url, box.sessionId, 'log-413')).toMatchObject({
      status: 413,
      error: 'PAYLOAD_TOO_LARGE',
    });

    // A second session: registered, then without a port (its registration opened its log, so the 404 is
    // kept), then on a port nothing listens on.
    const other = await startSessionContainer();
    expect((await register(manager.url, other.sessionId, { port: 3999 })).status).toBe(201);
    const removed = await send(manager.url, `/api/internal/sessions/${other.sessionId}/previews`, {
      method: 'DELETE',
      headers: key,
    });
    expect(removed.status).toBe(200);
    const gone = await send(manager.url, `/previews/${other.sessionId}/`, {
      headers: { 'x-request-id': 'log-404' },
    });
    expect(gone.status).toBe(404);
    expect(await entryOf(manager.url, other.sessionId, 'log-404')).toMatchObject({
      status: 404,
      error: 'PREVIEW_NOT_REGISTERED',
    });
    expect((await register(manager.url, other.sessionId, { port: 3999 })).status).toBe(201);
    const refused = await send(manager.url, `/previews/${other.sessionId}/`, {
      headers: { 'x-request-id': 'log-502' },
    });
    expect(refused.status).toBe(502);
    expect(await entryOf(manager.url, other.sessionId, 'log-502')).toMatchObject({
      status: 502,
      port: 3999,
      error: 'UPSTREAM_CONNECT_FAILED',
    });
    expect((await readLog(manager.url, other.sessionId)).entries.map((entry) => entry.status)).toEqual([
      404, 502,
    ]);
  });

  it('makes no log for made-up session ids, and answers an empty one for a session without', async () => {
    for (let i = 0; i < 5; i++) expect((await send(manager.url, `/previews/made-up-${i}/`)).status).toBe(404);
    const log = await readLog(manager.url, 'made-up-1');
    expect(log).toMatchObject({ sessionId: 'made-up-1', entries: [] });
  });

  it('never holds a credential: query tokens, cookies, Authorization, the internal key', async () => {
    const secrets = ['SEKRET-query-1', 'SEKRET-cookie-2', 'SEKRET-bearer-3', 'SEKRET-basic-4', TEST_KEY];
    const followed = await follow(manager.url, logPath(box.sessionId, '?follow=1'));
    await send(
      manager.url,
      `/previews/${box.sessionId}/page?token=SEKRET-query-1&_preview_token=SEKRET-query-1`,
      {
        headers: {
          cookie: 'session=SEKRET-cookie-2',
          authorization: 'Bearer SEKRET-bearer-3',
          'proxy-authorization': 'Basic SEKRET-basic-4',
          'x-internal-service-key': TEST_KEY,
          'x-request-id': 'log-secrets-1',
        },
      },
    );
    await entryOf(manager.url, box.sessionId, 'log-secrets-1');
    await eventually(
      async () => followed.entries(),
      (entries) => entries.some((entry) => entry.requestId === 'log-secrets-1'),
      3000,
    );
    followed.close();
    const { text } = await readLog(manager.url, box.sessionId);
    for (const secret of secrets) {
      expect(text).not.toContain(secret);
      expect(followed.raw()).not.toContain(secret);
    }
    expect(text).toContain(`/previews/${box.sessionId}/page"`);
  });

  it('follows the log live over Server-Sent Events, and resumes after Last-Event-ID', async () => {
    const kept = (await readLog(manager.url, box.sessionId)).entries;
    const live = await follow(manager.url, logPath(box.sessionId, '?follow=1'));
    expect(live.res.statusCode).toBe(200);
    expect(live.res.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(live.res.headers['cache-control']).toBe('no-store');
    // First what is kept, each with its seq as the event id (a late record of an earlier test may follow).
    await eventually(
      async () => live.entries(),
      (entries) => entries.length >= kept.length,
    );
    expect(
      live
        .entries()
        .slice(0, kept.length)
        .map((entry) => entry.seq),
    ).toEqual(kept.map((entry) => entry.seq));
    expect(live.events.slice(0, kept.length).map((event) => event.id)).toEqual(
      kept.map((entry) => String(entry.seq)),
    );
    // Then each request as it ends.
    for (const id of ['live-1', 'live-2', 'live-3'])
      await send(manager.url, `/previews/${box.sessionId}/x`, { headers: { 'x-request-id': id } });
    const seen = await eventually(
      async () => live.entries(),
      (entries) => entries.some((entry) => entry.requestId === 'live-3'),
      3000,
    );
    expect(seen.slice(-3).map((entry) => entry.requestId)).toEqual(['live-1', 'live-2', 'live-3']);
    expect(live.raw().startsWith('retry: 1000\n\n')).toBe(true);
    live.close();

    // A reconnect with the last id it saw gets only what came after, whatever `after` its URL has.
    const lastSeen = seen.at(-2)?.seq ?? 0;
    const resumed = await follow(manager.url, logPath(box.sessionId, '?follow=true&after=0'), {
      'last-event-id': String(lastSeen),
    });
    const after = await eventually(
      async () => resumed.entries(),
      (entries) => entries.length >= 1,
    );
    expect(after.map((entry) => entry.requestId)).toEqual(['live-3']);
    resumed.close();
    // `after` reads the same way without following.
    const read = await readLog(manager.url, box.sessionId, `?after=${lastSeen}`);
    expect(read.entries.map((entry) => entry.requestId)).toEqual(['live-3']);
  });

  it('answers the contract rows: the key, a bad session id, a bad query', async () => {
    const noKey = await send(manager.url, logPath(box.sessionId));
    expect(noKey.status).toBe(403);
    const badId = await send(manager.url, logPath('bad%20id'), { headers: key });
    expect(badId.status).toBe(400);
    expect(badId.json()).toMatchObject({ code: 'INVALID_SESSION_ID' });
    for (const [query, name] of [
      ['?follow=yes', 'follow'],
      ['?follow=1&follow=1', 'follow'],
      ['?after=-1', 'after'],
      ['?after=1.5', 'after'],
    ] as const) {
      const reply = await send(manager.url, logPath(box.sessionId, query), { headers: key });
      expect(reply.status, query).toBe(400);
      expect(reply.json(), query).toEqual({
        statusCode: 400,
        error: 'Bad Request',
        message: expect.stringContaining(`'${name}'`),
        code: 'INVALID_LOG_QUERY',
      });
    }
    const lastEventId = await send(manager.url, logPath(box.sessionId, '?follow=1'), {
      headers: { ...key, 'last-event-id': 'abc' },
    });
    expect(lastEventId.status).toBe(400);
  });

  it('is described in the OpenAPI document', async () => {
    const doc = (await send(manager.url, '/api/internal/openapi.json', { headers: key })).json<{
      paths: Record<string, Record<string, { operationId: string }>>;
    }>();
    expect(doc.paths['/api/internal/sessions/{id}/previews/log']?.get?.operationId).toBe(
      'getPreviewRequestLog',
    );
  });
});

describe('the request log bounds', () => {
  let small: RunningContainerManager;
  beforeAll(async () => {
    small = await startManager({ REQUEST_LOG_SIZE: '5', SHUTDOWN_GRACE_MS: '20000' });
    expect((await register(small.url, box.sessionId, { port: 3000 })).status).toBe(201);
  });
  afterAll(() => small?.close());

  it('keeps the last REQUEST_LOG_SIZE entries of a session', async () => {
    for (let i = 1; i <= 12; i++)
      await send(small.url, `/previews/${box.sessionId}/n${i}`, {
        headers: { 'x-request-id': `bound-${i}` },
      });
    const log = await eventually(
      () => readLog(small.url, box.sessionId),
      (read) => read.entries.at(-1)?.requestId === 'bound-12',
      3000,
    );
    expect(log.perSession).toBe(5);
    expect(log.entries.map((entry) => entry.requestId)).toEqual([
      'bound-8',
      'bound-9',
      'bound-10',
      'bound-11',
      'bound-12',
    ]);
    expect(log.entries.map((entry) => entry.seq)).toEqual([8, 9, 10, 11, 12]);
  });

  it('ends its followers when the service stops, well within the grace period', async () => {
    const live = await follow(small.url, logPath(box.sessionId, '?follow=1'));
    await eventually(
      async () => live.entries(),
      (entries) => entries.length === 5,
    );
    const started = Date.now();
    await small.close();
    await live.done;
    expect(live.ended()).toBe(true);
    expect(Date.now() - started).toBeLessThan(5000);
  });
});

describe('REQUEST_LOG_SIZE=0', () => {
  it('turns the log and its route off', async () => {
    const off = await startManager({ REQUEST_LOG_SIZE: '0' });
    try {
      expect((await send(off.url, logPath(box.sessionId), { headers: key })).status).toBe(404);
    } finally {
      await off.close();
    }
  });
});
