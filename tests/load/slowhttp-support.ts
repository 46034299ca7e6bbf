// For test/slowhttp.int.test.ts: Debian's slowhttptest (1.8.2) run to the end and its report parsed, a
// prober that sends a normal GET every few hundred ms while it runs, percentiles, and a watch over the
// server's ends of the attacking connections in the kernel's socket table (watchServerSockets, below).
//
// slowhttptest is run with `-g -o <prefix>` (a CSV line a second: seconds, closed, pending, connected, and
// "service available" as 0 or the connection count) and `-v 4` (a debug line for every socket event). From
// the debug lines come what the CSV lacks: the status line of every answer an attacking socket read, and
// each close with its reason ("Peer closed connection", "Connection reset by peer"...) and its time. Its
// own closes at the end of the test (time limit) are not logged, so every logged close is the server's.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';

export const SLOWHTTPTEST = '/usr/bin/slowhttptest';

/** One second of slowhttptest's CSV. */
export interface SlowSecond {
  /** Seconds since the test started. */
  t: number;
  closed: number;
  pending: number;
  connected: number;
  /** Whether slowhttptest's own probe got an answer within its timeout (-p, 5 s). */
  serviceAvailable: boolean;
}

/** An attacking socket closed by the server, as slowhttptest logged it. */
export interface SlowClose {
  /** Milliseconds since slowhttptest was started, as the line arrived (stdout line-buffered). */
  atMs: number;
  reason: string;
}

/** What a slowhttptest run reports. */
export interface SlowReport {
  args: string[];
  /** "Hit test time limit", "No open connections left", "Cannot establish connection"... */
  exitStatus: string;
  /** "Test ended on Nth second". */
  endedOnSecond: number;
  /** Wall time of the whole run, ms. */
  durationMs: number;
  /** performance.now() when the process exited. */
  exitedAt: number;
  seconds: SlowSecond[];
  /** Every attacking socket the server closed, in order. */
  closes: SlowClose[];
  /** Status lines attacking sockets read (`408`: 300), probe excluded. */
  statuses: Record<string, number>;
  /** Attacking sockets that had sent their request head (`initial ... bytes sent on socket`). */
  started: number;
  /** The most sockets connected at once (CSV). */
  peakConnected: number;
  /** The last "error:" count of the status blocks. */
  errors: number;
  /** The last 8 KiB of the output, without colours, to quote when an assertion fails. */
  tail: string;
}

