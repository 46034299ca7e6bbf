// Raw clients for attacks.int.test.ts: slow uploads, slow readers, WebSockets that leave with a bare FIN,
// and what the tests read of the manager process from outside (its fds, its sockets in /proc/net/tcp).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { type IncomingMessage, request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';

/** Open file descriptors of a process (/proc/<pid>/fd). */
export function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/**
 * The kernel's state (hex, as /proc/net/tcp writes it: 01 established, 04 FIN-WAIT-1, 08 CLOSE-WAIT...)
 * of the server's end of each loopback connection from one of `clientPorts` to `serverPort`. A client
 * port missing from the map has no server end left at all.
 */
export function serverEndStates(serverPort: number, clientPorts: Iterable<number>): Map<number, string> {
  const wanted = new Set(clientPorts);
  const states = new Map<number, string>();
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    const [local, remote, state] = [fields[1], fields[2], fields[3]];
    if (local === undefined || remote === undefined || state === undefined) continue;
    if (Number.parseInt(local.split(':')[1] ?? '', 16) !== serverPort) continue;
    const clientPort = Number.parseInt(remote.split(':')[1] ?? '', 16);
    if (wanted.has(clientPort)) states.set(clientPort, state);
  }
  return states;
}

export const TCP_ESTABLISHED = '01';

/** What {@link watchServerEnds} saw of the server's end of one connection. */
export interface ServerEnd {
  /** The last time its send queue (bytes the server wrote that the client has not taken) changed. */
  lastSendAt: number;
  /** The first time it was seen not established (closed by the server); undefined while it is. */
  closedAt: number | undefined;
  maxSendQueue: number;
}

/**
 * Polls /proc/net/tcp every `intervalMs` for the server's ends of connections from `clientPorts` to
 * `serverPort`: when each last moved data and when the server closed it (performance.now() times). A slow
 * reader's deadline runs from its last move on, as the proxy only counts time spent waiting on the client.
 */
export function watchServerEnds(
  serverPort: number,
  clientPorts: readonly number[],
  intervalMs = 100,
): { ends: Map<number, ServerEnd>; held(): number; stop(): void } {
  const ends = new Map<number, ServerEnd>();
  const now = performance.now();
  for (const port of clientPorts) ends.set(port, { lastSendAt: now, closedAt: undefined, maxSendQueue: 0 });
  const queues = new Map<number, number>();
  const poll = () => {
    const at = performance.now();
    const established = new Set<number>();
    for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      const [local, remote, state, queue] = [fields[1], fields[2], fields[3], fields[4]];
      if (local === undefined || remote === undefined || queue === undefined) continue;
      if (state !== TCP_ESTABLISHED || Number.parseInt(local.split(':')[1] ?? '', 16) !== serverPort)
        continue;
      const clientPort = Number.parseInt(remote.split(':')[1] ?? '', 16);
      const end = ends.get(clientPort);
      if (end === undefined) continue;
      established.add(clientPort);
      const sendQueue = Number.parseInt(queue.split(':')[0] ?? '', 16);
      if (queues.get(clientPort) !== sendQueue) {
        queues.set(clientPort, sendQueue);
        end.lastSendAt = at;
        end.maxSendQueue = Math.max(end.maxSendQueue, sendQueue);
      }
    }
    for (const [clientPort, end] of ends)
      if (end.closedAt === undefined && !established.has(clientPort)) end.closedAt = at;
  };
  poll();
  const timer = setInterval(poll, intervalMs);
  return {
    ends,
    held: () => [...ends.values()].filter((end) => end.closedAt === undefined).length,
    stop: () => clearInterval(timer),
  };
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The median of some numbers (the upper one of the middle two for an even count). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

/** One request on a connection of its own, bounded: a request that gets no answer is a failure, not a hang. */
export interface Probe {
  status: number;
  ms: number;
  body: string;
  /** Why there is no status: `timeout after N ms` or the socket error. */
  error?: string;
}

