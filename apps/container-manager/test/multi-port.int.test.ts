import {
  connectWebSocket,
  removeCreatedContainers,
  type SessionContainer,
  startSessionContainer,
  WebSocketHandshakeError,
} from '@sandbox/test-fixtures';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningContainerManager } from '../src/server.js';
import { errorBody, register, send, startManager, TEST_KEY } from './harness.js';

// Many ports per session (the internal API) and host routing (`{port}-{id}.{PREVIEW_DOMAIN}`), against a
// container serving on two ports.
const DOMAIN = 'preview.test';
const KEY = { 'x-internal-service-key': TEST_KEY };
let manager: RunningContainerManager;
let box: SessionContainer;

beforeAll(async () => {
  [manager, box] = await Promise.all([
    startManager({ PREVIEW_DOMAIN: DOMAIN }),
    startSessionContainer({ ports: [3000, 4000] }),
  ]);
});

afterAll(async () => {
  await manager?.close();
  await removeCreatedContainers();
});

const previews = (id: string) => `/api/internal/sessions/${id}/previews`;
const servedPort = async (path: string, host?: string) => {
  const reply = await send(manager.url, path, host === undefined ? {} : { headers: { host } });
  return reply.status === 200 ? reply.json<{ port: number }>().port : reply.json();
};

describe('many ports per session', () => {
  it('adds ports, routes paths to the last one, lists and removes them', async () => {
    const id = box.sessionId;
    expect((await register(manager.url, id, { port: 3000 })).status).toBe(201);
    expect((await register(manager.url, id, { port: 4000 })).status).toBe(201);
    expect(await servedPort(`/previews/${id}/`)).toBe(4000);
    const listed = await send(manager.url, previews(id), { headers: KEY });
    expect(listed.status).toBe(200);
    expect(listed.json()).toMatchObject({ sessionId: id, ports: [3000, 4000], activePort: 4000 });

    // Registering an existing port again makes it the active one (last write wins).
    await register(manager.url, id, { port: 3000 });
    expect(await servedPort(`/previews/${id}/`)).toBe(3000);
    await register(manager.url, id, { port: 4000 });

    const removed = await send(manager.url, `${previews(id)}/4000`, { method: 'DELETE', headers: KEY });
    expect(removed.status).toBe(200);
    expect(removed.json()).toEqual({
      sessionId: id,
      port: 4000,
      registered: false,
      ports: [3000],
      activePort: 3000,
    });
    expect(await servedPort(`/previews/${id}/`)).toBe(3000);

    const again = await send(manager.url, `${previews(id)}/4000`, { method: 'DELETE', headers: KEY });
    expect(again.status).toBe(404);
    expect(again.json()).toMatchObject(
      errorBody(404, 'Not Found', `Port 4000 is not registered for session ${id}`),
    );

    const all = await send(manager.url, previews(id), { method: 'DELETE', headers: KEY });
    expect(all.json()).toEqual({ sessionId: id, ports: [3000], registered: false });
    expect(await servedPort(`/previews/${id}/`)).toMatchObject(
      errorBody(404, 'Not Found', `No preview port registered for session ${id}`),
    );
    const none = await send(manager.url, previews(id), { method: 'DELETE', headers: KEY });
    expect(none.status).toBe(404);
    expect((await send(manager.url, previews(id), { headers: KEY })).json()).toEqual({
      sessionId: id,
      ports: [],
      activePort: null,
      previews: [],
    });
  });

  it.each([
    ['GET', '/previews'],
    ['DELETE', '/previews'],
    ['DELETE', '/previews/3000'],
  ])('%s %s is key-guarded', async (method, tail) => {
    const reply = await send(manager.url, `/api/internal/sessions/${box.sessionId}${tail}`, { method });
    expect(reply.status).toBe(403);
    expect(reply.json()).toMatchObject(errorBody(403, 'Forbidden', 'Forbidden'));
  });

  it.each(['80', '70000', '3000.5', '-3000', '0x0bb8', 'abc', '03000x'])(
    'DELETE with port %s is the invalid-port 400',
    async (port) => {
      const reply = await send(manager.url, `${previews(box.sessionId)}/${port}`, {
        method: 'DELETE',
        headers: KEY,
      });
      expect(reply.status).toBe(400);
      expect(reply.json()).toMatchObject({ message: 'Port must be an integer between 1024 and 65535' });
    },
  );

  it.each(['GET', 'DELETE'])('%s with an invalid session id is the 400', async (method) => {
    const reply = await send(manager.url, previews('-bad'), { method, headers: KEY });
    expect(reply.status).toBe(400);
    expect(reply.json()).toMatchObject({ code: 'INVALID_SESSION_ID' });
  });
});

