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

/** How often a session whose cached state is an error may be inspected again to confirm it, at most. */
export const ERROR_RECHECK_INTERVAL_MS = 1000;

/**
 * A resolver that answers from the watcher's cache: no Docker call per request at steady state. A session
 * never seen costs one inspect (shared by concurrent requests). While the event stream is down the cache
 * cannot be trusted, so requests get the contract's 500 with the reason the engine is unreachable.
 *
 * A cached error (not running, no address, gone) is confirmed by one inspect before it is answered, at
 * most once a second per session: `docker run` returns once the container runs, but its `create` event
 * (inspected while the container was still being created) can be the cache's last word until the `start`
 * event arrives, and a registration made at once must not be refused for it.
 */
export function createWatchingResolver(
  watcher: ContainerWatcher,
  /** Told whether each lookup was answered from the cache (`hit`) or cost an inspect (`miss`). */
  onLookup?: (result: 'hit' | 'miss') => void,
): ContainerResolver {
  const rechecked = new Map<string, number>();
  const confirm = async (sessionId: string): Promise<CachedContainer> => {
    try {
      return await watcher.refresh(sessionId);
    } catch (error) {
      throw previewErrors.containerLookupFailed(sessionId, error);
    }
  };
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
      if (cached === undefined) return resolveCachedContainer(sessionId, await confirm(sessionId));
      if (isAddressable(cached)) return resolveCachedContainer(sessionId, cached);
      const now = performance.now();
      const last = rechecked.get(sessionId);
      if (last !== undefined && now - last < ERROR_RECHECK_INTERVAL_MS)
        return resolveCachedContainer(sessionId, cached);
      rechecked.set(sessionId, now);
      // Bounded: entries older than the interval say nothing, so the map never outgrows a second's errors.
      if (rechecked.size > 10_000)
        for (const [id, at] of rechecked) if (now - at >= ERROR_RECHECK_INTERVAL_MS) rechecked.delete(id);
      return resolveCachedContainer(sessionId, await confirm(sessionId));
    },
  };
}
