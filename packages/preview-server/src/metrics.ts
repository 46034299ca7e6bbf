import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { PreviewStateView } from '@sandbox/preview-registry';
import type { AccessRecord } from '@sandbox/preview-routes';
import type { UpstreamEngineChoice } from '@sandbox/proxy-core';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/**
 * What the metrics read of a Docker container watcher (`createContainerWatcher` from
 * `@sandbox/container-resolver` fits): described here so that this package needs no Docker.
 */
export interface WatchedEngine {
  connection(): { state: string };
  subscribe(listener: { connection?(connected: boolean): void }): () => void;
}

/** The metrics of one service, and the hooks that feed them. */
export interface PreviewMetrics {
  registry: Registry;
  /** Counts one finished request or WebSocket (wire it with the access recorder). */
  recordAccess(record: AccessRecord): void;
  /** Counts open client connections and WebSockets of a server. */
  trackServer(server: Server): void;
  /** For `createWatchingResolver`: each lookup answered from the cache or not. */
  countCacheLookup(result: 'hit' | 'miss'): void;
  /** For `createContainerWatcher`: each Docker API call. */
  countDockerCall(operation: 'inspect' | 'list' | 'events'): void;
  /** Counts event-stream reconnections and exposes the stream's state. */
  trackWatcher(watcher: WatchedEngine): () => void;
  /** Exposes the link to Redis. */
  trackSharedState(state: Pick<PreviewStateView, 'connection'>): void;
  /** Exposes which client forwards HTTP requests, and why (`PreviewProxy.upstream`). */
  setUpstreamEngine(choice: UpstreamEngineChoice): void;
}

const statusClass = (status: number) => (status === 0 ? 'none' : `${Math.floor(status / 100)}xx`);
// Requests outside the proxy routes: the internal API, health, anything else.
const routeLabel = (record: AccessRecord, apiPrefix: string) =>
  record.route ?? (record.path.startsWith(`${apiPrefix}/`) ? 'api' : 'other');

