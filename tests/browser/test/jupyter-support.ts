// Shared by the Jupyter browser tests: the fixture image (the classic Notebook server, Debian's 6.4), its
// container's random token, and driving demo.ipynb in the classic notebook UI.
import { fileURLToPath } from 'node:url';
import { docker } from '@sandbox/test-fixtures';
import type { BrowserContext, Page } from 'playwright-core';
import { buildFixtureImage, containerLogs, type PageRecord, recordPage } from './support.js';

/**
 * `jupyter notebook --ip=0.0.0.0 --port=8888 --no-browser --allow-root` in /work, which holds demo.ipynb (one
 * code cell, `print(6 * 7)`); arguments to `docker run` are appended (`--NotebookApp.base_url=/previews/<id>/`).
 * Built by build-jupyter-image.sh.
 */
export const FIXTURE_JUPYTER_IMAGE = 'sandbox-fixture-jupyter:latest';
export const JUPYTER_PORT = 8888;

const BUILD_JUPYTER_SCRIPT = fileURLToPath(
  new URL('../../../fixtures/build-jupyter-image.sh', import.meta.url),
);

/** Builds sandbox-fixture-jupyter:latest when its inputs changed (quick otherwise). */
export function ensureJupyterImage(): Promise<void> {
  // A cold build may first apt-get install the packages on the host.
  return buildFixtureImage(BUILD_JUPYTER_SCRIPT, 10 * 60_000);
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The random token the server prints once it listens (`http://127.0.0.1:8888/?token=<48 hex>`). */
export async function waitForJupyterToken(containerId: string, timeoutMs = 60_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const logs = await containerLogs(containerId);
    const token = /[?&]token=([0-9a-f]+)/.exec(logs)?.[1];
    if (token !== undefined) return token;
    if (Date.now() > deadline) {
      throw new Error(`Jupyter printed no token in ${timeoutMs / 1000} s; logs:\n${logs}`);
    }
    await sleep(250);
  }
}

/** What runDemoNotebook measured, in milliseconds from the start of the navigation. */
export interface NotebookTimings {
  /** The cell's source shown in its editor. */
  rendered: number;
  /** The kernel's WebSocket open and the kernel idle: it can run code. */
  kernelReady: number;
  /** From asking the notebook to run all cells until the output area shows 42. */
  execution: number;
}

/** The page's globals, as far as these tests use them (the package compiles without the DOM's types). */
declare const document: {
  querySelector(selector: string): { classList: { contains(name: string): boolean } } | null;
};
/** The classic notebook's globals, as far as these tests use them. */
declare const Jupyter: {
  notebook?: {
    kernel?: { id: string; is_connected(): boolean } | null;
    execute_all_cells(): void;
  };
};

/**
 * Opens demo.ipynb at `notebookUrl` (which carries `?token=`), waits for the kernel to be connected and idle,
 * runs the cell, and waits for `42` in its output area. Returns the kernel's id and the timings.
 */
export async function runDemoNotebook(
  page: Page,
  notebookUrl: string,
): Promise<{ kernelId: string; timings: NotebookTimings }> {
  const started = Date.now();
  const response = await page.goto(notebookUrl);
  if (response?.status() !== 200) {
    throw new Error(`GET ${notebookUrl} answered ${response?.status()}: ${await response?.text()}`);
  }
  // The cell's editor is CodeMirror, rendered once notebook.js loaded the notebook through the contents API.
  await page.locator('.cell .CodeMirror-code').getByText('print(6 * 7)').waitFor({ timeout: 30_000 });
  const rendered = Date.now() - started;

  // The notebook creates a session (POST /api/sessions), which starts a kernel; the page then opens the
  // kernel's channels WebSocket. Idle means that socket is open and the kernel answered kernel_info.
  await page.waitForFunction(
    () =>
      Jupyter.notebook?.kernel?.is_connected() === true &&
      document.querySelector('#kernel_indicator_icon')?.classList.contains('kernel_idle_icon') === true,
    undefined,
    { timeout: 60_000, polling: 100 },
  );
  const kernelReady = Date.now() - started;
  const kernelId = await page.evaluate(() => Jupyter.notebook?.kernel?.id ?? '');

  const executing = Date.now();
  await page.evaluate(() => Jupyter.notebook?.execute_all_cells());
  const output = page.locator('.cell .output_area .output_subarea');
  await output.getByText('42', { exact: true }).waitFor({ timeout: 30_000 });
  const execution = Date.now() - executing;
  // 42 and nothing else: no traceback, no second output.
  const outputs = (await output.allInnerTexts()).map((text) => text.trim());
  if (outputs.length !== 1 || outputs[0] !== '42') {
    throw new Error(`the cell's output area holds ${JSON.stringify(outputs)}, not just 42`);
  }
  return { kernelId, timings: { rendered, kernelReady, execution } };
}

/** A page that ran demo.ipynb, what it did, and what runDemoNotebook returned. */
export interface DemoNotebookRun {
  readonly page: Page;
  readonly record: PageRecord;
  readonly kernelId: string;
  readonly timings: NotebookTimings;
}

