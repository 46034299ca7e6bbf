import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { isPreviewError } from '@sandbox/error-contract';
import {
  createPreviewProxy,
  type PreviewProxyOptions,
  splitPreviewPath,
  type UpstreamEngine,
  type UpstreamTarget,
} from '../src/index.js';

/** Both HTTP clients towards containers: the suites that forward run once with each. */
export const ENGINES = ['native', 'undici'] as const satisfies readonly UpstreamEngine[];

let engine: UpstreamEngine = 'native';

/** Makes the front servers started from now on use `next` (called in each engine's `beforeAll`). */
export function useEngine(next: UpstreamEngine): void {
  engine = next;
}

/** The engine the front servers use now. */
export function engineUnderTest(): UpstreamEngine {
  return engine;
}

/** A front server whose `/p/:id/*` route forwards with the real proxy to a fixed target. */
export async function startFrontServer(
  target: () => UpstreamTarget,
  options: PreviewProxyOptions = {},
): Promise<{ url: string; port: number; server: Server; close(): Promise<void> }> {
  const proxy = createPreviewProxy({ engine, ...options });
  const server = createServer((req, res) => {
    const match = splitPreviewPath(req.url ?? '/', '/p');
    if (!match) {
      res.writeHead(404).end();
      return;
    }
    proxy.forward(
      req,
      res,
      { target: target(), forwardPath: match.forwardPath, prefix: `/p/${match.rawSessionId}` },
      (error) => {
        const status = isPreviewError(error) ? error.status : 500;
        const message = isPreviewError(error) ? error.message : 'unexpected';
        res
          .writeHead(status, { 'content-type': 'application/json' })
          .end(JSON.stringify({ status, message }));
      },
    );
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    server,
    async close() {
      server.closeAllConnections();
      server.close();
    },
  };
}

/** The result of one HTTP exchange. */
export interface Exchange {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** One request with Node's client (no fetch normalisation of the path). */
export function exchange(
  url: string,
  options: {
    method?: string;
    path: string;
    headers?: Record<string, string | string[]>;
    body?: Buffer | (() => AsyncIterable<Buffer>);
  },
): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const headers = { ...options.headers };
    // Node frames a DELETE/OPTIONS body by neither length nor chunks unless told: say the length.
    if (Buffer.isBuffer(options.body) && !headers['content-length'])
      headers['content-length'] = String(options.body.length);
    const req = request(`${url}${options.path}`, { method: options.method ?? 'GET', headers });
    req.path = options.path;
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
      );
    });
    const { body } = options;
    if (body === undefined) req.end();
    else if (Buffer.isBuffer(body)) req.end(body);
    else
      (async () => {
        for await (const chunk of body()) if (!req.write(chunk)) await once(req, 'drain');
        req.end();
      })().catch(reject);
  });
}

/** Sends raw bytes and collects the raw answer until the server closes or `untilMs` passes. */
export function rawExchange(port: number, bytes: string, untilMs = 1500): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let received = '';
    const timer = setTimeout(() => socket.destroy(), untilMs);
    socket.on('data', (chunk) => {
      received += chunk.toString('latin1');
    });
    socket.on('error', reject);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(received);
    });
    socket.write(bytes, 'latin1');
  });
}

/** sha256 hex of a buffer. */
export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}
