import {
  type ContainerResolver,
  createPreviewApp,
  type PreviewRegistry,
  previewErrors,
} from '@sandbox/preview-core';

// (c) Swap in your own registry and resolver: here, previews served by fixed hosts instead of Docker,
// with the registrations kept in a Map (a database or Redis would implement the same interface).
export function createStaticPreviewApp(hosts: Record<string, string>, internalServiceKey: string) {
  // Each session's ports in registration order; the last one is active (what the path routes use).
  const sessions = new Map<string, { port: number; stripPrefix: boolean }[]>();
  const entriesOf = (sessionId: string) => sessions.get(sessionId) ?? [];
  const registry: PreviewRegistry = {
    async register(sessionId, port, { stripPrefix = true } = {}) {
      sessions.set(sessionId, [
        ...entriesOf(sessionId).filter((e) => e.port !== port),
        { port, stripPrefix },
      ]);
      return { sessionId, port, stripPrefix };
    },
    async lookup(sessionId) {
      return entriesOf(sessionId).at(-1)?.port;
    },
    async ports(sessionId) {
      return entriesOf(sessionId).map((e) => e.port);
    },
    // Asked on every request of the path routes, so it answers from memory, without a promise.
    keepsPrefix(sessionId, port) {
      return entriesOf(sessionId).some((e) => e.port === port && !e.stripPrefix);
    },
    async unregisterPort(sessionId, port) {
      const entries = entriesOf(sessionId);
      if (!entries.some((e) => e.port === port)) return false;
      sessions.set(
        sessionId,
        entries.filter((e) => e.port !== port),
      );
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