/** Whether Chromium aborted something of the page's because the machine's network changed. */
function sawNetworkChange(record: PageRecord): boolean {
  return [...record.requests, ...record.console].some((line) => line.includes('ERR_NETWORK_CHANGED'));
}

/**
 * runDemoNotebook on a new page of `context`. Chromium aborts whatever a page has in flight, loopback
 * included, with net::ERR_NETWORK_CHANGED whenever an interface comes or goes, and Docker adds and removes one
 * for every container started or removed on this machine (other test runs' too). Such an attempt says nothing
 * about the proxy, so it is run again on a new page, up to `attempts` times in all, and said so on stdout; the
 * caller then checks the last attempt's record as strictly as ever. Any other failure throws at once, with what
 * the page did. The caller closes the page.
 */
export async function openDemoNotebook(
  context: BrowserContext,
  notebookUrl: string,
  attempts = 3,
): Promise<DemoNotebookRun> {
  for (let attempt = 1; ; attempt += 1) {
    const page = await context.newPage();
    const record = recordPage(page);
    try {
      const { kernelId, timings } = await runDemoNotebook(page, notebookUrl);
      if (!sawNetworkChange(record) || attempt === attempts) return { page, record, kernelId, timings };
    } catch (error) {
      if (!sawNetworkChange(record) || attempt === attempts) {
        await page.close();
        if (error instanceof Error) error.message += `\n\nWhat the page did:\n${record.describe()}`;
        throw error;
      }
    }
    console.log(
      `attempt ${attempt} at ${notebookUrl} met a network change, trying again:\n${record.describe()}`,
    );
    await page.close();
  }
}

/** A container's address on its Docker network, to ask the app directly (not through the proxy). */
export async function containerAddress(id: string): Promise<string> {
  const stdout = await docker([
    'inspect',
    '--format',
    '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}',
    id,
  ]);
  const address = stdout.trim().split(' ')[0];
  if (!address) throw new Error(`container ${id} has no address`);
  return address;
}

/**
 * Notebook 6's page asks for ipywidgets' notebook extension on every load (a hard-coded probe in its main.js),
 * and the image has no ipywidgets: Jupyter answers 404 with an HTML page, which Chromium then refuses to run as
 * a script. The tests check that the same request straight to the container gets the same 404.
 */
export const WIDGETS_PROBE = '/nbextensions/widgets/notebook/js/extension.js';

/** Responses that were not 2xx or 304 and failed requests, but for the widgets probe's. */
export function unexplainedRequests(record: PageRecord): string[] {
  return record.requests.filter(
    (line) =>
      !/^(2\d\d|304) /.test(line) &&
      !(line.includes(`${WIDGETS_PROBE}?`) && /^(404 |failed .* \(net::ERR_ABORTED\)$)/.test(line)),
  );
}

/**
 * Console errors and warnings, uncaught errors and WebSocket errors, but for the two benign kinds the notebook
 * prints on every load here. The page's own progress lines (log, info, debug) are not trouble.
 */
export function unexplainedConsole(record: PageRecord): string[] {
  const probes404 = record.requests.filter((line) => line.startsWith('404 ') && line.includes(WIDGETS_PROBE));
  let resource404 = 0;
  return record.console.filter((line) => {
    if (!/^(error|warning|assert|uncaught|websocket)/.test(line)) return false;
    // The notebook binds a shortcut to an action its find-and-replace module registers a moment later.
    if (
      line ===
      'warning: actions jupyter-notebook:find-and-replace does not exist, still binding it in case it will be defined later...'
    ) {
      return false;
    }
    // The widgets probe (WIDGETS_PROBE): Chromium's line for the 404 (it names no URL: counted against the
    // probe's 404s, of which there is one), its refusal of the HTML as a script, and the notebook's warning.
    if (line === 'error: Failed to load resource: the server responded with a status of 404 (Not Found)') {
      resource404 += 1;
      return resource404 > probes404.length;
    }
    if (line.startsWith("error: Refused to execute script from '") && line.includes(`${WIDGETS_PROBE}?`)) {
      return false;
    }
    return (
      line !== 'warning: Widgets are not available.  Please install widgetsnbextension or ipywidgets 4.0'
    );
  });
}

/**
 * Jupyter's own warnings and errors ([W ...] and [E ...] lines of its log), but for two that every first load of
 * demo.ipynb causes: the notebook carries no signature yet (it has no output, so nothing in it is held back),
 * and the widgets probe's 404 (under `baseUrl`, Jupyter's base_url). A refused Host, Origin or xsrf token would show here (403, "Blocking ...").
 */
export function unexplainedServerWarnings(logs: string, baseUrl = '/'): string[] {
  return logs
    .split('\n')
    .filter((line) => /^\[[WE] /.test(line))
    .filter(
      (line) =>
        !/NotebookApp\] Notebook demo\.ipynb is not trusted$/.test(line) &&
        !line.includes(`NotebookApp] 404 GET ${baseUrl}${WIDGETS_PROBE.slice(1)}?`),
    );
}
