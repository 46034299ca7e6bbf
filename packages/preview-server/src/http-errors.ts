import {
  isPreviewError,
  type PreviewError,
  previewErrors,
  type UnexpectedErrorLogger,
} from '@sandbox/error-contract';
import { sendErrorResponse } from '@sandbox/preview-routes';
import type { ErrorRequestHandler, RequestHandler } from 'express';
import { REGISTRATION_BODY_LIMIT_BYTES } from './registration.js';

// body-parser and the router report bad input as errors with a `type` or a URIError; they are the
// client's fault and get their own contract rows instead of the generic 500.
function fromFrameworkError(error: unknown): PreviewError | undefined {
  if (error instanceof URIError) return previewErrors.malformedPath();
  const type = (error as { type?: unknown } | null)?.type;
  switch (type) {
    case 'entity.parse.failed':
      return previewErrors.malformedJson(error);
    case 'entity.too.large': {
      // body-parser says which limit the route had.
      const limit = (error as { limit?: unknown }).limit;
      return previewErrors.payloadTooLarge(typeof limit === 'number' ? limit : REGISTRATION_BODY_LIMIT_BYTES);
    }
    case 'charset.unsupported':
    case 'encoding.unsupported':
      return previewErrors.unsupportedMediaType();
    default:
      return undefined;
  }
}

/** Maps any thrown value to a contract error: ours as they are, framework input errors to their rows. */
export function toPreviewError(error: unknown): unknown {
  return isPreviewError(error) ? error : (fromFrameworkError(error) ?? error);
}

/** Options of {@link createErrorHandler}. */
export interface ErrorHandlerOptions {
  /** Where unexpected (500) errors are reported. Default: stderr. */
  logUnexpected?: UnexpectedErrorLogger;
}

/** The one Express error handler: every failure leaves as the contract's JSON. */
export function createErrorHandler({ logUnexpected }: ErrorHandlerOptions = {}): ErrorRequestHandler {
  return (error, _req, res, _next) => sendErrorResponse(res, toPreviewError(error), logUnexpected);
}

/** The catch-all 404 in the contract's shape. */
export const notFoundHandler: RequestHandler = (req, _res, next) => {
  next(previewErrors.routeNotFound(req.method, req.path));
};
