/** One registration: the port a session's preview listens on. */
export interface PreviewRegistration {
  sessionId: string;
  port: number;
}

/**
 * Session id -> preview port. Async so that a shared store (Redis) can implement it; callers validate the
 * session id and port before they call it.
 */
export interface PreviewRegistry {
  /** Records the port for a session; a later call for the same session wins. */
  register(sessionId: string, port: number): Promise<PreviewRegistration>;
  /** The port registered for a session, or `undefined`. */
  lookup(sessionId: string): Promise<number | undefined>;
  /** Forgets a session; resolves to whether it was registered. */
  unregister(sessionId: string): Promise<boolean>;
}

/** Options of {@link createInMemoryRegistry}. */
export interface InMemoryRegistryOptions {
  /** Registrations to start with. */
  initial?: Iterable<PreviewRegistration>;
}

/** The default registry: a process-local map, lost on restart. Last write wins. */
export function createInMemoryRegistry({ initial = [] }: InMemoryRegistryOptions = {}): PreviewRegistry {
  const ports = new Map<string, number>();
  for (const { sessionId, port } of initial) ports.set(sessionId, port);
  return {
    async register(sessionId, port) {
      ports.set(sessionId, port);
      return { sessionId, port };
    },
    async lookup(sessionId) {
      return ports.get(sessionId);
    },
    async unregister(sessionId) {
      return ports.delete(sessionId);
    },
  };
}
