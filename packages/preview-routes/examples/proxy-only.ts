import { createServer } from 'node:http';
import { previewErrors } from '@sandbox/error-contract';
import { createInMemoryRegistry } from '@sandbox/preview-registry';
import { type ContainerResolver, createPreviewRoutes } from '@sandbox/preview-routes';

// A proxy-only service: its own table of container addresses (filled by whatever starts the containers)
// instead of Docker, the contract's routes and errors, and nothing else: no Express, no Docker client.
export function createProxyOnlyServer(addresses: ReadonlyMap<string, string>) {
  const registry = createInMemoryRegistry();
  const resolver: ContainerResolver = {
    async resolve(sessionId) {
      const ip = addresses.get(sessionId);
      if (ip === undefined)
        throw previewErrors.containerLookupFailed(sessionId, new Error('unknown session'));
      return { ip, network: 'bridge', containerId: sessionId, labels: {} };
    },
  };
  const routes = createPreviewRoutes({ registry, resolver });
  const server = createServer(routes);
  server.on('upgrade', routes.handleUpgrade);
  return { server, registry };
}
