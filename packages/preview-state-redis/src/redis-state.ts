import type { PreviewStatePublisher, SharedPreviewState } from '@sandbox/preview-registry';
import { createRedisReader } from './redis-state-reader.js';
import { type StateLog, storeKeys } from './redis-state-store.js';
import { createRedisWriter } from './redis-state-writer.js';

/** Options of {@link createRedisPreviewState}. */
export interface RedisPreviewStateOptions {
  /** REDIS_URL, e.g. redis://127.0.0.1:6379/0 */
  url: string;
  /** 'writer': container-manager (authoritative, publishes); 'reader': an edge (read-only replica). */
  role: 'writer' | 'reader';
  /** Prefix of every key and of the channel. Default 'sandbox-preview:'. */
  keyPrefix?: string;
  /** Where connection changes and resyncs are reported (info-level events). Default: silent. */
  log?: (message: string, details?: Record<string, unknown>) => void;
}

const DEFAULT_KEY_PREFIX = 'sandbox-preview:';

/**
 * Registrations, container states and the engine state shared through Redis, with a process-local
 * replica answering every read. The writer (container-manager) is authoritative: its writes never wait
 * on Redis and are re-pushed whole after every reconnect. A reader (edge) follows the writer's messages,
 * resyncs from a snapshot after every reconnect, and serves its cache while Redis is away.
 */
export function createRedisPreviewState(
  options: RedisPreviewStateOptions & { role: 'writer' },
): SharedPreviewState & PreviewStatePublisher;
export function createRedisPreviewState(
  options: RedisPreviewStateOptions & { role: 'reader' },
): SharedPreviewState;
export function createRedisPreviewState({
  url,
  role,
  keyPrefix = DEFAULT_KEY_PREFIX,
  log = () => {},
}: RedisPreviewStateOptions): SharedPreviewState | (SharedPreviewState & PreviewStatePublisher) {
  const keys = storeKeys(keyPrefix);
  const safeLog: StateLog = (message, details) => {
    // A throwing logger must not break the connection handling it reports on.
    try {
      log(message, details);
    } catch {}
  };
  return role === 'writer' ? createRedisWriter(url, keys, safeLog) : createRedisReader(url, keys, safeLog);
}
