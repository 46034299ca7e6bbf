// Private previews against real containers: a container serving on two ports (the fixture's echo shows
// every header, the URL and the cookies it received), a manager with PREVIEW_TOKEN_SECRET and a preview
// domain. Public ports stay as the contract says; private ones need a token, by header, cookie or link.
import { createPreviewTokens, TOKEN_COOKIE } from '@sandbox/preview-core';
import {
  connectWebSocket,
  removeCreatedContainers,
  type SessionContainer,
  startSessionContainer,
  WebSocketHandshakeError,
} from '@sandbox/test-fixtures';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningContainerManager } from '../src/server.js';
import { register, send, startManager, TEST_KEY } from './harness.js';

const DOMAIN = 'preview.test';
const SECRET = 'private-previews-test-secret-0123456789';
const KEY = { 'x-internal-service-key': TEST_KEY };
let manager: RunningContainerManager;
let box: SessionContainer;
let other: SessionContainer;

beforeAll(async () => {
  [manager, box, other] = await Promise.all([
    startManager({ PREVIEW_DOMAIN: DOMAIN, PREVIEW_TOKEN_SECRET: SECRET }),
    startSessionContainer({ ports: [3000, 4000] }),
    startSessionContainer({ ports: [3000] }),
  ]);
  // 3000 public, 4000 private and active; the other session's 3000 private.
  expect((await register(manager.url, box.sessionId, { port: 3000 })).status).toBe(201);
  const registered = await register(manager.url, box.sessionId, { port: 4000, visibility: 'private' });
  expect(registered.status).toBe(201);
  expect(registered.json()).toEqual({
    sessionId: box.sessionId,
    port: 4000,
    registered: true,
    visibility: 'private',
  });
  expect((await register(manager.url, other.sessionId, { port: 3000, visibility: 'private' })).status).toBe(
    201,
  );
});

afterAll(async () => {
  await manager?.close();
  await removeCreatedContainers();
});

interface Issued {
  token: string;
  sessionId: string;
  port: number;
  expiresAt: string;
  urls: { path?: string; host?: string };
}

