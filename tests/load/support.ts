// Shared by the CI load test (test/load.int.test.ts) and the hand-run soak (soak.ts): container-manager as a
// real process, its registration, what /proc says about it, its /metrics, and wrk.
//
// The manager is spawned here rather than with startAppProcess (fixtures) or startManagerProcess
// (apps/container-manager/test): both wait for the "listening on" line, which the service logs at info
// level, and these runs use LOG_LEVEL=warn (plus ACCESS_LOG=false) so that logging is not what they
// measure. So the port is chosen up front and readiness is GET /healthz.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  freePort,
  parsePrometheusText,
  parseWrkReport,
  tcpSocketsTowards,
  type WrkReport,
} from '@sandbox/test-fixtures';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const MANAGER_DIR = fileURLToPath(new URL('../../apps/container-manager/', import.meta.url));
/** The internal key the runs register with. */
export const LOAD_KEY = 'load-test-internal-key-3c91';

const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 5_000;

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
export const MiB = 1024 * 1024;
/** Bytes as MiB with one decimal. */
export const mib = (bytes: number) => Math.round((bytes / MiB) * 10) / 10;

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

/** A container-manager in a child process: `node --import tsx src/main.ts`, as `pnpm start` runs it. */
export interface ManagerHandle {
  readonly child: ChildProcess;
  readonly pid: number;
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** `http://127.0.0.1:<port>/metrics` when started with metrics. */
  readonly metricsUrl: string | undefined;
  /** stdout and stderr so far (the last 32-64 KiB). */
  output(): string;
  /** Whether the process is still running. */
  alive(): boolean;
  /** SIGTERM, then SIGKILL after 5 s; resolves once it has exited. */
  stop(): Promise<void>;
}

export interface StartManagerOptions {
  /** Serve /metrics on a port of its own (METRICS_PORT). */
  metrics?: boolean;
  /** More environment (after the defaults: LOG_LEVEL=warn, ACCESS_LOG=false). */
  env?: Record<string, string>;
}

/** Spawns container-manager on 127.0.0.1 and a free port and waits until GET /healthz answers 200. */
export async function startManager(options: StartManagerOptions = {}): Promise<ManagerHandle> {
  // freePort closes its probe before the manager binds: another process may take the port meanwhile.
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await spawnManager(options);
    } catch (error) {
      lastError = error;
      if (!String(error).includes('EADDRINUSE')) throw error;
    }
  }
  throw lastError;
}

async function spawnManager({ metrics = false, env = {} }: StartManagerOptions): Promise<ManagerHandle> {
  const port = await freePort();
  const metricsPort = metrics ? await freePort() : undefined;
  const passThrough: Record<string, string> = {};
  for (const name of ['DOCKER_HOST', 'DOCKER_TLS_VERIFY', 'DOCKER_CERT_PATH']) {
    const value = process.env[name];
    if (value !== undefined) passThrough[name] = value;
  }
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: MANAGER_DIR,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/root',
      ...passThrough,
      HOST: '127.0.0.1',
      PORT: String(port),
      INTERNAL_SERVICE_KEY: LOAD_KEY,
      SHUTDOWN_GRACE_MS: '1000',
      LOG_LEVEL: 'warn',
      ACCESS_LOG: 'false',
      ...(metricsPort === undefined ? {} : { METRICS_PORT: String(metricsPort) }),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // A runner that dies without its cleanup must not leave the service running.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const exited = once(child, 'exit').then(() => {
    process.off('exit', killOnExit);
  });
  let output = '';
  const append = (chunk: Buffer) => {
    output += chunk.toString();
    if (output.length > 64 * 1024) output = output.slice(-32 * 1024);
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  const alive = () => child.exitCode === null && child.signalCode === null;
  const stop = async () => {
    if (!alive()) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  };

  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (!alive() || child.pid === undefined) {
      await stop();
      throw new Error(`container-manager did not start:\n${output}`);
    }
    const status = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1000) }).then(
      (res) => res.status,
      () => 0,
    );
    if (status === 200) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`container-manager did not answer /healthz within ${START_TIMEOUT_MS} ms:\n${output}`);
    }
    await sleep(100);
  }
  return {
    child,
    pid: child.pid,
    url,
    metricsUrl: metricsPort === undefined ? undefined : `http://127.0.0.1:${metricsPort}/metrics`,
    output: () => output,
    alive,
    stop,
  };
}

