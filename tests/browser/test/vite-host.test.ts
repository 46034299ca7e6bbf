// A Vite dev server started as its template starts it (no allowedHosts, base '/'), reached on a host route of
// a domain that is not localhost: {port}-{id}.preview.example.test, which Chromium resolves to loopback.
// Vite trusts only localhost by default; the proxy presents same-origin requests to it as addressed to
// localhost:5173, so the page renders and HMR updates it in place with no configuration, while a request
// from another origin still meets Vite's own refusal.
import { connectWebSocket, docker, uniqueSessionId } from '@sandbox/test-fixtures';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { register, send, startManager } from '../../../apps/container-manager/test/harness.js';
import {
  closeChromium,
  expectViteHotUpdate,
  explainFailure,
  FIXTURE_VITE_IMAGE,
  type HeadlessChromium,
  launchChromiumForTests,
  recordPage,
  runSessionContainer,
  VITE_PORT,
  waitForPreview,
} from './support.js';

type RunningManager = Awaited<ReturnType<typeof startManager>>;

const DOMAIN = 'preview.example.test';

describe('a Vite dev server on a host route of a real-looking domain, with no configuration', () => {
  const sessionId = uniqueSessionId('vitehost').toLowerCase();
  let browser: Promise<HeadlessChromium> | undefined;
  let manager: RunningManager | undefined;
  let containerId: string | undefined;
  let host = '';

  beforeAll(async () => {
    browser = launchChromiumForTests([`--host-resolver-rules=MAP *.${DOMAIN} 127.0.0.1`]);
    manager = await startManager({ PREVIEW_DOMAIN: DOMAIN });
    host = `${VITE_PORT}-${sessionId}.${DOMAIN}:${new URL(manager.url).port}`;
    containerId = await runSessionContainer(sessionId, FIXTURE_VITE_IMAGE);
    const registered = await register(manager.url, sessionId, { port: VITE_PORT });
    expect(registered.status, registered.body.toString()).toBe(201);
    await waitForPreview(manager.url, '/', {
      containerId,
      headers: { host },
      what: 'Vite on its host route',
    });
  });

  afterAll(async () => {
    await closeChromium(browser);
    await manager?.close();
    if (containerId !== undefined) await docker(['rm', '-f', containerId]);
  });

  test('renders, and HMR updates the page in place', async () => {
    if (manager === undefined || browser === undefined || containerId === undefined) {
      throw new Error('beforeAll did not finish');
    }
    const { context } = await browser;
    const id = containerId;
    const pageUrl = `http://${host}/`;
    const page = await context.newPage();
    const record = recordPage(page);
    try {
      await explainFailure(record, async () => {
        const response = await page.goto(pageUrl);
        expect(response?.status()).toBe(200);
        await expect.poll(() => page.textContent('#msg'), { timeout: 20_000 }).toBe('hello from vite');
        await expect
          .poll(() => record.console.some((line) => line.includes('[vite] connected')), { timeout: 20_000 })
          .toBe(true);
        // Through the proxy, at the page's own host: not Vite's fallback to localhost:5173.
        expect(record.webSockets.some((url) => url.startsWith(`ws://${host}/?token=`))).toBe(true);
        // The one error is Chromium's own request for /favicon.ico, which the app does not have (a 404 of
        // Vite's, not the proxy's: checked below).
        const errors = record.console.filter((line) => /fallback|error/i.test(line));
        expect(errors.filter((line) => !line.includes('status of 404'))).toEqual([]);
        expect(errors.length).toBeLessThanOrEqual(1);
        const favicon = await send(manager?.url ?? '', '/favicon.ico', { headers: { host } });
        expect(favicon.status).toBe(404);
        expect(favicon.headers['content-type'] ?? '').not.toMatch(/json/);
        expect(
          record.requests.filter((line) => !line.startsWith('200 ') && !line.startsWith('304 ')),
        ).toEqual([]);

        await expectViteHotUpdate(page, id, 'hot update on a real domain');
      });
    } finally {
      await page.close();
    }
  });

  test("a page of another origin still meets Vite's refusal, over HTTP and for the HMR WebSocket", async () => {
    if (manager === undefined) throw new Error('beforeAll did not finish');
    const foreign = { host, origin: 'http://evil.example' };
    // The same request from the page's own origin is served.
    expect(
      (await send(manager.url, '/@vite/client', { headers: { host, origin: `http://${host}` } })).status,
    ).toBe(200);
    const refused = await send(manager.url, '/@vite/client', { headers: foreign });
    expect(refused.status).toBe(403);
    expect(refused.body.toString()).toContain('Blocked request');

    const wsUrl = `${manager.url.replace('http', 'ws')}/`;
    const attempt = await connectWebSocket(wsUrl, {
      headers: foreign,
      protocols: ['vite-hmr'],
      timeoutMs: 5000,
    }).then(
      (ws) => {
        ws.close(1000);
        return 'opened';
      },
      (error: unknown) => String(error),
    );
    expect(attempt).not.toBe('opened');
  });
});
