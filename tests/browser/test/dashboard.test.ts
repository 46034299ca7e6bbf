// The dashboard in headless Chromium against a real container-manager and real containers: sign in, create a
// session from an image, open its preview, watch its requests arrive in the live log, run a command, stop and
// remove it. Then what keeps it safe from the previews it shows: its cookie is HttpOnly, never reaches an app,
// is not taken by the main port's API, and a preview's page cannot use it across origins.
import { mkdirSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { docker, FIXTURE_NODE_IMAGE, httpRequest, uniqueSessionId } from '@sandbox/test-fixtures';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startManager, TEST_KEY } from '../../../apps/container-manager/test/harness.js';
import {
  closeChromium,
  explainFailure,
  type HeadlessChromium,
  launchChromiumForTests,
  recordPage,
} from './support.js';

type RunningManager = Awaited<ReturnType<typeof startManager>>;

// `UPDATE_DOCS_SCREENSHOT=1` writes the screenshot the docs show; otherwise it goes to a temporary folder.
const SCREENSHOT = process.env.UPDATE_DOCS_SCREENSHOT
  ? fileURLToPath(new URL('../../../docs/images/dashboard.png', import.meta.url))
  : join(mkdtempSync(join(tmpdir(), 'sandbox-dashboard-')), 'dashboard.png');

