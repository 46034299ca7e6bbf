import { randomBytes } from 'node:crypto';
import { createContainerWatcher, createWatchingResolver } from '@sandbox/preview-core';
import {
  docker,
  removeCreatedContainers,
  type SessionContainer,
  startSessionContainer,
  uniqueSessionId,
} from '@sandbox/test-fixtures';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningContainerManager } from '../src/server.js';
import {
  countingResolver,
  errorBody,
  eventually,
  register,
  send,
  sha256,
  startManager,
  TEST_KEY,
} from './harness.js';

/** How long a test waits for the manager to see a Docker event (rename, removal). */
const DOCKER_EVENT_MS = 10_000;

type Echo = {
  method: string;
  url: string;
  headers: Record<string, string>;
  bodyLength: number;
  bodySha256: string;
  port: number;
};

const ROUTES = ['/previews', '/internal-previews/proxy'] as const;
const watcher = createContainerWatcher();
const resolver = countingResolver(createWatchingResolver(watcher));
let manager: RunningContainerManager;
let app: SessionContainer;

beforeAll(async () => {
  [manager, app] = await Promise.all([
    startManager({}, { watcher, resolver }),
    startSessionContainer({ ports: [3000, 3001] }),
  ]);
  const reply = await register(manager.url, app.sessionId, { port: 3000 });
  expect(reply.status).toBe(201);
});

afterAll(async () => {
  await manager?.close();
  await removeCreatedContainers();
});

