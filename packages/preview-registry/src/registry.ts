/** One registration: the port a session's preview listens on, and how the path routes serve it. */
export interface PreviewRegistration {
  sessionId: string;
  port: number;
  /**
   * Whether the path routes strip their prefix (`/previews/<id>`) before the request reaches the port: the
   * contract's default, `true`. `false` is for apps told their public base (`vite --base`, Next.js
   * `basePath`, Jupyter's `base_url`): they receive the whole path and their headers pass unchanged.
   */
  stripPrefix: boolean;
  /** `private`: the port is served only to requests that present a valid preview token. */
  visibility: Visibility;
}

/** Who may reach a port: anyone with the URL (the contract's default), or only holders of a token. */
export type Visibility = 'public' | 'private';

/** How a port is registered; see {@link PreviewRegistration}. */
export interface RegisterOptions {
  /** Default `true`. */
  stripPrefix?: boolean;
  /** Default `public`. */
  visibility?: Visibility;
}

/**
 * What the routes must check before serving a port: nothing for a public one; for a private one, a token
 * issued at or after `tokensNotBefore` (ms since the epoch). A revocation, the removal of the port or a
 * switch from public moves that time, so every earlier token stops counting at once.
 */
export type PortAccess = { visibility: 'public' } | { visibility: 'private'; tokensNotBefore: number };

const PUBLIC: PortAccess = Object.freeze({ visibility: 'public' });

/**
 * A port as registries hold it: a bare number is a public port that strips the prefix (the default, and
 * nearly every port); an object says what differs. This is also the JSON a shared store holds, so that its
 * entries say what they mean.
 */
export type StoredPort = number | PortEntry;

/** A port with options: it keeps the prefix, or it is private (since `tokensNotBefore`), or both. */
export interface PortEntry {
  port: number;
  stripPrefix?: false;
  visibility?: 'private';
  /** Private ports only: tokens issued before this time (ms since the epoch) do not count. */
  tokensNotBefore?: number;
}

/** A port registered with `stripPrefix: false`. */
export type KeptPrefixPort = PortEntry & { stripPrefix: false };

/** The port number of a stored port. */
export function portOf(entry: StoredPort): number {
  return typeof entry === 'number' ? entry : entry.port;
}

/**
 * The stored form of a registration. A private port keeps the `tokensNotBefore` of `previous` (the same
 * port's entry before this registration) when that was private too, so registering it again does not
 * revoke its tokens; otherwise its tokens count from `now`.
 */
export function storedPort(
  port: number,
  stripPrefix = true,
  visibility: Visibility = 'public',
  previous?: StoredPort,
  now = Date.now(),
): StoredPort {
  if (stripPrefix && visibility === 'public') return port;
  const entry: PortEntry = { port };
  if (!stripPrefix) entry.stripPrefix = false;
  if (visibility === 'private') {
    entry.visibility = 'private';
    const kept = previous !== undefined ? accessOfEntry(previous) : PUBLIC;
    entry.tokensNotBefore = kept.visibility === 'private' ? kept.tokensNotBefore : now;
  }
  return entry;
}

/** What a stored port asks of a request; see {@link PortAccess}. */
export function accessOfEntry(entry: StoredPort): PortAccess {
  if (typeof entry === 'number' || entry.visibility !== 'private') return PUBLIC;
  return { visibility: 'private', tokensNotBefore: entry.tokensNotBefore ?? 0 };
}

/** The registration a stored port describes. */
export function registrationOf(sessionId: string, entry: StoredPort): PreviewRegistration {
  return {
    sessionId,
    port: portOf(entry),
    stripPrefix: typeof entry === 'number' || entry.stripPrefix !== false,
    visibility: accessOfEntry(entry).visibility,
  };
}

/** Whether `port` is among the stored ports and was registered with `stripPrefix: false`. */
export function keepsPrefixIn(ports: readonly StoredPort[] | undefined, port: number): boolean {
  if (ports === undefined) return false;
  for (const entry of ports)
    if (typeof entry !== 'number' && entry.port === port) return entry.stripPrefix === false;
  return false;
}

/** What `port` among the stored ports asks of a request; `undefined` when it is not registered. */
export function accessIn(ports: readonly StoredPort[] | undefined, port: number): PortAccess | undefined {
  if (ports === undefined) return undefined;
  for (const entry of ports) if (portOf(entry) === port) return accessOfEntry(entry);
  return undefined;
}

/** The stored ports with `port`'s tokens revoked (from `now`); the same list when it is not private. */
export function withTokensRevoked(
  ports: readonly StoredPort[],
  port: number,
  now = Date.now(),
): StoredPort[] {
  return ports.map((entry) =>
    typeof entry !== 'number' && entry.port === port && entry.visibility === 'private'
      ? // +1: a token minted in the same millisecond as the revocation, before it, must not survive it.
        { ...entry, tokensNotBefore: now + 1 }
      : entry,
  );
}

/**
 * Session id -> preview ports. A session may register several ports (a dev server and an API, say); the
 * one registered last is the session's active port, the one the path routes use. Async so that a shared
 * store (Redis) can implement it; callers validate the session id and port before they call it.
 */
