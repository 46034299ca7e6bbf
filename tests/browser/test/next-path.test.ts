// A Next.js dev server on a path route, /previews/<id>/, with one setting: its basePath, from
// PREVIEW_BASE_PATH. The port is registered with `stripPrefix: false`, so the app receives the whole path
// (/previews/<id>/...) and serves its pages, its /_next assets and its HMR WebSocket under it, with no shim.
// Chromium opens the preview at 127.0.0.1 (no PREVIEW_DOMAIN): the page renders, hydrates, the HMR client
// connects through the proxy under the base, and Fast Refresh updates it in place.
import { docker, uniqueSessionId } from '@sandbox/test-fixtures';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { register, send, startManager } from '../../../apps/container-manager/test/harness.js';
import { FIXTURE_NEXT_IMAGE, NEXT_PORT, wsHandshake } from './next-support.js';
import {
  closeChromium,
  containerLogs,
  explainFailure,
  type HeadlessChromium,
  launchChromiumForTests,
  recordPage,
  runSessionContainer,
  waitForPreview,
} from './support.js';

type RunningManager = Awaited<ReturnType<typeof startManager>>;

/** GET `path` and the redirects after it (up to 5), as `<status> <path>` lines: a loop shows as a long chain. */
async function redirectChain(baseUrl: string, path: string): Promise<string[]> {
  const chain: string[] = [];
  let next: string | undefined = path;
  for (let hop = 0; next !== undefined && hop < 6; hop += 1) {
    const reply = await send(baseUrl, next);
    chain.push(`${reply.status} ${next}`);
    const location = reply.headers.location;
    next =
      reply.status >= 300 && reply.status < 400 && location
        ? new URL(location, `${baseUrl}${next}`).pathname
        : undefined;
  }
  return chain;
}

