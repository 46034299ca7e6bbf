import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { type ContainerResolver, createContainerResolver } from '@sandbox/container-resolver';
import type { UnexpectedErrorLogger } from '@sandbox/error-contract';
import { isPreviewError, previewErrors } from '@sandbox/error-contract';
import { createInMemoryRegistry, type PreviewRegistry } from '@sandbox/preview-registry';
import { createPreviewProxy, type PreviewProxy } from '@sandbox/proxy-core';
import express, { type Express, type Router } from 'express';
import { type AccessRecorder, traceHttpRequest, traceUpgrade } from './access.js';
import { createHostRouteHandler, createHostUpgradeRoute, normalizePreviewDomain } from './host-route.js';
import {
  createErrorHandler,
  notFoundHandler,
  sendErrorResponse,
  sendUpgradeErrorResponse,
} from './http-errors.js';
import { requireInternalKey } from './internal-key.js';
import {
  asMiddleware,
  createProxyRouteHandler,
  createUpgradeRoute,
  isLocalPathRouteHost,
} from './proxy-route.js';
import { createRegistrationRouter } from './registration.js';
import { createPreviewTargetResolver } from './target.js';

/** The default route prefixes of the contract. */
export const DEFAULT_PREFIXES = {
  public: '/previews',
  internal: '/internal-previews/proxy',
  api: '/api/internal',
} as const;

/** Options shared by {@link createPreviewRouter} and {@link createPreviewApp}. */
export interface PreviewRouterOptions {
  /** Session -> port store. Default: in memory. */
  registry?: PreviewRegistry;
  /** Session -> container address. Default: Docker, from `DOCKER_HOST`. */
  resolver?: ContainerResolver;
  /** The proxy. Default: one pooled keep-alive proxy. */
  proxy?: PreviewProxy;
  /** Shared secret of the internal API; without it the internal API is not mounted. */
  internalServiceKey?: string;
  /** Mount the public route `/previews/:sessionId/*`. Default true. */
  publicProxy?: boolean;
  /** Mount the internal proxy `/internal-previews/proxy/:sessionId/*`. Default true. */
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
  prefixes?: Partial<typeof DEFAULT_PREFIXES>;
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
}

/** Handles the HTTP server's `upgrade` event for the preview routes: `server.on('upgrade', handleUpgrade)`. */
export type PreviewUpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

/** Something that also tunnels the WebSocket upgrades of the preview routes. */
export interface HandlesUpgrades {
  /** Wire it to the server: `server.on('upgrade', x.handleUpgrade)`. */
  handleUpgrade: PreviewUpgradeHandler;
}

/** Serves the proxy routes of a request outside any framework; anything else goes to `next`. */
export type PreviewProxyHandler = (
  req: IncomingMessage,
  res: ServerResponse,
  next: (error?: unknown) => void,
) => void;

function isWebSocketUpgrade(req: IncomingMessage): boolean {
  return req.method === 'GET' && req.headers.upgrade?.toLowerCase() === 'websocket';
}

/**
 * The preview routes as one Express router, to mount in an existing app: registration (when a key is
 * given) and the two proxies, sharing one registry, resolver and proxy. Its `handleUpgrade` serves their
 * WebSockets with the same lookup, resolution and errors.
 */
export function createPreviewRouter(
  options: PreviewRouterOptions = {},
): Router & HandlesUpgrades & { handleProxy: PreviewProxyHandler } {
  const {
    registry = createInMemoryRegistry(),
    resolver = createContainerResolver(),
    proxy = createPreviewProxy(),
    internalServiceKey,
    publicProxy = true,
    internalProxy = true,
    logUnexpected,
    previewDomain,
    onAccess,
    isAllowedUpstream,
    hostRouteAsLocalhost = true,
  } = options;
  const prefixes = { ...DEFAULT_PREFIXES, ...options.prefixes };
  const targets = createPreviewTargetResolver({
    registry,
    resolver,
    ...(isAllowedUpstream === undefined ? {} : { isAllowedUpstream }),
  });
  const router = express.Router();
  const proxied: string[] = [];
  if (publicProxy) proxied.push(prefixes.public);
  if (internalProxy) proxied.push(prefixes.internal);

  const hostRoute =
    previewDomain === undefined
      ? []
      : [
          createHostRouteHandler({
            domain: previewDomain,
            targets,
            proxy,
            asLocalhost: hostRouteAsLocalhost,
          }),
        ];
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
    ...(presentsAsLocalhost === undefined ? {} : { presentsAsLocalhost }),
  });
  const proxyRoutes = [...hostRoute, ...proxied.map((prefix) => createProxyRouteHandler(pathRoute(prefix)))];
  for (const route of proxyRoutes) router.use(asMiddleware(route));
  const handleProxy: PreviewProxyHandler = (req, res, next) => {
    for (const route of proxyRoutes) if (route(req, res, next)) return;
    next();
  };
  if (internalServiceKey !== undefined) {
    router.use(
      prefixes.api,
      requireInternalKey(internalServiceKey),
      createRegistrationRouter({
        registry,
        targets,
        basePath: prefixes.api,
        ...(publicProxy ? { publicPrefix: prefixes.public } : {}),
        ...(domain === undefined ? {} : { previewDomain: domain }),
      }),
    );
  }

  const upgradeRoutes = [
    ...(previewDomain === undefined
      ? []
      : [
          createHostUpgradeRoute({
            domain: previewDomain,
            targets,
            proxy,
            asLocalhost: hostRouteAsLocalhost,
          }),
        ]),
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
    fail(previewErrors.routeNotFound(req.method ?? 'GET', (req.url ?? '/').split('?')[0] ?? '/'));
  };
  return Object.assign(router, { handleUpgrade, handleProxy });
}

