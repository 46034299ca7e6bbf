// A Next.js dev server started as create-next-app's `dev` script starts it (`next dev`, Turbopack, no
// allowedDevOrigins), reached on a host route of a domain that is not localhost:
// {port}-{id}.preview.example.test, which Chromium resolves to loopback. Next refuses cross-origin requests
// to its dev resources (/_next/*, the HMR WebSocket at /_next/hmr) unless the Origin's hostname is localhost
// or allow-listed; the proxy presents same-origin requests as coming from http://localhost:3000, so the page
// hydrates and Fast Refresh updates it in place with no configuration, while a page of another origin still
// meets Next's own refusal.
import { connectWebSocket, docker, uniqueSessionId, WebSocketHandshakeError } from '@sandbox/test-fixtures';
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

const DOMAIN = 'preview.example.test';

describe('a Next.js dev server on a host route of a real-looking domain, with no configuration', () => {
  // Host names are case-insensitive and the proxy lowercases them: the id must be lowercase to match.
  const sessionId = uniqueSessionId('nexthost').toLowerCase();
  let browser: Promise<HeadlessChromium> | undefined;
  let manager: RunningManager | undefined;
  let containerId: string | undefined;
  let host = '';
  /** A script of the page's, one of Next's dev resources (/_next/static/chunks/...), for the origin checks. */
  let chunkPath = '';
  let firstRenderMs = 0;

  beforeAll(async () => {
    browser = launchChromiumForTests([`--host-resolver-rules=MAP *.${DOMAIN} 127.0.0.1`]);
    manager = await startManager({ PREVIEW_DOMAIN: DOMAIN });
    host = `${NEXT_PORT}-${sessionId}.${DOMAIN}:${new URL(manager.url).port}`;
    const started = Date.now();
    containerId = await runSessionContainer(sessionId, FIXTURE_NEXT_IMAGE);
    const registered = await register(manager.url, sessionId, { port: NEXT_PORT });
    expect(registered.status, registered.body.toString()).toBe(201);
    // Next listens within a second, then compiles the page on its first request.
    const reply = await waitForPreview(manager.url, '/', {
      containerId,
      headers: { host },
      timeoutMs: 90_000,
      what: 'Next on its host route',
    });
    firstRenderMs = Date.now() - started;
    chunkPath = /src="(\/_next\/static\/chunks\/[^"]+\.js)"/.exec(reply.body.toString())?.[1] ?? '';
  });

  afterAll(async () => {
    await closeChromium(browser);
    await manager?.close();
    if (containerId !== undefined) await docker(['rm', '-f', containerId]);
  });

  test('renders on the server, hydrates, and Fast Refresh keeps the state', async () => {
    if (manager === undefined || browser === undefined || containerId === undefined) {
      throw new Error('beforeAll did not finish');
    }
    const { context } = await browser;
    const id = containerId;
    const pageUrl = `http://${host}/`;
    const page = await context.newPage();
    const record = recordPage(page);
    // What Next's HMR server sends: it says 'turbopack-connected' once the socket is open at its end.
    const hmrFrames: string[] = [];
    page.on('websocket', (socket) => {
      socket.on('framereceived', (frame) => hmrFrames.push(String(frame.payload)));
    });
    // Which URL each console error is about (recordPage keeps the text only).
    const consoleErrors: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') consoleErrors.push(`${message.location().url}: ${message.text()}`);
    });
    try {
      await explainFailure(record, async () => {
        const loading = Date.now();
        const response = await page.goto(pageUrl);
        expect(response?.status()).toBe(200);
        // Server-rendered: the counter and the message are in the HTML itself.
        const html = (await response?.text()) ?? '';
        expect(html).toContain('<p id="msg">hello from next</p>');
        expect(html).toMatch(/<button id="count" type="button">count: (<!-- -->)?0<\/button>/);

        // Hydrated: React's effect has run, and the button counts.
        await page.waitForSelector('[data-hydrated="yes"]', { timeout: 30_000 });
        const hydratedMs = Date.now() - loading;
        for (let i = 0; i < 3; i += 1) await page.click('#count');
        await expect.poll(() => page.textContent('#count'), { timeout: 10_000 }).toBe('count: 3');

        // The HMR client connects through the proxy, at the page's own host (not localhost:3000), and Next
        // accepted it: it said so on the socket.
        await expect
          .poll(() => hmrFrames.some((frame) => frame.includes('"turbopack-connected"')), { timeout: 20_000 })
          .toBe(true);
        const hmrSockets = record.webSockets.filter((url) => url.includes('/_next/hmr'));
        expect(hmrSockets.length).toBeGreaterThan(0);
        for (const url of hmrSockets) expect(url.startsWith(`ws://${host}/_next/hmr?id=`), url).toBe(true);

        // Fast Refresh: a new message.js re-renders in place; the counter keeps its state, the window its
        // marker (a reload would reset both).
        await page.evaluate('window.__marker = 1');
        const editing = Date.now();
        await docker([
          'exec',
          id,
          'sed',
          '-i',
          's/hello from next/fast refresh on a real domain/',
          '/app/app/message.js',
        ]);
        await expect
          .poll(() => page.textContent('#msg'), { timeout: 30_000, interval: 50 })
          .toBe('fast refresh on a real domain');
        const refreshMs = Date.now() - editing;
        expect(await page.textContent('#count')).toBe('count: 3');
        expect(await page.evaluate('window.__marker')).toBe(1);

        // Nothing failed, nothing complained. The one exception: the app has no favicon, and Chromium logs
        // the 404 for its own request for /favicon.ico as a console error. That 404 is Next's, as the
        // container answers it directly, not the proxy's (whose errors are JSON).
        const favicon = await send(manager?.url ?? '', '/favicon.ico', { headers: { host } });
        expect(favicon.status).toBe(404);
        expect(favicon.headers['content-type'] ?? '').not.toMatch(/json/);
        const ip = await docker(['inspect', '--format', '{{.NetworkSettings.IPAddress}}', id]);
        expect((await send(`http://${ip}:${NEXT_PORT}`, '/favicon.ico')).status).toBe(404);
        const faviconError = `http://${host}/favicon.ico: Failed to load resource: the server responded with a status of 404 (Not Found)`;
        expect(consoleErrors.filter((line) => line !== faviconError)).toEqual([]);
        expect(record.console.filter((line) => /^(warning|uncaught|websocket)/.test(line))).toEqual([]);
        expect(
          record.requests.filter((line) => !line.startsWith('200 ') && !line.startsWith('304 ')),
        ).toEqual([]);

        console.log(
          `next-host: first server render ${firstRenderMs} ms after docker run; page hydrated ${hydratedMs} ms` +
            ` after goto; Fast Refresh applied ${refreshMs} ms after the edit`,
        );
      });
    } finally {
      await page.close();
    }
  });

  test("a page of another origin still meets Next's refusal, over HTTP and for the HMR WebSocket", async () => {
    if (manager === undefined) throw new Error('beforeAll did not finish');
    expect(chunkPath).not.toBe('');
    // Next checks the Origin's hostname only (not its port or scheme, and not Host): localhost, *.localhost
    // and allowedDevOrigins pass. The proxy turns the page's own origin into http://localhost:3000.
    const own = { host, origin: `http://${host}` };
    const foreign = { host, origin: 'http://evil.example' };

    // A dev resource: served to the page's origin, 403 "Unauthorized" to another, and to an opaque one
    // (Origin: null, a sandboxed frame), which the proxy passes unchanged too.
    const served = await send(manager.url, chunkPath, { headers: own });
    expect(served.status).toBe(200);
    expect(served.headers['content-type'] ?? '').toMatch(/javascript/);
    for (const origin of ['http://evil.example', 'null']) {
      const refused = await send(manager.url, chunkPath, { headers: { host, origin } });
      expect(refused.status, origin).toBe(403);
      expect(refused.body.toString(), origin).toBe('Unauthorized');
    }
    // A <script src> on another site's page sends no Origin (so the proxy counts it as same-origin and
    // rewrites nothing); Next refuses it by its Sec-Fetch headers, and by the Referer's host.
    const scriptTag = await send(manager.url, chunkPath, {
      headers: {
        host,
        'sec-fetch-mode': 'no-cors',
        'sec-fetch-site': 'cross-site',
        'sec-fetch-dest': 'script',
        referer: 'http://evil.example/',
      },
    });
    expect(scriptTag.status).toBe(403);

    // The HMR WebSocket (/_next/hmr in Next 16; /_next/webpack-hmr is gone). From the page's origin it opens
    // and Next greets the client.
    const wsUrl = `${manager.url.replace('http', 'ws')}/_next/hmr?id=proxy-test`;
    const accepted = await connectWebSocket(wsUrl, { headers: own, timeoutMs: 10_000 });
    try {
      const greetings: string[] = [];
      for (let i = 0; i < 5 && !greetings.some((text) => text.includes('turbopack-connected')); i += 1) {
        const event = await accepted.next(10_000);
        if (event.type === 'text') greetings.push(event.text);
      }
      expect(
        greetings.some((text) => text.includes('"turbopack-connected"')),
        greetings.join('\n'),
      ).toBe(true);
    } finally {
      accepted.close(1000);
      accepted.destroy();
    }
    // From another origin Next writes the bare text "Unauthorized" on the socket (no HTTP status line) and
    // closes it: no 101, and the proxy reports the closed upgrade as its 502 UPGRADE_FAILED.
    const refused = await connectWebSocket(wsUrl, { headers: foreign, timeoutMs: 10_000 }).then(
      (ws) => {
        ws.destroy();
        return undefined;
      },
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(WebSocketHandshakeError);
    expect((refused as WebSocketHandshakeError).statusCode).toBe(502);
    expect((refused as WebSocketHandshakeError).body).toContain('UPGRADE_FAILED');

    // And what the rewrite is for: with it turned off, the page's own origin reaches Next as the browser sent
    // it, a hostname Next does not trust, and Next refuses the page its own dev resources.
    const plain = await startManager({ PREVIEW_DOMAIN: DOMAIN, HOST_ROUTE_LOCALHOST: 'false' });
    try {
      const plainHost = `${NEXT_PORT}-${sessionId}.${DOMAIN}:${new URL(plain.url).port}`;
      const registered = await register(plain.url, sessionId, { port: NEXT_PORT });
      expect(registered.status, registered.body.toString()).toBe(201);
      const headers = { host: plainHost, origin: `http://${plainHost}` };
      expect((await send(plain.url, chunkPath, { headers })).status).toBe(403);
      const plainWs = `${plain.url.replace('http', 'ws')}/_next/hmr?id=proxy-test`;
      expect(await wsHandshake(plainWs, headers)).toBe(502);
    } finally {
      await plain.close();
    }

    const logs = await containerLogs(containerId ?? '');
    expect(logs).toContain(
      'Blocked cross-origin request to Next.js dev resource /_next/hmr from "evil.example"',
    );
  });
});
