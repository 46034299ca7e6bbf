// Shared by the browser tests: headless Debian Chromium driven by playwright-core, the Vite fixture image,
// and a record of what a page did for failure messages.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  docker,
  dockerLogs,
  httpRequest,
  type Reply,
  RUN_LABEL,
  SESSION_CONTAINER_PREFIX,
  TEST_LABEL,
  testRunId,
} from '@sandbox/test-fixtures';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { expect } from 'vitest';

const execFileAsync = promisify(execFile);

/** Debian's chromium (scripts/test-env.sh installs it); CHROMIUM_PATH overrides. Never a downloaded browser. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

/** The flags Debian's chromium needs to run headless as root here (shared/TESTING.md). */
const CHROMIUM_FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** A Vite dev server on port 5173 in /app, its public base from PREVIEW_BASE; built by build-vite-image.sh. */
export const FIXTURE_VITE_IMAGE = 'sandbox-fixture-vite:latest';
export const VITE_PORT = 5173;

const BUILD_VITE_SCRIPT = fileURLToPath(new URL('../../../fixtures/build-vite-image.sh', import.meta.url));

/**
 * Runs one of fixtures/build-*-image.sh: it builds its image when the inputs changed and is quick otherwise.
 * `timeoutMs` leaves room for a cold build (npm or apt on the host).
 */
export async function buildFixtureImage(script: string, timeoutMs: number): Promise<void> {
  try {
    await execFileAsync('bash', [script], { encoding: 'utf8', timeout: timeoutMs });
  } catch (error) {
    const stderr = (error as { stderr?: unknown }).stderr;
    const name = script.slice(script.lastIndexOf('/') + 1);
    throw new Error(
      `${name} failed: ${typeof stderr === 'string' && stderr ? stderr.trim() : String(error)}`,
      {
        cause: error,
      },
    );
  }
}

/** Builds sandbox-fixture-vite:latest when its inputs changed (quick otherwise). */
export function ensureViteImage(): Promise<void> {
  return buildFixtureImage(BUILD_VITE_SCRIPT, 5 * 60_000);
}

/**
 * Starts `image` as the session's container (`sandbox-session-<id>`, labelled for this run's clean-up),
 * `args` appended to its entrypoint; resolves to the container id.
 */
export function runSessionContainer(
  sessionId: string,
  image: string,
  { env = {}, args = [] }: { env?: Record<string, string>; args?: readonly string[] } = {},
): Promise<string> {
  const envArgs = Object.entries(env).flatMap(([name, value]) => ['-e', `${name}=${value}`]);
  return docker([
    'run',
    '-d',
    '--name',
    `${SESSION_CONTAINER_PREFIX}${sessionId}`,
    '--label',
    `${TEST_LABEL}=1`,
    '--label',
    `${RUN_LABEL}=${testRunId()}`,
    ...envArgs,
    image,
    ...args,
  ]);
}

/** A container's log so far, stdout and stderr (dev servers write warnings to stderr), for messages. */
export function containerLogs(id: string): Promise<string> {
  return dockerLogs(id).catch((error: unknown) => `(docker logs ${id} failed: ${String(error)})`);
}

/**
 * Asks `path` every 200 ms until `ready` says so (default: a 200), and resolves to that reply. Until the
 * dev server listens the proxy answers 502; a dev server takes seconds to start. Throws after `timeoutMs`
 * with the last answer and the container's log.
 */
export async function waitForPreview(
  baseUrl: string,
  path: string,
  {
    containerId,
    what,
    headers = {},
    timeoutMs = 60_000,
    ready = (reply) => reply.status === 200,
  }: {
    containerId: string;
    /** Names the app in the error: `Vite on its host route`, say. */
    what: string;
    headers?: Record<string, string>;
    timeoutMs?: number;
    ready?: (reply: Reply) => boolean;
  },
): Promise<Reply> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const reply = await httpRequest(baseUrl, path, { headers }).catch((error: unknown) => error);
    if (!(reply instanceof Error) && ready(reply as Reply)) return reply as Reply;
    last =
      reply instanceof Error
        ? reply.message
        : `${(reply as Reply).status} ${(reply as Reply).body.toString().slice(0, 200)}`;
    if (Date.now() > deadline) {
      const logs = await containerLogs(containerId);
      throw new Error(`${what} did not answer in ${timeoutMs / 1000} s (last: ${last}); logs: ${logs}`);
    }
    await new Promise<void>((resolve) => setTimeout(resolve, 200));
  }
}

