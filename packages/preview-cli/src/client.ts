// A client of a container-manager's internal API, on the platform's fetch: sessions, previews, the request
// log and exec. Every answer that is not a success becomes a ManagerError carrying the contract's code; a
// manager that cannot be reached, a ManagerUnreachableError.

/** The contract's error body: `statusCode`, `error`, `message` and the stable `code`. */
export interface ContractErrorBody {
  statusCode: number;
  error: string;
  message: string;
  code?: string;
}

/** The manager answered with an error: its status and, when it sent the contract's JSON, its code. */
export class ManagerError extends Error {
  override readonly name = 'ManagerError';
  constructor(
    readonly status: number,
    readonly code: string | undefined,
    message: string,
  ) {
    super(message);
  }
}

/** No answer at all: nothing listening, a refused connection, a name that does not resolve. */
export class ManagerUnreachableError extends Error {
  override readonly name = 'ManagerUnreachableError';
  constructor(
    readonly url: string,
    options: { cause: unknown },
  ) {
    super(`cannot reach the manager at ${url}: ${describeCause(options.cause)}`, options);
  }
}

function describeCause(cause: unknown): string {
  // fetch's TypeError("fetch failed") hides the reason in its cause (ECONNREFUSED, ENOTFOUND...).
  const inner = (cause as { cause?: unknown })?.cause ?? cause;
  const code = (inner as { code?: unknown })?.code;
  const message = inner instanceof Error ? inner.message : String(inner);
  return typeof code === 'string' && !message.includes(code) ? `${code} ${message}` : message;
}

/** A port of a session, as the manager describes it. */
export interface SessionPort {
  port: number;
  stripPrefix: boolean;
  visibility: 'public' | 'private';
  registered: boolean;
  urls: { path: string | null; host: string | null };
}

/** A session, as the manager describes it. */
export interface Session {
  sessionId: string;
  containerName: string;
  image: string;
  state: string;
  running: boolean;
  createdAt: string;
  exitCode: number | null;
  ports: SessionPort[];
}

/** The body of a session's creation. */
export interface CreateSession {
  image: string;
  sessionId?: string;
  /** A number, or with the registration's `stripPrefix` (false: the app serves under its public base). */
  ports?: (number | { port: number; stripPrefix: boolean })[];
  env?: Record<string, string>;
  cmd?: string[];
}

/** A registered port of a session, as the previews listing gives it (origin-relative path URL). */
export interface PreviewPort {
  port: number;
  active: boolean;
  visibility: 'public' | 'private';
  urls: { path: string | null; host: string | null };
}

/**
 * One entry of a preview's request log (the server's `RequestLogEntry`, restated: this package depends on
 * nothing but Node, so that the command installs in a second).
 */
export interface LogEntry {
  seq: number;
  time: string;
  kind: 'http' | 'websocket';
  requestId: string;
  route?: string;
  port?: number;
  method: string;
  path: string;
  status: number;
  durationMs: number;
  bytesIn: number;
  bytesOut: number;
  closeCode?: number;
  aborted: boolean;
  error?: string;
}

/** One event of an exec's output. */
export type ExecEvent =
  | { type: 'stdout' | 'stderr'; data: string }
  | { type: 'exit'; exitCode: number | null; timedOut: boolean }
  | { type: 'error'; code: string; message: string };

/** What {@link ManagerClient.followLog} tells of a followed log. */
export interface LogFollower {
  entry(entry: LogEntry): void;
  /** Entries the manager skipped because this reader fell behind. */
  dropped?(count: number): void;
}

/** Options of {@link createManagerClient}. */
export interface ManagerClientOptions {
  /** The manager's origin, e.g. `http://localhost:4002`. */
  url: string;
  /** Its `INTERNAL_SERVICE_KEY`. */
  key: string;
  /** Default: the platform's `fetch`. */
  fetch?: typeof fetch;
}

/** The internal API of one container-manager. */
export interface ManagerClient {
  readonly url: string;
  createSession(body: CreateSession): Promise<Session>;
  listSessions(): Promise<Session[]>;
  removeSession(sessionId: string): Promise<{ sessionId: string; removed: true; ports: number[] }>;
  previews(
    sessionId: string,
  ): Promise<{ sessionId: string; activePort: number | null; previews: PreviewPort[] }>;
  log(sessionId: string, after?: number): Promise<LogEntry[]>;
  /** Follows the log until `signal` aborts (resolves) or the manager ends the stream (resolves). */
  followLog(sessionId: string, follower: LogFollower, signal?: AbortSignal): Promise<void>;
  /** Runs a command, telling `onEvent` of its output as it comes; resolves with its last event. */
  exec(sessionId: string, cmd: string[], onEvent: (event: ExecEvent) => void): Promise<ExecEvent | undefined>;
}

