// A Vite dev server started through the sessions API, with no other configuration: `POST
// /api/internal/sessions` from the fixture image, no cmd, its port 5173 asked for with stripPrefix: false.
// The API tells the container PREVIEW_BASE_PATH (`/previews/<id>/`), which the image's vite.config.js takes
// as its base; the port is registered once it accepts connections. Chromium then loads the app on the path
// route, every module under the base, and an edit inside the container updates the page through HMR.
import { docker, SESSION_CONTAINER_PREFIX, uniqueSessionId } from '@sandbox/test-fixtures';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type Reply, send, startManager, TEST_KEY } from '../../../apps/container-manager/test/harness.js';
import {
  closeChromium,
  containerLogs,
  expectViteHotUpdate,
  explainFailure,
  FIXTURE_VITE_IMAGE,
  type HeadlessChromium,
  launchChromiumForTests,
  recordPage,
  VITE_PORT,
} from './support.js';

type RunningManager = Awaited<ReturnType<typeof startManager>>;

/** The parts of the API's Session this test reads. */
interface Session {
  sessionId: string;
  containerName: string;
  containerId: string;
  managed: boolean;
  running: boolean;
  ports: {
    port: number;
    stripPrefix: boolean;
    visibility: string;
    registered: boolean;
    urls: { path: string | null; host: string | null };
  }[];
}

const REGISTER_TIMEOUT_MS = 60_000;

function sessionsApi(
  manager: RunningManager,
  path: string,
  { method = 'GET', body }: { method?: string; body?: unknown } = {},
): Promise<Reply> {
  const headers: Record<string, string> = { 'x-internal-service-key': TEST_KEY };
  if (body !== undefined) headers['content-type'] = 'application/json';
  return send(manager.url, `/api/internal/sessions${path}`, {
    method,
    headers,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

describe('a Vite session created through the sessions API, on /previews/<id>/ by itself', () => {
  const sessionId = uniqueSessionId('vitesession').toLowerCase();
  const base = `/previews/${sessionId}/`;
  const containerName = `${SESSION_CONTAINER_PREFIX}${sessionId}`;
  let browser: Promise<HeadlessChromium> | undefined;
  let manager: RunningManager | undefined;
  let created: Session | undefined;
  let session: Session | undefined;

  beforeAll(async () => {
    // Awaited by the test: without Chromium it fails, saying why.
    browser = launchChromiumForTests();
    manager = await startManager();
    const reply = await sessionsApi(manager, '', {
      method: 'POST',
      body: { sessionId, image: FIXTURE_VITE_IMAGE, ports: [{ port: VITE_PORT, stripPrefix: false }] },
    });
    expect(reply.status, reply.body.toString()).toBe(201);
    created = reply.json<Session>();

    // The port is registered once Vite accepts connections: until then the proxy has nothing to route to.
    const deadline = Date.now() + REGISTER_TIMEOUT_MS;
    let last = '';
    for (;;) {
      const current = await sessionsApi(manager, `/${sessionId}`);
      last = `${current.status} ${current.body.toString()}`;
      if (current.status === 200) {
        const view = current.json<Session>();
        if (view.ports.find((port) => port.port === VITE_PORT)?.registered === true) {
          session = view;
          break;
        }
      }
      if (Date.now() > deadline) {
        const logs = await containerLogs(containerName);
        throw new Error(
          `port ${VITE_PORT} of session ${sessionId} was not registered in ${REGISTER_TIMEOUT_MS / 1000} s ` +
            `(last GET: ${last}); docker logs ${containerName}: ${logs}`,
        );
      }
      await new Promise<void>((resolve) => setTimeout(resolve, 250));
    }
  });

  afterAll(async () => {
    try {
      if (manager !== undefined && created !== undefined) {
        const removed = await sessionsApi(manager, `/${sessionId}`, { method: 'DELETE' });
        expect(removed.status, removed.body.toString()).toBe(200);
      }
    } finally {
      await closeChromium(browser);
      await manager?.close();
      // Whatever happened above: the API's containers carry no test labels, so nothing else removes it.
      await docker(['rm', '-f', containerName]).catch(() => undefined);
    }
  });

  test('the page, its modules under the base and HMR, with no configuration but the API', async () => {
    if (manager === undefined || browser === undefined || created === undefined || session === undefined) {
      throw new Error('beforeAll did not finish');
    }
    expect(created).toMatchObject({ sessionId, containerName, managed: true, running: true });
    const [port] = session.ports;
    expect(port).toMatchObject({
      port: VITE_PORT,
      stripPrefix: false,
      visibility: 'public',
      registered: true,
    });
    // The API names the service's public origin (localhost and its configured port); the path is the base.
    const apiPath = port?.urls.path;
    expect(apiPath).toBeTypeOf('string');
    expect(new URL(apiPath ?? '').pathname).toBe(base);
    const origin = `http://localhost:${new URL(manager.url).port}`;
    const pageUrl = `${origin}${base}`;

    const { context } = await browser;
    const id = created.containerId;
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
        // The HMR client's WebSocket, at the page's own host and port under the base: through the proxy.
        const wsOrigin = origin.replace(/^http/, 'ws');
        expect(record.webSockets.some((url) => url.startsWith(`${wsOrigin}${base}?token=`))).toBe(true);

        // Vite took the base from the environment: every module (its client, the app's) under /previews/<id>/,
        // all served. Chromium's own /favicon.ico is outside the base and the app, so it is not counted.
        const others = record.requests.filter((line) => !line.endsWith('/favicon.ico'));
        expect(others.filter((line) => !line.startsWith('200 ') && !line.startsWith('304 '))).toEqual([]);
        const urls = others.map((line) => line.slice(line.indexOf(' ') + 1));
        expect(urls.filter((url) => !new URL(url).pathname.startsWith(base))).toEqual([]);
        for (const module of ['@vite/client', 'main.js', 'message.js']) {
          expect(
            urls.some((url) => new URL(url).pathname.startsWith(`${base}${module}`)),
            module,
          ).toBe(true);
        }

        await expectViteHotUpdate(page, id, 'hot update of a session');
        expect(page.url()).toBe(pageUrl);
      });
    } finally {
      await page.close();
    }
  });
});
