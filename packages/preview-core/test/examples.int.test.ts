import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  removeCreatedContainers,
  startLocalTestServer,
  startSessionContainer,
  uniqueSessionId,
} from '@sandbox/test-fixtures';
import { afterAll, describe, expect, it } from 'vitest';
import { createStaticPreviewApp } from '../examples/custom-parts.js';
import { createAppServer } from '../examples/express-app.js';
import { createPreviewServer } from '../examples/node-http.js';

const KEY = 'examples-key';
const servers: Server[] = [];

async function listen(server: Server): Promise<string> {
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function registerAt(base: string, sessionId: string, port: number) {
  return fetch(`${base}/api/internal/sessions/${sessionId}/previews`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-internal-service-key': KEY },
    body: JSON.stringify({ port }),
  });
}

afterAll(async () => {
  for (const server of servers) {
    server.closeAllConnections();
    server.close();
  }
  await removeCreatedContainers();
});

describe('the README examples', () => {
  it('are quoted in the README exactly as they compile', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    for (const file of ['express-app.ts', 'node-http.ts', 'custom-parts.ts']) {
      const source = readFileSync(new URL(`../examples/${file}`, import.meta.url), 'utf8');
      expect(readme, `README quotes examples/${file}`).toContain(source.trim());
    }
  });

  it('(a) mounts the routes in an existing Express app, in front of a real container', async () => {
    const box = await startSessionContainer();
    const base = await listen(createAppServer(KEY));
    expect((await registerAt(base, box.sessionId, 3000)).status).toBe(201);
    const proxied = await fetch(`${base}/previews/${box.sessionId}/hello?x=1`);
    expect(((await proxied.json()) as { url: string }).url).toBe('/hello?x=1');
    expect(await (await fetch(`${base}/health`)).json()).toEqual({ ok: true });
    expect((await fetch(`${base}/elsewhere`)).status).toBe(404);
  });

  it('(b) serves the routes on a plain node:http server and leaves the rest to it', async () => {
    const box = await startSessionContainer();
    const base = await listen(createPreviewServer(KEY));
    expect((await registerAt(base, box.sessionId, 3000)).status).toBe(201);
    const proxied = await fetch(`${base}/internal-previews/proxy/${box.sessionId}/x`);
    expect(((await proxied.json()) as { url: string }).url).toBe('/x');
    expect(await (await fetch(`${base}/other`)).text()).toBe('my own route\n');
    const missing = await fetch(`${base}/previews/${uniqueSessionId()}/`);
    expect(missing.status).toBe(404);
  });

  it('(c) works with a custom registry and resolver, no Docker involved', async () => {
    const upstream = await startLocalTestServer();
    try {
      const base = await listen(createServer(createStaticPreviewApp({ local: '127.0.0.1' }, KEY)));
      expect((await registerAt(base, 'local', upstream.port)).status).toBe(201);
      const proxied = await fetch(`${base}/previews/local/from-custom`);
      expect(((await proxied.json()) as { url: string }).url).toBe('/from-custom');
      expect((await registerAt(base, 'unknown', upstream.port)).status).toBe(500);
    } finally {
      await upstream.close();
    }
  });
});
