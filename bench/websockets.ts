// Benchmark (not a test): many concurrent WebSockets through container-manager's preview proxy.
//
// Starts container-manager in a child process (so its memory is its own), a session container running the
// fixture server (a WebSocket echo on any path), registers it, then opens WS_CONNECTIONS proxied WebSockets,
// holds them WS_HOLD_SECONDS while each one sends a small text message every few seconds and checks the
// echo, closes them, and prints: connections opened, errors, handshake p50/p99, the proxy's RSS before and
// after, and its memory per connection. Results go to bench/results/websockets.json. No error is allowed:
// any makes the exit code 1. It stops by itself and cleans up (the child, the container).
//
//   pnpm --filter @sandbox/bench bench:ws                   # 5,000 connections held 30 s
//   WS_CONNECTIONS=500 WS_HOLD_SECONDS=5 pnpm --filter @sandbox/bench bench:ws
//   pnpm --filter @sandbox/bench bench:ws --connections 500 --hold 5 --interval 2 --concurrency 50
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  assertDockerEngine,
  connectWebSocket,
  docker,
  ensureFixtureImages,
  type RawWebSocket,
  removeCreatedContainers,
  type SessionContainer,
  startSessionContainer,
} from '@sandbox/test-fixtures';
import {
  APP_DIR,
  KEY,
  mib,
  RESULTS_DIR,
  registerPreview,
  round,
  rssBytes,
  runBenchmark,
  type Service,
  sleep,
  startService,
  stopChild,
} from './support.js';

// ---------------------------------------------------------------------------------------------------------
// Configuration: command-line flags win over the environment, which wins over the defaults.

const { values: flags } = parseArgs({
  options: {
    connections: { type: 'string' },
    hold: { type: 'string' },
    interval: { type: 'string' },
    concurrency: { type: 'string' },
    route: { type: 'string' },
  },
});

function setting(flag: string | undefined, env: string, fallback: number, min: number): number {
  const raw = flag ?? process.env[env];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min)
    throw new Error(`${env} must be a number >= ${min}, got ${raw}`);
  return value;
}

const CONNECTIONS = Math.floor(setting(flags.connections, 'WS_CONNECTIONS', 5000, 1));
const HOLD_SECONDS = setting(flags.hold, 'WS_HOLD_SECONDS', 30, 0);
/** Each connection sends one message this often (the first at a random point in the first interval). */
const MESSAGE_INTERVAL_SECONDS = setting(flags.interval, 'WS_MESSAGE_INTERVAL_SECONDS', 5, 0.1);
/** Handshakes in flight at once while opening (the proxy's upstream agent allows 256 per container). */
const OPEN_CONCURRENCY = Math.floor(setting(flags.concurrency, 'WS_OPEN_CONCURRENCY', 100, 1));
const ROUTE = flags.route ?? process.env.WS_ROUTE ?? '/previews';
if (ROUTE !== '/previews' && ROUTE !== '/internal-previews/proxy') {
  throw new Error(`WS_ROUTE must be /previews or /internal-previews/proxy, got ${ROUTE}`);
}

const HANDSHAKE_TIMEOUT_MS = 20_000;
const ECHO_TIMEOUT_MS = 10_000;
const CLOSE_TIMEOUT_MS = 15_000;
/** Settling time before an RSS reading, so it is not taken in the middle of a burst. */
const SETTLE_MS = 2000;
const RESULTS_FILE = join(RESULTS_DIR, 'websockets.json');
// Upper bound of the whole run; past it the benchmark gives up, cleans up and exits 1.
const WATCHDOG_MS = 300_000 + HOLD_SECONDS * 1000 + CONNECTIONS * 20;

// ---------------------------------------------------------------------------------------------------------
// File descriptors: this process holds one per connection; the proxy two (client side and container side).