/** Creates the metrics of one service; `prefix` starts every name (default `preview_`). */
export function createPreviewMetrics({
  prefix = 'preview_',
  apiPrefix = '/api/internal',
}: {
  prefix?: string;
  apiPrefix?: string;
} = {}): PreviewMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const requests = new Counter({
    name: `${prefix}http_requests_total`,
    help: 'HTTP requests answered, by route (prefix, host, api, other), method and status class',
    labelNames: ['route', 'method', 'status_class'],
    registers: [registry],
  });
  const websockets = new Counter({
    name: `${prefix}websockets_total`,
    help: 'WebSocket upgrades ended, by route and status class (1xx: tunnelled)',
    labelNames: ['route', 'status_class'],
    registers: [registry],
  });
  const refused = new Counter({
    name: `${prefix}refused_requests_total`,
    help: 'Answers the server made itself before any route (408, 431, 400, 417, 505), by contract code',
    labelNames: ['code'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: `${prefix}request_duration_seconds`,
    help: 'Time from a request arriving to its response ending, proxied HTTP requests only',
    labelNames: ['route'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const upstreamConnect = new Histogram({
    name: `${prefix}upstream_connect_seconds`,
    help: 'Time from dispatch to a connected upstream socket (about 0 when a keep-alive one is reused)',
    labelNames: ['route'],
    buckets: [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    registers: [registry],
  });
  const connections = new Gauge({
    name: `${prefix}active_connections`,
    help: 'Open client connections (WebSockets included)',
    registers: [registry],
  });
  const activeWebsockets = new Gauge({
    name: `${prefix}active_websockets`,
    help: 'Open tunnelled WebSockets',
    registers: [registry],
  });
  const registrations = new Counter({
    name: `${prefix}registration_requests_total`,
    help: 'Calls of the registration API (add: POST, list: GET, remove: DELETE), by status class',
    labelNames: ['method', 'status_class'],
    registers: [registry],
  });
  const cache = new Counter({
    name: `${prefix}container_cache_lookups_total`,
    help: 'Container lookups answered from the Docker watcher cache (hit) or by an inspect (miss)',
    labelNames: ['result'],
    registers: [registry],
  });
  const dockerCalls = new Counter({
    name: `${prefix}docker_api_calls_total`,
    help: 'Docker API calls, by operation',
    labelNames: ['operation'],
    registers: [registry],
  });
  const reconnects = new Counter({
    name: `${prefix}docker_event_stream_reconnects_total`,
    help: 'Times the Docker event stream came back after being lost',
    registers: [registry],
  });
  let watched: WatchedEngine | undefined;
  new Gauge({
    name: `${prefix}docker_event_stream_up`,
    help: '1 while the Docker event stream is connected',
    registers: [registry],
    // Merged over a cluster's workers (node:cluster): up only when every one is.
    aggregator: 'min',
    collect() {
      if (watched) this.set(watched.connection().state === 'connected' ? 1 : 0);
    },
  });
  let shared: Pick<PreviewStateView, 'connection'> | undefined;
  new Gauge({
    name: `${prefix}redis_synced`,
    help: '1 while the replica of the shared state is in sync with Redis (absent without Redis)',
    aggregator: 'min',
    registers: [registry],
    collect() {
      if (shared) this.set(shared.connection() === 'synced' ? 1 : 0);
    },
  });

  // Info-style: one series at 1, its labels say which engine serves and why (a fallback is worth an alert).
  const upstreamEngine = new Gauge({
    name: `${prefix}upstream_engine_info`,
    help: 'The client forwarding HTTP requests to containers (native, undici) and why it was chosen',
    labelNames: ['engine', 'reason'],
    registers: [registry],
    aggregator: 'max',
  });

  return {
    registry,
    setUpstreamEngine({ engine, reason }) {
      upstreamEngine.reset();
      upstreamEngine.set({ engine, reason }, 1);
    },
    recordAccess(record) {
      const route = routeLabel(record, apiPrefix);
      if (record.kind === 'websocket') {
        websockets.inc({ route, status_class: statusClass(record.status) });
        return;
      }
      requests.inc({ route, method: record.method, status_class: statusClass(record.status) });
      if (route === 'server' && record.error !== undefined) refused.inc({ code: record.error });
      if (route === 'api' && record.path.startsWith(`${apiPrefix}/sessions/`))
        registrations.inc({ method: record.method, status_class: statusClass(record.status) });
      if (record.sessionId === undefined) return;
      duration.observe({ route }, record.durationMs / 1000);
      if (record.upstreamConnectMs !== undefined)
        upstreamConnect.observe({ route }, record.upstreamConnectMs / 1000);
    },
    trackServer(server) {
      server.on('connection', (socket) => {
        connections.inc();
        socket.once('close', () => connections.dec());
      });
      server.on('upgrade', (_req, socket: Duplex) => {
        activeWebsockets.inc();
        socket.once('close', () => activeWebsockets.dec());
      });
    },
    countCacheLookup: (result) => cache.inc({ result }),
    countDockerCall: (operation) => dockerCalls.inc({ operation }),
    trackWatcher(watcher) {
      watched = watcher;
      let everConnected = false;
      return watcher.subscribe({
        connection(connected) {
          if (!connected) return;
          if (everConnected) reconnects.inc();
          everConnected = true;
        },
      });
    },
    trackSharedState(state) {
      shared = state;
    },
  };
}

/** A listening `/metrics` endpoint. */
export interface MetricsServer {
  server: Server;
  url: string;
  close(): Promise<void>;
}

/**
 * Serves `GET /metrics` (Prometheus text format) on a port of its own, apart from the public one, so that
 * an edge never exposes its metrics to the internet.
 */
export async function serveMetrics(
  metrics: { registry: { metrics(): Promise<string>; contentType: string } },
  { port, host }: { port: number; host: string },
): Promise<MetricsServer> {
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('Not found: try GET /metrics\n');
      return;
    }
    metrics.registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
      () => res.writeHead(500).end(),
    );
  });
  server.listen(port, host);
  await once(server, 'listening');
  const shown = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  return {
    server,
    url: `http://${shown}:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * The access recorder of a service: the access log and/or the metrics, or `undefined` when neither is on
 * (then requests carry no trace and no request id, and cost nothing for them).
 */
export function withMetrics(
  record: ((entry: AccessRecord) => void) | undefined,
  metrics: Pick<PreviewMetrics, 'recordAccess'> | undefined,
): ((entry: AccessRecord) => void) | undefined {
  if (!metrics) return record;
  if (!record) return (entry) => metrics.recordAccess(entry);
  return (entry) => {
    record(entry);
    metrics.recordAccess(entry);
  };
}

/**
 * The metrics of a service, when it has any: counts `server`'s connections and serves `/metrics` on
 * `port` (never the public one). Resolves to `undefined` when `metrics` or `port` is not given.
 */
export async function exposeMetrics(
  metrics: PreviewMetrics | undefined,
  server: Server,
  { port, host }: { port: number | undefined; host: string },
): Promise<MetricsServer | undefined> {
  if (metrics === undefined || port === undefined) return undefined;
  metrics.trackServer(server);
  return serveMetrics(metrics, { port, host });
}
