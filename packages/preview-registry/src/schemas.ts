import { z } from 'zod';

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
