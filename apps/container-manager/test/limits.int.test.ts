// The limits of issue 9 through the real app (configured by environment, as `pnpm start` reads it) in front
// of real containers: each limit answers with its contract row, and a slow client cannot starve others.
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { type SessionContainer, startSessionContainer } from '@sandbox/test-fixtures';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningContainerManager } from '../src/server.js';
import { register, send, startManager } from './harness.js';

let manager: RunningContainerManager;
let box: SessionContainer;
let port: number;

beforeAll(async () => {
  manager = await startManager({
    MAX_BODY_BYTES: '65536',
    MAX_CONNECTIONS_PER_SESSION: '3',
    MAX_HEADER_BYTES: '4096',
    MAX_HEADER_COUNT: '20',
    HEADERS_TIMEOUT_MS: '1000',
    REQUEST_TIMEOUT_MS: '3000',
  });
  port = Number(new URL(manager.url).port);
  box = await startSessionContainer();
  expect((await register(manager.url, box.sessionId, { port: 3000 })).status).toBe(201);
});
afterAll(async () => {
  await manager?.close();
  await box?.remove();
});

/** Raw bytes in, the raw answer until the server closes (or `untilMs`). */
function raw(bytes: string, untilMs = 5000): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ text, closed: false });
    }, untilMs);
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
    });
    socket.on('error', reject);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ text, closed: true });
    });
    socket.write(bytes, 'latin1');
  });
}

function bodyOf(text: string): Record<string, unknown> {
  return JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as Record<string, unknown>;
}

describe('request body (MAX_BODY_BYTES)', () => {
  it('refuses a declared length over the limit with 413 and closes the connection', async () => {
    const { text, closed } = await raw(
      `POST /previews/${box.sessionId}/up HTTP/1.1\r\nHost: t\r\nContent-Length: 65537\r\n\r\n`,
    );
    expect(text).toMatch(/^HTTP\/1\.1 413 Payload Too Large\r\n/);
    expect(text).toMatch(/\r\nConnection: close\r\n/i);
    expect(bodyOf(text)).toEqual({
      statusCode: 413,
      error: 'Payload Too Large',
      message: 'Request body must not exceed 65536 bytes',
      code: 'PAYLOAD_TOO_LARGE',
    });
    expect(closed).toBe(true);
  });

  it('refuses a chunked body that grows past the limit', async () => {
    const chunk = 'x'.repeat(16 * 1024);
    const chunks = Array.from({ length: 5 }, () => `${(16 * 1024).toString(16)}\r\n${chunk}\r\n`).join('');
    const { text } = await raw(
      `POST /previews/${box.sessionId}/up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n${chunks}0\r\n\r\n`,
    );
    expect(text).toMatch(/^HTTP\/1\.1 413 /);
    expect(bodyOf(text).code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('forwards a body at the limit whole', async () => {
    const body = Buffer.alloc(65536, 3);
    const reply = await send(manager.url, `/previews/${box.sessionId}/up`, { method: 'POST', body });
    expect(reply.status).toBe(200);
    expect(reply.json<{ bodyLength: number }>().bodyLength).toBe(65536);
  });
});

describe('connections per session (MAX_CONNECTIONS_PER_SESSION)', () => {
  it('answers 429 past the limit while the session is busy, and serves again once it is not', async () => {
    const slow = Array.from({ length: 3 }, () =>
      send(manager.url, `/previews/${box.sessionId}/__fixture/slow/1500`, {}),
    );
    await new Promise((resolve) => setTimeout(resolve, 500));
    const refused = await send(manager.url, `/previews/${box.sessionId}/now`);
    expect(refused.status).toBe(429);
    expect(refused.json()).toEqual({
      statusCode: 429,
      error: 'Too Many Requests',
      message: `Too many concurrent connections for session ${box.sessionId}`,
      code: 'TOO_MANY_CONNECTIONS',
    });
    expect((await Promise.all(slow)).map((reply) => reply.status)).toEqual([200, 200, 200]);
    expect((await send(manager.url, `/previews/${box.sessionId}/now`)).status).toBe(200);
  });
});

describe('pipelined requests', () => {
  it('hold no place once their client has left: each is forwarded only when it is answered next', async () => {
    // One slow request with ten pipelined behind it, then the client leaves. A waiting response is never
    // told that its connection died, so a place taken at arrival would never be given back.
    for (let round = 0; round < 2; round++) {
      const socket = connect(port, '127.0.0.1');
      socket.on('error', () => {});
      const get = (path: string) => `GET /previews/${box.sessionId}${path} HTTP/1.1\r\nHost: t\r\n\r\n`;
      socket.write(get('/__fixture/slow/300') + Array.from({ length: 10 }, () => get('/queued')).join(''));
      await new Promise((resolve) => setTimeout(resolve, 100));
      socket.destroy();
    }
    await new Promise((resolve) => setTimeout(resolve, 400));
    // All three places of the session are free again.
    const replies = await Promise.all(
      Array.from({ length: 3 }, () => send(manager.url, `/previews/${box.sessionId}/__fixture/slow/300`)),
    );
    expect(replies.map((reply) => reply.status)).toEqual([200, 200, 200]);
  });

  it('gives a pipelined Expect: 100-continue its 100 when its turn comes, before its answer', async () => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    let sent = false;
    const timer = setTimeout(() => socket.destroy(), 5000);
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      // A client that waits for the 100 before sending its body (without half-closing: Node's server
      // drops what is in flight when its client ends its side).
      if (text.includes('100 Continue') && !sent) {
        sent = true;
        socket.write('hello');
      }
      if (text.includes('"bodyLength"')) socket.destroy();
    });
    socket.write(
      `GET /previews/${box.sessionId}/__fixture/slow/200 HTTP/1.1\r\nHost: t\r\n\r\n` +
        `POST /previews/${box.sessionId}/up HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n`,
    );
    await once(socket, 'close');
    clearTimeout(timer);
    const heads = text.match(/HTTP\/1\.1 \d{3}/g);
    expect(heads).toEqual(['HTTP/1.1 200', 'HTTP/1.1 100', 'HTTP/1.1 200']);
    expect(text).toContain('"bodyLength":5');
  });
});

