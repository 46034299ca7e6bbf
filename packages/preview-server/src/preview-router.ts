import type { IncomingMessage, ServerResponse } from 'node:http';
import { type PreviewError, previewErrors } from '@sandbox/error-contract';
import { createInMemoryRegistry } from '@sandbox/preview-registry';
import {
  type AccessRecorder,
  createPreviewRoutes,
  createPreviewTokens,
  DEFAULT_PROXY_PREFIXES,
  normalizePreviewDomain,
  type PreviewProxyHandler,
  type PreviewRoutesOptions,
  type PreviewUpgradeHandler,
  sendErrorResponse,
  traceHttpRequest,
} from '@sandbox/preview-routes';
import express, { type Express, type RequestHandler, type Router } from 'express';
import { createErrorHandler, notFoundHandler, toPreviewError } from './http-errors.js';
import { createKeyMatcher, requireInternalKey } from './internal-key.js';
import type { InternalApiExtension } from './openapi.js';
import { createRegistrationRouter } from './registration.js';
import { combineRecorders, type RequestLog } from './request-log.js';
import { createRequestLogApi } from './request-log-api.js';

/** The default route prefixes of the contract. */
export const DEFAULT_PREFIXES = {
  ...DEFAULT_PROXY_PREFIXES,
  api: '/api/internal',
} as const;

/**
 * Options shared by {@link createPreviewRouter} and {@link createPreviewApp}: those of the proxy routes
 * (`@sandbox/preview-routes`, whose `resolver` is required: this package knows no Docker) and the API's.
 */
export interface PreviewRouterOptions extends Omit<PreviewRoutesOptions, 'prefixes'> {
  /** Shared secret of the internal API; without it the internal API is not mounted. */
  internalServiceKey?: string;
  /** Route prefixes, without trailing slash. */
  prefixes?: Partial<typeof DEFAULT_PREFIXES>;
  /**
   * More of the internal API: routers mounted under the API prefix behind the same key (after the
   * registration routes), each with what the OpenAPI document says of it. Ignored without a key.
   */
  internalApi?: readonly InternalApiModule[];
  /**
   * Each preview's recent traffic (createRequestLog): it gets every access record of the routes (beside
   * `onAccess`), a registration opens a session's log, and `GET {api}/sessions/:id/previews/log` reads or
   * follows it, behind the key.
   */
  requestLog?: RequestLog;
}

// What the routes record to: the caller's recorder and the request log's, either, or none (no tracing).
const recorderOf = (options: PreviewRouterOptions) =>
  combineRecorders(options.onAccess, options.requestLog?.record);

/** A router mounted in the internal API, and its operations for the OpenAPI document. */
export interface InternalApiModule {
  /** Mounted at the API prefix; its paths are those of `document.operations`. */
  router: RequestHandler;
  document: InternalApiExtension;
}

// A request target never holds a fragment (RFC 9112, 3.2). Express's router would read
// `/sessions/abc#x/previews` as `/sessions/abc` (a malformed registration path must not reach the session
// itself: its DELETE removes the container), and parses such a URL with the deprecated url.parse(). The apps
// refuse it before Express sees it; the router refuses it again for those who mount it in their own app.
const hasFragment = (req: IncomingMessage) => (req.url ?? '').includes('#');

