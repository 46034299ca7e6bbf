// Shared by the benchmarks (http.ts, websockets.ts, dev-servers.ts): what each of them needs in the same
// way, so that a fix to how a run starts or ends its processes reaches all three.
//
// - Where things are, the service key, and the number helpers.
// - The child processes: every one a benchmark starts is tracked (track) and ended by its cleanup
//   (stopChildren); whatever is still running when the process exits, however it exits, is SIGKILLed with
//   its own children by the exit handler this module installs when it is imported. The temporary
//   directories (tempDir) likewise: removed by cleanup, else at exit.
// - Services (container-manager, edge-proxy) as `pnpm start` runs them, without the pnpm and tsx wrappers;
//   a preview registered through container-manager's internal API.
// - nginx in the foreground under a temporary prefix, and the Debian packages a benchmark installs when
//   their executables are missing.
// - The ending of a run: runScript, with the services' last output when it failed.
import { type ChildProcess, execFile, type SpawnOptions, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { runScript } from '@sandbox/test-fixtures';

const execFileAsync = promisify(execFile);

// ---------------------------------------------------------------------------------------------------------
// Where things are.

export const ROOT_DIR = fileURLToPath(new URL('../', import.meta.url));
export const BENCH_DIR = fileURLToPath(new URL('./', import.meta.url));
export const APP_DIR = join(ROOT_DIR, 'apps/container-manager/');
export const RESULTS_DIR = join(BENCH_DIR, 'results/');
/** The INTERNAL_SERVICE_KEY this run's container-managers get, and its registrations send. */
export const KEY = `bench-${process.pid}-${Date.now().toString(36)}`;

// ---------------------------------------------------------------------------------------------------------
// Numbers.

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
export const round = (value: number, digits = 1) => Math.round(value * 10 ** digits) / 10 ** digits;
export const mib = (bytes: number) => round(bytes / (1024 * 1024), 1);

export function median(values: number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

/** A numeric command-line flag: `fallback` when absent, an error when outside min..max. */
export function numberFlag(
  raw: string | undefined,
  name: string,
  fallback: number,
  min: number,
  max: number,
) {
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min || value > max)
    throw new Error(`--${name} must be a number from ${min} to ${max}, got ${raw}`);
  return value;
}

// ---------------------------------------------------------------------------------------------------------
// Children: every process we start is tracked, so that cleanup can end it by its pid.

const children = new Set<ChildProcess>();
const tempDirs: string[] = [];

export function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

export function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(' ').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

export function rssBytes(pid: number): number {
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match?.[1]) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(match[1]) * 1024;
}

