import { readFileSync } from 'node:fs';
import { describe, expect, it, vi } from 'vitest';
import { failure } from '../test/failure.js';
import type { ContainerWatcher, WatcherConnection } from './container-watcher.js';
import { type ContainerInspect, parseContainerInspect } from './parse-inspect.js';
import type { CachedContainer } from './session-cache.js';
import { createWatchingResolver, resolveCachedContainer } from './watching-resolver.js';

function recorded(name: string): ContainerInspect {
  return JSON.parse(readFileSync(new URL(`../test/recorded/${name}.json`, import.meta.url), 'utf8'));
}
const present = (file: string): CachedContainer => ({
  present: true,
  container: parseContainerInspect(recorded(file)),
});

/** dockerode's error for a 404, as observed from dockerd 20.10. */
function notFound(name: string): Error {
  return Object.assign(new Error(`(HTTP code 404) no such container - No such container: ${name} `), {
    reason: 'no such container',
    statusCode: 404,
    json: { message: `No such container: ${name}` },
  });
}
const absent = (sessionId: string): CachedContainer => ({
  present: false,
  cause: notFound(`sandbox-session-${sessionId}`),
});

/** A fake behind the ContainerWatcher interface: a fixed connection, a cache, and a refresh answer. */
function fakeWatcher(
  options: {
    connection?: WatcherConnection;
    cached?: Record<string, CachedContainer>;
    refresh?: (sessionId: string) => Promise<CachedContainer>;
  } = {},
) {
  const { connection = { state: 'connected' }, cached = {} } = options;
  const watcher = {
    start: vi.fn(),
    stop: vi.fn(async () => {}),
    synced: vi.fn(async () => {}),
    subscribe: vi.fn(() => () => {}),
    connection: vi.fn(() => connection),
    lookup: vi.fn((sessionId: string) => cached[sessionId]),
    refresh: vi.fn(options.refresh ?? (async () => Promise.reject(new Error('refresh not expected')))),
  } satisfies ContainerWatcher;
  return watcher;
}

const NOT_RUNNING = 'Container for session s1 is not running';
const NO_IP = 'Container for session s1 has no IP address';

describe('createWatchingResolver: answers from the cache', () => {
  it('a cached running container resolves to its address without asking Docker', async () => {
    const doc = recorded('bridge');
    const watcher = fakeWatcher({ cached: { s1: present('bridge') } });
    await expect(createWatchingResolver(watcher).resolve('s1')).resolves.toEqual({
      ip: doc.NetworkSettings?.Networks?.bridge?.IPAddress,
      network: 'bridge',
      containerId: doc.Id,
      labels: doc.Config?.Labels,
    });
    expect(watcher.lookup).toHaveBeenCalledWith('s1');
    expect(watcher.refresh).not.toHaveBeenCalled();
  });

  it.each<[string, CachedContainer, { code: string; message: string }]>([
    ['exited', present('exited'), { code: 'CONTAINER_NOT_RUNNING', message: NOT_RUNNING }],
    ['paused', present('paused'), { code: 'CONTAINER_NOT_RUNNING', message: NOT_RUNNING }],
    ['restarting', present('restarting'), { code: 'CONTAINER_NOT_RUNNING', message: NOT_RUNNING }],
    ['created', present('created'), { code: 'CONTAINER_NOT_RUNNING', message: NOT_RUNNING }],
    ['--network none', present('network-none'), { code: 'CONTAINER_NO_IP', message: NO_IP }],
    ['--network host', present('network-host'), { code: 'CONTAINER_NO_IP', message: NO_IP }],
    [
      'absent (404)',
      absent('s1'),
      {
        code: 'CONTAINER_LOOKUP_FAILED',
        message: 'Failed to validate container for session s1: No such container: sandbox-session-s1',
      },
    ],
    [
      'absent (destroy event)',
      { present: false, cause: new Error('No such container: sandbox-session-s1') },
      {
        code: 'CONTAINER_LOOKUP_FAILED',
        message: 'Failed to validate container for session s1: No such container: sandbox-session-s1',
      },
    ],
  ])(
    'cached %s -> contract error, confirmed by one inspect a second at most',
    async (_case, entry, expected) => {
      const watcher = fakeWatcher({ cached: { s1: entry }, refresh: async () => entry });
      const resolver = createWatchingResolver(watcher);
      expect(await failure(resolver.resolve('s1'))).toEqual({ ...expected, status: 500 });
      expect(watcher.refresh).toHaveBeenCalledTimes(1);
      // Asked again within the second: the cache answers, Docker is not asked.
      expect(await failure(resolver.resolve('s1'))).toEqual({ ...expected, status: 500 });
      expect(watcher.refresh).toHaveBeenCalledTimes(1);
    },
  );

  it('a container cached as created (its create event) but running by now resolves: docker run, then register', async () => {
    const doc = recorded('bridge');
    const watcher = fakeWatcher({
      cached: { s1: present('created') },
      refresh: async () => present('bridge'),
    });
    await expect(createWatchingResolver(watcher).resolve('s1')).resolves.toMatchObject({
      ip: doc.NetworkSettings?.Networks?.bridge?.IPAddress,
    });
    expect(watcher.refresh).toHaveBeenCalledWith('s1');
  });

  it('a running container marked out of service by an event is not running, though it has an address', async () => {
    const entry = present('bridge');
    if (!entry.present) throw new Error('unreachable');
    const marked: CachedContainer = { present: true, container: { ...entry.container, running: false } };
    const watcher = fakeWatcher({ cached: { s1: marked }, refresh: async () => marked });
    expect(await failure(createWatchingResolver(watcher).resolve('s1'))).toEqual({
      code: 'CONTAINER_NOT_RUNNING',
      message: NOT_RUNNING,
      status: 500,
    });
  });
});

