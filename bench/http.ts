// Benchmark (not a test): HTTP through container-manager's public route, side by side with its peers and a
// direct connection to the container, in one run. It prints numbers; it does not judge them.
//
// Sets everything up itself: installs Debian's nginx-light, haproxy, caddy and wrk when missing (as root on
// Debian; else says what to install); starts one session container (the fixture image) per path, so that one
// path's upstream TIME_WAIT sockets never slow another's connects. The paths, each a proxy on one core with
// /previews/<id>/ stripped, upstream keep-alive and no access log unless said:
//   direct   the container itself (ip:3000)
//   nginx    1 worker, upstream keep-alive 64
//   haproxy  nbthread 1, http-reuse always (peers.ts)
//   caddy    GOMAXPROCS=1, handle_path + reverse_proxy (peers.ts)
//   pipe     a Node byte pipe, no HTTP at all (byte-pipe.ts): the ceiling of any proxy on this engine
//   bare     proxy-core alone on node:http, one fixed target (bare-proxy.ts): what forwarding costs
//   ours     container-manager as `pnpm start` runs it: its defaults, access log on (to its stdout pipe)
//   lean     the same with ACCESS_LOG=false
//   edge     edge-proxy as its start script runs it (WORKERS=1 here), reading a Redis that a second, idle
//            container-manager publishes to
// (`--manager bundle` runs the apps' tsup bundles instead of `node --import tsx src/main.ts`.) Then:
//
// 1. Scale (skip with --skip-scale): the in-memory registry with 10,000 sessions (memory per registration,
//    lookup time cycling over 1,000 hot sessions against 1 session), in a process of its own
//    (registry-scale.ts); the proxy memory per idle keep-alive client connection (1,000 connections, one
//    request each, then idle), ours and nginx; edge-proxy reading 10,000 sessions from a Redis of its own,
//    wrk cycling over 1,000 of them against one session, in alternating rounds (9 by default,
//    --scale-rounds), with the edge's CPU time per request in each. First, while the proxies are fresh.
// 2. With --profile: a CPU profile (--cpu-prof) of a second container-manager under the tiny c32 load; the
//    top self-time functions of the samples taken during the load.
// 3. Load: wrk -t1 -c<n> -d5s --latency against every path in alternating rounds, for each case: a tiny
//    response (23 B) at 32 and at 256 connections, a 64 KiB response, a 16 KiB POST. Prints medians of the
//    rounds (req/s, p50, p99, the proxy's RSS, CPU share and CPU µs per request, upstream connection churn),
//    the ratios to nginx and to direct, and per case the goals' figures: ours and lean against nginx, the
//    CPU per request of ours and lean against the bare proxy's, and what the access log costs. Before a run,
//    waits (at most 65 s) while more than 5,000 sockets towards its container are in TIME_WAIT.
// 4. Every core (skip with --skip-cores): the same tiny response at 32 connections, wrk still -t1 (on a
//    2-core machine wrk, the container and the proxy share the CPUs), on all of the machine's cores
//    (os.cpus().length): direct, nginx with that many workers, HAProxy with that many threads, Caddy with
//    GOMAXPROCS at it, and a second edge-proxy with WORKERS at it (its container registered through the same
//    publisher). Each of these four gets a fresh container and is stopped at the end of the section; same
//    rounds, duration, warm-up and TIME_WAIT wait as the load cases; the CPU per request counts every
//    process of the path (nginx's master and workers, the edge's primary and workers). Prints a table like
//    the load cases' and the edge's figures against nginx's and HAProxy's.
//
// Results go to bench/results/http.json (the every-core section under `cores`) and, as a chart with the
// every-core section as its last case, bench/results/http.svg. It stops by itself (a
// watchdog bounds the run), and cleans up the children, the containers and the temporary directory, also on
// failure and on SIGINT/SIGTERM. When container-manager dies during a run, the run is recorded as crashed
// (with the error) and it is restarted.
//
//   pnpm bench                                                  # from the root, about 17 minutes
//   pnpm --filter @sandbox/bench bench --profile
//   pnpm --filter @sandbox/bench bench --rounds 1 --duration 3 --cases tiny-c32,tiny-c256 --skip-scale
//   pnpm --filter @sandbox/bench bench --nginx-keepalive 256     # nginx keeps every upstream connection
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { connect, type Socket } from 'node:net';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { createRedisPreviewState } from '@sandbox/preview-state-redis';
import {
  assertDockerEngine,
  docker,
  ensureFixtureImages,
  parseWrkReport,
  removeCreatedContainers,
  type SessionContainer,
  startRedisServer,
  startSessionContainer,
  tcpSocketsTowards,
  type WrkReport,
} from '@sandbox/test-fixtures';
import { benchmarkChart, type ChartCase } from './chart.js';
import { type Peer, startCaddy, startHaproxy } from './peers.js';
import {
  APP_DIR,
  BENCH_DIR,
  capture,
  childPids,
  codeUnderTest,
  ensureExecutables,
  KEY,
  median,
  mib,
  nginxErrorLog,
  numberFlag,
  RESULTS_DIR,
  ROOT_DIR,
  registerPreview,
  removeTempDirs,
  round,
  rssBytes,
  runBenchmark,
  type Service,
  sleep,
  spawnNginx,
  startService,
  stopChild,
  stopChildren,
  tempDir,
  track,
} from './support.js';

const execFileAsync = promisify(execFile);

// ---------------------------------------------------------------------------------------------------------
// Configuration.

const { values: flags } = parseArgs({
  options: {
    rounds: { type: 'string' },
    duration: { type: 'string' },
    cases: { type: 'string' },
    'skip-scale': { type: 'boolean' },
    'skip-cores': { type: 'boolean' },
    'scale-rounds': { type: 'string' },
    profile: { type: 'boolean' },
    manager: { type: 'string' },
    'nginx-keepalive': { type: 'string' },
  },
});

const ROUNDS = Math.floor(numberFlag(flags.rounds, 'rounds', 3, 1, 9));
const DURATION_S = Math.floor(numberFlag(flags.duration, 'duration', 5, 1, 30));
const WARMUP_S = 1;
const MANAGER_MODE = flags.manager ?? 'source';
if (MANAGER_MODE !== 'source' && MANAGER_MODE !== 'bundle')
  throw new Error(`--manager must be source or bundle, got ${MANAGER_MODE}`);
const SCALE = flags['skip-scale'] !== true;
const EVERY_CORE = flags['skip-cores'] !== true;
/** The every-core section's worker, thread or GOMAXPROCS count: all of the machine's cores. */
const CORES = cpus().length;
// The edge-at-scale goal is a 5 % difference, and single 5 s rounds on a shared 2-core machine swing
// by more than that either way: more rounds than the load cases by default, for a steadier median.
const SCALE_ROUNDS = Math.floor(numberFlag(flags['scale-rounds'], 'scale-rounds', 9, 1, 15));
/** nginx's `keepalive` (idle upstream connections kept per worker); 64 matches our agent's maxFreeSockets. */
const NGINX_KEEPALIVE = Math.floor(numberFlag(flags['nginx-keepalive'], 'nginx-keepalive', 64, 1, 4096));
const PROFILE = flags.profile === true;

const RESULTS_FILE = join(RESULTS_DIR, 'http.json');
const CHART_FILE = join(RESULTS_DIR, 'http.svg');
const TINY_BODY = 'hello world hello world';
const TINY_PATH = `/__fixture/respond?body=${encodeURIComponent(TINY_BODY)}`;
const POST_BYTES = 16 * 1024;
const IDLE_CONNECTIONS = 1000;
const IDLE_TRIALS = 3;

// direct: the container itself; nginx, haproxy, caddy: the peers, one core each; pipe: a Node byte pipe
// without HTTP (byte-pipe.ts), the engine's ceiling; bare: proxy-core alone
// (bare-proxy.ts), what forwarding costs on our engine; ours: container-manager as `pnpm start` runs it
// (access log on, to its stdout pipe); lean: the same with ACCESS_LOG=false; edge: edge-proxy, as its start
// script runs it (access log on), reading a Redis.
type PathName = 'direct' | 'nginx' | 'haproxy' | 'caddy' | 'pipe' | 'bare' | 'ours' | 'lean' | 'edge';
const PATHS: PathName[] = ['direct', 'nginx', 'haproxy', 'caddy', 'pipe', 'bare', 'ours', 'lean', 'edge'];
const EDGE_DIR = join(ROOT_DIR, 'apps/edge-proxy/');

interface BenchCase {
  name: string;
  label: string;
  connections: number;
  /** wrk's threads (-t); 1 unless said. */
  threads?: number;
  /** Path on the app (after the prefix). */
  path: string;
  post?: boolean;
}

const ALL_CASES: BenchCase[] = [
  { name: 'tiny-c32', label: `tiny (${TINY_BODY.length} B) c32`, connections: 32, path: TINY_PATH },
  { name: 'bytes64k-c32', label: '64 KiB c32', connections: 32, path: '/__fixture/bytes/65536' },
  // The echo reads the whole body (and hashes it) before it answers, as an upload handler does.
  { name: 'post16k-c32', label: 'POST 16 KiB c32', connections: 32, path: '/upload', post: true },
  { name: 'tiny-c256', label: `tiny (${TINY_BODY.length} B) c256`, connections: 256, path: TINY_PATH },
];
const CASES = flags.cases
  ? flags.cases.split(',').map((name) => {
      const found = ALL_CASES.find((c) => c.name === name.trim());
      if (!found) throw new Error(`unknown case ${name}; cases: ${ALL_CASES.map((c) => c.name).join(', ')}`);
      return found;
    })
  : ALL_CASES;

// The every-core section: the peers and the edge on every core, against the container itself. The paths
// without a multi-core setting (pipe, bare, ours, lean: container-manager is one process) are left out.
type CorePathName = Extract<PathName, 'direct' | 'nginx' | 'haproxy' | 'caddy' | 'edge'>;
const CORE_PATHS: CorePathName[] = ['direct', 'nginx', 'haproxy', 'caddy', 'edge'];
const CORES_CASE: BenchCase = {
  name: 'tiny-c32-cores',
  label: `tiny c32, every core (${CORES})`,
  connections: 32,
  // Still one wrk thread, as in the load cases: on 2 cores wrk, the container and the proxy share the CPUs,
  // and a second wrk thread would take the core the proxy's second worker is meant to get.
  threads: 1,
  path: TINY_PATH,
};

