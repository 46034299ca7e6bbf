// edge-proxy on several processes (WORKERS): one port, every worker serving, one scrape of the merged
// metrics, a worker that dies replaced, and a graceful stop of all of them. Real Redis, a real container, the
// edge started as deployed (its main), with no Docker socket.
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  type AppProcess,
  httpRequest,
  parsePrometheusText,
  type RedisServerHandle,
  removeCreatedContainers,
  type SessionContainer,
  startAppProcess,
  startRedisServer,
  startSessionContainer,
} from '@sandbox/test-fixtures';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const KEY = 'edge-workers-key-5d1e';
let redis: RedisServerHandle;
let manager: AppProcess;
let edge: AppProcess;
let box: SessionContainer;

const appDir = (name: string) => fileURLToPath(new URL(`../../${name}/`, import.meta.url));
const send = (baseUrl: string, path: string) => httpRequest(baseUrl, path, { agent: false });

/** The pids of the processes that wrote access lines for `path` so far. */
function accessPids(path: string): Set<number> {
  const pids = new Set<number>();
  for (const line of edge.output().split('\n')) {
    if (!line.includes('"msg":"access"') || !line.includes(path)) continue;
    const pid = /"pid":(\d+)/.exec(line)?.[1];
    if (pid !== undefined) pids.add(Number(pid));
  }
  return pids;
}

/** The pids of the primary's children (its workers). */
function workerPids(): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .filter((name) => {
      try {
        const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === edge.pid;
      } catch {
        return false;
      }
    })
    .map(Number);
}

beforeAll(async () => {
  redis = await startRedisServer();
  manager = await startAppProcess({
    appDir: appDir('container-manager'),
    env: { REDIS_URL: redis.url, INTERNAL_SERVICE_KEY: KEY },
  });
  edge = await startAppProcess({
    appDir: appDir('edge-proxy'),
    env: { REDIS_URL: redis.url, METRICS_PORT: '0', WORKERS: '2' },
    hideDockerSocket: true,
  });
  box = await startSessionContainer({ ports: [3000] });
  const registered = await httpRequest(manager.url, `/api/internal/sessions/${box.sessionId}/previews`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-internal-service-key': KEY },
    body: JSON.stringify({ port: 3000 }),
  });
  expect(registered.status).toBe(201);
});

afterAll(async () => {
  await Promise.all([manager?.stop(), edge?.stop()]);
  await redis?.stop();
  await removeCreatedContainers();
});

async function untilServed(path: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const reply = await send(edge.url, path);
    if (reply.status === 200) return;
    if (Date.now() > deadline) throw new Error(`${path}: still ${reply.status} ${reply.body.toString()}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('WORKERS=2', () => {
  it('serves one port from both workers, and one scrape counts the requests of both', async () => {
    await untilServed(`/previews/${box.sessionId}/warm`);
    expect(workerPids()).toHaveLength(2);
    const path = `/previews/${box.sessionId}/spread`;
    const before = parsePrometheusText(await (await fetch(edge.metricsUrl() ?? '')).text());
    const counted = (samples: Map<string, number>) =>
      [...samples]
        .filter(
          ([key]) => key.startsWith('preview_http_requests_total{') && key.includes('route="/previews"'),
        )
        .reduce((sum, [, value]) => sum + value, 0);
    const REQUESTS = 200;
    for (let i = 0; i < REQUESTS; i += 1) expect((await send(edge.url, path)).status).toBe(200);
    // Each connection goes to the next worker: both wrote access lines.
    const deadline = Date.now() + 5000;
    while (accessPids(path).size < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const served = accessPids(path);
    expect([...served].sort()).toEqual(workerPids().sort());
    const after = parsePrometheusText(await (await fetch(edge.metricsUrl() ?? '')).text());
    expect(counted(after) - counted(before)).toBe(REQUESTS);
    // Health on the public port, from whichever worker answers.
    for (let i = 0; i < 4; i += 1) expect((await send(edge.url, '/readyz')).status).toBe(200);
  });

  it('replaces a worker that dies, and keeps serving meanwhile', async () => {
    const [victim, survivor] = workerPids();
    if (victim === undefined || survivor === undefined) throw new Error('two workers expected');
    process.kill(victim, 'SIGKILL');
    const path = `/previews/${box.sessionId}/after-a-death`;
    // The primary may hand the connection that arrives as the worker dies to that worker, before it hears of
    // the death: that one client waits out its own timeout. Every other request is served.
    const outcomes: Array<number | 'lost'> = [];
    for (let i = 0; i < 20; i += 1) {
      const timeout = new Promise<'lost'>((resolve) => setTimeout(() => resolve('lost'), 3000).unref());
      outcomes.push(await Promise.race([send(edge.url, path).then((reply) => reply.status), timeout]));
    }
    expect(
      outcomes.filter((outcome) => outcome === 'lost').length,
      JSON.stringify(outcomes),
    ).toBeLessThanOrEqual(1);
    expect(outcomes.filter((outcome) => outcome !== 'lost' && outcome !== 200)).toEqual([]);
    const deadline = Date.now() + 15_000;
    let pids = workerPids();
    while ((pids.length < 2 || pids.includes(victim)) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      pids = workerPids();
    }
    expect(pids).toHaveLength(2);
    expect(pids).toContain(survivor);
    expect(pids).not.toContain(victim);
    expect(edge.output()).toContain('a worker exited; starting another');
    await untilServed(`/previews/${box.sessionId}/replaced`);
  });

  it('stops every worker gracefully on SIGTERM, exiting 0', async () => {
    const pids = workerPids();
    expect(pids).toHaveLength(2);
    const exited = new Promise<number | null>((resolve) => edge.child.once('exit', (code) => resolve(code)));
    edge.child.kill('SIGTERM');
    expect(await exited).toBe(0);
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
    expect(edge.output()).toContain('SIGTERM received: draining 2 workers');
  });
});
