import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { type PreviewError, previewErrors } from '@sandbox/error-contract';
import { isValidSessionId } from '@sandbox/preview-registry';
import {
  type ForwardRequest,
  hasMalformedPercentEncoding,
  type PreviewProxy,
  slashRedirectLocation,
  splitPreviewPath,
  traceOf,
} from '@sandbox/proxy-core';
import { admit, NO_PRIVATE_ACCESS, type PrivateAccessContext } from './private-access.js';
import type { PreviewTarget, PreviewTargetResolver } from './target.js';

/** Options of {@link createProxyRoute} and {@link createUpgradeRoute}. */
export interface ProxyRouteOptions {
  /** The route prefix without trailing slash, e.g. `/previews`. */
  prefix: string;
  targets: PreviewTargetResolver;
  proxy: PreviewProxy;
  /**
   * For a port that keeps the prefix (an app told its base: a dev server, nearly always): whether a
   * same-origin request with this `Host` is presented to the app as addressed to `localhost:<port>`, as
   * host routes do, so that dev servers that trust only localhost (Next.js) take it. Only names a page of
   * another site cannot send (DNS rebinding): see {@link isLocalPathRouteHost}. Default: never.
   */
  presentsAsLocalhost?: (host: string | undefined) => boolean;
  /** Tokens for private ports. Without it a private port refuses every request (none can be checked). */
  privateAccess?: PrivateAccessContext;
}

/** The host name of a `Host` value: lowercase, without port, brackets or a trailing dot. */
function hostnameOf(host: string): string {
  const name = host.startsWith('[') ? host.slice(1, host.indexOf(']')) : (host.split(':', 1)[0] ?? '');
  return name.toLowerCase().replace(/\.$/, '');
}

/**
 * Whether a `Host` names this machine's loopback (`localhost`, `*.localhost`, `127.0.0.0/8`, `::1`) or the
 * preview domain itself (pure). A page of another site reaches the proxy with its own name in `Host`, even
 * when its DNS points at the proxy (rebinding), so such a request cannot carry one of these.
 */
export function isLocalPathRouteHost(host: string | undefined, previewDomain?: string): boolean {
  if (host === undefined) return false;
  const name = hostnameOf(host);
  return (
    name === 'localhost' ||
    name.endsWith('.localhost') ||
    /^127(\.\d{1,3}){3}$/.test(name) ||
    name === '::1' ||
    (previewDomain !== undefined && name === previewDomain)
  );
}

/** A request matched to a preview route. */
export interface PreviewRouteMatch {
  sessionId: string;
  /** What the container receives: the rest of the URL, byte for byte. */
  forwardPath: string;
  /** The prefix the client used, e.g. `/previews/abc`. */
  routePrefix: string;
}

function decodeSessionId(raw: string): string | undefined {
  if (!raw.includes('%')) return raw;
  try {
    return decodeURIComponent(raw);
  } catch {
    return undefined;
  }
}

/**
 * Matches a raw URL against `{prefix}/:sessionId/*` (pure): `undefined` when it is not under the prefix,
 * the contract error when the path or the session id is bad, else the match. Nothing is decoded or
 * re-encoded except the session id, which must then match the container-name pattern.
 */
export function matchPreviewRoute(
  url: string,
  prefix: string,
  basePath = '',
): PreviewRouteMatch | PreviewError | undefined {
  const split = splitPreviewPath(url, prefix);
  if (!split) return undefined;
  const sessionId = decodeSessionId(split.rawSessionId);
  if (sessionId === undefined || hasMalformedPercentEncoding(url)) return previewErrors.malformedPath();
  if (!isValidSessionId(sessionId)) return previewErrors.invalidSessionId();
  return {
    sessionId,
    forwardPath: split.forwardPath,
    routePrefix: `${basePath}${prefix}/${split.rawSessionId}`,
  };
}

type Next = (error?: unknown) => void;

/**
 * `ALL {prefix}/:sessionId/*`: matched by hand on the raw URL (no router, no body parser in front of the
 * proxy), validated, resolved, forwarded with the prefix stripped (unless the port keeps it).
 */
export function createProxyRoute(options: ProxyRouteOptions) {
  return asMiddleware(createProxyRouteHandler(options));
}

/**
 * Serves one request when it is this route's, failures to `fail`; returns false, having done nothing, when
 * it is not. The form the apps chain without a closure per request.
 */
export type ProxyRouteHandler = (
  req: IncomingMessage & { baseUrl?: string; originalUrl?: string },
  res: ServerResponse,
  fail: Next,
) => boolean;

/** An Express-style middleware of a route handler: what it does not serve goes to `next()`. */
export function asMiddleware(handler: ProxyRouteHandler) {
  return (
    req: IncomingMessage & { baseUrl?: string; originalUrl?: string },
    res: ServerResponse,
    next: Next,
  ): void => {
    if (!handler(req, res, next)) next();
  };
}