describe('host routing', () => {
  beforeAll(async () => {
    await register(manager.url, box.sessionId, { port: 3000 });
    await register(manager.url, box.sessionId, { port: 4000 });
  });
  const host = (port: number, suffix = '') => `${port}-${box.sessionId}.${DOMAIN}${suffix}`;

  it('reaches each registered port at the root path, any :port suffix and letter case ignored', async () => {
    expect(await servedPort('/', host(3000))).toBe(3000);
    expect(await servedPort('/', host(4000, ':8443'))).toBe(4000);
    expect(await servedPort('/', host(3000).toUpperCase())).toBe(3000);
    const echo = await send(manager.url, '/app/page?x=1&y=%2F', { headers: { host: host(3000) } });
    const seen = echo.json<{ url: string; headers: Record<string, string> }>();
    // The whole request target, byte for byte; no prefix to strip, none to announce.
    expect(seen.url).toBe('/app/page?x=1&y=%2F');
    expect(seen.headers['x-forwarded-prefix']).toBeUndefined();
    expect(seen.headers['x-forwarded-host']).toBe(host(3000));
  });

  it('keeps redirects and cookies as the app wrote them (the host is the app)', async () => {
    const reply = await send(
      manager.url,
      '/__fixture/respond?status=302&header=Location:/login&header=Set-Cookie:a%3D1%3B%20Path%3D%2F',
      { headers: { host: host(3000) } },
    );
    expect(reply.status).toBe(302);
    expect(reply.headers.location).toBe('/login');
    expect(reply.headers['set-cookie']).toEqual(['a=1; Path=/']);
  });

  it('presents same-origin requests to the app as addressed to localhost:<port>, cross-origin ones as they are', async () => {
    type Seen = { headers: Record<string, string | undefined> };
    const seen = async (headers: Record<string, string>) =>
      (await send(manager.url, '/', { headers: { host: host(3000, ':8443'), ...headers } })).json<Seen>()
        .headers;
    // No Origin (a navigation, a plain GET): the app's own name, the public one in X-Forwarded-Host.
    expect(await seen({})).toMatchObject({ host: 'localhost:3000', 'x-forwarded-host': host(3000, ':8443') });
    expect((await seen({})).origin).toBeUndefined();
    // The page's own origin, either scheme: so is its Origin.
    for (const scheme of ['http', 'https'])
      expect(await seen({ origin: `${scheme}://${host(3000, ':8443').toUpperCase()}` })).toMatchObject({
        host: 'localhost:3000',
        origin: 'http://localhost:3000',
      });
    // Another origin (another preview, another site, a sandboxed frame): untouched, for the app to judge.
    for (const origin of [`http://${host(4000, ':8443')}`, 'http://evil.example', 'null'])
      expect(await seen({ origin })).toMatchObject({ host: host(3000, ':8443'), origin });
  });

  it("turns an absolute Location to the app's localhost origin into the client's", async () => {
    const location = async (value: string) =>
      (
        await send(
          manager.url,
          `/__fixture/respond?status=302&header=Location:${encodeURIComponent(value)}`,
          {
            headers: { host: host(3000, ':8443') },
          },
        )
      ).headers.location;
    expect(await location('http://localhost:3000/next?a=1')).toBe(`//${host(3000, ':8443')}/next?a=1`);
    expect(await location('http://localhost:3000')).toBe(`//${host(3000, ':8443')}`);
    // Not the app's origin: as written.
    expect(await location('http://localhost:30001/x')).toBe('http://localhost:30001/x');
    expect(await location('http://localhost:4000/x')).toBe('http://localhost:4000/x');
    expect(await location('https://example.com/x')).toBe('https://example.com/x');
  });

  it('passes Host and Origin as the client sent them with HOST_ROUTE_LOCALHOST=false', async () => {
    const plain = await startManager({ PREVIEW_DOMAIN: DOMAIN, HOST_ROUTE_LOCALHOST: 'false' });
    try {
      await register(plain.url, box.sessionId, { port: 3000 });
      const echo = await send(plain.url, '/', {
        headers: { host: host(3000), origin: `http://${host(3000)}` },
      });
      expect(echo.json<{ headers: Record<string, string> }>().headers).toMatchObject({
        host: host(3000),
        origin: `http://${host(3000)}`,
      });
    } finally {
      await plain.close();
    }
  });

  it('answers an unregistered port with the 404 of the contract', async () => {
    const reply = await send(manager.url, '/', { headers: { host: host(5000) } });
    expect(reply.status).toBe(404);
    expect(reply.json()).toMatchObject(
      errorBody(404, 'Not Found', `No preview port registered for session ${box.sessionId}`),
    );
  });

  it('leaves other hosts to the path routes and the API', async () => {
    expect(
      (await send(manager.url, `/previews/${box.sessionId}/`, { headers: { host: DOMAIN } })).status,
    ).toBe(200);
    const listed = await send(manager.url, previews(box.sessionId), {
      headers: { ...KEY, host: `www.${DOMAIN}` },
    });
    expect(listed.status).toBe(200);
    // A preview host belongs to the app entirely, /api/internal included.
    const api = await send(manager.url, previews(box.sessionId), { headers: { ...KEY, host: host(3000) } });
    expect(api.json<{ url: string }>().url).toBe(previews(box.sessionId));
  });

  it('tunnels WebSockets to the port the host names, and refuses unregistered ports before upgrading', async () => {
    for (const port of [3000, 4000]) {
      const ws = await connectWebSocket(`${manager.url.replace('http', 'ws')}/ws`, {
        headers: { host: host(port) },
        timeoutMs: 5000,
      });
      const event = await ws.next();
      expect(event.type === 'text' && JSON.parse(event.text).port).toBe(port);
      ws.destroy();
    }
    const refused = await connectWebSocket(`${manager.url.replace('http', 'ws')}/ws`, {
      headers: { host: host(5000) },
      timeoutMs: 5000,
    }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(WebSocketHandshakeError);
    expect((refused as WebSocketHandshakeError).statusCode).toBe(404);
  });
});
