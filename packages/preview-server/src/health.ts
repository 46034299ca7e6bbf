import type { IncomingMessage, ServerResponse } from 'node:http';
import type { PreviewStateView } from '@sandbox/preview-registry';
import { matchPreviewHost, normalizePreviewDomain } from '@sandbox/preview-routes';

/** One dependency's part of readiness. */
export interface ReadinessCheck {
  name: string;
  /** Whether the dependency is usable now, and if not, why. */
  check(): { ready: true } | { ready: false; reason: string };
}

/** Options of {@link withHealthEndpoints}. */
export interface HealthEndpointsOptions {
  /** What must be up for `/readyz` to answer 200. */
  checks: readonly ReadinessCheck[];
  /** With host routing, a preview host's own `/healthz` and `/readyz` belong to its app. */
  previewDomain?: string | undefined;
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  });
  res.end(text);
}

/**
 * Adds `GET /healthz` (200 while the process serves) and `GET /readyz` (200 when every check passes, else
 * 503 naming what is not ready) in front of a request listener. Exact paths only (a query is allowed);
 * everything else goes to `listener`.
 */
export function withHealthEndpoints(
  listener: (req: IncomingMessage, res: ServerResponse) => void,
  { checks, previewDomain }: HealthEndpointsOptions,
): (req: IncomingMessage, res: ServerResponse) => void {
  const domain = previewDomain === undefined ? undefined : normalizePreviewDomain(previewDomain);
  return (req, res) => {
    const url = req.url ?? '/';
    const path = url.includes('?') ? url.slice(0, url.indexOf('?')) : url;
    if (
      (path !== '/healthz' && path !== '/readyz') ||
      (req.method !== 'GET' && req.method !== 'HEAD') ||
      (domain !== undefined && matchPreviewHost(req.headers.host, domain) !== undefined)
    ) {
      listener(req, res);
      return;
    }
    if (path === '/healthz') {
      sendJson(res, 200, { status: 'ok' });
      return;
    }
    const results = Object.fromEntries(checks.map((c) => [c.name, c.check()]));
    const ready = Object.values(results).every((result) => result.ready);
    sendJson(res, ready ? 200 : 503, { status: ready ? 'ready' : 'not ready', checks: results });
  };
}

/** Ready while a shared state's replica is in sync with its store (Redis). */
export function sharedStateReadiness(state: Pick<PreviewStateView, 'connection'>): ReadinessCheck {
  return {
    name: 'redis',
    check: () => {
      const link = state.connection();
      return link === 'synced' ? { ready: true } : { ready: false, reason: `redis ${link}` };
    },
  };
}
