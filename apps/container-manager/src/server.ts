import type { Server } from 'node:http';
import {
  type ContainerResolver,
  type ContainerWatcher,
  containerStateOf,
  createContainerWatcher,
  createDashboard,
  createDockerClient,
  createInMemoryRegistry,
  createPreviewApp,
  createPreviewMetrics,
  createPreviewProxy,
  createRedisPreviewState,
  createRequestLog,
  createServiceLogger,
  createSessionManager,
  createSessionsApi,
  createWatchingResolver,
  describeCause,
  dockerReadiness,
  exposeMetrics,
  type InternalApiModule,
  type Logger,
  logAccess,
  logUpstreamEngine,
  optional,
  type PreviewMetrics,
  type PreviewRegistry,
  publishContainerStates,
  registerSessionPortsWhenReady,
  servePreviewApp,
  serviceLimits,
  sharedStateReadiness,
  syncRegistryWithContainers,
  withHealthEndpoints,
  withMetrics,
} from '@sandbox/preview-core';
import type { ContainerManagerConfig } from './config.js';

/** What a running container-manager exposes to its caller (main, or a test). */
export interface RunningContainerManager {
  server: Server;
  /** `http://host:port` it listens on. */
  url: string;
  /** Stops accepting, lets in-flight requests finish for up to the grace period, then cuts the rest. */
  close(): Promise<void>;
  logger: Logger;
  /** `http://host:port/metrics` when `METRICS_PORT` is set. */
  metricsUrl?: string;
  /** `http://host:port/`, the dashboard's page, when `DASHBOARD_PORT` is set. */
  dashboardUrl?: string;
}

/** Dependencies a test may replace; production uses the defaults built from the configuration. */
export interface ContainerManagerDeps {
  registry?: PreviewRegistry;
  /** Watches Docker; started and stopped with the service. */
  watcher?: ContainerWatcher;
  /** Answers from the watcher by default. */
  resolver?: ContainerResolver;
  /** Default: JSON lines on stdout at `LOG_LEVEL`. */
  logger?: Logger;
}

function createWatcher(
  config: ContainerManagerConfig,
  logger: Logger,
  metrics: PreviewMetrics | undefined,
): ContainerWatcher {
  const env = dockerEnv(config);
  return createContainerWatcher({
    docker: createDockerClient(env),
    // Its own client without a request timeout: the event stream lives as long as the service.
    events: createDockerClient(env, { timeoutMs: 0 }),
    network: config.PREVIEW_NETWORK,
    reconcileIntervalMs: config.DOCKER_RECONCILE_INTERVAL_MS,
    ...(metrics ? { onDockerCall: metrics.countDockerCall } : {}),
    log: (message, details) =>
      logger.warn({ detail: details instanceof Error ? details.message : details }, `docker: ${message}`),
  });
}

function dockerEnv(config: ContainerManagerConfig): NodeJS.ProcessEnv {
  return config.DOCKER_HOST === undefined ? process.env : { ...process.env, DOCKER_HOST: config.DOCKER_HOST };
}

// The sessions API: containers from an image, exec and files, all behind the internal key.
function createSessions(
  config: ContainerManagerConfig,
  // The port the service listens on, known once it does (PORT may be 0).
  listeningPort: () => number,
  registry: PreviewRegistry,
  watcher: ContainerWatcher,
  logger: Logger,
): { api: InternalApiModule; stop: () => void } {
  // No request timeout: a stop waits out its grace period, a pull and an exec or file stream last as long as
  // they last. An engine that is down still fails at once (the socket refuses).
  const docker = createDockerClient(dockerEnv(config), { timeoutMs: 0 });
  const manager = createSessionManager({
    docker,
    registry,
    urls: {
      get publicUrl() {
        return config.PREVIEW_PUBLIC_URL ?? `http://localhost:${listeningPort()}`;
      },
      publicPrefix: '/previews',
      ...optional('previewDomain', config.PREVIEW_DOMAIN),
    },
    containers: {
      ...optional('network', config.PREVIEW_NETWORK),
      limits: {
        memoryBytes: config.SESSION_MEMORY,
        pidsLimit: config.SESSION_PIDS_LIMIT,
        ...optional('cpus', config.SESSION_CPUS),
      },
    },
    pullImages: config.SESSION_IMAGE_PULL === 'missing',
    tokensEnabled: config.PREVIEW_TOKEN_SECRET !== undefined,
  });
  const stop = registerSessionPortsWhenReady({
    watcher,
    registry,
    waitTimeoutMs: config.SESSION_PORT_WAIT_MS,
    log: (message, details) => logger.warn({ detail: details }, `sessions: ${message}`),
  });
  const api = createSessionsApi({
    sessions: manager,
    streams: docker,
    maxFileBytes: config.SESSION_FILE_MAX_BYTES,
  });
  return { api, stop };
}

function createSharedState(url: string, logger: Logger) {
  return createRedisPreviewState({
    url,
    role: 'writer',
    log: (message, details) => logger.info(details ?? {}, message),
  });
}

