import {
  connectWebSocket,
  removeCreatedContainers,
  type SessionContainer,
  startSessionContainer,
} from '@sandbox/test-fixtures';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningContainerManager } from '../src/server.js';
import { errorBody, register, send, startManager, TEST_KEY } from './harness.js';

// `"stripPrefix": false`: a port that receives the whole path, for apps told their public base (vite
// --base, Next.js basePath, Jupyter's base_url), against a container serving on two ports.
const DOMAIN = 'preview.test';
const KEY = { 'x-internal-service-key': TEST_KEY };
let manager: RunningContainerManager;
let box: SessionContainer;

interface Echo {
  url: string;
  headers: Record<string, string | undefined>;
  port: number;
}

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
const echoOf = async (path: string, options: Parameters<typeof send>[2] = {}) => {
  const reply = await send(manager.url, path, options);
  expect(reply.status, reply.body.toString()).toBe(200);
  return reply.json<Echo>();
};

describe('a port registered with stripPrefix: false', () => {
  beforeAll(async () => {
    const registered = await register(manager.url, box.sessionId, { port: 3000, stripPrefix: false });
    expect(registered.status).toBe(201);
    // The contract's body, plus the option it was asked about.
    expect(registered.json()).toEqual({
      sessionId: box.sessionId,
      port: 3000,
      registered: true,
      stripPrefix: false,
    });
  });

  it('receives the whole path, byte for byte, on both path routes, with no X-Forwarded-Prefix', async () => {
    const id = box.sessionId;
    for (const path of [
      `/previews/${id}/app/page?x=1`,
      `/previews/${id}/`,
      `/previews/${id}/a%2Fb/%2e%2e/c%20d?q=%26`,
      `/internal-previews/proxy/${id}/api?y=2`,
    ]) {
      const echo = await echoOf(path, { headers: { 'x-forwarded-prefix': '/spoofed' } });
      expect(echo.url).toBe(path);
      expect(echo.port).toBe(3000);
      // An app that honours X-Forwarded-Prefix would put the prefix in front of its own base again.
      expect(echo.headers['x-forwarded-prefix']).toBeUndefined();
    }
    // No slash redirect on the bare session path: the app decides (Next.js redirects the other way).
    for (const method of ['GET', 'POST']) {
      const echo = await echoOf(`/previews/${id}?x=1`, method === 'GET' ? {} : { method, body: 'b' });
      expect(echo.url).toBe(`/previews/${id}?x=1`);
    }
  });

  it('presents a same-origin request to a loopback name or the preview domain as addressed to localhost', async () => {
    const path = `/previews/${box.sessionId}/`;
    const own = new URL(manager.url).host;
    const seen = async (headers: Record<string, string>) => (await echoOf(path, { headers })).headers;
    // The manager's own loopback address, with no Origin or its own: as on a host route.
    expect(await seen({})).toMatchObject({ host: 'localhost:3000', 'x-forwarded-host': own });
    expect(await seen({ origin: `http://${own}` })).toMatchObject({
      host: 'localhost:3000',
      origin: 'http://localhost:3000',
    });
    expect(await seen({ host: `localhost:${new URL(manager.url).port}` })).toMatchObject({
      host: 'localhost:3000',
    });
    expect(await seen({ host: DOMAIN })).toMatchObject({ host: 'localhost:3000' });
    // Another origin, or a name DNS could point here from any site (rebinding): exactly as sent.
    expect(await seen({ origin: 'http://evil.example' })).toMatchObject({
      host: own,
      origin: 'http://evil.example',
    });
    expect(await seen({ host: 'evil.example:4002' })).toMatchObject({ host: 'evil.example:4002' });
    expect(await seen({ host: `x.${DOMAIN}` })).toMatchObject({ host: `x.${DOMAIN}` });
    // A port that strips its prefix keeps the header contract: Host as the client sent it.
    await register(manager.url, box.sessionId, { port: 4000 });
    try {
      expect(await seen({})).toMatchObject({ host: own });
    } finally {
      await register(manager.url, box.sessionId, { port: 3000, stripPrefix: false });
    }
  });

  it('passes Host and Origin unchanged with HOST_ROUTE_LOCALHOST=false', async () => {
    const plain = await startManager({ PREVIEW_DOMAIN: DOMAIN, HOST_ROUTE_LOCALHOST: 'false' });
    try {
      await register(plain.url, box.sessionId, { port: 3000, stripPrefix: false });
      const own = new URL(plain.url).host;
      const reply = await send(plain.url, `/previews/${box.sessionId}/`, {
        headers: { origin: `http://${own}` },
      });
      expect(reply.json<Echo>().headers).toMatchObject({ host: own, origin: `http://${own}` });
    } finally {
      await plain.close();
    }
  });

  it('passes Location and Set-Cookie as the app wrote them', async () => {
    const base = `/previews/${box.sessionId}`;
    const reply = await send(
      manager.url,
      `${base}/__fixture/respond?status=302&header=Location:${encodeURIComponent(`${base}/login`)}` +
        `&header=Set-Cookie:${encodeURIComponent(`a=1; Path=${base}/`)}&header=Set-Cookie:b%3D2`,
    );
    expect(reply.status).toBe(302);
    expect(reply.headers.location).toBe(`${base}/login`);
    expect(reply.headers['set-cookie']).toEqual([`a=1; Path=${base}/`, 'b=2']);
  });

  it('receives the whole path on a WebSocket upgrade', async () => {
    const path = `/previews/${box.sessionId}/hmr?token=x`;
    const ws = await connectWebSocket(`${manager.url.replace('http', 'ws')}${path}`, { timeoutMs: 5000 });
    try {
      const event = await ws.next();
      if (event.type !== 'text') throw new Error(`expected the hello, got ${event.type}`);
      const hello = JSON.parse(event.text) as { url: string; headers: Echo['headers'] };
      expect(hello.url).toBe(path);
      expect(hello.headers['x-forwarded-prefix']).toBeUndefined();
    } finally {
      ws.close(1000);
    }
  });

  it('changes nothing on its host route, which has no prefix', async () => {
    const echo = await echoOf('/app?x=1', { headers: { host: `3000-${box.sessionId}.${DOMAIN}` } });
    expect(echo.url).toBe('/app?x=1');
  });

  it('is listed with its URLs; another port strips as before, and a new registration replaces the option', async () => {
    const id = box.sessionId;
    expect((await register(manager.url, id, { port: 4000 })).json()).toEqual({
      sessionId: id,
      port: 4000,
      registered: true,
    });
    // 4000 is active now, and strips.
    const stripped = await echoOf(`/previews/${id}/x?y=1`);
    expect(stripped).toMatchObject({ url: '/x?y=1', port: 4000 });
    expect(stripped.headers['x-forwarded-prefix']).toBe(`/previews/${id}`);

    const listed = await send(manager.url, previews(id), { headers: KEY });
    expect(listed.status).toBe(200);
    expect(listed.json()).toEqual({
      sessionId: id,
      ports: [3000, 4000],
      activePort: 4000,
      previews: [
        {
          port: 3000,
          stripPrefix: false,
          visibility: 'public',
          active: false,
          urls: { path: null, host: `//3000-${id}.${DOMAIN}/` },
        },
        {
          port: 4000,
          stripPrefix: true,
          visibility: 'public',
          active: true,
          urls: { path: `/previews/${id}/`, host: `//4000-${id}.${DOMAIN}/` },
        },
      ],
    });

    // 3000 again, active, with its prefix kept; then again with the default: it strips (last write wins).
    await register(manager.url, id, { port: 3000, stripPrefix: false });
    expect((await echoOf(`/previews/${id}/k`)).url).toBe(`/previews/${id}/k`);
    expect((await register(manager.url, id, { port: 3000, stripPrefix: true })).json()).toMatchObject({
      stripPrefix: true,
    });
    expect((await echoOf(`/previews/${id}/k`)).url).toBe('/k');
  });
});

describe('the registration body', () => {
  it.each([['false'], [0], [null], [{}]])('refuses stripPrefix %j with the 400 of its row', async (value) => {
    const reply = await register(manager.url, box.sessionId, { port: 3000, stripPrefix: value });
    expect(reply.status).toBe(400);
    expect(reply.json()).toEqual({
      ...errorBody(400, 'Bad Request', "Request body field 'stripPrefix' must be a boolean"),
      code: 'INVALID_STRIP_PREFIX',
    });
  });

  it('judges the port first: a bad port keeps the contract answer', async () => {
    const reply = await register(manager.url, box.sessionId, { port: '3000', stripPrefix: 'no' });
    expect(reply.status).toBe(400);
    expect(reply.json()).toMatchObject({ code: 'INVALID_PORT' });
    const missing = await register(manager.url, box.sessionId, { stripPrefix: false });
    expect(missing.json()).toMatchObject({ code: 'PORT_REQUIRED' });
  });
});
