// Helpers of the sessions suites: the API with the test key, exec output read whole, and the removal of
// every session a suite created through the API (those carry no test labels the fixtures could find).
import { docker } from '@sandbox/test-fixtures';
import { type Reply, send, TEST_KEY } from './harness.js';

/** A session as the API describes it (the fields the tests read). */
export interface SessionBody {
  sessionId: string;
  containerId: string;
  state: string;
  running: boolean;
  managed: boolean;
  exitCode: number | null;
  ports: Array<{
    port: number;
    stripPrefix: boolean;
    visibility: string;
    registered: boolean;
    urls: { path: string | null; host: string | null };
  }>;
}

/** The sessions API of a manager, authenticated. */
export function sessionApi(baseUrl: string) {
  const raw = (method: string, path: string, body?: string, contentType?: string): Promise<Reply> =>
    send(baseUrl, path, {
      method,
      headers: {
        'x-internal-service-key': TEST_KEY,
        ...(contentType === undefined ? {} : { 'content-type': contentType }),
      },
      ...(body === undefined ? {} : { body }),
    });
  const get = (path: string) => raw('GET', path);
  return {
    raw,
    get,
    post: (path: string, body?: unknown) =>
      raw('POST', path, body === undefined ? undefined : JSON.stringify(body), 'application/json'),
    delete: (path: string) => raw('DELETE', path),
    create: (body: unknown) =>
      raw('POST', '/api/internal/sessions', JSON.stringify(body), 'application/json'),
    /** Polls the session until `count` of its ports are registered (or fails, saying what it saw). */
    async waitRegistered(sessionId: string, count = 1, timeoutMs = 30_000): Promise<SessionBody> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const session = (await get(`/api/internal/sessions/${sessionId}`)).json<SessionBody>();
        if (session.ports.filter((port) => port.registered).length >= count) return session;
        if (Date.now() > deadline) throw new Error(`ports never registered: ${JSON.stringify(session)}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    },
  };
}

/** One event of an exec's NDJSON stream. */
export type ExecLine =
  | { type: 'stdout' | 'stderr'; data: string }
  | { type: 'exit'; exitCode: number | null; timedOut: boolean }
  | { type: 'error'; code: string; message: string };

/** Runs a command through the API and reads its whole output. */
export async function execOutput(
  baseUrl: string,
  sessionId: string,
  cmd: string[],
  options: Record<string, unknown> = {},
): Promise<{ stdout: string; stderr: string; exit: ExecLine | undefined; lines: ExecLine[] }> {
  const reply = await sessionApi(baseUrl).post(`/api/internal/sessions/${sessionId}/exec`, {
    cmd,
    ...options,
  });
  if (reply.status !== 200) throw new Error(`exec answered ${reply.status}: ${reply.body.toString()}`);
  const lines = reply.body
    .toString('utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as ExecLine);
  const text = (type: 'stdout' | 'stderr') =>
    lines.map((line) => (line.type === type ? line.data : '')).join('');
  return { stdout: text('stdout'), stderr: text('stderr'), exit: lines.at(-1), lines };
}

/** Tracks session ids created through the API, to remove their containers at the end. */
export function createdSessions() {
  const ids = new Set<string>();
  return {
    track(sessionId: string): string {
      ids.add(sessionId);
      return sessionId;
    },
    async removeAll(): Promise<void> {
      await Promise.all(
        [...ids].map((sessionId) => docker(['rm', '-f', `sandbox-session-${sessionId}`]).catch(() => {})),
      );
    },
  };
}