/** Before a run, at most this many sockets may be in TIME_WAIT towards its container (of ~28k ports). */
const TIME_WAIT_LIMIT = 5000;
/** They last 60 s on Linux; waiting longer would not help. */
const TIME_WAIT_MAX_WAIT_MS = 65_000;

// Upper bound of the whole run; past it the benchmark gives up, cleans up and exits 1.
const WATCHDOG_MS =
  180_000 +
  CASES.length * PATHS.length * (ROUNDS * (DURATION_S + 3) + WARMUP_S + 3) * 1000 +
  // Waits for TIME_WAIT sockets to expire (the 256-connection case).
  CASES.length * ROUNDS * 2 * TIME_WAIT_MAX_WAIT_MS +
  (SCALE ? 120_000 : 0) +
  // Every core: four containers and four proxies started, stopped and removed; one TIME_WAIT wait a round.
  (EVERY_CORE
    ? 90_000 +
      CORE_PATHS.length * (ROUNDS * (DURATION_S + 3) + WARMUP_S + 3) * 1000 +
      ROUNDS * TIME_WAIT_MAX_WAIT_MS
    : 0) +
  (PROFILE ? 60_000 : 0);

// ---------------------------------------------------------------------------------------------------------
// Small helpers.

/** utime and stime of a process, in clock ticks (USER_HZ, 100 on Linux). */
function cpuTimes(pid: number): { user: number; sys: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces; the fields after its closing parenthesis are fixed.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: Number(fields[11]), sys: Number(fields[12]) };
}
const TICKS_PER_SECOND = 100;

/**
 * TCP sockets of this network namespace in TIME_WAIT towards ip:port. A proxy whose idle upstream pool is
 * smaller than its client concurrency opens (and closes) a connection per request; each close leaves one
 * for 60 s, and once the ephemeral ports towards that one address are used up, connect() slows to a crawl.
 */
function timeWaitTowards(ip: string, port: number): number {
  return tcpSocketsTowards(ip, port, 'timeWait').size;
}

/** Waits until few enough sockets towards ip:port are in TIME_WAIT; resolves with the time waited. */
async function drainTimeWait(ip: string, port: number): Promise<number> {
  const started = performance.now();
  while (timeWaitTowards(ip, port) > TIME_WAIT_LIMIT && performance.now() - started < TIME_WAIT_MAX_WAIT_MS) {
    await sleep(500);
  }
  return Math.round(performance.now() - started);
}

// ---------------------------------------------------------------------------------------------------------
// Tools: nginx-light and wrk.

async function toolVersion(file: string, args: string[]): Promise<string> {
  try {
    const { stdout, stderr } = await execFileAsync(file, args, { timeout: 10_000 });
    return `${stdout}${stderr}`.split('\n')[0]?.trim() ?? '';
  } catch (error) {
    // wrk -v prints its version, then its usage, and exits 1.
    const failure = error as { stdout?: string; stderr?: string };
    return `${failure.stdout ?? ''}${failure.stderr ?? ''}`.split('\n')[0]?.trim() ?? '';
  }
}

// ---------------------------------------------------------------------------------------------------------
// nginx: master + 1 worker (N in the every-core section), in the foreground, under a temporary prefix.

interface Nginx {
  child: ChildProcess;
  pid: number;
  url: string;
  config: string;
  /** The master and its workers. */
  pids(): number[];
  output(): string;
}

/** The hard open-files limit of this process (its children may raise their soft limit up to it). */
function hardFilesLimit(): number {
  const limits = readFileSync('/proc/self/limits', 'utf8');
  const hard = /^Max open files\s+\S+\s+(\d+|unlimited)/m.exec(limits)?.[1];
  return hard === undefined || hard === 'unlimited' ? 65536 : Number(hard);
}

function nginxConfig(
  prefix: string,
  port: number,
  upstream: string,
  sessionId: string,
  workers: number,
): string {
  const files = Math.min(65536, hardFilesLimit());
  return `# written by bench/http.ts
worker_processes ${workers};
daemon off;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
worker_rlimit_nofile ${files};
events {
  worker_connections ${Math.floor(files / 2)};
}
http {
  access_log off;
  client_body_temp_path ${prefix}/client_body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
  # Kept in memory: a 16 KiB request body is buffered whole (nginx's default request buffering), and a
  # response never spills to a temporary file.
  client_body_buffer_size 64k;
  proxy_max_temp_file_size 0;
  upstream u {
    server ${upstream};
    keepalive ${NGINX_KEEPALIVE};
  }
  server {
    listen 127.0.0.1:${port};
    # /previews/<id>/rest -> /rest, as our proxy strips the prefix.
    location /previews/${sessionId}/ {
      proxy_pass http://u/;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`;
}

/**
 * Started once it serves the session's container through the prefix; `workers` worker processes (one unless
 * told). Its prefix is <dir>/nginx: a second one needs another `dir`.
 */
async function startNginx(
  binary: string,
  dir: string,
  upstream: string,
  sessionId: string,
  workers = 1,
): Promise<Nginx> {
  const { child, pid, port, prefix, config, output } = await spawnNginx(binary, dir, (prefix, port) =>
    nginxConfig(prefix, port, upstream, sessionId, workers),
  );
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 15_000;
  let last = '';
  for (;;) {
    try {
      const res = await fetch(`${url}/previews/${sessionId}/__fixture/ready`, {
        signal: AbortSignal.timeout(1000),
      });
      const text = await res.text();
      if (res.ok && text.trim() === 'ok') break;
      last = `${res.status} ${text.slice(0, 200)}`;
    } catch (error) {
      // Not listening yet.
      last = String((error as { cause?: unknown }).cause ?? error);
    }
    if (child.exitCode !== null || Date.now() > deadline)
      throw new Error(
        `nginx did not start (exit ${child.exitCode ?? child.signalCode ?? 'none'}, last try: ${last}):\n${output()}\n${nginxErrorLog(prefix).slice(-4000)}`,
      );
    await sleep(100);
  }
  return { child, pid, url, config, pids: () => [pid, ...childPids(pid)], output };
}

// ---------------------------------------------------------------------------------------------------------
// container-manager, as `pnpm start` runs it, in a child process of its own.

interface Manager extends Service {
  command: string;
}

// `ours` is container-manager with its defaults, as users run it (one JSON access line per request, to its
// stdout, a pipe the benchmark reads); `lean` adds ACCESS_LOG=false, the peers' setting (no access log).
async function startManager(
  extraNodeArgs: string[] = [],
  extraEnv: Record<string, string> = {},
): Promise<Manager> {
  return startApp(APP_DIR, 'container-manager', extraNodeArgs, {
    INTERNAL_SERVICE_KEY: KEY,
    ...extraEnv,
  });
}

/**
 * edge-proxy as `pnpm --filter @sandbox/edge-proxy start` runs it (its defaults), reading from `redisUrl`, on
 * one process (WORKERS=1) unless told: the load cases compare one core with one core. With more, the
 * returned pid is the cluster's primary, its workers are its children (childPids).
 */
function startEdge(redisUrl: string, workers = 1): Promise<Manager> {
  return startApp(EDGE_DIR, 'edge-proxy', [], { REDIS_URL: redisUrl, WORKERS: String(workers) });
}

/** A Node byte pipe to the container, no HTTP (byte-pipe.ts): what the engine allows any proxy at best. */
function startPipe(upstream: string): Promise<Manager> {
  return startApp(BENCH_DIR, 'byte-pipe', [], { TARGET: upstream }, 'byte-pipe.ts');
}

/** proxy-core alone on node:http, forwarding the prefix to the container (bare-proxy.ts). */
function startBare(upstream: string, prefix: string): Promise<Manager> {
  return startApp(BENCH_DIR, 'bare-proxy', [], { TARGET: upstream, PREFIX: prefix }, 'bare-proxy.ts');
}

async function startApp(
  appDir: string,
  name: string,
  extraNodeArgs: string[],
  appEnv: Record<string, string>,
  script = 'src/main.ts',
): Promise<Manager> {
  // `pnpm start` is `tsx src/main.ts`: tsx runs node with its loader over the sources (startService runs that
  // node process itself, so that the pid we read is the service's own). --manager bundle runs the tsup
  // bundle (pnpm build) instead.
  const bundled = MANAGER_MODE === 'bundle' && script === 'src/main.ts';
  const entry = bundled ? ['dist/main.js'] : ['--import', 'tsx', script];
  if (bundled && !existsSync(join(appDir, 'dist/main.js')))
    throw new Error(`--manager bundle needs ${name}/dist/main.js: run pnpm build first`);
  const nodeArgs = [...extraNodeArgs, ...entry];
  const service = await startService({
    name,
    cwd: appDir,
    nodeArgs,
    env: { PORT: '0', HOST: '127.0.0.1', SHUTDOWN_GRACE_MS: '2000', ...appEnv },
    // 256 connections need 512 files and more.
    raiseFilesLimit: true,
  });
  return { ...service, command: `node ${nodeArgs.join(' ')}` };
}

/** Polls a URL until it answers 200: the edge serves a registration once the publisher's change reached it. */
async function waitUntilServed(url: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const status = await fetch(url, { signal: AbortSignal.timeout(2000) }).then(
      async (res) => {
        await res.arrayBuffer();
        return res.status;
      },
      () => 0,
    );
    if (status === 200) return;
    if (Date.now() > deadline) throw new Error(`${url} still answers ${status} after 10 s`);
    await sleep(50);
  }
}

function register(manager: Manager, box: SessionContainer): Promise<void> {
  return registerPreview(manager.url, box.sessionId, 3000);
}

// ---------------------------------------------------------------------------------------------------------
// wrk.

type WrkResult = WrkReport;

let wrkBinary = 'wrk';
let postScript = '';

