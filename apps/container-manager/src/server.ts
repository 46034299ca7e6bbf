import type { Server } from 'node:http';
import {
  type ContainerResolver,
  type ContainerWatcher,
  createContainerWatcher,
  createDockerClient,
  createInMemoryRegistry,
  createPreviewApp,
  createPreviewProxy,
  createRedisPreviewState,
  createWatchingResolver,
  dockerReadiness,
  type PreviewRegistry,
  publishContainerStates,
  servePreviewApp,
  sharedStateReadiness,
  syncRegistryWithContainers,
  withHealthEndpoints,
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

function createSharedState(url: string) {
  return createRedisPreviewState({
    url,
    role: 'writer',
    log: (message, details) => console.error(message, details ?? ''),
  });
}

/** Builds the app from the configuration and listens. */
export async function startContainerManager(
  config: ContainerManagerConfig,
  deps: ContainerManagerDeps = {},
): Promise<RunningContainerManager> {
  const watcher = deps.watcher ?? createWatcher(config);
  // With REDIS_URL, registrations and container states are shared with edge-proxy processes.
  const shared = config.REDIS_URL === undefined ? undefined : createSharedState(config.REDIS_URL);
  const registry = deps.registry ?? shared?.registry ?? createInMemoryRegistry();
  const resolver = deps.resolver ?? createWatchingResolver(watcher);
  const unsync = syncRegistryWithContainers({ watcher, registry });
  const unpublish = shared ? publishContainerStates({ watcher, state: shared }) : () => {};
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
    ...(config.PREVIEW_DOMAIN === undefined ? {} : { previewDomain: config.PREVIEW_DOMAIN }),
  });
  const served = await servePreviewApp(
    {
      // `/healthz` and `/readyz` (Docker's event stream live; Redis in sync when configured).
      requestListener: withHealthEndpoints(app.requestListener, {
        checks: [dockerReadiness(watcher), ...(shared ? [sharedStateReadiness(shared)] : [])],
        previewDomain: config.PREVIEW_DOMAIN,
      }),
      handleUpgrade: app.handleUpgrade,
    },
    {
      port: config.PORT,
      host: config.HOST,
      shutdownGraceMs: config.SHUTDOWN_GRACE_MS,
    },
  );

  return {
    server: served.server,
    url: served.url,
    async close() {
      await served.close();
      unsync();
      unpublish();
      await watcher.stop();
      await shared?.close();
    },
  };
}