async function issue(sessionId: string, port: number, body?: unknown): Promise<Issued> {
  const reply = await send(manager.url, `/api/internal/sessions/${sessionId}/previews/${port}/tokens`, {
    method: 'POST',
    headers: { ...KEY, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  expect(reply.status, reply.body.toString()).toBe(201);
  return reply.json<Issued>();
}

interface Echo {
  url: string;
  port: number;
  headers: Record<string, string>;
}

const hostOf = (sessionId: string, port: number) => `${port}-${sessionId}.${DOMAIN}`;

describe('public ports are unaffected', () => {
  it('no token needed, none checked, a token header never reaches the app', async () => {
    const reply = await send(manager.url, `/`, {
      headers: { host: hostOf(box.sessionId, 3000), 'x-preview-token': 'anything' },
    });
    expect(reply.status).toBe(200);
    expect(reply.json<Echo>().headers['x-preview-token']).toBeUndefined();
  });

  it('the listing says which port is private', async () => {
    const listed = await send(manager.url, `/api/internal/sessions/${box.sessionId}/previews`, {
      headers: KEY,
    });
    expect(listed.json<{ previews: { port: number; visibility: string }[] }>().previews).toMatchObject([
      { port: 3000, visibility: 'public' },
      { port: 4000, visibility: 'private' },
    ]);
  });
});

describe('a private port', () => {
  it('refuses a request without a credential: the 401, JSON for an API client, a page for a browser', async () => {
    const json = await send(manager.url, `/previews/${box.sessionId}/`);
    expect(json.status).toBe(401);
    expect(json.json()).toEqual({
      statusCode: 401,
      error: 'Unauthorized',
      message: `Preview port 4000 of session ${box.sessionId} is private: a preview token is required`,
      code: 'PREVIEW_TOKEN_REQUIRED',
    });
    const page = await send(manager.url, `/previews/${box.sessionId}/`, {
      headers: { 'sec-fetch-mode': 'navigate', accept: 'text/html' },
    });
    expect(page.status).toBe(401);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    const host = await send(manager.url, '/', { headers: { host: hostOf(box.sessionId, 4000) } });
    expect(host.status).toBe(401);
  });

  it('refuses a WebSocket without a credential before any upgrade, and tunnels one with the header', async () => {
    const url = `${manager.url.replace('http', 'ws')}/previews/${box.sessionId}/ws`;
    const refused = await connectWebSocket(url).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(WebSocketHandshakeError);
    expect((refused as WebSocketHandshakeError).statusCode).toBe(401);
    const { token } = await issue(box.sessionId, 4000);
    const ws = await connectWebSocket(url, { headers: { 'x-preview-token': token } });
    expect((await ws.next()).type).toBe('text');
    ws.sendText('private hello');
    expect(await ws.next()).toEqual({ type: 'text', text: 'private hello' });
    ws.destroy();
  });

  it('serves a valid token from the header or a bearer, and none of ours reaches the app', async () => {
    const { token } = await issue(box.sessionId, 4000);
    const viaHeader = await send(manager.url, `/previews/${box.sessionId}/a?q=1`, {
      headers: { 'x-preview-token': token, authorization: 'Basic YXBwOm93bg==', cookie: 'app=1' },
    });
    expect(viaHeader.status).toBe(200);
    const seen = viaHeader.json<Echo>();
    expect(seen.port).toBe(4000);
    expect(seen.url).toBe('/a?q=1');
    expect(seen.headers['x-preview-token']).toBeUndefined();
    // The app's own credentials pass untouched.
    expect(seen.headers.authorization).toBe('Basic YXBwOm93bg==');
    expect(seen.headers.cookie).toBe('app=1');
    const viaBearer = await send(manager.url, '/b', {
      headers: { host: hostOf(box.sessionId, 4000), authorization: `Bearer ${token}` },
    });
    expect(viaBearer.status).toBe(200);
    expect(viaBearer.json<Echo>().headers.authorization).toBeUndefined();
  });

  it('a link: 303 without the token in the URL, a cookie scoped to the preview, then the cookie serves', async () => {
    const issued = await issue(box.sessionId, 4000, { ttlSeconds: 600 });
    expect(issued.urls.path).toBe(`/previews/${box.sessionId}/?preview_token=${issued.token}`);
    expect(issued.urls.host).toBe(`//${hostOf(box.sessionId, 4000)}/?preview_token=${issued.token}`);
    expect(Date.parse(issued.expiresAt) - Date.now()).toBeGreaterThan(590_000);

    const exchange = await send(
      manager.url,
      `/previews/${box.sessionId}/page?x=1&preview_token=${issued.token}`,
    );
    expect(exchange.status).toBe(303);
    expect(exchange.headers.location).toBe(`/previews/${box.sessionId}/page?x=1`);
    const cookie = String(exchange.headers['set-cookie']);
    expect(cookie).toMatch(
      new RegExp(`^${TOKEN_COOKIE}=${issued.token}; Path=/previews/${box.sessionId}/; `),
    );
    expect(cookie).toMatch(/; HttpOnly; SameSite=Lax$/);
    expect(cookie).toMatch(/Max-Age=(59\d|600);/);

    const followed = await send(manager.url, `/previews/${box.sessionId}/page?x=1`, {
      headers: { cookie: `theme=dark; ${TOKEN_COOKIE}=${issued.token}` },
    });
    expect(followed.status).toBe(200);
    const seen = followed.json<Echo>();
    expect(seen.headers.cookie).toBe('theme=dark');
    expect(seen.url).toBe('/page?x=1');

    // On the host route the cookie is host-only (no Domain) at the root; over https (a trusted proxy's
    // X-Forwarded-Proto) it is Secure.
    const hostExchange = await send(manager.url, `/?preview_token=${issued.token}`, {
      headers: { host: hostOf(box.sessionId, 4000) },
    });
    expect(hostExchange.status).toBe(303);
    expect(hostExchange.headers.location).toBe('/');
    const hostCookie = String(hostExchange.headers['set-cookie']);
    expect(hostCookie).toMatch(/; Path=\/; /);
    expect(hostCookie).not.toMatch(/Domain=/i);
    expect(hostCookie).not.toMatch(/Secure/);
  });

  it('refuses a token for another port, another session, a forged or an expired one, saying which', async () => {
    const forPublicPort = await issue(box.sessionId, 3000);
    const otherSession = await issue(other.sessionId, 3000);
    const cases: [string, string][] = [
      [forPublicPort.token, 'the token is for another port'],
      [otherSession.token, 'the token is for another session'],
      [`${forPublicPort.token.slice(0, -2)}AA`, 'the token was not issued by this service'],
      ['not-a-token', 'the token is malformed'],
    ];
    // Minted with the service's secret, already expired: what a short-lived link becomes.
    const tokens = createPreviewTokens(SECRET);
    cases.push([tokens.mint(box.sessionId, 4000, 1000, Date.now() - 5000).token, 'the token has expired']);
    for (const [token, reason] of cases) {
      const reply = await send(manager.url, `/previews/${box.sessionId}/`, {
        headers: { 'x-preview-token': token },
      });
      expect(reply.status, reason).toBe(403);
      expect(reply.json(), reason).toEqual({
        statusCode: 403,
        error: 'Forbidden',
        message: `Preview token refused for port 4000 of session ${box.sessionId}: ${reason}`,
        code: 'PREVIEW_TOKEN_INVALID',
      });
      expect(reply.body.toString()).not.toContain(token.length > 20 ? token : 'no-echo-check');
    }
  });

  it('revocation: every token of the port stops at once; removing the port revokes too', async () => {
    const { token } = await issue(box.sessionId, 4000);
    const path = `/previews/${box.sessionId}/`;
    expect((await send(manager.url, path, { headers: { 'x-preview-token': token } })).status).toBe(200);
    const revoked = await send(manager.url, `/api/internal/sessions/${box.sessionId}/previews/4000/tokens`, {
      method: 'DELETE',
      headers: KEY,
    });
    expect(revoked.status).toBe(200);
    expect(revoked.json()).toEqual({ sessionId: box.sessionId, port: 4000, revoked: true });
    const after = await send(manager.url, path, { headers: { 'x-preview-token': token } });
    expect(after.status).toBe(403);
    expect(after.json<{ message: string }>().message).toMatch(/revoked$/);
    // A token issued after the revocation works.
    const fresh = await issue(box.sessionId, 4000);
    expect((await send(manager.url, path, { headers: { 'x-preview-token': fresh.token } })).status).toBe(200);
    // Remove the port and register it again, private: the earlier token no longer counts.
    await send(manager.url, `/api/internal/sessions/${box.sessionId}/previews/4000`, {
      method: 'DELETE',
      headers: KEY,
    });
    await new Promise((resolve) => setTimeout(resolve, 2));
    expect((await register(manager.url, box.sessionId, { port: 4000, visibility: 'private' })).status).toBe(
      201,
    );
    const stale = await send(manager.url, path, { headers: { 'x-preview-token': fresh.token } });
    expect(stale.status).toBe(403);
  });

  it('API errors: a bad visibility, a bad ttl, an unregistered port', async () => {
    const badVisibility = await register(manager.url, box.sessionId, { port: 4000, visibility: 'secret' });
    expect(badVisibility.status).toBe(400);
    expect(badVisibility.json<{ code: string }>().code).toBe('INVALID_VISIBILITY');
    const tokens = `/api/internal/sessions/${box.sessionId}/previews/4000/tokens`;
    for (const ttlSeconds of [59, 86_401, 1.5, '600']) {
      const reply = await send(manager.url, tokens, {
        method: 'POST',
        headers: { ...KEY, 'content-type': 'application/json' },
        body: JSON.stringify({ ttlSeconds }),
      });
      expect(reply.status, String(ttlSeconds)).toBe(400);
      expect(reply.json<{ code: string }>().code).toBe('INVALID_TOKEN_TTL');
    }
    const unregistered = await send(
      manager.url,
      `/api/internal/sessions/${box.sessionId}/previews/5000/tokens`,
      {
        method: 'POST',
        headers: KEY,
      },
    );
    expect(unregistered.status).toBe(404);
    expect(unregistered.json<{ code: string }>().code).toBe('PORT_NOT_REGISTERED');
    const noKey = await send(manager.url, tokens, { method: 'POST' });
    expect(noKey.status).toBe(403);
  });
});

describe('a manager without PREVIEW_TOKEN_SECRET', () => {
  it('refuses to register a private port or issue a token, saying why', async () => {
    const plain = await startManager({});
    try {
      const reply = await register(plain.url, box.sessionId, { port: 4000, visibility: 'private' });
      expect(reply.status).toBe(400);
      expect(reply.json<{ code: string }>().code).toBe('PREVIEW_TOKENS_DISABLED');
      await register(plain.url, box.sessionId, { port: 4000 });
      const token = await send(plain.url, `/api/internal/sessions/${box.sessionId}/previews/4000/tokens`, {
        method: 'POST',
        headers: KEY,
      });
      expect(token.status).toBe(400);
      expect(token.json<{ code: string }>().code).toBe('PREVIEW_TOKENS_DISABLED');
    } finally {
      await plain.close();
    }
  });
});