// The last resort, whatever ended the process: nothing we started outlives it, nor do its files.
process.once('exit', () => {
  for (const child of children) {
    // nginx's workers outlive a master killed with SIGKILL: end them by their pids first.
    for (const pid of child.pid === undefined ? [] : childPids(child.pid)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    child.kill('SIGKILL');
  }
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

/** Sends `signal`, then SIGKILL after `graceMs`; resolves with how the child exited. */
export async function stopChild(
  child: ChildProcess,
  signal: NodeJS.Signals = 'SIGTERM',
  graceMs = 10_000,
): Promise<{ code: number | null; signal: string | null }> {
  if (child.exitCode !== null || child.signalCode !== null)
    return { code: child.exitCode, signal: child.signalCode };
  const exited = once(child, 'exit') as Promise<[number | null, string | null]>;
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  const [code, exitSignal] = await exited;
  clearTimeout(timer);
  return { code, signal: exitSignal };
}

/** Every tracked child at once, SIGTERM and 5 s of grace each: cleanup's first step. */
export async function stopChildren(): Promise<void> {
  // nginx: SIGQUIT is its graceful stop; SIGTERM its fast one. Either way the master ends its workers.
  await Promise.all([...children].map((child) => stopChild(child, 'SIGTERM', 5000).catch(() => {})));
}

/** The child's stdout and stderr as they come, the last 32 KiB of them. */
export function capture(child: ChildProcess): () => string {
  let output = '';
  const append = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-32 * 1024);
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  return () => output;
}

/** A new directory under the system's temporary one, removed by removeTempDirs or at exit. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

export function removeTempDirs(): void {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  server.close();
  await once(server, 'close');
  return port;
}

// ---------------------------------------------------------------------------------------------------------
// Services: container-manager and edge-proxy, in a child process of their own.

export interface Service {
  child: ChildProcess;
  pid: number;
  /** What the service logged as its address (`listening on <url>`). */
  url: string;
  output(): string;
}

export interface ServiceOptions {
  /** For the error message, e.g. `container-manager`. */
  name: string;
  /** The app's directory. */
  cwd: string;
  /** node's arguments: `--import tsx src/main.ts` for `pnpm start`'s `tsx src/main.ts`. */
  nodeArgs: string[];
  /** Its environment besides PATH, HOME and the Docker client's variables, which it gets from ours. */
  env: Record<string, string>;
  /** Start it through a shell that raises the open-files limit first: many connections need many files. */
  raiseFilesLimit?: boolean;
}

/**
 * Starts node with `nodeArgs` itself, without the pnpm and tsx wrapper processes, so that the pid we track
 * is the service's own (its VmRSS, its CPU time, our signals); resolves once it logged its address.
 */
export async function startService(options: ServiceOptions): Promise<Service> {
  const { name, cwd, nodeArgs, raiseFilesLimit = false } = options;
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '/root',
    ...options.env,
  };
  // The Docker client's settings, and UPSTREAM_ENGINE: `UPSTREAM_ENGINE=undici pnpm bench` measures the other engine.
  for (const variable of ['DOCKER_HOST', 'DOCKER_TLS_VERIFY', 'DOCKER_CERT_PATH', 'UPSTREAM_ENGINE']) {
    const value = process.env[variable];
    if (value !== undefined) env[variable] = value;
  }
  const spawnOptions: SpawnOptions = { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] };
  // Node raises its soft limit to the hard one by itself; the shell raises the hard one where it is allowed
  // to (else keeps it), then execs node: the pid is still node's.
  const script = 'ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$@"';
  const child = track(
    raiseFilesLimit
      ? spawn('bash', ['-c', script, 'bash', process.execPath, ...nodeArgs], spawnOptions)
      : spawn(process.execPath, nodeArgs, spawnOptions),
  );
  const output = capture(child);
  const deadline = Date.now() + 30_000;
  for (;;) {
    const url = /listening on (http:\/\/[^\s"]+)/.exec(output())?.[1];
    if (url !== undefined && child.pid !== undefined) return { child, pid: child.pid, url, output };
    if (child.exitCode !== null || Date.now() > deadline) {
      await stopChild(child, 'SIGKILL');
      throw new Error(`${name} did not start:\n${output()}`);
    }
    await sleep(50);
  }
}

/** Registers the session's `port` as a preview through the internal API of container-manager at `base`. */
export async function registerPreview(base: string, sessionId: string, port: number): Promise<void> {
  const res = await fetch(`${base}/api/internal/sessions/${sessionId}/previews`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-internal-service-key': KEY },
    body: JSON.stringify({ port }),
  });
  if (res.status !== 201) throw new Error(`registration answered ${res.status}: ${await res.text()}`);
}

// ---------------------------------------------------------------------------------------------------------
// nginx and the tools.

export interface NginxProcess {
  child: ChildProcess;
  pid: number;
  port: number;
  /** Its prefix: configuration, logs, pid file and temporary files. */
  prefix: string;
  config: string;
  output(): string;
}

/**
 * nginx as a tracked child, in the foreground (the configuration says `daemon off`), everything under
 * <dir>/nginx, with the configuration `configOf` writes for that prefix and a free port. Not waited for:
 * what "serving" means is the caller's.
 */
