// What a WebSocket client is told when its upgrade does not go through, against real sockets on loopback:
// an app that answers with a status is passed through (its status, headers and body, without its hop-by-hop
// fields, framed for the client, and the connection closed after it); an app that takes the connection and
// closes it is the 502 UPGRADE_FAILED, told apart from the locked "Failed to connect" of an app that is not
// listening at all.
import { once } from 'node:events';
import { connect, createServer as createTcpServer } from 'node:net';
import { beforeAll, describe, expect, it } from 'vitest';
import { cleanups, listen, startFront, until } from './front.js';
import { ENGINES, useEngine } from './helpers.js';

const upgradeHead =
  'GET /p/s/ws HTTP/1.1\r\nHost: front\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';

/** Sends the upgrade and collects the answer until the front closes the connection. */
async function upgrade(port: number): Promise<string> {
  const socket = connect(port, '127.0.0.1');
  cleanups.push(() => void socket.destroy());
  await once(socket, 'connect');
  let received = '';
  socket.on('data', (chunk: Buffer) => {
    received += chunk.toString('latin1');
  });
  socket.on('error', () => {});
  socket.write(upgradeHead);
  await until(() => socket.destroyed || socket.readableEnded, 5000);
  return received;
}

/** A TCP server that does `onRequest` with each connection once the upgrade request arrived. */
async function startApp(onRequest: (socket: import('node:net').Socket) => void) {
  const server = createTcpServer((socket) => {
    socket.on('error', () => {});
    socket.once('data', () => onRequest(socket));
  });
  const port = await listen(server);
  cleanups.push(() => void server.close());
  return port;
}

describe.each(ENGINES)('%s engine', (engine) => {
  beforeAll(() => useEngine(engine));

  it('passes an app that refuses the upgrade with a status on as it wrote it', async () => {
    const app = await startApp((socket) =>
      socket.end('HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n\r\nforbidden'),
    );
    const front = await startFront(app, {});
    const answer = await upgrade(front.port);
    expect(answer).toMatch(/^HTTP\/1\.1 403 Forbidden\r\n/);
    expect(answer).toContain('forbidden');
  });

  it('frames a chunked refusal for the client and closes the connection after it', async () => {
    const app = await startApp((socket) =>
      socket.end(
        'HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n' +
          'Transfer-Encoding: chunked\r\n\r\n9\r\nforbidden\r\n0\r\n\r\n',
      ),
    );
    const front = await startFront(app, {});
    const answer = await upgrade(front.port);
    const end = answer.indexOf('\r\n\r\n');
    const head = answer.slice(0, end);
    const body = answer.slice(end + 4);
    expect(head).toMatch(/^HTTP\/1\.1 403 Forbidden\r\n/);
    expect(head.toLowerCase()).toContain('transfer-encoding: chunked');
    expect(head.toLowerCase()).toContain('connection: close');
    expect(head.toLowerCase()).not.toContain('keep-alive: ');
    // Re-chunked: Node's client parser de-chunked what the app sent.
    expect(body).toBe('9\r\nforbidden\r\n0\r\n\r\n');
  });

  it('answers 502 UPGRADE_FAILED when the app takes the connection and closes it without an answer', async () => {
    const app = await startApp((socket) => socket.destroy());
    const front = await startFront(app, {});
    const answer = await upgrade(front.port);
    expect(answer).toMatch(/^HTTP\/1\.1 502 /);
    expect(answer).toContain('"code":"UPGRADE_FAILED"');
  });

  it('keeps the contract 502 UPSTREAM_CONNECT_FAILED when nothing listens', async () => {
    const closed = createTcpServer();
    const port = await listen(closed);
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const front = await startFront(port, {});
    const answer = await upgrade(front.port);
    expect(answer).toMatch(/^HTTP\/1\.1 502 /);
    expect(answer).toContain('"code":"UPSTREAM_CONNECT_FAILED"');
  });

  it('keeps the 504 for an app that takes the connection and never answers', async () => {
    const app = await startApp(() => {});
    const front = await startFront(app, { responseTimeoutMs: 300 });
    const answer = await upgrade(front.port);
    expect(answer).toMatch(/^HTTP\/1\.1 504 /);
    expect(answer).toContain('"code":"PROXY_TIMEOUT"');
  });
});
