import type { Server } from 'node:http';
import type { SharedPreviewState } from '@sandbox/preview-registry';
import {
  createPreviewApp,
  createPreviewMetrics,
  createServiceLogger,
  createSharedStateResolver,
  exposeMetrics,
  isClusterWorker,
  type Logger,
  logAccess,
  logUpstreamEngine,
  optional,
  type PreviewMetrics,
  servePreviewApp,
  serviceLimits,
  sharedStateReadiness,
  withHealthEndpoints,
  withMetrics,
} from '@sandbox/preview-server';
import { createRedisPreviewState } from '@sandbox/preview-state-redis';
import { createPreviewProxy } from '@sandbox/proxy-core';
import type { EdgeProxyConfig } from './config.js';

/** What a running edge exposes to its caller (main, or a test). */
export interface RunningEdgeProxy {
  server: Server;
  /** `http://host:port` it listens on. */
  url: string;
  /** The shared state it serves from (its link to Redis, its local replica). */
  state: SharedPreviewState;
  logger: Logger;
  /** `http://host:port/metrics` when `METRICS_PORT` is set (and this process serves them). */
  metricsUrl?: string;
  /** Its metrics, when `METRICS_PORT` is set: a cluster's primary merges those of its workers. */
  metricsRegistry?: PreviewMetrics['registry'];
  /** Stops accepting, lets in-flight requests finish for up to the grace period, then cuts the rest. */
  close(): Promise<void>;
}

/**
 * Builds the public edge and listens: the public path route and host routing only (no internal API, no
 * internal proxy, no Docker client), answering from a replica of the state the container-manager
 * publishes to Redis.
 */
export async function startEdgeProxy(
  config: EdgeProxyConfig,
  logger: Logger = createServiceLogger({
    name: 'edge-proxy',
    level: config.LOG_LEVEL,
    format: config.LOG_FORMAT,
  }),
): Promise<RunningEdgeProxy> {
  // Bad limits or an invalid TRUSTED_PROXIES / UPSTREAM_NETWORKS entry stop start-up here, naming the
  // variable, before anything is opened.
  const limits = serviceLimits(config);
  const proxy = createPreviewProxy(limits.proxy);
  logUpstreamEngine(logger, proxy.upstream);
  const state = createRedisPreviewState({
    url: config.REDIS_URL,
    role: 'reader',
    log: (message, details) => logger.info(details ?? {}, message),
  });
  // Metrics only when they are served, on their own port: the public one never shows them.
  const metrics = config.METRICS_PORT === undefined ? undefined : createPreviewMetrics();
  metrics?.trackSharedState(state);
  metrics?.setUpstreamEngine(proxy.upstream);
  // Access lines and metrics for the routes' requests and for the server's own answers alike.
  const onAccess = withMetrics(config.ACCESS_LOG ? logAccess(logger) : undefined, metrics);
  const app = createPreviewApp({
    ...optional('onAccess', onAccess),
    logUnexpected: (error) => logger.error({ err: error }, 'unexpected error'),
    registry: state.registry,
    resolver: createSharedStateResolver(state),
    proxy,
    isAllowedUpstream: limits.isAllowedUpstream,
    internalProxy: false,
    ...(config.PREVIEW_DOMAIN === undefined ? {} : { previewDomain: config.PREVIEW_DOMAIN }),
    hostRouteAsLocalhost: config.HOST_ROUTE_LOCALHOST,
    ...optional('tokenSecret', config.PREVIEW_TOKEN_SECRET),
  });
  const served = await servePreviewApp(
    {
      // `/healthz` and `/readyz` on the public port: the load balancer in front checks them.
      requestListener: withHealthEndpoints(app.requestListener, {
        checks: [sharedStateReadiness(state)],
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
  // A cluster worker counts, and its primary serves what all of them counted.
  if (isClusterWorker()) metrics?.trackServer(served.server);
  const metricsServer = isClusterWorker()
    ? undefined
    : await exposeMetrics(metrics, served.server, { port: config.METRICS_PORT, host: config.HOST });
  return {
    server: served.server,
    url: served.url,
    ...(metricsServer ? { metricsUrl: `${metricsServer.url}/metrics` } : {}),
    ...(metrics ? { metricsRegistry: metrics.registry } : {}),
    state,
    logger,
    async close() {
      await served.close();
      await metricsServer?.close();
      await state.close();
    },
  };
}
