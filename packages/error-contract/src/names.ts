import { z } from 'zod';
import { previewErrors } from './errors.js';

// The names and numbers the contract fixes, beside its errors: the resolver (Docker) and the registry (ports)
// both validate with them, and neither should depend on the other to do so.

/** A Docker container-name tail: what may follow `sandbox-session-`. */
export const SESSION_ID_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;

/** A session id, validated before it reaches the Docker API or a URL. */
export const sessionIdSchema = z.string().regex(SESSION_ID_PATTERN);

/** Whether a value is a valid session id. */
export function isValidSessionId(value: unknown): value is string {
  return typeof value === 'string' && SESSION_ID_PATTERN.test(value);
}

/** Lowest and highest port a preview may be registered on. */
export const PREVIEW_PORT_RANGE = { min: 1024, max: 65535 } as const;

/** A preview port: a JSON number, an integer, 1024..65535 (the string "3000" is rejected). */
export const previewPortSchema = z.number().int().min(PREVIEW_PORT_RANGE.min).max(PREVIEW_PORT_RANGE.max);

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