/** Its colour codes (ESC [ ... letter). */
const ANSI = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*[A-Za-z]`, 'g');

/** slowhttptest's CSV (`Seconds,Closed,Pending,Connected,Service Available`). */
export function parseSlowCsv(text: string): SlowSecond[] {
  const rows: SlowSecond[] = [];
  for (const line of text.split('\n').slice(1)) {
    const cells = line.trim().split(',').map(Number);
    if (cells.length < 5 || cells.some((n) => !Number.isFinite(n))) continue;
    const [t = 0, closed = 0, pending = 0, connected = 0, available = 0] = cells;
    rows.push({ t, closed, pending, connected, serviceAvailable: available > 0 });
  }
  return rows;
}

/**
 * Runs slowhttptest with these arguments (plus `-g -o` and `-v 4`) to its end, killed `maxSeconds` after its
 * start at the latest. Its open-files limit is set to 1024: it uses select(), and with a higher limit it
 * opens no connection at all ("No open connections left" at once).
 */
export async function runSlowhttptest(
  args: string[],
  { dir, name, maxSeconds }: { dir: string; name: string; maxSeconds: number },
): Promise<SlowReport> {
  if (!existsSync(SLOWHTTPTEST))
    throw new Error(`${SLOWHTTPTEST} is missing: run scripts/test-env.sh (apt-get install -y slowhttptest)`);
  const prefix = join(dir, name);
  const fullArgs = [...args, '-g', '-o', prefix, '-v', '4'];
  const started = performance.now();
  // stdbuf -oL: each debug line arrives when it is written, so that its arrival time is the event's.
  const child = spawn(
    'sh',
    ['-c', 'ulimit -n 1024 && exec stdbuf -oL "$0" "$@"', SLOWHTTPTEST, ...fullArgs],
    { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const closes: SlowClose[] = [];
  const statuses: Record<string, number> = {};
  let startedSockets = 0;
  let errors = 0;
  let exitStatus = '';
  let endedOnSecond = Number.NaN;
  let tail = '';
  /** After a "socket N replied" line the next line is the start of what it read. */
  let replyFollows = false;
  const onLine = (raw: string) => {
    const line = raw.replace(ANSI, '').replace(/\r$/, '');
    if (replyFollows) {
      replyFollows = false;
      const status = /^HTTP\/\d\.\d (\d{3})/.exec(line)?.[1];
      if (status) statuses[status] = (statuses[status] ?? 0) + 1;
    }
    const closed = /run_test: socket \d+ closed: (.*)$/.exec(line);
    const error = /^error:\s+(\d+)$/.exec(line);
    const ended = /Test ended on (\d+)\w* second/.exec(line);
    const exit = /^Exit status:\s*(.*)$/.exec(line);
    if (/run_test: socket \d+ replied \d+ bytes:$/.test(line)) replyFollows = true;
    else if (closed) closes.push({ atMs: performance.now() - started, reason: closed[1] ?? '' });
    else if (/run_test:initial \d+ of \d+ bytes sent on socket \d+:$/.test(line)) startedSockets += 1;
    else if (error) errors = Number(error[1]);
    else if (ended) endedOnSecond = Number(ended[1]);
    else if (exit) exitStatus = exit[1]?.trim() ?? '';
  };
  /** A line splitter per stream (slowhttptest writes to both). */
  const lines = () => {
    let partial = '';
    return {
      push(chunk: Buffer) {
        const text = partial + chunk.toString('latin1');
        const complete = text.split('\n');
        partial = complete.pop() ?? '';
        for (const line of complete) onLine(line);
        tail = (tail + chunk.toString('latin1').replace(ANSI, '')).slice(-8192);
      },
      end() {
        if (partial) onLine(partial);
        partial = '';
      },
    };
  };
  const out = lines();
  const err = lines();
  child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
  child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
  let exitedAt = Number.NaN;
  child.once('exit', () => {
    exitedAt = performance.now();
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), maxSeconds * 1000);
  const [code, signal] = (await once(child, 'close')) as [number | null, string | null];
  clearTimeout(timer);
  out.end();
  err.end();
  const durationMs = performance.now() - started;
  if (code !== 0)
    throw new Error(`slowhttptest ${fullArgs.join(' ')} exited with ${code ?? signal}:\n${tail}`);
  const seconds = existsSync(`${prefix}.csv`) ? parseSlowCsv(readFileSync(`${prefix}.csv`, 'utf8')) : [];
  return {
    args,
    exitStatus,
    endedOnSecond,
    durationMs,
    exitedAt,
    seconds,
    closes,
    statuses,
    started: startedSockets,
    peakConnected: Math.max(0, ...seconds.map((s) => s.connected)),
    errors,
    tail,
  };
}

/** One normal request made while an attack runs. */
export interface Probe {
  /** When it was sent, ms since the prober started. */
  atMs: number;
  /** Until the whole response was read (or it failed), ms. */
  latencyMs: number;
  /** 0 when it failed. */
  status: number;
  error?: string;
}

/**
 * Sends `GET url` on a connection of its own (from `localAddress` when given) every `intervalMs` (without waiting for the previous one: a
 * request that hangs does not hide the next ones), each given up after `timeoutMs`. stop() stops sending
 * and resolves once every request sent has ended.
 */
export function startProber(
  url: string,
  {
    intervalMs,
    timeoutMs,
    localAddress,
  }: {
    intervalMs: number;
    timeoutMs: number /** e.g. 127.0.0.2, to tell them from attackers */;
    localAddress?: string;
  },
): { stop(): Promise<Probe[]> } {
  const started = performance.now();
  const probes: Probe[] = [];
  const pending: Promise<void>[] = [];
  const send = () => {
    const atMs = performance.now() - started;
    pending.push(
      probeOnce(url, timeoutMs, localAddress).then((result) => {
        probes.push({ atMs, ...result });
      }),
    );
  };
  send();
  const interval = setInterval(send, intervalMs);
  return {
    async stop() {
      clearInterval(interval);
      await Promise.all(pending);
      return probes.sort((a, b) => a.atMs - b.atMs);
    },
  };
}

function probeOnce(url: string, timeoutMs: number, localAddress?: string): Promise<Omit<Probe, 'atMs'>> {
  const sent = performance.now();
  return new Promise((resolve) => {
    let done = false;
    const finish = (status: number, error?: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      const latencyMs = performance.now() - sent;
      resolve(error === undefined ? { latencyMs, status } : { latencyMs, status, error });
    };
    const req = request(url, localAddress === undefined ? { agent: false } : { agent: false, localAddress });
    const timer = setTimeout(() => {
      finish(0, `no answer within ${timeoutMs} ms`);
      req.destroy();
    }, timeoutMs);
    req.on('error', (error) => finish(0, error.message));
    req.on('response', (res) => {
      res.on('error', (error) => finish(0, error.message));
      res.on('end', () => finish(res.statusCode ?? 0));
      res.resume();
    });
    req.end();
  });
}

/** The p-th percentile (0-100, nearest rank) of some values; NaN when there are none. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1] ?? Number.NaN;
}

// ---------------------------------------------------------------------------------------------------------
// The server's side of the attacking connections, from the kernel's table (/proc/net/tcp): when the
// manager cut each one (its socket leaves ESTABLISHED for FIN_WAIT1/2 or TIME_WAIT), and the last time the
// manager wrote to it (its send queue grew). slowhttptest cannot always tell: a socket cut with unsent bytes
// queued behind a reader's closed window stays in FIN_WAIT1, an orphan of the kernel, and its FIN reaches
// the reader only once those bytes have.

/** The server's end of one attacking connection. */
interface TrackedSocket {
  firstAtMs: number;
  /** Bytes in its send queue at the last sample. */
  queued: number;
  /** When its send queue last grew (the server wrote to it), or first seen. */
  lastWriteAtMs: number;
  endedAtMs?: number;
  /** The state it was first seen in after ESTABLISHED; 'gone' when it vanished between two samples. */
  endState?: string;
}

/** One sample of the attacking connections' server ends. */
export interface ServerSocketSample {
  tMs: number;
  established: number;
  /** Cut by the server, FIN still queued behind unsent bytes. */
  finWait1: number;
  /** Bytes queued in those orphans, MiB. */
  orphanQueuedMiB: number;
  /** Memory of every TCP socket of the host (/proc/net/sockstat), MiB: other processes' too. */
  hostTcpMiB: number;
}

/** What the kernel's table showed of the attacking connections over an attack. */
export interface ServerSocketReport {
  /** Connections from 127.0.0.1 that stayed open for at least MIN_ATTACKER_LIFETIME_MS. */
  connections: number;
  /** Of which the server cut (FIN_WAIT1/2, TIME_WAIT or CLOSING first) while the client still ran. */
  cut: number;
  /** When, ms since the watch started. */
  cutAtMs: number[];
  /** For each cut: how long since the server last wrote to it (ms). */
  sinceLastWriteMs: number[];
  /** Closed by the client while it ran (slowhttptest's own probe): not counted as attackers. */
  clientClosed: number;
  /** Attackers not cut by the server while the client ran, by the state they ended in ('open': never). */
  notCut: Record<string, number>;
  samples: ServerSocketSample[];
}

const TCP_ESTABLISHED = '01';
const SERVER_CLOSED_FIRST = new Set(['04', '05', '06', '0B']); // FIN_WAIT1, FIN_WAIT2, TIME_WAIT, CLOSING
const CLIENT_CLOSED_FIRST = new Set(['08', '09']); // CLOSE_WAIT, LAST_ACK
/** slowhttptest's own probe (answered at once) and our probers live shorter than this. */
const MIN_ATTACKER_LIFETIME_MS = 750;

/**
 * Samples /proc/net/tcp every `intervalMs` for the server ends of connections from 127.0.0.1 to
 * 127.0.0.1:port (probes sent from another loopback address are not counted). stop(clientEndAt) ends it:
 * closes seen after that moment (a performance.now(): slowhttptest's own, at its end) are not cuts.
 */
export function watchServerSockets(
  port: number,
  intervalMs: number,
): { stop(clientEndAt: number): ServerSocketReport } {
  const local = `0100007F:${port.toString(16).padStart(4, '0').toUpperCase()}`;
  const attacker = '0100007F:';
  const started = performance.now();
  const tracked = new Map<string, TrackedSocket>();
  const samples: ServerSocketSample[] = [];
  const sample = () => {
    const now = performance.now() - started;
    const seen = new Set<string>();
    let established = 0;
    let finWait1 = 0;
    let orphanQueued = 0;
    let table: string;
    try {
      table = readFileSync('/proc/net/tcp', 'utf8');
    } catch {
      return;
    }
    for (const line of table.split('\n')) {
      const fields = line.trim().split(/\s+/);
      const [, localAddress, remote, state, queues] = fields;
      if (localAddress !== local || remote === undefined || !remote.startsWith(attacker)) continue;
      const queued = Number.parseInt(queues?.split(':')[0] ?? '0', 16);
      let socket = tracked.get(remote);
      if (socket === undefined) {
        if (state !== TCP_ESTABLISHED) continue; // an earlier connection's end
        socket = { firstAtMs: now, queued, lastWriteAtMs: now };
        tracked.set(remote, socket);
      }
      seen.add(remote);
      if (state === TCP_ESTABLISHED) {
        established += 1;
        if (queued > socket.queued) socket.lastWriteAtMs = now;
        socket.queued = queued;
      } else {
        if (socket.endedAtMs === undefined) {
          socket.endedAtMs = now;
          socket.endState = state ?? '?';
        }
        if (state === '04') {
          finWait1 += 1;
          orphanQueued += queued;
        }
      }
    }
    for (const [remote, socket] of tracked) {
      if (socket.endedAtMs === undefined && !seen.has(remote)) {
        socket.endedAtMs = now;
        socket.endState = 'gone';
      }
    }
    samples.push({
      tMs: now,
      established,
      finWait1,
      orphanQueuedMiB: Math.round((orphanQueued / 1024 / 1024) * 10) / 10,
      hostTcpMiB: hostTcpMiB(),
    });
  };
  sample();
  const timer = setInterval(sample, intervalMs);
  return {
    stop(clientEndAt: number): ServerSocketReport {
      clearInterval(timer);
      sample();
      const clientEndMs = clientEndAt - started;
      const end = performance.now() - started;
      const cutAtMs: number[] = [];
      const sinceLastWriteMs: number[] = [];
      const notCut: Record<string, number> = {};
      let connections = 0;
      let clientClosed = 0;
      for (const socket of tracked.values()) {
        const ended = socket.endedAtMs;
        const state = socket.endState ?? '';
        if ((ended ?? end) - socket.firstAtMs < MIN_ATTACKER_LIFETIME_MS) continue;
        // The server's end leaves ESTABLISHED for FIN_WAIT or TIME_WAIT only when the server closed first,
        // whenever that was seen; one that vanished (a reset) is the server's only while the client ran.
        const byServer =
          ended !== undefined &&
          (SERVER_CLOSED_FIRST.has(state) || (state === 'gone' && ended < clientEndMs - 500));
        if (byServer) {
          connections += 1;
          cutAtMs.push(ended);
          sinceLastWriteMs.push(ended - socket.lastWriteAtMs);
        } else if (ended !== undefined && ended < clientEndMs - 500 && CLIENT_CLOSED_FIRST.has(state)) {
          clientClosed += 1;
        } else {
          connections += 1;
          const key = ended === undefined ? 'open' : state;
          notCut[key] = (notCut[key] ?? 0) + 1;
        }
      }
      cutAtMs.sort((a, b) => a - b);
      return { connections, cut: cutAtMs.length, cutAtMs, sinceLastWriteMs, clientClosed, notCut, samples };
    },
  };
}

/** The host's TCP memory (/proc/net/sockstat counts pages), MiB. */
function hostTcpMiB(): number {
  try {
    const pages = /^TCP:.* mem (\d+)/m.exec(readFileSync('/proc/net/sockstat', 'utf8'))?.[1];
    return pages === undefined ? Number.NaN : Math.round((Number(pages) * 4096) / 1024 / 1024);
  } catch {
    return Number.NaN;
  }
}