/** A running headless Chromium with a fresh profile. */
export interface HeadlessChromium {
  readonly context: BrowserContext;
  /** Closes the browser and deletes its profile. */
  close(): Promise<void>;
}

/**
 * Launches Debian's chromium headless on a fresh --user-data-dir, with `extraArgs` after the usual flags
 * (`--host-resolver-rules=...`, say); throws (never skips) when it is missing.
 */
export async function launchChromium(extraArgs: readonly string[] = []): Promise<HeadlessChromium> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(
      `Chromium not found at ${CHROMIUM_PATH}. These tests need Debian's chromium: run bash scripts/test-env.sh ` +
        '(as root it installs it) or apt-get install -y chromium, or set CHROMIUM_PATH.',
    );
  }
  const userDataDir = mkdtempSync(join(tmpdir(), 'sandbox-browser-tests-'));
  const removeProfile = () => rmSync(userDataDir, { recursive: true, force: true });
  let context: BrowserContext;
  try {
    // A persistent context is how playwright takes an explicit --user-data-dir; it is new and empty here.
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: [...CHROMIUM_FLAGS, ...extraArgs],
      timeout: 60_000,
    });
  } catch (error) {
    removeProfile();
    throw error;
  }
  return {
    context,
    async close() {
      try {
        await context.close();
      } finally {
        removeProfile();
      }
    },
  };
}

/**
 * Starts launchChromium() without waiting; tests await the result. A missing Chromium so fails every test,
 * saying why, where a throwing beforeAll would leave them counted as skipped.
 */
export function launchChromiumForTests(extraArgs: readonly string[] = []): Promise<HeadlessChromium> {
  const launching = launchChromium(extraArgs);
  // Handled here so that it is not an unhandled rejection; each test awaiting it still sees the error.
  launching.catch(() => {});
  return launching;
}

/** Closes a browser from launchChromiumForTests, if it launched. */
export async function closeChromium(launching: Promise<HeadlessChromium> | undefined): Promise<void> {
  const browser = await launching?.catch(() => undefined);
  await browser?.close();
}

/** What a page logged, threw and requested, for failure messages. */
export interface PageRecord {
  /** Console messages and uncaught errors, in order. */
  readonly console: string[];
  /** `<status> <url>` of every response, failed requests as `failed <url> (<error>)`. */
  readonly requests: string[];
  /** URLs of the WebSockets the page opened. */
  readonly webSockets: string[];
  /** All of the above, for an error message. */
  describe(): string;
}

export function recordPage(page: Page): PageRecord {
  const record = {
    console: [] as string[],
    requests: [] as string[],
    webSockets: [] as string[],
    describe() {
      return [
        `console:\n  ${record.console.join('\n  ') || '(nothing)'}`,
        `requests:\n  ${record.requests.join('\n  ') || '(none)'}`,
        `websockets:\n  ${record.webSockets.join('\n  ') || '(none)'}`,
      ].join('\n');
    },
  };
  page.on('console', (message) => record.console.push(`${message.type()}: ${message.text()}`));
  page.on('pageerror', (error) => record.console.push(`uncaught: ${error.message}`));
  page.on('response', (response) => record.requests.push(`${response.status()} ${response.url()}`));
  page.on('requestfailed', (request) =>
    record.requests.push(`failed ${request.url()} (${request.failure()?.errorText ?? 'unknown'})`),
  );
  page.on('websocket', (socket) => {
    record.webSockets.push(socket.url());
    socket.on('socketerror', (error) => record.console.push(`websocket ${socket.url()} error: ${error}`));
  });
  return record;
}

/** Runs `check`; when it fails, adds what the page logged and requested to the error message. */
export async function explainFailure(record: PageRecord, check: () => Promise<void>): Promise<void> {
  try {
    await check();
  } catch (error) {
    if (error instanceof Error) error.message += `\n\nWhat the page did:\n${record.describe()}`;
    throw error;
  }
}

/**
 * Changes the Vite fixture's message module in its container, then waits until the page shows the new
 * message in place: HMR applied it, and a marker set before the change proves the document was not
 * reloaded.
 */
export async function expectViteHotUpdate(page: Page, containerId: string, message: string): Promise<void> {
  await page.evaluate('window.__marker = 1');
  await docker([
    'exec',
    containerId,
    'sh',
    '-c',
    `echo "export const message = '${message}';" > /app/message.js`,
  ]);
  await expect.poll(() => page.textContent('#msg'), { timeout: 30_000 }).toBe(message);
  expect(await page.evaluate('window.__marker')).toBe(1);
}