export async function spawnNginx(
  binary: string,
  dir: string,
  configOf: (prefix: string, port: number) => string,
): Promise<NginxProcess> {
  const prefix = join(dir, 'nginx');
  mkdirSync(prefix, { recursive: true });
  const port = await freePort();
  const config = configOf(prefix, port);
  const configFile = join(prefix, 'nginx.conf');
  writeFileSync(configFile, config);
  // -e: the error log before the configuration is read (else the compiled-in /var/log/nginx/error.log).
  const child = track(
    spawn(binary, ['-p', prefix, '-c', configFile, '-e', join(prefix, 'error.log')], {
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  const output = capture(child);
  const pid = child.pid;
  if (pid === undefined) throw new Error('nginx did not start');
  return { child, pid, port, prefix, config, output };
}

/** What nginx wrote to its error log so far (empty when none): for the message when it did not start. */
export function nginxErrorLog(prefix: string): string {
  const file = join(prefix, 'error.log');
  return existsSync(file) ? readFileSync(file, 'utf8') : '';
}

export function findExecutable(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin', '/usr/local/sbin'];
  for (const dir of dirs) {
    if (dir && existsSync(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

/**
 * The executables a benchmark needs, each with the Debian package that has it (nginx: nginx-light): when
 * any is missing, installs all of the packages, as root on Debian; elsewhere says what to install.
 * Resolves with each executable's path.
 */
export async function ensureExecutables<Name extends string>(
  packages: Record<Name, string>,
): Promise<Record<Name, string>> {
  const names = Object.keys(packages) as Name[];
  const debs = names.map((name) => packages[name]);
  const find = () => {
    const found: Partial<Record<Name, string>> = {};
    for (const name of names) {
      const path = findExecutable(name);
      if (path) found[name] = path;
    }
    return found;
  };
  const all = (found: Partial<Record<Name, string>>): found is Record<Name, string> =>
    names.every((name) => found[name] !== undefined);
  const before = find();
  if (all(before)) return before;
  const list = names.join(' and ');
  const one = names.length === 1;
  const they = one ? 'it is' : names.length === 2 ? 'both are' : 'all are';
  const canApt =
    process.getuid?.() === 0 && existsSync('/etc/debian_version') && findExecutable('apt-get') !== undefined;
  if (!canApt) {
    const missing = names.filter((name) => before[name] === undefined);
    throw new Error(
      `this benchmark needs ${list}${one ? '' : ` (missing: ${missing.join(', ')})`}:` +
        ` on Debian or Ubuntu, as root: apt-get install -y ${debs.join(' ')}; elsewhere install ${list}` +
        ` from your package manager, so that ${they} on PATH`,
    );
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const options = { env, timeout: 300_000, maxBuffer: 16 * 1024 * 1024 };
  console.log(`installing ${debs.join(' ')} (apt-get)...`);
  try {
    await execFileAsync('apt-get', ['install', '-y', ...debs], options);
  } catch {
    console.log('apt-get install failed; running apt-get update, then trying again');
    await execFileAsync('apt-get', ['update'], options);
    await execFileAsync('apt-get', ['install', '-y', ...debs], options);
  }
  const after = find();
  if (!all(after)) throw new Error(`apt-get install ${debs.join(' ')} did not put ${list} on PATH`);
  return after;
}

/** The commit, and the files changed since, outside bench/: what "ours" measured. */
export async function codeUnderTest(): Promise<{ commit: string; uncommitted: string[] }> {
  try {
    const git = (args: string[]) => execFileAsync('git', ['-C', ROOT_DIR, ...args], { timeout: 10_000 });
    const { stdout: commit } = await git(['rev-parse', '--short', 'HEAD']);
    const { stdout: status } = await git(['status', '--porcelain', '--', '.', ':(exclude)bench']);
    return {
      commit: commit.trim(),
      uncommitted: status
        .split('\n')
        .filter(Boolean)
        .map((line) => line.slice(3)),
    };
  } catch {
    return { commit: 'unknown (not a git checkout)', uncommitted: [] };
  }
}

// ---------------------------------------------------------------------------------------------------------
// The ending of a run.

export interface Benchmark {
  main: () => Promise<number>;
  cleanup: () => Promise<void>;
  watchdogMs: number;
  /** Read when main failed: each service started by then, and how many characters of its output to print. */
  outputs: () => [name: string, service: { output(): string } | undefined, chars: number][];
}

/** runScript for `the benchmark`: a watchdog, cleanup on SIGINT/SIGTERM and failure, main's exit code. */
export function runBenchmark({ main, cleanup, watchdogMs, outputs }: Benchmark): void {
  runScript({
    name: 'the benchmark',
    main,
    cleanup,
    watchdogMs,
    onFailure: () => {
      for (const [name, service, chars] of outputs())
        if (service) console.error(`${name} output:\n${service.output().slice(-chars)}`);
    },
  });
}
