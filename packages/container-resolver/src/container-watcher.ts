import type Docker from 'dockerode';
import { CONTAINER_NAME_PREFIX, containerNameFor, sessionIdFromContainerName } from './container-name.js';
import { createDockerClient } from './docker-client.js';
import { classifySessionEvent, type SessionEvent } from './docker-events.js';
import { type DockerEventSubscription, subscribeDockerEvents } from './event-subscription.js';
import type { ParsedContainer } from './parse-inspect.js';
import { parseContainerInspect } from './parse-inspect.js';
import { type ContainerListEntry, parseContainerListEntry, primaryContainerName } from './parse-list.js';
import { type CachedContainer, createSessionCache } from './session-cache.js';

export type { CachedContainer } from './session-cache.js';

/** What the watcher reports to its subscribers. */
export interface ContainerWatcherListener {
  /** A session's container was destroyed (or vanished while the engine was unreachable). */
  removed?(sessionId: string): void;
  /** A session's container started (or was found running at a (re)sync). */
  started?(sessionId: string, container: ParsedContainer): void;
  /**
   * What is known of a session's container changed (state, address, presence): every entry the cache
   * stores, in order. For mirroring the cache elsewhere (a shared store for edge processes).
   */
  changed?(sessionId: string, entry: CachedContainer): void;
  /** The event stream came up or went down; `error` says why it is down. */
  connection?(connected: boolean, error?: unknown): void;
}

/** The watcher's link to the engine. */
export type WatcherConnection =
  | { state: 'connecting' | 'connected' | 'stopped' }
  | { state: 'disconnected'; error: unknown };

/** Options of {@link createContainerWatcher}. */
export interface ContainerWatcherOptions {
  /** Client for inspect and list calls. Default: from `process.env`, with a request timeout. */
  docker?: Pick<Docker, 'getContainer' | 'listContainers'>;
  /** Client for the event stream; separate, so no request timeout cuts the long-lived stream. */
  events?: Pick<Docker, 'getEvents'>;
  /** Preferred network (a container's `sandbox.preview.network` label wins). */
  network?: string | undefined;
  /** Full resync by one list call, as a backstop to the events. Default 30 s. */
  reconcileIntervalMs?: number;
  /** First and longest wait between reconnection attempts. Defaults 100 ms and 2 s. */
  reconnectDelayMs?: { initial: number; max: number };
  /** Deadline of one inspect. Default 3 s. */
  inspectTimeoutMs?: number;
  /**
   * An inspect that an event asked for and that failed (a busy engine past its deadline, say) is tried once
   * more after this many ms, rather than leaving what the event changed to the next reconcile. Default 1000.
   */
  eventRetryDelayMs?: number;
  /** Told of every Docker API call the watcher makes (`inspect`, `list`, `events`), for metrics. */
  onDockerCall?: (operation: 'inspect' | 'list' | 'events') => void;
  /** Where stream trouble is reported. Default: silent. */
  log?: (message: string, details?: unknown) => void;
}

/** Keeps every session container's state and address current from Docker's event stream. */
export interface ContainerWatcher {
  /** Connects in the background and keeps reconnecting; an unreachable engine is a state, not an error. */
  start(): void;
  /** Closes the stream and timers. */
  stop(): Promise<void>;
  /** Resolves once the first sync after start (or a reconnect) is done. */
  synced(): Promise<void>;
  /** What the cache knows of a session, without any Docker call. */
  lookup(sessionId: string): CachedContainer | undefined;
  /** One inspect of a session's container, shared by concurrent callers; stores and returns the result. */
  refresh(sessionId: string): Promise<CachedContainer>;
  connection(): WatcherConnection;
  subscribe(listener: ContainerWatcherListener): () => void;
}

function isNotFound(error: unknown): boolean {
  return (error as { statusCode?: unknown } | null)?.statusCode === 404;
}

