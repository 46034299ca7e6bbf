import type { ParsedContainer } from './parse-inspect.js';

/** What is known of a session's container: present (with its state), or absent with Docker's reason. */
export type CachedContainer =
  | { present: true; container: ParsedContainer }
  | { present: false; cause: unknown };

/**
 * Session -> container state, with a container id -> session index for network events, and an event clock
 * so a slow read (list or inspect) never overwrites what a newer event already said.
 */
export interface SessionCache {
  get(sessionId: string): CachedContainer | undefined;
  /** Stores an entry read at `readClock`; ignored when an event touched the session after that read began. */
  store(sessionId: string, entry: CachedContainer, readClock: number): boolean;
  /** Records that an event touched a session, so older reads are discarded. */
  touch(sessionId: string): void;
  /** The current clock: take it before a read, pass it to {@link SessionCache.store}. */
  clock(): number;
  sessionOfContainer(containerId: string): string | undefined;
  /** Sessions whose container is present. */
  presentSessions(): string[];
}

/** Creates an empty {@link SessionCache}. */
export function createSessionCache(): SessionCache {
  const entries = new Map<string, CachedContainer>();
  const sessionsById = new Map<string, string>();
  const touchedAt = new Map<string, number>();
  let clock = 0;

  const forgetId = (sessionId: string) => {
    const entry = entries.get(sessionId);
    if (entry?.present && sessionsById.get(entry.container.id) === sessionId) {
      sessionsById.delete(entry.container.id);
    }
  };

  return {
    get: (sessionId) => entries.get(sessionId),
    store(sessionId, entry, readClock) {
      if ((touchedAt.get(sessionId) ?? 0) > readClock) return false;
      forgetId(sessionId);
      entries.set(sessionId, entry);
      if (entry.present) sessionsById.set(entry.container.id, sessionId);
      return true;
    },
    touch(sessionId) {
      touchedAt.set(sessionId, ++clock);
    },
    clock: () => clock,
    sessionOfContainer: (containerId) => sessionsById.get(containerId),
    presentSessions: () => [...entries].filter(([, entry]) => entry.present).map(([sessionId]) => sessionId),
  };
}
