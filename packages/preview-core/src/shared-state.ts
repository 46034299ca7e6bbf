import {
  type CachedContainer,
  type ContainerResolver,
  type ContainerWatcher,
  containerNameFor,
  type ResolvedContainer,
} from '@sandbox/container-resolver';
import { describeCause, previewErrors } from '@sandbox/error-contract';
import type {
  PreviewStatePublisher,
  PreviewStateView,
  SessionContainerState,
  SharedPreviewState,
} from '@sandbox/preview-registry';

/** What an edge must know of a watcher's cache entry (pure): the same answers, as plain JSON. */
export function containerStateOf(entry: CachedContainer): SessionContainerState {
  if (!entry.present) return { state: 'missing', reason: describeCause(entry.cause) };
  const { container } = entry;
  if (!container.running) return { state: 'not-running' };
  if (container.ip === undefined || container.network === undefined) return { state: 'no-ip' };
  return { state: 'running', ip: container.ip, network: container.network, containerId: container.id };
}

function runningContainer(state: SessionContainerState & { state: 'running' }): ResolvedContainer {
  return { ip: state.ip, network: state.network, containerId: state.containerId ?? '', labels: {} };
}

/**
 * A resolver for processes without Docker (edges): answers from the container states the manager
 * publishes, with the same contract errors and messages the manager's own resolver gives, and no call
 * to anything on the request path.
 */
export function createSharedStateResolver(view: PreviewStateView): ContainerResolver {
  return {
    peek(sessionId) {
      const engine = view.engineState();
      if (engine !== undefined && !engine.connected) return undefined;
      const state = view.containerState(sessionId);
      // Anything but an address is an error, which resolve() reports.
      return state?.state === 'running' ? runningContainer(state) : undefined;
    },
    async resolve(sessionId) {
      const name = containerNameFor(sessionId);
      const engine = view.engineState();
      if (engine !== undefined && !engine.connected)
        throw previewErrors.containerLookupFailed(sessionId, new Error(engine.reason));
      const state = view.containerState(sessionId);
      if (state === undefined)
        throw previewErrors.containerLookupFailed(sessionId, new Error(`No such container: ${name}`));
      switch (state.state) {
        case 'missing':
          throw previewErrors.containerLookupFailed(sessionId, new Error(state.reason));
        case 'not-running':
          throw previewErrors.containerNotRunning(sessionId);
        case 'no-ip':
          throw previewErrors.containerNoIp(sessionId);
        case 'running':
          return runningContainer(state);
      }
    },
  };
}

/** Options of {@link publishContainerStates}. */
export interface PublishContainerStatesOptions {
  watcher: ContainerWatcher;
  state: SharedPreviewState & PreviewStatePublisher;
  /** Where a failure is reported. Default: stderr. */
  log?: (message: string, details?: unknown) => void;
}

/**
 * Mirrors the Docker watcher into the shared state, for the edges: every container change as it is seen,
 * and the engine link. Once both the watcher and the store have synced, states of sessions Docker no
 * longer knows (left by an earlier run) are withdrawn. Returns a function that stops mirroring.
 */
export function publishContainerStates({
  watcher,
  state,
  log = (message, details) => console.error(message, details),
}: PublishContainerStatesOptions): () => void {
  let stopped = false;
  const unsubscribe = watcher.subscribe({
    changed(sessionId, entry) {
      state.publishContainerState(sessionId, containerStateOf(entry));
    },
    connection(connected, error) {
      state.publishEngineState(
        connected ? { connected: true } : { connected: false, reason: describeCause(error) },
      );
    },
  });
  // A restart must not leave edges believing what the engine said before: start from what it says now.
  const current = watcher.connection();
  if (current.state === 'connected') state.publishEngineState({ connected: true });
  else if (current.state === 'disconnected')
    state.publishEngineState({ connected: false, reason: describeCause(current.error) });
  Promise.all([watcher.synced(), state.ready()])
    .then(() => {
      if (stopped) return;
      for (const sessionId of state.containerSessions()) {
        if (watcher.lookup(sessionId) === undefined) state.publishContainerState(sessionId, undefined);
      }
    })
    .catch((error: unknown) => log('could not withdraw stale container states', error));
  return () => {
    stopped = true;
    unsubscribe();
  };
}
