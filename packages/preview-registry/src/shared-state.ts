import type { PreviewRegistry } from './registry.js';

/**
 * What an edge needs to know of a session's container, as the container-manager's Docker watcher sees it.
 * Plain JSON, so it travels through a shared store.
 */
export type SessionContainerState =
  /** Running, with an address on the chosen network. */
  | { state: 'running'; ip: string; network: string; containerId?: string }
  /** Running, but with no address on any usable network. */
  | { state: 'no-ip' }
  /** Created, exited, paused, restarting... anything but running. */
  | { state: 'not-running' }
  /** No such container, or Docker could not say; `reason` is the contract's `{reason}`. */
  | { state: 'missing'; reason: string };

/** The container-manager's link to the Docker engine: while it is down, no container state can be trusted. */
export type EngineState = { connected: true } | { connected: false; reason: string };

/** The link of one process to the shared store. */
export type SharedStateConnection = 'connecting' | 'synced' | 'disconnected';

/** A process-local replica of the shared state: every read is synchronous, no round trip on the hot path. */
export interface PreviewStateView {
  /** The last published state of a session's container; `undefined` when none was published. */
  containerState(sessionId: string): SessionContainerState | undefined;
  /** The manager's last published engine state; `undefined` when no manager ever published one. */
  engineState(): EngineState | undefined;
  /** Sessions with a published container state. */
  containerSessions(): string[];
  /** This process's link to the store. */
  connection(): SharedStateConnection;
}

/** The writing side (container-manager): publishes what its Docker watcher sees. */
export interface PreviewStatePublisher {
  /** Publishes (or, with `undefined`, deletes) a session's container state. Never throws, never waits. */
  publishContainerState(sessionId: string, state: SessionContainerState | undefined): void;
  /** Publishes the manager's engine state. Never throws, never waits. */
  publishEngineState(state: EngineState): void;
}

/** Notifications of a shared state. */
export interface SharedStateListener {
  /** The link changed: `synced` after every (re)sync, `disconnected` when the store was lost. */
  connection?(state: SharedStateConnection, error?: unknown): void;
}

/** A shared state: registrations, container states and the engine state, with a local replica. */
export interface SharedPreviewState extends PreviewStateView {
  /** Registrations. A reader's registry refuses writes (an edge never registers anything). */
  registry: PreviewRegistry;
  /** Resolves once the first sync with the store is done (or rejects if `close()` comes first). */
  ready(): Promise<void>;
  subscribe(listener: SharedStateListener): () => void;
  close(): Promise<void>;
}
