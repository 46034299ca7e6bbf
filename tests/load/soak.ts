// Soak run (by hand, not CI): mixed traffic through container-manager for 10 minutes (default), with session
// containers replaced while it flows, and a verdict on growth.
//
//   pnpm --filter @sandbox/load-tests soak               # 10 minutes
//   pnpm --filter @sandbox/load-tests soak --minutes 30
//   cd tests/load && npx tsx soak.ts --minutes 2 --no-metrics
//
// container-manager runs as a real process (LOG_LEVEL=warn, ACCESS_LOG=false, METRICS_PORT unless
// --no-metrics), with three session containers (the fixture image) registered. Traffic, all through
// /previews/:sessionId/*, each worker picking a live session at random for every exchange:
// - 8 HTTP workers: echo GET, echo POST with a random body of 0-64 KiB (length and sha256 checked by the
//   echo), and 64 KiB downloads (/__fixture/bytes/65536, sha256 checked); every echo names the container
//   that answered, which must be the session's;
// - 4 WebSocket workers that open, exchange 5 text and 1 binary message, close (code echoed) and reopen;
// - 4 that hold a WebSocket for 15-45 s, one message (and every third time a ping) every 5 s (a session
//   lives about a minute, so some of them see their container go);
// - 2 SSE workers reading /__fixture/sse?count=20&interval=100 (20 events in 2 s) again and again;
// - churn: every 20 s the oldest session's container is stopped and removed (stop + rm, or rm -f, in
//   turn), and a new one started and registered. An error on a session whose container is being removed
//   (or is gone) is expected and counted apart; any other error is a failure.
// Every 5 s it samples the manager: RSS, open fds and sockets from /proc; heap used and active handles
// from /metrics. Every 30 s it prints a row. At the end it stops the traffic, lets the manager settle, and
// judges (exit 1 on any failed check):
// - no unexpected errors; the manager alive and answering; removed sessions no longer registered;
// - growth, the second half of the samples after the warm-up (the first minute) against the first half,
//   medians: RSS at most RSS_GROWTH_BOUND more, heap used HEAP_GROWTH_BOUND, fds and handles 16;
// - once idle again, fds and handles back to at most 8 above what they were before the traffic.
// Samples and verdict go to results/soak.json; the 30-s table is printed as markdown at the end.
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { Agent, type IncomingHttpHeaders, request } from 'node:http';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import {
  assertDockerEngine,
  connectWebSocket,
  ensureFixtureImages,
  patternBytesSha256,
  type RawWebSocket,
  removeCreatedContainers,
  runScript,
  type SessionContainer,
  startSessionContainer,
  WebSocketHandshakeError,
} from '@sandbox/test-fixtures';
import {
  type ManagerHandle,
  MiB,
  median,
  mib,
  procSample,
  REPO_ROOT,
  registeredPorts,
  registerPreview,
  scrapeMetrics,
  sleep,
  startManager,
} from './support.js';

// ---------------------------------------------------------------------------------------------------------
// Configuration.

const { values: flags } = parseArgs({
  options: { minutes: { type: 'string' }, 'no-metrics': { type: 'boolean' } },
  allowPositionals: true,
});
const MINUTES = flags.minutes === undefined ? 10 : Number(flags.minutes);
if (!Number.isFinite(MINUTES) || MINUTES < 1 || MINUTES > 24 * 60)
  throw new Error(`--minutes must be a number from 1 to 1440, got ${flags.minutes}`);
const METRICS = flags['no-metrics'] !== true;

const DURATION_MS = Math.round(MINUTES * 60_000);
/** The first minute (a fifth of shorter runs) is warm-up: not part of the growth comparison. */
const WARMUP_MS = Math.min(60_000, DURATION_MS / 5);
const SAMPLE_MS = 5_000;
const REPORT_MS = 30_000;
const CHURN_MS = 20_000;
const LIVE_SESSIONS = 3;
const HTTP_WORKERS = 8;
const WS_SHORT_WORKERS = 4;
const WS_HELD_WORKERS = 4;
const SSE_WORKERS = 2;
/** Pause of an HTTP worker between requests: a soak, not a stress test, on a machine shared with others. */
const HTTP_PAUSE_MS = 5;
const REQUEST_TIMEOUT_MS = 30_000;
const WS_TIMEOUT_MS = 10_000;
const SSE_EVENTS = 20;
const SSE_INTERVAL_MS = 100;
const DOWNLOAD_BYTES = 64 * 1024;
const MAX_POST_BYTES = 64 * 1024;

