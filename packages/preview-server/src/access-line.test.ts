import { hostname } from 'node:os';
import type { AccessRecord } from '@sandbox/preview-routes';
import fc from 'fast-check';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { accessFields, accessLine, loggerBindings } from './access-line.js';

// What pino writes for the same record, the reference the hand-built line must equal as JSON.
function pinoLine(record: AccessRecord, name: string): string {
  let line = '';
  const logger = pino(
    { name },
    {
      write(chunk: string) {
        line = chunk;
      },
    },
  );
  logger.info(record, 'access');
  return line;
}

const text = fc.oneof(
  fc.string(),
  fc.string({ unit: 'grapheme' }),
  fc.string({ unit: 'binary' }),
  fc.constantFrom('', '"', '\\', '\u0000', '\u2028', 'a"b\\c\n', '\ud800', '/previews/a b/%22'),
);
const number = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.constantFrom(0, -0, 0.001, 1e21, 1.5e-7, Number.MAX_SAFE_INTEGER),
);
const optional = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });

const records: fc.Arbitrary<AccessRecord> = fc
  .record({
    requestId: text,
    kind: fc.constantFrom('http', 'websocket') as fc.Arbitrary<AccessRecord['kind']>,
    route: optional(text),
    sessionId: optional(text),
    port: optional(number),
    method: text,
    path: text,
    status: number,
    bytesIn: number,
    bytesOut: number,
    upstreamConnectMs: optional(number),
    durationMs: number,
    closeCode: optional(number),
    aborted: fc.boolean(),
    error: optional(text),
  })
  .map((record) => {
    // An absent field is absent, as the tracer builds records (not present with the value undefined).
    const copy: Record<string, unknown> = { ...record };
    for (const key of Object.keys(copy)) if (copy[key] === undefined) delete copy[key];
    return copy as unknown as AccessRecord;
  });

describe('accessLine', () => {
  it('is the JSON pino writes for the same record, base fields, level and message included', () => {
    const bindings = loggerBindings({ pid: process.pid, hostname: hostname(), name: 'svc' });
    fc.assert(
      fc.property(records, fc.nat(), (record, time) => {
        const line = accessLine(record, time, bindings);
        expect(line.endsWith('}\n')).toBe(true);
        expect(line.indexOf('\n')).toBe(line.length - 1);
        const ours = JSON.parse(line) as Record<string, unknown>;
        const theirs = JSON.parse(pinoLine(record, 'svc')) as Record<string, unknown>;
        expect(ours.time).toBe(time);
        expect({ ...ours, time: 0 }).toEqual({ ...theirs, time: 0 });
      }),
      { numRuns: 2000 },
    );
  });

  it('writes the fields in a fixed order, the optional ones only when present', () => {
    const base: AccessRecord = {
      requestId: 'r1',
      kind: 'http',
      method: 'GET',
      path: '/p',
      status: 200,
      bytesIn: 0,
      bytesOut: 5,
      durationMs: 1.25,
      aborted: false,
    };
    expect(accessFields(base)).toBe(
      '"requestId":"r1","kind":"http","method":"GET","path":"/p","status":200,"bytesIn":0,"bytesOut":5,' +
        '"durationMs":1.25,"aborted":false',
    );
    expect(
      accessFields({
        ...base,
        route: '/previews',
        sessionId: 's',
        port: 3000,
        upstreamConnectMs: 0.5,
        closeCode: 1000,
        error: 'UPSTREAM_CONNECT_FAILED',
      }),
    ).toBe(
      '"requestId":"r1","kind":"http","route":"/previews","sessionId":"s","port":3000,"method":"GET","path":"/p",' +
        '"status":200,"bytesIn":0,"bytesOut":5,"upstreamConnectMs":0.5,"durationMs":1.25,"closeCode":1000,' +
        '"aborted":false,"error":"UPSTREAM_CONNECT_FAILED"',
    );
  });
});
