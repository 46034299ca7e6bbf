// Clients that send or read slowly, or leave half a connection open, against real sockets on loopback:
// the body and send budgets (408 or a cut), the session's share of stalled requests, the deadline of a
// request waiting for a free upstream connection (503), and WebSocket tunnels that end together.
import { once } from 'node:events';
import { request } from 'node:http';
import { connect, createServer as createTcpServer, type Socket } from 'node:net';
import { beforeAll, describe, expect, it } from 'vitest';
import { cleanups, codeOf, listen, startFront, startUpstream, until } from './front.js';
import { ENGINES, exchange, useEngine } from './helpers.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A raw client socket that sent `head` (and optionally part of a body), with what it received so far. */
async function rawClient(port: number, head: string) {
  const socket = connect(port, '127.0.0.1');
  cleanups.push(() => void socket.destroy());
  await once(socket, 'connect');
  const state = { received: '', closedAt: 0 };
  socket.on('data', (chunk: Buffer) => {
    state.received += chunk.toString('latin1');
  });
  socket.on('error', () => {});
  socket.once('close', () => {
    state.closedAt = performance.now();
  });
  socket.write(head);
  return { socket, state };
}

const uploadHead = (path: string, length: number) =>
  `POST ${path} HTTP/1.1\r\nHost: front\r\nContent-Length: ${length}\r\n\r\n`;

/** A container that reads every upload to its end, then answers with the number of bytes it read. */
const countingUpstream = () =>
  startUpstream((req, res) => {
    let bytes = 0;
    req.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
    });
    req.on('end', () => res.end(String(bytes)));
  });

