import {
  type ContainerResolver,
  createPreviewApp,
  type PreviewRegistry,
  previewErrors,
} from '@sandbox/preview-core';

// (c) Swap in your own registry and resolver: here, previews served by fixed hosts instead of Docker,
// with the registrations kept in a Map (a database or Redis would implement the same interface).
export function createStaticPreviewApp(hosts: Record<string, string>, internalServiceKey: string) {
  const ports = new Map<string, number>();
  const registry: PreviewRegistry = {
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
  const resolver: ContainerResolver = {
    async resolve(sessionId) {
      const ip = hosts[sessionId];
      // Throw the contract's errors, so clients see the same answers as with Docker.
      if (ip === undefined) throw previewErrors.containerLookupFailed(sessionId, new Error('unknown host'));
      return { ip, network: 'static', containerId: sessionId, labels: {} };
    },
  };
  return createPreviewApp({ registry, resolver, internalServiceKey });
}