// The answer to a target with a fragment: under the internal API the key is still checked first (403), as
// for any other request there; anywhere else, or with the key, the 400.
function fragmentAnswer(options: PreviewRouterOptions): (req: IncomingMessage) => PreviewError {
  const { internalServiceKey } = options;
  if (internalServiceKey === undefined) return () => previewErrors.malformedPath();
  const matches = createKeyMatcher(internalServiceKey);
  // Express matches mount paths without regard to case.
  const api = ({ ...DEFAULT_PREFIXES, ...options.prefixes }.api ?? DEFAULT_PREFIXES.api).toLowerCase();
  return (req) => {
    const path = (req.url ?? '').toLowerCase();
    const underApi = path === api || (/^[/?#]/.test(path.slice(api.length)) && path.startsWith(api));
    return underApi && !matches(req.headers['x-internal-service-key'])
      ? previewErrors.forbidden()
      : previewErrors.malformedPath();
  };
}
const refuseFragments: RequestHandler = (req, _res, next) => {
  next(req.originalUrl.includes('#') ? previewErrors.malformedPath() : undefined);
};

/** Something that also tunnels the WebSocket upgrades of the preview routes. */
export interface HandlesUpgrades {
  /** Wire it to the server: `server.on('upgrade', x.handleUpgrade)`. */
  handleUpgrade: PreviewUpgradeHandler;
}

/**
 * The preview routes as one Express router, to mount in an existing app: registration (when a key is
 * given) and the two proxies, sharing one registry, resolver and proxy. Its `handleUpgrade` serves their
 * WebSockets with the same lookup, resolution and errors.
 */
export function createPreviewRouter(
  options: PreviewRouterOptions,
): Router & HandlesUpgrades & { handleProxy: PreviewProxyHandler } {
  return buildPreviewRouter(options, recorderOf(options));
}

function buildPreviewRouter(
  options: PreviewRouterOptions,
  onAccess: AccessRecorder | undefined,
): Router & HandlesUpgrades & { handleProxy: PreviewProxyHandler } {
  const { internalServiceKey, publicProxy = true, previewDomain, tokenSecret, requestLog } = options;
  const prefixes = { ...DEFAULT_PREFIXES, ...options.prefixes };
  // One registry for the routes and the API, so a registration is served at once.
  const registry = options.registry ?? createInMemoryRegistry();
  const { onAccess: _given, ...routeOptions } = options;
  const routes = createPreviewRoutes({
    ...routeOptions,
    ...(onAccess === undefined ? {} : { onAccess }),
    registry,
    prefixes,
  });
  const router = express.Router();
  router.use((req, res, next) => routes.handleProxy(req, res, next));
  if (internalServiceKey !== undefined) {
    const domain = previewDomain === undefined ? undefined : normalizePreviewDomain(previewDomain);
    const modules = [
      ...(requestLog === undefined ? [] : [createRequestLogApi(requestLog)]),
      ...(options.internalApi ?? []),
    ];
    router.use(
      prefixes.api,
      requireInternalKey(internalServiceKey),
      refuseFragments,
      createRegistrationRouter({
        registry,
        targets: routes.targets,
        basePath: prefixes.api,
        ...(publicProxy ? { publicPrefix: prefixes.public } : {}),
        ...(domain === undefined ? {} : { previewDomain: domain }),
        ...(tokenSecret === undefined ? {} : { tokens: createPreviewTokens(tokenSecret) }),
        ...(requestLog === undefined ? {} : { requestLog }),
        extensions: modules.map((module) => module.document),
      }),
      ...modules.map((module) => module.router),
    );
  }
  return Object.assign(router, { handleUpgrade: routes.handleUpgrade, handleProxy: routes.handleProxy });
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
  const onAccess = recorderOf(options);
  const router = buildPreviewRouter(options, onAccess);
  app.use(router);
  // Express's app is a plain request listener that upgrades node's req/res itself; its types just do not say so.
  const handle = app as unknown as (req: IncomingMessage, res: ServerResponse) => void;
  const refusal = fragmentAnswer(options);
  const requestListener = (req: IncomingMessage, res: ServerResponse) => {
    // A proxied response carries the id in its head (proxy-core adds it); any other answer gets it here.
    const requestId = onAccess === undefined ? undefined : traceHttpRequest(req, res, onAccess);
    router.handleProxy(req, res, (error) => {
      if (requestId !== undefined && !res.headersSent) res.setHeader('x-request-id', requestId);
      if (error === undefined && !hasFragment(req)) handle(req, res);
      else sendErrorResponse(res, toPreviewError(error ?? refusal(req)), options.logUnexpected);
    });
  };
  return Object.assign(app, { handleUpgrade: router.handleUpgrade, requestListener });
}

/**
 * A complete Express app: the preview routes, a JSON 404 and the one error handler. Serve it with
 * `const server = http.createServer(app.requestListener); server.on('upgrade', app.handleUpgrade)`.
 */
export function createPreviewApp(options: PreviewAppOptions): PreviewApp {
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
export function createPreviewHandler(options: PreviewAppOptions): PreviewRequestHandler {
  const app = createBaseApp(options);
  app.use(
    createErrorHandler(options.logUnexpected === undefined ? {} : { logUnexpected: options.logUnexpected }),
  );
  // An Express app is a plain request listener that upgrades node's req/res itself; its types just
  // do not say so.
  const handle = app as unknown as (req: IncomingMessage, res: ServerResponse, done: () => void) => void;
  const refusal = fragmentAnswer(options);
  const handler = (req: IncomingMessage, res: ServerResponse, next?: () => void) => {
    if (hasFragment(req)) {
      sendErrorResponse(res, refusal(req), options.logUnexpected);
      return;
    }
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