describe('connections the server answered itself', () => {
  it('are closed by the server even when the client keeps its side open (CONNECT, a refused upgrade)', async () => {
    const heads = [
      'CONNECT 127.0.0.1:2375 HTTP/1.1\r\nHost: 127.0.0.1:2375\r\n\r\n',
      `GET /previews/${box.sessionId}/ HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`,
    ];
    const tcpHandles = () =>
      process.getActiveResourcesInfo().filter((name) => name === 'TCPSocketWrap').length;
    for (const head of heads) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      const before = tcpHandles();
      const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
      let text = '';
      socket.on('data', (chunk: Buffer) => {
        text += chunk.toString('latin1');
      });
      socket.on('error', () => {});
      socket.write(head);
      await once(socket, 'end');
      expect(text).toMatch(/^HTTP\/1\.1 (404|400) /);
      // The client's side stays open (its handle counts); 1.5 s later the server's handle is gone.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      expect(tcpHandles()).toBe(before + 1);
      socket.destroy();
    }
  });

  it('handle a client error once, however many bad reads follow during a long answer', async () => {
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => {});
    socket.on('data', () => {});
    socket.write(
      `GET /previews/${box.sessionId}/__fixture/sse?count=10&interval=100 HTTP/1.1\r\nHost: t\r\n\r\n`,
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    for (let i = 0; i < 50; i++) {
      socket.write('\x00garbage\r\n');
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await once(socket, 'close');
    process.off('warning', onWarning);
    expect(warnings.filter((warning) => warning.name === 'MaxListenersExceededWarning')).toEqual([]);
  });
});

describe('request head (MAX_HEADER_BYTES, MAX_HEADER_COUNT)', () => {
  const contract431 = {
    statusCode: 431,
    error: 'Request Header Fields Too Large',
    message: 'Request header fields too large',
    code: 'HEADERS_TOO_LARGE',
  };

  it('answers 431 in JSON to a head over the size limit', async () => {
    const { text, closed } = await raw(
      `GET /previews/${box.sessionId}/ HTTP/1.1\r\nHost: t\r\nX-Big: ${'a'.repeat(5000)}\r\n\r\n`,
    );
    expect(text).toMatch(/^HTTP\/1\.1 431 Request Header Fields Too Large\r\n/);
    expect(bodyOf(text)).toEqual(contract431);
    expect(closed).toBe(true);
  });

  it('answers 431 to more header fields than allowed, instead of dropping the rest', async () => {
    const fields = Array.from({ length: 20 }, (_, i) => `X-F${i}: v\r\n`).join('');
    const { text, closed } = await raw(
      `GET /previews/${box.sessionId}/ HTTP/1.1\r\nHost: t\r\n${fields}\r\n`,
    );
    expect(text).toMatch(/^HTTP\/1\.1 431 /);
    expect(bodyOf(text)).toEqual(contract431);
    expect(closed).toBe(true);
  });

  it('forwards a request at the field limit', async () => {
    const headers = Object.fromEntries(Array.from({ length: 18 }, (_, i) => [`x-f${i}`, 'v']));
    // Node's client adds Host and Connection: 20 fields in all.
    const reply = await send(manager.url, `/previews/${box.sessionId}/`, { headers });
    expect(reply.status).toBe(200);
  });

  it('answers 400 MALFORMED_REQUEST in JSON to an HTTP/1.1 request without Host', async () => {
    const { text, closed } = await raw(`GET /previews/${box.sessionId}/ HTTP/1.1\r\nX-A: b\r\n\r\n`);
    expect(text).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(bodyOf(text).code).toBe('MALFORMED_REQUEST');
    expect(closed).toBe(true);
  });

  it('answers 400 MALFORMED_REQUEST in JSON to bytes that are not a request', async () => {
    const { text, closed } = await raw('GET / HTTP/1.1\r\nHost: t\r\nBad Header\r\n\r\n');
    expect(text).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(bodyOf(text)).toEqual({
      statusCode: 400,
      error: 'Bad Request',
      message: 'Malformed HTTP request',
      code: 'MALFORMED_REQUEST',
    });
    expect(closed).toBe(true);
  });
});