describe('createWatchingResolver: a cache miss', () => {
  it('calls refresh exactly once and answers from its result', async () => {
    const doc = recorded('bridge');
    const watcher = fakeWatcher({ refresh: async () => present('bridge') });
    await expect(createWatchingResolver(watcher).resolve('s1')).resolves.toMatchObject({
      containerId: doc.Id,
      network: 'bridge',
    });
    expect(watcher.refresh).toHaveBeenCalledTimes(1);
    expect(watcher.refresh).toHaveBeenCalledWith('s1');
  });

  it.each<[string, () => Promise<CachedContainer>, { code: string; message: string }]>([
    [
      'absent',
      async () => absent('s1'),
      {
        code: 'CONTAINER_LOOKUP_FAILED',
        message: 'Failed to validate container for session s1: No such container: sandbox-session-s1',
      },
    ],
    ['exited', async () => present('exited'), { code: 'CONTAINER_NOT_RUNNING', message: NOT_RUNNING }],
    ['no IP', async () => present('network-none'), { code: 'CONTAINER_NO_IP', message: NO_IP }],
    [
      'refresh failing (engine down)',
      () => Promise.reject(new Error('connect ECONNREFUSED /var/run/docker.sock')),
      {
        code: 'CONTAINER_LOOKUP_FAILED',
        message: 'Failed to validate container for session s1: connect ECONNREFUSED /var/run/docker.sock',
      },
    ],
    [
      'refresh failing with an unexpected document',
      () => Promise.reject(new Error('Unknown container status "zombie"')),
      {
        code: 'CONTAINER_LOOKUP_FAILED',
        message: 'Failed to validate container for session s1: Unknown container status "zombie"',
      },
    ],
  ])('refresh answering %s -> contract error', async (_case, refresh, expected) => {
    const watcher = fakeWatcher({ refresh });
    expect(await failure(createWatchingResolver(watcher).resolve('s1'))).toEqual({
      ...expected,
      status: 500,
    });
    expect(watcher.refresh).toHaveBeenCalledTimes(1);
  });

  it.each<WatcherConnection>([{ state: 'connecting' }, { state: 'stopped' }])(
    'while $state the cache and refresh are used',
    async (connection) => {
      const watcher = fakeWatcher({ connection, refresh: async () => present('bridge') });
      await expect(createWatchingResolver(watcher).resolve('s1')).resolves.toMatchObject({
        network: 'bridge',
      });
      expect(watcher.refresh).toHaveBeenCalledTimes(1);
    },
  );
});

