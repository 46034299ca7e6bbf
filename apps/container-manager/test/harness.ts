import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { request } from 'node:http';
import type { ContainerResolver } from '@sandbox/preview-core';
import { type ContainerManagerConfig, loadConfig } from '../src/config.js';
import {
  type ContainerManagerDeps,
  type RunningContainerManager,
  startContainerManager,
} from '../src/server.js';

/** The key tests authenticate with. */
export const TEST_KEY = 'test-internal-key-7f3a';

/** Starts a real container-manager on a free loopback port. */
export function startManager(
  env: Record<string, string> = {},
  deps: ContainerManagerDeps = {},
): Promise<RunningContainerManager> {
  const config: ContainerManagerConfig = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    INTERNAL_SERVICE_KEY: TEST_KEY,
    SHUTDOWN_GRACE_MS: '1000',
    ...env,
  });
  return startContainerManager(config, deps);
}

/** A response read whole. */
export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  /** The body parsed as JSON (throws when it is not). */
  json<T = Record<string, unknown>>(): T;
}

/** One HTTP request with Node's client: the path is sent exactly as given. */
export async function send(
  baseUrl: string,
  path: string,
  options: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {},
): Promise<Reply> {
  const headers = { ...options.headers };
  // Node frames a DELETE/OPTIONS body by neither length nor chunks unless told: say the length.
  if (options.body !== undefined && !headers['content-length']) {
    headers['content-length'] = String(Buffer.byteLength(options.body));
  }
  const req = request(`${baseUrl}/`, { method: options.method ?? 'GET', headers });
  req.path = path;
  req.end(options.body);
  const [res] = (await once(req, 'response')) as [import('node:http').IncomingMessage];
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  const body = Buffer.concat(chunks);
  return {
    status: res.statusCode ?? 0,
    headers: res.headers,
    body,
    json: <T>() => JSON.parse(body.toString('utf8')) as T,
  };
}

/** `POST /api/internal/sessions/:id/previews` with the test key and a JSON body. */
export function register(
  baseUrl: string,
  sessionId: string,
  body: unknown,
  key: string | null = TEST_KEY,
): Promise<Reply> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (key !== null) headers['x-internal-service-key'] = key;
  return send(baseUrl, `/api/internal/sessions/${sessionId}/previews`, {
    method: 'POST',
    headers,
    body: JSON.stringify(body),
  });
}

/** The contract's error body. */
export function errorBody(statusCode: number, error: string, message: string) {
  return { statusCode, error, message };
}

/** sha256 hex of a buffer. */
export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A resolver that counts how often it was asked, around a real one. */
export function countingResolver(inner: ContainerResolver): ContainerResolver & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    resolve(sessionId) {
      calls.push(sessionId);
      return inner.resolve(sessionId);
    },
  };
}

/** Retries `attempt` until `done` holds for its result or `timeoutMs` passes; returns the last result. */
export async function eventually<T>(
  attempt: () => Promise<T>,
  done: (value: T) => boolean,
  timeoutMs = 2000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await attempt();
    if (done(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
