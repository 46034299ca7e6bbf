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

/** The session id of a container name (with or without Docker's leading `/`), if it is a session container. */
export function sessionIdFromContainerName(name: string): string | undefined {
  const bare = name.startsWith('/') ? name.slice(1) : name;
  if (!bare.startsWith(CONTAINER_NAME_PREFIX)) return undefined;
  const sessionId = bare.slice(CONTAINER_NAME_PREFIX.length);
  return isValidSessionId(sessionId) ? sessionId : undefined;
}