async function runWrk(url: string, c: BenchCase, seconds: number, script?: string): Promise<WrkResult> {
  const args = [`-t${c.threads ?? 1}`, `-c${c.connections}`, `-d${seconds}s`, '--latency', '--timeout', '5s'];
  const lua = script ?? (c.post ? postScript : undefined);
  if (lua !== undefined) args.push('-s', lua);
  args.push(url);
  const child = track(spawn(wrkBinary, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
  const output = capture(child);
  const timer = setTimeout(() => child.kill('SIGKILL'), (seconds + 20) * 1000);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(timer);
  if (code !== 0) throw new Error(`wrk ${args.join(' ')} exited with ${code}:\n${output()}`);
  return parseWrkReport(output());
}

// ---------------------------------------------------------------------------------------------------------
// One measured run: wrk plus the proxy's RSS (sampled) and CPU.

interface RunResult extends WrkResult {
  round: number;
  proxyRssMiB?: { end: number; peak: number };
  /** Proxy CPU time over the run, as a percentage of one core. */
  proxyCpuPercent?: number;
  /**
   * The kernel's part of it (stime): the socket system calls. TCP work done in softirq context (delivering
   * the bytes to the peer over loopback or the bridge) is not charged to the process.
   */
  proxySysPercent?: number;
  /** The proxy's CPU time (user + sys) over the run divided by the requests wrk completed, in µs. */
  cpuUsPerRequest?: number;
  /** Sockets in TIME_WAIT towards the container before and after the run (see timeWaitTowards). */
  upstreamTimeWait: { before: number; after: number };
  /** Time waited before the run for TIME_WAIT sockets towards the container to expire (drainTimeWait). */
  waitedMs?: number;
}

async function measuredRun(
  url: string,
  c: BenchCase,
  seconds: number,
  pids: (() => number[]) | undefined,
  roundIndex: number,
  containerIp: string,
): Promise<RunResult> {
  const twBefore = timeWaitTowards(containerIp, 3000);
  const timeWait = () => ({ before: twBefore, after: timeWaitTowards(containerIp, 3000) });
  if (!pids) {
    const result = await runWrk(url, c, seconds);
    return { ...result, round: roundIndex, upstreamTimeWait: timeWait() };
  }
  const sum = (read: (pid: number) => number) => pids().reduce((total, pid) => total + read(pid), 0);
  const cpuNow = () =>
    pids().reduce(
      (total, pid) => {
        const times = cpuTimes(pid);
        return { user: total.user + times.user, sys: total.sys + times.sys };
      },
      { user: 0, sys: 0 },
    );
  const ticksBefore = cpuNow();
  const started = performance.now();
  let peak = sum(rssBytes);
  const sampler = setInterval(() => {
    try {
      peak = Math.max(peak, sum(rssBytes));
    } catch {
      // The process is gone (a crash): the run's end reports it.
    }
  }, 200);
  try {
    const result = await runWrk(url, c, seconds);
    const elapsed = (performance.now() - started) / 1000;
    const end = sum(rssBytes);
    peak = Math.max(peak, end);
    const ticksAfter = cpuNow();
    const share = (ticks: number) => round((ticks / TICKS_PER_SECOND / elapsed) * 100, 0);
    const cpuTicks = ticksAfter.user + ticksAfter.sys - ticksBefore.user - ticksBefore.sys;
    return {
      ...result,
      round: roundIndex,
      proxyRssMiB: { end: mib(end), peak: mib(peak) },
      proxyCpuPercent: share(ticksAfter.user + ticksAfter.sys - ticksBefore.user - ticksBefore.sys),
      proxySysPercent: share(ticksAfter.sys - ticksBefore.sys),
      cpuUsPerRequest: round((cpuTicks * (1e6 / TICKS_PER_SECOND)) / Math.max(1, result.requests), 1),
      upstreamTimeWait: timeWait(),
    };
  } finally {
    clearInterval(sampler);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Sanity: each path answers each case as expected before any load.

async function checkPath(base: string, c: BenchCase, path: PathName): Promise<void> {
  const init: RequestInit = { signal: AbortSignal.timeout(10_000) };
  if (c.post) {
    init.method = 'POST';
    init.headers = { 'content-type': 'application/octet-stream' };
    init.body = Buffer.alloc(POST_BYTES, 97);
  }
  const res = await fetch(`${base}${c.path}`, init);
  const body = Buffer.from(await res.arrayBuffer());
  const fail = (what: string) => {
    throw new Error(`${path} ${c.name}: ${what} (status ${res.status}, ${body.length} bytes)`);
  };
  if (res.status !== 200) fail('not 200');
  if (c.path === TINY_PATH && body.toString() !== TINY_BODY) fail(`body is not ${JSON.stringify(TINY_BODY)}`);
  if (c.path.startsWith('/__fixture/bytes/') && body.length !== 65536) fail('body is not 65536 bytes');
  if (c.post && (JSON.parse(body.toString()) as { bodyLength?: number }).bodyLength !== POST_BYTES)
    fail(`the app did not receive ${POST_BYTES} bytes`);
}

// ---------------------------------------------------------------------------------------------------------
// Idle keep-alive client connections: one request each, then idle; the proxy's RSS growth per connection.

interface IdleClient {
  socket: Socket;
  closed: boolean;
}

function openIdleClient(host: string, port: number, path: string): Promise<IdleClient> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    const client: IdleClient = { socket, closed: false };
    let received = Buffer.alloc(0);
    let done = false;
    const timer = setTimeout(() => finish(new Error('no complete response within 10 s')), 10_000);
    function finish(error?: Error) {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.off('data', onData);
      if (error) {
        socket.destroy();
        reject(error);
      } else {
        resolve(client);
      }
    }
    function onData(chunk: Buffer) {
      received = Buffer.concat([received, chunk]);
      const headerEnd = received.indexOf('\r\n\r\n');
      if (headerEnd === -1) return;
      const head = received.subarray(0, headerEnd).toString('latin1');
      if (!/^HTTP\/1\.1 200 /.test(head))
        return finish(new Error(`unexpected response: ${head.slice(0, 80)}`));
      const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? Number.NaN);
      if (!Number.isFinite(length)) return finish(new Error('response without content-length'));
      if (received.length >= headerEnd + 4 + length) finish();
    }
    socket.setNoDelay(true);
    socket.on('data', onData);
    socket.on('error', (error) => finish(error));
    socket.once('close', () => {
      client.closed = true;
      finish(new Error('closed before the response'));
    });
    socket.once('connect', () => {
      socket.write(`GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\n\r\n`);
    });
  });
}

async function openIdleClients(
  host: string,
  port: number,
  path: string,
  count: number,
): Promise<IdleClient[]> {
  const clients: IdleClient[] = [];
  let next = 0;
  const worker = async () => {
    while (next < count) {
      next += 1;
      clients.push(await openIdleClient(host, port, path));
    }
  };
  try {
    // 32 at a time, like the load cases: the proxy's upstream pool stays small.
    await Promise.all(Array.from({ length: 32 }, worker));
  } catch (error) {
    for (const client of clients) client.socket.destroy();
    throw error;
  }
  return clients;
}

interface IdleResult {
  connections: number;
  trials: { rssBeforeMiB: number; rssAfterMiB: number; kibPerConnection: number; openMs: number }[];
  kibPerConnectionMedian: number;
  /** Of `connections` idle clients, how many the proxy had closed 6 s after their response. */
  closedByProxyAfter6s: number;
}

async function idleKeepAlive(base: string, prefix: string, pids: () => number[]): Promise<IdleResult> {
  const { hostname, port } = new URL(base);
  const path = `${prefix}${TINY_PATH}`;
  const rss = () => pids().reduce((total, pid) => total + rssBytes(pid), 0);
  // Warm-up, one unmeasured trial: the code paths, the upstream pool, and the heap growth that the first
  // thousand connections cause once (later trials reuse that memory).
  for (const client of await openIdleClients(hostname, Number(port), path, IDLE_CONNECTIONS))
    client.socket.destroy();
  await sleep(1500);
  const trials: IdleResult['trials'] = [];
  for (let trial = 0; trial < IDLE_TRIALS; trial++) {
    const before = rss();
    const started = performance.now();
    const clients = await openIdleClients(hostname, Number(port), path, IDLE_CONNECTIONS);
    const openMs = performance.now() - started;
    // Within Node's 5 s keep-alive timeout of the server: every connection is still open when read.
    await sleep(1000);
    const after = rss();
    const stillOpen = clients.filter((client) => !client.closed).length;
    for (const client of clients) client.socket.destroy();
    if (stillOpen !== IDLE_CONNECTIONS)
      throw new Error(`only ${stillOpen} of ${IDLE_CONNECTIONS} idle connections were open when measured`);
    trials.push({
      rssBeforeMiB: mib(before),
      rssAfterMiB: mib(after),
      kibPerConnection: round((after - before) / IDLE_CONNECTIONS / 1024, 1),
      openMs: Math.round(openMs),
    });
    await sleep(1500);
  }
  // How long does the proxy keep an idle client? Count the ones it has closed 6 s later.
  const clients = await openIdleClients(hostname, Number(port), path, IDLE_CONNECTIONS);
  await sleep(6000);
  const closedByProxyAfter6s = clients.filter((client) => client.closed).length;
  for (const client of clients) client.socket.destroy();
  await sleep(500);
  return {
    connections: IDLE_CONNECTIONS,
    trials,
    kibPerConnectionMedian: round(median(trials.map((t) => t.kibPerConnection)), 1),
    closedByProxyAfter6s,
  };
}

// ---------------------------------------------------------------------------------------------------------
// The registry at scale, in a process of its own (registry-scale.ts).

