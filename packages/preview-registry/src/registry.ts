/** One registration: the port a session's preview listens on. */
export interface PreviewRegistration {
  sessionId: string;
  port: number;
}

/**
 * Session id -> preview ports. A session may register several ports (a dev server and an API, say); the
 * one registered last is the session's active port, the one the path routes use. Async so that a shared
 * store (Redis) can implement it; callers validate the session id and port before they call it.
 */
export interface PreviewRegistry {
  /** Adds a port to a session (or moves it) and makes it the active one: the last write wins. */
  register(sessionId: string, port: number): Promise<PreviewRegistration>;
  /** The session's active port, or `undefined`. */
  lookup(sessionId: string): Promise<number | undefined>;
  /**
   * The port `lookup` would give, answered now from memory, or `undefined` when only `lookup` can tell
   * (not registered, or not held locally). Optional: a proxy asks it first to spare a promise per request.
   */
  peek?(sessionId: string): number | undefined;
  /** Every port of a session, oldest registration first (the last one is active); empty when none. */
  ports(sessionId: string): Promise<number[]>;
  /**
   * Removes one port; resolves to whether it was registered. When it was the active port, the most
   * recently registered of the remaining ports becomes active.
   */
  unregisterPort(sessionId: string, port: number): Promise<boolean>;
  /** Forgets a session and all its ports; resolves to whether it had any. */
  unregister(sessionId: string): Promise<boolean>;
}

/** Options of {@link createInMemoryRegistry}. */
export interface InMemoryRegistryOptions {
  /** Registrations to start with, applied in order. */
  initial?: Iterable<PreviewRegistration>;
}

/** The ports of a session after registering `port`: moved (or added) to the end, where the active one is. */
export function withPortRegistered(ports: readonly number[], port: number): number[] {
  const next = ports.filter((existing) => existing !== port);
  next.push(port);
  return next;
}

// Most sessions have one port: stored as a bare number it costs no array (about a third of the memory of
// a registration, measured with 10,000 sessions); a list only once a second port comes.
type StoredPorts = number | number[];

function listOf(stored: StoredPorts | undefined): number[] {
  if (stored === undefined) return [];
  return typeof stored === 'number' ? [stored] : stored;
}

function activePort(stored: StoredPorts | undefined): number | undefined {
  return typeof stored === 'number' ? stored : stored?.at(-1);
}

function storedOf(ports: number[]): StoredPorts | undefined {
  if (ports.length === 0) return undefined;
  return ports.length === 1 ? (ports[0] as number) : ports;
}

/** The default registry: a process-local map, lost on restart. Last write wins. */
export function createInMemoryRegistry({ initial = [] }: InMemoryRegistryOptions = {}): PreviewRegistry {
  // Ports in registration order; the last is active. A Map, so no session id can hit a prototype key.
  const sessions = new Map<string, StoredPorts>();
  const add = (sessionId: string, port: number) => {
    const stored = sessions.get(sessionId);
    sessions.set(
      sessionId,
      stored === undefined || stored === port
        ? port
        : (storedOf(withPortRegistered(listOf(stored), port)) as StoredPorts),
    );
  };
  for (const { sessionId, port } of initial) add(sessionId, port);

  return {
    async register(sessionId, port) {
      add(sessionId, port);
      return { sessionId, port };
    },
    async lookup(sessionId) {
      return activePort(sessions.get(sessionId));
    },
    peek: (sessionId) => activePort(sessions.get(sessionId)),
    async ports(sessionId) {
      return [...listOf(sessions.get(sessionId))];
    },
    async unregisterPort(sessionId, port) {
      const ports = listOf(sessions.get(sessionId));
      if (!ports.includes(port)) return false;
      const rest = storedOf(ports.filter((existing) => existing !== port));
      if (rest === undefined) sessions.delete(sessionId);
      else sessions.set(sessionId, rest);
      return true;
    },
    async unregister(sessionId) {
      return sessions.delete(sessionId);
    },
  };
}
