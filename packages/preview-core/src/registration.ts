import { type PreviewError, previewErrors } from '@sandbox/error-contract';
import { isValidSessionId, type PreviewRegistry, previewPortSchema } from '@sandbox/preview-registry';
import express, { type RequestHandler, type Router } from 'express';
import {
  createInternalApiDocument,
  DEFAULT_INTERNAL_API_BASE_PATH,
  type PreviewPorts,
  type RegisteredPreview,
  type RemovedPreview,
  type RemovedPreviewPort,
  registrationBodySchema,
} from './openapi.js';
import type { PreviewTargetResolver } from './target.js';

/** Largest registration body accepted; a port fits in a few bytes. */
export const REGISTRATION_BODY_LIMIT_BYTES = 16 * 1024;

/** The port of a registration body, or the contract error it deserves (pure; the body is parsed JSON). */
export function parseRegistrationBody(body: unknown): number | PreviewError {
  const parsed = registrationBodySchema.safeParse(body);
  if (parsed.success) return parsed.data.port;
  // The contract tells a missing port (no object, no field, null) from a bad one (any other value).
  const isObject = typeof body === 'object' && body !== null && !Array.isArray(body);
  const port = isObject ? (body as { port?: unknown }).port : undefined;
  return port === undefined || port === null ? previewErrors.portRequired() : previewErrors.invalidPort();
}

function hasBody(headers: Record<string, string | string[] | undefined>): boolean {
  const length = headers['content-length'];
  return headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

// Only JSON is accepted, but a body sent with no content type at all is read as JSON: internal callers
// using bare HTTP clients should not trip over a missing header.
const requireJsonContentType: RequestHandler = (req, _res, next) => {
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
}: RegistrationRouterOptions): Router {
  const router = express.Router();
  const parseJson = express.json({ limit: REGISTRATION_BODY_LIMIT_BYTES, strict: true, type: () => true });
  const document = createInternalApiDocument({ basePath });

  router.get('/openapi.json', (_req, res) => {
    res.json(document);
  });

  router.post('/sessions/:id/previews', requireJsonContentType, parseJson, async (req, res) => {
    const port = parseRegistrationBody(req.body);
    if (typeof port !== 'number') throw port;
    const sessionId = sessionIdParam(req.params.id);
    await targets.assertContainerRunning(sessionId);
    const registration = await registry.register(sessionId, port);
    res.status(201).json({
      sessionId: registration.sessionId,
      port: registration.port,
      registered: true,
    } satisfies RegisteredPreview);
  });

  router.get('/sessions/:id/previews', async (req, res) => {
    const sessionId = sessionIdParam(req.params.id);
    const ports = await registry.ports(sessionId);
    res.json({ sessionId, ports, activePort: ports.at(-1) ?? null } satisfies PreviewPorts);
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

  router.delete('/sessions/:id/previews', async (req, res) => {
    const sessionId = sessionIdParam(req.params.id);
    const ports = await registry.ports(sessionId);
    if (!(await registry.unregister(sessionId))) throw previewErrors.previewNotRegistered(sessionId);
    res.json({ sessionId, ports, registered: false } satisfies RemovedPreview);
  });
  return router;
}
