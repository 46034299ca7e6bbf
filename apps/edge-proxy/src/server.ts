import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import {
  createPreviewApp,
  createPreviewProxy,
  createRedisPreviewState,
  createSharedStateResolver,
  matchPreviewHost,
  normalizePreviewDomain,
  type SharedPreviewState,
  servePreviewApp,
} from '@sandbox/preview-core';
import type { EdgeProxyConfig } from './config.js';

/** What a running edge exposes to its caller (main, or a test). */
export interface RunningEdgeProxy {
  server: Server;
  /** `http://host:port` it listens on. */
  url: string;
  /** The shared state it serves from (its link to Redis, its local replica). */
  state: SharedPreviewState;
  /** Stops accepting, lets in-flight requests finish for up to the grace period, then cuts the rest. */
  close(): Promise<void>;
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

/**
 * `/healthz` (the process serves) and `/readyz` (its replica is in sync with Redis; 503 while Redis is
 * lost, though known previews are still served). A preview host's own `/healthz` belongs to its app.
 */
function withHealth(
  listener: (req: IncomingMessage, res: ServerResponse) => void,
  state: SharedPreviewState,
  previewDomain: string | undefined,
) {
  const domain = previewDomain === undefined ? undefined : normalizePreviewDomain(previewDomain);
  return (req: IncomingMessage, res: ServerResponse) => {
    const { url } = req;
    if (
      (url === '/healthz' || url === '/readyz') &&
      (domain === undefined || matchPreviewHost(req.headers.host, domain) === undefined)
    ) {
      if (url === '/healthz') sendJson(res, 200, { status: 'ok' });
      else {
        const redis = state.connection();
        sendJson(res, redis === 'synced' ? 200 : 503, {
          status: redis === 'synced' ? 'ready' : 'not ready',
          redis,
        });
      }
      return;
    }
    listener(req, res);
  };
}

/**
 * Builds the public edge and listens: the public path route and host routing only (no internal API, no
 * internal proxy, no Docker client), answering from a replica of the state the container-manager
 * publishes to Redis.
 */
export async function startEdgeProxy(config: EdgeProxyConfig): Promise<RunningEdgeProxy> {
  const state = createRedisPreviewState({
    url: config.REDIS_URL,
    role: 'reader',
    log: (message, details) => console.error(message, details ?? ''),
  });
  // An invalid TRUSTED_PROXIES entry throws here, stopping start-up with the entry named.
  const proxy = createPreviewProxy({
    trustedProxies: config.TRUSTED_PROXIES,
    preserveHost: config.PRESERVE_HOST,
  });
  const app = createPreviewApp({
    registry: state.registry,
    resolver: createSharedStateResolver(state),
    proxy,
    internalProxy: false,
    ...(config.PREVIEW_DOMAIN === undefined ? {} : { previewDomain: config.PREVIEW_DOMAIN }),
  });
  const served = await servePreviewApp(
    {
      requestListener: withHealth(app.requestListener, state, config.PREVIEW_DOMAIN),
      handleUpgrade: app.handleUpgrade,
    },
    { port: config.PORT, host: config.HOST, shutdownGraceMs: config.SHUTDOWN_GRACE_MS },
  );
  return {
    server: served.server,
    url: served.url,
    state,
    async close() {
      await served.close();
      await state.close();
    },
  };
}
