// Streaming through the proxy, measured against a real container with container-manager in its own
// process (its memory is then its own):
// - timing: an SSE stream and a chunked drip, fetched at the same moment directly from the container and
//   through the proxy; each piece must arrive through the proxy less than 50 ms after it arrived directly,
//   i.e. within 50 ms of the container writing it (no buffering), with no compression added;
// - memory: 1 GiB down and 100 MiB up, hashed as they flow (never held by the test), while the proxy's
//   VmRSS is sampled every 100 ms from a worker thread; it must grow by less than 64 MiB.
// Figures are printed with console.info.
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { type IncomingHttpHeaders, type IncomingMessage, request } from 'node:http';
import { pipeline } from 'node:stream/promises';
import {
  removeCreatedContainers,
  type SessionContainer,
  startSessionContainer,
} from '@sandbox/test-fixtures';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generatedBody, register } from './harness.js';
import { type ManagerProcess, mib, sampleRss, startManagerProcess } from './manager-process.js';

const ROUTES = ['/previews', '/internal-previews/proxy'] as const;
const COUNT = 20;
const INTERVAL_MS = 100;
const MAX_LAG_MS = 50;
const DOWN_BYTES = 1024 * 1024 * 1024;
const UP_BYTES = 100 * 1024 * 1024;
const MAX_RSS_GROWTH = 64 * 1024 * 1024;
// What a browser sends: a proxy that compressed on its own would answer this with a Content-Encoding.
const ACCEPT_ENCODING = 'gzip, deflate, br, zstd';

let manager: ManagerProcess;
let box: SessionContainer;

beforeAll(async () => {
  [manager, box] = await Promise.all([startManagerProcess(), startSessionContainer({ ports: [3000] })]);
  expect((await register(manager.url, box.sessionId, { port: 3000 })).status).toBe(201);
});

afterAll(async () => {
  await manager?.stop();
  await removeCreatedContainers();
});

const proxied = (route: string, path: string) => `${manager.url}${route}/${box.sessionId}${path}`;
const direct = (path: string) => `${box.url()}${path}`;

function responseOf(url: string, init: { method?: string; headers?: Record<string, string> } = {}) {
  // agent: false: a connection of its own, so no pooled socket or queue skews the timings.
  const req = request(url, { agent: false, method: init.method ?? 'GET', headers: init.headers ?? {} });
  const response = once(req, 'response') as Promise<[IncomingMessage]>;
  return { req, response: response.then(([res]) => res) };
}

interface TimedPiece {
  text: string;
  /** ms from the request's start to the arrival of the chunk that completed this piece. */
  at: number;
}

interface TimedStream {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  pieces: TimedPiece[];
}

/** GETs a stream and timestamps each piece (text up to `separator`) as it arrives. */
async function timedStream(url: string, separator: string): Promise<TimedStream> {
  const started = performance.now();
  const { req, response } = responseOf(url, { headers: { 'accept-encoding': ACCEPT_ENCODING } });
  req.end();
  const res = await response;
  const pieces: TimedPiece[] = [];
  let body = '';
  let pending = '';
  res.setEncoding('latin1');
  res.on('data', (chunk: string) => {
    const at = performance.now() - started;
    body += chunk;
    pending += chunk;
    for (let end = pending.indexOf(separator); end !== -1; end = pending.indexOf(separator)) {
      pieces.push({ text: pending.slice(0, end), at });
      pending = pending.slice(end + separator.length);
    }
  });
  await once(res, 'end');
  return { status: res.statusCode ?? 0, headers: res.headers, body, pieces };
}

interface Comparison {
  viaDirect: TimedStream;
  viaProxy: TimedStream;
  /** Per piece: arrival through the proxy minus arrival direct (same index, both requests sent together). */
  lags: number[];
  maxLag: number;
}

/**
 * Both at once, so the container writes the two streams on the same schedule (its timers, its stalls).
 * `proxied arrival - direct arrival` of piece i is an upper bound of how long the proxy held it: it also
 * counts the extra time the proxied request took to reach the container, which delays only the proxied
 * schedule.
 */
async function directAndProxied(route: string, path: string, separator: string): Promise<Comparison> {
  const [viaDirect, viaProxy] = await Promise.all([
    timedStream(direct(path), separator),
    timedStream(proxied(route, path), separator),
  ]);
  const lags = viaProxy.pieces.map((piece, i) => piece.at - (viaDirect.pieces[i]?.at ?? Number.NaN));
  return { viaDirect, viaProxy, lags, maxLag: Math.max(...lags) };
}

const ms = (value: number) => `${value.toFixed(1)} ms`;

/**
 * Measures up to `attempts` times and keeps the best: a proxy that buffers fails every attempt, while a
 * machine busy with other work (the whole suite runs in parallel on few CPUs) spoils only some. Every
 * attempt is printed, so a noisy machine shows in the output.
 */
