// Benchmark helper (not a test), run by http.ts in a process of its own with --expose-gc:
//
//   node --expose-gc --import tsx registry-scale.ts [sessions]
//
// Measures the in-memory preview registry at scale, as container-manager uses it (an awaited async call
// per lookup): the memory one registration costs (heap and RSS growth over `sessions` registrations, after
// a full GC, session id strings included), and the time of a lookup cycling over 1,000 hot sessions
// against always the same session, with every session registered. Prints one line of JSON on stdout.
//
// Registering 10,000 sessions through the real service is not possible here: registration requires a
// running container per session, and 10,000 containers is more than this machine holds.
import { createInMemoryRegistry } from '@sandbox/preview-registry';

const SESSIONS = Math.max(1000, Math.floor(Number(process.argv[2] ?? 10_000)));
const HOT = 1000;
const LOOKUPS_PER_ROUND = 1_000_000;
const ROUNDS = 5;

const collect = globalThis.gc;
if (typeof collect !== 'function') throw new Error('run with node --expose-gc');

function settle(): void {
  // Several passes: the first leaves work (weak references, finalizers) for the next.
  for (let pass = 0; pass < 4; pass++) collect?.();
}

/** A uuid-shaped session id, 36 characters, derived from i (so the lookups can rebuild it). */
function sessionId(i: number): string {
  const hex = i.toString(16).padStart(12, '0');
  return `7f3c9a1e-4b2d-4e8f-9a6b-${hex}`;
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
};

async function main() {
  const registry = createInMemoryRegistry();

  settle();
  const heapBefore = process.memoryUsage().heapUsed;
  const rssBefore = process.memoryUsage().rss;
  const started = performance.now();
  for (let i = 0; i < SESSIONS; i++) await registry.register(sessionId(i), 3000 + (i % 1000));
  const registerMs = performance.now() - started;
  settle();
  const heapAfter = process.memoryUsage().heapUsed;
  const rssAfter = process.memoryUsage().rss;

  // Keys for the lookups: new string objects (as a request's path gives), equal to registered ids.
  // The single-session array holds the same object 1,000 times, so both loops index an array alike.
  const hot = Array.from({ length: HOT }, (_, i) => sessionId(Math.floor((i * SESSIONS) / HOT)));
  const one = sessionId(SESSIONS >> 1);
  const single = Array.from({ length: HOT }, () => one);

  async function lookups(keys: string[]): Promise<number> {
    let found = 0;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < LOOKUPS_PER_ROUND; i++) {
      const port = await registry.lookup(keys[i % HOT] as string);
      if (port !== undefined) found += 1;
    }
    const ns = Number(process.hrtime.bigint() - t0) / LOOKUPS_PER_ROUND;
    if (found !== LOOKUPS_PER_ROUND) throw new Error(`only ${found} of ${LOOKUPS_PER_ROUND} lookups found`);
    return ns;
  }

  // Warm-up (JIT), then alternating rounds.
  await lookups(hot);
  await lookups(single);
  const hotNs: number[] = [];
  const singleNs: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    singleNs.push(await lookups(single));
    hotNs.push(await lookups(hot));
  }
  const ratios = hotNs.map((ns, i) => ns / (singleNs[i] ?? ns));

  const result = {
    sessions: SESSIONS,
    registerMs: Math.round(registerMs * 10) / 10,
    heapBytesPerRegistration: Math.round((heapAfter - heapBefore) / SESSIONS),
    rssBytesPerRegistration: Math.round((rssAfter - rssBefore) / SESSIONS),
    heapUsedMiB: Math.round((heapAfter / 1024 / 1024) * 10) / 10,
    lookup: {
      lookupsPerRound: LOOKUPS_PER_ROUND,
      rounds: ROUNDS,
      hotSessions: HOT,
      nsHotMedian: Math.round(median(hotNs) * 10) / 10,
      nsSingleMedian: Math.round(median(singleNs) * 10) / 10,
      nsHotRounds: hotNs.map((ns) => Math.round(ns * 10) / 10),
      nsSingleRounds: singleNs.map((ns) => Math.round(ns * 10) / 10),
      /** Median of per-round ratios (hot / single): 1 means the number of hot sessions costs nothing. */
      ratioHotOverSingle: Math.round(median(ratios) * 100) / 100,
    },
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