function openFilesLimit(pid: number | 'self'): { soft: number; hard: number } {
  const limits = readFileSync(`/proc/${pid}/limits`, 'utf8');
  const match = /^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/m.exec(limits);
  const parse = (value: string | undefined) =>
    value === undefined || value === 'unlimited' ? Number.POSITIVE_INFINITY : Number(value);
  return { soft: parse(match?.[1]), hard: parse(match?.[2]) };
}

const CLIENT_FDS_NEEDED = CONNECTIONS + 512;
const PROXY_FDS_NEEDED = 2 * CONNECTIONS + 512;
const CONTAINER_FDS_NEEDED = CONNECTIONS + 256;

/**
 * Fails early when this process may not open enough files. Node raises its own soft limit to the hard
 * limit at start-up, so only the hard limit (ulimit -Hn of the shell that started it) can be too low.
 */
function checkOwnOpenFilesLimit(): void {
  const own = openFilesLimit('self');
  if (own.soft >= CLIENT_FDS_NEEDED) return;
  throw new Error(
    `this process may open ${own.soft} files (hard limit ${own.hard}); ${CONNECTIONS} connections need` +
      ` ${CLIENT_FDS_NEEDED}: raise it (ulimit -n) or lower WS_CONNECTIONS`,
  );
}

// ---------------------------------------------------------------------------------------------------------
// container-manager in a child process, its open-files limit raised in the shell that execs it.

const openFds = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;

function startManager(): Promise<Service> {
  return startService({
    name: 'container-manager',
    cwd: APP_DIR,
    nodeArgs: ['--import', 'tsx', 'src/main.ts'],
    env: { INTERNAL_SERVICE_KEY: KEY, PORT: '0', HOST: '127.0.0.1', SHUTDOWN_GRACE_MS: '2000' },
    // The check after start-up says whether the limit it got suffices.
    raiseFilesLimit: true,
  });
}

/** SIGTERM (container-manager's graceful shutdown), SIGKILL after 10 s; how it exited goes in the results. */
function stopManager(manager: Service): Promise<{ code: number | null; signal: string | null }> {
  return stopChild(manager.child);
}

// ---------------------------------------------------------------------------------------------------------
// Measurement helpers.

function percentiles(values: number[]) {
  if (values.length === 0) return { count: 0, p50: 0, p90: 0, p99: 0, max: 0, mean: 0 };
  const sorted = [...values].sort((a, b) => a - b);
  // Nearest rank.
  const at = (p: number) =>
    sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0;
  const mean = sorted.reduce((sum, value) => sum + value, 0) / sorted.length;
  return {
    count: sorted.length,
    p50: round(at(50), 2),
    p90: round(at(90), 2),
    p99: round(at(99), 2),
    max: round(sorted[sorted.length - 1] ?? 0, 2),
    mean: round(mean, 2),
  };
}

const errors: { phase: string; connection: number; message: string }[] = [];
let cleanedUp: Promise<void> | undefined;
function fail(phase: string, connection: number, error: unknown): void {
  // Once cleaning up (a signal, the watchdog), connections end because we end them.
  if (cleanedUp !== undefined) return;
  errors.push({ phase, connection, message: error instanceof Error ? error.message : String(error) });
  if (errors.length <= 10)
    console.error(`error (${phase}, connection ${connection}): ${errors.at(-1)?.message}`);
}

// ---------------------------------------------------------------------------------------------------------
// The connections.

interface Connection {
  index: number;
  ws: RawWebSocket;
  closing: boolean;
  /** The connection ended before the benchmark closed it. */
  lost: boolean;
  /** Settles when the message loop stops. */
  loop?: Promise<void>;
}

const connections: Connection[] = [];
const handshakeMs: number[] = [];
const echoMs: number[] = [];
let messages = 0;
/** Message loops stop at this time; set once every connection is open. */
let holdEndsAt = Number.POSITIVE_INFINITY;