async function registryScale(): Promise<unknown> {
  const child = track(
    spawn(process.execPath, ['--expose-gc', '--import', 'tsx', 'registry-scale.ts', '10000'], {
      cwd: BENCH_DIR,
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  const output = capture(child);
  const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(timer);
  const line = output()
    .split('\n')
    .find((l) => l.startsWith('{'));
  if (code !== 0 || line === undefined) throw new Error(`registry-scale.ts failed (${code}):\n${output()}`);
  return JSON.parse(line);
}

// ---------------------------------------------------------------------------------------------------------
// The edge at scale: 10,000 registered sessions, traffic spread over 1,000 of them, against one session.

const SCALE_SESSIONS = 10_000;
const SCALE_HOT = 1000;

/** A uuid-shaped session id, 36 characters, as real ones are (so hashing them costs what it will). */
function scaleSessionId(i: number): string {
  return `5d0b7c2e-9a41-4c3f-8e6d-${i.toString(16).padStart(12, '0')}`;
}

function wrkErrors({ errors }: WrkResult): number {
  return errors.connect + errors.read + errors.write + errors.timeout + errors.non2xx;
}

/** A wrk script that cycles its requests over `paths`, one per request, in order. */
function cyclingScript(file: string, paths: string[]): string {
  const list = paths.map((path) => `  ${JSON.stringify(path)},`).join('\n');
  writeFileSync(
    file,
    `local paths = {\n${list}\n}\nlocal n = #paths\nlocal i = 0\n` +
      'request = function()\n  i = i % n + 1\n  return wrk.format(nil, paths[i])\nend\n',
  );
  return file;
}

interface ScaleRound {
  round: number;
  single: WrkResult;
  spread: WrkResult;
  /** The edge's CPU time (user + sys) per request in each run, µs: steadier than req/s on a busy machine. */
  singleCpuUsPerRequest: number;
  spreadCpuUsPerRequest: number;
}

/**
 * edge-proxy reading 10,000 registrations and container states from a Redis of its own (written here,
 * as a container-manager publishes them; every session points at the same real container, which serves
 * any path), in alternating rounds: requests cycling over 1,000 of the sessions, then the same script
 * shape naming one session 1,000 times. Registering 10,000 sessions through container-manager would need
 * 10,000 containers; the edge's replica is where the proxy looks them up either way.
 */
async function edgeAtScale(dir: string, box: SessionContainer) {
  const ip = box.ip;
  if (!ip) throw new Error('the scale container has no IP address');
  const redis = await startRedisServer();
  const state = createRedisPreviewState({ url: redis.url, role: 'writer' });
  let edge: Manager | undefined;
  try {
    await state.ready();
    state.publishEngineState({ connected: true });
    const ids = Array.from({ length: SCALE_SESSIONS }, (_, i) => scaleSessionId(i));
    for (const id of ids) {
      await state.registry.register(id, 3000);
      state.publishContainerState(id, { state: 'running', ip, network: 'bridge', containerId: box.id });
    }
    edge = await startEdge(redis.url);
    const started = edge;
    // The writer's messages arrive in order: once the last session is served, every one is there.
    await waitUntilServed(`${started.url}/previews/${ids.at(-1)}/`);
    const rssAfterSync = mib(rssBytes(started.pid));
    const step = SCALE_SESSIONS / SCALE_HOT;
    const hot = ids.filter((_, i) => i % step === 0);
    const pathOf = (id: string) => `/previews/${id}${TINY_PATH}`;
    const scripts = {
      spread: cyclingScript(join(dir, 'spread.lua'), hot.map(pathOf)),
      single: cyclingScript(
        join(dir, 'single.lua'),
        hot.map(() => pathOf(hot[0] as string)),
      ),
    };
    const c = ALL_CASES[0] as BenchCase;
    const run = (script: string, seconds: number) => runWrk(`${started.url}/`, c, seconds, script);
    const cpuTicks = () => {
      const { user, sys } = cpuTimes(started.pid);
      return user + sys;
    };
    // The run's result and the edge's CPU per request during it.
    const measured = async (script: string) => {
      const before = cpuTicks();
      const result = await run(script, DURATION_S);
      const ticks = cpuTicks() - before;
      const cpuUs = result.requests > 0 ? round(((ticks / TICKS_PER_SECOND) * 1e6) / result.requests, 1) : 0;
      return { result, cpuUs };
    };
    await run(scripts.spread, WARMUP_S);
    await run(scripts.single, WARMUP_S);
    const rounds: ScaleRound[] = [];
    for (let round = 1; round <= SCALE_ROUNDS; round++) {
      const single = await measured(scripts.single);
      const spread = await measured(scripts.spread);
      rounds.push({
        round,
        single: single.result,
        spread: spread.result,
        singleCpuUsPerRequest: single.cpuUs,
        spreadCpuUsPerRequest: spread.cpuUs,
      });
      console.log(
        `  scale round ${round}: ${fmtRps(spread.result.requestsPerSecond)} req/s over ${SCALE_HOT} sessions` +
          ` (p99 ${fmtMs(spread.result.latencyMs.p99)} ms, ${spread.cpuUs} µs CPU per request),` +
          ` ${fmtRps(single.result.requestsPerSecond)} req/s on one` +
          ` (p99 ${fmtMs(single.result.latencyMs.p99)} ms, ${single.cpuUs} µs)`,
      );
    }
    const errors = rounds.reduce((sum, r) => sum + wrkErrors(r.single) + wrkErrors(r.spread), 0);
    return {
      sessions: SCALE_SESSIONS,
      hotSessions: SCALE_HOT,
      edgeRssMiBAfterSync: rssAfterSync,
      spreadRequestsPerSecond: median(rounds.map((r) => r.spread.requestsPerSecond)),
      singleRequestsPerSecond: median(rounds.map((r) => r.single.requestsPerSecond)),
      ratioSpreadOverSingle: round(
        median(rounds.map((r) => r.spread.requestsPerSecond / r.single.requestsPerSecond)),
        3,
      ),
      spreadP99Ms: median(rounds.map((r) => r.spread.latencyMs.p99)),
      spreadCpuUsPerRequest: median(rounds.map((r) => r.spreadCpuUsPerRequest)),
      singleCpuUsPerRequest: median(rounds.map((r) => r.singleCpuUsPerRequest)),
      cpuRatioSpreadOverSingle: round(
        median(rounds.map((r) => r.spreadCpuUsPerRequest / r.singleCpuUsPerRequest)),
        3,
      ),
      singleP99Ms: median(rounds.map((r) => r.single.latencyMs.p99)),
      errors,
      rounds,
    };
  } finally {
    if (edge) await stopChild(edge.child, 'SIGTERM', 5000).catch(() => {});
    await state.close().catch(() => {});
    await redis.stop().catch(() => {});
  }
}

// ---------------------------------------------------------------------------------------------------------
// Every core: direct, nginx, HAProxy, Caddy and the edge on all of the machine's cores.

/** The wrk command line of a case's runs, for the output and the results. */
function wrkCommand(c: BenchCase, seconds: number): string {
  return `wrk -t${c.threads ?? 1} -c${c.connections} -d${seconds}s --latency --timeout 5s`;
}

/**
 * Resolves once the cluster's primary said that all `workers` listen: startService returns at the first
 * `listening on`, which may be one worker's, and a worker not yet listening gets no connections.
 */
async function waitForWorkers(service: Manager, workers: number): Promise<void> {
  if (workers <= 1) return;
  const all = new RegExp(`listening on \\S+ \\(${workers} workers\\)`);
  const deadline = Date.now() + 30_000;
  while (!all.test(service.output())) {
    if (service.child.exitCode !== null || Date.now() > deadline)
      throw new Error(
        `edge-proxy: not all of its ${workers} workers listened:\n${service.output().slice(-4000)}`,
      );
    await sleep(50);
  }
}

/** The status of one GET on a connection of its own (0 when it fails): fetch would reuse its connection. */
function statusOnNewConnection(url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = httpGet(url, { agent: false, timeout: 2000 }, (res) => {
      res.resume();
      res.once('close', () => resolve(res.statusCode ?? 0));
    });
    req.once('timeout', () => req.destroy());
    req.once('error', () => resolve(0));
  });
}

/**
 * Every worker of an edge cluster serves `url`: each reads Redis on its own, and waitUntilServed's requests,
 * on one kept-alive connection, reach one worker. The primary hands new connections to the workers in turn,
 * so 4 x workers answers of 200 in a row, each on a new connection, have been through every one of them.
 */
async function waitUntilServedByEvery(url: string, workers: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  let inARow = 0;
  while (inARow < 4 * workers) {
    const status = await statusOnNewConnection(url);
    if (status === 200) {
      inARow += 1;
      continue;
    }
    inARow = 0;
    if (Date.now() > deadline) throw new Error(`${url} still answers ${status} on some worker after 10 s`);
    await sleep(50);
  }
}

interface EveryCoreSetup {
  tools: { nginx: string; haproxy: string; caddy: string };
  /** The run's temporary directory. */
  dir: string;
  /** The load cases' direct container: the container itself needs no setting per core count. */
  direct: SessionContainer;
  /** The idle container-manager the load cases' edge reads from, through `redisUrl`. */
  publisher: Manager;
  redisUrl: string;
}

interface EveryCoreGoal {
  edgeXNginx: number;
  edgeXHaproxy: number;
  p99XNginx?: number;
  cpuPerRequestXNginx?: number;
}

type EveryCoreResult = { config: Record<string, unknown> } & (
  | { case: BenchCase; paths: Record<CorePathName, PathSummary>; goal: EveryCoreGoal }
  | { error: string }
);

/**
 * The every-core section: nginx, HAProxy, Caddy and a second edge-proxy, each set to CORES and on a fresh
 * container of its own (no TIME_WAIT left by the load cases in the way), measured in alternating rounds with
 * the direct container. They are stopped, and their containers removed, at the end; on a failure too (and
 * cleanup would end them anyway: they are tracked children). A failure is the result's `error`.
 */
async function everyCore({
  tools,
  dir,
  direct,
  publisher,
  redisUrl,
}: EveryCoreSetup): Promise<EveryCoreResult> {
  const c = CORES_CASE;
  const config: Record<string, unknown> = {
    cores: CORES,
    connections: c.connections,
    wrkThreads: c.threads ?? 1,
    wrk: wrkCommand(c, DURATION_S),
    order: `alternating rounds: ${CORE_PATHS.join(', ')}, ${CORE_PATHS[0]}, ...`,
    nginxWorkers: CORES,
    haproxyNbthread: CORES,
    caddyGomaxprocs: CORES,
    edgeWorkers: CORES,
    containers: "direct: the load cases' direct container; every other path a fresh one of its own",
    proxyCpu:
      'every process of the path: nginx master + workers, the HAProxy process (all its threads), the Caddy' +
      ' process, the edge primary + workers',
  };
  const containers: SessionContainer[] = [];
  const services: { child: ChildProcess }[] = [];
  const fresh = async () => {
    const box = await startSessionContainer({ ports: [3000] });
    containers.push(box);
    return box;
  };
  const kept = <T extends { child: ChildProcess }>(service: T): T => {
    services.push(service);
    return service;
  };
  try {
    // Every start settles before a failure is thrown: the finally below then stops all that did start.
    const boxesStarting = [fresh(), fresh(), fresh(), fresh()] as const;
    await Promise.allSettled(boxesStarting);
    const [nginxBox, haproxyBox, caddyBox, edgeBox] = await Promise.all(boxesStarting);
    const boxes: Record<CorePathName, SessionContainer> = {
      direct,
      nginx: nginxBox,
      haproxy: haproxyBox,
      caddy: caddyBox,
      edge: edgeBox,
    };
    const ipOf = (path: CorePathName) => {
      const ip = boxes[path].ip;
      if (!ip) throw new Error(`the every-core ${path} session container has no IP address`);
      return ip;
    };
    const prefixOf = (path: CorePathName) => `/previews/${boxes[path].sessionId}`;
    // Registered as the load cases' edge container is: the edge finds it in what the publisher wrote to Redis.
    await register(publisher, boxes.edge);
    // A folder of their own: the one-core nginx, HAProxy and Caddy (still running) keep <dir>/nginx and so on.
    const coresDir = join(dir, 'cores');
    const starting = [
      startNginx(tools.nginx, coresDir, `${ipOf('nginx')}:3000`, boxes.nginx.sessionId, CORES).then(kept),
      startHaproxy(tools.haproxy, coresDir, `${ipOf('haproxy')}:3000`, boxes.haproxy.sessionId, CORES).then(
        kept,
      ),
      startCaddy(tools.caddy, coresDir, `${ipOf('caddy')}:3000`, boxes.caddy.sessionId, CORES).then(kept),
      startEdge(redisUrl, CORES).then(kept),
    ] as const;
    await Promise.allSettled(starting);
    const [ngx, haproxy, caddy, edge] = await Promise.all(starting);
    Object.assign(config, {
      nginxConfig: ngx.config,
      haproxyConfig: haproxy.config,
      caddyConfig: caddy.config,
      edge: `WORKERS=${CORES} ${edge.command}`,
    });
    await waitForWorkers(edge, CORES);
    await waitUntilServed(`${edge.url}${prefixOf('edge')}/`);
    if (CORES > 1) await waitUntilServedByEvery(`${edge.url}${prefixOf('edge')}/`, CORES);

    const serviceUrl: Record<Exclude<CorePathName, 'direct'>, string> = {
      nginx: ngx.url,
      haproxy: haproxy.url,
      caddy: caddy.url,
      edge: edge.url,
    };
    const baseOf = (path: CorePathName) =>
      path === 'direct' ? `http://${ipOf('direct')}:3000` : `${serviceUrl[path]}${prefixOf(path)}`;
    const urlOf = (path: CorePathName) => `${baseOf(path)}${c.path}`;
    // All of a path's processes: its CPU time per request is what the whole proxy spends.
    const pidsOf: Record<CorePathName, (() => number[]) | undefined> = {
      direct: undefined,
      nginx: () => ngx.pids(),
      haproxy: () => [haproxy.pid],
      caddy: () => [caddy.pid],
      edge: () => [edge.pid, ...childPids(edge.pid)],
    };
    for (const path of CORE_PATHS) await checkPath(baseOf(path), c, path);
    for (const path of CORE_PATHS) await runWrk(urlOf(path), c, WARMUP_S);
    const runs = Object.fromEntries(CORE_PATHS.map((path) => [path, []])) as unknown as Record<
      CorePathName,
      RunResult[]
    >;
    for (let r = 0; r < ROUNDS; r++) {
      for (const path of CORE_PATHS) {
        await sleep(300);
        const waitedMs = await drainTimeWait(ipOf(path), 3000);
        if (waitedMs > 1000)
          console.log(
            `  (waited ${round(waitedMs / 1000, 0)} s for TIME_WAIT sockets towards the ${path} container)`,
          );
        const run = await measuredRun(urlOf(path), c, DURATION_S, pidsOf[path], r, ipOf(path));
        runs[path].push({ ...run, waitedMs });
        printRun(c, path, run);
      }
    }
    const urls = Object.fromEntries(CORE_PATHS.map((path) => [path, urlOf(path)])) as Record<
      CorePathName,
      string
    >;
    const lost = Object.fromEntries(CORE_PATHS.map((path) => [path, 0])) as Record<CorePathName, number>;
    const paths = summarize(CORE_PATHS, runs, urls, lost);
    const times = (a?: number, b?: number) =>
      a !== undefined && b !== undefined && b > 0 ? { value: round(a / b, 3) } : undefined;
    const p99 = times(paths.edge.p99Ms, paths.nginx.p99Ms);
    const cpu = times(paths.edge.cpuUsPerRequest, paths.nginx.cpuUsPerRequest);
    const goal: EveryCoreGoal = {
      edgeXNginx: paths.edge.xNginx,
      edgeXHaproxy: sameRoundRatio(paths.edge.rounds, paths.haproxy.rounds),
      ...(p99 ? { p99XNginx: p99.value } : {}),
      ...(cpu ? { cpuPerRequestXNginx: cpu.value } : {}),
    };
    return { config, case: c, paths, goal };
  } catch (error) {
    return { config, error: error instanceof Error ? error.message.slice(0, 4000) : String(error) };
  } finally {
    await Promise.all(services.map((service) => stopChild(service.child, 'SIGTERM', 5000).catch(() => {})));
    await Promise.all(containers.map((box) => box.remove().catch(() => {})));
  }
}

/** The every-core section's table, and the edge's figures against nginx's and HAProxy's. */
function printEveryCore(cores: EveryCoreResult): void {
  console.log('');
  if ('error' in cores) {
    console.log(`every core (${CORES}): failed: ${cores.error}`);
    return;
  }
  console.log(
    `every core (${CORES}): ${String(cores.config.wrk)}; nginx ${CORES} workers, HAProxy nbthread ${CORES},` +
      ` Caddy GOMAXPROCS=${CORES}, edge WORKERS=${CORES}; RSS/CPU: all of the path's processes`,
  );
  printTable(CORE_PATHS, [{ case: cores.case, paths: cores.paths }]);
  const { goal } = cores;
  const fixed = (value?: number) => (value === undefined || !Number.isFinite(value) ? '-' : value.toFixed(2));
  console.log(
    `every core (${CORES}): edge ${fixed(goal.edgeXNginx)}x nginx (${CORES} workers) req/s,` +
      ` ${fixed(goal.edgeXHaproxy)}x HAProxy (${CORES} threads); p99 ${fixed(goal.p99XNginx)}x nginx's;` +
      ` CPU per request ${fixed(goal.cpuPerRequestXNginx)}x nginx's`,
  );
}

// ---------------------------------------------------------------------------------------------------------
// CPU profile of a container-manager under the tiny load.

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  hitCount?: number;
}

