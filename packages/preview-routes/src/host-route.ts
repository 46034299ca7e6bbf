import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { type PreviewError, previewErrors } from '@sandbox/error-contract';
import { PREVIEW_PORT_RANGE } from '@sandbox/preview-registry';
import { hasMalformedPercentEncoding, type PreviewProxy, traceOf } from '@sandbox/proxy-core';
import { admit, NO_PRIVATE_ACCESS, type PrivateAccessContext } from './private-access.js';
import { asMiddleware, type ProxyRouteHandler } from './proxy-route.js';
import type { PreviewTargetResolver } from './target.js';

/** A request whose Host names a preview: `{port}-{sessionId}.{domain}`. */
export interface PreviewHostMatch {
  sessionId: string;
  port: number;
}

// One DNS label (RFC 1035, lowercase: browsers lowercase host names): `{port}-{sessionId}`, at most 63
// characters, the session id made of letters, digits and inner hyphens. No leading zero in the port: one
// preview must have one origin, not `3000-x` and `03000-x`.
const PREVIEW_LABEL = /^([1-9]\d{0,4})-([a-z0-9](?:[a-z0-9-]*[a-z0-9])?)$/;
const MAX_LABEL_LENGTH = 63;

/** A domain as configured (`preview.example.com`, any case, leading or trailing dot tolerated), normalised. */
export function normalizePreviewDomain(domain: string): string {
  return domain.trim().toLowerCase().replace(/^\.+/, '').replace(/\.+$/, '');
}

/** Whether a session id can be reached by host: it fits in a DNS label next to any port. */
export function isHostRoutableSessionId(sessionId: string): boolean {
  return PREVIEW_LABEL.test(`65535-${sessionId}`) && sessionId.length + 6 <= MAX_LABEL_LENGTH;
}

/**
 * Matches a Host header against `{port}-{sessionId}.{domain}` (pure). `undefined` when the host is not a
 * preview host (other hosts, the bare domain, deeper subdomains): those requests go on to the path routes.
 * A `:port` suffix and a trailing dot are ignored; `domain` must be normalised.
 */
export function matchPreviewHost(
  host: string | undefined,
  domain: string,
): PreviewHostMatch | PreviewError | undefined {
  if (host === undefined || domain === '' || host.startsWith('[')) return undefined;
  const colonAt = host.indexOf(':');
  let name = (colonAt === -1 ? host : host.slice(0, colonAt)).toLowerCase();
  if (name.endsWith('.')) name = name.slice(0, -1);
  if (!name.endsWith(`.${domain}`)) return undefined;
  const label = name.slice(0, name.length - domain.length - 1);
  if (label.length > MAX_LABEL_LENGTH) return undefined;
  const match = PREVIEW_LABEL.exec(label);
  if (!match) return undefined;
  const port = Number(match[1]);
  if (port < PREVIEW_PORT_RANGE.min || port > PREVIEW_PORT_RANGE.max) return previewErrors.invalidPort();
  return { sessionId: match[2] as string, port };
}

/** Options of {@link createHostRoute} and {@link createHostUpgradeRoute}. */
export interface HostRouteOptions {
  /** The preview domain, e.g. `preview.example.com`. */
  domain: string;
  targets: PreviewTargetResolver;
  proxy: PreviewProxy;
  /**
   * Present same-origin requests to the app as addressed to `localhost:<port>` (see proxy-core's
   * `ForwardRequest.asLocalhost`), so that dev servers, which trust only localhost by default, serve a
   * preview on any domain with no configuration. Default true; false passes `Host` and `Origin` as
   * `preserveHost` says.
   */
  asLocalhost?: boolean;
  /** Tokens for private ports. Without it a private port refuses every request (none can be checked). */
  privateAccess?: PrivateAccessContext;
}

type Next = (error?: unknown) => void;

function noteHostRoute(req: IncomingMessage, match: PreviewHostMatch): void {
  const trace = traceOf(req);
  if (!trace) return;
  trace.route = 'host';
  trace.sessionId = match.sessionId;
  trace.port = match.port;
}

// Host routes forward the whole request target: the container is served at the root, with no prefix to
// strip or to keep redirects and cookies under. Anything but an origin-form target (`/...`) is refused.
function forwardPathOf(req: IncomingMessage): string | PreviewError {
  const url = req.url ?? '/';
  if (!url.startsWith('/') || hasMalformedPercentEncoding(url)) return previewErrors.malformedPath();
  return url;
}

/** Serves every request whose Host names a preview; others go to `next()`. */
export function createHostRoute(options: HostRouteOptions) {
  return asMiddleware(createHostRouteHandler(options));
}

/** {@link createHostRoute} as a {@link ProxyRouteHandler}. */
export function createHostRouteHandler({
  domain,
  targets,
  proxy,
  asLocalhost = true,
  privateAccess = NO_PRIVATE_ACCESS,
}: HostRouteOptions): ProxyRouteHandler {
  const normalized = normalizePreviewDomain(domain);
  return (req, res, next) => {
    const match = matchPreviewHost(req.headers.host, normalized);
    if (match === undefined) return false;
    if (!('sessionId' in match)) {
      next(match);
      return true;
    }
    const forwardPath = forwardPathOf(req);
    if (typeof forwardPath !== 'string') {
      next(forwardPath);
      return true;
    }
    noteHostRoute(req, match);
    targets.resolvePort(match.sessionId, match.port).then((target) => {
      // Host-only cookie (no Domain): it goes back to this port's host alone.
      if (!admit(req, res, target, match.sessionId, '/', privateAccess, next)) return;
      proxy.forward(
        req,
        res,
        { target, forwardPath, prefix: '', sessionId: match.sessionId, asLocalhost },
        next,
      );
    }, next);
    return true;
  };
}

/** The WebSocket twin of {@link createHostRoute}; returns false when the Host is not a preview host. */
export function createHostUpgradeRoute({
  domain,
  targets,
  proxy,
  asLocalhost = true,
  privateAccess = NO_PRIVATE_ACCESS,
}: HostRouteOptions) {
  const normalized = normalizePreviewDomain(domain);
  return (req: IncomingMessage, socket: Duplex, head: Buffer, fail: Next): boolean => {
    const match = matchPreviewHost(req.headers.host, normalized);
    if (match === undefined) return false;
    if (!('sessionId' in match)) {
      fail(match);
      return true;
    }
    const forwardPath = forwardPathOf(req);
    if (typeof forwardPath !== 'string') {
      fail(forwardPath);
      return true;
    }
    noteHostRoute(req, match);
    targets.resolvePort(match.sessionId, match.port).then((target) => {
      if (!admit(req, undefined, target, match.sessionId, '/', privateAccess, fail)) return;
      proxy.forwardUpgrade(
        req,
        socket,
        head,
        { target, forwardPath, prefix: '', sessionId: match.sessionId, asLocalhost },
        fail,
      );
    }, fail);
    return true;
  };
}
