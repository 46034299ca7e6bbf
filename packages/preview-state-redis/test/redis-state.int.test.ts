import type { SharedPreviewState, SharedStateConnection } from '@sandbox/preview-registry';
import { type RedisServerHandle, startRedisServer } from '@sandbox/test-fixtures';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createRedisPreviewState, ReadOnlyRegistryError } from '../src/index.js';

// Each test has its own key prefix, so tests sharing a server cannot see each other's keys.
let prefixCounter = 0;
const nextPrefix = () => `test-${process.pid}-${++prefixCounter}:`;

const opened: SharedPreviewState[] = [];

interface Logged {
  messages: string[];
  log: (message: string, details?: Record<string, unknown>) => void;
}
function logger(): Logged {
  const messages: string[] = [];
  return { messages, log: (message) => messages.push(message) };
}

function writer(url: string, keyPrefix: string, logged = logger()) {
  const state = createRedisPreviewState({ url, role: 'writer', keyPrefix, log: logged.log });
  opened.push(state);
  return state;
}

function reader(url: string, keyPrefix: string, logged = logger()) {
  const state = createRedisPreviewState({ url, role: 'reader', keyPrefix, log: logged.log });
  opened.push(state);
  return state;
}

/** Polls until `check` passes (it throws otherwise); resolves with the time it took. */
async function eventually(check: () => unknown, timeoutMs: number, intervalMs = 2): Promise<number> {
  const start = performance.now();
  for (;;) {
    try {
      await check();
      return performance.now() - start;
    } catch (error) {
      if (performance.now() - start > timeoutMs) throw error;
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  }
}

function connections(state: SharedPreviewState): SharedStateConnection[] {
  const seen: SharedStateConnection[] = [];
  state.subscribe({ connection: (connection) => seen.push(connection) });
  return seen;
}

afterEach(async () => {
  await Promise.all(opened.splice(0).map((state) => state.close()));
});

describe('createRedisPreviewState with a live Redis', () => {
  let server: RedisServerHandle;
  let admin: Redis;

  beforeAll(async () => {
    server = await startRedisServer();
    admin = new Redis(server.url);
  });
  afterAll(async () => {
    await admin?.quit();
    await server?.stop();
  });

  it('shows a writer registration to two readers within 100 ms, from their replicas', async () => {
    const prefix = nextPrefix();
    const manager = writer(server.url, prefix);
    const edges = [reader(server.url, prefix), reader(server.url, prefix)];
    await Promise.all([manager.ready(), ...edges.map((edge) => edge.ready())]);
    expect(edges.map((edge) => edge.connection())).toEqual(['synced', 'synced']);

    await manager.registry.register('s1', 3000);
    const elapsed = await eventually(async () => {
      for (const edge of edges) expect(await edge.registry.lookup('s1')).toBe(3000);
    }, 1000);
    expect(elapsed).toBeLessThan(100);
  });

  it('mirrors multi-port registrations: the last port active, removal falling back', async () => {
    const prefix = nextPrefix();
    const manager = writer(server.url, prefix);
    const edge = reader(server.url, prefix);
    await Promise.all([manager.ready(), edge.ready()]);

    await manager.registry.register('s1', 3000);
    await manager.registry.register('s1', 4000);
    expect(await manager.registry.lookup('s1')).toBe(4000);
    await eventually(async () => expect(await edge.registry.ports('s1')).toEqual([3000, 4000]), 2000);
    expect(await edge.registry.lookup('s1')).toBe(4000);

    expect(edge.registry.peek?.('s1')).toBe(4000);
    expect(manager.registry.peek?.('s1')).toBe(4000);

    expect(await manager.registry.unregisterPort('s1', 4000)).toBe(true);
    expect(await manager.registry.lookup('s1')).toBe(3000);
    expect(manager.registry.peek?.('s1')).toBe(3000);
    await eventually(async () => expect(await edge.registry.lookup('s1')).toBe(3000), 2000);
    expect(await edge.registry.ports('s1')).toEqual([3000]);
    expect(edge.registry.peek?.('s1')).toBe(3000);

    expect(await manager.registry.unregister('s1')).toBe(true);
    await eventually(async () => expect(await edge.registry.ports('s1')).toEqual([]), 2000);
    expect(await edge.registry.lookup('s1')).toBeUndefined();
  });

  it('mirrors stripPrefix: false per port, replaced by the next registration of the port', async () => {
    const prefix = nextPrefix();
    const manager = writer(server.url, prefix);
    const edge = reader(server.url, prefix);
    await Promise.all([manager.ready(), edge.ready()]);

    await manager.registry.register('s1', 3000, { stripPrefix: false });
    await manager.registry.register('s1', 4000);
    expect(manager.registry.keepsPrefix('s1', 3000)).toBe(true);
    await eventually(async () => expect(await edge.registry.ports('s1')).toEqual([3000, 4000]), 2000);
    expect([edge.registry.keepsPrefix('s1', 3000), edge.registry.keepsPrefix('s1', 4000)]).toEqual([
      true,
      false,
    ]);
    // Self-describing in Redis: the exception spelled out, the default a bare number.
    expect(JSON.parse((await admin.hget(`${prefix}registrations`, 's1')) ?? 'null')).toMatchObject({
      value: [{ port: 3000, stripPrefix: false }, 4000],
    });

    // The active port, as the path routes ask for it, from the session's view.
    await manager.registry.register('s1', 3000, { stripPrefix: false });
    await eventually(() => expect(edge.registry.peek?.('s1')).toBe(3000), 2000);
    expect(edge.registry.keepsPrefix('s1', 3000)).toBe(true);
    await manager.registry.register('s1', 3000);
    await eventually(() => expect(edge.registry.keepsPrefix('s1', 3000)).toBe(false), 2000);

    // A reader that connects later takes it from the snapshot.
    await manager.registry.register('s2', 5000, { stripPrefix: false });
    const late = reader(server.url, prefix);
    await late.ready();
    expect(late.registry.keepsPrefix('s2', 5000)).toBe(true);
    expect(late.registry.keepsPrefix('s2', 6000)).toBe(false);
  });

  it('propagates container and engine states, and their deletion', async () => {
    const prefix = nextPrefix();
    const manager = writer(server.url, prefix);
    const edge = reader(server.url, prefix);
    await Promise.all([manager.ready(), edge.ready()]);
    expect(edge.engineState()).toBeUndefined();

    const running = { state: 'running', ip: '172.18.0.5', network: 'preview', containerId: 'c1' } as const;
    manager.publishContainerState('s1', running);
    manager.publishContainerState('s2', {
      state: 'missing',
      reason: 'No such container: sandbox-session-s2',
    });
    manager.publishEngineState({ connected: false, reason: 'connect ENOENT /var/run/docker.sock' });
    expect(manager.containerState('s1')).toEqual(running);
    await eventually(() => {
      expect(edge.containerState('s1')).toEqual(running);
      expect(edge.containerState('s2')).toEqual({
        state: 'missing',
        reason: 'No such container: sandbox-session-s2',
      });
      expect(edge.engineState()).toEqual({ connected: false, reason: 'connect ENOENT /var/run/docker.sock' });
    }, 2000);
    expect(edge.containerSessions().sort()).toEqual(['s1', 's2']);

    manager.publishContainerState('s1', { state: 'not-running' });
    manager.publishContainerState('s2', undefined);
    manager.publishEngineState({ connected: true });
    await eventually(() => {
      expect(edge.containerState('s1')).toEqual({ state: 'not-running' });
      expect(edge.containerState('s2')).toBeUndefined();
      expect(edge.engineState()).toEqual({ connected: true });
    }, 2000);
    expect(edge.containerSessions()).toEqual(['s1']);
    expect(manager.containerSessions()).toEqual(['s1']);
  });

  it('gives a reader that connects after the writes everything, by snapshot', async () => {
    const prefix = nextPrefix();
    const manager = writer(server.url, prefix);
    await manager.ready();
    await manager.registry.register('s1', 3000);
    await manager.registry.register('s1', 3001);
    await manager.registry.register('s2', 4000);
    await manager.registry.register('gone', 5000);
    await manager.registry.unregister('gone');
    manager.publishContainerState('s1', { state: 'no-ip' });
    manager.publishEngineState({ connected: true });
    // The writes are mirrored without waiting; let them land before the late reader's snapshot.
    await eventually(async () => expect(await admin.hlen(`${prefix}containers`)).toBe(1), 2000);

    const late = reader(server.url, prefix);
    await late.ready();
    expect(await late.registry.ports('s1')).toEqual([3000, 3001]);
    expect(await late.registry.lookup('s2')).toBe(4000);
    expect(await late.registry.lookup('gone')).toBeUndefined();
    expect(late.containerState('s1')).toEqual({ state: 'no-ip' });
    expect(late.engineState()).toEqual({ connected: true });
  });

  it("refuses writes on a reader's registry", async () => {
    const edge = reader(server.url, nextPrefix());
    await edge.ready();
    await expect(edge.registry.register('s1', 3000)).rejects.toThrow(ReadOnlyRegistryError);
    await expect(edge.registry.unregisterPort('s1', 3000)).rejects.toThrow(
      'read-only: this process is an edge; register previews on the container-manager',
    );
    await expect(edge.registry.unregister('s1')).rejects.toThrow(ReadOnlyRegistryError);
  });

  it('ignores, with a log, entries and messages it did not write', async () => {
    const prefix = nextPrefix();
    await admin.hset(`${prefix}registrations`, 'junk', 'not json', 'bad', '{"seq":1,"value":["x"]}');
    await admin.set(`${prefix}engine`, '{"connected":true}');
    const logged = logger();
    const edge = reader(server.url, prefix, logged);
    // Synced before any writer exists, so that its snapshot holds the junk.
    await edge.ready();
    const manager = writer(server.url, prefix);
    await manager.ready();
    expect(await edge.registry.lookup('junk')).toBeUndefined();
    expect(edge.engineState()).toBeUndefined();

    await admin.publish(`${prefix}changes`, 'hello');
    await admin.publish(`${prefix}changes`, '{"kind":"registration","id":"x","seq":999999,"value":"3000"}');
    await manager.registry.register('s1', 3000);
    await eventually(async () => expect(await edge.registry.lookup('s1')).toBe(3000), 2000);
    expect(await edge.registry.lookup('x')).toBeUndefined();
    expect(logged.messages).toContain('redis: ignored a malformed entry');
    expect(logged.messages).toContain('redis: ignored a malformed message');
    // The writer's first push cleared what it does not own.
    expect(await admin.hkeys(`${prefix}registrations`)).toEqual(['s1']);
  });

  it('lets a new writer (a manager restart) adopt what the previous one left, except what it changed', async () => {
    const prefix = nextPrefix();
    const first = writer(server.url, prefix);
    const edge = reader(server.url, prefix);
    await Promise.all([first.ready(), edge.ready()]);
    await first.registry.register('kept', 3000);
    await first.registry.register('kept', 3001);
    await first.registry.register('dropped', 4000);
    first.publishContainerState('kept', { state: 'no-ip' });
    await eventually(async () => expect(await edge.registry.lookup('dropped')).toBe(4000), 2000);
    await first.close();

    const second = writer(server.url, prefix);
    // Before its first sync: this run removes a session the last one left.
    await second.registry.unregister('dropped');
    await second.registry.register('fresh', 5000);
    await second.ready();
    expect(await second.registry.ports('kept')).toEqual([3000, 3001]);
    expect(second.containerState('kept')).toEqual({ state: 'no-ip' });
    expect(await second.registry.lookup('dropped')).toBeUndefined();
    await eventually(async () => {
      expect(await edge.registry.lookup('dropped')).toBeUndefined();
      expect(await edge.registry.lookup('fresh')).toBe(5000);
    }, 2000);
    expect(await edge.registry.ports('kept')).toEqual([3000, 3001]);
  });

  it('leaves no connection or timer behind after close()', async () => {
    const clientsBefore = String(await admin.client('LIST'))
      .trim()
      .split('\n').length;
    const handlesBefore = process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap').length;
    const prefix = nextPrefix();
    const states = [writer(server.url, prefix), reader(server.url, prefix), reader(server.url, prefix)];
    await Promise.all(states.map((state) => state.ready()));
    await Promise.all(states.map((state) => state.close()));
    // A state closed before it ever synced (nothing listens on port 1) must let go too.
    const never = writer('redis://127.0.0.1:1/0', prefix);
    const readyOutcome = never.ready().then(
      () => 'resolved',
      () => 'rejected',
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    await never.close();
    expect(await readyOutcome).toBe('rejected');
    await eventually(
      async () => {
        expect(
          String(await admin.client('LIST'))
            .trim()
            .split('\n').length,
        ).toBe(clientsBefore);
        expect(process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap').length).toBeLessThanOrEqual(
          handlesBefore,
        );
      },
      2000,
      20,
    );
  });
});

describe('createRedisPreviewState across a Redis outage', () => {
  let server: RedisServerHandle;

  beforeAll(async () => {
    server = await startRedisServer();
  });
  // A test that fails while Redis is stopped must not leave the next one without it.
  beforeEach(async () => {
    await server.start();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('serves from the cache while Redis is down, and converges when it comes back empty', async () => {
    const prefix = nextPrefix();
    const readerLog = logger();
    const manager = writer(server.url, prefix);
    const edges = [reader(server.url, prefix, readerLog), reader(server.url, prefix)];
    await Promise.all([manager.ready(), ...edges.map((edge) => edge.ready())]);
    const seen = edges.map(connections);
    await manager.registry.register('stays', 3000);
    await manager.registry.register('removed-while-down', 4000);
    manager.publishContainerState('stays', { state: 'running', ip: '10.0.0.2', network: 'n' });
    manager.publishEngineState({ connected: true });
    await eventually(async () => {
      for (const edge of edges) expect(await edge.registry.lookup('removed-while-down')).toBe(4000);
    }, 2000);

    await server.stop();
    await eventually(() => {
      for (const edge of edges) expect(edge.connection()).toBe('disconnected');
    }, 2000);
    // A reader may resync once more after ready() (the writer's first full push announces itself): only
    // the losses count here.
    expect(seen.map((states) => states.filter((state) => state !== 'synced'))).toEqual([
      ['disconnected'],
      ['disconnected'],
    ]);
    expect(readerLog.messages).toContain(
      'redis: connection lost; serving 2 known sessions from the local cache',
    );
    for (const edge of edges) {
      expect(await edge.registry.lookup('stays')).toBe(3000);
      expect(edge.containerState('stays')).toEqual({ state: 'running', ip: '10.0.0.2', network: 'n' });
    }

    // The writer keeps accepting writes without Redis, and does not make its callers wait.
    const started = performance.now();
    await manager.registry.register('added-while-down', 5000);
    await manager.registry.unregister('removed-while-down');
    manager.publishContainerState('added-while-down', { state: 'no-ip' });
    expect(performance.now() - started).toBeLessThan(50);
    expect(await manager.registry.lookup('added-while-down')).toBe(5000);

    await server.start();
    await eventually(
      async () => {
        for (const edge of edges) {
          expect(edge.connection()).toBe('synced');
          expect(await edge.registry.lookup('added-while-down')).toBe(5000);
          expect(await edge.registry.lookup('removed-while-down')).toBeUndefined();
          expect(await edge.registry.lookup('stays')).toBe(3000);
          expect(edge.containerState('added-while-down')).toEqual({ state: 'no-ip' });
          expect(edge.containerState('stays')).toEqual({ state: 'running', ip: '10.0.0.2', network: 'n' });
          expect(edge.engineState()).toEqual({ connected: true });
        }
      },
      5000,
      20,
    );
    expect(manager.connection()).toBe('synced');
    for (const connectionsSeen of seen) expect(connectionsSeen.at(-1)).toBe('synced');

    // And the link works as before.
    await manager.registry.register('after', 6000);
    await eventually(async () => {
      for (const edge of edges) expect(await edge.registry.lookup('after')).toBe(6000);
    }, 2000);
  });

  it('keeps serving its cache from an emptied store until a writer re-publishes', async () => {
    const prefix = nextPrefix();
    const first = writer(server.url, prefix);
    const readerLog = logger();
    const edge = reader(server.url, prefix, readerLog);
    await Promise.all([first.ready(), edge.ready()]);
    for (let port = 3000; port < 3010; port += 1) await first.registry.register('old', port);
    await first.registry.register('stale', 4000);
    await eventually(async () => expect(await edge.registry.lookup('old')).toBe(3009), 2000);
    // The manager goes away, then Redis restarts empty: nobody will refill it for now.
    await first.close();
    await server.restart();
    await eventually(() => {
      expect(readerLog.messages.some((message) => message.startsWith('redis: the store was emptied'))).toBe(
        true,
      );
    }, 5000);
    expect(edge.connection()).toBe('disconnected');
    expect(await edge.registry.lookup('old')).toBe(3009);
    expect(await edge.registry.lookup('stale')).toBe(4000);

    // A new manager publishes what it knows; its seqs start again below what the reader has seen.
    const second = writer(server.url, prefix);
    await second.registry.register('old', 3000);
    await second.registry.register('new', 5000);
    await second.ready();
    await eventually(
      async () => {
        expect(edge.connection()).toBe('synced');
        expect(await edge.registry.ports('old')).toEqual([3000]);
        expect(await edge.registry.lookup('new')).toBe(5000);
        expect(await edge.registry.lookup('stale')).toBeUndefined();
      },
      5000,
      20,
    );
    // Later changes, at seqs below the old ones, still apply.
    await second.registry.unregister('new');
    await eventually(async () => expect(await edge.registry.lookup('new')).toBeUndefined(), 2000);
  });

  it('lets a writer start while Redis is down and pushes what it took once Redis is up', async () => {
    const prefix = nextPrefix();
    await server.kill();
    const manager = writer(server.url, prefix);
    await manager.registry.register('early', 3000);
    expect(manager.connection()).toBe('connecting');
    await server.start();
    await manager.ready();
    const edge = reader(server.url, prefix);
    await edge.ready();
    expect(await edge.registry.lookup('early')).toBe(3000);
  });
});