function shortUrl(url: string): string {
  const pkg = /node_modules\/\.pnpm\/[^/]+\/node_modules\/(.+)$/.exec(url);
  if (pkg?.[1]) return pkg[1];
  const root = url.indexOf(ROOT_DIR);
  if (root !== -1) return url.slice(root + ROOT_DIR.length);
  return url.replace(/^file:\/\//, '');
}

function category(url: string, name: string): string {
  if (url === '') return name.startsWith('(') ? name : '(native)';
  if (url.startsWith('node:'))
    return `node:${
      url
        .slice(5)
        .replace(/^internal\//, '')
        .split('/')[0]
    }`;
  const pkg = /node_modules\/\.pnpm\/[^/]+\/node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg?.[1]) return pkg[1];
  const workspace = /\/(packages|apps)\/([^/]+)\//.exec(url);
  if (workspace?.[2]) return `${workspace[1]}/${workspace[2]}`;
  return url;
}

function summarizeProfile(file: string, windowStartUs: number, windowEndUs: number) {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as {
    nodes: ProfileNode[];
    startTime: number;
    endTime: number;
    samples: number[];
    timeDeltas: number[];
  };
  // Hits per node, counting only the samples inside the window.
  const hitsOf = new Map<number, number>();
  let at = profile.startTime;
  profile.samples.forEach((nodeId, i) => {
    at += profile.timeDeltas[i] ?? 0;
    if (at >= windowStartUs && at <= windowEndUs) hitsOf.set(nodeId, (hitsOf.get(nodeId) ?? 0) + 1);
  });
  const totalHits = [...hitsOf.values()].reduce((sum, hits) => sum + hits, 0);
  if (totalHits === 0) throw new Error('no profile sample falls in the load window');
  const idleHits = profile.nodes
    .filter((node) => node.callFrame.functionName === '(idle)')
    .reduce((sum, node) => sum + (hitsOf.get(node.id) ?? 0), 0);
  const busyHits = Math.max(1, totalHits - idleHits);
  const byFunction = new Map<string, number>();
  const byCategory = new Map<string, number>();
  for (const node of profile.nodes) {
    const hits = hitsOf.get(node.id) ?? 0;
    if (hits === 0 || node.callFrame.functionName === '(idle)') continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const name = `${functionName || '(anonymous)'}${url ? ` ${shortUrl(url)}:${lineNumber + 1}` : ''}`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + hits);
    const cat = category(url, functionName);
    byCategory.set(cat, (byCategory.get(cat) ?? 0) + hits);
  }
  const top = (map: Map<string, number>, n: number) =>
    [...map.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([name, hits]) => ({ name, percentOfBusy: round((hits / busyHits) * 100, 1) }));
  return {
    windowMs: Math.round((windowEndUs - windowStartUs) / 1000),
    samples: totalHits,
    busyPercent: round((busyHits / Math.max(1, totalHits)) * 100, 1),
    topSelf: top(byFunction, 10),
    byCategory: top(byCategory, 12),
  };
}

async function cpuProfile(box: SessionContainer, dir: string) {
  const profileDir = join(dir, 'cpu-profile');
  mkdirSync(profileDir, { recursive: true });
  const manager = await startManager(['--cpu-prof', `--cpu-prof-dir=${profileDir}`]);
  try {
    await register(manager, box);
    const base = `${manager.url}/previews/${box.sessionId}`;
    const c = ALL_CASES[0] as BenchCase;
    await checkPath(base, c, 'ours');
    await runWrk(`${base}${c.path}`, c, WARMUP_S);
    // The profile covers the whole life of the process (start-up, module loading); only the samples taken
    // during the measured load count. V8 and process.hrtime read the same monotonic clock.
    const windowStartUs = Number(process.hrtime.bigint() / 1000n);
    const load = await runWrk(`${base}${c.path}`, c, DURATION_S);
    const windowEndUs = Number(process.hrtime.bigint() / 1000n);
    // The profile is written when the process exits (SIGTERM: graceful shutdown, exit 0).
    await stopChild(manager.child, 'SIGTERM', 15_000);
    const file = readdirSync(profileDir).find((name) => name.endsWith('.cpuprofile'));
    if (!file) throw new Error(`no .cpuprofile written:\n${manager.output()}`);
    return {
      requestsPerSecondWhileProfiling: load.requestsPerSecond,
      ...summarizeProfile(join(profileDir, file), windowStartUs, windowEndUs),
    };
  } finally {
    await stopChild(manager.child, 'SIGKILL');
  }
}