/**
 * Growth bounds, second half against first half after the warm-up (medians of 5-s samples). The halves'
 * centres are (duration - warm-up) / 2 apart, 4.5 minutes in a 10-minute run. A leak of 1 KiB per HTTP
 * request grows RSS by that time x the request rate x 1 KiB: at 300 req/s, 79 MiB in 4.5 minutes. 32 MiB
 * leaves room for the GC's sawtooth and V8 sizing its heap (the CI load test saw medians move by -9 to
 * +13 MiB under 256 connections); the run prints the leak per request each bound would have let through.
 */
const RSS_GROWTH_BOUND = 32 * MiB;
/** Heap used (after GC or not, whichever the sample hit): less noisy than RSS. */
const HEAP_GROWTH_BOUND = 16 * MiB;
/** Open fds and active handles move with the traffic in flight (held WebSockets, pools of new containers). */
const FD_GROWTH_BOUND = 16;
const HANDLE_GROWTH_BOUND = 16;
/** Once the traffic has stopped and idle connections timed out (4-5 s), back to the baseline plus this. */
const SETTLED_SLACK = 8;
const SETTLE_MS = 30_000;

const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url));
const RESULTS_FILE = `${RESULTS_DIR}soak.json`;
const WATCHDOG_MS = DURATION_MS + 5 * 60_000;

// ---------------------------------------------------------------------------------------------------------
// State.

type SessionState = 'live' | 'retiring' | 'gone';
interface Session {
  readonly box: SessionContainer;
  readonly id: string;
  state: SessionState;
  readonly startedAtS: number;
}

type Kind = 'httpGet' | 'httpPost' | 'download' | 'wsShort' | 'wsHeld' | 'sse';
const KINDS: Kind[] = ['httpGet', 'httpPost', 'download', 'wsShort', 'wsHeld', 'sse'];
const zero = (): Record<Kind, number> => ({
  httpGet: 0,
  httpPost: 0,
  download: 0,
  wsShort: 0,
  wsHeld: 0,
  sse: 0,
});

interface Failure {
  atS: number;
  kind: Kind | 'churn' | 'check';
  session: string;
  message: string;
}

const counts = { ok: zero(), expected: zero(), failed: zero(), wsMessages: 0, churns: 0 };
const expectedReasons = new Map<string, number>();
const failures: Failure[] = [];
let failureCount = 0;
const sessions: Session[] = [];
const removed: Session[] = [];
const churnMs: number[] = [];

let manager: ManagerHandle | undefined;
let stopping = false;
let trafficStartedAt = 0;
const secondsSinceStart = () => Math.round((performance.now() - trafficStartedAt) / 100) / 10;

const POST_SOURCE = randomBytes(MAX_POST_BYTES);
const DOWNLOAD_SHA = patternBytesSha256(DOWNLOAD_BYTES);
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

function live(): Session[] {
  return sessions.filter((s) => s.state === 'live');
}

function pickLive(): Session | undefined {
  const candidates = live();
  return candidates[Math.floor(Math.random() * candidates.length)];
}

/** A short, stable name for what went wrong, for counting. */
function reasonOf(error: unknown): string {
  if (error instanceof WebSocketHandshakeError) {
    const code = /"code"\s*:\s*"([A-Z_]+)"/.exec(error.body)?.[1];
    return `WebSocket handshake ${error.statusCode}${code ? ` ${code}` : ''}`;
  }
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === 'string' ? code : error.message.slice(0, 120);
  }
  return String(error).slice(0, 120);
}

function recordError(kind: Kind, session: Session, error: unknown): void {
  const reason = reasonOf(error);
  if (session.state !== 'live') {
    counts.expected[kind] += 1;
    const key = `${kind}: ${reason}`;
    expectedReasons.set(key, (expectedReasons.get(key) ?? 0) + 1);
    return;
  }
  counts.failed[kind] += 1;
  fail(kind, session.id, error instanceof Error ? error.message : String(error));
}

function fail(kind: Failure['kind'], session: string, message: string): void {
  failureCount += 1;
  if (failures.length < 100) failures.push({ atS: secondsSinceStart(), kind, session, message });
  if (failureCount <= 20)
    console.log(`  FAILURE at ${secondsSinceStart()} s, ${kind} on ${session}: ${message}`);
}

async function attempt(kind: Kind, session: Session, exchange: () => Promise<void>): Promise<void> {
  try {
    await exchange();
    counts.ok[kind] += 1;
  } catch (error) {
    recordError(kind, session, error);
  }
}

// ---------------------------------------------------------------------------------------------------------
// HTTP.

// Keep-alive towards the manager; an idle socket is dropped after 3 s, before the server's 5-s keep-alive
// timeout could close it under a request about to be sent.
const agent = new Agent({ keepAlive: true, maxSockets: 16, timeout: 3000 });

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