export function probe(
  baseUrl: string,
  path: string,
  {
    timeoutMs = 10_000,
    headers = {},
    signal,
  }: { timeoutMs?: number; headers?: Record<string, string>; signal?: AbortSignal } = {},
): Promise<Probe> {
  const started = performance.now();
  return new Promise((resolve) => {
    let settled = false;
    const done = (result: Omit<Probe, 'ms'>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ ...result, ms: Math.round(performance.now() - started) });
    };
    const req = request(`${baseUrl}/`, { agent: false, headers });
    req.path = path;
    const timer = setTimeout(() => {
      done({ status: 0, body: '', error: `timeout after ${timeoutMs} ms` });
      req.destroy();
    }, timeoutMs);
    req.on('error', (error) => done({ status: 0, body: '', error: error.message }));
    signal?.addEventListener('abort', () => {
      done({ status: 0, body: '', error: 'aborted' });
      req.destroy();
    });
    req.on('response', (res: IncomingMessage) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => done({ status: res.statusCode ?? 0, body }));
      res.on('error', (error) => done({ status: res.statusCode ?? 0, body, error: error.message }));
    });
    req.end();
  });
}

/**
 * Runs rounds of probes in a child process (probe-runner.mjs): round i starts i * intervalMs from now, its
 * paths asked at once, each on its own connection with its own deadline. A separate process, because the
 * test's own event loop is busy with the attackers and would delay the probes it times.
 */
export function runProbes(
  baseUrl: string,
  rounds: readonly (readonly string[])[],
  { intervalMs = 500, timeoutMs = 10_000 }: { intervalMs?: number; timeoutMs?: number } = {},
): Promise<Omit<Probe, 'body'>[][]> {
  const runner = new URL('./probe-runner.mjs', import.meta.url);
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [fileURLToPath(runner), JSON.stringify({ baseUrl, rounds, intervalMs, timeoutMs })],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      err += chunk;
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`probe-runner exited with ${code}: ${err}`));
      else resolve(JSON.parse(out) as Omit<Probe, 'body'>[][]);
    });
  });
}

/** The first response in some raw bytes. */
export interface RawResponse {
  status: number;
  /** Lower-cased names; the last value of a repeated field. */
  headers: Record<string, string>;
  body: string;
}

export function parseRawResponse(text: string): RawResponse | undefined {
  const headEnd = text.indexOf('\r\n\r\n');
  if (headEnd === -1) return undefined;
  const [statusLine = '', ...fields] = text.slice(0, headEnd).split('\r\n');
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine);
  if (!status) return undefined;
  const headers: Record<string, string> = {};
  for (const field of fields) {
    const colon = field.indexOf(':');
    if (colon > 0) headers[field.slice(0, colon).trim().toLowerCase()] = field.slice(colon + 1).trim();
  }
  let body = text.slice(headEnd + 4);
  const length = headers['content-length'];
  if (length !== undefined) body = body.slice(0, Number(length));
  return { status: Number(status[1]), headers, body };
}

/** Whether `text` holds a whole response with a Content-Length. */
function completeResponse(text: string): boolean {
  const answer = parseRawResponse(text);
  const length = answer?.headers['content-length'];
  if (answer === undefined || length === undefined) return false;
  return Buffer.byteLength(text.slice(text.indexOf('\r\n\r\n') + 4), 'latin1') >= Number(length);
}

/**
 * Raw bytes in, what the server sent until its first whole response (with a Content-Length) was in, it
 * closed, or `untilMs` passed.
 */
export function rawExchange(
  port: number,
  bytes: string,
  untilMs = 5000,
): Promise<{ text: string; closed: boolean; ms: number }> {
  const started = performance.now();
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    let settled = false;
    const finish = (closed: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ text, closed, ms: Math.round(performance.now() - started) });
    };
    const timer = setTimeout(() => {
      socket.destroy();
      finish(false);
    }, untilMs);
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      if (completeResponse(text)) {
        socket.destroy();
        finish(false);
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => finish(true));
    socket.write(bytes, 'latin1');
  });
}

