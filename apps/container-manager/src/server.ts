import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import {
  type ContainerResolver,
  type ContainerWatcher,
  createContainerWatcher,
  createDockerClient,
  createInMemoryRegistry,
  createPreviewApp,
  createPreviewProxy,
  createWatchingResolver,
  type PreviewRegistry,
  syncRegistryWithContainers,
} from '@sandbox/preview-core';
import type { ContainerManagerConfig } from './config.js';

/** What a running container-manager exposes to its caller (main, or a test). */
export interface RunningContainerManager {
  server: Server;
  /** `http://host:port` it listens on. */
  url: string;
  /** Stops accepting, lets in-flight requests finish for up to the grace period, then cuts the rest. */
  close(): Promise<void>;
}

/** Dependencies a test may replace; production uses the defaults built from the configuration. */
export interface ContainerManagerDeps {
  registry?: PreviewRegistry;
  /** Watches Docker; started and stopped with the service. */
  watcher?: ContainerWatcher;
  /** Answers from the watcher by default. */
  resolver?: ContainerResolver;
}

function createWatcher(config: ContainerManagerConfig): ContainerWatcher {
  const env =
    config.DOCKER_HOST === undefined ? process.env : { ...process.env, DOCKER_HOST: config.DOCKER_HOST };
  return createContainerWatcher({
    docker: createDockerClient(env),
    // Its own client without a request timeout: the event stream lives as long as the service.
    events: createDockerClient(env, { timeoutMs: 0 }),
    network: config.PREVIEW_NETWORK,
    reconcileIntervalMs: config.DOCKER_RECONCILE_INTERVAL_MS,
    log: (message, details) =>
      console.error(`docker: ${message}`, details instanceof Error ? details.message : details),
  });
}

/** Builds the app from the configuration and listens. */
export async function startContainerManager(
  config: ContainerManagerConfig,
  deps: ContainerManagerDeps = {},
): Promise<RunningContainerManager> {
  const watcher = deps.watcher ?? createWatcher(config);
  const registry = deps.registry ?? createInMemoryRegistry();
  const resolver = deps.resolver ?? createWatchingResolver(watcher);
  const unsync = syncRegistryWithContainers({ watcher, registry });
  // An unreachable engine does not stop start-up: the watcher keeps reconnecting in the background.
  watcher.start();
  // An invalid TRUSTED_PROXIES entry throws here, stopping start-up with the entry named.
  const proxy = createPreviewProxy({
    trustedProxies: config.TRUSTED_PROXIES,
    preserveHost: config.PRESERVE_HOST,
  });
  const app = createPreviewApp({
    internalServiceKey: config.INTERNAL_SERVICE_KEY,
    registry,
    resolver,
    proxy,
  });
  const server = createServer(app.requestListener);
  // Upgrades arrive on their own event, so a WebSocket can be the very first request of a connection.
  server.on('upgrade', app.handleUpgrade);
  // Node's closeAllConnections() does not see upgraded sockets; keep them to cut at the deadline.
  const tunnels = new Set<Duplex>();
  server.on('upgrade', (_req, socket: Duplex) => {
    tunnels.add(socket);
    socket.once('close', () => tunnels.delete(socket));
  });
  server.listen(config.PORT, config.HOST);
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const host = config.HOST === '0.0.0.0' ? '127.0.0.1' : config.HOST;

  return {
    server,
    url: `http://${host}:${port}`,
    async close() {
      const closed = once(server, 'close');
      server.close();
      // Keep-alive connections become idle as their last response ends; sweep them as they do, so the
      // process exits as soon as the in-flight work is done rather than at the end of the grace period.
      server.closeIdleConnections();
      const sweep = setInterval(() => server.closeIdleConnections(), 100);
      const deadline = setTimeout(() => {
        server.closeAllConnections();
        for (const socket of tunnels) socket.destroy();
      }, config.SHUTDOWN_GRACE_MS);
      await closed;
      clearInterval(sweep);
      clearTimeout(deadline);
      unsync();
      await watcher.stop();
    },
  };
}
