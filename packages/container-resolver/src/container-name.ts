import { previewErrors } from '@sandbox/error-contract';
import { isValidSessionId } from '@sandbox/preview-registry';

/** Prefix of every session container's name (the contract's `sandbox-session-{sessionId}`). */
export const CONTAINER_NAME_PREFIX = 'sandbox-session-';

/**
 * The Docker container name of a session. Validates again although routes already did: dockerode pastes the
 * name into the API path, where an unvalidated `/` or `..` would walk to another endpoint.
 */
export function containerNameFor(sessionId: string): string {
  if (!isValidSessionId(sessionId)) throw previewErrors.invalidSessionId();
  return `${CONTAINER_NAME_PREFIX}${sessionId}`;
}
