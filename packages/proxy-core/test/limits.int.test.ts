// The proxy's own limits, against real sockets on loopback: the response timeout (504) for HTTP and for
// upgrades, the request body limit (413) and the per-session connection limit (429).
import { request } from 'node:http';
import { createServer as createTcpServer, type Socket } from 'node:net';
import { beforeAll, describe, expect, it } from 'vitest';
import { cleanups, codeOf, listen, startFront, startUpstream, until } from './front.js';
import { ENGINES, exchange, rawExchange, useEngine } from './helpers.js';

describe.each(ENGINES)('%s engine', (engine) => {
  beforeAll(() => useEngine(engine));

  describe('response timeout', () => {
    it('answers 504 PROXY_TIMEOUT when the container never answers, and aborts its request', async () => {
      const upstream = await startUpstream(() => {});
      const front = await startFront(upstream.port, { responseTimeoutMs: 1000 });
      const started = performance.now();
      const res = await exchange(front.url, { path: '/p/s/hang' });
      const elapsed = performance.now() - started;
      expect(res.status).toBe(504);
      expect(codeOf(res.body)).toBe('PROXY_TIMEOUT');
      // undici's timers tick about every half second.
      expect(elapsed).toBeGreaterThanOrEqual(900);
      expect(elapsed).toBeLessThan(3000);
      expect(await until(() => upstream.seen.closed === 1)).toBe(true);
    });

    it('does not cut a response that started in time, however long it streams', async () => {
      const upstream = await startUpstream((_req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        let ticks = 0;
        const timer = setInterval(() => {
          res.write(`tick ${ticks}\n`);
          if (++ticks === 6) {
            clearInterval(timer);
            res.end();
          }
        }, 300);
      });
      const front = await startFront(upstream.port, { responseTimeoutMs: 1000 });
      const res = await exchange(front.url, { path: '/p/s/stream' });
      expect(res.status).toBe(200);
      expect(res.body.toString().trim().split('\n')).toHaveLength(6);
    });

    it('answers 504 when the container takes an upload but never reads it', async () => {
      const upstream = await startUpstream(() => {});
      const front = await startFront(upstream.port, { responseTimeoutMs: 1000 });
      const chunk = Buffer.alloc(64 * 1024, 1);
      const res = await new Promise<{ status: number; body: Buffer }>((resolve, reject) => {
        const req = request(`${front.url}/p/s/upload`, { method: 'POST' });
        req.on('response', (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (c: Buffer) => chunks.push(c));
          response.on('end', () =>
            resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks) }),
          );
        });
        req.on('error', reject);
        // 64 MiB offered, far more than the socket buffers hold: the writes stall once they are full.
        let sent = 0;
        const pump = () => {
          while (sent < 1024) {
            sent++;
            if (!req.write(chunk)) return void req.once('drain', pump);
          }
          req.end();
        };
        pump();
      });
      expect(res.status).toBe(504);
      expect(codeOf(res.body)).toBe('PROXY_TIMEOUT');
    });

    it('answers 504 when the container never answers a WebSocket upgrade', async () => {
      const sockets: Socket[] = [];
      // It reads (so that it sees the proxy hang up) but never answers.
      const silent = createTcpServer((socket) => {
        sockets.push(socket);
        socket.resume();
      });
      const port = await listen(silent);
      cleanups.push(() => {
        for (const socket of sockets) socket.destroy();
        silent.close();
      });
      const front = await startFront(port, { responseTimeoutMs: 800 });
      const raw = await rawExchange(
        front.port,
        'GET /p/s/ws HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
          'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
        4000,
      );
      expect(raw).toMatch(/^HTTP\/1\.1 504 /);
      expect(raw).toContain('PROXY_TIMEOUT');
      expect(await until(() => sockets.every((socket) => socket.destroyed))).toBe(true);
    });
  });

  describe('request body limit', () => {
    it('refuses a declared length over the limit with 413 before the container hears of it', async () => {
      const upstream = await startUpstream((_req, res) => res.end('ok'));
      const front = await startFront(upstream.port, { maxBodyBytes: 1000 });
      const res = await exchange(front.url, { method: 'POST', path: '/p/s/up', body: Buffer.alloc(1001) });
      expect(res.status).toBe(413);
      expect(codeOf(res.body)).toBe('PAYLOAD_TOO_LARGE');
      expect(upstream.seen.requests).toBe(0);
      const fits = await exchange(front.url, { method: 'POST', path: '/p/s/up', body: Buffer.alloc(1000) });
      expect(fits.status).toBe(200);
    });

    it('cuts a chunked body where it passes the limit, aborting the upstream request', async () => {
      const upstream = await startUpstream((req, res) => {
        req.resume();
        req.on('end', () => res.end('read it all'));
      });
      const front = await startFront(upstream.port, { maxBodyBytes: 100_000 });
      const res = await exchange(front.url, {
        method: 'POST',
        path: '/p/s/up',
        body: async function* () {
          for (let i = 0; i < 20; i++) yield Buffer.alloc(16 * 1024, 7);
        },
      });
      expect(res.status).toBe(413);
      expect(codeOf(res.body)).toBe('PAYLOAD_TOO_LARGE');
      expect(await until(() => upstream.seen.closed === 1)).toBe(true);
    });
  });

  describe('connections per session', () => {
    it('answers 429 past the limit, counts each session apart, and frees a place when a request ends', async () => {
      const held: import('node:http').ServerResponse[] = [];
      const upstream = await startUpstream((req, res) => {
        if (req.url === '/hold') held.push(res);
        else res.end('ok');
      });
      const front = await startFront(upstream.port, { maxConnectionsPerSession: 2 });
      const pending = [
        exchange(front.url, { path: '/p/a/hold' }),
        exchange(front.url, { path: '/p/a/hold' }),
      ];
      expect(await until(() => held.length === 2)).toBe(true);
      const refused = await exchange(front.url, { path: '/p/a/more' });
      expect(refused.status).toBe(429);
      expect(codeOf(refused.body)).toBe('TOO_MANY_CONNECTIONS');
      expect((await exchange(front.url, { path: '/p/b/other' })).status).toBe(200);
      for (const res of held) res.end('done');
      await Promise.all(pending);
      expect((await exchange(front.url, { path: '/p/a/again' })).status).toBe(200);
    });
  });
});
