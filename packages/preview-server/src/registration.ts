import { type PreviewError, previewErrors } from '@sandbox/error-contract';
import {
  isValidSessionId,
  type PreviewRegistry,
  previewPortSchema,
  type Visibility,
} from '@sandbox/preview-registry';
import {
  isHostRoutableSessionId,
  type PreviewTargetResolver,
  type PreviewTokens,
  TOKEN_QUERY_PARAMETER,
} from '@sandbox/preview-routes';
import express, { type RequestHandler, type Router } from 'express';
import {
  createInternalApiDocument,
  DEFAULT_INTERNAL_API_BASE_PATH,
  type InternalApiExtension,
  type IssuedToken,
  type PreviewPortDetail,
  type PreviewPorts,
  type RegisteredPreview,
  type RemovedPreview,
  type RemovedPreviewPort,
  type RevokedTokens,
  registrationBodySchema,
  tokenRequestSchema,
} from './openapi.js';
import type { RequestLog } from './request-log.js';

/** Largest registration body accepted; a port fits in a few bytes. */
export const REGISTRATION_BODY_LIMIT_BYTES = 16 * 1024;

/** A valid registration body. */
export interface ParsedRegistration {
  port: number;
  /** As sent; absent means the default, `true`. */
  stripPrefix?: boolean;
  /** As sent; absent means the default, `public`. */
  visibility?: Visibility;
}

/** Default lifetime of a token, in seconds. */
export const DEFAULT_TOKEN_TTL_SECONDS = 3600;

/**
 * The port and options of a registration body, or the contract error it deserves (pure; the body is parsed
 * JSON). The port is judged first, so a body the seed accepted or refused gets the seed's answer.
 */
export function parseRegistrationBody(body: unknown): ParsedRegistration | PreviewError {
  const parsed = registrationBodySchema.safeParse(body);
  if (parsed.success) {
    const { port, stripPrefix, visibility } = parsed.data;
    return {
      port,
      ...(stripPrefix === undefined ? {} : { stripPrefix }),
      ...(visibility === undefined ? {} : { visibility }),
    };
  }
  // The contract tells a missing port (no object, no field, null) from a bad one (any other value).
  const isObject = typeof body === 'object' && body !== null && !Array.isArray(body);
  const port = isObject ? (body as { port?: unknown }).port : undefined;
  if (port === undefined || port === null) return previewErrors.portRequired();
  if (!previewPortSchema.safeParse(port).success) return previewErrors.invalidPort();
  // Then the options, in the order they came to the contract: a string "false", 0 or null is not guessed at.
  const stripPrefix = (body as { stripPrefix?: unknown }).stripPrefix;
  if (stripPrefix !== undefined && typeof stripPrefix !== 'boolean')
    return previewErrors.invalidStripPrefix();
  return previewErrors.invalidVisibility();
}