async function bestOf(label: string, route: string, path: string, separator: string, attempts = 3) {
  let best: Comparison | undefined;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const result = await directAndProxied(route, path, separator);
    const { viaDirect, viaProxy, lags, maxLag } = result;
    // Aligned on piece 0 (the container writes it with the headers): leaves out the request's own trip.
    const p0 = viaProxy.pieces[0]?.at ?? 0;
    const d0 = viaDirect.pieces[0]?.at ?? 0;
    const aligned = viaProxy.pieces.map((piece, i) => piece.at - p0 - ((viaDirect.pieces[i]?.at ?? 0) - d0));
    // The container's own schedule as seen directly: piece i at i * interval after piece 0.
    const drift = viaDirect.pieces.map((piece, i) => Math.abs(piece.at - d0 - i * INTERVAL_MS));
    const mean = lags.reduce((a, b) => a + b, 0) / lags.length;
    console.info(
      `[${label} ${route}] attempt ${attempt}: ${viaProxy.pieces.length} pieces; proxied minus direct arrival` +
        ` max ${ms(maxLag)}, mean ${ms(mean)}, min ${ms(Math.min(...lags))}; aligned on piece 0:` +
        ` max ${ms(Math.max(...aligned.map(Math.abs)))}; direct stream vs i*${INTERVAL_MS} ms: max deviation` +
        ` ${ms(Math.max(...drift))}`,
    );
    if (best === undefined || maxLag < best.maxLag) best = result;
    if (maxLag < MAX_LAG_MS) break;
  }
  if (best === undefined) throw new Error('no attempt');
  return best;
}

describe.each(ROUTES)('streaming through %s/:sessionId/*', (route) => {
  it(`delivers each SSE event within ${MAX_LAG_MS} ms of the container writing it, uncompressed`, async () => {
    const path = `/__fixture/sse?count=${COUNT}&interval=${INTERVAL_MS}`;
    const { viaDirect, viaProxy, maxLag } = await bestOf('sse', route, path, '\n\n');

    expect(viaProxy.status).toBe(200);
    expect(viaProxy.headers['content-type']).toBe('text/event-stream');
    expect(viaProxy.headers['content-encoding']).toBeUndefined();
    expect(viaProxy.headers['content-length']).toBeUndefined();
    expect(viaProxy.headers['cache-control']).toBe('no-cache');
    expect(viaProxy.headers['x-fixture']).toBe('sse');
    expect(viaDirect.headers['content-encoding']).toBeUndefined();
    expect(viaProxy.body).toBe(viaDirect.body);
    expect(viaProxy.pieces.map((piece) => piece.text)).toEqual(
      Array.from({ length: COUNT }, (_, i) => `data: ${i}`),
    );
    expect(viaDirect.pieces).toHaveLength(COUNT);
    expect(maxLag).toBeLessThan(MAX_LAG_MS);
  });

  it(`delivers each chunk of a chunked response within ${MAX_LAG_MS} ms of the container writing it`, async () => {
    const path = `/__fixture/drip?chunks=${COUNT}&interval=${INTERVAL_MS}`;
    const { viaDirect, viaProxy, maxLag } = await bestOf('drip', route, path, '\n');

    expect(viaProxy.status).toBe(200);
    expect(viaProxy.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(viaProxy.headers['content-encoding']).toBeUndefined();
    expect(viaProxy.headers['transfer-encoding']).toBe('chunked');
    expect(viaProxy.body).toBe(viaDirect.body);
    expect(viaProxy.pieces.map((piece) => piece.text)).toEqual(
      Array.from({ length: COUNT }, (_, i) => `chunk ${i}`),
    );
    expect(viaDirect.pieces).toHaveLength(COUNT);
    expect(maxLag).toBeLessThan(MAX_LAG_MS);
  });
});

/** Reads a response to its end, hashing as it goes; nothing is kept. */
async function hashResponse(res: IncomingMessage) {
  const hash = createHash('sha256');
  let bytes = 0;
  let firstByteAt: number | undefined;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    firstByteAt ??= performance.now();
    hash.update(chunk);
    bytes += chunk.length;
  }
  return {
    bytes,
    sha256: hash.digest('hex'),
    firstByteAt: firstByteAt ?? performance.now(),
    complete: res.complete,
  };
}

/** A body generated as it is read (64 KiB chunks, each one different), hashed as it goes. */
const mbPerSecond = (bytes: number, ms: number) => (bytes / 1e6 / (ms / 1000)).toFixed(0);

