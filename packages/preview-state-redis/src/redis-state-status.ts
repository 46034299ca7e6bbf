import type { SharedStateConnection, SharedStateListener } from '@sandbox/preview-registry';

/** The link state of a shared state, its listeners and its first-sync promise. */
export interface ConnectionStatus {
  current(): SharedStateConnection;
  /** Moves to `synced` (and resolves `ready`), notifying every time: each resync is news to listeners. */
  synced(): void;
  /** Moves to `disconnected`; returns whether it was not already (so the loss is logged once). */
  lost(error?: unknown): boolean;
  subscribe(listener: SharedStateListener): () => void;
  ready(): Promise<void>;
  /** Rejects `ready` if the first sync never came, and stops notifying. */
  close(): void;
}

/** A connection status reporting listener failures to `onListenerError` rather than to the store's events. */
export function createConnectionStatus(onListenerError: (error: unknown) => void): ConnectionStatus {
  let state: SharedStateConnection = 'connecting';
  let closed = false;
  const listeners = new Set<SharedStateListener>();
  let resolveReady: () => void = () => {};
  let rejectReady: (error: Error) => void = () => {};
  const readyPromise = new Promise<void>((resolve, reject) => {
    resolveReady = resolve;
    rejectReady = reject;
  });
  // Nobody has to ask for ready(); a rejection on close must not become an unhandled one then.
  readyPromise.catch(() => {});

  function notify(next: SharedStateConnection, error?: unknown) {
    for (const listener of [...listeners]) {
      try {
        listener.connection?.(next, error);
      } catch (listenerError) {
        onListenerError(listenerError);
      }
    }
  }

  return {
    current: () => state,
    synced() {
      if (closed) return;
      state = 'synced';
      resolveReady();
      notify(state);
    },
    lost(error) {
      // Before the first sync there is nothing to lose: the state stays `connecting` while it retries.
      if (closed || state !== 'synced') return false;
      state = 'disconnected';
      notify(state, error);
      return true;
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    ready: () => readyPromise,
    close() {
      closed = true;
      listeners.clear();
      rejectReady(new Error('the shared state was closed before its first sync'));
    },
  };
}
