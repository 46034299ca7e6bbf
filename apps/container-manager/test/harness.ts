import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { ContainerResolver } from '@sandbox/preview-core';
import { httpRequest, type Reply } from '@sandbox/test-fixtures';
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
    // In-process servers share the test's stdout: only trouble is worth printing there.
    LOG_LEVEL: 'warn',
    ...env,
  });
  return startContainerManager(config, deps);
}

export type { Reply } from '@sandbox/test-fixtures';

/** One HTTP request with Node's client: the path is sent exactly as given. */
export function send(
  baseUrl: string,
  path: string,
  options: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {},
): Promise<Reply> {
  return httpRequest(baseUrl, path, options);
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

/** A generated body of `total` bytes (64 KiB chunks, each numbered), hashed as it is read. */
export function generatedBody(total: number) {
  const chunkSize = 64 * 1024;
  const seed = randomBytes(chunkSize);
  const hash = createHash('sha256');
  let produced = 0;
  let index = 0;
  const stream = new Readable({
    read() {
      if (produced >= total) {
        this.push(null);
        return;
      }
      const size = Math.min(chunkSize, total - produced);
      const chunk = Buffer.allocUnsafe(size);
      seed.copy(chunk, 0, 0, size);
      if (size >= 4) chunk.writeUInt32BE(index, 0);
      index += 1;
      produced += size;
      hash.update(chunk);
      this.push(chunk);
    },
  });
  return { stream, digest: () => hash.digest('hex') };
}