describe('large bodies through the proxy, with its memory sampled', () => {
  // Each prefix takes one framing of the response and of the upload, so both framings and prefixes are covered.
  const cases = [
    { route: ROUTES[0], chunked: true },
    { route: ROUTES[1], chunked: false },
  ];

  it.each(cases)(
    `streams 1 GiB down through $route (chunked: $chunked) with the proxy's RSS growing < 64 MiB`,
    async ({ route, chunked }) => {
      const query = chunked ? '?chunked=1' : '';
      // A 64 MiB transfer first, so the baseline leaves out one-off costs (lookup, upstream connection, the
      // allocator's first high-water mark under a stream): what is measured is whether memory grows with
      // the body, 16 times larger than the warm-up.
      const WARM_BYTES = 64 * 1024 * 1024;
      const { req: warmReq, response: warm } = responseOf(
        proxied(route, `/__fixture/bytes/${WARM_BYTES}${query}`),
      );
      warmReq.end();
      expect((await hashResponse(await warm)).bytes).toBe(WARM_BYTES);

      const sampler = await sampleRss(manager.pid);
      const started = performance.now();
      const { req, response } = responseOf(proxied(route, `/__fixture/bytes/${DOWN_BYTES}${query}`), {
        headers: { 'accept-encoding': ACCEPT_ENCODING },
      });
      req.end();
      const res = await response;
      const result = await hashResponse(res);
      const ended = performance.now();
      const rss = await sampler.stop();

      const growth = rss.peak - rss.baseline;
      console.info(
        `[down ${route}${chunked ? ' chunked' : ' content-length'}] ${mib(result.bytes)} MiB in ` +
          `${((ended - result.firstByteAt) / 1000).toFixed(2)} s: ${mbPerSecond(result.bytes, ended - result.firstByteAt)} MB/s` +
          ` (first byte after ${((result.firstByteAt - started) / 1000).toFixed(2)} s: the fixture hashes first);` +
          ` proxy RSS baseline ${mib(rss.baseline)} MiB, peak ${mib(rss.peak)} MiB (+${mib(growth)} MiB),` +
          ` ${rss.count} samples, max gap ${rss.maxGapMs.toFixed(0)} ms`,
      );

      expect(res.statusCode).toBe(200);
      expect(res.headers['content-encoding']).toBeUndefined();
      if (chunked) expect(res.headers['transfer-encoding']).toBe('chunked');
      else expect(res.headers['content-length']).toBe(String(DOWN_BYTES));
      expect(result.complete).toBe(true);
      expect(result.bytes).toBe(DOWN_BYTES);
      expect(res.headers['x-fixture-sha256']).toMatch(/^[0-9a-f]{64}$/);
      expect(result.sha256).toBe(res.headers['x-fixture-sha256']);
      expect(growth).toBeLessThan(MAX_RSS_GROWTH);
    },
    180_000,
  );

  it.each(cases)(
    `streams 100 MiB up through $route (chunked: $chunked) with the proxy's RSS growing < 64 MiB`,
    async ({ route, chunked }) => {
      const body = generatedBody(UP_BYTES);
      const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
      if (!chunked) headers['content-length'] = String(UP_BYTES);

      const sampler = await sampleRss(manager.pid);
      const started = performance.now();
      const { req, response } = responseOf(proxied(route, '/upload?big=1'), { method: 'POST', headers });
      const [, res] = await Promise.all([pipeline(body.stream, req), response]);
      const chunks: Buffer[] = [];
      for await (const chunk of res as AsyncIterable<Buffer>) chunks.push(chunk);
      const ended = performance.now();
      const rss = await sampler.stop();

      const echo = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
        method: string;
        url: string;
        headers: Record<string, string>;
        bodyLength: number;
        bodySha256: string;
      };
      const growth = rss.peak - rss.baseline;
      console.info(
        `[up ${route}${chunked ? ' chunked' : ' content-length'}] ${mib(echo.bodyLength)} MiB in ` +
          `${((ended - started) / 1000).toFixed(2)} s: ${mbPerSecond(echo.bodyLength, ended - started)} MB/s;` +
          ` proxy RSS baseline ${mib(rss.baseline)} MiB, peak ${mib(rss.peak)} MiB (+${mib(growth)} MiB),` +
          ` ${rss.count} samples, max gap ${rss.maxGapMs.toFixed(0)} ms`,
      );

      expect(res.statusCode).toBe(200);
      expect(echo.method).toBe('POST');
      expect(echo.url).toBe('/upload?big=1');
      if (chunked) expect(echo.headers['transfer-encoding']).toBe('chunked');
      else expect(echo.headers['content-length']).toBe(String(UP_BYTES));
      expect(echo.bodyLength).toBe(UP_BYTES);
      expect(echo.bodySha256).toBe(body.digest());
      expect(growth).toBeLessThan(MAX_RSS_GROWTH);
    },
    120_000,
  );
});
