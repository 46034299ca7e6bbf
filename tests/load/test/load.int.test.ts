// Load through container-manager's public route, in CI: 256 concurrent keep-alive connections for 60 s
// (wrk), spread over two real session containers and four kinds of request, against the manager as a real
// process (LOG_LEVEL=warn, ACCESS_LOG=false). What it asserts holds on a slow or busy machine too; nothing
// here depends on how fast the proxy is:
// - no socket errors and no response other than 2xx (wrk's counters, and every status counted by the script);
// - the manager still runs and answers afterwards;
// - resident memory flat after a 10-s warm-up (RSS_GROWTH_BOUND below);
// - the open fds back near the baseline once the load stops (the upstream keep-alive pool is bounded), and
//   never more sockets than the clients plus the bounded pool during it.
// It prints one summary line (req/s, p99, RSS start/end, fds) to copy into the docs.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  httpRequest,
  removeCreatedContainers,
  type SessionContainer,
  startSessionContainer,
} from '@sandbox/test-fixtures';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ManagerHandle,
  MiB,
  median,
  mib,
  type ProcSample,
  procSample,
  registerPreview,
  runWrk,
  sleep,
  startManager,
  timeWaitTowards,
  type WrkResult,
} from '../support.js';

const CONNECTIONS = 256;
const WARMUP_SECONDS = 10;
/** 60 s in CI; LOAD_SECONDS=300 npx vitest run for a longer look (the test's timeout follows). */
const LOAD_SECONDS = Number(process.env.LOAD_SECONDS ?? 60);
const CONTAINERS = 2;
/** The medians compared: the first and the last WINDOW_SECONDS of the measured run. */
const WINDOW_SECONDS = 15;
/**
 * Most the median RSS of the last 15 s may exceed that of the first 15 s (after the warm-up).
 *
 * The two windows are centred 45 s apart (t = 7.5 s and t = 52.5 s). A leak of 1 KiB per request grows RSS
 * by 45 s x rate x 1 KiB between them: at 1,000 req/s that is 44 MiB, at the ~5,000-6,500 req/s measured
 * here (two busy cores) 220-285 MiB. 32 MiB is broken by such a leak at any rate above
 * 32 MiB / (45 s x 1 KiB) = 728 req/s, and at 5,000 req/s by a leak of 150 B per request; the test prints
 * the rate, and the leak per request the growth it saw allows, so a run too slow to tell says so.
 * Noise measured over runs of 60 and 200 s: the 15-s medians move by -9 to +13 MiB (V8 growing its old
 * space over the first ~30 s of load, then GC sawtooth of +-10 MiB around a flat line).
 *
 * On Node 22+ the same route serves about twice the rate of Node 20 (11,700 req/s measured on Node 24),
 * and V8 grows its heap in larger steps: 32 MiB over twice the requests held a step of 33 MiB. What the
 * bound is for is a leak per request, so above 5,000 req/s it follows the requests:
 * {@link LEAK_PER_REQUEST_BOUND} each, the leak 32 MiB caught at 5,000 req/s.
 */
const RSS_GROWTH_BOUND = 32 * MiB;
/** The leak per request the RSS bound catches at any rate: 150 B (see RSS_GROWTH_BOUND). */
const LEAK_PER_REQUEST_BOUND = 150;
/** After the load, open fds must fall back to at most this many above the baseline. */
const FD_SLACK = 8;
/**
 * proxy-core's upstream pool (the native client, or undici's Agent): at most 256 connections per container
 * ip:port, idle ones closed after 4 s. Under this load it does use all of them (it opens a connection
 * rather than wait for a busy one to finish), so the bound on sockets is the pool's limit, not the number
 * of requests in flight.
 */
const UPSTREAM_MAX_PER_CONTAINER = 256;
/** Time allowed for the fds to come back: idle upstream sockets are closed after 4 s, clients at once. */
const FD_SETTLE_MS = 20_000;
const WRK_TIMEOUT = '10s';
const POST_BYTES = 1024;

let manager: ManagerHandle | undefined;
let boxes: SessionContainer[] = [];
let dir: string | undefined;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'load-test-'));
  // Both settle before anything throws, so that afterAll finds whatever did start.
  const [started, containers] = await Promise.allSettled([
    startManager().then((m) => {
      manager = m;
      return m;
    }),
    Promise.all(Array.from({ length: CONTAINERS }, () => startSessionContainer({ ports: [3000] }))),
  ]);
  if (started.status === 'rejected') throw started.reason;
  if (containers.status === 'rejected') throw containers.reason;
  boxes = containers.value;
  for (const box of boxes) await registerPreview(started.value.url, box.sessionId);
});