// ---------------------------------------------------------------------------------------------------------
// Output.

/** One measured run, as it ends. */
function printRun(c: BenchCase, path: PathName, run: RunResult): void {
  console.log(
    `  ${c.name} round ${run.round + 1} ${pad(path, 6)} ${fmtRps(run.requestsPerSecond)} req/s, p50 ${fmtMs(run.latencyMs.p50)} ms,` +
      ` p99 ${fmtMs(run.latencyMs.p99)} ms${run.proxyCpuPercent === undefined ? '' : `, proxy CPU ${run.proxyCpuPercent}% (sys ${run.proxySysPercent}%)`}` +
      `, TIME_WAIT to the container ${run.upstreamTimeWait.before} -> ${run.upstreamTimeWait.after}`,
  );
}

function fmtRps(value: number): string {
  return value >= 10_000 ? `${round(value / 1000, 1)}k` : `${Math.round(value)}`;
}
function fmtMs(value: number): string {
  return value < 1 ? `${round(value, 2)}` : value < 10 ? `${round(value, 1)}` : `${Math.round(value)}`;
}
function pad(text: string, width: number, right = false): string {
  return right ? text.padStart(width) : text.padEnd(width);
}

interface PathSummary {
  url: string;
  rounds: RunResult[];
  requestsPerSecond: number;
  requestsPerSecondMin: number;
  requestsPerSecondMax: number;
  p50Ms: number;
  p99Ms: number;
  bytesPerResponse: number;
  /** Upstream connections closed per 100 requests (TIME_WAIT growth towards the container): pool churn. */
  upstreamClosesPer100: number;
  errors: number;
  proxyRssMiB?: number;
  proxyRssPeakMiB?: number;
  proxyCpuPercent?: number;
  proxySysPercent?: number;
  /** Median over rounds of the proxy's CPU µs per request. */
  cpuUsPerRequest?: number;
  /** Median over rounds of (this path's req/s) / (nginx's req/s in the same round). */
  xNginx: number;
  xDirect: number;
  /** Runs lost because the proxy died (container-manager crashed); not in the figures above. */
  crashes: number;
}

/** Median over rounds of (req/s in `list`) / (req/s in `others` in the same round). */
function sameRoundRatio(list: RunResult[], others: RunResult[]): number {
  return round(
    median(
      list
        .map(
          (r) =>
            r.requestsPerSecond / (others.find((o) => o.round === r.round)?.requestsPerSecond ?? Number.NaN),
        )
        .filter((v) => Number.isFinite(v)),
    ),
    3,
  );
}

/** Each of `paths` over its rounds; the ratios are to nginx and direct, which every path list has. */
function summarize<P extends PathName>(
  paths: readonly P[],
  runs: Record<P | 'nginx' | 'direct', RunResult[]>,
  urls: Record<P, string>,
  crashes: Record<P, number>,
): Record<P, PathSummary> {
  const out = {} as Record<P, PathSummary>;
  for (const path of paths) {
    const list = runs[path];
    const rps = list.map((r) => r.requestsPerSecond);
    const ratio = (other: 'nginx' | 'direct') => sameRoundRatio(list, runs[other]);
    const rss = list.map((r) => r.proxyRssMiB?.end).filter((v): v is number => v !== undefined);
    const rssPeak = list.map((r) => r.proxyRssMiB?.peak).filter((v): v is number => v !== undefined);
    const cpu = list.map((r) => r.proxyCpuPercent).filter((v): v is number => v !== undefined);
    const sys = list.map((r) => r.proxySysPercent).filter((v): v is number => v !== undefined);
    const cpuPerRequest = list.map((r) => r.cpuUsPerRequest).filter((v): v is number => v !== undefined);
    out[path] = {
      url: urls[path],
      rounds: list,
      requestsPerSecond: Math.round(median(rps)),
      requestsPerSecondMin: Math.round(Math.min(...rps)),
      requestsPerSecondMax: Math.round(Math.max(...rps)),
      p50Ms: round(median(list.map((r) => r.latencyMs.p50)), 3),
      p99Ms: round(median(list.map((r) => r.latencyMs.p99)), 3),
      bytesPerResponse: Math.round(median(list.map((r) => r.bytesPerResponse))),
      upstreamClosesPer100: round(
        median(
          list.map(
            (r) =>
              (100 * Math.max(0, r.upstreamTimeWait.after - r.upstreamTimeWait.before)) /
              Math.max(1, r.requests),
          ),
        ),
        1,
      ),
      errors: list.reduce((sum, r) => sum + wrkErrors(r), 0),
      ...(rss.length > 0 ? { proxyRssMiB: round(median(rss), 1) } : {}),
      ...(rssPeak.length > 0 ? { proxyRssPeakMiB: round(Math.max(...rssPeak), 1) } : {}),
      ...(cpu.length > 0 ? { proxyCpuPercent: Math.round(median(cpu)) } : {}),
      ...(sys.length > 0 ? { proxySysPercent: Math.round(median(sys)) } : {}),
      ...(cpuPerRequest.length > 0 ? { cpuUsPerRequest: round(median(cpuPerRequest), 1) } : {}),
      xNginx: ratio('nginx'),
      xDirect: ratio('direct'),
      crashes: crashes[path],
    };
  }
  return out;
}

function printTable<P extends PathName>(
  paths: readonly P[],
  results: { case: BenchCase; paths: Record<P, PathSummary> }[],
) {
  // 18 fits the load cases' labels; a longer one (the every-core case's) widens the column.
  const labelWidth = Math.max(18, ...results.map(({ case: c }) => c.label.length));
  const header = [
    pad('case', labelWidth),
    pad('path', 7),
    pad('req/s', 7, true),
    pad('spread', 8, true),
    pad('p50 ms', 7, true),
    pad('p99 ms', 7, true),
    pad('B/resp', 7, true),
    pad('churn', 6, true),
    pad('RSS MiB', 8, true),
    pad('CPU % (sys)', 11, true),
    pad('µs/req', 7, true),
    pad('x nginx', 8, true),
    pad('x direct', 9, true),
    pad('errors', 7, true),
  ].join(' ');
  console.log(header);
  console.log('-'.repeat(header.length));
  for (const { case: c, paths: summaries } of results) {
    paths.forEach((path, index) => {
      const s = summaries[path];
      if (s.rounds.length === 0) {
        console.log(
          `${pad(index === 0 ? c.label : '', labelWidth)} ${pad(path, 7)} no result: ${s.crashes} runs crashed`,
        );
        return;
      }
      const spread =
        s.requestsPerSecond > 0 ? (s.requestsPerSecondMax - s.requestsPerSecondMin) / s.requestsPerSecond : 0;
      console.log(
        [
          pad(index === 0 ? c.label : '', labelWidth),
          pad(path, 7),
          pad(fmtRps(s.requestsPerSecond), 7, true),
          pad(`±${Math.round((spread / 2) * 100)}%`, 8, true),
          pad(fmtMs(s.p50Ms), 7, true),
          pad(fmtMs(s.p99Ms), 7, true),
          pad(String(s.bytesPerResponse), 7, true),
          pad(String(s.upstreamClosesPer100), 6, true),
          pad(s.proxyRssMiB === undefined ? '-' : String(s.proxyRssMiB), 8, true),
          pad(
            s.proxyCpuPercent === undefined ? '-' : `${s.proxyCpuPercent} (${s.proxySysPercent ?? '?'})`,
            11,
            true,
          ),
          pad(s.cpuUsPerRequest === undefined ? '-' : String(Math.round(s.cpuUsPerRequest)), 7, true),
          pad(s.xNginx.toFixed(2), 8, true),
          pad(s.xDirect.toFixed(2), 9, true),
          pad(`${s.errors}${s.crashes > 0 ? ` +${s.crashes} crashed` : ''}`, 7, true),
        ].join(' '),
      );
    });
  }
}

// ---------------------------------------------------------------------------------------------------------

let manager: Manager | undefined;
let nginx: Nginx | undefined;
let stopRedis: (() => Promise<void>) | undefined;
let cleanedUp: Promise<void> | undefined;

function cleanup(): Promise<void> {
  cleanedUp ??= (async () => {
    await stopChildren();
    await stopRedis?.().catch(() => {});
    await removeCreatedContainers().catch((error: unknown) =>
      console.error('could not remove the container:', error),
    );
    removeTempDirs();
  })();
  return cleanedUp;
}

