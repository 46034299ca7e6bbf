// The classic Jupyter Notebook server (6.4), started as its CLI starts it (no allow_origin, no base_url, its
// random token), reached on a host route of a domain that is not localhost: 8888-{id}.preview.example.test,
// which Chromium resolves to loopback. Jupyter compares a request's Origin with its Host, on its REST API (a
// mismatch: 404) and on the kernel WebSocket (403); listening on every interface, it does not judge the Host
// itself. The proxy presents the page's own requests as addressed to localhost:8888 (Host and Origin alike), so
// the notebook renders, its kernel connects and runs a cell, while a page of another origin is still refused.
import { connectWebSocket, docker, uniqueSessionId, WebSocketHandshakeError } from '@sandbox/test-fixtures';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { register, send, startManager } from '../../../apps/container-manager/test/harness.js';
import {
  containerAddress,
  FIXTURE_JUPYTER_IMAGE,
  JUPYTER_PORT,
  openDemoNotebook,
  unexplainedConsole,
  unexplainedRequests,
  unexplainedServerWarnings,
  WIDGETS_PROBE,
  waitForJupyterToken,
} from './jupyter-support.js';
import {
  closeChromium,
  containerLogs,
  explainFailure,
  type HeadlessChromium,
  launchChromiumForTests,
  runSessionContainer,
  waitForPreview,
} from './support.js';

type RunningManager = Awaited<ReturnType<typeof startManager>>;

const DOMAIN = 'preview.example.test';
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** `name=value` of a Set-Cookie header, for a Cookie header. */
function cookiePairs(setCookie: string[] | undefined): string[] {
  return (setCookie ?? []).map((line) => line.split(';')[0] ?? '');
}

/** The status a WebSocket handshake got: 101 when it opened (then closed again), else the refusal's. */
async function handshakeStatus(url: string, headers: Record<string, string>): Promise<number> {
  try {
    const ws = await connectWebSocket(url, { headers, timeoutMs: 20_000 });
    ws.close(1000);
    return 101;
  } catch (error) {
    if (error instanceof WebSocketHandshakeError) return error.statusCode;
    throw error;
  }
}