function send(method: string, path: string, body?: Buffer): Promise<Reply> {
  const current = manager;
  if (!current) return Promise.reject(new Error('no manager'));
  const url = new URL(current.url);
  return new Promise((resolve, reject) => {
    const req = request({
      host: url.hostname,
      port: url.port,
      method,
      path,
      agent,
      headers:
        body === undefined
          ? {}
          : { 'content-type': 'application/octet-stream', 'content-length': String(body.length) },
    });
    req.setTimeout(REQUEST_TIMEOUT_MS, () =>
      req.destroy(new Error(`no complete response within ${REQUEST_TIMEOUT_MS} ms`)),
    );
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('close', () => {
        if (!res.complete) reject(new Error('response cut short'));
      });
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
      );
    });
    req.end(body);
  });
}

function expectOk(reply: Reply, what: string): void {
  if (reply.status === 200) return;
  const code = /"code"\s*:\s*"([A-Z_]+)"/.exec(reply.body.toString('utf8'))?.[1];
  throw Object.assign(new Error(`${what}: HTTP ${reply.status}${code ? ` ${code}` : ''}`), {
    code: `HTTP ${reply.status}${code ? ` ${code}` : ''}`,
  });
}

interface Echo {
  method: string;
  url: string;
  bodyLength: number;
  bodySha256: string;
  hostname: string;
}

function checkEcho(reply: Reply, session: Session, method: string, url: string): Echo {
  expectOk(reply, `${method} ${url}`);
  const echo = JSON.parse(reply.body.toString('utf8')) as Echo;
  if (echo.method !== method || echo.url !== url)
    throw new Error(`echo of ${method} ${url} says ${echo.method} ${echo.url}`);
  // The container that answered must be the session's (an address reused by a newer container would not be).
  if (!session.box.id.startsWith(echo.hostname))
    throw new Error(
      `${method} ${url} answered by container ${echo.hostname}, not ${session.box.id.slice(0, 12)}`,
    );
  return echo;
}

let sequence = 0;

async function echoGet(session: Session): Promise<void> {
  sequence += 1;
  const url = `/soak/get?n=${sequence}`;
  checkEcho(await send('GET', `/previews/${session.id}${url}`), session, 'GET', url);
}

async function echoPost(session: Session): Promise<void> {
  sequence += 1;
  const url = `/soak/post?n=${sequence}`;
  const length = Math.floor(Math.random() * (MAX_POST_BYTES + 1));
  const body = POST_SOURCE.subarray(0, length);
  const echo = checkEcho(await send('POST', `/previews/${session.id}${url}`, body), session, 'POST', url);
  if (echo.bodyLength !== length || echo.bodySha256 !== sha256(body))
    throw new Error(
      `POST of ${length} bytes arrived as ${echo.bodyLength} bytes (sha256 ${echo.bodySha256})`,
    );
}

async function download(session: Session): Promise<void> {
  const path = `/previews/${session.id}/__fixture/bytes/${DOWNLOAD_BYTES}`;
  const reply = await send('GET', path);
  expectOk(reply, path);
  if (reply.body.length !== DOWNLOAD_BYTES || sha256(reply.body) !== DOWNLOAD_SHA)
    throw new Error(`download: ${reply.body.length} bytes, not the ${DOWNLOAD_BYTES}-byte pattern`);
}

const SSE_EXPECTED = Array.from({ length: SSE_EVENTS }, (_, i) => `data: ${i}\n\n`).join('');

async function sse(session: Session): Promise<void> {
  const path = `/previews/${session.id}/__fixture/sse?count=${SSE_EVENTS}&interval=${SSE_INTERVAL_MS}`;
  const reply = await send('GET', path);
  expectOk(reply, path);
  if (!String(reply.headers['content-type']).startsWith('text/event-stream'))
    throw new Error(`SSE answered ${reply.headers['content-type']}`);
  if (reply.body.toString('utf8') !== SSE_EXPECTED)
    throw new Error(`SSE stream differs: ${JSON.stringify(reply.body.toString('utf8').slice(0, 120))}`);
}

// ---------------------------------------------------------------------------------------------------------
// WebSockets.