/** `POST /api/internal/sessions/:id/previews {"port":3000}`; throws unless it answers 201. */
export async function registerPreview(managerUrl: string, sessionId: string, port = 3000): Promise<void> {
  const res = await fetch(`${managerUrl}/api/internal/sessions/${sessionId}/previews`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-internal-service-key': LOAD_KEY },
    body: JSON.stringify({ port }),
    signal: AbortSignal.timeout(10_000),
  });
  const body = await res.text();
  if (res.status !== 201) throw new Error(`registering ${sessionId} answered ${res.status}: ${body}`);
}

/** The ports registered for a session (`GET /api/internal/sessions/:id/previews`). */
export async function registeredPorts(managerUrl: string, sessionId: string): Promise<number[]> {
  const res = await fetch(`${managerUrl}/api/internal/sessions/${sessionId}/previews`, {
    headers: { 'x-internal-service-key': LOAD_KEY },
    signal: AbortSignal.timeout(10_000),
  });
  if (res.status !== 200) throw new Error(`listing ${sessionId} answered ${res.status}: ${await res.text()}`);
  return ((await res.json()) as { ports: number[] }).ports;
}

/** What /proc says about a process. */
export interface ProcSample {
  /** VmRSS, bytes. */
  rss: number;
  /** Open file descriptors. */
  fds: number;
  /** Of which sockets. */
  sockets: number;
}

/** VmRSS and open fds (and sockets among them) of a process, from /proc. */
export function procSample(pid: number): ProcSample {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  if (!match?.[1]) throw new Error(`no VmRSS in /proc/${pid}/status`);
  const entries = readdirSync(`/proc/${pid}/fd`);
  let sockets = 0;
  for (const fd of entries) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')) sockets += 1;
    } catch {
      // Closed between the listing and the readlink.
    }
  }
  return { rss: Number(match[1]) * 1024, fds: entries.length, sockets };
}

/** Sockets of this network namespace in TIME_WAIT towards ip:port (upstream connections the proxy closed). */
export function timeWaitTowards(ip: string, port: number): number {
  return tcpSocketsTowards(ip, port, 'timeWait').size;
}

/** The samples of a Prometheus text page, by `name{labels}`. */
export async function scrapeMetrics(url: string): Promise<Map<string, number>> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  if (res.status !== 200) throw new Error(`${url} answered ${res.status}`);
  return parsePrometheusText(await res.text());
}

// ---------------------------------------------------------------------------------------------------------
// wrk (Debian's 4.1.0): run, and parse its report. Its own counters (socket errors, "Non-2xx or 3xx
// responses") plus, from the Lua script of the load test, a line `statuses: 200=n 502=m ...`.

/** A wrk run's report, with wrk's own output to quote when an assertion fails. */
export type WrkResult = WrkReport & { output: string };

export const WRK = '/usr/bin/wrk';

/** Runs wrk with these arguments to the end (killed 30 s past its duration) and parses its report. */
export async function runWrk(args: string[], durationSeconds: number): Promise<WrkResult> {
  const child = spawn(WRK, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), (durationSeconds + 30) * 1000);
  // 'close', not 'exit': the report is complete only once both pipes have ended.
  const [code, signal] = (await once(child, 'close')) as [number | null, string | null];
  clearTimeout(timer);
  if (code !== 0) throw new Error(`wrk ${args.join(' ')} exited with ${code ?? signal}:\n${output}`);
  return { ...parseWrkReport(output), output };
}
