import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import {
  type ContainerResolver,
  isPreviewError,
  previewErrors,
  type UnexpectedErrorLogger,
} from '@sandbox/error-contract';
import { createInMemoryRegistry, type PreviewRegistry } from '@sandbox/preview-registry';
import { createPreviewProxy, type PreviewProxy } from '@sandbox/proxy-core';
import { type AccessRecorder, traceHttpRequest, traceUpgrade } from './access.js';
import { createHostRouteHandler, createHostUpgradeRoute, normalizePreviewDomain } from './host-route.js';
import type { PrivateAccessContext } from './private-access.js';
import { createProxyRouteHandler, createUpgradeRoute, isLocalPathRouteHost } from './proxy-route.js';
import { sendErrorResponse, sendUpgradeErrorResponse } from './send-error.js';
import { createPreviewTargetResolver, type PreviewTargetResolver } from './target.js';
import { createPreviewTokens } from './tokens.js';

/** The default prefixes of the contract's two proxy routes. */
export const DEFAULT_PROXY_PREFIXES = {
  public: '/previews',
  internal: '/internal-previews/proxy',
} as const;

/** Options of {@link createPreviewRoutes}. */
export interface PreviewRoutesOptions {
  /** Session -> container address. Required: this package knows no Docker (see `@sandbox/container-resolver`). */
  resolver: ContainerResolver;
  /** Session -> port store. Default: in memory. */
  registry?: PreviewRegistry;
  /** The proxy. Default: one pooled keep-alive proxy. */
  proxy?: PreviewProxy;
  /** Serve the public route `/previews/:sessionId/*`. Default true. */
  publicProxy?: boolean;
  /** Serve the internal proxy `/internal-previews/proxy/:sessionId/*`. Default true. */
  internalProxy?: boolean;
  /**
   * Serve `{port}-{sessionId}.{previewDomain}` hosts: that registered port at the root path, no prefix,
   * WebSockets included. Checked before the path routes. Default: no host routing.
   */
  previewDomain?: string;
  /**
   * Host routes present same-origin requests to the app as addressed to `localhost:<port>` (`Host`,
   * `Origin`), so dev servers work on any preview domain with no configuration. So do the path routes for
   * a port registered with `stripPrefix: false`, when the request's `Host` is a loopback name or the
   * preview domain itself. Default true; false passes them as `preserveHost` says.
   */
  hostRouteAsLocalhost?: boolean;
  /** Route prefixes, without trailing slash. */
  prefixes?: Partial<typeof DEFAULT_PROXY_PREFIXES>;
  /**
   * Records one access line per request and WebSocket (with a request id taken from `X-Request-Id` or
   * made, returned to the client and forwarded to the container). Default: none, and no request ids.
   */
  onAccess?: AccessRecorder;
  /** Where unexpected (500) errors are reported. Default: stderr. */
  logUnexpected?: UnexpectedErrorLogger;
  /**
   * Whether a container's address may be forwarded to (else the 500 `CONTAINER_ADDRESS_REFUSED`).
   * Default: `createUpstreamAddressPolicy()` from proxy-core: private networks only, never loopback,
   * link-local or this host's own addresses. A setup that proxies to something other than containers
   * (a local dev server, say) passes its own.
   */
  isAllowedUpstream?: (address: string) => boolean;
  /**
   * The secret preview tokens are signed with (`PREVIEW_TOKEN_SECRET`, at least 32 characters): private
   * ports are served to requests that present a token (header, cookie, or a link's query parameter).
   * Without it a private port refuses every request. Public ports never look at tokens.
   */
  tokenSecret?: string;
}

/** Handles the HTTP server's `upgrade` event for the preview routes: `server.on('upgrade', handleUpgrade)`. */
export type PreviewUpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

/** Serves the proxy routes of a request; anything else goes to `next`, failures to `next(error)`. */
export type PreviewProxyHandler = (
  req: IncomingMessage,
  res: ServerResponse,
  next: (error?: unknown) => void,
) => void;

/**
 * The preview routes as a plain `node:http` request handler. Requests outside them go to `next`, so the
 * routes can share a server with other handlers; without `next` they get the contract's JSON 404. Every
 * failure leaves as the contract's JSON (or a readable page for a browser's navigation).
 */
export interface PreviewRoutes {
  (req: IncomingMessage, res: ServerResponse, next?: () => void): void;
  /** Wire it to the server: `server.on('upgrade', routes.handleUpgrade)`. */
  handleUpgrade: PreviewUpgradeHandler;
  /** The routes without tracing or error writing, for a framework that has its own (Express's `next`). */
  handleProxy: PreviewProxyHandler;
  /** The registry-then-container lookup the routes use, for an API that registers against the same parts. */
  targets: PreviewTargetResolver;
}

