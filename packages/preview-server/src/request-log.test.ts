import type { AccessRecord } from '@sandbox/preview-routes';
import { describe, expect, it, vi } from 'vitest';
import {
  combineRecorders,
  createRequestLog,
  REQUEST_LOG_MAX_PATH,
  type RequestLogEntry,
} from './request-log.js';

let ids = 0;
// Fields to set; one given as undefined is left out (a record without a port, say).
type Fields = { [K in keyof AccessRecord]?: AccessRecord[K] | undefined };
function access(fields: Fields = {}): AccessRecord {
  const record: Record<string, unknown> = {
    requestId: `req-${++ids}`,
    kind: 'http',
    route: '/previews',
    sessionId: 'abc',
    port: 3000,
    method: 'GET',
    path: '/previews/abc/',
    status: 200,
    bytesIn: 0,
    bytesOut: 120,
    durationMs: 1.5,
    aborted: false,
    ...fields,
  };
  for (const [key, value] of Object.entries(record)) if (value === undefined) delete record[key];
  return record as unknown as AccessRecord;
}

const paths = (entries: RequestLogEntry[]) => entries.map((entry) => entry.path);

describe('createRequestLog', () => {
  it('keeps a session’s records in order, as entries with a seq and the time they ended', () => {
    const log = createRequestLog({ now: () => Date.UTC(2026, 11, 5, 12, 0, 0) });
    log.record(access({ path: '/previews/abc/one' }));
    log.record(
      access({
        path: '/previews/abc/ws',
        kind: 'websocket',
        status: 101,
        closeCode: 1000,
        upstreamConnectMs: 2,
      }),
    );
    log.record(access({ path: '/previews/abc/gone', status: 502, error: 'UPSTREAM_CONNECT_FAILED' }));
    const entries = log.entries('abc');
    expect(entries.map((entry) => entry.seq)).toEqual([1, 2, 3]);
    expect(entries[0]).toEqual({
      seq: 1,
      time: '2026-12-05T12:00:00.000Z',
      kind: 'http',
      requestId: expect.stringMatching(/^req-/),
      route: '/previews',
      port: 3000,
      method: 'GET',
      path: '/previews/abc/one',
      status: 200,
      durationMs: 1.5,
      bytesIn: 0,
      bytesOut: 120,
      aborted: false,
    });
    expect(entries[1]).toMatchObject({
      kind: 'websocket',
      status: 101,
      closeCode: 1000,
      upstreamConnectMs: 2,
    });
    expect(entries[2]).toMatchObject({ status: 502, error: 'UPSTREAM_CONNECT_FAILED' });
    // The session is the log's own: not repeated in each entry.
    expect(entries[0]).not.toHaveProperty('sessionId');
  });

  it('keeps the last perSession entries of each session, and reads after a seq', () => {
    const log = createRequestLog({ perSession: 3 });
    for (let i = 1; i <= 7; i++) log.record(access({ path: `/p${i}` }));
    log.record(access({ sessionId: 'other', path: '/o1' }));
    expect(paths(log.entries('abc'))).toEqual(['/p5', '/p6', '/p7']);
    expect(log.entries('abc').map((entry) => entry.seq)).toEqual([5, 6, 7]);
    expect(paths(log.entries('abc', 5))).toEqual(['/p6', '/p7']);
    expect(paths(log.entries('abc', 2))).toEqual(['/p5', '/p6', '/p7']);
    expect(paths(log.entries('abc', 7))).toEqual([]);
    // A seq from before a restart (past the last one) reads everything kept.
    expect(paths(log.entries('abc', 900))).toEqual(['/p5', '/p6', '/p7']);
    expect(paths(log.entries('other'))).toEqual(['/o1']);
    expect(log.entries('nobody')).toEqual([]);
  });

  it('keeps nothing of records without a session, and makes no log for one that reached no port', () => {
    const log = createRequestLog();
    const { sessionId: _none, ...internal } = access({ path: '/api/internal/sessions' });
    log.record(internal);
    log.record(
      access({ sessionId: 'made-up', status: 404, error: 'PREVIEW_NOT_REGISTERED', port: undefined }),
    );
    expect(log.entries('made-up')).toEqual([]);
    // Once the session has a log (a registration opens it), its errors are kept too.
    log.open('made-up');
    log.record(
      access({ sessionId: 'made-up', status: 404, error: 'PREVIEW_NOT_REGISTERED', port: undefined }),
    );
    expect(log.entries('made-up')).toMatchObject([{ seq: 1, error: 'PREVIEW_NOT_REGISTERED' }]);
  });

  it('keeps at most maxSessions logs, dropping the least recently written that nobody follows', () => {
    const log = createRequestLog({ maxSessions: 2 });
    log.record(access({ sessionId: 'a' }));
    log.record(access({ sessionId: 'b' }));
    log.record(access({ sessionId: 'a' })); // a is now the most recent
    log.record(access({ sessionId: 'c' })); // b goes
    expect(log.entries('a')).toHaveLength(2);
    expect(log.entries('b')).toEqual([]);
    expect(log.entries('c')).toHaveLength(1);
    const stop = log.follow('a', { entry() {}, end() {} });
    log.record(access({ sessionId: 'c' }));
    log.record(access({ sessionId: 'd' })); // a is the oldest but followed: c goes
    expect(log.entries('a')).toHaveLength(2);
    expect(log.entries('c')).toEqual([]);
    stop();
    log.record(access({ sessionId: 'e' })); // a is no longer followed
    expect(log.entries('a')).toEqual([]);
  });

  it('tells followers of each new entry until they stop, and ends them on close', () => {
    const log = createRequestLog();
    const seen: string[] = [];
    const ended = vi.fn();
    const stop = log.follow('abc', { entry: (entry) => seen.push(entry.path), end: ended });
    const other = { entry: vi.fn(), end: vi.fn() };
    log.follow('abc', other);
    // Following opens the log: even a request that reached no port is kept now.
    log.record(access({ path: '/first', port: undefined, status: 404, error: 'PREVIEW_NOT_REGISTERED' }));
    log.record(access({ path: '/second' }));
    log.record(access({ sessionId: 'zzz', path: '/elsewhere' }));
    stop();
    log.record(access({ path: '/third' }));
    expect(seen).toEqual(['/first', '/second']);
    expect(other.entry).toHaveBeenCalledTimes(3);
    log.close();
    expect(ended).not.toHaveBeenCalled();
    expect(other.end).toHaveBeenCalledOnce();
    // Records are still kept after close.
    log.record(access({ path: '/fourth' }));
    expect(paths(log.entries('abc'))).toEqual(['/first', '/second', '/third', '/fourth']);
  });

  it('lets a follower that throws not reach the request, nor the other followers', () => {
    const log = createRequestLog();
    const good = vi.fn();
    log.follow('abc', {
      entry() {
        throw new Error('gone');
      },
      end() {},
    });
    log.follow('abc', { entry: good, end() {} });
    expect(() => log.record(access())).not.toThrow();
    expect(good).toHaveBeenCalledOnce();
  });

  it('cuts a path longer than REQUEST_LOG_MAX_PATH', () => {
    const log = createRequestLog();
    log.record(access({ path: `/previews/abc/${'x'.repeat(20_000)}` }));
    const [entry] = log.entries('abc');
    expect(entry?.path).toHaveLength(REQUEST_LOG_MAX_PATH + 1);
    expect(entry?.path.endsWith('x…')).toBe(true);
  });

  it('moves the busiest log back to the end after another is opened', () => {
    const log = createRequestLog({ maxSessions: 2 });
    log.record(access({ sessionId: 'busy' }));
    log.open('quiet');
    log.record(access({ sessionId: 'busy' }));
    log.open('new'); // quiet, written least recently, goes: not busy
    expect(log.entries('busy')).toHaveLength(2);
    log.record(access({ sessionId: 'busy' }));
    expect(log.entries('busy').map((entry) => entry.seq)).toEqual([1, 2, 3]);
  });

  it('refuses bounds that are not positive integers', () => {
    expect(() => createRequestLog({ perSession: 0 })).toThrow(/perSession/);
    expect(() => createRequestLog({ maxSessions: 1.5 })).toThrow(/maxSessions/);
  });
});

describe('combineRecorders', () => {
  it('calls each recorder given, in order, and is undefined without any', () => {
    expect(combineRecorders(undefined, undefined)).toBeUndefined();
    const one = vi.fn();
    expect(combineRecorders(undefined, one)).toBe(one);
    const calls: string[] = [];
    const both = combineRecorders(
      () => calls.push('a'),
      undefined,
      () => calls.push('b'),
    );
    both?.(access());
    expect(calls).toEqual(['a', 'b']);
  });
});