describe('the dashboard', () => {
  let browser: Promise<HeadlessChromium> | undefined;
  let manager: RunningManager | undefined;
  const sessionId = uniqueSessionId('dash');
  let dashboard = '';
  let page: Page;

  beforeAll(async () => {
    // Awaited by each test: without Chromium every test fails, saying why.
    browser = launchChromiumForTests();
    manager = await startManager({ DASHBOARD_PORT: '0', SESSION_MEMORY: '256m' });
    if (manager.dashboardUrl === undefined) throw new Error('DASHBOARD_PORT=0 served no dashboard');
    dashboard = manager.dashboardUrl;
  });

  afterAll(async () => {
    await closeChromium(browser);
    await manager?.close();
    await docker(['rm', '-f', `sandbox-session-${sessionId}`]).catch(() => {});
  });

  const row = () => page.locator(`tr[data-session="${sessionId}"]`);

  test('signs in with the key only, into an HttpOnly cookie', async () => {
    const { context } = await (browser as Promise<HeadlessChromium>);
    page = await context.newPage();
    const record = recordPage(page);
    await explainFailure(record, async () => {
      expect((await page.goto(dashboard))?.status()).toBe(200);
      await page.fill('#key', 'not-the-key');
      await page.click('button[type=submit]');
      await expect
        .poll(() => page.textContent('[data-testid=login-error]'))
        .toContain("not this service's key");
      await page.fill('#key', TEST_KEY);
      await page.click('button[type=submit]');
      await page.waitForSelector('[data-testid=sessions]');
      expect(await page.textContent('[data-testid=sessions-note]')).toContain('No sessions yet');
      // The page's script cannot read it; the browser holds it for the host.
      expect(await page.evaluate('document.cookie')).toBe('');
      const cookies = await context.cookies(dashboard);
      expect(cookies.find((cookie) => cookie.name === 'sandbox_dashboard')).toMatchObject({
        httpOnly: true,
        sameSite: 'Strict',
      });
    });
  });

  test('creates a session, opens its preview, and shows its requests live', async () => {
    const { context } = await (browser as Promise<HeadlessChromium>);
    const record = recordPage(page);
    await explainFailure(record, async () => {
      await page.fill('#create input[name=image]', FIXTURE_NODE_IMAGE);
      await page.fill('#create input[name=ports]', '3000');
      await page.fill('#create input[name=sessionId]', sessionId);
      await page.click('#create button[type=submit]');
      // Running, and its port registered once the app answers: a link that opens the preview.
      await expect.poll(() => row().locator('.state').textContent(), { timeout: 20_000 }).toBe('running');
      const link = row().locator('a', { hasText: '3000' });
      await link.waitFor({ timeout: 20_000 });
      expect(await page.textContent('[data-testid=detail]')).toContain(sessionId);
      await expect.poll(() => page.textContent('[data-testid=log-state]')).toBe('live');

      const [preview] = await Promise.all([context.waitForEvent('page'), link.click()]);
      await preview.waitForLoadState();
      expect(preview.url()).toMatch(new RegExp(`/previews/${sessionId}/$`));
      expect(JSON.parse((await preview.textContent('body')) ?? '{}')).toMatchObject({
        method: 'GET',
        url: '/',
      });
      await preview.goto(`${preview.url()}from/the/browser?secret=1`);

      // Both requests reach the live log, newest first, without the query string.
      await expect
        .poll(() => page.locator('[data-testid=log] tbody td.path').allTextContents(), { timeout: 10_000 })
        .toEqual(
          expect.arrayContaining([
            `GET /previews/${sessionId}/from/the/browser`,
            `GET /previews/${sessionId}/`,
          ]),
        );
      expect(await page.locator('[data-testid=log] tbody tr').first().textContent()).toContain(
        '/from/the/browser',
      );
      expect(await page.textContent('[data-testid=log]')).not.toContain('secret');
      await preview.close();
    });
  });

  test('runs a command in the session and shows its output and exit code', async () => {
    const record = recordPage(page);
    await explainFailure(record, async () => {
      await page.fill('#exec input[name=command]', 'echo "hello from $((40 + 2))"; exit 3');
      await page.click('#exec button[type=submit]');
      await expect
        .poll(() => page.textContent('[data-testid=exec-output]'), { timeout: 20_000 })
        .toContain('[exit 3]');
      expect(await page.textContent('[data-testid=exec-output]')).toContain('hello from 42\n');
      await page.setViewportSize({ width: 1280, height: 900 });
      mkdirSync(join(SCREENSHOT, '..'), { recursive: true });
      await page.screenshot({ path: SCREENSHOT, fullPage: true });
      expect(statSync(SCREENSHOT).size).toBeGreaterThan(20_000);
    });
  });

  test('keeps its cookie to itself: not forwarded to an app, not taken by the main port, not across origins', async () => {
    if (manager === undefined) throw new Error('beforeAll did not finish');
    const { context } = await (browser as Promise<HeadlessChromium>);
    const cookie = (await context.cookies(dashboard)).find((each) => each.name === 'sandbox_dashboard');
    if (cookie === undefined) throw new Error('not signed in');
    // Cookies are not kept apart by port: the browser sends it to the previews' port too...
    const mainOrigin = manager.url;
    expect((await context.cookies(mainOrigin)).map((each) => each.name)).toContain('sandbox_dashboard');
    const preview = await context.newPage();
    try {
      await preview.goto(`${mainOrigin}/previews/${sessionId}/echo`);
      // ...but the app never sees it.
      const seen = JSON.parse((await preview.textContent('body')) ?? '{}') as {
        headers: Record<string, string>;
      };
      expect(seen.headers.cookie ?? '').not.toContain('sandbox_dashboard');
      // A preview's page (another origin) cannot call the dashboard's API: the header it needs calls for a
      // CORS preflight nobody answers.
      const crossOrigin = await preview.evaluate(async (url) => {
        try {
          const res = await fetch(url, {
            method: 'POST',
            credentials: 'include',
            headers: { 'x-sandbox-dashboard': '1', 'content-type': 'application/json' },
            body: JSON.stringify({ image: 'anything' }),
          });
          return `answered ${res.status}`;
        } catch (error) {
          return `refused: ${(error as Error).name}`;
        }
      }, `${dashboard}api/internal/sessions`);
      expect(crossOrigin).toBe('refused: TypeError');
      // Nor read from it, even blind (no-cors, the cookie sent): the browser marks the request as from
      // another site, and the dashboard refuses it before anything runs (the status shows to the test only).
      const blindUrl = `${dashboard}api/internal/sessions`;
      const [blind] = await Promise.all([
        preview.waitForResponse((response) => response.url() === blindUrl),
        preview.evaluate(async (url) => {
          await fetch(url, { mode: 'no-cors', credentials: 'include' }).catch(() => undefined);
        }, blindUrl),
      ]);
      expect(blind.status()).toBe(403);
    } finally {
      await preview.close();
    }
    const withCookie = { cookie: `sandbox_dashboard=${cookie.value}` };
    // The main port's API takes the key, never the cookie.
    expect((await httpRequest(mainOrigin, '/api/internal/sessions', { headers: withCookie })).status).toBe(
      403,
    );
    // On the dashboard's port, a change without the dashboard's header is refused: a form another site posts.
    const posted = await httpRequest(dashboard.replace(/\/$/, ''), '/api/internal/sessions', {
      method: 'POST',
      headers: { ...withCookie, 'content-type': 'application/json' },
      body: '{}',
    });
    expect(posted.status).toBe(403);
    expect(posted.json()).toMatchObject({ code: 'FORBIDDEN' });
    // Nothing those attempts asked for happened.
    const listed = await httpRequest(mainOrigin, '/api/internal/sessions', {
      headers: { 'x-internal-service-key': TEST_KEY },
    });
    expect(
      listed.json<{ sessions: { sessionId: string }[] }>().sessions.map((each) => each.sessionId),
    ).toEqual([sessionId]);
  });

  test('stops and removes the session', async () => {
    const record = recordPage(page);
    page.on('dialog', (dialog) => void dialog.accept());
    await explainFailure(record, async () => {
      await row().getByRole('button', { name: 'Stop' }).click();
      await expect.poll(() => row().locator('.state').textContent(), { timeout: 30_000 }).toBe('exited');
      await row().getByRole('button', { name: 'Remove' }).click();
      await expect.poll(() => row().count(), { timeout: 20_000 }).toBe(0);
      await expect(docker(['inspect', `sandbox-session-${sessionId}`])).rejects.toThrow();
      expect(await page.isHidden('[data-testid=detail]')).toBe(true);
    });
  });

  test('signs out, and the old cookie opens nothing', async () => {
    const { context } = await (browser as Promise<HeadlessChromium>);
    const cookie = (await context.cookies(dashboard)).find((each) => each.name === 'sandbox_dashboard');
    if (cookie === undefined) throw new Error('not signed in');
    const headers = { cookie: `sandbox_dashboard=${cookie.value}` };
    const base = dashboard.replace(/\/$/, '');
    expect((await httpRequest(base, '/api/internal/sessions', { headers })).status).toBe(200);
    await page.click('[data-testid=logout]');
    await page.waitForSelector('#key');
    expect((await httpRequest(base, '/api/internal/sessions', { headers })).status).toBe(403);
  });
});