describe('Jupyter Notebook on a host route of a real-looking domain, with no configuration', () => {
  const sessionId = uniqueSessionId('jupyterhost').toLowerCase();
  let browser: Promise<HeadlessChromium> | undefined;
  let manager: RunningManager | undefined;
  let containerId: string | undefined;
  let host = '';
  let token = '';

  beforeAll(async () => {
    browser = launchChromiumForTests([`--host-resolver-rules=MAP *.${DOMAIN} 127.0.0.1`]);
    manager = await startManager({ PREVIEW_DOMAIN: DOMAIN });
    host = `${JUPYTER_PORT}-${sessionId}.${DOMAIN}:${new URL(manager.url).port}`;
    containerId = await runSessionContainer(sessionId, FIXTURE_JUPYTER_IMAGE);
    const registered = await register(manager.url, sessionId, { port: JUPYTER_PORT });
    expect(registered.status, registered.body.toString()).toBe(201);
    token = await waitForJupyterToken(containerId);
    // /api answers its version without authentication once the server listens.
    await waitForPreview(manager.url, '/api', {
      containerId,
      headers: { host },
      what: 'Jupyter on its host route',
    });
  });

  afterAll(async () => {
    await closeChromium(browser);
    await manager?.close();
    if (containerId !== undefined) await docker(['rm', '-f', containerId]);
  });

  test('the notebook renders, its kernel connects through the proxy, and a cell prints 42', async () => {
    if (manager === undefined || browser === undefined || containerId === undefined) {
      throw new Error('beforeAll did not finish');
    }
    const { context } = await browser;
    const id = containerId;
    const { page, record, kernelId, timings } = await openDemoNotebook(
      context,
      `http://${host}/notebooks/demo.ipynb?token=${token}`,
    );
    try {
      await explainFailure(record, async () => {
        console.log(
          `jupyter host route: rendered in ${timings.rendered} ms, kernel ready at ${timings.kernelReady} ms, ` +
            `cell ran in ${timings.execution} ms`,
        );
        // The kernel's socket went through the proxy, at the page's own host.
        const channels = `ws://${host}/api/kernels/${kernelId}/channels?session_id=`;
        expect(record.webSockets.filter((url) => url.startsWith(channels))).toHaveLength(1);
        expect(record.webSockets.filter((url) => !url.startsWith(channels))).toEqual([]);
        // And Jupyter counts it: one connection to that kernel, seen from its side (polled: the socket of an
        // attempt openDemoNotebook gave up on closes a moment after its page).
        const connections = async () => {
          const kernel = await send(manager?.url ?? '', `/api/kernels/${kernelId}`, {
            headers: { host, authorization: `token ${token}` },
          });
          return { status: kernel.status, ...kernel.json<{ id: string; connections: number }>() };
        };
        await expect
          .poll(connections, { timeout: 10_000 })
          .toMatchObject({ status: 200, id: kernelId, connections: 1 });

        // Every request answered 2xx (the page's POST /api/sessions, its xsrf token accepted, is a 201) or 304,
        // but for the widgets probe, whose 404 is Jupyter's own: the container answers it alike when asked
        // directly.
        expect(record.requests).toContain(`201 http://${host}/api/sessions`);
        expect(unexplainedRequests(record)).toEqual([]);
        expect(unexplainedConsole(record)).toEqual([]);
        // Nor did Jupyter refuse or warn about anything the page sent.
        expect(unexplainedServerWarnings(await containerLogs(id))).toEqual([]);
        const probe = `${WIDGETS_PROBE}?token=${token}`;
        const direct = await send(`http://${await containerAddress(id)}:${JUPYTER_PORT}`, probe);
        const proxied = await send(manager?.url ?? '', probe, { headers: { host } });
        expect(direct.status).toBe(404);
        expect([proxied.status, proxied.headers['content-type']]).toEqual([
          404,
          direct.headers['content-type'],
        ]);

        // Jupyter saw the page's requests as addressed to localhost:8888: it named its login cookie after that.
        const cookies = await context.cookies(`http://${host}/`);
        expect(
          cookies.filter((cookie) => cookie.name.startsWith('username-')).map(({ name }) => name),
        ).toEqual(['username-localhost-8888']);
      });
    } finally {
      await page.close();
    }
  });

  test("a page of another origin meets Jupyter's refusals, over HTTP and on the kernel WebSocket", async () => {
    if (manager === undefined || containerId === undefined) throw new Error('beforeAll did not finish');
    const url = manager.url;
    const id = containerId;
    // What `run` resolved to and what Jupyter logged meanwhile, once that holds `expected` (Jupyter writes its
    // warning before it answers, but the line reaches docker a moment later) or after 10 s.
    const logSince = async <T>(expected: string, run: () => Promise<T>) => {
      const before = (await containerLogs(id)).length;
      const result = await run();
      const deadline = Date.now() + 10_000;
      let log = '';
      do {
        log = (await containerLogs(id)).slice(before);
        if (log.includes(expected)) break;
        await sleep(100);
      } while (Date.now() < deadline);
      return { result, log };
    };
    // A kernel of its own, made with the token, as a script would: token-authenticated requests skip Jupyter's
    // xsrf check (a POST with a token needs no _xsrf cookie).
    const created = await send(url, '/api/kernels', {
      method: 'POST',
      headers: { host, authorization: `token ${token}`, 'content-type': 'application/json' },
      body: '{}',
    });
    expect(created.status, created.body.toString()).toBe(201);
    const kernelId = created.json<{ id: string }>().id;
    const channels = `${url.replace('http', 'ws')}/api/kernels/${kernelId}/channels?session_id=t${Date.now()}`;
    // A token skips Jupyter's Origin check altogether (it is a credential no foreign page has), so every request
    // below authenticates with the login cookie, as a browser does. Jupyter names that cookie after the Host it
    // sees; a token-authenticated GET sets it.
    const login = async (origin: string | undefined) => {
      const headers: Record<string, string> = { host };
      if (origin !== undefined) headers.origin = origin;
      const reply = await send(url, `/api/status?token=${token}`, { headers });
      expect(reply.status, reply.body.toString()).toBe(200);
      const cookies = cookiePairs(reply.headers['set-cookie']).filter((pair) => pair.startsWith('username-'));
      expect(cookies).toHaveLength(1);
      return cookies[0] ?? '';
    };
    const own = `http://${host}`;
    const evil = 'http://evil.example';
    // Same-origin: Jupyter sees Host localhost:8888, so the cookie is username-localhost-8888.
    const ownCookie = await login(undefined);
    expect(ownCookie).toMatch(/^username-localhost-8888=/);
    // A cookie valid for the Host Jupyter sees on a foreign request, the public one (the proxy passes it as
    // sent): with it a foreign request is authenticated, so that only its Origin is left to refuse it.
    const publicCookie = await login(evil);
    expect(publicCookie).toMatch(/^username-\d+-jupyterhost-/);

    // The page's own origin, with its cookie: Jupyter sees Origin http://localhost:8888 and Host localhost:8888.
    expect(
      (await send(url, '/api/kernels', { headers: { host, origin: own, cookie: ownCookie } })).status,
    ).toBe(200);
    expect(await handshakeStatus(channels, { host, origin: own, cookie: ownCookie })).toBe(101);

    // Over HTTP, Jupyter's API answers a foreign Origin with 404.
    const apiRefusal = `Blocking Cross Origin API request for /api/kernels.  Origin: ${evil}, Host: ${host}`;
    const api = await logSince(apiRefusal, () =>
      send(url, '/api/kernels', { headers: { host, origin: evil, cookie: publicCookie } }),
    );
    expect(api.result).toMatchObject({ status: 404 });
    expect(api.log).toContain(apiRefusal);

    // On the kernel WebSocket, with 403; Jupyter checks the Origin once the cookie authenticated the request.
    const wsRefusal = `Blocking Cross Origin WebSocket Attempt.  Origin: ${evil}, Host: ${host}`;
    const ws = await logSince(wsRefusal, () =>
      handshakeStatus(channels, { host, origin: evil, cookie: publicCookie }),
    );
    expect(ws.result).toBe(403);
    expect(ws.log).toContain(wsRefusal);

    // What a browser on evil.example would send (were the cookie not SameSite-Lax by default): the page's own
    // cookie. Jupyter sees the public Host, looks for the cookie named after it, and finds no user.
    const noUser = "Couldn't authenticate WebSocket connection";
    const stolen = await logSince(noUser, () =>
      handshakeStatus(channels, { host, origin: evil, cookie: ownCookie }),
    );
    expect(stolen.result).toBe(403);
    expect(stolen.log).toContain(noUser);

    // And xsrf: a cookie-authenticated POST from the page's own origin still needs Jupyter's _xsrf token (the
    // notebook page sends it, see its 201 for POST /api/sessions in the test above).
    const noXsrf = "'_xsrf' argument missing from POST";
    const post = await logSince(noXsrf, () =>
      send(url, '/api/kernels', {
        method: 'POST',
        headers: { host, origin: own, cookie: ownCookie, 'content-type': 'application/json' },
        body: '{}',
      }),
    );
    expect(post.result).toMatchObject({ status: 403 });
    expect(post.log).toContain(noXsrf);
  });
});
