import { type PreviewError, previewErrors } from '@sandbox/error-contract';
import { isValidSessionId, type PreviewRegistry, previewPortSchema } from '@sandbox/preview-registry';
import express, { type RequestHandler, type Router } from 'express';
import type { PreviewTargetResolver } from './target.js';

/** Largest registration body accepted; a port fits in a few bytes. */
export const REGISTRATION_BODY_LIMIT_BYTES = 16 * 1024;

/** The port of a registration body, or the contract error it deserves (pure; the body is parsed JSON). */
export function parseRegistrationBody(body: unknown): number | PreviewError {
  if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) {
    return previewErrors.portRequired();
  }
  const port = (body as { port?: unknown }).port;
  if (port === undefined || port === null) return previewErrors.portRequired();
  const parsed = previewPortSchema.safeParse(port);
  return parsed.success ? parsed.data : previewErrors.invalidPort();
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
}

/**
 * `POST /api/internal/sessions/:id/previews`. Checks run in the contract's order: auth (mounted in front
 * of this router), body, then the container.
 */
export function createRegistrationRouter({ registry, targets }: RegistrationRouterOptions): Router {
  const router = express.Router();
  const parseJson = express.json({ limit: REGISTRATION_BODY_LIMIT_BYTES, strict: true, type: () => true });

  router.post('/sessions/:id/previews', requireJsonContentType, parseJson, async (req, res) => {
    const port = parseRegistrationBody(req.body);
    if (typeof port !== 'number') throw port;
    const sessionId = req.params.id;
    if (!isValidSessionId(sessionId)) throw previewErrors.invalidSessionId();
    await targets.assertContainerRunning(sessionId);
    const registration = await registry.register(sessionId, port);
    res.status(201).json({ ...registration, registered: true });
  });
  return router;
}
