import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { httpRequest } from '@sandbox/test-fixtures';
import { afterEach, describe, expect, it } from 'vitest';
import { createDashboard } from './dashboard.js';

// The dashboard's own server on a loopback port, its API calls going to a stand-in for the service that
// tells what it received.

const KEY = 'dashboard-test-key';
let server: Server | undefined;

afterEach(async () => {
  server?.close();
  server = undefined;
});

async function start(now: () => number = Date.now) {
  const received: IncomingMessage[] = [];
  const dashboard = createDashboard({
    internalServiceKey: KEY,
    api: (req, res) => {
      received.push(req);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ url: req.url, key: req.headers['x-internal-service-key'] }));
    },
    sessionTtlMs: 60_000,
    title: 'test <manager>',
    now,
  });
  server = createServer(dashboard.requestListener).listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const login = async (key: string) =>
    httpRequest(url, '/login', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ key }).toString(),
    });
  const signIn = async () => {
    const reply = await login(KEY);
    const cookie = String(reply.headers['set-cookie']).split(';')[0] ?? '';
    return { cookie };
  };
  return { url, received, dashboard, login, signIn };
}

describe('createDashboard', () => {
  it('shows the login form, refuses a wrong key, and sets an HttpOnly SameSite=Strict cookie for the right one', async () => {
    const { url, login } = await start();
    const form = await httpRequest(url, '/');
    expect(form.status).toBe(200);
    expect(form.body.toString()).toContain('<form method="post" action="/login">');
    // The title is escaped.
    expect(form.body.toString()).toContain('test &#60;manager&#62;');
    expect(form.headers['content-security-policy']).toContain("script-src 'self'");
    expect(form.headers['x-frame-options']).toBe('DENY');
    const wrong = await login('nope');
    expect(wrong.status).toBe(403);
    expect(wrong.body.toString()).toContain('not this service&#39;s key');
    expect(wrong.headers['set-cookie']).toBeUndefined();
    const right = await login(KEY);
    expect(right.status).toBe(303);
    expect(right.headers.location).toBe('/');
    const [cookie] = right.headers['set-cookie'] ?? [];
    expect(cookie).toMatch(/^sandbox_dashboard=[\w-]{43}; Path=\/; Max-Age=60; HttpOnly; SameSite=Strict$/);
  });

  it('serves the page and the API to a signed-in browser, the key added; a change needs its header', async () => {
    const { url, received, signIn } = await start();
    const { cookie } = await signIn();
    const page = await httpRequest(url, '/', { headers: { cookie } });
    expect(page.body.toString()).toContain('<script src="/dashboard.js"></script>');
    const read = await httpRequest(url, '/api/internal/sessions?x=1', { headers: { cookie } });
    expect(read.json()).toEqual({ url: '/api/internal/sessions?x=1', key: KEY });
    const change = { method: 'POST', body: '{}', headers: { cookie, 'content-type': 'application/json' } };
    const refused = await httpRequest(url, '/api/internal/sessions', change);
    expect(refused.status).toBe(403);
    expect(refused.json()).toMatchObject({ code: 'FORBIDDEN' });
    const allowed = await httpRequest(url, '/api/internal/sessions', {
      ...change,
      headers: { ...change.headers, 'x-sandbox-dashboard': '1' },
    });
    expect(allowed.status).toBe(200);
    expect(received.map((req) => req.method)).toEqual(['GET', 'POST']);
  });

  it('refuses the API without a valid, unexpired login, and after sign-out', async () => {
    let clock = 1_000_000;
    const { url, received, signIn } = await start(() => clock);
    expect((await httpRequest(url, '/api/internal/sessions')).status).toBe(403);
    expect(
      (await httpRequest(url, '/api/internal/sessions', { headers: { cookie: 'sandbox_dashboard=forged' } }))
        .status,
    ).toBe(403);
    // The key itself is not a login here.
    expect(
      (await httpRequest(url, '/api/internal/sessions', { headers: { 'x-internal-service-key': KEY } }))
        .status,
    ).toBe(403);
    const { cookie } = await signIn();
    expect((await httpRequest(url, '/api/internal/sessions', { headers: { cookie } })).status).toBe(200);
    clock += 60_001;
    expect((await httpRequest(url, '/api/internal/sessions', { headers: { cookie } })).status).toBe(403);
    // The page is the login form again.
    expect((await httpRequest(url, '/', { headers: { cookie } })).body.toString()).toContain(
      'action="/login"',
    );
    const again = await signIn();
    const out = await httpRequest(url, '/logout', { method: 'POST', headers: { cookie: again.cookie } });
    expect(out.status).toBe(303);
    expect(String(out.headers['set-cookie'])).toMatch(/^sandbox_dashboard=; Path=\/; Max-Age=0/);
    expect(
      (await httpRequest(url, '/api/internal/sessions', { headers: { cookie: again.cookie } })).status,
    ).toBe(403);
    expect(received).toHaveLength(1);
  });

  it('serves its script and style, and nothing else: the previews are not on this port', async () => {
    const { url, signIn } = await start();
    const { cookie } = await signIn();
    const script = await httpRequest(url, '/dashboard.js');
    expect(script.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect((await httpRequest(url, '/dashboard.css')).headers['content-type']).toBe(
      'text/css; charset=utf-8',
    );
    const preview = await httpRequest(url, '/previews/abc/', { headers: { cookie } });
    expect(preview.status).toBe(404);
    expect(preview.json()).toMatchObject({ code: 'ROUTE_NOT_FOUND' });
  });

  it('refuses what a browser marks as from elsewhere, reads included: the previews are the same site', async () => {
    const { url, received, signIn } = await start();
    const { cookie } = await signIn();
    for (const site of ['same-site', 'cross-site']) {
      const read = await httpRequest(url, '/api/internal/sessions', {
        headers: { cookie, 'sec-fetch-site': site },
      });
      expect(read.status, site).toBe(403);
      const out = await httpRequest(url, '/logout', {
        method: 'POST',
        headers: { cookie, 'sec-fetch-site': site },
      });
      expect(out.status, site).toBe(403);
    }
    // Its own page's requests, and a user's own navigation, are fine.
    for (const site of ['same-origin', 'none'])
      expect(
        (await httpRequest(url, '/api/internal/sessions', { headers: { cookie, 'sec-fetch-site': site } }))
          .status,
      ).toBe(200);
    expect(received).toHaveLength(2);
    // Still signed in: the refused logout did nothing.
    expect((await httpRequest(url, '/api/internal/sessions', { headers: { cookie } })).status).toBe(200);
  });

  it('is not fooled by a planted cookie of the same name in front of the real one', async () => {
    const { url, signIn } = await start();
    const { cookie } = await signIn();
    const planted = `sandbox_dashboard=planted; ${cookie}`;
    expect((await httpRequest(url, '/api/internal/sessions', { headers: { cookie: planted } })).status).toBe(
      200,
    );
  });

  it('forgets every login on close', async () => {
    const { url, dashboard, signIn } = await start();
    const { cookie } = await signIn();
    dashboard.close();
    expect((await httpRequest(url, '/api/internal/sessions', { headers: { cookie } })).status).toBe(403);
  });
});