describe('a Next.js dev server behind /previews/<id>/, its basePath the one setting', () => {
  // Next must know its basePath before it starts, so the session id comes first.
  const sessionId = uniqueSessionId('nextpath');
  const base = `/previews/${sessionId}`;
  let browser: Promise<HeadlessChromium> | undefined;
  let manager: RunningManager | undefined;
  let containerId: string | undefined;
  /** What Next first answered for the page, `<status> <location>`, once it was up. */
  let firstAnswer = '';
  let firstAnswerMs = 0;

  beforeAll(async () => {
    // Awaited by the tests: without Chromium they fail, saying why.
    browser = launchChromiumForTests();
    manager = await startManager();
    const started = Date.now();
    containerId = await runSessionContainer(sessionId, FIXTURE_NEXT_IMAGE, {
      env: { PREVIEW_BASE_PATH: base },
    });
    // Without `stripPrefix: false` the app would receive /..., outside its basePath (a 404).
    const registered = await register(manager.url, sessionId, { port: NEXT_PORT, stripPrefix: false });
    expect(registered.status, registered.body.toString()).toBe(201);

    // Until Next listens the proxy answers 502; then whatever Next answers is for the tests to judge.
    const { status, headers } = await waitForPreview(manager.url, `${base}/`, {
      containerId,
      timeoutMs: 90_000,
      what: 'Next through the proxy',
      ready: (reply) => reply.status !== 502,
    });
    firstAnswer = `${status} ${String(headers.location ?? '')}`.trim();
    firstAnswerMs = Date.now() - started;
  });

  afterAll(async () => {
    await closeChromium(browser);
    await manager?.close();
    if (containerId !== undefined) await docker(['rm', '-f', containerId]);
  });

  test("the preview's URL is served, after at most Next's own redirect", async () => {
    if (manager === undefined) throw new Error('beforeAll did not finish');
    // Next serves its basePath root without a trailing slash (trailingSlash: false, its default) and
    // redirects /previews/<id>/ to /previews/<id>, where the proxy's own redirect of /previews/<id> to
    // /previews/<id>/ (so that relative links resolve inside a preview) must not send it back: the page is
    // served after at most that one redirect, not in a loop.
    expect(firstAnswer === '200' || firstAnswer === `308 ${base}`, `first answer: ${firstAnswer}`).toBe(true);
    const chain = await redirectChain(manager.url, `${base}/`);
    expect(chain.at(-1), chain.join(' -> ')).toMatch(/^200 /);
    expect(chain.length, chain.join(' -> ')).toBeLessThanOrEqual(2);
  });

  test("Next accepts its HMR WebSocket from the page's own origin, and still refuses another", async () => {
    if (manager === undefined) throw new Error('beforeAll did not finish');
    // Next 16 refuses its dev resources (/_next/*, the HMR WebSocket) to an Origin whose hostname is not
    // localhost, *.localhost or in allowedDevOrigins; it does not compare the Origin with Host. A path route's
    // page has the manager's origin, http://127.0.0.1:<port> here, which the browser sends as it is.
    const wsUrl = `${manager.url.replace('http', 'ws')}${base}/_next/hmr?id=proxy-test`;
    expect(
      await wsHandshake(wsUrl, { origin: manager.url }),
      `the HMR WebSocket with the page's own Origin, ${manager.url}`,
    ).toBe(101);
    // Another origin still meets Next's refusal: it writes "Unauthorized" on the socket, without an HTTP
    // status line, and the proxy reports the closed upgrade as its 502 UPGRADE_FAILED.
    expect(await wsHandshake(wsUrl, { origin: 'http://evil.example' })).toBe(502);
    const logs = await containerLogs(containerId ?? '');
    expect(logs).toContain(
      `Blocked cross-origin request to Next.js dev resource ${base}/_next/hmr from "evil.example"`,
    );
  });

  test('renders on the server, hydrates, and Fast Refresh keeps the state', async () => {
    if (manager === undefined || browser === undefined || containerId === undefined) {
      throw new Error('beforeAll did not finish');
    }
    const { context } = await browser;
    const id = containerId;
    const pageUrl = `${manager.url}${base}/`;
    const page = await context.newPage();
    const record = recordPage(page);
    const hmrFrames: string[] = [];
    page.on('websocket', (socket) => {
      socket.on('framereceived', (frame) => hmrFrames.push(String(frame.payload)));
    });
    const consoleErrors: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') consoleErrors.push(`${message.location().url}: ${message.text()}`);
    });
    try {
      await explainFailure(record, async () => {
        const loading = Date.now();
        const response = await page.goto(pageUrl);
        expect(response?.status()).toBe(200);
        const html = (await response?.text()) ?? '';
        expect(html).toContain('<p id="msg">hello from next</p>');
        expect(html).toMatch(/<button id="count" type="button">count: (<!-- -->)?0<\/button>/);
        // Every asset of the page is under the base (basePath), none at the manager's root.
        expect(html).toContain(`src="${base}/_next/static/chunks/`);
        expect(html).not.toContain('src="/_next/');

        await page.waitForSelector('[data-hydrated="yes"]', { timeout: 30_000 });
        const hydratedMs = Date.now() - loading;
        for (let i = 0; i < 3; i += 1) await page.click('#count');
        await expect.poll(() => page.textContent('#count'), { timeout: 10_000 }).toBe('count: 3');

        // The HMR client connects to the page's own host and port under the base, and Next accepts it.
        await expect
          .poll(() => hmrFrames.some((frame) => frame.includes('"turbopack-connected"')), { timeout: 20_000 })
          .toBe(true);
        const wsBase = `${manager?.url.replace('http', 'ws')}${base}/_next/hmr?id=`;
        const hmrSockets = record.webSockets.filter((url) => url.includes('/_next/hmr'));
        expect(hmrSockets.length).toBeGreaterThan(0);
        for (const url of hmrSockets) expect(url.startsWith(wsBase), url).toBe(true);

        await page.evaluate('window.__marker = 1');
        const editing = Date.now();
        await docker([
          'exec',
          id,
          'sed',
          '-i',
          's/hello from next/fast refresh under a path/',
          '/app/app/message.js',
        ]);
        await expect
          .poll(() => page.textContent('#msg'), { timeout: 30_000, interval: 50 })
          .toBe('fast refresh under a path');
        const refreshMs = Date.now() - editing;
        expect(await page.textContent('#count')).toBe('count: 3');
        expect(await page.evaluate('window.__marker')).toBe(1);

        // Nothing failed, nothing complained, but for two requests outside the preview, at the origin's
        // root, which the manager answers 404 (Chromium logs each as a console error): Chromium's own
        // /favicon.ico (the app has none either), and the fonts of Next's dev overlay, whose CSS asks for
        // /__nextjs_font/geist-*.woff2 at the root whatever the basePath (next-devtools in Next 16.5); the
        // overlay falls back to system fonts.
        const root = `${manager?.url}/`;
        const outside = (url: string) =>
          url.startsWith(root) &&
          /^(favicon\.ico|__nextjs_font\/geist-[a-z-]+\.woff2)$/.test(url.slice(root.length));
        const favicon = await send(manager?.url ?? '', '/favicon.ico');
        expect(favicon.status).toBe(404);
        const notFound = ': Failed to load resource: the server responded with a status of 404 (Not Found)';
        expect(
          consoleErrors.filter(
            (line) => !(line.endsWith(notFound) && outside(line.slice(0, -notFound.length))),
          ),
        ).toEqual([]);
        expect(record.console.filter((line) => /^(warning|uncaught|websocket)/.test(line))).toEqual([]);
        const requests = record.requests.filter(
          (line) => !/^(404|failed) /.test(line) || !outside(line.split(' ')[1] ?? ''),
        );
        // Next's own redirect of the entry URL to its basePath root (see the first test) is the one non-200.
        const served = requests.filter((line) => line !== `308 ${pageUrl}`);
        expect(served.filter((line) => !line.startsWith('200 ') && !line.startsWith('304 '))).toEqual([]);
        // And all of them were the app's, under the base.
        expect(served.filter((line) => !line.includes(` ${manager?.url}${base}`))).toEqual([]);

        console.log(
          `next-path: first answer ${firstAnswerMs} ms after docker run; page hydrated ${hydratedMs} ms` +
            ` after goto; Fast Refresh applied ${refreshMs} ms after the edit`,
        );
      });
    } finally {
      await page.close();
    }
  });
});