export interface PreviewRegistry {
  /**
   * Adds a port to a session (or moves it) and makes it the active one: the last write wins, options
   * included (registering a port again replaces its `stripPrefix`).
   */
  register(sessionId: string, port: number, options?: RegisterOptions): Promise<PreviewRegistration>;
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
   * Whether the session's `port` is registered with `stripPrefix: false`; `false` when it is not
   * registered at all. Answered now, from memory, as `peek` is: the path routes ask it on every request.
   */
  keepsPrefix(sessionId: string, port: number): boolean;
  /**
   * What the session's `port` asks of a request (public, or private since a time), `undefined` when it is
   * not registered. Answered now, from memory: the routes ask it on every request.
   */
  accessOf(sessionId: string, port: number): PortAccess | undefined;
  /**
   * Revokes every token of the session's `port` issued so far; resolves to whether the port is registered
   * (a public port has none to revoke, and resolves `true`).
   */
  revokeTokens(sessionId: string, port: number): Promise<boolean>;
  /** Every registration of a session, oldest first, with its options. */
  registrations(sessionId: string): Promise<PreviewRegistration[]>;
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
  /** Registrations to start with, applied in order; `stripPrefix` defaults to `true`. */
  initial?: Iterable<
    Omit<PreviewRegistration, 'stripPrefix' | 'visibility'> & {
      stripPrefix?: boolean;
      visibility?: Visibility;
    }
  >;
}

/**
 * The ports of a session after registering `entry`: moved (or added) to the end, where the active one is,
 * with the options of this registration.
 */
export function withPortRegistered<T extends StoredPort>(ports: readonly T[], entry: T): T[] {
  const port = portOf(entry);
  const next = ports.filter((existing) => portOf(existing) !== port);
  next.push(entry);
  return next;
}

/** The stored ports without `port`. */
export function withoutPort(ports: readonly StoredPort[], port: number): StoredPort[] {
  return ports.filter((existing) => portOf(existing) !== port);
}

// Most sessions have one port: stored bare it costs no array (about a third of the memory of a
// registration, measured with 10,000 sessions); a list only once a second port comes.
type StoredPorts = StoredPort | StoredPort[];

function listOf(stored: StoredPorts | undefined): StoredPort[] {
  if (stored === undefined) return [];
  return Array.isArray(stored) ? stored : [stored];
}

function activePort(stored: StoredPorts | undefined): number | undefined {
  if (stored === undefined) return undefined;
  if (typeof stored === 'number') return stored;
  if (!Array.isArray(stored)) return stored.port;
  const last = stored.at(-1);
  return last === undefined ? undefined : portOf(last);
}

function storedOf(ports: StoredPort[]): StoredPorts | undefined {
  if (ports.length === 0) return undefined;
  return ports.length === 1 ? (ports[0] as StoredPort) : ports;
}

/** The default registry: a process-local map, lost on restart. Last write wins. */
export function createInMemoryRegistry({ initial = [] }: InMemoryRegistryOptions = {}): PreviewRegistry {
  // Ports in registration order; the last is active. A Map, so no session id can hit a prototype key.
  const sessions = new Map<string, StoredPorts>();
  const add = (sessionId: string, entry: StoredPort) => {
    const stored = sessions.get(sessionId);
    sessions.set(
      sessionId,
      stored === undefined || stored === entry
        ? entry
        : (storedOf(withPortRegistered(listOf(stored), entry)) as StoredPorts),
    );
  };
  const entryOf = (sessionId: string, port: number) =>
    listOf(sessions.get(sessionId)).find((entry) => portOf(entry) === port);
  for (const { sessionId, port, stripPrefix, visibility } of initial)
    add(sessionId, storedPort(port, stripPrefix, visibility));

  return {
    async register(sessionId, port, { stripPrefix = true, visibility = 'public' } = {}) {
      add(sessionId, storedPort(port, stripPrefix, visibility, entryOf(sessionId, port)));
      return { sessionId, port, stripPrefix, visibility };
    },
    async lookup(sessionId) {
      return activePort(sessions.get(sessionId));
    },
    peek: (sessionId) => activePort(sessions.get(sessionId)),
    async ports(sessionId) {
      return listOf(sessions.get(sessionId)).map(portOf);
    },
    keepsPrefix(sessionId, port) {
      const stored = sessions.get(sessionId);
      // The common case, a bare number, answers without building a list.
      return stored !== undefined && typeof stored !== 'number' && keepsPrefixIn(listOf(stored), port);
    },
    accessOf(sessionId, port) {
      const stored = sessions.get(sessionId);
      // The common case, a bare number, answers without building a list.
      if (typeof stored === 'number') return stored === port ? PUBLIC : undefined;
      return accessIn(listOf(stored), port);
    },
    async revokeTokens(sessionId, port) {
      const ports = listOf(sessions.get(sessionId));
      if (!ports.some((entry) => portOf(entry) === port)) return false;
      sessions.set(sessionId, storedOf(withTokensRevoked(ports, port)) as StoredPorts);
      return true;
    },
    async registrations(sessionId) {
      return listOf(sessions.get(sessionId)).map((entry) => registrationOf(sessionId, entry));
    },
    async unregisterPort(sessionId, port) {
      const ports = listOf(sessions.get(sessionId));
      if (!ports.some((entry) => portOf(entry) === port)) return false;
      const rest = storedOf(withoutPort(ports, port));
      if (rest === undefined) sessions.delete(sessionId);
      else sessions.set(sessionId, rest);
      return true;
    },
    async unregister(sessionId) {
      return sessions.delete(sessionId);
    },
  };
}
