// A page served by a session container (the fixture image's test server), loaded by headless Chromium through
// container-manager on both route prefixes. Its script, stylesheet, WebSocket and EventSource use URLs
// relative to the page, so they all go through the same prefix: the script must run, the WebSocket (an
// upgrade through the proxy) must echo text and binary, and the EventSource must get its events.
import {
  removeCreatedContainers,
  type SessionContainer,
  startSessionContainer,
} from '@sandbox/test-fixtures';
import type { Page } from 'playwright-core';
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

/** The page's DOM fields the test reads, by element id. */
const FIELDS = {
  script: 'script',
  location: 'location',
  wsState: 'ws-state',
  wsPath: 'ws-path',
  wsText: 'ws-text',
  wsBinary: 'ws-binary',
  sseState: 'sse-state',
  sse: 'sse',
} as const;

async function readPage(page: Page): Promise<Record<string, string | null>> {
  const entries = await Promise.all(
    Object.entries(FIELDS).map(async ([field, id]) => [field, await page.textContent(`#${id}`)] as const),
  );
  return Object.fromEntries(entries);
}

describe('a page with relative script, WebSocket and EventSource URLs, through the preview proxy', () => {
  let browser: Promise<HeadlessChromium> | undefined;
  let manager: RunningManager | undefined;
  let container: SessionContainer;

  beforeAll(async () => {
    // Awaited by each test: without Chromium every test fails, saying why.
    browser = launchChromiumForTests();
    manager = await startManager();
    container = await startSessionContainer();
    const registered = await register(manager.url, container.sessionId, { port: 3000 });
    expect(registered.status, registered.body.toString()).toBe(201);
  });

  afterAll(async () => {
    await closeChromium(browser);
    await manager?.close();
    await removeCreatedContainers();
  });

  test.each(['/previews', '/internal-previews/proxy'])(
    '%s/<id>/__fixture/page/index.html',
    async (prefix) => {
      if (manager === undefined || browser === undefined) throw new Error('beforeAll did not finish');
      const { context } = await browser;
      const sessionPrefix = `${prefix}/${container.sessionId}`;
      const page = await context.newPage();
      const record = recordPage(page);
      try {
        await explainFailure(record, async () => {
          const response = await page.goto(`${manager?.url}${sessionPrefix}/__fixture/page/index.html`);
          expect(response?.status()).toBe(200);

          await expect
            .poll(() => readPage(page), { timeout: 20_000, interval: 100 })
            .toEqual({
              script: 'app.js ran',
              location: `${sessionPrefix}/__fixture/page/index.html`,
              wsState: 'open',
              // The upgrade reached the container with the prefix stripped, like any other request.
              wsPath: '/__fixture/page/ws',
              wsText: 'text through the proxy',
              wsBinary: '0,1,2,127,128,253,254,255',
              sseState: 'done',
              sse: '0,1,2',
            });

          const origin = new URL(manager?.url ?? '').origin;
          expect(record.webSockets).toEqual([
            `${origin.replace(/^http/, 'ws')}${sessionPrefix}/__fixture/page/ws`,
          ]);
          // Every subresource came through the same prefix, and none failed.
          const underPrefix = (path: string) => `${origin}${sessionPrefix}${path}`;
          const sseUrl = underPrefix('/__fixture/sse?count=3&interval=50');
          expect(record.requests).toEqual(
            expect.arrayContaining([
              `200 ${underPrefix('/__fixture/page/app.js')}`,
              `200 ${underPrefix('/__fixture/page/page.css')}`,
              `200 ${sseUrl}`,
            ]),
          );
          // The page closes its EventSource on the last event, which may abort the stream before its end.
          const closedByPage = `failed ${sseUrl} (net::ERR_ABORTED)`;
          expect(
            record.requests.filter(
              (line) => !line.startsWith('200 ') && line.includes(sessionPrefix) && line !== closedByPage,
            ),
          ).toEqual([]);
          expect(
            record.console.filter((line) => line.startsWith('error') || line.startsWith('uncaught')),
          ).toEqual([]);
        });
      } finally {
        await page.close();
      }
    },
  );
});