async function openOne(url: string, index: number): Promise<Connection | undefined> {
  const started = performance.now();
  let ws: RawWebSocket;
  try {
    ws = await connectWebSocket(url, { timeoutMs: HANDSHAKE_TIMEOUT_MS });
  } catch (error) {
    fail('handshake', index, error);
    return undefined;
  }
  handshakeMs.push(performance.now() - started);
  const connection: Connection = { index, ws, closing: false, lost: false };
  void ws.ended.then(() => {
    if (connection.closing) return;
    connection.lost = true;
    fail('hold', index, new Error('connection closed before the benchmark closed it'));
  });
  try {
    // The fixture greets every connection before echoing.
    const hello = await ws.next(HANDSHAKE_TIMEOUT_MS);
    if (hello.type !== 'text' || !hello.text.includes('"type":"hello"')) {
      throw new Error(`expected the hello message, got ${hello.type}`);
    }
  } catch (error) {
    fail('hello', index, error);
    connection.closing = true;
    ws.destroy();
    return undefined;
  }
  return connection;
}

async function messageLoop(connection: Connection): Promise<void> {
  const intervalMs = MESSAGE_INTERVAL_SECONDS * 1000;
  // Spread over the interval, so the proxy sees a steady rate rather than bursts.
  await sleep(Math.random() * intervalMs);
  for (let seq = 0; Date.now() < holdEndsAt && !connection.closing && !connection.lost; seq++) {
    const text = `bench ${connection.index} ${seq}`;
    const sent = performance.now();
    try {
      connection.ws.sendText(text);
      const echo = await connection.ws.next(ECHO_TIMEOUT_MS);
      if (echo.type !== 'text' || echo.text !== text) {
        throw new Error(`echo mismatch: sent ${JSON.stringify(text)}, got ${JSON.stringify(echo)}`);
      }
    } catch (error) {
      fail('echo', connection.index, error);
      return;
    }
    echoMs.push(performance.now() - sent);
    messages += 1;
    const left = holdEndsAt - Date.now();
    if (left <= 0) return;
    await sleep(Math.min(intervalMs, left));
  }
}

async function closeOne(connection: Connection): Promise<boolean> {
  connection.closing = true;
  const { ws } = connection;
  try {
    ws.close(1000, 'bench done');
    // The fixture answers with the same code and reason, then ends the connection.
    const reply = await ws.next(CLOSE_TIMEOUT_MS);
    if (reply.type !== 'close' || reply.code !== 1000)
      throw new Error(`expected close 1000, got ${JSON.stringify(reply)}`);
    const ended = await Promise.race([ws.ended.then(() => true), sleep(CLOSE_TIMEOUT_MS).then(() => false)]);
    if (!ended) throw new Error('the connection did not end after the close handshake');
    return true;
  } catch (error) {
    fail('close', connection.index, error);
    ws.destroy();
    return false;
  }
}

/** Runs `task` over 0..count-1 with at most `limit` in flight. */
async function pool(count: number, limit: number, task: (index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const index = next;
      next += 1;
      await task(index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, count) }, worker));
}

// ---------------------------------------------------------------------------------------------------------

let manager: Service | undefined;

function cleanup(): Promise<void> {
  cleanedUp ??= (async () => {
    for (const connection of connections) {
      connection.closing = true;
      connection.ws.destroy();
    }
    if (manager) await stopManager(manager).catch(() => {});
    await removeCreatedContainers().catch((error: unknown) =>
      console.error('could not remove the container:', error),
    );
  })();
  return cleanedUp;
}

async function containerFilesLimit(box: SessionContainer): Promise<number | undefined> {
  // The container's init is a host process too (same kernel): read its limit from /proc.
  try {
    const pid = Number(await docker(['inspect', '--format', '{{.State.Pid}}', box.id]));
    return openFilesLimit(pid).soft;
  } catch {
    return undefined;
  }
}

