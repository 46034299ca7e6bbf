// The routes as a proxy-only consumer runs them (examples/proxy-only.ts, also the README's): a plain
// node:http server, its own resolver, real session containers. HTTP, a streamed upload, a WebSocket and the
// contract's errors, with no Express and no Docker client in the process's path.
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import {
  connectWebSocket,
  patternBytesSha256,
  removeCreatedContainers,
  type SessionContainer,
  startSessionContainer,
} from '@sandbox/test-fixtures';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProxyOnlyServer } from '../examples/proxy-only.js';

it('the README quotes examples/proxy-only.ts exactly as it compiles', () => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const source = readFileSync(new URL('../examples/proxy-only.ts', import.meta.url), 'utf8');
  expect(readme).toContain(source.trim());
});

describe('createPreviewRoutes on a plain node:http server', () => {
  let container: SessionContainer;
  let base: string;
  const addresses = new Map<string, string>();
  let close: () => Promise<void>;

  beforeAll(async () => {
    container = await startSessionContainer({ ports: [3000] });
    addresses.set(container.sessionId, container.ip ?? '');
    const { server, registry } = createProxyOnlyServer(addresses);
    await registry.register(container.sessionId, 3000);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    close = async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    };
  });
  afterAll(async () => {
    await close?.();
    await removeCreatedContainers();
  });

  it('forwards a request to the container, prefix stripped, query kept', async () => {
    const response = await fetch(`${base}/previews/${container.sessionId}/some/path?q=1`);
    expect(response.status).toBe(200);
    const echo = (await response.json()) as { url: string; headers: Record<string, string> };
    expect(echo.url).toBe('/some/path?q=1');
    expect(echo.headers['x-forwarded-prefix']).toBe(`/previews/${container.sessionId}`);
  });

  it('streams an upload of 8 MiB through to the container', async () => {
    const size = 8 * 1024 * 1024;
    // Byte i of the upload is i % 251, the pattern the fixture's hash helper knows.
    let offset = 0;
    const body = Readable.from(
      (function* () {
        while (offset < size) {
          const part = Buffer.alloc(64 * 1024);
          for (let i = 0; i < part.length; i++) part[i] = (offset + i) % 251;
          offset += part.length;
          yield part;
        }
      })(),
    );
    const response = await fetch(`${base}/previews/${container.sessionId}/upload`, {
      method: 'POST',
      body: Readable.toWeb(body) as ReadableStream,
      duplex: 'half',
    } as RequestInit);
    const echo = (await response.json()) as { bodyLength: number; bodySha256: string };
    expect(echo.bodyLength).toBe(size);
    expect(echo.bodySha256).toBe(patternBytesSha256(size));
  });

  it('tunnels a WebSocket', async () => {
    const ws = await connectWebSocket(`${base.replace('http', 'ws')}/previews/${container.sessionId}/socket`);
    expect((await ws.next()).type).toBe('text');
    ws.sendText('through the routes');
    expect(await ws.next()).toEqual({ type: 'text', text: 'through the routes' });
    ws.close(1000, 'done');
    expect(await ws.next()).toMatchObject({ type: 'close', code: 1000 });
    ws.destroy();
  });

  it("answers outside the routes and for unknown sessions with the contract's JSON", async () => {
    const outside = await fetch(`${base}/elsewhere`);
    expect(outside.status).toBe(404);
    expect(await outside.json()).toMatchObject({ code: 'ROUTE_NOT_FOUND', statusCode: 404 });
    const unregistered = await fetch(`${base}/previews/nobody-here/`);
    expect(unregistered.status).toBe(404);
    expect(await unregistered.json()).toMatchObject({ code: 'PREVIEW_NOT_REGISTERED' });
  });

  it("passes on the resolver's contract error for a registered session it does not know", async () => {
    const { server, registry } = createProxyOnlyServer(addresses);
    await registry.register('gone', 3000);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const response = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/previews/gone/`);
    expect(response.status).toBe(500);
    expect(await response.json()).toMatchObject({ code: 'CONTAINER_LOOKUP_FAILED' });
    server.close();
  });
});