/** A client of an attack, seen from its own side. */
export interface Attacker {
  readonly socket: Socket;
  /** Its local port: the server's end is found in /proc/net/tcp by it. */
  localPort: number;
  /** When its request head went out (performance.now()). */
  sentAt: number;
  /** When the connection closed (performance.now()); undefined while it is open. */
  closedAt: number | undefined;
  /** What it received (nothing for a slow reader, which never reads). */
  text: string;
  /** Settles once its request head is written. */
  readonly ready: Promise<void>;
  /** Settles when the connection closes. */
  readonly closed: Promise<void>;
}

function attacker(port: number, head: string, { read }: { read: boolean }): Attacker {
  const socket = connect(port, '127.0.0.1');
  // A slow reader never reads: nothing is taken out of its receive buffer, so the server's sends stall.
  if (!read) socket.pause();
  const state: Attacker = {
    socket,
    localPort: 0,
    sentAt: 0,
    closedAt: undefined,
    text: '',
    ready: new Promise<void>((resolve) => {
      socket.once('connect', () => {
        state.localPort = socket.localPort ?? 0;
        socket.write(head, 'latin1', () => resolve());
        state.sentAt = performance.now();
      });
      // A client refused at connect counts as ready (and closed): the test then sees it in the answers.
      socket.once('close', () => resolve());
    }),
    closed: new Promise<void>((resolve) => {
      socket.once('close', () => {
        state.closedAt = performance.now();
        resolve();
      });
    }),
  };
  socket.on('error', () => {});
  if (read)
    socket.on('data', (chunk: Buffer) => {
      state.text += chunk.toString('latin1');
    });
  return state;
}

/**
 * POST with `Content-Length: length`, the head and `first` bytes at once, then `trickle` more bytes
 * every `everyMs` (never, with everyMs 0) until the server closes: slowhttptest's slow body (-B).
 */
export function slowBodyClient(
  port: number,
  path: string,
  { length = 8192, first = 4, trickle = 4, everyMs = 2000 } = {},
): Attacker {
  const head =
    `POST ${path} HTTP/1.1\r\nHost: attacker\r\nContent-Type: application/octet-stream\r\n` +
    `Content-Length: ${length}\r\n\r\n${'a'.repeat(first)}`;
  const client = attacker(port, head, { read: true });
  if (everyMs > 0) {
    let sent = first;
    const timer = setInterval(() => {
      const next = Math.min(trickle, length - sent);
      if (client.socket.destroyed || next <= 0) return;
      client.socket.write('b'.repeat(next));
      sent += next;
    }, everyMs);
    client.closed.then(() => clearInterval(timer));
  }
  return client;
}

/** GET of a large response on a socket that never reads: slowhttptest's slow read (-X). */
export function slowReadClient(port: number, path: string): Attacker {
  return attacker(port, `GET ${path} HTTP/1.1\r\nHost: attacker\r\n\r\n`, { read: false });
}

/** A GET of a large response read at a steady `bytesPerSecond` (a tenth every 100 ms), from its socket. */
export function steadyReader(
  port: number,
  path: string,
  bytesPerSecond: number,
): Attacker & { received(): number; stop(): void } {
  const client = slowReadClient(port, path);
  let received = 0;
  let timer: NodeJS.Timeout | undefined;
  client.ready.then(() => {
    timer = setInterval(() => {
      let wanted = Math.max(1, Math.floor(bytesPerSecond / 10));
      while (wanted > 0 && !client.socket.destroyed) {
        const available = client.socket.readableLength;
        // read(0) has the socket fetch more from the kernel for the next turn.
        const chunk = client.socket.read(available > 0 ? Math.min(wanted, available) : 0) as Buffer | null;
        if (chunk === null) break;
        received += chunk.length;
        wanted -= chunk.length;
      }
    }, 100);
  });
  client.closed.then(() => clearInterval(timer));
  return Object.assign(client, { received: () => received, stop: () => clearInterval(timer) });
}

