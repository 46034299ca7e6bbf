import { isPreviewError, type PreviewError, previewErrors } from '@sandbox/error-contract';

/** The HTTP status of a failed dockerode call, when the engine answered at all. */
export function dockerStatusOf(error: unknown): number | undefined {
  const status = (error as { statusCode?: unknown } | null)?.statusCode;
  return typeof status === 'number' ? status : undefined;
}

/**
 * A failed Docker call on a session's container as the contract's error: 404 is the session missing, any
 * other failure (refused socket, timeout, 5xx) the engine's, with its words.
 */
export function sessionCallError(sessionId: string, error: unknown): PreviewError {
  if (isPreviewError(error)) return error;
  if (dockerStatusOf(error) === 404) return previewErrors.sessionNotFound(sessionId);
  return previewErrors.dockerEngineError(error);
}
