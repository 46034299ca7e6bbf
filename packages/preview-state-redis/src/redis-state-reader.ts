import type { SharedPreviewState } from '@sandbox/preview-registry';
import {
  accessIn,
  keepsPrefixIn,
  type PreviewRegistry,
  portOf,
  registrationOf,
} from '@sandbox/preview-registry';
import { type Change, MalformedStoreDataError, parseStoreMessage } from './redis-state-codec.js';
import {
  applyChange,
  applySnapshot,
  createReplica,
  dropTombstones,
  replicaIds,
  replicaSession,
  replicaValue,
  shouldAwaitWriter,
} from './redis-state-merge.js';
import { createConnectionStatus } from './redis-state-status.js';
import {
  closeRedisConnection,
  createRedisConnection,
  createStoreCommands,
  type StateLog,
  type StoreKeys,
} from './redis-state-store.js';

/** Thrown by a reader's registry on any write: edges never register anything. */
export class ReadOnlyRegistryError extends Error {
  override name = 'ReadOnlyRegistryError';
  constructor() {
    super('read-only: this process is an edge; register previews on the container-manager');
  }
}

/** A resync that failed with both connections up (not for want of Redis) is tried again after this. */
const RESYNC_RETRY_MS = 1000;

/**
 * An edge's replica: a command connection for snapshots, a subscriber connection for changes. Every
 * 'ready' of either (first connect or reconnect) subscribes, then resyncs from a snapshot; every read is
 * answered from memory, and keeps being answered from it while Redis is away.
 */
export function createRedisReader(url: string, keys: StoreKeys, log: StateLog): SharedPreviewState {
  const replica = createReplica();
  const status = createConnectionStatus((error) => log('redis: a listener threw', { error }));
  const commands = createRedisConnection(url, 'preview-state-reader');
  const subscriber = createRedisConnection(url, 'preview-state-reader-sub');
  const store = createStoreCommands(commands, keys, log);
  let closed = false;
  // A generation per resync: only the latest one may apply its snapshot.
  let generation = 0;
  let resyncInFlight = false;
  // Messages received while a snapshot is in flight, replayed over it: needed when it replaces everything.
  let received: Change[] = [];
  // The store was emptied and no writer has re-published yet: serve the cache until its resync message.
  let awaitingWriter = false;
  let retryTimer: NodeJS.Timeout | undefined;
  let unreachableLogged = false;
  // The last connection error, reported with the loss it caused (a refused port, a wrong password...).
  let lastError: unknown;
  const cause = () => (lastError === undefined ? {} : { error: String(lastError) });

  const sessionCount = () => replicaIds(replica, 'registration').length;

  async function resync(): Promise<void> {
    if (closed || commands.status !== 'ready' || subscriber.status !== 'ready') return;
    clearTimeout(retryTimer);
    const mine = ++generation;
    resyncInFlight = true;
    const highestWhenRequested = replica.highest;
    try {
      await subscriber.subscribe(keys.channel);
      const snapshot = await store.snapshot();
      if (closed || mine !== generation) return;
      resyncInFlight = false;
      if (shouldAwaitWriter(replica, snapshot)) {
        received = [];
        if (!awaitingWriter)
          log(
            `redis: the store was emptied; serving ${sessionCount()} known sessions from the local cache until the container-manager re-publishes`,
            { sessions: sessionCount() },
          );
        awaitingWriter = true;
        return;
      }
      awaitingWriter = false;
      const how = applySnapshot(replica, snapshot, highestWhenRequested);
      for (const change of received) applyChange(replica, change, false);
      received = [];
      dropTombstones(replica);
      unreachableLogged = false;
      status.synced();
      log('redis: synced', {
        role: 'reader',
        sessions: sessionCount(),
        containers: replicaIds(replica, 'container').length,
        seq: snapshot.seq,
        ...(how === 'replaced' ? { storeWasReset: true } : {}),
      });
    } catch (error) {
      if (closed || mine !== generation) return;
      resyncInFlight = false;
      log('redis: resync failed', { error: String(error) });
      // A lost connection brings its own 'ready' later; a failure on a live one needs a retry.
      retryTimer = setTimeout(() => void resync(), RESYNC_RETRY_MS);
    }
  }

  function onMessage(text: string) {
    let message: ReturnType<typeof parseStoreMessage>;
    try {
      message = parseStoreMessage(text);
    } catch (error) {
      if (!(error instanceof MalformedStoreDataError)) throw error;
      log('redis: ignored a malformed message', { error: error.message });
      return;
    }
    // A writer pushed its full state: the store may have been emptied and refilled under us (its seqs
    // started again, so its messages may have been taken for old ones), and a waiting reader can resume.
    if (message.kind === 'resync') {
      void resync();
      return;
    }
    if (resyncInFlight) received.push(message);
    // Until a writer has refilled an emptied store, its changes cannot be ordered against the cache.
    if (awaitingWriter) return;
    applyChange(replica, message, resyncInFlight);
  }

  function onClose() {
    if (closed) return;
    if (status.lost()) {
      const sessions = sessionCount();
      log(`redis: connection lost; serving ${sessions} known sessions from the local cache`, {
        sessions,
        ...cause(),
      });
    } else if (status.current() === 'connecting' && !unreachableLogged) {
      unreachableLogged = true;
      log('redis: cannot connect yet; retrying', { sessions: sessionCount(), ...cause() });
    }
  }

  subscriber.on('message', (_channel: string, text: string) => onMessage(text));
  for (const connection of [commands, subscriber]) {
    connection.on('ready', () => {
      lastError = undefined;
      void resync();
    });
    connection.on('close', onClose);
    // Failures show as 'close' and are reported there; without a listener ioredis would print each one.
    connection.on('error', (error: unknown) => {
      lastError = error;
    });
    connection.connect().catch(() => {});
  }

  const readOnly = async (): Promise<never> => {
    throw new ReadOnlyRegistryError();
  };
  const activePort = (sessionId: string) => replicaSession(replica, sessionId).port;
  const registry: PreviewRegistry = {
    register: readOnly,
    unregisterPort: readOnly,
    unregister: readOnly,
    async lookup(sessionId) {
      return activePort(sessionId);
    },
    peek: activePort,
    async ports(sessionId) {
      return (replicaValue(replica, 'registration', sessionId) ?? []).map(portOf);
    },
    keepsPrefix(sessionId, port) {
      // The path routes ask for the active port: the session's view has it at hand.
      const view = replicaSession(replica, sessionId);
      if (view.port === port) return view.keepPrefix;
      return keepsPrefixIn(replicaValue(replica, 'registration', sessionId), port);
    },
    accessOf: (sessionId, port) => accessIn(replicaValue(replica, 'registration', sessionId), port),
    revokeTokens: readOnly,
    async registrations(sessionId) {
      return (replicaValue(replica, 'registration', sessionId) ?? []).map((entry) =>
        registrationOf(sessionId, entry),
      );
    },
  };

  return {
    registry,
    containerState: (sessionId) => replicaSession(replica, sessionId).container,
    engineState: () => replicaValue(replica, 'engine', ''),
    containerSessions: () => replicaIds(replica, 'container'),
    connection: () => status.current(),
    ready: () => status.ready(),
    subscribe: (listener) => status.subscribe(listener),
    async close() {
      if (closed) return;
      closed = true;
      clearTimeout(retryTimer);
      status.close();
      await Promise.all([closeRedisConnection(commands), closeRedisConnection(subscriber)]);
    },
  };
}