describe('slow clients (HEADERS_TIMEOUT_MS, REQUEST_TIMEOUT_MS)', () => {
  it('cuts slowloris heads with 408 while other clients are served at once', async () => {
    // 40 clients that send their head a byte every 200 ms, never finishing it.
    const sockets: Socket[] = [];
    const answers = Array.from({ length: 40 }, () => {
      const socket = connect(port, '127.0.0.1');
      sockets.push(socket);
      let text = '';
      socket.on('data', (chunk: Buffer) => {
        text += chunk.toString('latin1');
      });
      socket.on('error', () => {});
      const head = `GET /previews/${box.sessionId}/ HTTP/1.1\r\nHost: t\r\nX-Slow: ${'z'.repeat(100)}`;
      let at = 0;
      const drip = setInterval(() => {
        if (socket.destroyed || at >= head.length) return clearInterval(drip);
        socket.write(head[at++] ?? '');
      }, 200);
      const started = performance.now();
      return once(socket, 'close').then(() => {
        clearInterval(drip);
        return { text, afterMs: performance.now() - started };
      });
    });
    // Meanwhile, ordinary requests are answered quickly.
    for (let i = 0; i < 10; i++) {
      const started = performance.now();
      expect((await send(manager.url, `/previews/${box.sessionId}/ok`)).status).toBe(200);
      expect(performance.now() - started).toBeLessThan(500);
    }
    const results = await Promise.all(answers);
    for (const { text, afterMs } of results) {
      expect(text).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
      expect(bodyOf(text)).toEqual({
        statusCode: 408,
        error: 'Request Timeout',
        message: 'Request was not received in time',
        code: 'REQUEST_TIMEOUT',
      });
      // The deadline, plus at most one pass of the 1 s check.
      expect(afterMs).toBeLessThan(3500);
    }
    for (const socket of sockets) socket.destroy();
  });

  it('cuts a body that trickles in past the request timeout with 408', async () => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
    });
    socket.on('error', () => {});
    socket.write(`POST /previews/${box.sessionId}/up HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n`);
    const drip = setInterval(() => socket.write('x'), 100);
    await once(socket, 'close');
    clearInterval(drip);
    expect(text).toMatch(/^HTTP\/1\.1 408 /);
  });
});

describe('container addresses (UPSTREAM_NETWORKS)', () => {
  it('refuses a container outside the allowed networks with 500 CONTAINER_ADDRESS_REFUSED', async () => {
    const strict = await startManager({ UPSTREAM_NETWORKS: '10.0.0.0/8' });
    try {
      expect((await register(strict.url, box.sessionId, { port: 3000 })).status).toBe(201);
      const reply = await send(strict.url, `/previews/${box.sessionId}/`);
      expect(reply.status).toBe(500);
      expect(reply.json()).toEqual({
        statusCode: 500,
        error: 'Internal Server Error',
        message: `Container for session ${box.sessionId} has an address the proxy does not forward to`,
        code: 'CONTAINER_ADDRESS_REFUSED',
      });
    } finally {
      await strict.close();
    }
  });

  it('refuses to start with an invalid network entry, naming the variable', async () => {
    await expect(startManager({ UPSTREAM_NETWORKS: '10.0.0.0/40' })).rejects.toThrow(/UPSTREAM_NETWORKS/);
  });

  it('refuses to start with a head timeout longer than the request timeout', async () => {
    await expect(startManager({ HEADERS_TIMEOUT_MS: '5000', REQUEST_TIMEOUT_MS: '2000' })).rejects.toThrow(
      /HEADERS_TIMEOUT_MS/,
    );
  });
});