async function main(): Promise<number> {
  checkOwnOpenFilesLimit();
  console.log(
    `WebSocket benchmark: ${CONNECTIONS} connections through ${ROUTE}/:id/, held ${HOLD_SECONDS} s, one message` +
      ` per connection every ${MESSAGE_INTERVAL_SECONDS} s, ${OPEN_CONCURRENCY} handshakes at a time`,
  );
  await assertDockerEngine();
  await ensureFixtureImages();

  const [started, box] = await Promise.all([startManager(), startSessionContainer({ ports: [3000] })]);
  manager = started;
  const limits = {
    client: openFilesLimit('self').soft,
    proxy: openFilesLimit(manager.pid).soft,
    container: await containerFilesLimit(box),
  };
  console.log(
    `open-files limits: this process ${limits.client}, proxy ${limits.proxy}, container ${limits.container ?? 'unknown'}`,
  );
  if (limits.proxy < PROXY_FDS_NEEDED) {
    throw new Error(
      `the proxy may open ${limits.proxy} files; ${CONNECTIONS} connections need ${PROXY_FDS_NEEDED}`,
    );
  }
  if (limits.container !== undefined && limits.container < CONTAINER_FDS_NEEDED) {
    throw new Error(`the container may open ${limits.container} files; it needs ${CONTAINER_FDS_NEEDED}`);
  }

  await registerPreview(manager.url, box.sessionId, 3000);
  const url = `${manager.url.replace('http:', 'ws:')}${ROUTE}/${box.sessionId}/bench`;
  const rssStart = rssBytes(manager.pid);

  // A few connections first, so the one-off costs (code paths, the Docker lookup) are out of the baseline.
  const warm = await Promise.all(Array.from({ length: 20 }, (_, i) => openOne(url, -1 - i)));
  for (const connection of warm) if (connection) await closeOne(connection);
  if (errors.length > 0) throw new Error(`warm-up failed: ${errors[0]?.message}`);
  await sleep(SETTLE_MS);
  const rssBefore = rssBytes(manager.pid);
  const fdsBefore = openFds(manager.pid);
  console.log(`proxy RSS at start ${mib(rssStart)} MiB, before the connections ${mib(rssBefore)} MiB`);

  let rssPeak = rssBefore;
  const pid = manager.pid;
  const sampler = setInterval(() => {
    rssPeak = Math.max(rssPeak, rssBytes(pid));
  }, 250);

  // Open.
  const rampStarted = performance.now();
  let progressAt = 0;
  await pool(CONNECTIONS, OPEN_CONCURRENCY, async (index) => {
    const connection = await openOne(url, index);
    if (!connection) return;
    connections.push(connection);
    connection.loop = messageLoop(connection);
    if (connections.length >= progressAt + 1000) {
      progressAt = connections.length;
      console.log(`  ${connections.length} open`);
    }
  });
  const rampSeconds = (performance.now() - rampStarted) / 1000;
  console.log(`${connections.length} open in ${rampSeconds.toFixed(1)} s; holding ${HOLD_SECONDS} s`);

  // Hold.
  holdEndsAt = Date.now() + HOLD_SECONDS * 1000;
  await Promise.all(connections.map((connection) => connection.loop));
  const stillOpen = connections.filter(
    (connection) => !connection.lost && !connection.ws.socket.destroyed,
  ).length;
  await sleep(SETTLE_MS);
  const rssAfter = rssBytes(manager.pid);
  const fdsAfter = openFds(manager.pid);
  clearInterval(sampler);
  rssPeak = Math.max(rssPeak, rssAfter);
  console.log(`hold done: ${stillOpen} still open, ${messages} messages echoed`);

  // Close.
  const closeStarted = performance.now();
  const closed = await Promise.all(connections.map((connection) => closeOne(connection)));
  const closeSeconds = (performance.now() - closeStarted) / 1000;
  await sleep(SETTLE_MS);
  const rssAfterClose = rssBytes(manager.pid);
  const fdsAfterClose = openFds(manager.pid);
  const stopped = await stopManager(manager);
  if (stopped.code !== 0)
    fail('shutdown', -1, new Error(`container-manager exited with ${stopped.code ?? stopped.signal}`));

  const opened = handshakeMs.length - warm.length;
  const perConnection = (rssAfter - rssBefore) / Math.max(1, connections.length);
  const handshake = percentiles(handshakeMs.slice(warm.length));
  const echo = percentiles(echoMs);
  const results = {
    benchmark: 'websockets',
    date: new Date().toISOString(),
    machine: {
      node: process.version,
      cpus: cpus().length,
      memoryMiB: mib(totalmem()),
      loadAverage1m: round(loadavg()[0] ?? 0, 2),
    },
    config: {
      connections: CONNECTIONS,
      holdSeconds: HOLD_SECONDS,
      messageIntervalSeconds: MESSAGE_INTERVAL_SECONDS,
      openConcurrency: OPEN_CONCURRENCY,
      route: ROUTE,
    },
    openFilesLimits: limits,
    connectionsOpened: opened,
    connectionsOpenAtEndOfHold: stillOpen,
    connectionsClosedCleanly: closed.filter(Boolean).length,
    errors: errors.length,
    errorSamples: errors.slice(0, 20),
    rampSeconds: round(rampSeconds, 2),
    handshakesPerSecond: round(opened / rampSeconds, 0),
    handshakeMs: handshake,
    messagesEchoed: messages,
    echoRoundTripMs: echo,
    closeSeconds: round(closeSeconds, 2),
    proxy: {
      rssStartMiB: mib(rssStart),
      rssBeforeMiB: mib(rssBefore),
      rssAfterMiB: mib(rssAfter),
      rssPeakMiB: mib(rssPeak),
      rssAfterCloseMiB: mib(rssAfterClose),
      bytesPerConnection: Math.round(perConnection),
      kibPerConnection: round(perConnection / 1024, 1),
      // RSS moves with the garbage collector's timing; the peak (sampled every 250 ms) bounds it from above.
      kibPerConnectionAtPeak: round((rssPeak - rssBefore) / Math.max(1, connections.length) / 1024, 1),
      openFdsBefore: fdsBefore,
      openFdsWithAllOpen: fdsAfter,
      openFdsAfterClose: fdsAfterClose,
      exit: stopped,
    },
  };
  mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileSync(RESULTS_FILE, `${JSON.stringify(results, null, 2)}\n`);

  console.log('');
  console.log(
    `connections opened        ${opened} / ${CONNECTIONS} (${results.handshakesPerSecond}/s, ${rampSeconds.toFixed(1)} s)`,
  );
  console.log(`errors                    ${errors.length}`);
  console.log(
    `handshake                 p50 ${handshake.p50} ms, p99 ${handshake.p99} ms, max ${handshake.max} ms`,
  );
  console.log(
    `echo round trip           ${messages} messages, p50 ${echo.p50} ms, p99 ${echo.p99} ms, max ${echo.max} ms`,
  );
  console.log(
    `open at end of hold       ${stillOpen}; closed cleanly ${results.connectionsClosedCleanly} in ${closeSeconds.toFixed(1)} s`,
  );
  console.log(
    `proxy RSS                 before ${mib(rssBefore)} MiB, after ${mib(rssAfter)} MiB (all open), peak ${mib(rssPeak)} MiB,` +
      ` after closing ${mib(rssAfterClose)} MiB`,
  );
  console.log(
    `memory per connection     ${results.proxy.kibPerConnection} KiB ((after - before) / ${connections.length});` +
      ` ${results.proxy.kibPerConnectionAtPeak} KiB at the peak`,
  );
  console.log(
    `proxy open files          ${fdsBefore} before, ${fdsAfter} with all open, ${fdsAfterClose} after closing`,
  );
  console.log(`results                   ${RESULTS_FILE}`);
  return errors.length === 0 && opened === CONNECTIONS ? 0 : 1;
}

runBenchmark({
  main,
  cleanup,
  watchdogMs: WATCHDOG_MS,
  outputs: () => [['container-manager', manager, 4000]],
});