/** {@link createProxyRoute} as a {@link ProxyRouteHandler}. */
export function createProxyRouteHandler({
  prefix,
  targets,
  proxy,
  presentsAsLocalhost,
  privateAccess = NO_PRIVATE_ACCESS,
}: ProxyRouteOptions): ProxyRouteHandler {
  return (req, res, next) => {
    const match = matchPreviewRoute(req.url ?? '/', prefix, req.baseUrl);
    if (match === undefined) return false;
    if (!('sessionId' in match)) {
      next(match);
      return true;
    }
    // `/previews/abc` -> `/previews/abc/`: relative links of the page then resolve inside the preview.
    const base = req.baseUrl ?? '';
    const redirect = slashRedirectLocation(
      req.method ?? 'GET',
      req.originalUrl ?? req.url ?? '/',
      `${base}${prefix}`,
    );
    // An app that keeps the prefix decides for itself (Next.js redirects `/previews/abc/` to
    // `/previews/abc`: redirecting back would loop).
    if (redirect !== undefined && targets.keepsPrefix?.(match.sessionId) !== true) {
      res.writeHead(308, { location: redirect, 'content-length': '0' }).end();
      return true;
    }
    const trace = traceOf(req);
    if (trace) {
      trace.route = prefix;
      trace.sessionId = match.sessionId;
    }
    // Known now (the usual case: both answer from memory), the request goes on without a promise.
    let known: PreviewTarget | undefined;
    try {
      known = targets.peek?.(match.sessionId);
    } catch (error) {
      next(error);
      return true;
    }
    const route = { proxy, presentsAsLocalhost, privateAccess };
    if (known !== undefined) forwardTo(route, req, res, match, known, next);
    else
      targets
        .resolve(match.sessionId)
        .then((target) => forwardTo(route, req, res, match, target, next), next);
    return true;
  };
}

/**
 * What the port receives. Stripped (the contract's default): the rest of the path, with the prefix sent
 * as `X-Forwarded-Prefix` and kept in `Location` and `Set-Cookie`. Kept (`stripPrefix: false`): the
 * whole request target, byte for byte, and no prefix to tell or put back, as on a host route: an app that
 * knows its base writes its headers for it, and an `X-Forwarded-Prefix` would have it prefix them twice.
 */
function forwardRequest(
  req: IncomingMessage,
  fullUrl: string,
  match: PreviewRouteMatch,
  target: PreviewTarget,
  presentsAsLocalhost: ProxyRouteOptions['presentsAsLocalhost'],
): ForwardRequest {
  if (target.keepPrefix !== true)
    return { target, forwardPath: match.forwardPath, prefix: match.routePrefix, sessionId: match.sessionId };
  const asLocalhost = presentsAsLocalhost?.(req.headers.host) === true;
  return { target, forwardPath: fullUrl, prefix: '', sessionId: match.sessionId, asLocalhost };
}

function forwardTo(
  {
    proxy,
    presentsAsLocalhost,
    privateAccess,
  }: {
    proxy: PreviewProxy;
    presentsAsLocalhost: ProxyRouteOptions['presentsAsLocalhost'] | undefined;
    privateAccess: PrivateAccessContext;
  },
  req: IncomingMessage & { originalUrl?: string; baseUrl?: string },
  res: ServerResponse,
  match: PreviewRouteMatch,
  target: PreviewTarget,
  next: Next,
): void {
  const trace = traceOf(req);
  if (trace) trace.port = target.port;
  const cookiePath = `${req.baseUrl ?? ''}${match.routePrefix}/`;
  if (!admit(req, res, target, match.sessionId, cookiePath, privateAccess, next)) return;
  const request = forwardRequest(req, req.originalUrl ?? req.url ?? '/', match, target, presentsAsLocalhost);
  proxy.forward(req, res, request, next);
}

/** Handles one upgrade request; returns false when the URL is not under this route's prefix. */
export type UpgradeRoute = (req: IncomingMessage, socket: Duplex, head: Buffer, fail: Next) => boolean;

/** The WebSocket twin of {@link createProxyRoute}: same lookup, resolution and errors, before any upgrade. */
export function createUpgradeRoute({
  prefix,
  targets,
  proxy,
  presentsAsLocalhost,
  privateAccess = NO_PRIVATE_ACCESS,
}: ProxyRouteOptions): UpgradeRoute {
  return (req, socket, head, fail) => {
    const match = matchPreviewRoute(req.url ?? '/', prefix);
    if (match === undefined) return false;
    if (!('sessionId' in match)) {
      fail(match);
      return true;
    }
    const trace = traceOf(req);
    if (trace) {
      trace.route = prefix;
      trace.sessionId = match.sessionId;
    }
    targets.resolve(match.sessionId).then((target) => {
      if (trace) trace.port = target.port;
      if (!admit(req, undefined, target, match.sessionId, `${match.routePrefix}/`, privateAccess, fail))
        return;
      const request = forwardRequest(req, req.url ?? '/', match, target, presentsAsLocalhost);
      proxy.forwardUpgrade(req, socket, head, request, fail);
    }, fail);
    return true;
  };
}
