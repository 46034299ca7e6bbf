// container-manager in a child process, so that its memory is its own: the test process (clients, hashing,
// vitest) never shows up in the figures. The child runs the real entry point, as `pnpm start` does.
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { type AppProcess, startAppProcess } from '@sandbox/test-fixtures';
import { TEST_KEY } from './harness.js';

const APP_DIR = fileURLToPath(new URL('..', import.meta.url));

/** A container-manager running in its own process. */
export interface ManagerProcess extends AppProcess {
  /** Its resident set size now, in bytes (VmRSS). */
  rss(): number;
}

/** VmRSS of a process in bytes, read from /proc/<pid>/status. */
export function readRss(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  if (!match?.[1]) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(match[1]) * 1024;
}

/** Spawns `node --import tsx src/main.ts` on 127.0.0.1, port 0, and waits for its "listening on" line. */
export async function startManagerProcess(env: Record<string, string> = {}): Promise<ManagerProcess> {
  const passThrough: Record<string, string> = {};
  for (const name of ['DOCKER_HOST', 'DOCKER_TLS_VERIFY', 'DOCKER_CERT_PATH']) {
    const value = process.env[name];
    if (value !== undefined) passThrough[name] = value;
  }
  const app = await startAppProcess({
    appDir: APP_DIR,
    env: { ...passThrough, INTERNAL_SERVICE_KEY: TEST_KEY, ...env },
  });
  return { ...app, rss: () => readRss(app.pid) };
}

/** What sampleRss saw between its start and stop(). */
export interface RssSamples {
  /** The first sample, taken when sampling started. */
  baseline: number;
  peak: number;
  /** The sample taken by stop(). */
  last: number;
  count: number;
  /** The longest gap between two samples: shows whether the sampling kept to its interval. */
  maxGapMs: number;
}

// The sampler runs in a worker thread: the test's own thread is busy hashing and generating bodies, and a
// timer there can lag by hundreds of ms, missing the peak. Plain JavaScript, evaluated, so no loader is needed.
const SAMPLER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { readFileSync } = require('node:fs');
const read = () => {
  const match = /^VmRSS:\\s+(\\d+)\\s+kB$/m.exec(readFileSync('/proc/' + workerData.pid + '/status', 'utf8'));
  if (!match) throw new Error('no VmRSS for pid ' + workerData.pid);
  return Number(match[1]) * 1024;
};
const baseline = read();
let peak = baseline, last = baseline, count = 1, maxGapMs = 0, previousAt = performance.now();
const take = () => {
  const now = performance.now();
  maxGapMs = Math.max(maxGapMs, now - previousAt);
  previousAt = now;
  last = read();
  peak = Math.max(peak, last);
  count += 1;
};
const timer = setInterval(take, workerData.intervalMs);
parentPort.postMessage({ started: true });
parentPort.on('message', () => {
  clearInterval(timer);
  take();
  parentPort.postMessage({ baseline, peak, last, count, maxGapMs });
  parentPort.close();
});
`;

/**
 * Samples a process's VmRSS every intervalMs, from a worker thread, until stop(); the baseline is the
 * first sample, taken before this resolves.
 */
export async function sampleRss(pid: number, intervalMs = 100): Promise<{ stop(): Promise<RssSamples> }> {
  const worker = new Worker(SAMPLER_SOURCE, { eval: true, workerData: { pid, intervalMs } });
  const failed = once(worker, 'error').then(([error]) => {
    throw error;
  });
  failed.catch(() => {});
  await Promise.race([once(worker, 'message'), failed]);
  return {
    async stop() {
      worker.postMessage('stop');
      const [samples] = (await Promise.race([once(worker, 'message'), failed])) as [RssSamples];
      await worker.terminate();
      return samples;
    },
  };
}

/** Bytes as MiB with one decimal, for the figures printed by the tests. */
export function mib(bytes: number): string {
  return (bytes / (1024 * 1024)).toFixed(1);
}