/**
 * Reads what a slow reader was sent, now: the body bytes it gets before the stream ends (or `untilMs`),
 * and whether it ended. A response cut by the server ends short of its Content-Length.
 */
export function drainSlowReader(
  client: Attacker,
  untilMs = 5000,
): Promise<{ bodyBytes: number; declared: number; ended: boolean }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let received = 0;
    let headLength = -1;
    let declared = -1;
    const finish = (ended: boolean) => {
      clearTimeout(timer);
      client.socket.destroy();
      resolve({ bodyBytes: headLength === -1 ? 0 : received - headLength, declared, ended });
    };
    const timer = setTimeout(() => finish(false), untilMs);
    client.socket.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (headLength === -1) {
        chunks.push(chunk);
        const all = Buffer.concat(chunks);
        const end = all.indexOf('\r\n\r\n');
        if (end !== -1) {
          headLength = end + 4;
          declared = Number(/\r\ncontent-length: *(\d+)/i.exec(all.subarray(0, end).toString('latin1'))?.[1]);
        }
      }
      if (declared >= 0 && received - headLength >= declared) finish(true);
    });
    client.socket.once('end', () => finish(true));
    client.socket.once('close', () => finish(true));
    if (client.socket.destroyed) finish(true);
    else client.socket.resume();
  });
}

/** A WebSocket upgraded on a raw socket, which the test ends with a bare FIN (no close frame). */
export interface RawUpgrade {
  readonly socket: Socket;
  status: number;
  head: string;
  /** When the test ended its side; when the connection closed (performance.now()). */
  endedAt: number | undefined;
  closedAt: number | undefined;
  readonly closed: Promise<void>;
  /** end() without a close frame: the client leaves as a tab that is killed does, with a FIN. */
  leaveWithFin(): void;
}

/** Upgrades `path` (with `host` as Host) and resolves once the server answered the handshake. */
export function rawUpgrade(
  port: number,
  path: string,
  host: string,
  timeoutMs = 10_000,
): Promise<RawUpgrade> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    const state: RawUpgrade = {
      socket,
      status: 0,
      head: '',
      endedAt: undefined,
      closedAt: undefined,
      closed: new Promise<void>((closed) =>
        socket.once('close', () => {
          state.closedAt = performance.now();
          closed();
        }),
      ),
      leaveWithFin() {
        state.endedAt = performance.now();
        socket.end();
      },
    };
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer to the upgrade of ${path} within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('error', () => {});
    socket.once('close', () => {
      clearTimeout(timer);
      if (state.status === 0) reject(new Error(`connection closed before an answer to the upgrade: ${text}`));
    });
    const onData = (chunk: Buffer) => {
      text += chunk.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end === -1) return;
      clearTimeout(timer);
      state.head = text.slice(0, end);
      state.status = Number(/^HTTP\/1\.1 (\d{3})/.exec(state.head)?.[1] ?? -1);
      // Whatever comes after (the container's hello frame) is read and dropped.
      socket.off('data', onData);
      socket.on('data', () => {});
      resolve(state);
    };
    socket.on('data', onData);
    socket.write(
      `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
  });
}

/** The JSON lines of a process's output. */
export function jsonLines(output: string): Record<string, unknown>[] {
  const lines: Record<string, unknown>[] = [];
  for (const line of output.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      lines.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // A line cut by the output window.
    }
  }
  return lines;
}

/** The sum of the samples of a metric whose labels include every one of `labels` (`name="value"`). */
export function metricSum(samples: Map<string, number>, name: string, labels: string[] = []): number {
  let sum = 0;
  for (const [key, value] of samples) {
    const braceAt = key.indexOf('{');
    const sampleName = braceAt === -1 ? key : key.slice(0, braceAt);
    if (sampleName !== name) continue;
    const labelText = braceAt === -1 ? '' : key.slice(braceAt + 1, -1);
    if (labels.every((label) => labelText.split(',').includes(label))) sum += value;
  }
  return sum;
}
