import {
  accessIn,
  type ContainerResolver,
  createPreviewApp,
  keepsPrefixIn,
  type PreviewRegistry,
  portOf,
  previewErrors,
  registrationOf,
  type StoredPort,
  storedPort,
  withoutPort,
  withPortRegistered,
  withTokensRevoked,
} from '@sandbox/preview-core';

// (c) Swap in your own registry and resolver: here, previews served by fixed hosts instead of Docker,
// with the registrations kept in a Map (a database or Redis would implement the same interface). The
// registry package's helpers keep the stored form (`StoredPort`) and its rules in one place.
export function createStaticPreviewApp(hosts: Record<string, string>, internalServiceKey: string) {
  // Each session's ports in registration order; the last one is active (what the path routes use).
  const sessions = new Map<string, StoredPort[]>();
  const entriesOf = (sessionId: string) => sessions.get(sessionId) ?? [];
  const has = (sessionId: string, port: number) => entriesOf(sessionId).some((e) => portOf(e) === port);
  const registry: PreviewRegistry = {
    async register(sessionId, port, { stripPrefix = true, visibility = 'public' } = {}) {
      const previous = entriesOf(sessionId).find((e) => portOf(e) === port);
      const entry = storedPort(port, stripPrefix, visibility, previous);
      sessions.set(sessionId, withPortRegistered(entriesOf(sessionId), entry));
      return registrationOf(sessionId, entry);
    },
    async lookup(sessionId) {
      const last = entriesOf(sessionId).at(-1);
      return last === undefined ? undefined : portOf(last);
    },
    async ports(sessionId) {
      return entriesOf(sessionId).map(portOf);
    },
    async registrations(sessionId) {
      return entriesOf(sessionId).map((e) => registrationOf(sessionId, e));
    },
    // Asked on every request of the routes, so these two answer from memory, without a promise.
    keepsPrefix: (sessionId, port) => keepsPrefixIn(entriesOf(sessionId), port),
    accessOf: (sessionId, port) => accessIn(entriesOf(sessionId), port),
    async revokeTokens(sessionId, port) {
      if (!has(sessionId, port)) return false;
      sessions.set(sessionId, withTokensRevoked(entriesOf(sessionId), port));
      return true;
    },
    async unregisterPort(sessionId, port) {
      if (!has(sessionId, port)) return false;
      sessions.set(sessionId, withoutPort(entriesOf(sessionId), port));
      return true;
    },
    async unregister(sessionId) {
      return sessions.delete(sessionId);
    },
  };
  const resolver: ContainerResolver = {
    async resolve(sessionId) {
      const ip = hosts[sessionId];
      // Throw the contract's errors, so clients see the same answers as with Docker.
      if (ip === undefined) throw previewErrors.containerLookupFailed(sessionId, new Error('unknown host'));
      return { ip, network: 'static', containerId: sessionId, labels: {} };
    },
  };
  const allowed = new Set(Object.values(hosts));
  return createPreviewApp({
    registry,
    resolver,
    internalServiceKey,
    // By default only private container addresses are forwarded to, never loopback or this host's own;
    // these fixed hosts are trusted as configured (they may be a dev server on 127.0.0.1).
    isAllowedUpstream: (address) => allowed.has(address),
  });
}