const upgradeHead = (path: string) =>
  `GET ${path} HTTP/1.1\r\nHost: front\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';

/**
 * A container that accepts every WebSocket upgrade and, like many servers, keeps its half of the connection
 * open when the client sends a FIN, with `ping` sending a frame every 100 ms (then a socket of it closes once
 * the proxy's end is gone: its next write is refused); with `finFirst` it sends its own FIN at once and
 * keeps reading.
 */
async function startHalfOpenUpstream({ finFirst = false, ping = false } = {}) {
  const sockets: Socket[] = [];
  const closed = { count: 0 };
  const server = createTcpServer({ allowHalfOpen: true }, (socket) => {
    sockets.push(socket);
    socket.on('error', () => {});
    socket.once('data', () => {
      socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
      if (finFirst) socket.end();
      else if (ping) {
        // An unmasked ping from the server every 100 ms, whatever the client did.
        const ping = setInterval(() => socket.write(Buffer.from([0x89, 0x00])), 100);
        socket.once('close', () => clearInterval(ping));
      }
    });
    socket.once('close', () => closed.count++);
  });
  const port = await listen(server);
  cleanups.push(() => {
    for (const socket of sockets) socket.destroy();
    server.close();
  });
  return { port, sockets, closed };
}

describe.each(ENGINES)('%s engine', (engine) => {
  beforeAll(() => useEngine(engine));

  describe('request bodies', () => {
    it('answers 408 to an upload that stalls once its budget is spent, and ends the container request', async () => {
      const upstream = await countingUpstream();
      const front = await startFront(upstream.port, { bodyTimeoutMs: 600 });
      const started = performance.now();
      const client = await rawClient(front.port, `${uploadHead('/p/s/up', 1000)}0123456789`);
      expect(await until(() => client.state.closedAt !== 0, 4000)).toBe(true);
      const elapsed = client.state.closedAt - started;
      expect(client.state.received).toMatch(/^HTTP\/1\.1 408 /);
      expect(client.state.received).toContain('"code":"REQUEST_TIMEOUT"');
      // 600 ms of budget, plus 10 bytes' worth (20 ms at 500 B/s), spent in 250 ms steps.
      expect(elapsed).toBeGreaterThanOrEqual(550);
      expect(elapsed).toBeLessThan(2000);
      expect(await until(() => upstream.seen.closed === 1)).toBe(true);
    });

    it('keeps an upload that trickles at the minimum rate or faster, however long it takes', async () => {
      const upstream = await countingUpstream();
      const front = await startFront(upstream.port, { bodyTimeoutMs: 400, minTransferRateBps: 500 });
      // 100 bytes every 100 ms: 1000 B/s for 1.5 s, well past the 400 ms budget.
      const res = await exchange(front.url, {
        method: 'POST',
        path: '/p/s/up',
        headers: { 'content-length': '1500' },
        body: async function* () {
          for (let i = 0; i < 15; i++) {
            yield Buffer.alloc(100, 0x61);
            await sleep(100);
          }
        },
      });
      expect(res.status).toBe(200);
      expect(res.body.toString()).toBe('1500');
    });

    it('cuts an upload that trickles below the minimum rate, later than one that stops', async () => {
      const upstream = await countingUpstream();
      const front = await startFront(upstream.port, { bodyTimeoutMs: 600, minTransferRateBps: 500 });
      const started = performance.now();
      const client = await rawClient(front.port, uploadHead('/p/s/up', 10_000));
      // 20 bytes every 200 ms: 100 B/s, a fifth of the rate. Each earns 40 ms back.
      const drip = setInterval(() => client.socket.write(Buffer.alloc(20, 0x62)), 200);
      cleanups.push(() => clearInterval(drip));
      expect(await until(() => client.state.closedAt !== 0, 5000)).toBe(true);
      const elapsed = client.state.closedAt - started;
      expect(client.state.received).toMatch(/^HTTP\/1\.1 408 /);
      // 600 ms spent 160 ms per second faster than earned: about 750 ms, never the 600 of a stall alone.
      expect(elapsed).toBeGreaterThanOrEqual(650);
      expect(elapsed).toBeLessThan(2500);
    });

    it('does not spend the budget while the container is not reading: that is the 504', async () => {
      const upstream = await startUpstream((req) => req.pause());
      const front = await startFront(upstream.port, { bodyTimeoutMs: 300, responseTimeoutMs: 1500 });
      // 8 MiB, far more than the socket buffers between here and the container hold.
      const res = await exchange(front.url, {
        method: 'POST',
        path: '/p/s/up',
        body: Buffer.alloc(8 * 1024 * 1024, 0x63),
      }).catch((error: Error) => error);
      if (res instanceof Error) throw res;
      expect(res.status).toBe(504);
      expect(codeOf(res.body)).toBe('PROXY_TIMEOUT');
    });
  });

  describe('responses', () => {
    it('cuts a client that does not read, and ends the container request', async () => {
      const upstream = await startUpstream((_req, res) => {
        const chunk = Buffer.alloc(64 * 1024, 0x64);
        let sent = 0;
        const pump = () => {
          while (sent < 64 * 1024 * 1024) {
            sent += chunk.length;
            if (!res.write(chunk)) return void res.once('drain', pump);
          }
          res.end();
        };
        pump();
      });
      const front = await startFront(upstream.port, { sendTimeoutMs: 500 });
      const started = performance.now();
      const client = await rawClient(front.port, 'GET /p/s/big HTTP/1.1\r\nHost: front\r\n\r\n');
      client.socket.pause();
      // The client's paused socket cannot see its end yet; the container's request can.
      expect(await until(() => upstream.seen.closed === 1, 5000)).toBe(true);
      expect(performance.now() - started).toBeGreaterThanOrEqual(450);
      expect(performance.now() - started).toBeLessThan(3000);
      client.socket.resume();
      expect(await until(() => client.state.closedAt !== 0, 5000)).toBe(true);
      expect(client.state.received.length).toBeLessThan(64 * 1024 * 1024);
    });

    it('keeps a client that reads in bursts within the budget', async () => {
      const size = 1024 * 1024;
      const upstream = await startUpstream((_req, res) => {
        res.writeHead(200, { 'content-length': size });
        res.end(Buffer.alloc(size, 0x65));
      });
      const front = await startFront(upstream.port, { sendTimeoutMs: 1000, minTransferRateBps: 64 * 1024 });
      const received = await new Promise<number>((resolve, reject) => {
        const req = request(`${front.url}/p/s/big`, (res) => {
          let bytes = 0;
          res.on('data', (chunk: Buffer) => {
            bytes += chunk.length;
            // Away for 100 ms after every chunk: seconds in all, far past the 1 s budget, each read
            // earning it back.
            res.pause();
            setTimeout(() => res.resume(), 100);
          });
          res.on('end', () => resolve(bytes));
          res.on('error', reject);
        });
        req.on('error', reject);
        req.end();
      });
      expect(received).toBe(size);
    });
  });

  describe("a session's share of stalled requests", () => {
    it('cuts the longest stalled beyond the share; other sessions and new requests go on', async () => {
      const upstream = await countingUpstream();
      const front = await startFront(upstream.port, { bodyTimeoutMs: 30_000, maxStalledPerSession: 2 });
      const stalled: Awaited<ReturnType<typeof rawClient>>[] = [];
      for (let i = 0; i < 5; i++) {
        stalled.push(await rawClient(front.port, `${uploadHead('/p/s/up', 100)}x`));
        await sleep(20);
      }
      const other = await rawClient(front.port, `${uploadHead('/p/other/up', 100)}x`);
      expect(await until(() => stalled.filter((c) => c.state.closedAt !== 0).length === 3, 4000)).toBe(true);
      // The first three, stalled longest, went; the two newest stay, and so does the other session's.
      expect(stalled.map((c) => c.state.closedAt !== 0)).toEqual([true, true, true, false, false]);
      for (const client of stalled.slice(0, 3)) expect(client.state.received).toMatch(/^HTTP\/1\.1 408 /);
      await sleep(600);
      expect(stalled.filter((c) => c.state.closedAt !== 0)).toHaveLength(3);
      expect(other.state.closedAt).toBe(0);
      const res = await exchange(front.url, { method: 'POST', path: '/p/s/up', body: Buffer.from('hello') });
      expect(res.status).toBe(200);
      expect(res.body.toString()).toBe('5');
    });
  });

  describe('waiting for an upstream connection', () => {
    it('answers 503 UPSTREAM_BUSY when no connection comes free within the queue timeout', async () => {
      const upstream = await startUpstream((req, res) => {
        if (req.url !== '/hang') res.end('ok');
      });
      const front = await startFront(upstream.port, {
        maxSockets: 1,
        queueTimeoutMs: 300,
        connectTimeoutMs: 200,
        responseTimeoutMs: 10_000,
      });
      const hanging = exchange(front.url, { path: '/p/s/hang' }).catch(() => undefined);
      await until(() => upstream.seen.requests === 1);
      const started = performance.now();
      const res = await exchange(front.url, { path: '/p/s/' });
      const elapsed = performance.now() - started;
      expect(res.status).toBe(503);
      expect(codeOf(res.body)).toBe('UPSTREAM_BUSY');
      expect(elapsed).toBeGreaterThanOrEqual(250);
      expect(elapsed).toBeLessThan(1000);
      // The given-up request never reaches the container once the connection frees.
      expect(upstream.seen.requests).toBe(1);
      void hanging;
    });
  });

  describe('WebSocket tunnels', () => {
    it('closes both sockets when the client leaves with a bare FIN and the container keeps its half', async () => {
      const upstream = await startHalfOpenUpstream({ ping: true });
      const front = await startFront(upstream.port, {
        tunnelHalfCloseTimeoutMs: 300,
        maxConnectionsPerSession: 1,
      });
      const client = await rawClient(front.port, upgradeHead('/p/s/ws'));
      expect(await until(() => client.state.received.startsWith('HTTP/1.1 101'))).toBe(true);
      const finAt = performance.now();
      client.socket.end();
      expect(await until(() => upstream.closed.count === 1, 3000)).toBe(true);
      expect(performance.now() - finAt).toBeGreaterThanOrEqual(250);
      expect(await until(() => client.state.closedAt !== 0, 3000)).toBe(true);
      // The session's only place is free again.
      const next = await rawClient(front.port, upgradeHead('/p/s/ws'));
      expect(await until(() => next.state.received.startsWith('HTTP/1.1 101'))).toBe(true);
    });

    it('closes both sockets when the container sends a FIN and the client keeps its half', async () => {
      const upstream = await startHalfOpenUpstream({ finFirst: true });
      const front = await startFront(upstream.port, { tunnelHalfCloseTimeoutMs: 300 });
      const client = await rawClient(front.port, upgradeHead('/p/s/ws'));
      expect(await until(() => client.state.closedAt !== 0, 3000)).toBe(true);
      expect(client.state.received).toMatch(/^HTTP\/1\.1 101 /);
      expect(await until(() => upstream.closed.count === 1, 3000)).toBe(true);
    });

    it('closes an idle tunnel after the idle timeout, and keeps a busy one', async () => {
      const upstream = await startHalfOpenUpstream();
      const front = await startFront(upstream.port, { tunnelIdleTimeoutMs: 400 });
      const idle = await rawClient(front.port, upgradeHead('/p/s/ws'));
      const busy = await rawClient(front.port, upgradeHead('/p/s/ws'));
      const ping = setInterval(() => busy.socket.write(Buffer.from([0x89, 0x80, 0, 0, 0, 0])), 100);
      cleanups.push(() => clearInterval(ping));
      expect(await until(() => idle.state.closedAt !== 0, 3000)).toBe(true);
      await sleep(600);
      expect(busy.state.closedAt).toBe(0);
    });

    it('leaves a half-closed tunnel open when told to (0)', async () => {
      const upstream = await startHalfOpenUpstream({ ping: true });
      const front = await startFront(upstream.port, { tunnelHalfCloseTimeoutMs: 0 });
      const client = await rawClient(front.port, upgradeHead('/p/s/ws'));
      expect(await until(() => client.state.received.startsWith('HTTP/1.1 101'))).toBe(true);
      client.socket.end();
      await sleep(800);
      expect(upstream.closed.count).toBe(0);
    });
  });
});