function isWebSocketUpgrade(req: IncomingMessage): boolean {
  return req.method === 'GET' && req.headers.upgrade?.toLowerCase() === 'websocket';
}

function pathOf(req: IncomingMessage): string {
  return (req.url ?? '/').split('?')[0] ?? '/';
}

/**
 * The contract's proxy routes (public, internal and host routes), HTTP and WebSocket, with no framework:
 * `http.createServer(routes)` and `server.on('upgrade', routes.handleUpgrade)` make a complete proxy.
 */
export function createPreviewRoutes(options: PreviewRoutesOptions): PreviewRoutes {
  const {
    registry = createInMemoryRegistry(),
    resolver,
    proxy = createPreviewProxy(),
    publicProxy = true,
    internalProxy = true,
    logUnexpected,
    previewDomain,
    onAccess,
    isAllowedUpstream,
    hostRouteAsLocalhost = true,
    tokenSecret,
  } = options;
  const privateAccess: PrivateAccessContext = {
    tokens: tokenSecret === undefined ? undefined : createPreviewTokens(tokenSecret),
    trustsForwardedHeaders: (address) => proxy.trustsForwardedHeaders(address),
  };
  const prefixes = { ...DEFAULT_PROXY_PREFIXES, ...options.prefixes };
  const targets = createPreviewTargetResolver({
    registry,
    resolver,
    ...(isAllowedUpstream === undefined ? {} : { isAllowedUpstream }),
  });
  const proxied: string[] = [];
  if (publicProxy) proxied.push(prefixes.public);
  if (internalProxy) proxied.push(prefixes.internal);
  const hostRoute =
    previewDomain === undefined ? undefined : { domain: previewDomain, targets, proxy, privateAccess };
  // Ports that keep the prefix are presented as localhost like host routes, for the names only this
  // machine or the preview domain's owner can put in Host.
  const domain = previewDomain === undefined ? undefined : normalizePreviewDomain(previewDomain);
  const presentsAsLocalhost = hostRouteAsLocalhost
    ? (host: string | undefined) => isLocalPathRouteHost(host, domain)
    : undefined;
  const pathRoute = (prefix: string) => ({
    prefix,
    targets,
    proxy,
    privateAccess,
    ...(presentsAsLocalhost === undefined ? {} : { presentsAsLocalhost }),
  });

  const proxyRoutes = [
    ...(hostRoute === undefined
      ? []
      : [createHostRouteHandler({ ...hostRoute, asLocalhost: hostRouteAsLocalhost })]),
    ...proxied.map((prefix) => createProxyRouteHandler(pathRoute(prefix))),
  ];
  const handleProxy: PreviewProxyHandler = (req, res, next) => {
    for (const route of proxyRoutes) if (route(req, res, next)) return;
    next();
  };

  const upgradeRoutes = [
    ...(hostRoute === undefined
      ? []
      : [createHostUpgradeRoute({ ...hostRoute, asLocalhost: hostRouteAsLocalhost })]),
    ...proxied.map((prefix) => createUpgradeRoute(pathRoute(prefix))),
  ];
  const handleUpgrade: PreviewUpgradeHandler = (req, socket, head) => {
    // Until the proxy takes the socket over, a client that vanishes must not crash the process.
    socket.on('error', () => socket.destroy());
    const traced = onAccess === undefined ? undefined : traceUpgrade(req, socket, onAccess);
    const fail = (error: unknown) => {
      traced?.noteFailure(
        isPreviewError(error) ? error.status : 500,
        isPreviewError(error) ? error.code : 'INTERNAL',
      );
      sendUpgradeErrorResponse(socket, error, logUnexpected, traced?.requestId);
    };
    if (!isWebSocketUpgrade(req)) {
      fail(previewErrors.upgradeNotSupported());
      return;
    }
    for (const route of upgradeRoutes) if (route(req, socket, head, fail)) return;
    fail(previewErrors.routeNotFound(req.method ?? 'GET', pathOf(req)));
  };

  const handle = (req: IncomingMessage, res: ServerResponse, next?: () => void) => {
    // A proxied response carries the id in its head (proxy-core adds it); any other answer gets it here.
    const requestId = onAccess === undefined ? undefined : traceHttpRequest(req, res, onAccess);
    handleProxy(req, res, (error) => {
      if (requestId !== undefined && !res.headersSent) res.setHeader('x-request-id', requestId);
      if (error !== undefined) sendErrorResponse(res, error, logUnexpected);
      else if (next !== undefined) next();
      else sendErrorResponse(res, previewErrors.routeNotFound(req.method ?? 'GET', pathOf(req)));
    });
  };
  return Object.assign(handle, { handleUpgrade, handleProxy, targets });
}
