import type { IncomingMessage, ServerResponse } from 'node:http';
import { type ContainerResolver, createContainerResolver } from '@sandbox/container-resolver';
import type { UnexpectedErrorLogger } from '@sandbox/error-contract';
import { previewErrors } from '@sandbox/error-contract';
import { createInMemoryRegistry, type PreviewRegistry } from '@sandbox/preview-registry';
import { createPreviewProxy, type PreviewProxy } from '@sandbox/proxy-core';
import express, { type Express, type Router } from 'express';
import { createErrorHandler, notFoundHandler, sendErrorResponse } from './http-errors.js';
import { requireInternalKey } from './internal-key.js';
import { createProxyRoute } from './proxy-route.js';
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
  /** Route prefixes, without trailing slash. */
  prefixes?: Partial<typeof DEFAULT_PREFIXES>;
}

/**
 * The preview routes as one Express router, to mount in an existing app: registration (when a key is
 * given) and the two proxies, sharing one registry, resolver and proxy.
 */
export function createPreviewRouter(options: PreviewRouterOptions = {}): Router {
  const {
    registry = createInMemoryRegistry(),
    resolver = createContainerResolver(),
    proxy = createPreviewProxy(),
    internalServiceKey,
    publicProxy = true,
    internalProxy = true,
  } = options;
  const prefixes = { ...DEFAULT_PREFIXES, ...options.prefixes };
  const targets = createPreviewTargetResolver({ registry, resolver });
  const router = express.Router();

  if (publicProxy) router.use(createProxyRoute({ prefix: prefixes.public, targets, proxy }));
  if (internalProxy) router.use(createProxyRoute({ prefix: prefixes.internal, targets, proxy }));
  if (internalServiceKey !== undefined) {
    router.use(
      prefixes.api,
      requireInternalKey(internalServiceKey),
      createRegistrationRouter({ registry, targets }),
    );
  }
  return router;
}

/** Options of {@link createPreviewApp}. */
export interface PreviewAppOptions extends PreviewRouterOptions {
  /** Where unexpected (500) errors are reported. Default: stderr. */
  logUnexpected?: UnexpectedErrorLogger;
}

function createBaseApp(options: PreviewRouterOptions): Express {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.use(createPreviewRouter(options));
  return app;
}

/** A complete Express app: the preview routes, a JSON 404 and the one error handler. */
export function createPreviewApp({ logUnexpected, ...options }: PreviewAppOptions = {}): Express {
  const app = createBaseApp(options);
  app.use(notFoundHandler);
  app.use(createErrorHandler(logUnexpected === undefined ? {} : { logUnexpected }));
  return app;
}

/** A request handler for a plain `node:http` server; see {@link createPreviewHandler}. */
export type PreviewRequestHandler = (req: IncomingMessage, res: ServerResponse, next?: () => void) => void;

/**
 * The preview routes as a plain `node:http` handler. Requests outside them go to `next`, so the preview
 * routes can share a server with other handlers; without `next` they get the contract's JSON 404.
 */
export function createPreviewHandler({
  logUnexpected,
  ...options
}: PreviewAppOptions = {}): PreviewRequestHandler {
  const app = createBaseApp(options);
  app.use(createErrorHandler(logUnexpected === undefined ? {} : { logUnexpected }));
  // An Express app is a plain request listener that upgrades node's req/res itself; its types just
  // do not say so.
  const handle = app as unknown as (req: IncomingMessage, res: ServerResponse, done: () => void) => void;
  return (req, res, next) => {
    handle(req, res, () => {
      if (next) next();
      else
        sendErrorResponse(
          res,
          previewErrors.routeNotFound(req.method ?? 'GET', (req.url ?? '/').split('?')[0] ?? '/'),
        );
    });
  };
}