/** Options of {@link createPreviewApp} and {@link createPreviewHandler}. */
export type PreviewAppOptions = PreviewRouterOptions;

/** An Express app that also serves its proxy routes without Express; see {@link createPreviewApp}. */
export type PreviewApp = Express &
  HandlesUpgrades & {
    /**
     * The app as a request listener whose proxy routes skip Express's routing (measured to cost more
     * than the proxying itself); use it for the server: `http.createServer(app.requestListener)`.
     */
    requestListener: (req: IncomingMessage, res: ServerResponse) => void;
  };

function createBaseApp(options: PreviewRouterOptions): PreviewApp {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  const router = createPreviewRouter(options);
  app.use(router);
  // Express's app is a plain request listener that upgrades node's req/res itself; its types just do not say so.
  const handle = app as unknown as (req: IncomingMessage, res: ServerResponse) => void;
  const { onAccess } = options;
  const requestListener = (req: IncomingMessage, res: ServerResponse) => {
    // A proxied response carries the id in its head (proxy-core adds it); any other answer gets it here.
    const requestId = onAccess === undefined ? undefined : traceHttpRequest(req, res, onAccess);
    router.handleProxy(req, res, (error) => {
      if (requestId !== undefined && !res.headersSent) res.setHeader('x-request-id', requestId);
      if (error === undefined) handle(req, res);
      else sendErrorResponse(res, error, options.logUnexpected);
    });
  };
  return Object.assign(app, { handleUpgrade: router.handleUpgrade, requestListener });
}

/**
 * A complete Express app: the preview routes, a JSON 404 and the one error handler. Serve it with
 * `const server = http.createServer(app.requestListener); server.on('upgrade', app.handleUpgrade)`.
 */
export function createPreviewApp(options: PreviewAppOptions = {}): PreviewApp {
  const app = createBaseApp(options);
  app.use(notFoundHandler);
  app.use(
    createErrorHandler(options.logUnexpected === undefined ? {} : { logUnexpected: options.logUnexpected }),
  );
  return app;
}

/** A request handler for a plain `node:http` server; see {@link createPreviewHandler}. */
export type PreviewRequestHandler = ((req: IncomingMessage, res: ServerResponse, next?: () => void) => void) &
  HandlesUpgrades;

/**
 * The preview routes as a plain `node:http` handler. Requests outside them go to `next`, so the preview
 * routes can share a server with other handlers; without `next` they get the contract's JSON 404.
 */
export function createPreviewHandler(options: PreviewAppOptions = {}): PreviewRequestHandler {
  const app = createBaseApp(options);
  app.use(
    createErrorHandler(options.logUnexpected === undefined ? {} : { logUnexpected: options.logUnexpected }),
  );
  // An Express app is a plain request listener that upgrades node's req/res itself; its types just
  // do not say so.
  const handle = app as unknown as (req: IncomingMessage, res: ServerResponse, done: () => void) => void;
  const handler = (req: IncomingMessage, res: ServerResponse, next?: () => void) => {
    handle(req, res, () => {
      if (next) next();
      else
        sendErrorResponse(
          res,
          previewErrors.routeNotFound(req.method ?? 'GET', (req.url ?? '/').split('?')[0] ?? '/'),
        );
    });
  };
  return Object.assign(handler, { handleUpgrade: app.handleUpgrade });
}