/** Creates a {@link ContainerWatcher}; call `start()` to connect. */
export function createContainerWatcher(options: ContainerWatcherOptions = {}): ContainerWatcher {
  const {
    docker = createDockerClient(),
    events = createDockerClient(process.env, { timeoutMs: 0 }),
    network,
    reconcileIntervalMs = 30_000,
    reconnectDelayMs = { initial: 100, max: 2_000 },
    inspectTimeoutMs = 3_000,
    eventRetryDelayMs = 1_000,
    log = () => {},
    onDockerCall = () => {},
  } = options;
  const cache = createSessionCache();
  const listeners = new Set<ContainerWatcherListener>();
  const inflight = new Map<string, Promise<CachedContainer>>();
  let connection: WatcherConnection = { state: 'stopped' };
  let subscription: DockerEventSubscription | undefined;
  let reconcileTimer: NodeJS.Timeout | undefined;
  let syncedWaiters: Array<() => void> = [];

  const emit = (fn: (listener: ContainerWatcherListener) => void) => {
    for (const listener of listeners) fn(listener);
  };
  const setConnection = (next: WatcherConnection) => {
    const was = connection.state;
    connection = next;
    if (next.state === 'connected' && was !== 'connected') emit((l) => l.connection?.(true));
    if (next.state === 'disconnected' && was !== 'disconnected')
      emit((l) => l.connection?.(false, next.error));
  };

  const store = (sessionId: string, entry: CachedContainer, readClock: number): boolean => {
    if (!cache.store(sessionId, entry, readClock)) return false;
    emit((l) => l.changed?.(sessionId, entry));
    return true;
  };

  const announceIfStarted = (
    sessionId: string,
    before: CachedContainer | undefined,
    after: CachedContainer,
  ) => {
    if (!after.present || !after.container.running) return;
    if (before?.present && before.container.running && before.container.id === after.container.id) return;
    emit((l) => l.started?.(sessionId, after.container));
  };

  // 'always' for a start or restart event: the event itself says the container started, even when an
  // earlier inspect (after its die, say) already saw it running again under the same id.
  type Announce = 'never' | 'if-new' | 'always';

  async function inspect(sessionId: string, announce: Announce): Promise<CachedContainer> {
    const readClock = cache.clock();
    let entry: CachedContainer;
    try {
      onDockerCall('inspect');
      const document = await docker
        .getContainer(containerNameFor(sessionId))
        .inspect({ abortSignal: AbortSignal.timeout(inspectTimeoutMs) });
      entry = { present: true, container: parseContainerInspect(document, { network }) };
    } catch (error) {
      if (!isNotFound(error)) throw error;
      entry = { present: false, cause: error };
    }
    const before = cache.get(sessionId);
    if (!store(sessionId, entry, readClock)) return cache.get(sessionId) ?? entry;
    if (announce === 'always') announceIfStarted(sessionId, undefined, entry);
    else if (announce === 'if-new') announceIfStarted(sessionId, before, entry);
    return entry;
  }

  const refreshQuietly = (sessionId: string, announce: Announce, retry = true) => {
    inspect(sessionId, announce).catch((error: unknown) => {
      log('inspect after a Docker event failed', error);
      if (!retry || connection.state === 'stopped') return;
      setTimeout(() => {
        if (connection.state !== 'stopped') refreshQuietly(sessionId, announce, false);
      }, eventRetryDelayMs).unref();
    });
  };

  function onEvent(event: SessionEvent, replayed: boolean): void {
    if (event.kind === 'network') {
      const sessionId = cache.sessionOfContainer(event.containerId);
      if (sessionId === undefined) return;
      cache.touch(sessionId);
      refreshQuietly(sessionId, 'never');
      return;
    }
    const { sessionId, action } = event;
    cache.touch(sessionId);
    if (event.previousSessionId !== undefined) {
      cache.touch(event.previousSessionId);
      refreshQuietly(event.previousSessionId, 'never');
    }
    const current = cache.get(sessionId);
    if (action === 'destroy') {
      // An old container's late destroy must not wipe the new container that took the name.
      if (current?.present && current.container.id !== event.containerId) return;
      const cause = new Error(`No such container: ${CONTAINER_NAME_PREFIX}${sessionId}`);
      store(sessionId, { present: false, cause }, cache.clock());
      emit((l) => l.removed?.(sessionId));
      // Docker frees the name before it logs the destroy, so a new container may already hold it.
      refreshQuietly(sessionId, 'if-new');
      return;
    }
    if ((action === 'die' || action === 'pause') && current?.present) {
      // Mark it out of service at once; the inspect below fills in the details.
      const container = { ...current.container, running: false };
      store(sessionId, { present: true, container }, cache.clock());
    }
    const started = action === 'start' || action === 'restart';
    // A replayed start was announced when it first came; announcing it again would undo later API
    // registrations.
    refreshQuietly(sessionId, started ? (replayed ? 'if-new' : 'always') : 'never');
  }

  async function resync(): Promise<void> {
    const readClock = cache.clock();
    onDockerCall('list');
    const entries = (await docker.listContainers({
      all: true,
      filters: { name: [CONTAINER_NAME_PREFIX] },
    })) as ContainerListEntry[];
    const seen = new Set<string>();
    for (const entry of entries) {
      const sessionId = sessionIdFromContainerName(primaryContainerName(entry.Names));
      const container = sessionId === undefined ? undefined : parseContainerListEntry(entry, { network });
      if (sessionId === undefined || container === undefined) continue;
      seen.add(sessionId);
      const before = cache.get(sessionId);
      const after: CachedContainer = { present: true, container };
      if (store(sessionId, after, readClock)) announceIfStarted(sessionId, before, after);
    }
    for (const sessionId of cache.presentSessions()) {
      if (seen.has(sessionId)) continue;
      const cause = new Error(`No such container: ${CONTAINER_NAME_PREFIX}${sessionId}`);
      if (store(sessionId, { present: false, cause }, readClock)) emit((l) => l.removed?.(sessionId));
    }
  }

  return {
    start() {
      if (subscription) return;
      connection = { state: 'connecting' };
      subscription = subscribeDockerEvents({
        events,
        reconnectDelayMs,
        log,
        onMessage(message, replayed) {
          const event = classifySessionEvent(message);
          if (event) onEvent(event, replayed);
        },
        onSubscribed: () => {
          onDockerCall('events');
          return resync();
        },
        onConnected() {
          setConnection({ state: 'connected' });
          for (const resolve of syncedWaiters) resolve();
          syncedWaiters = [];
        },
        onDisconnected: (error) => setConnection({ state: 'disconnected', error }),
      });
      reconcileTimer = setInterval(() => {
        if (connection.state === 'connected')
          resync().catch((error: unknown) => log('reconcile failed', error));
      }, reconcileIntervalMs);
      reconcileTimer.unref();
    },
    async stop() {
      clearInterval(reconcileTimer);
      await subscription?.stop();
      subscription = undefined;
      connection = { state: 'stopped' };
    },
    synced: () =>
      connection.state === 'connected'
        ? Promise.resolve()
        : new Promise((resolve) => syncedWaiters.push(resolve)),
    lookup: (sessionId) => cache.get(sessionId),
    refresh(sessionId) {
      let pending = inflight.get(sessionId);
      if (!pending) {
        // Announces too: a request may inspect a just-started container before its start event does.
        pending = inspect(sessionId, 'if-new').finally(() => inflight.delete(sessionId));
        inflight.set(sessionId, pending);
      }
      return pending;
    },
    connection: () => connection,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}
