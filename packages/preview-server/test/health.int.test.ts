import { once } from 'node:events';
import { createServer, type IncomingMessage, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ReadinessCheck, withHealthEndpoints } from '../src/health.js';

// A real node:http server with the health endpoints in front of a listener that answers 299 "app".
let server: Server;
let base: string;
let dockerUp = true;
const docker: ReadinessCheck = {
  name: 'docker',
  check: () => (dockerUp ? { ready: true } : { ready: false, reason: 'connect ENOENT /var/run/docker.sock' }),
};

beforeAll(async () => {
  const app = withHealthEndpoints((_req, res) => res.writeHead(299).end('app'), {
    checks: [docker],
    previewDomain: 'preview.test',
  });
  server = createServer(app).listen(0, '127.0.0.1');
  await once(server, 'listening');
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => {
  server.close();
});

const get = (path: string, init: RequestInit = {}) => fetch(`${base}${path}`, init);

describe('health endpoints', () => {
  it('/healthz is 200 while the process serves', async () => {
    const res = await get('/healthz');
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  it('/readyz follows the checks and says what is not ready', async () => {
    expect(await (await get('/readyz?verbose=1')).json()).toEqual({
      status: 'ready',
      checks: { docker: { ready: true } },
    });
    dockerUp = false;
    const down = await get('/readyz');
    expect(down.status).toBe(503);
    expect(await down.json()).toEqual({
      status: 'not ready',
      checks: { docker: { ready: false, reason: 'connect ENOENT /var/run/docker.sock' } },
    });
    dockerUp = true;
    expect((await get('/readyz', { method: 'HEAD' })).status).toBe(200);
  });

  it('leaves other paths, other methods and preview hosts to the app', async () => {
    for (const [path, init] of [
      ['/healthz/x', {}],
      ['/previews/healthz', {}],
      ['/healthz', { method: 'POST' }],
    ] as const) {
      const res = await get(path, init);
      expect(res.status, path).toBe(299);
      expect(await res.text()).toBe('app');
    }
    // fetch cannot set Host; node:http can.
    const req = request(`${base}/readyz`, { headers: { host: '3000-abc.preview.test' } }).end();
    const [res] = (await once(req, 'response')) as [IncomingMessage];
    res.resume();
    expect(res.statusCode).toBe(299);
  });
});