async function main(): Promise<number> {
  const startedAt = new Date();
  const tools = await ensureExecutables({
    nginx: 'nginx-light',
    wrk: 'wrk',
    haproxy: 'haproxy',
    caddy: 'caddy',
  });
  wrkBinary = tools.wrk;
  await assertDockerEngine();
  await ensureFixtureImages();

  const dir = tempDir('sandbox-bench-http-');
  postScript = join(dir, 'post.lua');
  writeFileSync(
    postScript,
    `wrk.method = "POST"\nwrk.body = string.rep("a", ${POST_BYTES})\nwrk.headers["Content-Type"] = "application/octet-stream"\n`,
  );

  const machine = {
    date: startedAt.toISOString(),
    nproc: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryMiB: mib(totalmem()),
    kernel: release(),
    node: process.version,
    nginx: (await toolVersion(tools.nginx, ['-v'])).replace(/^nginx version: /, ''),
    haproxy: (await toolVersion(tools.haproxy, ['-v'])).replace(/ - https.*$/, ''),
    caddy: `caddy ${(await toolVersion(tools.caddy, ['version'])).split(' ')[0] ?? ''}`,
    wrk: (await toolVersion(tools.wrk, ['-v'])).replace(/ Copyright.*$/, ''),
    docker: await docker(['version', '--format', '{{.Server.Version}}']).catch(() => 'unknown'),
    loadAverage1mAtStart: round(loadavg()[0] ?? 0, 2),
    code: await codeUnderTest(),
  };
  console.log(
    `HTTP benchmark: ${machine.nproc} CPUs (${machine.cpuModel}), Node ${machine.node}, ${machine.nginx},` +
      ` ${machine.wrk}, Docker ${machine.docker}, ${machine.date}, load ${machine.loadAverage1mAtStart}`,
  );
  const codeLine = `code under test: ${machine.code.commit}${
    machine.code.uncommitted.length > 0
      ? ` + uncommitted changes in ${machine.code.uncommitted.join(', ')}`
      : ''
  }`;
  console.log(codeLine);

  // One container per path, same image: a proxy that churns upstream connections leaves sockets in
  // TIME_WAIT towards its container's address, which slows later connects to that address; with its own
  // container, one path's churn never slows another path's runs.
  const started = await Promise.all(PATHS.map(() => startSessionContainer({ ports: [3000] })));
  const boxes = Object.fromEntries(PATHS.map((path, i) => [path, started[i]])) as Record<
    PathName,
    SessionContainer
  >;
  const ipOf = (path: PathName) => {
    const ip = boxes[path].ip;
    if (!ip) throw new Error(`the ${path} session container has no IP address`);
    return ip;
  };
  const box = boxes.ours;
  const prefixOf = (path: PathName) => `/previews/${boxes[path].sessionId}`;
  // The edge reads what a second container-manager (not measured, idle during the runs) publishes to a
  // Redis of its own; `ours` stays container-manager as `pnpm start` runs it, on its in-memory default.
  const redis = await startRedisServer();
  stopRedis = () => redis.stop();
  let publisher: Manager;
  let lean: Manager;
  let bare: Manager;
  let pipe: Manager;
  let haproxy: Peer;
  let caddy: Peer;
  [nginx, haproxy, caddy, manager, lean, bare, pipe, publisher] = await Promise.all([
    startNginx(tools.nginx, dir, `${ipOf('nginx')}:3000`, boxes.nginx.sessionId),
    startHaproxy(tools.haproxy, dir, `${ipOf('haproxy')}:3000`, boxes.haproxy.sessionId),
    startCaddy(tools.caddy, dir, `${ipOf('caddy')}:3000`, boxes.caddy.sessionId),
    startManager(),
    startManager([], { ACCESS_LOG: 'false' }),
    startBare(`${ipOf('bare')}:3000`, prefixOf('bare')),
    startPipe(`${ipOf('pipe')}:3000`),
    startManager([], { REDIS_URL: redis.url }),
  ]);
  const edge = await startEdge(redis.url);
  await register(manager, box);
  await register(lean, boxes.lean);
  await register(publisher, boxes.edge);
  await waitUntilServed(`${edge.url}${prefixOf('edge')}/`);
  const ngx = nginx;
  // container-manager may be restarted after a crash (new pid, new port): always read the current one.
  const current = (): Manager => {
    if (!manager) throw new Error('container-manager is not running');
    return manager;
  };
  const serviceUrl: Record<Exclude<PathName, 'direct' | 'ours'>, string> = {
    nginx: ngx.url,
    haproxy: haproxy.url,
    caddy: caddy.url,
    pipe: pipe.url,
    bare: bare.url,
    lean: lean.url,
    edge: edge.url,
  };
  // The byte pipe knows no prefix: its client asks for the container's own paths.
  const baseOf = (path: PathName) =>
    path === 'direct'
      ? `http://${ipOf('direct')}:3000`
      : path === 'pipe'
        ? pipe.url
        : `${path === 'ours' ? current().url : serviceUrl[path]}${prefixOf(path)}`;
  const pidsOf: Record<PathName, (() => number[]) | undefined> = {
    direct: undefined,
    nginx: () => ngx.pids(),
    haproxy: () => [haproxy.pid],
    caddy: () => [caddy.pid],
    pipe: () => [pipe.pid],
    bare: () => [bare.pid],
    ours: () => [current().pid],
    lean: () => [lean.pid],
    edge: () => [edge.pid],
  };
  const managerDead = () => {
    const child = manager?.child;
    return child === undefined || child.exitCode !== null || child.signalCode !== null;
  };
  const crashes: { during: string; reason: string; output: string }[] = [];
  /** Runs task on our path; when container-manager dies meanwhile, records why, restarts it, returns undefined. */
  async function survive<T>(during: string, task: () => Promise<T>): Promise<T | undefined> {
    let result: { value: T } | undefined;
    try {
      result = { value: await task() };
    } catch (error) {
      if (!managerDead()) throw error;
    }
    if (result !== undefined && !managerDead()) return result.value;
    await sleep(200);
    const output = manager?.output() ?? '';
    const message =
      /^\w*Error\b.*$/m.exec(output)?.[0] ?? `exit ${manager?.child.exitCode ?? manager?.child.signalCode}`;
    const where = /^(\/\S+:\d+)$/m.exec(output)?.[1];
    const reason = `${message}${where ? ` at ${shortUrl(where)}` : ''}`;
    crashes.push({ during, reason, output: output.slice(-3000) });
    console.log(`  container-manager died during ${during}: ${reason}; restarting it`);
    manager = await startManager();
    await register(manager, box);
    return undefined;
  }

  for (const path of PATHS)
    console.log(`${pad(path, 6)} -> session ${boxes[path].sessionId} at ${ipOf(path)}:3000 (fixture image)`);
  console.log(
    `nginx pid ${nginx.pid} at ${nginx.url} (keepalive ${NGINX_KEEPALIVE}); container-manager pid ${manager.pid}` +
      ` at ${manager.url} (${manager.command}); edge-proxy pid ${edge.pid} at ${edge.url} (Redis ${redis.url})`,
  );
  for (const c of CASES) for (const path of PATHS) await checkPath(baseOf(path), c, path);

  // Scale first, on a fresh proxy: the load cases leave a grown heap behind, which would blur the RSS deltas.
  let scale: Record<string, unknown> | undefined;
  if (SCALE) {
    console.log(
      `scale: the registry with 10,000 sessions (own process); ${IDLE_CONNECTIONS} idle keep-alive clients`,
    );
    const registry = await registryScale();
    const attempt = async (path: 'ours' | 'nginx') => {
      const pids = pidsOf[path] as () => number[];
      try {
        const result = await survive(`idle keep-alive (${path})`, () =>
          idleKeepAlive(path === 'nginx' ? ngx.url : current().url, prefixOf(path), pids),
        );
        return result ?? { error: 'container-manager crashed' };
      } catch (error) {
        return { error: error instanceof Error ? error.message : String(error) };
      }
    };
    const idleOurs = await attempt('ours');
    const idleNginx = await attempt('nginx');
    console.log(
      `scale: edge-proxy with ${SCALE_SESSIONS.toLocaleString('en-US')} sessions in Redis, traffic over` +
        ` ${SCALE_HOT.toLocaleString('en-US')} of them against one session`,
    );
    const edgeScale = await edgeAtScale(dir, boxes.edge).catch((error: unknown) => ({
      error: error instanceof Error ? error.message : String(error),
    }));
    scale = { registry, idleKeepAlive: { ours: idleOurs, nginx: idleNginx }, edgeAtScale: edgeScale };
  }

  // Before the load cases: no earlier run's heap or upstream TIME_WAITs are in its way.
  let profile: unknown;
  if (PROFILE) {
    console.log('profile: a second container-manager with --cpu-prof under the tiny c32 load');
    try {
      profile = await cpuProfile(box, dir);
    } catch (error) {
      profile = { error: error instanceof Error ? error.message.slice(0, 2000) : String(error) };
    }
  }

  console.log(
    `load: wrk -t1 -d${DURATION_S}s --latency, ${ROUNDS} alternating rounds (${PATHS.join(', ')}), ${WARMUP_S} s` +
      ' warm-up per path and case',
  );
  const results: { case: BenchCase; paths: Record<PathName, PathSummary> }[] = [];
  for (const c of CASES) {
    const urlOf = (path: PathName) => `${baseOf(path)}${c.path}`;
    for (const path of PATHS) {
      if (path === 'ours') await survive(`${c.name} warm-up`, () => runWrk(urlOf(path), c, WARMUP_S));
      else await runWrk(urlOf(path), c, WARMUP_S);
    }
    const runs = Object.fromEntries(PATHS.map((path) => [path, []])) as unknown as Record<
      PathName,
      RunResult[]
    >;
    const lost = Object.fromEntries(PATHS.map((path) => [path, 0])) as Record<PathName, number>;
    for (let r = 0; r < ROUNDS; r++) {
      for (const path of PATHS) {
        await sleep(300);
        const waitedMs = await drainTimeWait(ipOf(path), 3000);
        if (waitedMs > 1000)
          console.log(
            `  (waited ${round(waitedMs / 1000, 0)} s for TIME_WAIT sockets towards the ${path} container)`,
          );
        const measure = () => measuredRun(urlOf(path), c, DURATION_S, pidsOf[path], r, ipOf(path));
        const run = path === 'ours' ? await survive(`${c.name} round ${r + 1}`, measure) : await measure();
        if (!run) {
          lost[path] += 1;
          continue;
        }
        runs[path].push({ ...run, waitedMs });
        printRun(c, path, run);
      }
    }
    const urls = Object.fromEntries(PATHS.map((p) => [p, urlOf(p)])) as Record<PathName, string>;
    results.push({ case: c, paths: summarize(PATHS, runs, urls, lost) });
  }

  // Last: its fresh proxies and containers come on top of the load cases' (idle by then) and change nothing
  // they measured.
  let cores: EveryCoreResult | undefined;
  if (EVERY_CORE) {
    console.log(
      `every core (${CORES}): ${wrkCommand(CORES_CASE, DURATION_S)}, ${ROUNDS} alternating rounds` +
        ` (${CORE_PATHS.join(', ')}), ${WARMUP_S} s warm-up per path; nginx ${CORES} workers, HAProxy nbthread` +
        ` ${CORES}, Caddy GOMAXPROCS=${CORES}, edge WORKERS=${CORES}, each on a fresh container`,
    );
    cores = await everyCore({ tools, dir, direct: boxes.direct, publisher, redisUrl: redis.url });
    if ('error' in cores) console.log(`  every core: failed: ${cores.error}`);
  }

  const loadAtEnd = round(loadavg()[0] ?? 0, 2);
  // Someone may edit the working tree while this runs: say so, the figures would mix two versions.
  const codeAtEnd = await codeUnderTest();
  const codeChanged = JSON.stringify(codeAtEnd) !== JSON.stringify(machine.code);
  const report = {
    benchmark: 'http',
    machine: { ...machine, loadAverage1mAtEnd: loadAtEnd, codeAtEnd, codeChangedDuringRun: codeChanged },
    config: {
      rounds: ROUNDS,
      durationSeconds: DURATION_S,
      warmupSeconds: WARMUP_S,
      wrk: `wrk -t1 -c<connections> -d${DURATION_S}s --latency --timeout 5s`,
      order: `alternating rounds: ${PATHS.join(', ')}, ${PATHS[0]}, ...`,
      ratios: 'median over rounds of (path req/s) / (nginx or direct req/s in the same round)',
      proxyRss:
        'nginx: master + worker VmRSS; ours, edge: the node process VmRSS; median over rounds of the value at the end of a run',
      manager: { mode: MANAGER_MODE, command: manager.command },
      nginxConfig: nginx.config,
      haproxyConfig: haproxy.config,
      caddyConfig: caddy.config,
      ours: 'container-manager with its defaults (pnpm start): access log on, to its stdout pipe',
      lean: 'container-manager with ACCESS_LOG=false',
      pipe: 'bench/byte-pipe.ts: node:net copying bytes to the container, no HTTP: the engine ceiling',
      bare: 'bench/bare-proxy.ts: createPreviewProxy() on node:http, one fixed target, nothing else',
      tinyBody: TINY_BODY,
      postBytes: POST_BYTES,
    },
    cases: results.map(({ case: c, paths }) => ({ ...c, paths })),
    crashes,
    ...(scale ? { scale } : {}),
    ...(profile ? { profile } : {}),
    ...(cores ? { cores } : {}),
  };
  mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileSync(RESULTS_FILE, `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(
    CHART_FILE,
    benchmarkChart(
      [
        ...results.map(({ case: c, paths }) => chartCase(c, PATHS, paths)),
        ...(cores && !('error' in cores) ? [chartCase(cores.case, CORE_PATHS, cores.paths)] : []),
      ],
      `pnpm bench, ${machine.date.slice(0, 10)}: ${machine.nproc} CPUs, Node ${machine.node}; medians of ${ROUNDS}` +
        ` alternating rounds of ${DURATION_S} s, each proxy on one core${
          cores && !('error' in cores) ? `, but in the last case on every core (${CORES})` : ''
        }`,
    ),
  );

  console.log('');
  console.log(
    `machine: nproc ${machine.nproc}, ${machine.cpuModel}, Node ${machine.node}, ${machine.nginx}, ${machine.wrk},` +
      ` ${machine.date}, load ${machine.loadAverage1mAtStart} -> ${loadAtEnd}`,
  );
  console.log(
    `medians of ${ROUNDS} alternating rounds of ${DURATION_S} s; x nginx / x direct: median of per-round req/s ratios;` +
      ' spread: half the min-max range of req/s; RSS/CPU: the proxy process(es);' +
      ' churn: upstream connections closed per 100 requests',
  );
  console.log(codeLine);
  if (machine.loadAverage1mAtStart > machine.nproc / 2)
    console.log(
      `NOTE: the machine was busy at the start (load ${machine.loadAverage1mAtStart} on ${machine.nproc} CPUs):` +
        ' absolute figures are low and noisy; the per-round ratios hold up better',
    );
  if (codeChanged)
    console.log(
      `WARNING: the code changed during the run; at the end: ${codeAtEnd.commit} + ${codeAtEnd.uncommitted.join(', ')}`,
    );
  printTable(PATHS, results);
  printGoals(results);
  if (cores) printEveryCore(cores);
  for (const crash of crashes)
    console.log(`container-manager crashed during ${crash.during}: ${crash.reason}`);
  if (scale) {
    const registry = scale.registry as {
      sessions: number;
      heapBytesPerRegistration: number;
      rssBytesPerRegistration: number;
      lookup: {
        nsHotMedian: number;
        nsSingleMedian: number;
        ratioHotOverSingle: number;
        hotSessions: number;
      };
    };
    const idle = scale.idleKeepAlive as Record<'ours' | 'nginx', IdleResult | { error: string }>;
    console.log('');
    console.log(
      `registry, ${registry.sessions} sessions: ${registry.heapBytesPerRegistration} B heap` +
        ` (${registry.rssBytesPerRegistration} B RSS) per registration; lookup ${registry.lookup.nsHotMedian} ns` +
        ` cycling over ${registry.lookup.hotSessions} hot sessions vs ${registry.lookup.nsSingleMedian} ns for one` +
        ` session (x${registry.lookup.ratioHotOverSingle})`,
    );
    for (const name of ['ours', 'nginx'] as const) {
      const r = idle[name];
      if ('error' in r) {
        console.log(`idle keep-alive clients, ${name}: failed: ${r.error}`);
        continue;
      }
      console.log(
        `idle keep-alive clients, ${name}: ${r.kibPerConnectionMedian} KiB RSS per connection (median of` +
          ` ${r.trials.length} x ${r.connections}: ${r.trials.map((t) => t.kibPerConnection).join(', ')});` +
          ` ${r.closedByProxyAfter6s} of ${r.connections} closed by the proxy within 6 s idle`,
      );
    }
  }
  const edgeScale = scale?.edgeAtScale as
    | Awaited<ReturnType<typeof edgeAtScale>>
    | { error: string }
    | undefined;
  if (edgeScale && 'error' in edgeScale) console.log(`edge at scale: failed: ${edgeScale.error}`);
  else if (edgeScale)
    console.log(
      `edge, ${edgeScale.sessions.toLocaleString('en-US')} sessions in Redis, traffic over` +
        ` ${edgeScale.hotSessions.toLocaleString('en-US')}: ${fmtRps(edgeScale.spreadRequestsPerSecond)} req/s` +
        ` (p99 ${fmtMs(edgeScale.spreadP99Ms)} ms) against ${fmtRps(edgeScale.singleRequestsPerSecond)} req/s on one` +
        ` session (p99 ${fmtMs(edgeScale.singleP99Ms)} ms): x${edgeScale.ratioSpreadOverSingle} (median of` +
        ` ${edgeScale.rounds.length} per-round ratios); CPU per request ${edgeScale.spreadCpuUsPerRequest} against` +
        ` ${edgeScale.singleCpuUsPerRequest} µs: x${edgeScale.cpuRatioSpreadOverSingle}; edge RSS` +
        ` ${edgeScale.edgeRssMiBAfterSync} MiB once synced; ${edgeScale.errors} errors`,
    );
  if (profile && typeof profile === 'object' && 'error' in profile) {
    console.log(`\nCPU profile failed: ${String(profile.error)}`);
  } else if (profile) {
    const p = profile as ReturnType<typeof summarizeProfile> & { requestsPerSecondWhileProfiling: number };
    console.log('');
    console.log(
      `CPU profile of ours, tiny c32 (${fmtRps(p.requestsPerSecondWhileProfiling)} req/s while profiled, busy` +
        ` ${p.busyPercent}% of ${p.samples} samples); top self time, % of busy samples:`,
    );
    for (const f of p.topSelf) console.log(`  ${pad(`${f.percentOfBusy}%`, 6, true)}  ${f.name}`);
    console.log(
      '  (V8 samples by signal: a native write that wakes its peer, wrk or the container, often ends with the' +
        ' proxy preempted, and the wait for a CPU is counted to the write; compare with the sys share of CPU above)',
    );
    console.log('  by package / module:');
    console.log(`    ${p.byCategory.map((f) => `${f.name} ${f.percentOfBusy}%`).join(', ')}`);
  }
  console.log(`results: ${RESULTS_FILE}`);
  const failed =
    crashes.length > 0 ||
    results.some(({ paths }) => PATHS.some((p) => paths[p].errors > 0)) ||
    (cores !== undefined && ('error' in cores || CORE_PATHS.some((p) => cores.paths[p].errors > 0))) ||
    (edgeScale !== undefined && ('error' in edgeScale || edgeScale.errors > 0));
  return failed ? 1 : 0;
}

/** A case's bars: the paths that have a result, named as the chart's colours expect. */
function chartCase<P extends PathName>(
  c: BenchCase,
  paths: readonly P[],
  summaries: Record<P, PathSummary>,
): ChartCase {
  return {
    label: c.label,
    paths: paths
      .filter((path) => summaries[path].rounds.length > 0)
      .map((path) => ({
        name: path,
        requestsPerSecond: summaries[path].requestsPerSecond,
        ...(summaries[path].cpuUsPerRequest === undefined
          ? {}
          : { cpuUsPerRequest: summaries[path].cpuUsPerRequest }),
      })),
  };
}

/**
 * The figures the performance goals are stated in, per case: ours and lean against nginx, ours against bare;
 * and where the engine stands: the byte pipe and the bare proxy against nginx.
 */
function printGoals(results: { case: BenchCase; paths: Record<PathName, PathSummary> }[]): void {
  console.log('');
  for (const { case: c, paths } of results) {
    const { ours, lean, bare, pipe, nginx: ngx } = paths;
    if (ours.rounds.length === 0 || ngx.rounds.length === 0) continue;
    const cpu = (a?: number, b?: number) =>
      a !== undefined && b !== undefined && b > 0 ? (a / b).toFixed(2) : '-';
    console.log(
      `${pad(c.label, 18)} ours ${ours.xNginx.toFixed(2)}x nginx req/s (lean ${lean.xNginx.toFixed(2)}x),` +
        ` p99 ${cpu(ours.p99Ms, ngx.p99Ms)}x nginx's; CPU per request ${cpu(ours.cpuUsPerRequest, bare.cpuUsPerRequest)}x` +
        ` the bare proxy's (lean ${cpu(lean.cpuUsPerRequest, bare.cpuUsPerRequest)}x); the access log costs` +
        ` ${ours.cpuUsPerRequest !== undefined && lean.cpuUsPerRequest !== undefined ? Math.round(ours.cpuUsPerRequest - lean.cpuUsPerRequest) : '-'} µs per request;` +
        ` the engine's ceiling (byte pipe) ${pipe.xNginx.toFixed(2)}x nginx, bare ${bare.xNginx.toFixed(2)}x`,
    );
  }
}

runBenchmark({
  main,
  cleanup,
  watchdogMs: WATCHDOG_MS,
  outputs: () => [
    ['container-manager', manager, 4000],
    ['nginx', nginx, 2000],
  ],
});