describe('POST /api/internal/sessions/:id/previews', () => {
  it('registers a running container: 201 with the confirmation', async () => {
    const reply = await register(manager.url, app.sessionId, { port: 3000 });
    expect(reply.status).toBe(201);
    expect(reply.json()).toEqual({ sessionId: app.sessionId, port: 3000, registered: true });
  });

  it.each([
    ['no key', null],
    ['a wrong key', 'wrong'],
    ['an empty key', ''],
    ['the key with a suffix', `${TEST_KEY}x`],
  ])('answers 403 Forbidden for %s', async (_name, key) => {
    const reply = await register(manager.url, app.sessionId, { port: 3000 }, key);
    expect(reply.status).toBe(403);
    expect(reply.json()).toMatchObject(errorBody(403, 'Forbidden', 'Forbidden'));
  });

  it.each([80, 1023, 65536, 70000, -1, 0, 3000.5, '3000', true, [3000], { n: 3000 }])(
    'answers 400 for the invalid port %j',
    async (port) => {
      const reply = await register(manager.url, app.sessionId, { port });
      expect(reply.status).toBe(400);
      expect(reply.json()).toMatchObject(
        errorBody(400, 'Bad Request', 'Port must be an integer between 1024 and 65535'),
      );
    },
  );

  it.each([1024, 65535])('accepts the boundary port %i', async (port) => {
    const reply = await register(manager.url, app.sessionId, { port });
    expect(reply.status).toBe(201);
    expect(reply.json()).toEqual({ sessionId: app.sessionId, port, registered: true });
    await register(manager.url, app.sessionId, { port: 3000 });
  });

  it.each([
    ['no body', undefined, {}],
    ['an empty body', '', { 'content-type': 'application/json' }],
    ['an empty object', '{}', { 'content-type': 'application/json' }],
    ['another field', '{"prot":3000}', { 'content-type': 'application/json' }],
    ['a null port', '{"port":null}', { 'content-type': 'application/json' }],
    ['an array', '[]', { 'content-type': 'application/json' }],
  ])('answers 400 "required" for %s', async (_name, body, headers) => {
    const reply = await send(manager.url, `/api/internal/sessions/${app.sessionId}/previews`, {
      method: 'POST',
      headers: { 'x-internal-service-key': TEST_KEY, ...headers },
      ...(body === undefined ? {} : { body }),
    });
    expect(reply.status).toBe(400);
    expect(reply.json()).toMatchObject(
      errorBody(400, 'Bad Request', "Request body field 'port' is required"),
    );
  });

  it('checks auth before the body, and the body before the container', async () => {
    const missing = uniqueSessionId('gone');
    expect((await register(manager.url, missing, { port: 1 }, null)).status).toBe(403);
    expect((await register(manager.url, missing, { port: 1 })).status).toBe(400);
    expect((await register(manager.url, missing, {})).status).toBe(400);
    expect((await register(manager.url, missing, { port: 3000 })).status).toBe(500);
  });

  it('answers 500 with the reason for a container that does not exist', async () => {
    const missing = uniqueSessionId('gone');
    const reply = await register(manager.url, missing, { port: 3000 });
    expect(reply.status).toBe(500);
    expect(reply.json()).toMatchObject(
      errorBody(
        500,
        'Internal Server Error',
        `Failed to validate container for session ${missing}: No such container: sandbox-session-${missing}`,
      ),
    );
  });

  it('answers 500 for a container that is not running', async () => {
    const stopped = await startSessionContainer();
    await stopped.stop();
    const reply = await register(manager.url, stopped.sessionId, { port: 3000 });
    expect(reply.status).toBe(500);
    expect(reply.json()).toMatchObject(
      errorBody(500, 'Internal Server Error', `Container for session ${stopped.sessionId} is not running`),
    );
  });

  it.each([
    ['malformed JSON', '{"port":', 'application/json', 400, 'MALFORMED_JSON'],
    ['a JSON string', '"3000"', 'application/json', 400, 'MALFORMED_JSON'],
    ['a wrong content type', '{"port":3000}', 'text/plain', 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ['a form body', 'port=3000', 'application/x-www-form-urlencoded', 415, 'UNSUPPORTED_MEDIA_TYPE'],
    [
      'a huge body',
      JSON.stringify({ port: 3000, pad: 'x'.repeat(64 * 1024) }),
      'application/json',
      413,
      'PAYLOAD_TOO_LARGE',
    ],
  ])('answers a clear 4xx for %s', async (_name, body, type, status, code) => {
    const reply = await send(manager.url, `/api/internal/sessions/${app.sessionId}/previews`, {
      method: 'POST',
      headers: { 'x-internal-service-key': TEST_KEY, 'content-type': type },
      body,
    });
    expect(reply.status).toBe(status);
    expect(reply.json()).toMatchObject({ statusCode: status, code });
  });

  it.each(['-leading-dash', 'a'.repeat(129), 'sp%20ace', 'dot%2F..', '%E2%82%AC'])(
    'answers 400 for the session id %s without asking Docker',
    async (id) => {
      const before = resolver.calls.length;
      const reply = await register(manager.url, id, { port: 3000 });
      expect(reply.status).toBe(400);
      expect(reply.json()).toMatchObject({
        statusCode: 400,
        error: 'Bad Request',
        code: 'INVALID_SESSION_ID',
      });
      expect(resolver.calls.length).toBe(before);
    },
  );

  it('answers 400 for malformed percent-encoding in the session id', async () => {
    const reply = await register(manager.url, 'abc%zz', { port: 3000 });
    expect(reply.status).toBe(400);
    expect(reply.json()).toMatchObject({ statusCode: 400, error: 'Bad Request' });
  });
});

describe.each(ROUTES)('%s/:sessionId/*', (route) => {
  const base = (path = '/') => `${route}/${app.sessionId}${path}`;

  it('answers 404 for a session with no registered port, without asking Docker', async () => {
    const id = uniqueSessionId('unreg');
    const before = resolver.calls.length;
    const reply = await send(manager.url, `${route}/${id}/`);
    expect(reply.status).toBe(404);
    expect(reply.json()).toEqual({
      ...errorBody(404, 'Not Found', `No preview port registered for session ${id}`),
      code: 'PREVIEW_NOT_REGISTERED',
    });
    expect(resolver.calls.length).toBe(before);
  });

  it.each(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'])('forwards %s', async (method) => {
    const body = ['GET', 'HEAD'].includes(method) ? undefined : randomBytes(1000);
    const reply = await send(manager.url, base('/method'), { method, ...(body ? { body } : {}) });
    expect(reply.status).toBe(200);
    expect(reply.headers['x-fixture']).toBe('echo');
    if (method === 'HEAD') return;
    const echo = reply.json<Echo>();
    expect(echo).toMatchObject({ method, url: '/method', bodyLength: body?.length ?? 0 });
    if (body) expect(echo.bodySha256).toBe(sha256(body));
  });

  it.each([
    ['/app/page?x=1', '/app/page?x=1'],
    ['/', '/'],
    [
      '/a%2Fb/%2e%2e/c%20d/%E2%82%AC?q=%26%3D&r=a+b&s=%zz',
      '/a%2Fb/%2e%2e/c%20d/%E2%82%AC?q=%26%3D&r=a+b&s=%zz',
    ],
    ['//two//slashes', '//two//slashes'],
  ])('strips the prefix: %s reaches the container as %s', async (path, expected) => {
    const reply = await send(manager.url, base(path));
    expect(reply.json<Echo>().url).toBe(expected);
  });

  it('redirects GET and HEAD on the bare session path to the slash (308, query kept); other methods reach /', async () => {
    for (const method of ['GET', 'HEAD']) {
      const reply = await send(manager.url, base('?x=1&y=%20'), { method });
      expect(reply.status).toBe(308);
      expect(reply.headers.location).toBe(base('/?x=1&y=%20'));
    }
    const posted = await send(manager.url, base('?x=1'), { method: 'POST', body: 'b' });
    expect(posted.json<Echo>().url).toBe('/?x=1');
  });

  it('streams 10 MB up and 10 MB down', async () => {
    const up = randomBytes(10 * 1024 * 1024);
    const upload = await send(manager.url, base('/upload'), { method: 'POST', body: up });
    expect(upload.json<Echo>()).toMatchObject({ bodyLength: up.length, bodySha256: sha256(up) });
    const download = await send(manager.url, base(`/__fixture/bytes/${10 * 1024 * 1024}`));
    expect(download.body.length).toBe(10 * 1024 * 1024);
    expect(sha256(download.body)).toBe(download.headers['x-fixture-sha256']);
  });

  it('passes upstream status codes and headers through', async () => {
    const reply = await send(
      manager.url,
      base(
        '/__fixture/respond?status=418&header=Set-Cookie:a=1&header=Set-Cookie:b=2&header=X-App:yes&body=tea',
      ),
    );
    expect(reply.status).toBe(418);
    expect(reply.headers['set-cookie']).toEqual([`a=1; Path=${base('')}`, `b=2; Path=${base('')}`]);
    expect(reply.headers['x-app']).toBe('yes');
    expect(reply.body.toString()).toBe('tea');
    for (const status of [201, 204, 302, 404, 500, 503]) {
      expect((await send(manager.url, base(`/__fixture/status/${status}`))).status).toBe(status);
    }
  });

  it('never forwards the internal key', async () => {
    const reply = await send(manager.url, base('/key'), { headers: { 'x-internal-service-key': TEST_KEY } });
    expect(reply.json<Echo>().headers['x-internal-service-key']).toBeUndefined();
    expect(reply.body.toString()).not.toContain(TEST_KEY);
  });

  it('answers 400 for malformed percent-encoding in the path', async () => {
    const reply = await send(manager.url, base('/bad%zzpath'));
    expect(reply.status).toBe(400);
    expect(reply.json()).toMatchObject({ statusCode: 400, error: 'Bad Request', code: 'MALFORMED_PATH' });
  });

  it.each(['-bad', '..', 'a'.repeat(129), '%2e%2e'])(
    'answers 400 for the session id %s without asking Docker',
    async (id) => {
      const before = resolver.calls.length;
      const reply = await send(manager.url, `${route}/${id}/x`);
      expect(reply.status).toBe(400);
      expect(reply.json()).toMatchObject({ statusCode: 400, code: 'INVALID_SESSION_ID' });
      expect(resolver.calls.length).toBe(before);
    },
  );
});

