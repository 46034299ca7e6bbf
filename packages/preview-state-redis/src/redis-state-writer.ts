import type {
  EngineState,
  PreviewStatePublisher,
  SessionContainerState,
  SharedPreviewState,
} from '@sandbox/preview-registry';
import {
  accessIn,
  keepsPrefixIn,
  type PreviewRegistry,
  portOf,
  registrationOf,
  type StoredPort,
  storedPort,
  withoutPort,
  withPortRegistered,
  withTokensRevoked,
} from '@sandbox/preview-registry';
import type { EntryKind, EntryValues } from './redis-state-codec.js';
import type { Snapshot } from './redis-state-merge.js';
import { createConnectionStatus } from './redis-state-status.js';
import {
  closeRedisConnection,
  createRedisConnection,
  createStoreCommands,
  type StateLog,
  type StoreKeys,
} from './redis-state-store.js';

/** A push that failed on a live connection (not for want of Redis) is tried again after this. */
const PUSH_RETRY_MS = 1000;

/**
 * The container-manager's state: authoritative and local. Every write changes memory at once and is then
 * mirrored to Redis without waiting; a write Redis misses (it was away) is carried by the full push that
 * follows every reconnect. The first push adopts what an earlier run left in Redis.
 */
export function createRedisWriter(
  url: string,
  keys: StoreKeys,
  log: StateLog,
): SharedPreviewState & PreviewStatePublisher {
  const registrations = new Map<string, StoredPort[]>();
  const containers = new Map<string, SessionContainerState>();
  let engine: EngineState | undefined;
  const status = createConnectionStatus((error) => log('redis: a listener threw', { error }));
  const redis = createRedisConnection(url, 'preview-state-writer');
  const store = createStoreCommands(redis, keys, log);
  let closed = false;
  let generation = 0;
  // Until the first push, what Redis holds from an earlier run is adopted, except for entries written
  // here meanwhile (a deletion included: adopting would bring back what this run removed).
  let adopted = false;
  const touched = new Set<string>();
  let retryTimer: NodeJS.Timeout | undefined;
  let writeFailureLogged = false;
  let unreachableLogged = false;
  // The last connection error, reported with the loss it caused (a refused port, a wrong password...).
  let lastError: unknown;
  const cause = () => (lastError === undefined ? {} : { error: String(lastError) });

  function mirror<K extends EntryKind>(kind: K, id: string, value: EntryValues[K] | undefined) {
    if (!adopted) touched.add(`${kind}\n${id}`);
    if (redis.status !== 'ready') return;
    store.write(kind, id, value).catch((error: unknown) => {
      if (closed) return;
      if (!writeFailureLogged) {
        writeFailureLogged = true;
        log('redis: a write failed; the full state will be pushed again', { kind, id, error: String(error) });
      }
      schedulePush();
    });
  }

  function adopt(snapshot: Snapshot): number {
    let count = 0;
    for (const [id, { value }] of snapshot.tables.registration) {
      if (registrations.has(id) || touched.has(`registration\n${id}`)) continue;
      registrations.set(id, value);
      count += 1;
    }
    for (const [id, { value }] of snapshot.tables.container) {
      if (containers.has(id) || touched.has(`container\n${id}`)) continue;
      containers.set(id, value);
    }
    // The engine state is not adopted: it describes the earlier run's link, and this run publishes its own.
    return count;
  }

  async function push(): Promise<void> {
    if (closed || redis.status !== 'ready') return;
    clearTimeout(retryTimer);
    const mine = ++generation;
    try {
      let adoptedSessions: number | undefined;
      if (!adopted) {
        const snapshot = await store.snapshot();
        if (closed || mine !== generation) return;
        adoptedSessions = adopt(snapshot);
        adopted = true;
        touched.clear();
      }
      const result = await store.push({ registrations, containers, engine });
      if (closed || mine !== generation) return;
      writeFailureLogged = false;
      unreachableLogged = false;
      status.synced();
      log('redis: synced', {
        role: 'writer',
        sessions: registrations.size,
        containers: containers.size,
        written: result.written,
        deleted: result.deleted,
        ...(adoptedSessions === undefined ? {} : { adoptedSessions }),
      });
    } catch (error) {
      if (closed || mine !== generation) return;
      log('redis: full push failed', { error: String(error) });
      schedulePush();
    }
  }

  function schedulePush() {
    // A lost connection brings its own 'ready' (and push); only a failure on a live one needs the timer.
    if (closed || redis.status !== 'ready' || retryTimer !== undefined) return;
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      void push();
    }, PUSH_RETRY_MS);
  }

  redis.on('ready', () => {
    lastError = undefined;
    void push();
  });
  redis.on('close', () => {
    if (closed) return;
    if (status.lost()) {
      log('redis: connection lost; writes continue locally and are pushed on reconnect', {
        sessions: registrations.size,
        ...cause(),
      });
    } else if (status.current() === 'connecting' && !unreachableLogged) {
      unreachableLogged = true;
      log('redis: cannot connect yet; retrying (writes are kept locally)', cause());
    }
  });
  // Failures show as 'close' and are reported there; without a listener ioredis would print each one.
  redis.on('error', (error: unknown) => {
    lastError = error;
  });
  redis.connect().catch(() => {});

  const activePort = (sessionId: string) => {
    const last = registrations.get(sessionId)?.at(-1);
    return last === undefined ? undefined : portOf(last);
  };
  const registry: PreviewRegistry = {
    async register(sessionId, port, { stripPrefix = true, visibility = 'public' } = {}) {
      const current = registrations.get(sessionId) ?? [];
      const previous = current.find((entry) => portOf(entry) === port);
      const ports = withPortRegistered(current, storedPort(port, stripPrefix, visibility, previous));
      registrations.set(sessionId, ports);
      mirror('registration', sessionId, ports);
      return { sessionId, port, stripPrefix, visibility };
    },
    accessOf: (sessionId, port) => accessIn(registrations.get(sessionId), port),
    async revokeTokens(sessionId, port) {
      const ports = registrations.get(sessionId);
      if (!ports?.some((entry) => portOf(entry) === port)) return false;
      const revoked = withTokensRevoked(ports, port);
      registrations.set(sessionId, revoked);
      // Published like any registration: every edge's replica has it within its pub/sub delay.
      mirror('registration', sessionId, revoked);
      return true;
    },
    async registrations(sessionId) {
      return (registrations.get(sessionId) ?? []).map((entry) => registrationOf(sessionId, entry));
    },
    async lookup(sessionId) {
      return activePort(sessionId);
    },
    peek: activePort,
    async ports(sessionId) {
      return (registrations.get(sessionId) ?? []).map(portOf);
    },
    keepsPrefix: (sessionId, port) => keepsPrefixIn(registrations.get(sessionId), port),
    async unregisterPort(sessionId, port) {
      const ports = registrations.get(sessionId);
      if (!ports?.some((entry) => portOf(entry) === port)) return false;
      const rest = withoutPort(ports, port);
      if (rest.length === 0) registrations.delete(sessionId);
      else registrations.set(sessionId, rest);
      mirror('registration', sessionId, rest.length === 0 ? undefined : rest);
      return true;
    },
    async unregister(sessionId) {
      const had = registrations.delete(sessionId);
      // Mirrored even when unknown here: before adoption, Redis may hold it from an earlier run.
      mirror('registration', sessionId, undefined);
      return had;
    },
  };

  return {
    registry,
    containerState: (sessionId) => containers.get(sessionId),
    engineState: () => engine,
    containerSessions: () => [...containers.keys()],
    connection: () => status.current(),
    ready: () => status.ready(),
    subscribe: (listener) => status.subscribe(listener),
    publishContainerState(sessionId, state) {
      const current = containers.get(sessionId);
      if (current !== undefined && state !== undefined && JSON.stringify(current) === JSON.stringify(state))
        return;
      if (state === undefined) containers.delete(sessionId);
      else containers.set(sessionId, state);
      mirror('container', sessionId, state);
    },
    publishEngineState(state) {
      if (engine !== undefined && JSON.stringify(engine) === JSON.stringify(state)) return;
      engine = state;
      mirror('engine', '', state);
    },
    async close() {
      if (closed) return;
      closed = true;
      clearTimeout(retryTimer);
      status.close();
      await closeRedisConnection(redis);
    },
  };
}
