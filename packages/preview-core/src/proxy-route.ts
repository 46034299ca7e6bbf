import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { type PreviewError, previewErrors } from '@sandbox/error-contract';
import { isValidSessionId } from '@sandbox/preview-registry';
import {
  hasMalformedPercentEncoding,
  type PreviewProxy,
  slashRedirectLocation,
  splitPreviewPath,
  traceOf,
} from '@sandbox/proxy-core';
import type { PreviewTarget, PreviewTargetResolver } from './target.js';

/** Options of {@link createProxyRoute} and {@link createUpgradeRoute}. */
export interface ProxyRouteOptions {
  /** The route prefix without trailing slash, e.g. `/previews`. */
  prefix: string;
  targets: PreviewTargetResolver;
  proxy: PreviewProxy;
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
export function createProxyRouteHandler({ prefix, targets, proxy }: ProxyRouteOptions): ProxyRouteHandler {
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
    if (redirect !== undefined) {
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
    if (known !== undefined) forwardTo(proxy, req, res, match, known, next);
    else
      targets
        .resolve(match.sessionId)
        .then((target) => forwardTo(proxy, req, res, match, target, next), next);
    return true;
  };
}

/**
 * What the port receives. Stripped (the contract's default): the rest of the path, with the prefix sent
 * as `X-Forwarded-Prefix` and kept in `Location` and `Set-Cookie`. Kept (`stripPrefix: false`): the
 * whole request target, byte for byte, and no prefix to tell or put back, as on a host route: an app that
 * knows its base writes its headers for it, and an `X-Forwarded-Prefix` would have it prefix them twice.
 */
function forwardRequest(fullUrl: string, match: PreviewRouteMatch, target: PreviewTarget) {
  return target.keepPrefix === true
    ? { target, forwardPath: fullUrl, prefix: '', sessionId: match.sessionId }
    : { target, forwardPath: match.forwardPath, prefix: match.routePrefix, sessionId: match.sessionId };
}

function forwardTo(
  proxy: PreviewProxy,
  req: IncomingMessage & { originalUrl?: string },
  res: ServerResponse,
  match: PreviewRouteMatch,
  target: PreviewTarget,
  next: Next,
): void {
  const trace = traceOf(req);
  if (trace) trace.port = target.port;
  proxy.forward(req, res, forwardRequest(req.originalUrl ?? req.url ?? '/', match, target), next);
}

/** Handles one upgrade request; returns false when the URL is not under this route's prefix. */
export type UpgradeRoute = (req: IncomingMessage, socket: Duplex, head: Buffer, fail: Next) => boolean;

/** The WebSocket twin of {@link createProxyRoute}: same lookup, resolution and errors, before any upgrade. */
export function createUpgradeRoute({ prefix, targets, proxy }: ProxyRouteOptions): UpgradeRoute {
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
      proxy.forwardUpgrade(req, socket, head, forwardRequest(req.url ?? '/', match, target), fail);
    }, fail);
    return true;
  };
}
