import type { CachedContainer, ContainerWatcher } from '@sandbox/container-resolver';
import { describeCause } from '@sandbox/error-contract';
import type {
  PreviewStatePublisher,
  SessionContainerState,
  SharedPreviewState,
} from '@sandbox/preview-registry';
import type { ReadinessCheck } from '@sandbox/preview-server';

/** What an edge must know of a watcher's cache entry (pure): the same answers, as plain JSON. */
export function containerStateOf(entry: CachedContainer): SessionContainerState {
  if (!entry.present) return { state: 'missing', reason: describeCause(entry.cause) };
  const { container } = entry;
  if (!container.running) return { state: 'not-running' };
  if (container.ip === undefined || container.network === undefined) return { state: 'no-ip' };
  return { state: 'running', ip: container.ip, network: container.network, containerId: container.id };
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

/** Ready while the Docker event stream is live (its cache can then be trusted). */
export function dockerReadiness(watcher: Pick<ContainerWatcher, 'connection'>): ReadinessCheck {
  return {
    name: 'docker',
    check: () => {
      const link = watcher.connection();
      if (link.state === 'connected') return { ready: true };
      return {
        ready: false,
        reason: link.state === 'disconnected' ? describeCause(link.error) : `event stream ${link.state}`,
      };
    },
  };
}
