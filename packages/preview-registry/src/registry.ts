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

/** The default registry: a process-local map, lost on restart. Last write wins. */
export function createInMemoryRegistry({ initial = [] }: InMemoryRegistryOptions = {}): PreviewRegistry {
  // Ports in registration order; the last is active. A Map, so no session id can hit a prototype key.
  const sessions = new Map<string, number[]>();
  const add = (sessionId: string, port: number) =>
    sessions.set(sessionId, withPortRegistered(sessions.get(sessionId) ?? [], port));
  for (const { sessionId, port } of initial) add(sessionId, port);

  return {
    async register(sessionId, port) {
      add(sessionId, port);
      return { sessionId, port };
    },
    async lookup(sessionId) {
      return sessions.get(sessionId)?.at(-1);
    },
    async ports(sessionId) {
      return [...(sessions.get(sessionId) ?? [])];
    },
    async unregisterPort(sessionId, port) {
      const ports = sessions.get(sessionId);
      if (!ports?.includes(port)) return false;
      const rest = ports.filter((existing) => existing !== port);
      if (rest.length === 0) sessions.delete(sessionId);
      else sessions.set(sessionId, rest);
      return true;
    },
    async unregister(sessionId) {
      return sessions.delete(sessionId);
    },
  };
}
