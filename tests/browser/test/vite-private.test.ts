// A private preview in a browser: a Vite dev server registered `visibility: private` on a host route. The
// link the API issues (`?preview_token=...`) is exchanged for a cookie (303), then the page, its modules and
// its HMR WebSocket all go through on that cookie; a browser without it gets the readable 401 page.
import { docker, uniqueSessionId } from '@sandbox/test-fixtures';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { register, send, startManager, TEST_KEY } from '../../../apps/container-manager/test/harness.js';
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
const SECRET = 'browser-private-preview-secret-0123456789';

describe('a private Vite preview, opened from its token link', () => {
  const sessionId = uniqueSessionId('viteprivate').toLowerCase();
  let browser: Promise<HeadlessChromium> | undefined;
  let fresh: Promise<HeadlessChromium> | undefined;
  let manager: RunningManager | undefined;
  let containerId: string | undefined;
  let host = '';

  beforeAll(async () => {
    const rules = `--host-resolver-rules=MAP *.${DOMAIN} 127.0.0.1`;
    browser = launchChromiumForTests([rules]);
    fresh = launchChromiumForTests([rules]);
    manager = await startManager({ PREVIEW_DOMAIN: DOMAIN, PREVIEW_TOKEN_SECRET: SECRET });
    host = `${VITE_PORT}-${sessionId}.${DOMAIN}:${new URL(manager.url).port}`;
    containerId = await runSessionContainer(sessionId, FIXTURE_VITE_IMAGE);
    const registered = await register(manager.url, sessionId, { port: VITE_PORT, visibility: 'private' });
    expect(registered.status, registered.body.toString()).toBe(201);
  });

  afterAll(async () => {
    await closeChromium(browser);
    await closeChromium(fresh);
    await manager?.close();
    if (containerId !== undefined) await docker(['rm', '-f', containerId]);
  });

  test('the link sets the cookie; the page and HMR work on it; a browser without it gets the 401 page', async () => {
    if (manager === undefined || browser === undefined || fresh === undefined || containerId === undefined) {
      throw new Error('beforeAll did not finish');
    }
    const issued = await send(
      manager.url,
      `/api/internal/sessions/${sessionId}/previews/${VITE_PORT}/tokens`,
      {
        method: 'POST',
        headers: { 'x-internal-service-key': TEST_KEY },
      },
    );
    expect(issued.status, issued.body.toString()).toBe(201);
    const { token, urls } = issued.json<{ token: string; urls: { host?: string } }>();
    await waitForPreview(manager.url, '/', {
      containerId,
      headers: { host, 'x-preview-token': token },
      what: 'the private Vite preview',
    });
    const link = `http:${urls.host?.replace(`.${DOMAIN}/`, `.${DOMAIN}:${new URL(manager.url).port}/`)}`;
    expect(link).toBe(`http://${host}/?preview_token=${token}`);

    const { context } = await browser;
    const id = containerId;
    const page = await context.newPage();
    const record = recordPage(page);
    try {
      await explainFailure(record, async () => {
        const response = await page.goto(link);
        expect(response?.status()).toBe(200);
        // The token left the address bar with the 303.
        expect(page.url()).toBe(`http://${host}/`);
        await expect.poll(() => page.textContent('#msg'), { timeout: 20_000 }).toBe('hello from vite');
        await expect
          .poll(() => record.console.some((line) => line.includes('[vite] connected')), { timeout: 20_000 })
          .toBe(true);
        const cookies = await context.cookies(`http://${host}/`);
        expect(cookies.find((cookie) => cookie.name === 'sandbox_preview_token')).toMatchObject({
          value: token,
          httpOnly: true,
          sameSite: 'Lax',
          path: '/',
          domain: `${VITE_PORT}-${sessionId}.${DOMAIN}`,
        });
        // Every request was served: the one 303 is the link's exchange, nothing was refused.
        const unexpected = record.requests.filter(
          (line) => !/^(200|304) /.test(line) && !line.startsWith('303 ') && !line.includes('/favicon.ico'),
        );
        expect(unexpected).toEqual([]);

        await expectViteHotUpdate(page, id, 'hot update of a private preview');
      });
    } finally {
      await page.close();
    }

    const stranger = await (await fresh).context.newPage();
    try {
      const response = await stranger.goto(`http://${host}/`);
      expect(response?.status()).toBe(401);
      expect(response?.headers()['content-type']).toMatch(/^text\/html/);
      expect(await stranger.textContent('body')).toContain('PREVIEW_TOKEN_REQUIRED');
    } finally {
      await stranger.close();
    }
  });
});
