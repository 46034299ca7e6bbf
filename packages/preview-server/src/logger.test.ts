import { PassThrough } from 'node:stream';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { createServiceLogger, logAccess } from './logger.js';

function capture() {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (chunk: Buffer) => {
    text += chunk.toString();
  });
  return { stream, text: () => text };
}

describe('createServiceLogger', () => {
  it('redacts credentials wherever a request or response object puts them', async () => {
    const out = capture();
    const logger = createServiceLogger({ name: 't', destination: out.stream });
    logger.info(
      { req: { headers: { cookie: 'c=SEKRET1', authorization: 'Bearer SEKRET2', host: 'h' } } },
      'a',
    );
    logger.info({ headers: { 'x-internal-service-key': 'SEKRET3', 'set-cookie': ['s=SEKRET4'] } }, 'b');
    logger.info({ res: { headers: { 'set-cookie': 's=SEKRET5' } } }, 'c');
    await new Promise((resolve) => setImmediate(resolve));
    for (const secret of ['SEKRET1', 'SEKRET2', 'SEKRET3', 'SEKRET4', 'SEKRET5'])
      expect(out.text()).not.toContain(secret);
    expect(out.text()).toContain('[redacted]');
    expect(out.text()).toContain('"host":"h"');
  });

  it('writes an access record as one JSON line with its fields at the top level', async () => {
    const out = capture();
    logAccess(createServiceLogger({ name: 't', destination: out.stream }))({
      requestId: 'r1',
      kind: 'http',
      method: 'GET',
      path: '/previews/a/',
      status: 200,
      bytesIn: 0,
      bytesOut: 10,
      durationMs: 1.5,
      aborted: false,
    });
    await new Promise((resolve) => setImmediate(resolve));
    expect(JSON.parse(out.text())).toMatchObject({ name: 't', msg: 'access', requestId: 'r1', status: 200 });
  });
});

describe('logAccess', () => {
  const record = {
    requestId: 'r2',
    kind: 'http' as const,
    route: '/previews',
    sessionId: 's1',
    port: 3000,
    method: 'GET',
    path: '/previews/s1/"quoted"\\',
    status: 502,
    bytesIn: 0,
    bytesOut: 120,
    durationMs: 0.125,
    aborted: false,
    error: 'UPSTREAM_CONNECT_FAILED',
  };

  it("writes, for the service logger, the line pino itself would write, after the turn's earlier lines", async () => {
    const out = capture();
    const logger = createServiceLogger({ name: 'svc', destination: out.stream });
    logger.info({ n: 1 }, 'before');
    logAccess(logger)(record);
    logger.info(record, 'access');
    await new Promise((resolve) => setImmediate(resolve));
    const [before, fast, slow, extra] = out.text().split('\n');
    expect(extra).toBe('');
    expect(JSON.parse(before ?? '')).toMatchObject({ msg: 'before', n: 1 });
    const { time: fastTime, ...fastLine } = JSON.parse(fast ?? '');
    const { time: slowTime, ...slowLine } = JSON.parse(slow ?? '');
    expect(fastLine).toEqual(slowLine);
    expect(fastLine).toMatchObject({ level: 30, name: 'svc', pid: process.pid, msg: 'access', ...record });
    expect(Math.abs(fastTime - slowTime)).toBeLessThan(1000);
  });

  it('follows the level, also when it changes at run time', async () => {
    const out = capture();
    const logger = createServiceLogger({ name: 'svc', level: 'warn', destination: out.stream });
    const write = logAccess(logger);
    write(record);
    await new Promise((resolve) => setImmediate(resolve));
    expect(out.text()).toBe('');
    logger.level = 'debug';
    write(record);
    await new Promise((resolve) => setImmediate(resolve));
    expect(JSON.parse(out.text())).toMatchObject({ msg: 'access', requestId: 'r2' });
  });

  it('goes through pino for a logger it did not make (a child keeps its bindings)', async () => {
    const out = capture();
    const child = createServiceLogger({ name: 'svc', destination: out.stream }).child({ worker: 2 });
    logAccess(child)(record);
    await new Promise((resolve) => setImmediate(resolve));
    expect(JSON.parse(out.text())).toMatchObject({ msg: 'access', worker: 2, requestId: 'r2' });
  });

  it('goes through pino for a stream that routes by level (pino.multistream)', async () => {
    const info = capture();
    const errors = capture();
    const logger = createServiceLogger({
      name: 'svc',
      destination: pino.multistream([
        { level: 'info', stream: info.stream },
        { level: 'error', stream: errors.stream },
      ]),
    });
    logAccess(logger)(record);
    logger.error('boom');
    logAccess(logger)(record);
    await new Promise((resolve) => setImmediate(resolve));
    const infoLines = info
      .text()
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { msg: string });
    expect(infoLines.map((line) => line.msg)).toEqual(['access', 'boom', 'access']);
    expect(
      errors
        .text()
        .trim()
        .split('\n')
        .map((line) => (JSON.parse(line) as { msg: string }).msg),
    ).toEqual(['boom']);
  });
});

describe('createServiceLogger, pretty', () => {
  it('writes to a destination that is not a stream (a line destination, say)', async () => {
    const lines: string[] = [];
    const logger = createServiceLogger({
      name: 'svc',
      format: 'pretty',
      destination: {
        write(chunk: string) {
          lines.push(chunk);
        },
      },
    });
    logger.info('hello there');
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines.join('')).toContain('hello there');
  });
});
