import { describe, expect, it } from 'vitest';
import type { LogEntry, Session } from './client.js';
import { logLine, sessionTable, table } from './format.js';

const entry = (fields: Partial<LogEntry> = {}): LogEntry => ({
  seq: 1,
  time: '2026-12-05T13:35:50.123Z',
  kind: 'http',
  requestId: 'r1',
  method: 'GET',
  path: '/previews/abc/',
  status: 200,
  durationMs: 1.25,
  bytesIn: 0,
  bytesOut: 2048,
  aborted: false,
  ...fields,
});

describe('logLine', () => {
  it('puts an entry on one line: time, status, method and path, duration, bytes', () => {
    expect(logLine(entry())).toBe('13:35:50.123  200  GET /previews/abc/  1.25 ms  2.0 KiB');
    expect(logLine(entry({ bytesOut: 10 }))).toMatch(/ {2}10 B$/);
    expect(logLine(entry({ bytesOut: 3 * 1024 * 1024 }))).toMatch(/ {2}3\.0 MiB$/);
  });

  it('adds what an exchange had beyond a status: a close code, an error code, an abort', () => {
    expect(logLine(entry({ kind: 'websocket', status: 101, closeCode: 1000 }))).toBe(
      '13:35:50.123  101  WS GET /previews/abc/  1.25 ms  2.0 KiB  close 1000',
    );
    expect(logLine(entry({ status: 502, error: 'UPSTREAM_CONNECT_FAILED' }))).toMatch(
      / {2}502 {2}.* {2}UPSTREAM_CONNECT_FAILED$/,
    );
    expect(logLine(entry({ status: 0, aborted: true }))).toMatch(/ {2}--- {2}.* {2}aborted$/);
  });
});

describe('sessionTable', () => {
  it('aligns the columns, marks ports not answering yet, and shows the first URL', () => {
    const session = (id: string, ports: Session['ports']): Session => ({
      sessionId: id,
      containerName: `sandbox-session-${id}`,
      image: 'img:latest',
      state: 'running',
      running: true,
      createdAt: '2026-12-05T00:00:00Z',
      exitCode: null,
      ports,
    });
    const port = (n: number, registered: boolean, path: string | null) => ({
      port: n,
      stripPrefix: true,
      visibility: 'public' as const,
      registered,
      urls: { path, host: null },
    });
    expect(
      sessionTable([
        session('a', [port(3000, true, 'http://localhost:4002/previews/a/'), port(5173, false, null)]),
        session('long-id', []),
      ]),
    ).toBe(
      [
        'SESSION  STATE    IMAGE       PORTS       URL',
        'a        running  img:latest  3000,5173*  http://localhost:4002/previews/a/',
        'long-id  running  img:latest  -           -',
      ].join('\n'),
    );
  });

  it('leaves the last column unpadded', () => {
    expect(
      table([
        ['a', 'b'],
        ['ccc', ''],
      ]),
    ).toBe('a    b\nccc  ');
  });
});