describe('createWatchingResolver: engine unreachable', () => {
  it.each<[string, unknown, string]>([
    [
      'refused',
      new Error('connect ECONNREFUSED /var/run/docker.sock'),
      'connect ECONNREFUSED /var/run/docker.sock',
    ],
    ['stream ended', new Error('Docker event stream ended'), 'Docker event stream ended'],
    ['not an Error', 'boom', 'boom'],
  ])('disconnected (%s) -> 500 with the reason, without lookup or refresh', async (_case, error, reason) => {
    // Even a cached running container is not trusted while the stream is down.
    const watcher = fakeWatcher({
      connection: { state: 'disconnected', error },
      cached: { s1: present('bridge') },
    });
    expect(await failure(createWatchingResolver(watcher).resolve('s1'))).toEqual({
      code: 'CONTAINER_LOOKUP_FAILED',
      message: `Failed to validate container for session s1: ${reason}`,
      status: 500,
    });
    expect(watcher.lookup).not.toHaveBeenCalled();
    expect(watcher.refresh).not.toHaveBeenCalled();
  });
});

describe('createWatchingResolver: invalid session id', () => {
  it.each(['', '../x', 'a/b', '-abc', 'a b', 'café', 'a'.repeat(129)])(
    '%j -> INVALID_SESSION_ID without any watcher call',
    async (sessionId) => {
      const watcher = fakeWatcher({ connection: { state: 'disconnected', error: new Error('down') } });
      expect(await failure(createWatchingResolver(watcher).resolve(sessionId))).toMatchObject({
        code: 'INVALID_SESSION_ID',
        status: 400,
      });
      expect(watcher.connection).not.toHaveBeenCalled();
      expect(watcher.lookup).not.toHaveBeenCalled();
      expect(watcher.refresh).not.toHaveBeenCalled();
    },
  );
});

describe('resolveCachedContainer', () => {
  it('keeps the cause of an absent entry for the logs', () => {
    const cause = notFound('sandbox-session-s1');
    let thrown: unknown;
    try {
      resolveCachedContainer('s1', { present: false, cause });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toMatchObject({ code: 'CONTAINER_LOOKUP_FAILED', cause });
  });

  it('answers the address of the chosen network', () => {
    const doc = recorded('multi-network');
    const entry: CachedContainer = {
      present: true,
      container: parseContainerInspect(doc, { network: 'crrec-zeta' }),
    };
    expect(resolveCachedContainer('s1', entry)).toEqual({
      ip: doc.NetworkSettings?.Networks?.['crrec-zeta']?.IPAddress,
      network: 'crrec-zeta',
      containerId: doc.Id,
      labels: doc.Config?.Labels,
    });
  });
});

describe('createWatchingResolver: peek', () => {
  it('gives what resolve gives for a cached running container, counted as a hit, with no Docker call', async () => {
    const watcher = fakeWatcher({ cached: { s1: present('bridge') } });
    const lookups: string[] = [];
    const resolver = createWatchingResolver(watcher, (result) => lookups.push(result));
    const peeked = resolver.peek?.('s1');
    expect(peeked).toEqual(await resolver.resolve('s1'));
    expect(lookups).toEqual(['hit', 'hit']);
    expect(watcher.refresh).not.toHaveBeenCalled();
  });

  it('leaves every error and every miss to resolve, uncounted', () => {
    const lookups: string[] = [];
    const cases: [ReturnType<typeof fakeWatcher>, string][] = [
      [fakeWatcher(), 'not cached'],
      [fakeWatcher({ cached: { s1: absent('s1') } }), 'gone'],
      [fakeWatcher({ cached: { s1: present('exited') } }), 'not running'],
      [fakeWatcher({ cached: { s1: present('network-none') } }), 'no address'],
      [
        fakeWatcher({
          cached: { s1: present('bridge') },
          connection: { state: 'disconnected', error: new Error('engine down') },
        }),
        'engine unreachable',
      ],
    ];
    for (const [watcher, label] of cases)
      expect(createWatchingResolver(watcher, (r) => lookups.push(r)).peek?.('s1'), label).toBeUndefined();
    expect(lookups).toEqual([]);
  });
});
