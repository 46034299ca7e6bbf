// A person who opens a preview before its app listens: headless Chromium gets a page that says the app is
// starting (status 502) and reloads itself, and shows the app once it listens, with no click. Errors that
// are not the 502 get a readable page for a navigation, while a page's own fetch keeps the contract's JSON.
import {
  removeCreatedContainers,
  type SessionContainer,
  startSessionContainer,
} from '@sandbox/test-fixtures';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { register, startManager } from '../../../apps/container-manager/test/harness.js';
import {
  closeChromium,
  explainFailure,
  type HeadlessChromium,
  launchChromiumForTests,
  recordPage,
} from './support.js';

type RunningManager = Awaited<ReturnType<typeof startManager>>;

describe('navigations that meet an error', () => {
  let browser: Promise<HeadlessChromium> | undefined;
  let manager: RunningManager | undefined;
  let container: SessionContainer;

  beforeAll(async () => {
    browser = launchChromiumForTests();
    manager = await startManager();
    // Busybox alone: nothing listens on 3000 until the test starts its httpd.
    container = await startSessionContainer({ image: 'busybox' });
    const registered = await register(manager.url, container.sessionId, { port: 3000 });
    expect(registered.status, registered.body.toString()).toBe(201);
  });

  afterAll(async () => {
    await closeChromium(browser);
    await manager?.close();
    await removeCreatedContainers();
  });

  test('the 502 is a starting page that reloads itself into the app once it listens', async () => {
    if (manager === undefined || browser === undefined) throw new Error('beforeAll did not finish');
    const { context } = await browser;
    const page = await context.newPage();
    const record = recordPage(page);
    try {
      await explainFailure(record, async () => {
        const response = await page.goto(`${manager?.url}/previews/${container.sessionId}/`);
        expect(response?.status()).toBe(502);
        expect(response?.headers()['content-type']).toMatch(/^text\/html/);
        expect(response?.headers()['cache-control']).toBe('no-store');
        expect(await page.title()).toBe('The app is starting');
        expect(await page.textContent('dl')).toContain('UPSTREAM_CONNECT_FAILED');
        await expect.poll(() => page.textContent('#status'), { timeout: 5000 }).toMatch(/attempt \d+/);

        // A fetch from the page is not a navigation: the contract's JSON, unchanged.
        const fetched = await page.evaluate(async (path) => {
          const reply = await fetch(path);
          return { status: reply.status, type: reply.headers.get('content-type'), body: await reply.json() };
        }, `/previews/${container.sessionId}/`);
        expect(fetched).toEqual({
          status: 502,
          type: 'application/json; charset=utf-8',
          body: {
            statusCode: 502,
            error: 'Bad Gateway',
            message: 'Failed to connect to preview server',
            code: 'UPSTREAM_CONNECT_FAILED',
          },
        });

        // The app comes up; the page finds it by itself.
        await container.exec([
          'sh',
          '-c',
          'mkdir -p /www && echo "<title>app</title><h1 id=app>the app is up</h1>" > /www/index.html && httpd -p 3000 -h /www',
        ]);
        await expect
          .poll(() => page.textContent('#app').catch(() => null), { timeout: 20_000 })
          .toBe('the app is up');
      });
    } finally {
      await page.close();
    }
  });

  test('a 404 is a readable page with the contract message; its fetch stays JSON', async () => {
    if (manager === undefined || browser === undefined) throw new Error('beforeAll did not finish');
    const { context } = await browser;
    const page = await context.newPage();
    const record = recordPage(page);
    try {
      await explainFailure(record, async () => {
        const response = await page.goto(`${manager?.url}/previews/nobody-registered-this/`);
        expect(response?.status()).toBe(404);
        expect(await page.title()).toBe('404 Not Found');
        expect(await page.textContent('#lead')).toBe(
          'No preview port registered for session nobody-registered-this',
        );
        expect(await page.textContent('dl')).toContain('PREVIEW_NOT_REGISTERED');
        const fetched = await page.evaluate(async (path) => {
          const reply = await fetch(path);
          return { status: reply.status, code: ((await reply.json()) as { code: string }).code };
        }, '/previews/nobody-registered-this/');
        expect(fetched).toEqual({ status: 404, code: 'PREVIEW_NOT_REGISTERED' });
      });
    } finally {
      await page.close();
    }
  });
});