async function openWebSocket(session: Session, path: string): Promise<RawWebSocket> {
  const current = manager;
  if (!current) throw new Error('no manager');
  const ws = await connectWebSocket(`${current.url.replace('http:', 'ws:')}/previews/${session.id}${path}`, {
    timeoutMs: WS_TIMEOUT_MS,
  });
  try {
    const hello = await ws.next();
    if (hello.type !== 'text') throw new Error(`first WebSocket event was ${hello.type}, not the hello`);
    const parsed = JSON.parse(hello.text) as { type?: string; url?: string };
    if (parsed.type !== 'hello' || parsed.url !== path)
      throw new Error(`hello says ${parsed.type} ${parsed.url}, expected hello ${path}`);
  } catch (error) {
    ws.destroy();
    throw error;
  }
  return ws;
}

async function exchangeText(ws: RawWebSocket, text: string): Promise<void> {
  ws.sendText(text);
  const event = await ws.next();
  if (event.type !== 'text' || event.text !== text)
    throw new Error(`sent ${JSON.stringify(text)}, got ${event.type} ${JSON.stringify(event)}`.slice(0, 200));
  counts.wsMessages += 1;
}

async function closeWebSocket(ws: RawWebSocket): Promise<void> {
  ws.close(1000, 'soak done');
  const event = await ws.next();
  if (event.type !== 'close' || event.code !== 1000 || event.reason !== 'soak done')
    throw new Error(`close answered with ${JSON.stringify(event)}`);
  const ended = await Promise.race([ws.ended.then(() => true), sleep(WS_TIMEOUT_MS).then(() => false)]);
  if (!ended) throw new Error(`connection still open ${WS_TIMEOUT_MS} ms after the close handshake`);
}

async function wsShort(session: Session): Promise<void> {
  const ws = await openWebSocket(session, '/soak/ws-short');
  try {
    for (let i = 0; i < 5; i++) await exchangeText(ws, `short ${i} ${sequence++}`);
    const data = randomBytes(4096);
    ws.sendBinary(data);
    const event = await ws.next();
    if (event.type !== 'binary' || !event.data.equals(data))
      throw new Error(`binary echo came back as ${event.type}`);
    counts.wsMessages += 1;
    await closeWebSocket(ws);
  } finally {
    ws.destroy();
  }
}

async function wsHeld(session: Session): Promise<void> {
  const ws = await openWebSocket(session, '/soak/ws-held');
  try {
    const holdMs = 15_000 + Math.random() * 30_000;
    const until = performance.now() + holdMs;
    for (let tick = 1; performance.now() < until && !stopping; tick++) {
      await sleep(5000);
      await exchangeText(ws, `held ${tick} ${sequence++}`);
      if (tick % 3 === 0) {
        const data = Buffer.from(`ping ${tick}`);
        ws.ping(data);
        const event = await ws.next();
        if (event.type !== 'pong' || !event.data.equals(data))
          throw new Error(`ping answered with ${event.type}`);
      }
    }
    await closeWebSocket(ws);
  } finally {
    ws.destroy();
  }
}

// ---------------------------------------------------------------------------------------------------------
// Workers and churn.

async function worker(kind: Kind, exchange: (session: Session) => Promise<void>, pauseMs: number) {
  while (!stopping) {
    const session = pickLive();
    if (!session) {
      await sleep(100);
      continue;
    }
    await attempt(kind, session, () => exchange(session));
    if (pauseMs > 0) await sleep(pauseMs);
  }
}

async function httpWorker(): Promise<void> {
  while (!stopping) {
    const session = pickLive();
    if (!session) {
      await sleep(100);
      continue;
    }
    const r = Math.random();
    if (r < 0.4) await attempt('httpGet', session, () => echoGet(session));
    else if (r < 0.7) await attempt('httpPost', session, () => echoPost(session));
    else await attempt('download', session, () => download(session));
    await sleep(HTTP_PAUSE_MS);
  }
}

async function startSession(): Promise<Session> {
  const current = manager;
  if (!current) throw new Error('no manager');
  const box = await startSessionContainer({ ports: [3000] });
  await registerPreview(current.url, box.sessionId);
  const session: Session = { box, id: box.sessionId, state: 'live', startedAtS: secondsSinceStart() };
  sessions.push(session);
  return session;
}

/** Sleeps up to ms, waking early when the run stops. */
async function pause(ms: number): Promise<void> {
  const until = performance.now() + ms;
  while (!stopping && performance.now() < until) await sleep(Math.min(250, until - performance.now()));
}

async function churnLoop(): Promise<void> {
  for (let n = 1; ; n++) {
    await pause(CHURN_MS);
    if (stopping) return;
    const victim = live()[0];
    if (!victim) continue;
    const started = performance.now();
    victim.state = 'retiring';
    try {
      // In turn: a graceful stop (SIGTERM, then removal) and a kill (rm -f).
      if (n % 2 === 1) await victim.box.stop();
      await victim.box.remove();
    } catch (error) {
      fail('churn', victim.id, `removing the container: ${reasonOf(error)}`);
    }
    victim.state = 'gone';
    sessions.splice(sessions.indexOf(victim), 1);
    removed.push(victim);
    try {
      await startSession();
    } catch (error) {
      fail('churn', '-', `starting a replacement: ${error instanceof Error ? error.message : error}`);
    }
    counts.churns += 1;
    churnMs.push(Math.round(performance.now() - started));
  }
}