describe('registration changes', () => {
  it('last write wins', async () => {
    const box = await startSessionContainer({ ports: [3000, 3001] });
    expect((await register(manager.url, box.sessionId, { port: 3000 })).status).toBe(201);
    expect((await send(manager.url, `/previews/${box.sessionId}/`)).json<Echo>().port).toBe(3000);
    expect((await register(manager.url, box.sessionId, { port: 3001 })).status).toBe(201);
    for (const route of ROUTES) {
      expect((await send(manager.url, `${route}/${box.sessionId}/`)).json<Echo>().port).toBe(3001);
    }
  });

  it('answers 500 "not running" once the container is stopped, and serves it again after a start', async () => {
    const box = await startSessionContainer();
    expect((await register(manager.url, box.sessionId, { port: 3000 })).status).toBe(201);
    await box.stop();
    for (const route of ROUTES) {
      const reply = await send(manager.url, `${route}/${box.sessionId}/`);
      expect(reply.status).toBe(500);
      expect(reply.json()).toMatchObject(
        errorBody(500, 'Internal Server Error', `Container for session ${box.sessionId} is not running`),
      );
    }
    await box.start();
    expect((await send(manager.url, `/previews/${box.sessionId}/`)).status).toBe(200);
  });

  it('answers 404 once the container is removed: a destroyed container loses its registration', async () => {
    const box = await startSessionContainer();
    expect((await register(manager.url, box.sessionId, { port: 3000 })).status).toBe(201);
    await box.remove();
    // Docker's event reaches the manager within milliseconds on a quiet machine, seconds under a loaded
    // CI run: the answer is what is checked here, not how soon it comes.
    const reply = await eventually(
      () => send(manager.url, `/previews/${box.sessionId}/`),
      (r) => r.status === 404,
      DOCKER_EVENT_MS,
    );
    expect(reply.json()).toMatchObject(
      errorBody(404, 'Not Found', `No preview port registered for session ${box.sessionId}`),
    );
  });

  it('answers 500 with the reason when the registered container is renamed away', async () => {
    const box = await startSessionContainer();
    expect((await register(manager.url, box.sessionId, { port: 3000 })).status).toBe(201);
    await docker(['rename', box.name, `${box.name}-renamed`]);
    try {
      const reply = await eventually(
        () => send(manager.url, `/previews/${box.sessionId}/`),
        (r) => r.status === 500,
        DOCKER_EVENT_MS,
      );
      expect(reply.json()).toMatchObject(
        errorBody(
          500,
          'Internal Server Error',
          `Failed to validate container for session ${box.sessionId}: No such container: sandbox-session-${box.sessionId}`,
        ),
      );
    } finally {
      await docker(['rm', '-f', `${box.name}-renamed`]);
    }
  });

  it('answers 500 "no IP address" for a container with no network', async () => {
    const box = await startSessionContainer({ network: 'none' });
    expect((await register(manager.url, box.sessionId, { port: 3000 })).status).toBe(201);
    const reply = await send(manager.url, `/previews/${box.sessionId}/`);
    expect(reply.status).toBe(500);
    expect(reply.json()).toMatchObject(
      errorBody(500, 'Internal Server Error', `Container for session ${box.sessionId} has no IP address`),
    );
  });

  it('answers 502 for a registered port with nothing listening, at once', async () => {
    const box = await startSessionContainer();
    expect((await register(manager.url, box.sessionId, { port: 4999 })).status).toBe(201);
    const started = Date.now();
    for (const route of ROUTES) {
      const reply = await send(manager.url, `${route}/${box.sessionId}/`, { method: 'POST', body: 'x' });
      expect(reply.status).toBe(502);
      expect(reply.json()).toEqual({
        ...errorBody(502, 'Bad Gateway', 'Failed to connect to preview server'),
        code: 'UPSTREAM_CONNECT_FAILED',
      });
    }
    // A refused connection is answered at once: one attempt, no retries (generous bound for a busy machine).
    expect(Date.now() - started).toBeLessThan(3000);
  });
});

describe('everything else', () => {
  it.each([
    ['GET', '/'],
    ['GET', '/nope'],
    ['GET', '/previews'],
    ['PUT', '/api/internal/sessions/x/previews'],
    ['GET', '/api/internal/sessions/x/previews/3000'],
    ['POST', '/api/internal/sessions/x/previews/3000'],
  ])('%s %s answers a JSON 4xx', async (method, path) => {
    const headers = { 'x-internal-service-key': TEST_KEY };
    const reply = await send(manager.url, path, { method, headers });
    expect(reply.status).toBe(404);
    expect(reply.json()).toMatchObject({ statusCode: 404, error: 'Not Found', code: 'ROUTE_NOT_FOUND' });
  });

  it('hides the internal API from callers without the key', async () => {
    const reply = await send(manager.url, '/api/internal/anything');
    expect(reply.status).toBe(403);
  });
});
