// The classic Jupyter Notebook server (6.4) behind /previews/<id>/ with its one setting, passed as its CLI takes
// it: `--NotebookApp.base_url=/previews/<id>/`, the port registered with stripPrefix: false so that Jupyter
// receives the whole path (and its Location and Set-Cookie pass as it wrote them). Chromium opens the notebook,
// the kernel's WebSocket connects back through the proxy under the base, and running the cell prints 42.
import { docker, uniqueSessionId } from '@sandbox/test-fixtures';
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

describe('Jupyter Notebook behind /previews/<id>/, with base_url its one setting', () => {
  // Jupyter must know its base before it starts, so the session id comes first.
  const sessionId = uniqueSessionId('jupyterpath');
  const base = `/previews/${sessionId}/`;
  let browser: Promise<HeadlessChromium> | undefined;
  let manager: RunningManager | undefined;
  let containerId: string | undefined;
  let token = '';

  beforeAll(async () => {
    browser = launchChromiumForTests();
    manager = await startManager();
    containerId = await runSessionContainer(sessionId, FIXTURE_JUPYTER_IMAGE, {
      args: [`--NotebookApp.base_url=${base}`],
    });
    const registered = await register(manager.url, sessionId, { port: JUPYTER_PORT, stripPrefix: false });
    expect(registered.status, registered.body.toString()).toBe(201);
    token = await waitForJupyterToken(containerId);
    // <base>api answers Jupyter's version without authentication once the server listens.
    await waitForPreview(manager.url, `${base}api`, { containerId, what: 'Jupyter through the proxy' });
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
    const url = manager.url;
    const { page, record, kernelId, timings } = await openDemoNotebook(
      context,
      `${url}${base}notebooks/demo.ipynb?token=${token}`,
    );
    try {
      await explainFailure(record, async () => {
        console.log(
          `jupyter path route: rendered in ${timings.rendered} ms, kernel ready at ${timings.kernelReady} ms, ` +
            `cell ran in ${timings.execution} ms`,
        );
        // The kernel's socket went through the proxy, at the page's own host and port, under the base.
        const channels = `${url.replace(/^http/, 'ws')}${base}api/kernels/${kernelId}/channels?session_id=`;
        expect(record.webSockets.filter((ws) => ws.startsWith(channels))).toHaveLength(1);
        expect(record.webSockets.filter((ws) => !ws.startsWith(channels))).toEqual([]);
        // And Jupyter counts it: one connection to that kernel, seen from its side (polled: the socket of an
        // attempt openDemoNotebook gave up on closes a moment after its page).
        const connections = async () => {
          const kernel = await send(url, `${base}api/kernels/${kernelId}`, {
            headers: { authorization: `token ${token}` },
          });
          return { status: kernel.status, ...kernel.json<{ id: string; connections: number }>() };
        };
        await expect
          .poll(connections, { timeout: 10_000 })
          .toMatchObject({ status: 200, id: kernelId, connections: 1 });

        // Every URL the page asked for is under the base: Jupyter built them all from base_url.
        expect(record.requests.filter((line) => !line.split(' ')[1]?.startsWith(`${url}${base}`))).toEqual(
          [],
        );
        // Every request answered 2xx (the page's POST <base>api/sessions, its xsrf token accepted, is a 201)
        // or 304, but for the widgets probe, whose 404 is Jupyter's own: the container answers it alike when
        // asked directly.
        expect(record.requests).toContain(`201 ${url}${base}api/sessions`);
        expect(unexplainedRequests(record)).toEqual([]);
        expect(unexplainedConsole(record)).toEqual([]);
        // Nor did Jupyter refuse or warn about anything the page sent.
        expect(unexplainedServerWarnings(await containerLogs(id), base)).toEqual([]);
        const probe = `${base}${WIDGETS_PROBE.slice(1)}?token=${token}`;
        const direct = await send(`http://${await containerAddress(id)}:${JUPYTER_PORT}`, probe);
        const proxied = await send(url, probe);
        expect(direct.status).toBe(404);
        expect([proxied.status, proxied.headers['content-type']]).toEqual([
          404,
          direct.headers['content-type'],
        ]);

        // The login cookie as Jupyter wrote it (Set-Cookie passes untouched), its path the base. Jupyter names it
        // after the Host it saw: localhost:8888, since a keep-the-prefix port on a loopback Host is presented
        // as localhost, as host routes do.
        const cookies = await context.cookies(`${url}${base}`);
        const login = cookies.filter((cookie) => cookie.name.startsWith('username-'));
        expect(login.map(({ name, path }) => ({ name, path }))).toEqual([
          { name: 'username-localhost-8888', path: base },
        ]);
      });
    } finally {
      await page.close();
    }
  });
});
