// Errors as a browser's navigation meets them: the 404, 500 and 502 are readable pages with the same status
// (the 502 one says the app is starting and reloads itself); every other client, and every other status,
// keeps the contract's JSON exactly. Against a real manager and real containers.
import {
  removeCreatedContainers,
  type SessionContainer,
  startSessionContainer,
} from '@sandbox/test-fixtures';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorBody, register, send, startManager } from './harness.js';

type RunningManager = Awaited<ReturnType<typeof startManager>>;

// What Chromium sends when a person opens a URL.
const NAVIGATION = {
  accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8',
  'sec-fetch-mode': 'navigate',
  'sec-fetch-dest': 'document',
};
// Navigations from a client that sends no Sec-Fetch-* fields.
const HTML_ONLY = { accept: 'text/html' };

describe('error pages for navigations', () => {
  let manager: RunningManager;
  let idle: SessionContainer;
  let stopped: SessionContainer;

  beforeAll(async () => {
    [manager, idle, stopped] = await Promise.all([
      startManager(),
      // Busybox: nothing listens on 3000.
      startSessionContainer({ image: 'busybox' }),
      startSessionContainer(),
    ]);
    expect((await register(manager.url, idle.sessionId, { port: 3000 })).status).toBe(201);
    expect((await register(manager.url, stopped.sessionId, { port: 3000 })).status).toBe(201);
    await stopped.stop();
  });

  afterAll(async () => {
    await manager?.close();
    await removeCreatedContainers();
  });

  it('502: the starting page for a navigation, the JSON for anyone else', async () => {
    const path = `/previews/${idle.sessionId}/app?x=1`;
    for (const headers of [NAVIGATION, HTML_ONLY]) {
      const page = await send(manager.url, path, { headers });
      expect(page.status).toBe(502);
      expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(page.headers['cache-control']).toBe('no-store');
      expect(page.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
      const html = page.body.toString();
      expect(html).toContain('<title>The app is starting</title>');
      expect(html).toContain('Failed to connect to preview server');
      expect(html).toContain(String(page.headers['x-request-id']));
      expect(html).toContain('location.reload()');
    }
    for (const headers of [
      {},
      { accept: '*/*' },
      { accept: 'application/json' },
      { 'sec-fetch-mode': 'cors' },
    ]) {
      const reply = await send(manager.url, path, { headers });
      expect(reply.status).toBe(502);
      expect(reply.headers['content-type']).toBe('application/json; charset=utf-8');
      expect(reply.json()).toEqual({
        ...errorBody(502, 'Bad Gateway', 'Failed to connect to preview server'),
        code: 'UPSTREAM_CONNECT_FAILED',
      });
    }
  });

  it('404 and 500: a page with the status and the contract message', async () => {
    const unregistered = await send(manager.url, '/previews/nobody-here/', { headers: NAVIGATION });
    expect(unregistered.status).toBe(404);
    expect(unregistered.body.toString()).toContain('No preview port registered for session nobody-here');
    expect(unregistered.body.toString()).not.toContain('location.reload()');
    const notRunning = await send(manager.url, `/previews/${stopped.sessionId}/`, { headers: NAVIGATION });
    expect(notRunning.status).toBe(500);
    expect(notRunning.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(notRunning.body.toString()).toContain(`Container for session ${stopped.sessionId} is not running`);
    // Outside the proxy routes too.
    const noRoute = await send(manager.url, '/nowhere', { headers: NAVIGATION });
    expect(noRoute.status).toBe(404);
    expect(noRoute.body.toString()).toContain('Cannot GET /nowhere');
  });

  it('keeps the JSON for every other status, navigation or not', async () => {
    const forbidden = await send(manager.url, `/api/internal/sessions/${idle.sessionId}/previews`, {
      headers: NAVIGATION,
    });
    expect(forbidden.status).toBe(403);
    expect(forbidden.json()).toMatchObject({ code: 'FORBIDDEN' });
    const invalid = await send(manager.url, '/previews/bad..id%2F/', { headers: NAVIGATION });
    expect(invalid.status).toBe(400);
    expect(invalid.headers['content-type']).toBe('application/json; charset=utf-8');
  });

  it('answers a HEAD navigation with the status and no body', async () => {
    const head = await send(manager.url, `/previews/${idle.sessionId}/`, {
      method: 'HEAD',
      headers: NAVIGATION,
    });
    expect(head.status).toBe(502);
    expect(head.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(head.body.length).toBe(0);
  });
});