// ---------------------------------------------------------------------------------------------------------
// Samples and rows.

interface Sample {
  t: number;
  rss: number;
  fds: number;
  sockets: number;
  heapUsed: number | undefined;
  handles: number | undefined;
  activeWebSockets: number | undefined;
  metricsRss: number | undefined;
}

async function sample(t: number): Promise<Sample> {
  const current = manager;
  if (!current) throw new Error('no manager');
  let metrics: Map<string, number> | undefined;
  if (current.metricsUrl) {
    try {
      metrics = await scrapeMetrics(current.metricsUrl);
    } catch (error) {
      fail('check', '-', `scraping /metrics: ${reasonOf(error)}`);
    }
  }
  // /proc after the scrape, so that its connection is in every count the same way (closed or idle).
  const proc = procSample(current.pid);
  return {
    t,
    ...proc,
    heapUsed: metrics?.get('nodejs_heap_size_used_bytes'),
    handles: metrics?.get('nodejs_active_handles_total'),
    activeWebSockets: metrics?.get('preview_active_websockets'),
    metricsRss: metrics?.get('process_resident_memory_bytes'),
  };
}

interface Row {
  t: string;
  rssMiB: number;
  heapMiB: number | undefined;
  handles: number | undefined;
  fds: number;
  sockets: number;
  http: number;
  ws: number;
  sse: number;
  requestsPerSecond: number;
  wsMessages: number;
  churns: number;
  expected: number;
  failed: number;
}

const sum = (record: Record<Kind, number>, kinds: Kind[] = KINDS) =>
  kinds.reduce((total, kind) => total + record[kind], 0);
const httpKinds: Kind[] = ['httpGet', 'httpPost', 'download', 'sse'];

function row(s: Sample, previous: { t: number; http: number }): Row {
  const http = sum(counts.ok, ['httpGet', 'httpPost', 'download']);
  const seconds = s.t - previous.t;
  const minutes = Math.floor(s.t / 60);
  return {
    t: `${minutes}:${String(Math.round(s.t - minutes * 60)).padStart(2, '0')}`,
    rssMiB: mib(s.rss),
    heapMiB: s.heapUsed === undefined ? undefined : mib(s.heapUsed),
    handles: s.handles,
    fds: s.fds,
    sockets: s.sockets,
    http,
    ws: counts.ok.wsShort + counts.ok.wsHeld,
    sse: counts.ok.sse,
    requestsPerSecond: seconds > 0 ? Math.round((http - previous.http) / seconds) : 0,
    wsMessages: counts.wsMessages,
    churns: counts.churns,
    expected: sum(counts.expected),
    failed: failureCount,
  };
}

const COLUMNS: [string, (r: Row) => string][] = [
  ['t (m:s)', (r) => r.t],
  ['RSS MiB', (r) => r.rssMiB.toFixed(1)],
  ['heap MiB', (r) => (r.heapMiB === undefined ? '-' : r.heapMiB.toFixed(1))],
  ['handles', (r) => String(r.handles ?? '-')],
  ['fds (sockets)', (r) => `${r.fds} (${r.sockets})`],
  ['HTTP ok', (r) => String(r.http)],
  ['req/s', (r) => String(r.requestsPerSecond)],
  ['WS ok', (r) => String(r.ws)],
  ['WS msgs', (r) => String(r.wsMessages)],
  ['SSE ok', (r) => String(r.sse)],
  ['churns', (r) => String(r.churns)],
  ['expected errors', (r) => String(r.expected)],
  ['failures', (r) => String(r.failed)],
];

function progressLine(r: Row): string {
  return COLUMNS.map(([name, value]) => `${name} ${value(r)}`).join(', ');
}

