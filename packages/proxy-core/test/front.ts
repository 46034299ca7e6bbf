// A front server with the real proxy for the limit suites, an upstream that counts what it sees, and their
// clean-up after each test.
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, createServer as createTcpServer, Socket } from 'node:net';
import { isPreviewError } from '@sandbox/error-contract';
import { afterEach } from 'vitest';
import { createPreviewProxy, type PreviewProxyOptions, splitPreviewPath } from '../src/index.js';
import { engineUnderTest } from './helpers.js';

export const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

export async function listen(server: Server | ReturnType<typeof createTcpServer>): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

/** An upstream that records what it sees: requests, request bodies read, and closed requests. */
export async function startUpstream(handle: (req: IncomingMessage, res: ServerResponse) => void) {
  const seen = { requests: 0, closed: 0, bytes: 0 };
  const server = createServer((req, res) => {
    seen.requests++;
    req.once('close', () => seen.closed++);
    handle(req, res);
  });
  const port = await listen(server);
  cleanups.push(() => {
    server.closeAllConnections();
    server.close();
  });
  return { port, seen };
}

// A front server whose `/p/:session/*` route forwards with the real proxy; errors become `{status, code}`.
export async function startFront(port: number, options: PreviewProxyOptions) {
  const proxy = createPreviewProxy({ engine: engineUnderTest(), ...options });
  const answer = (error: unknown) => ({
    status: isPreviewError(error) ? error.status : 500,
    body: JSON.stringify({ code: isPreviewError(error) ? error.code : 'UNEXPECTED', message: String(error) }),
  });
  const server = createServer((req, res) => {
    const match = splitPreviewPath(req.url ?? '/', '/p');
    if (!match) return void res.writeHead(404).end();
    proxy.forward(
      req,
      res,
      {
        target: { host: '127.0.0.1', port },
        forwardPath: match.forwardPath,
        prefix: `/p/${match.rawSessionId}`,
        sessionId: match.rawSessionId,
      },
      (error) => {
        const { status, body } = answer(error);
        res.writeHead(status, { 'content-type': 'application/json' }).end(body);
      },
    );
  });
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    const match = splitPreviewPath(req.url ?? '/', '/p');
    if (!match) return void socket.destroy();
    proxy.forwardUpgrade(
      req,
      socket,
      head,
      {
        target: { host: '127.0.0.1', port },
        forwardPath: match.forwardPath,
        prefix: `/p/${match.rawSessionId}`,
        sessionId: match.rawSessionId,
      },
      (error) => {
        const { status, body } = answer(error);
        socket.end(
          `HTTP/1.1 ${status} X\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
        );
      },
    );
  });
  const frontPort = await listen(server);
  cleanups.push(() => {
    server.closeAllConnections();
    server.close();
  });
  return { url: `http://127.0.0.1:${frontPort}`, port: frontPort };
}

export const codeOf = (body: Buffer) => (JSON.parse(body.toString()) as { code: string }).code;
export const until = async (check: () => boolean, timeoutMs = 3000) => {
  const deadline = Date.now() + timeoutMs;
  while (!check() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  return check();
};
