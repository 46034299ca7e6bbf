// A real Vite dev server in a session container, served on the path route /previews/<id>/ through
// container-manager with the one setting it needs: `vite --base /previews/<id>/`, the port registered with
// stripPrefix: false so that Vite receives the whole path. Chromium loads the app, Vite's HMR client
// connects back through the proxy (a WebSocket at the page's own host and port, under the base), and an
// edit inside the container updates the DOM in place: the page is not reloaded.
import { docker, uniqueSessionId } from '@sandbox/test-fixtures';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { register, startManager } from '../../../apps/container-manager/test/harness.js';
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

describe('a Vite dev server behind /previews/<id>/', () => {
  // Vite must know its public base before it starts, so the session id comes first.
  const sessionId = uniqueSessionId('vite');
  const base = `/previews/${sessionId}/`;
  let browser: Promise<HeadlessChromium> | undefined;
  let manager: RunningManager | undefined;
  let containerId: string | undefined;

  beforeAll(async () => {
    // Awaited by the test: without Chromium it fails, saying why.
    browser = launchChromiumForTests();
    manager = await startManager();
    containerId = await runSessionContainer(sessionId, FIXTURE_VITE_IMAGE, { args: ['--base', base] });
    const registered = await register(manager.url, sessionId, { port: VITE_PORT, stripPrefix: false });
    expect(registered.status, registered.body.toString()).toBe(201);
    await waitForPreview(manager.url, base, { containerId, what: 'Vite through the proxy' });
  });

  afterAll(async () => {
    await closeChromium(browser);
    await manager?.close();
    if (containerId !== undefined) await docker(['rm', '-f', containerId]);
  });

  test('HMR through the proxy updates the page in place', async () => {
    if (manager === undefined || browser === undefined || containerId === undefined) {
      throw new Error('beforeAll did not finish');
    }
    const { context } = await browser;
    const id = containerId;
    const pageUrl = `${manager.url}${base}`;
    const page = await context.newPage();
    const record = recordPage(page);
    try {
      await explainFailure(record, async () => {
        const response = await page.goto(pageUrl);
        expect(response?.status()).toBe(200);
        await expect.poll(() => page.textContent('#msg'), { timeout: 20_000 }).toBe('hello from vite');

        // The HMR client says so once its WebSocket, at the page's host and port under the base, is open.
        await expect
          .poll(() => record.console.some((line) => line.includes('[vite] connected')), { timeout: 20_000 })
          .toBe(true);
        const wsOrigin = new URL(pageUrl).origin.replace(/^http/, 'ws');
        expect(record.webSockets.some((url) => url.startsWith(`${wsOrigin}${base}?token=`))).toBe(true);
        // Not through Vite's fallback, a direct connection to its own host and port (localhost:5173 here).
        expect(record.console.filter((line) => line.includes('fallback'))).toEqual([]);
        // Every module under the base, straight from Vite: nothing failed, nothing redirected. Chromium's
        // own /favicon.ico is outside the base and the app, so it is not counted.
        const others = record.requests.filter((line) => !line.endsWith('/favicon.ico'));
        expect(others.filter((line) => !line.startsWith('200 ') && !line.startsWith('304 '))).toEqual([]);
        expect(others.length).toBeGreaterThan(2);

        await expectViteHotUpdate(page, id, 'hot update through the proxy');
        expect(page.url()).toBe(pageUrl);
      });
    } finally {
      await page.close();
    }
  });
});