function markdownTable(rows: Row[]): string {
  const lines = [
    `| ${COLUMNS.map(([name]) => name).join(' | ')} |`,
    `|${COLUMNS.map(() => '---:|').join('')}`,
    ...rows.map((r) => `| ${COLUMNS.map(([, value]) => value(r)).join(' | ')} |`),
  ];
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------------------
// Verdict.

interface Check {
  name: string;
  value: number | string;
  bound: number | string;
  pass: boolean;
  note?: string;
}

function growth(
  samples: Sample[],
  pick: (s: Sample) => number | undefined,
): { first: number; second: number; delta: number } | undefined {
  const after = samples.filter((s) => s.t >= WARMUP_MS / 1000);
  if (after.length < 4) return undefined;
  const startT = after[0]?.t ?? 0;
  const endT = after.at(-1)?.t ?? 0;
  const mid = (startT + endT) / 2;
  const values = (part: Sample[]) => part.map(pick).filter((v): v is number => v !== undefined);
  const first = values(after.filter((s) => s.t < mid));
  const second = values(after.filter((s) => s.t >= mid));
  if (first.length === 0 || second.length === 0) return undefined;
  return { first: median(first), second: median(second), delta: median(second) - median(first) };
}

// ---------------------------------------------------------------------------------------------------------
// Main.

const execFileAsync = promisify(execFile);

async function codeUnderTest(): Promise<{ commit: string; uncommitted: string[] }> {
  const git = (args: string[]) => execFileAsync('git', args, { cwd: REPO_ROOT, encoding: 'utf8' });
  try {
    const commit = (await git(['rev-parse', '--short', 'HEAD'])).stdout.trim();
    const status = (await git(['status', '--porcelain'])).stdout;
    const uncommitted = status
      .split('\n')
      .filter(Boolean)
      .map((line) => line.slice(3));
    return { commit, uncommitted };
  } catch {
    return { commit: 'unknown', uncommitted: [] };
  }
}

async function cleanup(): Promise<void> {
  stopping = true;
  agent.destroy();
  await manager?.stop().catch(() => {});
  await removeCreatedContainers().catch((error: unknown) => console.error('removing containers:', error));
}

async function main(): Promise<number> {
  const startedAt = new Date();
  const code = await codeUnderTest();
  console.log(
    `soak: ${MINUTES} min (warm-up ${WARMUP_MS / 1000} s), ${cpus().length} CPUs, Node ${process.version},` +
      ` load ${loadavg()[0]?.toFixed(2)}; code ${code.commit}` +
      (code.uncommitted.length > 0 ? ` + ${code.uncommitted.length} uncommitted files` : ''),
  );
  await assertDockerEngine();
  await ensureFixtureImages();
  const started = await startManager({ metrics: METRICS });
  manager = started;
  console.log(
    `container-manager pid ${started.pid} at ${started.url}` +
      (started.metricsUrl ? `, metrics ${started.metricsUrl}` : ', no metrics (/proc only)'),
  );
  trafficStartedAt = performance.now();
  await Promise.all(Array.from({ length: LIVE_SESSIONS }, () => startSession()));
  console.log(`sessions: ${sessions.map((s) => `${s.id} (${s.box.ip})`).join(', ')}`);

  // Baseline: registered, idle, the registration's connections timed out.
  await sleep(6000);
  const baseline = await sample(0);
  console.log(
    `baseline: RSS ${mib(baseline.rss)} MiB, heap ${baseline.heapUsed === undefined ? '-' : mib(baseline.heapUsed)} MiB,` +
      ` handles ${baseline.handles ?? '-'}, fds ${baseline.fds} (${baseline.sockets} sockets)`,
  );

  trafficStartedAt = performance.now();
  const workers: Promise<void>[] = [
    ...Array.from({ length: HTTP_WORKERS }, () => httpWorker()),
    ...Array.from({ length: WS_SHORT_WORKERS }, () => worker('wsShort', wsShort, 200)),
    ...Array.from({ length: WS_HELD_WORKERS }, () => worker('wsHeld', wsHeld, 200)),
    ...Array.from({ length: SSE_WORKERS }, () => worker('sse', sse, 100)),
  ];
  const churn = churnLoop();

  const samples: Sample[] = [];
  const rows: Row[] = [];
  let previous = { t: 0, http: 0 };
  let nextReport = REPORT_MS;
  for (let next = SAMPLE_MS; next <= DURATION_MS; next += SAMPLE_MS) {
    await sleep(Math.max(0, next - (performance.now() - trafficStartedAt)));
    if (!started.alive()) {
      fail('check', '-', `container-manager exited (${started.child.exitCode ?? started.child.signalCode})`);
      break;
    }
    const s = await sample(Math.round((performance.now() - trafficStartedAt) / 100) / 10);
    samples.push(s);
    if (next >= nextReport) {
      nextReport += REPORT_MS;
      const r = row(s, previous);
      previous = { t: s.t, http: r.http };
      rows.push(r);
      console.log(progressLine(r));
    }
  }

  // Stop the traffic: workers finish their exchange (a held WebSocket its current tick).
  stopping = true;
  const trafficEndS = secondsSinceStart();
  const drained = await Promise.race([
    Promise.all([...workers, churn]).then(() => true),
    sleep(60_000).then(() => false),
  ]);
  if (!drained) fail('check', '-', 'the traffic did not stop within 60 s');
  agent.destroy();

  // Settle: idle connections time out (the manager's upstream pools after 4 s).
  let settled = await sample(secondsSinceStart());
  const settleUntil = performance.now() + SETTLE_MS;
  while (started.alive() && performance.now() < settleUntil) {
    const handlesBack =
      settled.handles === undefined ||
      baseline.handles === undefined ||
      settled.handles <= baseline.handles + SETTLED_SLACK;
    if (settled.fds <= baseline.fds + SETTLED_SLACK && handlesBack) break;
    await sleep(1000);
    settled = await sample(secondsSinceStart());
  }

  // Still serving; the removed sessions' registrations dropped, the live ones kept.
  const alive = started.alive();
  let health = 0;
  let liveAnswers: number[] = [];
  const staleRegistrations: string[] = [];
  const lostRegistrations: string[] = [];
  if (alive) {
    health = (await send('GET', '/healthz').catch(() => undefined))?.status ?? 0;
    liveAnswers = await Promise.all(
      live().map((s) =>
        send('GET', `/previews/${s.id}/soak/after`).then(
          (r) => r.status,
          () => 0,
        ),
      ),
    );
    agent.destroy();
    for (const s of removed)
      if ((await registeredPorts(started.url, s.id)).length > 0) staleRegistrations.push(s.id);
    for (const s of live())
      if ((await registeredPorts(started.url, s.id)).join() !== '3000') lostRegistrations.push(s.id);
  }

  // The verdict.
  const checks: Check[] = [];
  const check = (c: Check) => checks.push(c);
  check({ name: 'unexpected errors', value: failureCount, bound: 0, pass: failureCount === 0 });
  check({ name: 'manager alive after the run', value: String(alive), bound: 'true', pass: alive });
  check({ name: 'GET /healthz after the run', value: health, bound: 200, pass: health === 200 });
  check({
    name: 'live sessions answer after the run',
    value: liveAnswers.join(','),
    bound: '200 each',
    pass: liveAnswers.length > 0 && liveAnswers.every((s) => s === 200),
  });
  check({
    name: 'removed sessions still registered',
    value: staleRegistrations.length,
    bound: 0,
    pass: alive && staleRegistrations.length === 0,
    note: `${removed.length} removed`,
  });
  check({
    name: 'live sessions not registered on 3000',
    value: lostRegistrations.length,
    bound: 0,
    pass: alive && lostRegistrations.length === 0,
  });
  const measured = samples.filter((s) => s.t <= trafficEndS);
  const httpTotal =
    sum(counts.ok, httpKinds) + sum(counts.expected, httpKinds) + sum(counts.failed, httpKinds);
  const requestRate = trafficEndS > 0 ? httpTotal / trafficEndS : 0;
  const afterWarmup = measured.filter((s) => s.t >= WARMUP_MS / 1000);
  const centresApartS = ((afterWarmup.at(-1)?.t ?? 0) - (afterWarmup[0]?.t ?? 0)) / 2;
  const requestsBetween = requestRate * centresApartS;
  const perRequest = (bytes: number) => (requestsBetween > 0 ? Math.round(bytes / requestsBetween) : 0);
  const growthCheck = (
    name: string,
    pick: (s: Sample) => number | undefined,
    bound: number,
    unit: 'MiB' | '',
  ) => {
    const g = growth(measured, pick);
    if (!g) {
      check({
        name,
        value: 'no samples',
        bound: unit ? `${mib(bound)} MiB` : bound,
        pass: pick(baseline) === undefined,
      });
      return;
    }
    const show = (v: number) => (unit ? `${mib(v)} MiB` : String(Math.round(v * 10) / 10));
    check({
      name,
      value: show(g.delta),
      bound: unit ? `${mib(bound)} MiB` : bound,
      pass: g.delta <= bound,
      note:
        `medians ${show(g.first)} -> ${show(g.second)}` +
        (unit ? `; the bound lets through at most ${perRequest(bound)} B per HTTP request` : ''),
    });
  };
  growthCheck('RSS growth (2nd half - 1st half after warm-up)', (s) => s.rss, RSS_GROWTH_BOUND, 'MiB');
  growthCheck('heap used growth', (s) => s.heapUsed, HEAP_GROWTH_BOUND, 'MiB');
  growthCheck('open fds growth', (s) => s.fds, FD_GROWTH_BOUND, '');
  growthCheck('active handles growth', (s) => s.handles, HANDLE_GROWTH_BOUND, '');
  check({
    name: 'open fds once idle, above the baseline',
    value: settled.fds - baseline.fds,
    bound: SETTLED_SLACK,
    pass: settled.fds - baseline.fds <= SETTLED_SLACK,
    note: `${baseline.fds} -> ${settled.fds} (sockets ${baseline.sockets} -> ${settled.sockets})`,
  });
  if (baseline.handles !== undefined && settled.handles !== undefined)
    check({
      name: 'active handles once idle, above the baseline',
      value: settled.handles - baseline.handles,
      bound: SETTLED_SLACK,
      pass: settled.handles - baseline.handles <= SETTLED_SLACK,
      note: `${baseline.handles} -> ${settled.handles}`,
    });
  const pass = checks.every((c) => c.pass);

  const report = {
    soak: 'container-manager mixed traffic with container churn',
    startedAt: startedAt.toISOString(),
    machine: { nproc: cpus().length, node: process.version, loadAverage1mAtEnd: loadavg()[0] ?? 0 },
    code,
    config: {
      minutes: MINUTES,
      warmupSeconds: WARMUP_MS / 1000,
      sampleSeconds: SAMPLE_MS / 1000,
      reportSeconds: REPORT_MS / 1000,
      churnSeconds: CHURN_MS / 1000,
      liveSessions: LIVE_SESSIONS,
      workers: { http: HTTP_WORKERS, wsShort: WS_SHORT_WORKERS, wsHeld: WS_HELD_WORKERS, sse: SSE_WORKERS },
      httpPauseMs: HTTP_PAUSE_MS,
      metrics: METRICS,
      manager: { LOG_LEVEL: 'warn', ACCESS_LOG: 'false' },
      bounds: {
        rssGrowthBytes: RSS_GROWTH_BOUND,
        heapGrowthBytes: HEAP_GROWTH_BOUND,
        fdGrowth: FD_GROWTH_BOUND,
        handleGrowth: HANDLE_GROWTH_BOUND,
        settledSlack: SETTLED_SLACK,
      },
    },
    totals: {
      trafficSeconds: trafficEndS,
      httpRequestsPerSecond: Math.round(requestRate),
      ok: counts.ok,
      expectedErrors: counts.expected,
      failed: counts.failed,
      wsMessages: counts.wsMessages,
      churns: counts.churns,
      churnMs: { median: median(churnMs), max: Math.max(0, ...churnMs) },
      expectedReasons: Object.fromEntries([...expectedReasons].sort((a, b) => b[1] - a[1])),
    },
    baseline,
    settled,
    samples: measured,
    rows,
    failures,
    failureCount,
    verdict: { pass, checks },
  };
  mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileSync(RESULTS_FILE, `${JSON.stringify(report, null, 2)}\n`);

  console.log('');
  console.log(
    `soak, ${MINUTES} min, ${new Date(startedAt).toISOString()}: ${Math.round(requestRate)} HTTP req/s on average;` +
      ` ok ${JSON.stringify(counts.ok)}; ${counts.wsMessages} WebSocket messages echoed; ${counts.churns} containers` +
      ` replaced (median ${median(churnMs)} ms each)`,
  );
  console.log(
    `expected errors (on sessions being removed): ${sum(counts.expected)}` +
      (expectedReasons.size > 0
        ? ` (${[...expectedReasons]
            .sort((a, b) => b[1] - a[1])
            .map(([reason, n]) => `${reason} x${n}`)
            .join('; ')})`
        : ''),
  );
  console.log(
    `unexpected errors: ${failureCount}${failureCount > 0 ? ` ${JSON.stringify(counts.failed)}` : ''}`,
  );
  for (const f of failures.slice(0, 10))
    console.log(`  at ${f.atS} s, ${f.kind} on ${f.session}: ${f.message}`);
  console.log('');
  console.log(markdownTable(rows));
  console.log('');
  for (const c of checks)
    console.log(
      `${c.pass ? 'PASS' : 'FAIL'}  ${c.name}: ${c.value} (bound ${c.bound})${c.note ? `; ${c.note}` : ''}`,
    );
  console.log(`verdict: ${pass ? 'PASS' : 'FAIL'}; samples and verdict in ${RESULTS_FILE}`);
  if (!alive) console.log(`container-manager output:\n${started.output().slice(-4000)}`);
  return pass ? 0 : 1;
}

runScript({
  name: 'the soak',
  main,
  cleanup,
  watchdogMs: WATCHDOG_MS,
  onFailure: () => {
    if (manager) console.error(`container-manager output:\n${manager.output().slice(-4000)}`);
  },
});