afterAll(async () => {
  await manager?.stop();
  await removeCreatedContainers();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** What wrk requests, in this order, round-robin: every kind on every session, sessions interleaved. */
function requestMix(sessions: readonly string[]): { method: 'GET' | 'POST'; path: string }[] {
  const kinds: { method: 'GET' | 'POST'; path: string }[] = [
    { method: 'GET', path: '/__fixture/respond?body=hello-load' },
    { method: 'GET', path: '/load/echo?q=1' },
    { method: 'POST', path: '/load/upload' },
    { method: 'GET', path: '/__fixture/bytes/4096' },
  ];
  return kinds.flatMap((kind) =>
    sessions.map((id) => ({ method: kind.method, path: `/previews/${id}${kind.path}` })),
  );
}

/** A wrk script: the request mix round-robin, every response's status counted and printed at the end. */
function wrkScript(mix: { method: string; path: string }[]): string {
  const entries = mix.map((r) => `  { "${r.method}", "${r.path}" },`).join('\n');
  return `-- Generated by tests/load/test/load.int.test.ts.
local mix = {
${entries}
}
local body = string.rep("x", ${POST_BYTES})
local post_headers = { ["Content-Type"] = "application/octet-stream" }
local n = 0
-- Global: read from each thread by done().
statuses = {}

function request()
  n = n + 1
  local r = mix[(n % #mix) + 1]
  if r[1] == "POST" then
    return wrk.format("POST", r[2], post_headers, body)
  end
  return wrk.format("GET", r[2])
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      total[status] = (total[status] or 0) + count
    end
  end
  local parts = {}
  for status, count in pairs(total) do
    table.insert(parts, status .. "=" .. count)
  end
  table.sort(parts)
  io.write("statuses: " .. table.concat(parts, " ") .. "\\n")
end
`;
}

/** Responses with a status outside 200-299, from the script's count. */
function non2xx(result: WrkResult): number {
  return Object.entries(result.statuses)
    .filter(([status]) => !/^2\d\d$/.test(status))
    .reduce((sum, [, count]) => sum + count, 0);
}

function socketErrors(result: WrkResult): number {
  const { connect, read, write, timeout } = result.errors;
  return connect + read + write + timeout;
}

interface Sample extends ProcSample {
  /** Seconds since the measured run started. */
  t: number;
}

describe('load through /previews/:sessionId/*', () => {
  it(`${CONNECTIONS} keep-alive connections for ${LOAD_SECONDS} s: no errors, flat RSS, fds back to baseline`, {
    timeout: (LOAD_SECONDS + 120) * 1000,
  }, async () => {
    if (!manager || !dir) throw new Error('beforeAll did not finish');
    const pid = manager.pid;
    const base = manager.url;
    const sessions = boxes.map((box) => box.sessionId);
    const mix = requestMix(sessions);

    // Every request of the mix answers 200 once, on a connection of its own (closed after it).
    for (const r of mix) {
      const reply = await httpRequest(base, r.path, {
        method: r.method,
        agent: false,
        ...(r.method === 'POST' ? { body: Buffer.alloc(POST_BYTES, 120) } : {}),
      });
      expect(reply.status, `${r.method} ${r.path}`).toBe(200);
    }
    const script = join(dir, 'mix.lua');
    writeFileSync(script, wrkScript(mix));
    const wrkArgs = (seconds: number) => [
      '-t1',
      `-c${CONNECTIONS}`,
      `-d${seconds}s`,
      '--latency',
      '--timeout',
      WRK_TIMEOUT,
      '-s',
      script,
      base,
    ];

    // Baseline: once the upstream keep-alive sockets of those checks have idled out (4 s).
    await sleep(6000);
    const baseline = procSample(pid);
    const timeWaitBefore = boxes.map((box) => timeWaitTowards(box.ip ?? '', 3000));

    const warmup = await runWrk(wrkArgs(WARMUP_SECONDS), WARMUP_SECONDS);

    const samples: Sample[] = [];
    const started = performance.now();
    const take = () => {
      try {
        samples.push({ t: (performance.now() - started) / 1000, ...procSample(pid) });
      } catch {
        // The process is gone: asserted below.
      }
    };
    take();
    const sampler = setInterval(take, 1000);
    let load: WrkResult;
    try {
      load = await runWrk(wrkArgs(LOAD_SECONDS), LOAD_SECONDS);
    } finally {
      clearInterval(sampler);
    }
    take();
    const timeWaitAfter = boxes.map((box) => timeWaitTowards(box.ip ?? '', 3000));
    const loadEnd = samples.at(-1);

    // The fds once the load has stopped: wrk's connections close at once, idle upstream ones after 4 s.
    let settled = loadEnd;
    const settleDeadline = performance.now() + FD_SETTLE_MS;
    while (manager.alive() && performance.now() < settleDeadline) {
      await sleep(500);
      settled = { t: (performance.now() - started) / 1000, ...procSample(pid) };
      if (settled.fds <= baseline.fds + FD_SLACK) break;
    }

    // Still alive and answering, on every session.
    const aliveAfter = manager.alive();
    const answers = aliveAfter
      ? await Promise.all(
          [`/previews/${sessions[0]}/after`, ...sessions.map((id) => `/previews/${id}/__fixture/ready`)].map(
            (path) => httpRequest(base, path, { agent: false }).then((reply) => reply.status),
          ),
        )
      : [];
    const health = aliveAfter
      ? await httpRequest(base, '/healthz', { agent: false }).then((reply) => reply.status)
      : 0;

    const measured = samples.filter((s) => s.t <= LOAD_SECONDS + 1);
    const first = median(measured.filter((s) => s.t < WINDOW_SECONDS).map((s) => s.rss));
    const last = median(measured.filter((s) => s.t >= LOAD_SECONDS - WINDOW_SECONDS).map((s) => s.rss));
    const growth = last - first;
    const peak = Math.max(...measured.map((s) => s.rss));
    const peakFds = Math.max(...measured.map((s) => s.fds));
    const peakSockets = Math.max(...measured.map((s) => s.sockets));
    const gapBetweenWindows = LOAD_SECONDS - WINDOW_SECONDS;
    const requestsBetween = load.requestsPerSecond * gapBetweenWindows;
    const leakFor1KiB = requestsBetween * 1024;
    const rssBound = Math.max(RSS_GROWTH_BOUND, requestsBetween * LEAK_PER_REQUEST_BOUND);

    console.log(
      `load: ${CONNECTIONS} keep-alive connections, ${LOAD_SECONDS} s, ${CONTAINERS} containers, wrk -t1:` +
        ` ${Math.round(load.requestsPerSecond)} req/s (${load.requests} requests), p50 ${load.latencyMs.p50} ms,` +
        ` p99 ${load.latencyMs.p99} ms, max ${load.latencyMs.max} ms; RSS ${mib(first)} -> ${mib(last)} MiB` +
        ` (medians of the first/last ${WINDOW_SECONDS} s, peak ${mib(peak)}, ${mib(baseline.rss)} before warm-up);` +
        ` fds ${baseline.fds} before -> peak ${peakFds} (${peakSockets} sockets) -> ${settled?.fds} after;` +
        ` errors: socket ${socketErrors(load)}, non-2xx ${non2xx(load)}`,
    );
    console.log(
      `  warm-up ${WARMUP_SECONDS} s: ${Math.round(warmup.requestsPerSecond)} req/s, statuses` +
        ` ${JSON.stringify(warmup.statuses)}, socket errors ${socketErrors(warmup)};` +
        ` run statuses ${JSON.stringify(load.statuses)}; RSS growth ${mib(growth)} MiB` +
        ` (bound ${mib(rssBound)}; a 1 KiB/request leak would add ${mib(leakFor1KiB)} MiB;` +
        ` this growth allows at most ${Math.max(0, Math.round(growth / requestsBetween))} B/request);` +
        ` fds/sockets at the end of the load ${loadEnd?.fds}/${loadEnd?.sockets}, settled` +
        ` ${settled?.fds}/${settled?.sockets} (baseline ${baseline.fds}/${baseline.sockets});` +
        ` upstream TIME_WAIT ${timeWaitBefore.join('+')} -> ${timeWaitAfter.join('+')}`,
    );
    const every5s = measured.filter((_, i) => i % 5 === 0);
    console.log(
      `  every 5 s: RSS MiB ${every5s.map((s) => mib(s.rss)).join(' ')}; sockets ${every5s.map((s) => s.sockets).join(' ')}`,
    );
    if (leakFor1KiB <= rssBound)
      console.log(
        `  NOTE: at ${Math.round(load.requestsPerSecond)} req/s a 1 KiB/request leak stays under the RSS bound:` +
          ' this run could not have caught it',
      );

    // Errors: none of any kind, in the warm-up either.
    expect(socketErrors(warmup), `warm-up socket errors:\n${warmup.output}`).toBe(0);
    expect(non2xx(warmup), `warm-up statuses ${JSON.stringify(warmup.statuses)}`).toBe(0);
    expect(load.errors, load.output).toEqual({ connect: 0, read: 0, write: 0, timeout: 0, non2xx: 0 });
    expect(non2xx(load), `statuses ${JSON.stringify(load.statuses)}`).toBe(0);
    // Every response was counted by the script (wrk counts a request once its response is complete).
    expect(Object.values(load.statuses).reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(load.requests);

    // Alive and answering.
    expect(aliveAfter, manager.output().slice(-4000)).toBe(true);
    expect(
      answers.every((status) => status === 200),
      `statuses after the load: ${answers}`,
    ).toBe(true);
    expect(health).toBe(200);

    // A sample a second, or close: the windows hold enough of them for a median.
    expect(measured.filter((s) => s.t < WINDOW_SECONDS).length).toBeGreaterThanOrEqual(10);
    expect(measured.filter((s) => s.t >= LOAD_SECONDS - WINDOW_SECONDS).length).toBeGreaterThanOrEqual(10);
    expect(growth, `RSS grew ${mib(growth)} MiB after the warm-up`).toBeLessThanOrEqual(rssBound);

    // Bounded sockets during the load: the clients plus the upstream pool's limit (and a few transient ones:
    // the Docker API's).
    const socketBound = baseline.sockets + CONNECTIONS + UPSTREAM_MAX_PER_CONTAINER * CONTAINERS + 8;
    expect(peakSockets).toBeLessThanOrEqual(socketBound);
    // And back near the baseline once it stops.
    expect(settled?.fds, `fds ${baseline.fds} before the load`).toBeLessThanOrEqual(baseline.fds + FD_SLACK);
  });
});
