import { previewErrors } from '@sandbox/error-contract';
import { containerNameFor } from './container-name.js';
import type { ContainerWatcher } from './container-watcher.js';
import type { ContainerResolver, ResolvedContainer } from './resolver.js';
import type { CachedContainer } from './session-cache.js';

/** The resolver's answer for a cached entry: the address, or the contract error (pure). */
export function resolveCachedContainer(sessionId: string, entry: CachedContainer): ResolvedContainer {
  if (!entry.present) throw previewErrors.containerLookupFailed(sessionId, entry.cause);
  const { container } = entry;
  if (!container.running) throw previewErrors.containerNotRunning(sessionId);
  if (container.ip === undefined || container.network === undefined)
    throw previewErrors.containerNoIp(sessionId);
  return {
    ip: container.ip,
    network: container.network,
    containerId: container.id,
    labels: container.labels,
  };
}

function isAddressable(entry: CachedContainer): boolean {
  return (
    entry.present &&
    entry.container.running &&
    entry.container.ip !== undefined &&
    entry.container.network !== undefined
  );
}

/**
 * A resolver that answers from the watcher's cache: no Docker call per request at steady state. A session
 * never seen costs one inspect (shared by concurrent requests). While the event stream is down the cache
 * cannot be trusted, so requests get the contract's 500 with the reason the engine is unreachable.
 */
export function createWatchingResolver(
  watcher: ContainerWatcher,
  /** Told whether each lookup was answered from the cache (`hit`) or cost an inspect (`miss`). */
  onLookup?: (result: 'hit' | 'miss') => void,
): ContainerResolver {
  return {
    peek(sessionId) {
      if (watcher.connection().state === 'disconnected') return undefined;
      const cached = watcher.lookup(sessionId);
      // Anything but an address is an error, which resolve() reports (and counts).
      if (cached === undefined || !isAddressable(cached)) return undefined;
      onLookup?.('hit');
      return resolveCachedContainer(sessionId, cached);
    },
    async resolve(sessionId) {
      containerNameFor(sessionId);
      const connection = watcher.connection();
      if (connection.state === 'disconnected')
        throw previewErrors.containerLookupFailed(sessionId, connection.error);
      const cached = watcher.lookup(sessionId);
      onLookup?.(cached ? 'hit' : 'miss');
      if (cached) return resolveCachedContainer(sessionId, cached);
      let entry: CachedContainer;
      try {
        entry = await watcher.refresh(sessionId);
      } catch (error) {
        throw previewErrors.containerLookupFailed(sessionId, error);
      }
      return resolveCachedContainer(sessionId, entry);
    },
  };
}
