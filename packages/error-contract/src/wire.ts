import { z } from 'zod';
import { getReasonPhrase, PREVIEW_ERROR_CODES } from './codes.js';
import { isPreviewError, type PreviewError, previewErrors } from './errors.js';

/** The JSON body of every error response: the NestJS shape clients parse, plus a stable `code`. */
export const errorBodySchema = z
  .object({
    statusCode: z.number().int().min(400).max(599),
    error: z.string().min(1),
    message: z.string(),
    code: z.enum(PREVIEW_ERROR_CODES),
  })
  .strict();

/** An error response body. */
export type ErrorBody = z.infer<typeof errorBodySchema>;

/** What an adapter writes for a failure: the status and the JSON body. */
export interface ErrorResponse {
  status: number;
  body: ErrorBody;
}

/** Where unexpected errors are reported; the client only ever sees the generic 500. */
export type UnexpectedErrorLogger = (error: unknown) => void;

const logToStderr: UnexpectedErrorLogger = (error) => {
  console.error('Unexpected error', error);
};

/** The wire body of a {@link PreviewError}. */
export function toErrorBody(error: PreviewError): ErrorBody {
  return {
    statusCode: error.status,
    error: getReasonPhrase(error.status),
    message: error.message,
    code: error.code,
  };
}

/**
 * Turns any thrown value into the contract's response. A {@link PreviewError} maps through the code table;
 * anything else is a 500 with a generic message, logged, its stack never sent.
 */
export function toErrorResponse(
  error: unknown,
  logUnexpected: UnexpectedErrorLogger = logToStderr,
): ErrorResponse {
  if (isPreviewError(error)) return { status: error.status, body: toErrorBody(error) };
  logUnexpected(error);
  const internal = previewErrors.internal(error);
  return { status: internal.status, body: toErrorBody(internal) };
}
