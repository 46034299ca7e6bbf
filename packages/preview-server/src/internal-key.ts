import { createHash, timingSafeEqual } from 'node:crypto';
import { previewErrors } from '@sandbox/error-contract';
import type { RequestHandler } from 'express';

/** The header that carries the internal service key. */
export const INTERNAL_KEY_HEADER_NAME = 'X-Internal-Service-Key';

// UTF-16 code units, not UTF-8: UTF-8 turns every unpaired surrogate into the same replacement bytes, so
// two different strings could hash alike. This way only the very same string matches.
function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf16le').digest();
}

/**
 * A constant-time check of a presented key against the configured one. Both sides are hashed first so
 * neither the comparison time nor an early length mismatch tells an attacker anything about the key.
 */
export function createKeyMatcher(expectedKey: string): (presented: unknown) => boolean {
  if (expectedKey.length === 0) throw new Error('The internal service key must not be empty');
  const expected = digest(expectedKey);
  return (presented) =>
    typeof presented === 'string' && presented.length > 0 && timingSafeEqual(digest(presented), expected);
}

/** Express middleware answering 403 unless `X-Internal-Service-Key` matches. */
export function requireInternalKey(expectedKey: string): RequestHandler {
  const matches = createKeyMatcher(expectedKey);
  return (req, _res, next) => {
    next(matches(req.headers['x-internal-service-key']) ? undefined : previewErrors.forbidden());
  };
}