const API = '/api/internal';

function sessionPath(sessionId: string): string {
  return `${API}/sessions/${encodeURIComponent(sessionId)}`;
}

/** Lines of a streamed body, as they complete (the last one even without its newline). */
async function* linesOf(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let pending = '';
  for await (const chunk of body) {
    pending += decoder.decode(chunk, { stream: true });
    let end = pending.indexOf('\n');
    while (end !== -1) {
      yield pending.slice(0, end).replace(/\r$/, '');
      pending = pending.slice(end + 1);
      end = pending.indexOf('\n');
    }
  }
  pending += decoder.decode();
  if (pending !== '') yield pending;
}

/** A client of the manager at `url`, authenticated with `key`. */
export function createManagerClient({
  url,
  key,
  fetch: fetchImpl = fetch,
}: ManagerClientOptions): ManagerClient {
  const origin = url.replace(/\/+$/, '');

  async function call(
    method: string,
    path: string,
    init: { body?: unknown; accept?: string; signal?: AbortSignal } = {},
  ): Promise<Response> {
    const headers: Record<string, string> = {
      'x-internal-service-key': key,
      accept: init.accept ?? 'application/json',
    };
    if (init.body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await fetchImpl(`${origin}${path}`, {
        method,
        headers,
        ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
        ...(init.signal === undefined ? {} : { signal: init.signal }),
      });
    } catch (error) {
      if (init.signal?.aborted) throw error;
      throw new ManagerUnreachableError(origin, { cause: error });
    }
    if (res.ok) return res;
    const text = await res.text();
    let body: Partial<ContractErrorBody> | undefined;
    try {
      body = JSON.parse(text) as Partial<ContractErrorBody>;
    } catch {
      body = undefined;
    }
    const message =
      typeof body?.message === 'string' ? body.message : `${res.status} ${res.statusText}`.trim() || text;
    throw new ManagerError(res.status, typeof body?.code === 'string' ? body.code : undefined, message);
  }

  const json = async <T>(method: string, path: string, body?: unknown): Promise<T> =>
    (await (await call(method, path, body === undefined ? {} : { body })).json()) as T;

  return {
    url: origin,
    createSession: (body) => json('POST', `${API}/sessions`, body),
    listSessions: async () => (await json<{ sessions: Session[] }>('GET', `${API}/sessions`)).sessions,
    removeSession: (sessionId) => json('DELETE', sessionPath(sessionId)),
    previews: (sessionId) => json('GET', `${sessionPath(sessionId)}/previews`),
    log: async (sessionId, after = 0) =>
      (await json<{ entries: LogEntry[] }>('GET', `${sessionPath(sessionId)}/previews/log?after=${after}`))
        .entries,

    async followLog(sessionId, follower, signal) {
      // Server-Sent Events: fields up to a blank line; a field's one leading space is not its value's, and
      // the data lines of one event join with newlines.
      let event = 'message';
      let data: string[] = [];
      try {
        const res = await call('GET', `${sessionPath(sessionId)}/previews/log?follow=1`, {
          accept: 'text/event-stream',
          ...(signal === undefined ? {} : { signal }),
        });
        if (res.body === null) return;
        for await (const line of linesOf(res.body)) {
          if (line === '') {
            const text = data.join('\n');
            if (data.length > 0 && event === 'message') follower.entry(JSON.parse(text) as LogEntry);
            if (data.length > 0 && event === 'dropped')
              follower.dropped?.((JSON.parse(text) as { count: number }).count);
            event = 'message';
            data = [];
            continue;
          }
          const colon = line.indexOf(':');
          if (colon === 0) continue;
          const field = colon === -1 ? line : line.slice(0, colon);
          let value = colon === -1 ? '' : line.slice(colon + 1);
          if (value.startsWith(' ')) value = value.slice(1);
          if (field === 'event') event = value;
          else if (field === 'data') data.push(value);
        }
      } catch (error) {
        // Stopped by the caller, before or during the stream: the follow is over, as asked.
        if (!signal?.aborted) throw error;
      }
    },

    async exec(sessionId, cmd, onEvent) {
      const res = await call('POST', `${sessionPath(sessionId)}/exec`, {
        body: { cmd },
        accept: 'application/x-ndjson',
      });
      let last: ExecEvent | undefined;
      if (res.body === null) return undefined;
      for await (const line of linesOf(res.body)) {
        if (line.trim() === '') continue;
        last = JSON.parse(line) as ExecEvent;
        onEvent(last);
      }
      return last;
    },
  };
}
