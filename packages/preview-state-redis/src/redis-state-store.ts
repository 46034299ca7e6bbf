import { Redis } from 'ioredis';
import {
  type EntryKind,
  type EntryValues,
  MalformedStoreDataError,
  parseStoredEntry,
} from './redis-state-codec.js';
import type { Snapshot } from './redis-state-merge.js';
import { PUSH_SCRIPT, WRITE_SCRIPT } from './redis-state-scripts.js';

/** Where connection changes, resyncs and ignored data are reported. */
export type StateLog = (message: string, details?: Record<string, unknown>) => void;

/** The keys and the channel of one shared state. */
export interface StoreKeys {
  registrations: string;
  containers: string;
  engine: string;
  seq: string;
  /** Holds the seq of the last full push of a writer: absent when the store was emptied since. */
  synced: string;
  channel: string;
}

/** The keys under a prefix. */
export function storeKeys(prefix: string): StoreKeys {
  return {
    registrations: `${prefix}registrations`,
    containers: `${prefix}containers`,
    engine: `${prefix}engine`,
    seq: `${prefix}seq`,
    synced: `${prefix}synced`,
    channel: `${prefix}changes`,
  };
}

/** A writer's whole local state, as the push script takes it. */
export interface FullState {
  registrations: Iterable<[string, EntryValues['registration']]>;
  containers: Iterable<[string, EntryValues['container']]>;
  engine: EntryValues['engine'] | undefined;
}

/**
 * A connection that never queues: with the offline queue off and no retry of pending commands, a command
 * issued while Redis is away fails at once instead of piling up, and callers rely on the resync (reader)
 * or full push (writer) that follows every reconnect. Reconnects forever, 50 ms doubling up to 1 s.
 */
export function createRedisConnection(url: string, connectionName: string): Redis {
  return new Redis(url, {
    lazyConnect: true,
    connectionName,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    // Subscriptions are renewed by hand on 'ready', before the snapshot, so that no message can fall between.
    autoResubscribe: false,
    retryStrategy: (attempt) => Math.min(50 * 2 ** Math.max(0, attempt - 1), 1000),
  });
}

/** How long close() gives Redis to answer QUIT and the socket to end before cutting it off. */
const CLOSE_TIMEOUT_MS = 1000;

/** Ends a connection, never waiting long for a Redis that is away or stuck; resolves once it is let go. */
export async function closeRedisConnection(redis: Redis): Promise<void> {
  if (redis.status === 'end') return;
  const ended = new Promise<void>((resolve) => redis.once('end', () => resolve()));
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), CLOSE_TIMEOUT_MS);
  });
  if (redis.status === 'ready') {
    // QUIT lets the replies already asked for arrive; an unresponsive server is cut off.
    const quit = redis.quit().then(
      () => 'quit' as const,
      () => 'failed' as const,
    );
    if ((await Promise.race([quit, timedOut])) !== 'quit') redis.disconnect();
  } else {
    redis.disconnect();
  }
  // While reconnecting there is no socket and disconnect() cleared the timer: nothing is left to wait for.
  // Read again: quit() and disconnect() move it on, which the compiler cannot see.
  const after: string = redis.status;
  if (after !== 'end' && after !== 'reconnecting') await Promise.race([ended, timedOut]);
  clearTimeout(timer);
}

type ScriptCommand = (...args: (string | number)[]) => Promise<unknown>;

/** The commands of a shared state on one connection: writes, full pushes and snapshots. */
export interface StoreCommands {
  /** One atomic write of an entry (`undefined` deletes it); resolves to its seq. */
  write<K extends EntryKind>(kind: K, id: string, value: EntryValues[K] | undefined): Promise<number>;
  /** Makes the store hold exactly this state (see PUSH_SCRIPT). */
  push(state: FullState): Promise<{ written: number; deleted: number; seq: number }>;
  /** Everything at one seq, read in one MULTI; malformed entries are logged and left out. */
  snapshot(): Promise<Snapshot>;
}

/** Defines the scripts on a connection and returns the commands using them. */
export function createStoreCommands(redis: Redis, keys: StoreKeys, log: StateLog): StoreCommands {
  redis.defineCommand('previewStateWrite', { numberOfKeys: 2, lua: WRITE_SCRIPT });
  redis.defineCommand('previewStatePush', { numberOfKeys: 5, lua: PUSH_SCRIPT });
  // defineCommand adds methods ioredis cannot type.
  const scripts = redis as unknown as { previewStateWrite: ScriptCommand; previewStatePush: ScriptCommand };
  const targetOf = (kind: EntryKind) =>
    kind === 'registration' ? keys.registrations : kind === 'container' ? keys.containers : keys.engine;

  function parseTable<K extends EntryKind>(kind: K, raw: unknown) {
    const table = new Map<string, { seq: number; value: EntryValues[K] }>();
    for (const [id, text] of Object.entries((raw ?? {}) as Record<string, string>)) {
      const entry = parseOrLog(kind, id, text);
      if (entry !== undefined) table.set(id, entry);
    }
    return table;
  }

  function parseOrLog<K extends EntryKind>(kind: K, id: string, text: string) {
    try {
      return parseStoredEntry(kind, text);
    } catch (error) {
      if (!(error instanceof MalformedStoreDataError)) throw error;
      log('redis: ignored a malformed entry', { kind, id, error: error.message });
      return undefined;
    }
  }

  return {
    async write(kind, id, value) {
      const json = value === undefined ? '' : JSON.stringify(value);
      return Number(await scripts.previewStateWrite(keys.seq, targetOf(kind), keys.channel, kind, id, json));
    },
    async push({ registrations, containers, engine }) {
      const encode = <T>(entries: Iterable<[string, T]>) =>
        [...entries].map(([id, value]) => [id, JSON.stringify(value)]);
      const payload = JSON.stringify({
        registrations: encode(registrations),
        containers: encode(containers),
        engine: engine === undefined ? '' : JSON.stringify(engine),
      });
      const { registrations: r, containers: c, engine: e, synced, seq, channel } = keys;
      const [written, deleted, pushedSeq] = (await scripts.previewStatePush(
        seq,
        r,
        c,
        e,
        synced,
        channel,
        payload,
      )) as [number, number, number];
      return { written, deleted, seq: pushedSeq };
    },
    async snapshot() {
      const replies = await redis
        .multi()
        .hgetall(keys.registrations)
        .hgetall(keys.containers)
        .get(keys.engine)
        .get(keys.seq)
        .get(keys.synced)
        .exec();
      if (replies === null) throw new Error('redis: the snapshot transaction was aborted');
      const results = replies.map(([error, result]) => {
        if (error) throw error;
        return result;
      });
      const [registrations, containers, engineText, seqText, syncedText] = results;
      const engine = new Map<string, { seq: number; value: EntryValues['engine'] }>();
      if (typeof engineText === 'string') {
        const entry = parseOrLog('engine', '', engineText);
        if (entry !== undefined) engine.set('', entry);
      }
      const seq = Number(seqText ?? 0);
      return {
        seq: Number.isSafeInteger(seq) && seq >= 0 ? seq : 0,
        tables: {
          registration: parseTable('registration', registrations),
          container: parseTable('container', containers),
          engine,
        },
        writerSynced: typeof syncedText === 'string',
      };
    },
  };
}