// Docker's side of things at info: the event stream's link, and every container change a session sees.
function logDockerEvents(watcher: ContainerWatcher, logger: Logger): () => void {
  return watcher.subscribe({
    connection(connected, error) {
      if (connected) logger.info('docker: event stream connected');
      else logger.warn({ reason: describeCause(error) }, 'docker: event stream lost; reconnecting');
    },
    changed(sessionId, entry) {
      logger.info({ sessionId, container: containerStateOf(entry) }, 'docker: container changed');
    },
  });
}

/** Builds the app from the configuration and listens. */
export async function startContainerManager(
  config: ContainerManagerConfig,
  deps: ContainerManagerDeps = {},
): Promise<RunningContainerManager> {
  // Bad limits or an invalid TRUSTED_PROXIES / UPSTREAM_NETWORKS entry stop start-up here, naming the
  // variable, before anything is started.
  const limits = serviceLimits(config);
  const proxy = createPreviewProxy(limits.proxy);
  const logger =
    deps.logger ??
    createServiceLogger({ name: 'container-manager', level: config.LOG_LEVEL, format: config.LOG_FORMAT });
  // Metrics only when they are served: counting costs a little on every request.
  logUpstreamEngine(logger, proxy.upstream);
  const metrics = config.METRICS_PORT === undefined ? undefined : createPreviewMetrics();
  metrics?.setUpstreamEngine(proxy.upstream);
  const watcher = deps.watcher ?? createWatcher(config, logger, metrics);
  const unlog = logDockerEvents(watcher, logger);
  // With REDIS_URL, registrations and container states are shared with edge-proxy processes.
  const shared = config.REDIS_URL === undefined ? undefined : createSharedState(config.REDIS_URL, logger);
  const registry = deps.registry ?? shared?.registry ?? createInMemoryRegistry();
  const resolver = deps.resolver ?? createWatchingResolver(watcher, metrics?.countCacheLookup);
  const untrack = metrics?.trackWatcher(watcher) ?? (() => {});
  if (metrics && shared) metrics.trackSharedState(shared);
  const unsync = syncRegistryWithContainers({ watcher, registry });
  const unpublish = shared ? publishContainerStates({ watcher, state: shared }) : () => {};
  let listeningPort = config.PORT;
  const sessions = config.SESSIONS_API
    ? createSessions(config, () => listeningPort, registry, watcher, logger)
    : undefined;
  // An unreachable engine does not stop start-up: the watcher keeps reconnecting in the background.
  watcher.start();
  // Access lines and metrics for the routes' requests and for the server's own answers alike.
  const onAccess = withMetrics(config.ACCESS_LOG ? logAccess(logger) : undefined, metrics);
  const requestLog =
    config.REQUEST_LOG_SIZE === 0
      ? undefined
      : createRequestLog({ perSession: config.REQUEST_LOG_SIZE, maxSessions: config.REQUEST_LOG_SESSIONS });
  const app = createPreviewApp({
    ...optional('onAccess', onAccess),
    ...optional('requestLog', requestLog),
    logUnexpected: (error) => logger.error({ err: error }, 'unexpected error'),
    internalServiceKey: config.INTERNAL_SERVICE_KEY,
    registry,
    resolver,
    proxy,
    isAllowedUpstream: limits.isAllowedUpstream,
    ...(config.PREVIEW_DOMAIN === undefined ? {} : { previewDomain: config.PREVIEW_DOMAIN }),
    hostRouteAsLocalhost: config.HOST_ROUTE_LOCALHOST,
    ...optional('tokenSecret', config.PREVIEW_TOKEN_SECRET),
    internalApi: sessions ? [sessions.api] : [],
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
      limits: limits.client,
      ...optional('onAccess', onAccess),
    },
  );

  listeningPort = Number(new URL(served.url).port);
  // The dashboard's API calls go to the app itself, past the health endpoints, with the key added.
  const dashboardPort = config.DASHBOARD_PORT;
  const dashboard =
    dashboardPort === undefined
      ? undefined
      : createDashboard({ internalServiceKey: config.INTERNAL_SERVICE_KEY, api: app.requestListener });
  const dashboardServer =
    dashboard === undefined || dashboardPort === undefined
      ? undefined
      : await servePreviewApp(
          {
            requestListener: dashboard.requestListener,
            // Nothing on the dashboard's port speaks WebSocket.
            handleUpgrade: (_req, socket) => socket.destroy(),
          },
          {
            port: dashboardPort,
            host: config.HOST,
            shutdownGraceMs: config.SHUTDOWN_GRACE_MS,
            limits: limits.client,
          },
        );
  const metricsServer = await exposeMetrics(metrics, served.server, {
    port: config.METRICS_PORT,
    host: config.HOST,
  });

  return {
    server: served.server,
    url: served.url,
    ...(metricsServer ? { metricsUrl: `${metricsServer.url}/metrics` } : {}),
    ...(dashboardServer ? { dashboardUrl: `${dashboardServer.url}/` } : {}),
    logger,
    async close() {
      // Followers of a request log would hold the server open until the grace period ends.
      requestLog?.close();
      dashboard?.close();
      await Promise.all([served.close(), dashboardServer?.close()]);
      await metricsServer?.close();
      untrack();
      unsync();
      unpublish();
      sessions?.stop();
      unlog();
      await watcher.stop();
      await shared?.close();
    },
  };
}