function hasBody(headers: Record<string, string | string[] | undefined>): boolean {
  const length = headers['content-length'];
  return headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

// Only JSON is accepted, but a body sent with no content type at all is read as JSON: internal callers
// using bare HTTP clients should not trip over a missing header.
/** Refuses a typed body that is not JSON (415); an untyped body is read as JSON. */
export const requireJsonContentType: RequestHandler = (req, _res, next) => {
  const typed = req.headers['content-type'] !== undefined;
  const isJson = req.is(['application/json', 'application/*+json']) !== false;
  next(typed && hasBody(req.headers) && !isJson ? previewErrors.unsupportedMediaType() : undefined);
};

/** Options of {@link createRegistrationRouter}. */
export interface RegistrationRouterOptions {
  registry: PreviewRegistry;
  targets: PreviewTargetResolver;
  /** Where the router is mounted, for the paths of its OpenAPI document. Default `/api/internal`. */
  basePath?: string;
  /** The public path route's prefix (`/previews`), for the URLs a listing reports; none when not mounted. */
  publicPrefix?: string;
  /** The preview domain of the host routes, for the URLs a listing reports; none when not set. */
  previewDomain?: string;
  /** Token minting (`PREVIEW_TOKEN_SECRET`); without it private ports and tokens are refused (400). */
  tokens?: PreviewTokens;
  /** Operations mounted beside this router, for the OpenAPI document it serves. */
  extensions?: readonly InternalApiExtension[];
  /** A registration opens the session's request log, so that its errors are kept from the start. */
  requestLog?: Pick<RequestLog, 'open'>;
}

function sessionIdParam(raw: string | string[] | undefined): string {
  if (!isValidSessionId(raw)) throw previewErrors.invalidSessionId();
  return raw;
}

/** A port in a path segment: digits only (no sign, no `0x`, no spaces), then the same range as a body's. */
export function parsePortParam(raw: string): number | PreviewError {
  if (!/^\d{1,5}$/.test(raw)) return previewErrors.invalidPort();
  const parsed = previewPortSchema.safeParse(Number(raw));
  return parsed.success ? parsed.data : previewErrors.invalidPort();
}

/**
 * The internal registration API, under `/api/internal` (auth mounted in front of this router):
 * - `POST /sessions/:id/previews` adds a port and makes it the active one (the contract's checks, in
 *   order: auth, body, then the container);
 * - `GET /sessions/:id/previews` lists the ports (the last is active);
 * - `DELETE /sessions/:id/previews/:port` removes one, `DELETE /sessions/:id/previews` all of them;
 * - `GET /openapi.json` is their OpenAPI 3.1 document, built once, from the schemas they validate with.
 */
export function createRegistrationRouter({
  registry,
  targets,
  basePath = DEFAULT_INTERNAL_API_BASE_PATH,
  publicPrefix,
  previewDomain,
  tokens,
  extensions = [],
  requestLog,
}: RegistrationRouterOptions): Router {
  const router = express.Router();
  const parseJson = express.json({ limit: REGISTRATION_BODY_LIMIT_BYTES, strict: true, type: () => true });
  // A token request may come with no body at all (the defaults).
  const parseTokenJson: RequestHandler = (req, res, next) =>
    hasBody(req.headers) ? parseJson(req, res, next) : next();
  const document = createInternalApiDocument({ basePath, extensions });

  router.get('/openapi.json', (_req, res) => {
    res.json(document);
  });

  router.post('/sessions/:id/previews', requireJsonContentType, parseJson, async (req, res) => {
    const body = parseRegistrationBody(req.body);
    if (!('port' in body)) throw body;
    const sessionId = sessionIdParam(req.params.id);
    // A private port this service could not check tokens for would refuse everyone: said now, not later.
    if (body.visibility === 'private' && tokens === undefined) throw previewErrors.previewTokensDisabled();
    await targets.assertContainerRunning(sessionId);
    const registration = await registry.register(sessionId, body.port, {
      ...(body.stripPrefix === undefined ? {} : { stripPrefix: body.stripPrefix }),
      ...(body.visibility === undefined ? {} : { visibility: body.visibility }),
    });
    requestLog?.open(sessionId);
    // The contract's body, to the letter, for the contract's request; options only when asked about.
    res.status(201).json({
      sessionId: registration.sessionId,
      port: registration.port,
      registered: true,
      ...(body.stripPrefix === undefined ? {} : { stripPrefix: registration.stripPrefix }),
      ...(body.visibility === undefined ? {} : { visibility: registration.visibility }),
    } satisfies RegisteredPreview);
  });

  // Session ids are validated, so they need no encoding in a path; a host URL needs one that fits a label.
  const pathUrl = (sessionId: string) =>
    publicPrefix === undefined ? null : `${publicPrefix}/${sessionId}/`;
  const hostUrl = (sessionId: string, port: number) =>
    previewDomain === undefined || !isHostRoutableSessionId(sessionId)
      ? null
      : `//${port}-${sessionId}.${previewDomain}/`;

  router.get('/sessions/:id/previews', async (req, res) => {
    const sessionId = sessionIdParam(req.params.id);
    const registrations = await registry.registrations(sessionId);
    const ports = registrations.map((registration) => registration.port);
    const active = ports.at(-1);
    const previews = registrations.map(
      ({ port, stripPrefix, visibility }): PreviewPortDetail => ({
        port,
        stripPrefix,
        visibility,
        active: port === active,
        urls: { path: port === active ? pathUrl(sessionId) : null, host: hostUrl(sessionId, port) },
      }),
    );
    res.json({ sessionId, ports, activePort: active ?? null, previews } satisfies PreviewPorts);
  });

  router.delete('/sessions/:id/previews/:port', async (req, res) => {
    const sessionId = sessionIdParam(req.params.id);
    const port = parsePortParam(req.params.port);
    if (typeof port !== 'number') throw port;
    if (!(await registry.unregisterPort(sessionId, port)))
      throw previewErrors.portNotRegistered(sessionId, port);
    const ports = await registry.ports(sessionId);
    res.json({
      sessionId,
      port,
      registered: false,
      ports,
      activePort: ports.at(-1) ?? null,
    } satisfies RemovedPreviewPort);
  });

  const registeredPort = async (
    rawId: string | string[] | undefined,
    rawPort: string | string[] | undefined,
  ) => {
    const sessionId = sessionIdParam(rawId);
    const port = parsePortParam(typeof rawPort === 'string' ? rawPort : '');
    if (typeof port !== 'number') throw port;
    return { sessionId, port };
  };

  router.post(
    '/sessions/:id/previews/:port/tokens',
    requireJsonContentType,
    parseTokenJson,
    async (req, res) => {
      const { sessionId, port } = await registeredPort(req.params.id, req.params.port);
      const parsed = tokenRequestSchema.safeParse(req.body ?? {});
      if (!parsed.success) throw previewErrors.invalidTokenTtl();
      if (tokens === undefined) throw previewErrors.previewTokensDisabled();
      if (!(await registry.ports(sessionId)).includes(port))
        throw previewErrors.portNotRegistered(sessionId, port);
      const ttlSeconds = parsed.data.ttlSeconds ?? DEFAULT_TOKEN_TTL_SECONDS;
      const { token, claims } = tokens.mint(sessionId, port, ttlSeconds * 1000);
      const query = `?${TOKEN_QUERY_PARAMETER}=${token}`;
      const active = (await registry.lookup(sessionId)) === port;
      const path = active ? pathUrl(sessionId) : null;
      const host = hostUrl(sessionId, port);
      res.status(201).json({
        token,
        sessionId,
        port,
        expiresAt: new Date(claims.expiresAt).toISOString(),
        urls: {
          ...(path === null ? {} : { path: `${path}${query}` }),
          ...(host === null ? {} : { host: `${host}${query}` }),
        },
      } satisfies IssuedToken);
    },
  );

  router.delete('/sessions/:id/previews/:port/tokens', async (req, res) => {
    const { sessionId, port } = await registeredPort(req.params.id, req.params.port);
    if (!(await registry.revokeTokens(sessionId, port)))
      throw previewErrors.portNotRegistered(sessionId, port);
    res.json({ sessionId, port, revoked: true } satisfies RevokedTokens);
  });

  router.delete('/sessions/:id/previews', async (req, res) => {
    const sessionId = sessionIdParam(req.params.id);
    const ports = await registry.ports(sessionId);
    if (!(await registry.unregister(sessionId))) throw previewErrors.previewNotRegistered(sessionId);
    res.json({ sessionId, ports, registered: false } satisfies RemovedPreview);
  });
  return router;
}
